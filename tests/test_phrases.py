"""Speech-to-phrase: the grammar compiled from the templates, and the real pocketsphinx
recognizer on Piper speech (alone, and beside the real Vosk adapter)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import conversation

from firmware_app.config.settings import CustomIntent, Settings
from firmware_app.core.events import Event
from firmware_app.listen.hearing import command_progress
from firmware_app.recognize.grammar import GARBAGE_PREFIX, build_grammar
from firmware_app.recognize.hybrid import HybridTranscriber
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.recognize.pronunciations import pronunciations
from firmware_app.recognize.stt import VoskTranscriber, load_transcriber, phrase_grammar_sources
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import BUILTIN, recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.intents.whole import command_reader

KNOWN = pronunciations().__contains__


def fsg(jsgf: str, tmp_path: Path):
    """The grammar as pocketsphinx compiles it, to ask which word strings it accepts."""
    from pocketsphinx import Jsgf, LogMath

    path = tmp_path / "g.jsgf"
    path.write_text(jsgf)
    grammar = Jsgf(str(path))
    return grammar.build_fsg(grammar.get_rule("commands.utterance"), LogMath(), 7.5)


def sampled_builtin_sentences() -> list[str]:
    from hassil.intents import TextSlotList
    from hassil.sample import sample_intents

    lists = {
        "duration": TextSlotList.from_strings(["five minutes", "an hour and a half"]),
        "name": TextSlotList.from_strings(["pasta"]),
    }
    samples = sample_intents(
        BUILTIN, slot_lists=lists, language="en", exclude_sentences_with_wildcards=False
    )
    # digits and "%" are typed forms; a recognizer spells numbers out
    texts = [t for _, t in samples if not any(c.isdigit() or c == "%" for c in t)]
    return texts[:: max(1, len(texts) // 1500)]


def test_every_template_sentence_is_in_the_grammar(tmp_path):
    grammar = build_grammar([BUILTIN], KNOWN, {"name": ["pasta"]})  # a pasta timer runs
    model = fsg(grammar.jsgf, tmp_path)
    texts = sampled_builtin_sentences()
    assert len(texts) > 500
    refused = []
    for text in texts:
        words = normalize(text).split()
        if any(w in grammar.missing for w in words):
            continue
        if not model.accept(" ".join(words)):
            refused.append(text)
        assert recognize_builtin(" ".join(words)) is not None, text
    assert refused == []


def test_a_name_refers_to_a_timer_there_is_except_for_a_new_one(tmp_path):
    none = fsg(build_grammar([BUILTIN], KNOWN).jsgf, tmp_path)
    assert none.accept("set a soup timer for five minutes")  # a common name, for a new timer
    assert not none.accept("when does the soup timer go off")  # no soup timer to ask after
    assert not none.accept("cancel the timer for tea")
    assert none.accept("cancel the timer") and none.accept("how much time is left")
    held = fsg(build_grammar([BUILTIN], KNOWN, {"name": ["soup"]}).jsgf, tmp_path)
    assert held.accept("when does the soup timer go off")
    assert held.accept("set a pizza timer for five minutes")
    assert not held.accept("cancel the timer for tea")


def test_other_speech_is_only_accepted_through_the_garbage_loop(tmp_path):
    model = fsg(build_grammar([BUILTIN], KNOWN).jsgf, tmp_path)
    assert not model.accept("who was the first president")
    question = ["who", "was", "the", "first", "president"]
    assert model.accept(" ".join(GARBAGE_PREFIX + w for w in question))
    # the end of the wake phrase may come first
    assert model.accept("jarvis what time is it")
    assert model.accept(f"{GARBAGE_PREFIX}us what time is it")


def test_custom_sentences_and_timer_names_enter_the_grammar(tmp_path):
    lights = CustomIntents(
        [
            CustomIntent(
                name="light",
                sentences=["turn (on|off) the {room} light", "zorblax the {room}"],
                slots={"room": ["kitchen", "living room"]},
                topic="t",
            )
        ]
    )
    grammar = build_grammar([BUILTIN, lights.intents], KNOWN, {"name": ["grandma"]})
    model = fsg(grammar.jsgf, tmp_path)
    assert model.accept("turn off the living room light")
    assert not model.accept("turn off the garage light")
    assert model.accept("cancel the grandma timer")
    # a bare name answers "Which one?": only for timers in use, not every common name
    assert model.accept("grandma") and model.accept("grandma one")
    assert not model.accept("bath")
    assert model.accept("set a timer for twenty five minutes")
    # a word the dictionary lacks: that sentence is left out, and said so, never guessed
    assert grammar.missing == {"zorblax"}
    assert "zorblax" not in grammar.jsgf


# --- the real recognizer on Piper speech


@pytest.fixture(scope="module")
def phrases():
    return PhraseTranscriber(phrase_grammar_sources(Settings()))


def hear(stt, text: str) -> str:
    audio = conversation(0.3, text, 0.5).tobytes()
    stt.start()
    for i in range(0, len(audio), 2560):
        stt.feed(audio[i : i + 2560])
    return stt.finish()


COMMANDS = [
    ("What time is it?", "what time is it"),
    ("Set a timer for ten minutes.", "set a timer for ten minutes"),
    ("Cancel all timers.", "cancel all timers"),
    ("How much time is left on the pasta timer?", "how much time is left on the pasta timer"),
    ("What day of the week is it?", "what day of the week is it"),
    ("Make it louder.", "make it louder"),
    ("Set the volume to forty percent.", "set the volume to forty percent"),
    ("Repeat that.", "repeat that"),
]


class HeardSoFar:
    """The real recognizer's grammar, with the words it has heard so far given."""

    def __init__(self, stt: PhraseTranscriber, text: str | None) -> None:
        self.stt, self.text = stt, text

    def partial_command(self) -> str | None:
        return self.text

    def endings(self, command: str):
        return self.stt.endings(command)


