"""English end to end on real speech: the Piper test voice through ``simulate`` with the
real openWakeWord, Silero, speech-to-phrase (pocketsphinx grammar from the templates),
intents and Piper; the reply is checked in the event log and in OUT.wav."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audio_helpers import conversation, speech, speech_spans, write

from firmware_app.app import simulation
from firmware_app.audio.wavio import read_wav
from firmware_app.config.settings import CustomIntent, Settings
from firmware_app.core.events import read_events
from firmware_app.recognize.phrases import OUT_OF_GRAMMAR_REPLY, PhraseTranscriber
from firmware_app.recognize.stt import phrase_grammar_sources

pytestmark = pytest.mark.slow

LIGHT = CustomIntent(
    name="light",
    sentences=["turn (on|off) the {room} light", "switch the {room} light (on|off)"],
    slots={"room": ["kitchen", "bedroom", "living room"]},
    topic="home/{room}/light/set",
    payload="{group1}",
    reply="Okay, {room} light {group1}.",
)


@dataclass
class Run:
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    by: dict[str, dict[str, Any]]  # the last event of each type
    out: Path


@pytest.fixture(scope="module")
def phrases(tmp_path_factory):
    """One recognizer for the module: its grammar holds the custom light sentences."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), intents=[LIGHT])
    return PhraseTranscriber(phrase_grammar_sources(settings))


@pytest.fixture
def english(tmp_path, engines_with, phrases):
    settings = Settings(data_dir=tmp_path / "data", intents=[LIGHT])

    def run(*parts, noise_db: float | None = None):
        audio = conversation(*parts)
        if noise_db is not None:  # white noise at this level below the speech's RMS
            voice = np.concatenate([speech(p) for p in parts if isinstance(p, str)])
            rms = np.sqrt(np.mean(voice.astype(np.float64) ** 2))
            noise = np.random.default_rng(7).normal(0, rms * 10 ** (-noise_db / 20), len(audio))
            audio = np.clip(audio + noise, -32768, 32767).astype(np.int16)
        wav = write(tmp_path / "in.wav", audio)
        out, events = tmp_path / "out.wav", tmp_path / "events.jsonl"
        summary = simulation.simulate(
            settings, wav, out, events, engines=engines_with(phrases), start_epoch=1.8e9
        )
        got = read_events(events)
        return Run(summary, got, {e["type"]: e for e in got}, out)

    return run


def assert_spoken(run: Run) -> None:
    """The reply is really in OUT.wav where the event log says it starts."""
    spans = speech_spans(read_wav(run.out, 22050), 22050)
    assert any(abs(s[0] - run.by["speak_start"]["t"]) < 0.3 for s in spans), spans


def test_wake_word_and_request_in_one_breath(english):
    run = english(1.0, "Hey Jarvis what time is it", 2.0)
    assert run.by["wake"]["model"] == "hey_jarvis"
    assert run.by["transcript"]["text"] == "what time is it"  # the first word reached it
    assert run.by["intent"]["name"] == "time"
    assert run.by["reply"]["source"] == "local" and run.by["reply"]["text"].startswith("It's ")
    assert_spoken(run)


def test_wake_word_pause_then_timer(english):
    run = english(1.0, "Hey Jarvis.", 0.8, "Set a timer for five minutes.", 2.0)
    assert "timer for five minutes" in run.by["transcript"]["text"]
    assert run.by["intent"] == {**run.by["intent"], "name": "timer_set"}
    assert run.by["intent"]["slots"] == {"seconds": 300, "name": None}
    assert run.summary["replies"][0] == "Timer set for 5 minutes."
    assert_spoken(run)


def test_custom_sentence(english):
    run = english(1.0, "Hey Jarvis.", 0.8, "Turn on the kitchen light.", 2.0)
    assert run.by["transcript"]["text"] == "turn on the kitchen light"
    assert run.by["intent"]["name"] == "light"
    assert run.by["intent"]["slots"] == {"group1": "on", "room": "kitchen"}
    assert_spoken(run)


def test_question_outside_the_grammar_is_not_forced_into_a_command(english, phrases):
    run = english(1.0, "Hey Jarvis.", 0.8, "Who was the first president of France?", 2.0)
    assert "intent" not in run.by
    assert phrases.out_of_grammar and phrases.last_text
    assert run.summary["replies"] == [OUT_OF_GRAMMAR_REPLY]
    assert_spoken(run)


def test_request_in_noise(english):
    run = english(1.0, "Hey Jarvis.", 0.8, "Set a pasta timer for ten minutes.", 2.0, noise_db=25)
    assert run.by["intent"]["name"] == "timer_set"
    assert run.by["intent"]["slots"] == {"seconds": 600, "name": "pasta"}
    assert_spoken(run)


def test_silence_after_the_wake_word_is_not_a_command(english):
    run = english(1.0, "Hey Jarvis.", 7.0)
    assert "wake" in run.by
    assert not {"transcript", "intent", "reply"} & {e["type"] for e in run.events}


def test_which_one_is_answered_without_the_wake_word(english):
    run = english(
        1.0, "Hey Jarvis.", 0.8, "Set a pasta timer for ten minutes.", 3.0,
        "Hey Jarvis.", 0.8, "Set an egg timer for five minutes.", 3.0,
        "Hey Jarvis.", 0.8, "Cancel the timer.", 6.0,
        "The pasta one.", 3.0,
    )  # fmt: skip
    replies = run.summary["replies"]
    assert replies[2].endswith("Which one?"), replies
    assert [e["type"] for e in run.events].count("wake") == 3  # the answer needed none
    assert replies[3] == "Pasta timer cancelled.", replies
