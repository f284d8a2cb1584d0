"""The appliance (``ttbt5 run``) on real ALSA devices tells the truth about them: a
microphone that stops delivering shows as ``stalled`` in health, an ``error`` event and the
ERROR state, and comes back; a missing speaker makes ``say`` answer with an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ALSA_FIFO
from harness import start_service
from live_mic import MicFeeder
from mqtt_broker import Broker, Listener

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def device(broker: Broker, tmp_path):
    feeder = MicFeeder(ALSA_FIFO)
    service = start_service(
        tmp_path,
        {
            "TTBT5_AUDIO__INPUT_DEVICE": "testfifo",
            "TTBT5_AUDIO__OUTPUT_DEVICE": "no_such_speaker_xyz",
            "TTBT5_MQTT__HOST": broker.host,
            "TTBT5_MQTT__PORT": str(broker.port),
            "TTBT5_MQTT__DEVICE_ID": "alsa-run",
            "TTBT5_MQTT__HEALTH_INTERVAL_S": "1",
        },
    )
    listener = Listener(broker, ("ttbt5/alsa-run/#",))
    try:
        listener.wait_for("ttbt5/alsa-run/status", lambda m: m.text == "online", timeout=90)
        yield feeder, listener
    finally:
        err = service.stop()
        feeder.close()
    assert service.proc.returncode == 0, err[-2000:]


def audio(h: dict, which: str) -> dict:
    return (h.get("audio") or {}).get(which) or {}


def health(listener: Listener, predicate, after: int = 0) -> dict:
    topic = "ttbt5/alsa-run/health"
    return listener.wait_for(topic, lambda m: predicate(m.json()), 30, after).json()


def test_a_stalled_microphone_shows_in_health_events_and_state(device):
    feeder, listener = device
    health(listener, lambda h: audio(h, "input").get("status") == "running")
    mark = listener.mark()
    feeder.stall(3600)
    stalled = health(listener, lambda h: audio(h, "input").get("status") == "stalled")
    assert "delivered no audio" in stalled["audio"]["input"]["error"]
    error = listener.wait_for(
        "ttbt5/alsa-run/event/error", lambda m: m.json()["where"] == "audio.input", after=mark
    )
    assert "no audio" in error.json()["message"]
    listener.wait_for(
        "ttbt5/alsa-run/event/state", lambda m: m.json()["state"] == "error", after=mark
    )
    mark = listener.mark()
    feeder.stall(0)
    back = health(
        listener,
        lambda h: audio(h, "input").get("status") == "running" and h["state"] == "idle",
        after=mark,
    )
    assert back["audio"]["input"]["stalls"] >= 1


def test_say_without_a_speaker_answers_with_an_error(device):
    _, listener = device
    health(listener, lambda h: audio(h, "output").get("status") == "missing")
    listener.publish("ttbt5/alsa-run/cmd/say", json.dumps({"text": "Hello there.", "id": "s1"}))
    result = listener.wait_for("ttbt5/alsa-run/cmd/result").json()
    assert result["id"] == "s1" and result["ok"] is False
    assert "speaker" in result["error"]