@pytest.mark.parametrize(
    ("heard", "progress"),
    [
        ("what time is it", "complete"),  # [right now] [please]: still the time
        ("tell me the time please", "complete"),  # nothing may follow
        ("delete all my timers", "complete"),
        ("set the volume to thirty percent", "complete"),
        ("stop", "done"),  # "stop the pasta timer"
        ("cancel the timer", "complete"),  # "... named pasta" only while a pasta timer runs
        ("turn the volume up", "done"),  # "... to the maximum"
        ("set a timer for five minutes", "done"),  # "... and thirty seconds", "... called tea"
        ("set a timer for five", "unfinished"),
        ("", "unfinished"),  # only the wake phrase's end, or other speech from the start
        (None, "unfinished"),  # a command's start, then other speech: a misheard start?
    ],
)
def test_a_command_nothing_could_change_is_complete(phrases, heard, progress):
    progress_of = command_progress(HeardSoFar(phrases, heard), command_reader(Settings().intents))
    first = progress_of()  # the first frame that holds it: not confident yet
    assert first == ("done" if progress == "complete" else progress)
    assert progress_of() == progress


def test_the_best_path_so_far_is_judged_while_listening(phrases):
    reader = command_reader(Settings().intents)
    judged = {}
    for text in ("What time is it?", "Set a timer for ten minutes."):
        audio = conversation(0.3, text, 0.3).tobytes()
        phrases.start()
        for i in range(0, len(audio), 2560):
            phrases.feed(audio[i : i + 2560])
        progress = command_progress(phrases, reader)
        progress()
        judged[text] = progress()  # held on a second frame
        phrases.finish()
    assert judged == {"What time is it?": "complete", "Set a timer for ten minutes.": "done"}


@pytest.mark.slow
def test_commands_are_heard_exactly(phrases):
    heard = {text: hear(phrases, text) for text, _ in COMMANDS}
    exact = [text for text, want in COMMANDS if heard[text] == want]
    assert len(exact) >= 7, heard
    assert all(recognize_builtin(h) is not None for h in heard.values() if h), heard
    assert phrases.finish_ms < 100


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "Who was the first president of France?",
        "Tell me a joke about the moon.",
        "Why is the sky blue?",
    ],
)
def test_questions_are_out_of_grammar(phrases, question):
    assert hear(phrases, question) == ""
    assert phrases.out_of_grammar and phrases.last_text


@pytest.mark.slow
def test_silence_is_nothing_not_out_of_grammar(phrases):
    stt = phrases
    stt.start()
    stt.feed(np.zeros(16000, dtype=np.int16).tobytes())
    assert stt.finish() == "" and not stt.out_of_grammar


