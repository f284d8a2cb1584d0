"""Speech is bounded: every text is cut into short pieces before synthesis (a long say with
no punctuation once took gigabytes), live speech never waits behind the start-up warm-up,
and a full queue refuses a text with an error instead of growing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from firmware_app.config.settings import TtsSettings
from firmware_app.core.messages import Notice
from firmware_app.speak.output import FIRST_PIECE_CHARS, SpeechOutput, speakable_pieces
from firmware_app.speak.piper import MAX_PIECE_CHARS, split_phonemes
from tests.fakes import FakeTts


class RecordingSpeaker:
    """Keeps what it was sent: audio bytes per utterance and the utterances finished."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.audio: dict[int, int] = {}
        self.finished: list[int] = []
        self.stops = 0

    def play(self, utterance: int, pcm: bytes) -> None:
        self.audio[utterance] = self.audio.get(utterance, 0) + len(pcm)

    def finish(self, utterance: int) -> None:
        self.finished.append(utterance)

    def stop(self) -> None:
        self.stops += 1


class GatedTts(FakeTts):
    """FakeTts that holds each synthesis until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Event()

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.started.set()
        self.gate.wait(10)
        yield from super().synthesize(text)


def wait_idle(speech: SpeechOutput, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while (speech.busy() or speech.warming()) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not speech.busy()


WORDS = " ".join(["the kitchen light stays on until the pasta is ready"] * 6)
LONG = " ".join(f"word{i}" for i in range(400))[:2000]  # 2,000 characters, no punctuation


def test_long_unpunctuated_text_is_cut_at_word_boundaries() -> None:
    pieces = speakable_pieces(LONG)
    assert all(0 < len(p) <= MAX_PIECE_CHARS for p in pieces)
    assert " ".join(pieces).split() == LONG.split()  # no word cut, lost or added


def test_sentences_end_pieces_and_control_characters_go() -> None:
    text = "Hello\0world. Tom &amp; Jerry are here! Is it\x07 five?"
    assert speakable_pieces(text) == ["Hello world.", "Tom & Jerry are here!", "Is it five?"]


def test_only_an_utterances_opening_is_cut_short() -> None:
    """The first piece is synthesized while the listener waits; later sentences of the same
    utterance (a streamed answer) are synthesized while it plays, so they stay whole."""
    tts, speaker = FakeTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    sentence = "The sky looks blue because air scatters blue light."
    try:
        speech.say(1, sentence)
        speech.say(1, sentence)
        speech.finish(1)
        wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == [
        "The sky looks blue",
        "because air scatters blue light.",
        sentence,
    ]
    assert len(tts.said[0]) <= FIRST_PIECE_CHARS


class QuickStartTts(FakeTts):
    """FakeTts that notes which texts were asked for with a short first chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.soon: list[str] = []

    def synthesize_soon(self, text: str) -> Iterator[bytes]:
        self.soon.append(text)
        return self.synthesize(text)


def test_only_the_opening_piece_asks_for_a_short_first_chunk() -> None:
    tts, speaker = QuickStartTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    sentence = "The sky looks blue because air scatters blue light."
    try:
        speech.say(1, sentence)
        speech.say(1, sentence)  # the same utterance streaming on: it plays meanwhile
        speech.finish(1)
        speech.say(2, "It is ten past nine.")
        speech.finish(2)
        wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == ["The sky looks blue", "because air scatters blue light.", sentence,
                        "It is ten past nine."]  # fmt: skip
    assert tts.soon == ["The sky looks blue", "It is ten past nine."]


def test_a_short_opening_is_not_cut() -> None:
    assert speakable_pieces("announcement number 10") == ["announcement number 10"]
    assert speakable_pieces("It's twenty past nine in the morning.") == [
        "It's twenty past",
        "nine in the morning.",
    ]


def test_say_synthesizes_bounded_pieces_in_order() -> None:
    tts, speaker = FakeTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    try:
        assert speech.say(1, LONG)
        speech.finish(1)
        wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == speakable_pieces(LONG)
    assert max(len(t) for t in tts.said) <= MAX_PIECE_CHARS
    assert speaker.finished == [1]
    assert speaker.audio[1] == 6400 * 2 * len(LONG.split())  # every word was spoken


