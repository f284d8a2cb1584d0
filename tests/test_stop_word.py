"""'Stop' without the wake word, on real pocketsphinx with Piper speech: said alone it is
heard, also over the device's own reply once the echo canceller has taken that out; inside
ordinary sentences, or as the device's own audio, it is not."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import conversation, silence, speech
from echo_support import STOP_LOOKALIKES

from firmware_app.audio.chimes import chime
from firmware_app.audio.echo import EchoPath, PlaybackReference
from firmware_app.core.messages import FRAME_SAMPLES, SAMPLE_RATE
from firmware_app.listen.echo_canceller import SpeexEchoCanceller, speex_available
from firmware_app.listen.stop_word import PocketsphinxStopSpotter

pytest.importorskip("pocketsphinx")

REPLIES = [
    "The weather today is sunny with a high of twenty two degrees and a light breeze.",
    "Tomorrow brings rain in the afternoon, so take an umbrella when you go out.",
    "I added milk, eggs and bread to your shopping list for the weekend.",
]


def stops_in(spotter: PocketsphinxStopSpotter, audio: np.ndarray) -> list[float]:
    """Times (s, end of the 80 ms frame) at which the spotter said "stop"."""
    times = []
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        if spotter.spot(audio[start : start + FRAME_SAMPLES].astype("<i2").tobytes()):
            times.append((start + FRAME_SAMPLES) / SAMPLE_RATE)
    return times


@pytest.fixture(scope="module")
def spotter() -> PocketsphinxStopSpotter:
    return PocketsphinxStopSpotter()


@pytest.mark.parametrize("text", ["Stop.", "Stop!", "stop"])
def test_stop_said_alone_is_heard_once(spotter: PocketsphinxStopSpotter, text: str) -> None:
    spotter.reset()
    word = speech(text)
    times = stops_in(spotter, conversation(0.6, text, 0.8))
    assert len(times) == 1
    end = 0.6 + len(word) / SAMPLE_RATE
    assert end < times[0] <= end + 0.6  # soon after the word: the pause is what confirms it


def test_no_stop_in_ordinary_speech(spotter: PocketsphinxStopSpotter) -> None:
    spotter.reset()
    audio = np.concatenate([np.concatenate([speech(t), silence(0.6)]) for t in STOP_LOOKALIKES])
    assert stops_in(spotter, audio) == []


def test_stop_inside_a_sentence_does_not_count(spotter: PocketsphinxStopSpotter) -> None:
    spotter.reset()
    assert stops_in(spotter, conversation(0.5, "Please stop the music now.", 0.8)) == []


def test_a_whisper_of_stop_does_not_count(spotter: PocketsphinxStopSpotter) -> None:
    """Residual echo and far-away talk are far quieter than a word said to the device."""
    spotter.reset()
    audio = conversation(0.6, "Stop.", 0.8)
    assert stops_in(spotter, (audio * 0.05).astype(np.int16)) == []


def test_reset_forgets_a_half_heard_word(spotter: PocketsphinxStopSpotter) -> None:
    spotter.reset()
    audio = conversation(0.6, "Stop.", 0.8)
    cut = int((0.6 + len(speech("Stop.")) / SAMPLE_RATE) * SAMPLE_RATE) // FRAME_SAMPLES
    stops_in(spotter, audio[: cut * FRAME_SAMPLES])
    spotter.reset()
    assert stops_in(spotter, silence(1.0)) == []


@pytest.mark.skipif(not speex_available(), reason="libspeexdsp1 is not installed")
@pytest.mark.parametrize("gain_db", [-12.0, -6.0])
def test_stop_over_the_devices_own_reply(gain_db: float) -> None:
    """One canceller runs throughout, as on a device: it first hears a reply, chimes and a
    timer ring with nobody talking (no stop may come of them), then "stop" is said over
    each of the next replies."""
    ding = PlaybackReference()
    ding.place(0.0, chime("timer", 22050) * 3, 22050)
    own = np.concatenate([speech(REPLIES[0]), silence(0.5), ding.samples(), silence(0.5)])
    parts, user_at = [own], []
    for i, text in enumerate(REPLIES):
        user_at.append(sum(len(p) for p in parts) / SAMPLE_RATE + 1.0 + 0.4 * i)
        parts += [speech(text), silence(0.8)]
    playback = np.concatenate(parts)
    timeline = PlaybackReference()
    timeline.place(0.0, playback.tobytes(), SAMPLE_RATE)
    seconds = len(playback) / SAMPLE_RATE
    mic = EchoPath(gain_db, 20.0).echo(timeline, seconds, len(playback))
    said = speech("Stop.").astype(np.float32)
    for at in user_at:
        start = int(at * SAMPLE_RATE)
        mic[start : start + len(said)] += said
    mic16 = np.clip(np.round(mic), -32768, 32767).astype(np.int16)
    aec, spotter = SpeexEchoCanceller(), PocketsphinxStopSpotter()
    heard: list[float] = []
    for start in range(0, len(mic16) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        clean = aec.cancel(
            mic16[start : start + FRAME_SAMPLES].tobytes(),
            playback[start : start + FRAME_SAMPLES].tobytes(),
        )
        if spotter.spot(clean):
            heard.append((start + FRAME_SAMPLES) / SAMPLE_RATE)
    own_end = len(own) / SAMPLE_RATE
    assert [t for t in heard if t < own_end] == []  # its own audio never stops it
    matched = [any(at < t <= at + len(said) / SAMPLE_RATE + 0.8 for t in heard) for at in user_at]
    assert all(matched), (heard, user_at)
    assert len(heard) == len(user_at)


WHISPER_VOICES = [("piper", (1.0, 0.0)), ("espeak", ("en-us", 175, 50)), ("flite", ("kal16",))]


@pytest.fixture(scope="module")
def whisper_spotter(whisper_model_dir) -> PocketsphinxStopSpotter:
    from firmware_app.recognize.whisper import WhisperTranscriber

    whisper = WhisperTranscriber(whisper_model_dir, max_request_s=5.0, threads=1)
    return PocketsphinxStopSpotter(second_look=whisper.transcribe)


@pytest.mark.parametrize("engine,args", WHISPER_VOICES)
def test_whisper_second_look_hears_stop_and_not_its_near_misses(
    whisper_spotter: PocketsphinxStopSpotter, engine: str, args: tuple[object, ...]
) -> None:
    """With Whisper judging each candidate word, "stop" said alone is still heard, and
    the short words that merely contain "top" are not taken for it, in the voices whose
    "Top." or "It stopped." the tiny grammar takes for "stop"."""
    import speech_corpus

    voice = speech_corpus.Voice(engine, engine, args)
    if not speech_corpus.available(voice):
        pytest.skip(f"{engine} is not installed (scripts/setup.sh installs it)")

    def said_alone(text: str) -> np.ndarray:
        word = speech_corpus.render(text, voice)
        return np.concatenate([silence(1.0), word, silence(1.5)])

    whisper_spotter.reset()
    assert len(stops_in(whisper_spotter, said_alone("Stop."))) == 1
    for text in ("Top.", "Non-stop.", "It stopped."):
        whisper_spotter.reset()
        assert stops_in(whisper_spotter, said_alone(text)) == [], text


def test_the_stop_word_asks_whisper_when_the_recognizer_holds_it(whisper_model_dir) -> None:
    """The recognizer's own Whisper model makes the second look, whether it runs alone or
    beside speech-to-phrase; without one the tiny grammar does."""
    from firmware_app.app.loading import whisper_look
    from firmware_app.config.settings import Settings
    from firmware_app.recognize.hybrid import HybridTranscriber
    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources
    from firmware_app.recognize.whisper import WhisperTranscriber

    whisper = WhisperTranscriber(whisper_model_dir, max_request_s=5.0, threads=1)
    phrases = PhraseTranscriber(phrase_grammar_sources(Settings()))
    assert whisper_look(whisper) == whisper.transcribe
    assert whisper_look(HybridTranscriber(phrases, whisper)) == whisper.transcribe
    assert whisper_look(phrases) is None
    assert whisper_look(None) is None