@pytest.mark.slow
def test_a_new_timer_name_rebuilds_the_grammar_once(phrases):
    # the packaged dictionary is let go once the decoder holds its words...
    assert pronunciations.cache_info().currsize == 0
    before = phrases.grammar
    phrases.start()
    phrases.finish()
    assert phrases.grammar is before  # nothing changed: no rebuild per request
    # the assistant's event bus tells it about a timer with a new name
    phrases.observe(Event("timer", 0.0, 0.0, {"action": "set", "name": "grandma"}))
    assert hear(phrases, "Cancel the grandma timer.") == "cancel the grandma timer"
    assert phrases.grammar is not before and "grandma" in phrases.grammar.words
    assert pronunciations.cache_info().currsize == 0  # ...and again after a rebuild
    again = phrases.grammar
    phrases.hold_timers({"t1": "grandma"})
    hear(phrases, "Stop!")
    assert phrases.grammar is again


def test_a_new_name_is_compiled_while_the_reply_plays_not_when_the_next_request_starts():
    built_on: list[tuple[str, list[str]]] = []
    base = phrase_grammar_sources(Settings())

    def sources(names):
        built_on.append((threading.current_thread().name, list(names)))
        return base(names)

    stt = PhraseTranscriber(sources)
    stt.observe(Event("timer", 0.0, 0.0, {"action": "set", "id": "t1", "name": "grandma"}))
    for _ in range(1000):  # the reply would be playing now
        if not any(t.name == "grammar" for t in threading.enumerate()):
            break
        time.sleep(0.01)
    stt.start()  # the next request: the compiled grammar is only handed to the decoder
    stt.finish()
    assert "grandma" in stt.grammar.words
    assert [on for on, names in built_on if names == ["grandma"]] == ["grammar"]
    stt.rebuild()  # what it is built from changed: compiled afresh, on the caller's thread
    assert built_on[-1] == (threading.current_thread().name, ["grandma"])


@pytest.mark.slow
def test_hybrid_takes_commands_from_phrases_and_the_rest_from_vosk(phrases, ko_model_dir):
    vosk = VoskTranscriber(ko_model_dir)  # a real model; Korean is what can be installed here
    both = HybridTranscriber(phrases, vosk)
    assert hear(both, "What time is it?") == "what time is it" and both.source == "phrases"
    other = hear(both, "Who was the first president of France?")
    assert both.source == "vosk" and not both.out_of_grammar
    assert other and other != "what time is it"  # Vosk's own (Korean-model) transcript


def test_engine_choice(tmp_path, ko_model_dir):
    none = Settings(data_dir=tmp_path)
    stt, problem, active = load_transcriber(none)
    assert isinstance(stt, PhraseTranscriber) and problem is None
    assert active.startswith("speech-to-phrase (commands only")
    vosk_only = Settings(data_dir=tmp_path, stt={"engine": "vosk"})
    stt, problem, active = load_transcriber(vosk_only)
    assert stt is None and "models pull" in (problem or "") and active.startswith("none")
    with_model = Settings(data_dir=tmp_path, stt={"model": ko_model_dir})
    stt, _, active = load_transcriber(with_model)
    assert isinstance(stt, HybridTranscriber) and active.startswith("speech-to-phrase + vosk")
    only = Settings(data_dir=tmp_path, stt={"model": ko_model_dir, "engine": "phrases"})
    assert isinstance(load_transcriber(only)[0], PhraseTranscriber)


def test_the_dictionary_is_searched_in_place_like_the_file_reads():
    """Every pronunciation the binary search finds is the file's, alternates in order, for
    a spread of words across the file (first and last included)."""
    from firmware_app.recognize.pronunciations import model_dir

    expected: dict[str, list[str]] = {}
    path = model_dir() / "cmudict-en-us.dict"
    for line in path.read_text(encoding="utf-8").splitlines():
        word, phones = line.split(" ", 1)
        expected.setdefault(word.split("(", 1)[0], []).append(phones.strip())
    words = sorted(expected)
    sample = [*words[:50], *words[::997], *words[-50:], "read", "live", "the", "a"]
    dictionary = pronunciations()
    for word in sample:
        assert dictionary.phones(word) == expected[word], word
    for missing in ["", "zzzzqq", "readd", "a(2)", "ça"]:
        assert missing not in dictionary
    assert len(dictionary) == sum(len(v) for v in expected.values())


def test_recognizers_need_no_writable_disk(monkeypatch):
    """A full or read-only disk at start must not take speech recognition away: the
    decoders' dictionaries are built in memory."""
    import tempfile

    from firmware_app.listen.stop_word import PocketsphinxStopSpotter
    from firmware_app.recognize.pronunciations import decoder, entries

    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/ttbt5-no-tmp")
    assert decoder(entries(["what", "time"])).lookup_word("time") == "T AY M"
    assert PocketsphinxStopSpotter().spot(bytes(3200)) is False
