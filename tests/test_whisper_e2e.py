"""Open speech in English end to end, all real: the Piper test voice asks a question
through ``simulate`` (openWakeWord, Silero), speech-to-phrase finds no command in it,
Whisper (tiny.en) transcribes it, the LLM on a loopback server streams the answer and
Piper speaks it; in the same configuration a spoken command is still answered locally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audio_helpers import conversation, speech_spans, write
from llm_fake_server import FakeLlm, sse
from test_llm_assistant import llm_settings

from firmware_app.app import simulation
from firmware_app.audio.wavio import read_wav
from firmware_app.config.settings import Settings
from firmware_app.core.events import read_events
from firmware_app.recognize.hybrid import HybridTranscriber
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.recognize.stt import phrase_grammar_sources
from firmware_app.recognize.whisper import WhisperTranscriber
from firmware_app.understand.intents import normalize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory, whisper_model_dir) -> HybridTranscriber:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    phrases = PhraseTranscriber(phrase_grammar_sources(settings))
    return HybridTranscriber(phrases, WhisperTranscriber(whisper_model_dir, max_request_s=15))


@pytest.fixture
def server() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    yield fake
    fake.close()


def run(tmp_path: Path, settings: Settings, engines: Any, *parts: str | float) -> dict[str, Any]:
    wav = write(tmp_path / "in.wav", conversation(*parts))
    out, events = tmp_path / "out.wav", tmp_path / "events.jsonl"
    summary = simulation.simulate(
        settings, wav, out, events, engines=engines, start_epoch=1.8e9, max_tail_s=30
    )
    got = read_events(events)
    return {
        "summary": summary,
        "events": got,
        "by": {e["type"]: e for e in got},
        "spans": speech_spans(read_wav(out, 22050), 22050),
    }


def spoken_after(result: dict[str, Any], t: float) -> float:
    """Seconds of sound in OUT.wav after ``t``."""
    return sum(end - max(start, t) for start, end in result["spans"] if end > t)


def test_a_spoken_question_is_answered_by_the_llm(tmp_path, settings, server, hybrid, engines_with):
    server.then(sse(["The sky", " looks blue", " because air", " scatters blue light."]))
    result = run(
        tmp_path,
        llm_settings(settings, server.url),
        engines_with(hybrid),
        1.0, "Hey Jarvis.", 0.8, "Why is the sky blue?", 3.0,
    )  # fmt: skip
    by = result["by"]
    assert hybrid.source == "whisper"
    assert normalize(by["transcript"]["text"]) == "why is the sky blue"
    assert "intent" not in by  # no local command was taken from it
    assert by["reply"]["source"] == "llm"
    assert by["reply"]["text"] == "The sky looks blue because air scatters blue light."
    asked = server.requests[0].body["messages"][-1]["content"]
    assert normalize(asked) == "why is the sky blue"
    assert spoken_after(result, by["speak_start"]["t"]) >= 2.0  # the answer is in OUT.wav
    assert by["speak_start"]["t"] > by["speech_end"]["t"]


def test_a_spoken_command_is_still_answered_locally(
    tmp_path, settings, server, hybrid, engines_with
):
    result = run(
        tmp_path,
        llm_settings(settings, server.url),
        engines_with(hybrid),
        1.0, "Hey Jarvis.", 0.8, "Set a timer for five minutes.", 3.0,
    )  # fmt: skip
    by = result["by"]
    assert hybrid.source == "phrases"
    assert by["intent"]["name"] == "timer_set" and by["intent"]["slots"]["seconds"] == 300
    assert by["reply"] == {**by["reply"], "source": "local", "text": "Timer set for 5 minutes."}
    assert server.requests == []  # the LLM was not asked
    assert spoken_after(result, by["speak_start"]["t"]) >= 1.0


def test_whisper_alone_answers_commands_too(
    tmp_path, settings, server, whisper_model_dir, engines_with
):
    """``engine = "whisper"``: Whisper's transcript goes to the same local intents."""
    alone = WhisperTranscriber(whisper_model_dir, max_request_s=15)
    result = run(
        tmp_path,
        llm_settings(settings, server.url),
        engines_with(alone),
        1.0, "Hey Jarvis.", 0.8, "What time is it?", 3.0,
    )  # fmt: skip
    by = result["by"]
    assert by["intent"]["name"] == "time" and by["reply"]["source"] == "local"
    assert server.requests == []
