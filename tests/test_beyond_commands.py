"""A request that is no command, with nothing here to answer it: the reply is short
(under four seconds as the speaker plays it), says what open questions need in this
configuration (a speech model, an LLM, or both), and is the same typed (``ttbt5 ask``)
as spoken (``simulate`` with the real wake word, VAD, recognizers and Piper)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from audio_helpers import conversation, speech_spans, write
from llm_fake_server import FakeLlm
from test_cli import ttbt5
from test_llm_assistant import llm_settings

from firmware_app.app import simulation
from firmware_app.app.loading import NoVad, NoWake
from firmware_app.audio.wavio import read_wav
from firmware_app.config.settings import Settings
from firmware_app.recognize.hybrid import HybridTranscriber
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.recognize.stt import phrase_grammar_sources
from firmware_app.recognize.whisper import WhisperTranscriber
from firmware_app.understand.actions import UNKNOWN, beyond_commands

pytestmark = pytest.mark.slow
QUESTION = "Who was the first president of France?"


@pytest.fixture(scope="module")
def phrases(tmp_path_factory) -> PhraseTranscriber:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return PhraseTranscriber(phrase_grammar_sources(settings))


def spoken_reply(tmp_path: Path, settings: Settings, engines: Any) -> list[str]:
    wav = write(tmp_path / "in.wav", conversation(1.0, "Hey Jarvis.", 0.8, QUESTION, 3.0))
    summary = simulation.simulate(settings, wav, engines=engines, start_epoch=1.8e9)
    return summary["replies"]


def typed_reply(settings_env: dict[str, str]) -> str:
    result = ttbt5("ask", "--local", "--quiet", QUESTION, env=settings_env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(("open_speech", "llm"), [(False, False), (False, True), (True, False)])
def test_the_reply_names_what_is_missing_and_is_short(
    open_speech, llm, settings, real_engines, tmp_path
):
    text = beyond_commands(open_speech, llm)
    assert ("speech model" in text) != open_speech and ("LLM" in text) != llm
    out = tmp_path / "reply.wav"
    silent = replace(real_engines, wake=NoWake(), vad=NoVad(), stt=None)
    simulation.say(settings, text, out, engines=silent)
    spans = speech_spans(read_wav(out, 22050), 22050)
    assert spans and spans[-1][1] - spans[0][0] <= 4.0, spans
    assert beyond_commands(True, True) == UNKNOWN  # both there: the LLM answers instead


def test_no_model_no_llm_spoken_and_typed_alike(tmp_path, settings, phrases, engines_with):
    spoken = spoken_reply(tmp_path, settings, engines_with(phrases))
    expected = beyond_commands(open_speech=False, llm=False)
    assert spoken == [expected]
    assert typed_reply({"TTBT5_DATA_DIR": str(settings.data_dir)}) == expected


def test_an_llm_but_no_speech_model(tmp_path, settings, phrases, engines_with):
    server = FakeLlm()
    try:
        spoken = spoken_reply(tmp_path, llm_settings(settings, server.url), engines_with(phrases))
        assert spoken == [beyond_commands(open_speech=False, llm=True)]
        assert server.requests == []  # the question never had words to send
    finally:
        server.close()


def test_whisper_but_no_llm_spoken_and_typed_alike(
    tmp_path, settings, phrases, engines_with, whisper_model_dir
):
    configured = settings.model_copy(
        update={"stt": settings.stt.model_copy(update={"model": whisper_model_dir})}
    )
    hybrid = HybridTranscriber(phrases, WhisperTranscriber(whisper_model_dir, 15))
    spoken = spoken_reply(tmp_path, configured, engines_with(hybrid))
    expected = beyond_commands(open_speech=True, llm=False)
    assert spoken == [expected]
    env = {"TTBT5_DATA_DIR": str(settings.data_dir), "TTBT5_STT__MODEL": str(whisper_model_dir)}
    assert typed_reply(env) == expected
