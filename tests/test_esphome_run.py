"""``ttbt5 run`` as a Home Assistant satellite, on a live-paced ALSA microphone: the API
listens, Home Assistant's client connects, a spoken request goes to its pipeline and its
reply is played by the speaker; with Home Assistant gone the same request is answered by
the local brain. The event log says which brain answered."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from audio_helpers import conversation
from conftest import ALSA_FIFO
from esphome_support import FakeHome, WavServer, tone_wav
from harness import start_service, wait_until
from live_mic import MicFeeder

from firmware_app.core.events import read_events

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_serves_home_assistant_and_falls_back_to_the_local_brain(tmp_path):
    port = free_port()
    log = tmp_path / "events.jsonl"
    request = conversation(0.5, "Hey Jarvis, what time is it?", 0.5)
    feeder = MicFeeder(ALSA_FIFO)
    wavs = WavServer()
    wavs.files["tts.wav"] = tone_wav(0.8, 22050)
    service = start_service(
        tmp_path,
        {
            "TTBT5_AUDIO__INPUT_DEVICE": "testfifo",
            "TTBT5_LOG__EVENTS": str(log),
            "TTBT5_ESPHOME__ENABLED": "true",
            "TTBT5_ESPHOME__HOST": "127.0.0.1",
            "TTBT5_ESPHOME__PORT": str(port),
            "TTBT5_MQTT__DEVICE_ID": "living-room",
        },
    )
    proc = service.proc
    home = FakeHome(port)
    home.auto_reply = wavs.url("tts.wav")
    try:

        def types() -> list[str]:
            return [e["type"] for e in read_events(log)] if log.exists() else []

        started = lambda: proc.poll() is not None or "state" in types()  # noqa: E731
        wait_until(started, timeout=120, what="the service started")
        assert proc.poll() is None, f"the service exited: {proc.communicate()[1][-2000:]}"
        home.connect()  # Home Assistant adds the device and subscribes
        feeder.speak(request)
        wait_until(lambda: home.finished == [True], timeout=30, what="the reply played")
        assert home.starts == [{"conversation_id": "", "phrase": "hey jarvis"}]
        assert home.stops == [False] and home.audio
        events = read_events(log)
        played = [e for e in events if e["type"] == "speak_end" and e["origin"] == "home"]
        assert played and not played[0]["cut"]
        assert "reply" not in types()

        home.close()  # Home Assistant goes away: the local brain answers the same request
        time.sleep(0.5)
        feeder.speak(request)
        wait_until(lambda: "reply" in types(), timeout=30, what="the local reply")
        reply = next(e for e in read_events(log) if e["type"] == "reply")
        assert reply["source"] == "local" and reply["text"].startswith("It's ")
        assert types().count("wake") == 2
    finally:
        home.close()
        err = service.stop()
        feeder.close()
        wavs.close()
    assert proc.returncode == 0, err[-2000:]
