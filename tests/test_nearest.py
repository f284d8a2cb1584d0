"""An open transcript one slip away from a command is taken for it; anything else is not.

The transcripts are Whisper tiny.en's on the speech corpus (scripts/bench_speech.py
--open-speech whisper), on the real grammar's word graph.
"""

from __future__ import annotations

import pytest
from fakes import SILENT, SPEECH, WAKE, Rig, ScriptedStt

from firmware_app.config.settings import Settings
from firmware_app.recognize.fsg import word_graph
from firmware_app.recognize.hybrid import HybridTranscriber
from firmware_app.recognize.nearest import nearest, spoken
from firmware_app.recognize.phrases import COMMAND_BODY, PhraseTranscriber
from firmware_app.recognize.stt import phrase_grammar_sources
from firmware_app.recognize.vocabulary_en import COMMON_TIMER_NAMES


@pytest.fixture(scope="module")
def graph():
    return word_graph(phrase_grammar_sources(Settings())(["pasta"]).jsgf, COMMAND_BODY)


@pytest.mark.parametrize(
    ("heard", "command"),
    [
        # the wake phrase's end heard as a word or two before the command
        ("Notice how much time is left on the timer.", "how much time is left on the timer"),
        ("to set a timer for five minutes.", "set a timer for five minutes"),
        ("I said set a timer for five minutes", "set a timer for five minutes"),
        # one word spelt like the sentence's
        ("cancelled the timer.", "cancel the timer"),
        ("How long until the pasta timer go off?", "how long until the pasta timer goes off"),
        ("set a time for five minutes", "set a timer for five minutes"),
        # digits as speech-to-phrase says them
        ("Set a timer for 20 seconds.", "set a timer for twenty seconds"),
    ],
)
def test_a_command_with_one_slip_is_found(graph, heard, command):
    assert nearest(graph, heard, COMMON_TIMER_NAMES | {"pasta"}) == command


@pytest.mark.parametrize(
    "heard",
    [
        "What is the capital of Australia?",
        "When does the supermarket close?",
        "what time is it in Tokyo",  # a command and more: a question for the online model
        "Can you tell me a joke?",
        "What day?",  # too little of "what day is it"
        "Tell me.",
        "Set a timer for it.",
        "set a timer for fourty minutes",  # a number is never guessed from its spelling
        "set our past timer for 10 minutes.",  # nor a timer name
        "This is what's related today.",
    ],
)
def test_anything_further_is_no_command(graph, heard):
    assert nearest(graph, heard, COMMON_TIMER_NAMES | {"pasta"}) is None


def test_a_transcript_is_read_in_speech_to_phrase_words():
    assert spoken("Set the volume to 30%.") == ["set", "the", "volume", "to", "thirty", "percent"]
    assert spoken("A 45-second timer") == ["a", "forty", "five", "second", "timer"]


class OpenSaying:
    """An open recognizer that heard ``text``: what Whisper would hand over."""

    name = "whisper"
    model_dir = None

    def __init__(self, text: str) -> None:
        self.text = text

    def start(self) -> None:
        pass

    def feed(self, pcm: bytes) -> None:
        pass

    def finish(self) -> str:
        return self.text


def test_whisper_beside_speech_to_phrase_hands_over_the_near_command():
    phrases = PhraseTranscriber(phrase_grammar_sources(Settings()))
    hybrid = HybridTranscriber(phrases, OpenSaying("Cancelled the timer."))  # type: ignore[arg-type]
    hybrid.start()
    hybrid.feed(bytes(3200))  # silence: no command for speech-to-phrase
    assert hybrid.finish() == "Cancelled the timer."
    assert hybrid.near_command == "cancel the timer"
    hybrid.vosk = OpenSaying("What is the capital of Australia?")  # type: ignore[assignment]
    hybrid.start()
    hybrid.feed(bytes(3200))
    hybrid.finish()
    assert hybrid.near_command is None


class NearStt(ScriptedStt):
    """Speech-to-phrase heard no command; the open recognizer beside it heard one slip."""

    out_of_grammar = False

    def __init__(self, text: str, near: str) -> None:
        super().__init__(text)
        self.near_command: str | None = near

    def observe(self, event: object) -> None:
        pass

    def hold_timers(self, timers: dict[str, str | None]) -> None:
        pass


def test_the_assistant_carries_out_the_near_command(settings):
    rig = Rig(settings, stt=NearStt("Notice what time is it.", "what time is it"))
    rig.feed(WAKE)
    rig.feed(SPEECH, 1.0)
    rig.feed(SILENT, 1.0)
    rig.until_idle()
    assert rig.of("transcript")[0].fields == {"text": "Notice what time is it."}
    assert rig.of("intent")[0].fields == {"name": "time", "slots": {}}
    assert rig.of("reply")[0].fields["source"] == "local"
    rig.close()
