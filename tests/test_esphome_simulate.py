"""The whole speaker as a Home Assistant satellite, on the real engines: a recording
says "Hey Jarvis, what time is it?", openWakeWord wakes, the request streams to Home
Assistant's client after the wake word, Silero ends it with ``end=True``, the ``TTS_END``
URL served from 127.0.0.1 is fetched and what it holds is what the speaker plays."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from audio_helpers import conversation, speech_spans, write
from esphome_support import FakeHome, WavServer, tone_wav
from fakes import ScriptedStt

from firmware_app.app import simulation
from firmware_app.audio.wavio import read_wav
from firmware_app.config.settings import Settings
from firmware_app.core.events import Event, read_events

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_simulate_as_a_satellite_streams_the_request_and_plays_home_assistants_reply(
    engines_with, tmp_path
):
    port = free_port()
    settings = Settings(
        data_dir=tmp_path / "data", esphome={"enabled": True, "host": "127.0.0.1", "port": port}
    )
    wavs = WavServer()
    wavs.files["tts.wav"] = tone_wav(1.0, 22050)
    home = FakeHome(port)
    home.auto_reply = wavs.url("tts.wav")

    def connect_first(event: Event) -> None:
        if home.client is None:  # the API listens before the assistant starts
            home.connect()

    wav = write(tmp_path / "in.wav", conversation(1.0, "Hey Jarvis, what time is it?", 3.0))
    out, log = tmp_path / "out.wav", tmp_path / "events.jsonl"
    try:
        summary = simulation.simulate(
            settings,
            wav,
            out,
            log,
            engines=engines_with(ScriptedStt("what time is it")),
            observers=[connect_first],
        )
    finally:
        home.close()
        wavs.close()
    events = read_events(log)
    by = {e["type"]: e for e in events}
    assert summary["replies"] == [] and "reply" not in by  # the local brain stayed silent
    assert home.starts == [{"conversation_id": "", "phrase": "hey jarvis"}]
    assert home.stops == [False]  # the stream ended with end=True
    assert by["speech_end"]["t"] - by["speech_end"]["last_speech_t"] <= 1.0
    # what streamed is what followed the wake word, up to the end of speech
    streamed_s = sum(len(a) for a in home.audio) / 2 / 16000
    expected_s = by["speech_end"]["t"] - by["wake"]["t"]
    assert streamed_s == pytest.approx(expected_s, abs=0.2)
    assert by["speak_start"]["origin"] == "home"
    played = read_wav(out, 22050)
    reply = played[int(by["speak_start"]["t"] * 22050) :][:22050]
    spectrum = np.abs(np.fft.rfft(reply.astype(np.float64)))
    assert abs(np.argmax(spectrum) * 22050 / len(reply) - 440) < 5  # the served tone
    spans = speech_spans(played, 22050)
    assert any(abs(s[0] - by["speak_start"]["t"]) < 0.1 for s in spans)