def test_live_speech_goes_before_the_warm_up() -> None:
    tts, speaker = GatedTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    try:
        speech.prewarm(["First fixed phrase.", "Second fixed phrase.", "Third fixed phrase."])
        assert tts.started.wait(5)  # the first warm-up phrase is being synthesized
        speech.say(1, "Live words.")
        speech.finish(1)
        tts.gate.set()
        wait_idle(speech)
    finally:
        speech.close()
    # The phrase under way gives way after its current run and is done again later.
    assert tts.said[:2] == ["First fixed phrase.", "Live words."]
    assert sorted(tts.said[2:]) == [
        "First fixed phrase.",
        "Second fixed phrase.",
        "Third fixed phrase.",
    ]
    assert speech.cache.stats()["entries"] == 3
    assert speaker.audio == {1: 2 * 6400 * 2}  # warm-up audio is never played


def test_warmed_phrase_is_replayed_from_the_cache() -> None:
    tts, speaker = FakeTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    try:
        speech.prewarm(["Sorry, I didn't catch that."])
        wait_idle(speech)
        speech.say(1, "Sorry, I didn't catch that.", cache=True)
        speech.finish(1)
        wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == ["Sorry, I didn't catch that."]  # warmed once, replayed after
    assert speech.cache.stats()["hits"] == 1
    assert speaker.audio[1] > 0


def test_a_full_queue_refuses_the_text_reports_it_and_still_ends_the_utterance() -> None:
    tts, speaker = GatedTts(), RecordingSpeaker()
    posted: list[Any] = []
    speech = SpeechOutput(tts, speaker, posted.append, max_live_jobs=4)
    try:
        assert speech.say(1, "One.")
        assert tts.started.wait(5)
        assert speech.say(2, "Two. Three. Four.")  # three pieces: the queue is full now
        assert not speech.say(3, "Five. Six.")  # refused whole
        speech.finish(3)  # the end of an utterance is always accepted
        tts.gate.set()
        wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == ["One.", "Two.", "Three.", "Four."]
    assert 3 in speaker.finished
    assert speech.refused == 1
    errors = [m for m in posted if isinstance(m, Notice) and m.kind == "error"]
    assert errors and errors[0].fields["message"] == "speech queue full"


def test_cancel_drops_the_queue_and_busy_ends() -> None:
    tts, speaker = GatedTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    try:
        speech.say(1, "One. Two. Three. Four.")
        assert tts.started.wait(5)
        speech.cancel()
        assert speech.queued() == 0
        tts.gate.set()
        wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == ["One."]
    assert speaker.audio == {}  # the piece under way was cut, not played
    assert speaker.stops == 1


def test_long_say_is_spoken_whole_by_the_real_voice() -> None:
    """Piper itself, on a long text with no punctuation: every piece is synthesized, and
    the audio lasts as long as its words take (none lost at a cut)."""
    from firmware_app.speak.piper import PiperSynthesizer

    tts = PiperSynthesizer(TtsSettings())
    speaker = RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    try:
        speech.say(1, WORDS)
        speech.finish(1)
        wait_idle(speech, 120)
    finally:
        speech.close()
    seconds = speaker.audio[1] / 2 / tts.sample_rate
    words = len(WORDS.split())
    assert words * 0.2 < seconds < words * 0.6, seconds
    assert speaker.finished == [1]


def test_phonemes_are_cut_at_word_boundaries() -> None:
    phonemes = list("aa bbb cc dddd e ff")
    runs = split_phonemes(phonemes, 8)
    assert all(len(r) <= 8 for r in runs)
    assert ["".join(r) for r in runs] == ["aa bbb", "cc dddd", "e ff"]
    assert split_phonemes(list("abcdefghij"), 4) == [list("abcd"), list("efgh"), list("ij")]


