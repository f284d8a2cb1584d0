"""Speech-to-phrase and Whisper over the same request: Whisper, where it is sure, checks
the commands speech-to-phrase heard (``recognize/hybrid.py``).

The decision is tested on the real speech-to-phrase recognizer hearing the Piper voice,
with an open recognizer that says a given transcript at a given certainty; then once with
the real Whisper tiny.en on a question speech-to-phrase takes for a timer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_helpers import conversation, silence, speech
from test_whisper import WAKE_END_S, hear, word_error_rate

from firmware_app.config.settings import Settings
from firmware_app.core.engines import SureTranscriber
from firmware_app.recognize.hybrid import SURE_LOGPROB, HybridTranscriber
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.recognize.stt import load_transcriber, phrase_grammar_sources
from firmware_app.recognize.whisper import WhisperTranscriber, request_prompt
from firmware_app.understand.actions import strip_wake_words
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin

SURE, UNSURE = -0.1, -0.6


class SureSaying:
    """An open recognizer that hears ``text`` with the mean token log-probability
    ``logprob``, and counts how often it was asked."""

    name = "whisper"
    model_dir = Path("/nowhere")

    def __init__(self, text: str, logprob: float | None) -> None:
        self.text, self.said = text, logprob
        self.logprob: float | None = None
        self.asked = 0

    def start(self) -> None:
        self.logprob = None

    def feed(self, pcm: bytes) -> None:
        pass

    def finish(self) -> str:
        self.asked += 1
        self.logprob = self.said
        return self.text


@pytest.fixture(scope="module")
def phrases() -> PhraseTranscriber:
    return PhraseTranscriber(phrase_grammar_sources(Settings()))


@pytest.fixture(scope="module")
def what_time() -> np.ndarray:
    return conversation(0.3, "What time is it?", 0.5)


def both(phrases: PhraseTranscriber, text: str, logprob: float | None) -> HybridTranscriber:
    open_ = SureSaying(text, logprob)
    assert isinstance(open_, SureTranscriber)
    return HybridTranscriber(phrases, open_, check_commands=True)


def test_a_command_stands_when_whisper_agrees_is_unsure_or_says_little(phrases, what_time):
    for said, logprob in [
        ("What time is it?", SURE),  # the same command
        ("Hey Jarvis, what time is it?", SURE),
        ("What's the date today?", UNSURE),  # another, but Whisper is unsure
        ("Can you pass me the salt and the pepper, please?", UNSURE),
        ("Tap, tap.", SURE),  # a word or two it barely heard is no sentence of its own
        ("What time is up?", SURE),  # the command with one slip of Whisper's
        ("", None),  # nothing
    ]:
        hybrid = both(phrases, said, logprob)
        assert hear(hybrid, what_time) == "what time is it", said
        assert hybrid.source == "phrases" and hybrid.vosk.asked == 1  # type: ignore[attr-defined]


def test_whisper_sure_of_another_command_or_of_other_speech_wins(phrases, what_time):
    hybrid = both(phrases, "What's the date today?", SURE)
    assert hear(hybrid, what_time) == "What's the date today?"
    assert hybrid.source == "whisper" and hybrid.near_command is not None
    assert recognize_builtin(normalize(hybrid.near_command)).name == "date"  # type: ignore[union-attr]
    hybrid = both(phrases, "Can you pass me the salt and the pepper, please?", SURE)
    assert hear(hybrid, what_time) == "Can you pass me the salt and the pepper, please?"
    assert hybrid.source == "whisper" and hybrid.near_command is None
    hybrid = both(phrases, "What's the date today?", SURE_LOGPROB)  # at the line: sure
    assert hear(hybrid, what_time) == "What's the date today?"


def test_unchecked_commands_do_not_wait_for_the_open_recognizer(phrases, what_time):
    open_ = SureSaying("What's the date today?", SURE)
    hybrid = HybridTranscriber(phrases, open_)  # check_commands off
    assert hear(hybrid, what_time) == "what time is it" and open_.asked == 0
    assert hear(hybrid, conversation(0.3, "Why is the sky blue?", 0.5)) == "What's the date today?"
    assert open_.asked == 1 and hybrid.source == "whisper"


def test_an_open_recognizer_that_cannot_say_how_sure_it_is_checks_nothing(phrases, what_time):
    class Saying(SureSaying):
        def __init__(self, text: str) -> None:
            super().__init__(text, None)
            del self.logprob

    open_ = Saying("What's the date today?")
    hybrid = HybridTranscriber(phrases, open_, check_commands=True)  # type: ignore[arg-type]
    assert not hybrid.check_commands
    assert hear(hybrid, what_time) == "what time is it" and open_.asked == 0


def test_commands_are_checked_by_default_with_whisper_beside(tmp_path, whisper_model_dir):
    beside = Settings(data_dir=tmp_path, stt={"model": whisper_model_dir})
    stt, _, active = load_transcriber(beside)
    assert isinstance(stt, HybridTranscriber) and stt.check_commands
    assert active.endswith(", checking commands")
    off = Settings(data_dir=tmp_path, stt={"model": whisper_model_dir, "check_commands": False})
    stt, _, active = load_transcriber(off)
    assert isinstance(stt, HybridTranscriber) and not stt.check_commands
    assert "checking" not in active


def test_a_question_speech_to_phrase_takes_for_a_timer_goes_to_whisper(phrases, whisper_model_dir):
    """The Piper voice asks a question after the wake phrase's end; speech-to-phrase alone
    hears a timer sentence in it. Whisper, sure of the question, overrules it."""
    whisper = WhisperTranscriber(whisper_model_dir, 15.0, prompt=request_prompt(["hey_jarvis"]))
    said = "What is the capital of Australia?"
    wake_end = speech("Hey Jarvis.")[-int(WAKE_END_S * 16000) :]
    audio = np.concatenate([wake_end, silence(0.2), speech(said), silence(0.5)])
    alone = hear(HybridTranscriber(phrases, whisper), audio)
    assert recognize_builtin(normalize(alone)) is not None, alone  # a command, wrongly
    checked = HybridTranscriber(phrases, whisper, check_commands=True)
    heard = hear(checked, audio)
    assert checked.source == "whisper" and whisper.logprob is not None
    assert word_error_rate(said, strip_wake_words(heard)) <= 0.2, heard
    assert recognize_builtin(normalize(strip_wake_words(heard))) is None
    assert checked.near_command is None
    command = hear(
        checked,
        np.concatenate(
            [wake_end, silence(0.2), speech("Set a timer for five minutes."), silence(0.5)]
        ),
    )
    got = recognize_builtin(normalize(strip_wake_words(command)))
    assert got is not None and got.name == "timer_set" and got.slots["seconds"] == 300, command


def test_whisper_is_sure_by_its_tokens_and_never_of_a_loop(whisper_model_dir):
    """How sure Whisper is: its segments' mean token log-probability, weighted by their
    tokens; a transcript that repeats itself (Whisper's compression test) is no reading
    to be sure of, however likely its tokens."""

    class Segment:
        def __init__(self, text: str, tokens: int, logprob: float, ratio: float) -> None:
            self.text, self.tokens = text, list(range(tokens))
            self.avg_logprob, self.compression_ratio = logprob, ratio

    class Model:
        def __init__(self) -> None:
            self.segments: list[Segment] = []

        def transcribe(self, *_: object, **__: object) -> tuple[list[Segment], None]:
            return self.segments, None

    whisper, model = WhisperTranscriber(whisper_model_dir, 15.0), Model()
    whisper._model = model
    samples = np.ones(16000, np.float32) * 0.1
    model.segments = [Segment("Set a timer", 3, -0.1, 1.2), Segment("for tea.", 1, -0.5, 1.1)]
    assert whisper.transcribe(samples) == "Set a timer for tea."
    assert whisper.logprob == pytest.approx(-0.2)
    model.segments = [Segment("roast, " * 40, 80, -0.05, 9.5)]
    assert whisper.transcribe(samples).startswith("roast, roast") and whisper.logprob is None
    model.segments = []
    assert whisper.transcribe(samples) == "" and whisper.logprob is None