def test_the_first_run_may_be_shorter() -> None:
    runs = split_phonemes(list("aa bbb cc dddd e ff"), 8, first=4)
    assert ["".join(r) for r in runs] == ["aa", "bbb cc", "dddd e ff"]  # no run for "ff"
    assert split_phonemes(list("aa bb"), 8, first=8) == [list("aa bb")]  # short: one run
    # the first run keeps its limit (the wait before the first sound), tail or not
    assert ["".join(r) for r in split_phonemes(list("aaa bbb c"), 8, first=6)] == ["aaa", "bbb c"]


def test_a_short_tail_goes_with_the_run_before_it() -> None:
    """Up to a quarter over the limit, rather than a run of a few phonemes of its own."""
    assert ["".join(r) for r in split_phonemes(list("aaaa bbb c"), 8)] == ["aaaa bbb c"]
    assert ["".join(r) for r in split_phonemes(list("aaaa bbb ccc"), 8)] == ["aaaa", "bbb ccc"]


class ManualTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_synthesis_keeps_at_most_max_ahead_of_a_real_time_speaker() -> None:
    """FakeTts makes 0.4 s of audio per word: eleven one-word sentences are 4.4 s. With 1 s
    allowed ahead, synthesis stops after the audio that fills it, and goes on as the clock
    (playback) advances."""
    tts, speaker, clock = FakeTts(), RecordingSpeaker(), ManualTime()
    speech = SpeechOutput(tts, speaker, lambda _m: None, max_ahead_s=1.0, clock=clock)
    try:
        speech.say(1, " ".join(f"Word{i}." for i in range(11)))
        speech.finish(1)
        deadline = time.monotonic() + 5
        while len(tts.said) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(tts.said) == 3  # 1.2 s of audio handed over: more than 1 s ahead
        clock.now += 1.1
        deadline = time.monotonic() + 5
        while len(tts.said) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(tts.said) == 6
        speech.cancel()  # a cut ends the wait at once
        wait_idle(speech, 5)
    finally:
        speech.close()
    assert len(tts.said) == 6


class GatedPiper:
    """The real voice, held after the first run of each text until it is interrupted (or
    5 s pass): a close that aborts the warm-up lets it go at once, one that waits for the
    warm-up to finish does not."""

    def __init__(self) -> None:
        from firmware_app.speak.piper import PiperSynthesizer

        self.voice = PiperSynthesizer(TtsSettings(), steady=True, max_phonemes=8)
        self.sample_rate = self.voice.sample_rate
        self.started = threading.Event()
        self.gate = threading.Event()

    def synthesize(self, text: str) -> Iterator[bytes]:
        for i, pcm in enumerate(self.voice.synthesize(text)):
            if i == 0:
                self.started.set()
                self.gate.wait(5)
            yield pcm

    def interrupt(self) -> None:
        self.voice.interrupt()
        self.gate.set()

    def resume(self) -> None:
        self.voice.resume()


def test_closing_aborts_the_warm_up_under_way() -> None:
    tts, speaker = GatedPiper(), RecordingSpeaker()
    posted: list[Any] = []
    speech = SpeechOutput(tts, speaker, posted.append)
    speech.prewarm(["Install a speech model with the models command."])
    assert tts.started.wait(30)  # the warm-up is in its first run
    speech.close()
    assert not speech._thread.is_alive()
    assert speech.cache.stats()["entries"] == 0  # aborted, not finished and kept
    assert posted == []  # an abort on the way out is no failure
    assert speaker.audio == {}


def test_without_warm_up_phrases_are_cached_when_first_spoken() -> None:
    tts, speaker = FakeTts(), RecordingSpeaker()
    speech = SpeechOutput(tts, speaker, lambda _m: None, warm_up=False)
    try:
        speech.prewarm(["Sorry, I didn't catch that."])
        assert not speech.warming()
        for utterance in (1, 2):
            speech.say(utterance, "Sorry, I didn't catch that.", cache=True)
            speech.finish(utterance)
            wait_idle(speech)
    finally:
        speech.close()
    assert tts.said == ["Sorry, I didn't catch that."]  # synthesized once, when first said
    assert speech.cache.stats()["misses"] == 1 and speech.cache.stats()["hits"] == 1
    assert speaker.audio[1] == speaker.audio[2] > 0
