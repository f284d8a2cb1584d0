"""The real Assistant behind the bridge, wired by the runtime, over a real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import SPEECH, WAKE, FakeTts, FakeVad, FakeWake, ScriptedStt
from mqtt_broker import (
    Broker,
    Listener,
    assert_will_after_kill,
)

from firmware_app.app import loading, simulation
from firmware_app.audio.wavio import write_wav
from firmware_app.config.settings import CustomIntent, MqttSettings, Settings
from firmware_app.core.messages import FRAME_SAMPLES


def wav_of(path: Path, frames: list[tuple[int, int]]) -> Path:
    """(level, number of 80 ms frames) segments: the fakes read the level."""
    parts = [np.full(FRAME_SAMPLES * n, level, dtype=np.int16) for level, n in frames]
    write_wav(path, np.concatenate(parts), 16000)
    return path


def test_real_assistant_round_trips(broker: Broker, tmp_path: Path) -> None:
    device = "real-assistant"
    settings = Settings(
        data_dir=tmp_path / "data",
        mqtt=MqttSettings(
            host=broker.host,
            port=broker.port,
            device_id=device,
            publish_transcripts=True,
            hermes=True,
            health_interval_s=1,
        ),
        intents=[
            CustomIntent(
                name="lights",
                sentences=["turn (on|off) the {room} light"],
                slots={"room": ["kitchen", "bedroom"]},
                topic="home/{room}/light/set",
                payload="{group1}",
                reply="Okay, {room} light {group1}.",
            )
        ],
    )
    engines = loading.Engines(
        FakeWake(), FakeVad(), ScriptedStt("what time is it"), None, FakeTts()
    )
    # 2.4 s quiet (commands arrive), then a spoken request, then quiet
    wav = wav_of(tmp_path / "in.wav", [(0, 30), (WAKE, 1), (SPEECH, 8), (0, 20)])
    base = f"ttbt5/{device}"
    listener = Listener(broker, (f"{base}/#", "home/#", "hermes/#"))
    summary: dict[str, Any] = {}

    def run() -> None:
        summary.update(
            simulation.simulate(settings, wav, realtime=True, engines=engines, max_tail_s=3)
        )

    thread = threading.Thread(target=run)
    thread.start()
    try:
        listener.wait_for(f"{base}/status", lambda m: m.text == "online", timeout=30)
        listener.publish(f"{base}/cmd/ask", "what time is it")
        result = listener.wait_for(f"{base}/cmd/result").json()
        assert result == {"command": "ask", "id": None, "ok": True, "error": None}
        assert listener.wait_for(f"{base}/event/intent").json()["name"] == "time"
        reply = listener.wait_for(f"{base}/event/reply").json()
        assert reply["source"] == "local" and reply["text"].startswith("It's")

        mark = listener.mark()
        listener.publish(f"{base}/cmd/ask", json.dumps({"text": "turn on the kitchen light"}))
        assert listener.wait_for("home/kitchen/light/set").text == "on"
        listener.wait_for(f"{base}/cmd/result", lambda m: m.json()["ok"], after=mark)

        mark = listener.mark()
        listener.publish(f"{base}/cmd/volume", "30")
        assert listener.wait_for(f"{base}/cmd/result", after=mark).json()["ok"] is True
        listener.wait_for(f"{base}/health", lambda m: m.json()["volume"] == 30)

        mark = listener.mark()
        listener.publish(f"{base}/cmd/update", "")
        update = listener.wait_for(f"{base}/cmd/result", after=mark).json()
        assert update["ok"] is False and "not available" in update["error"]

        # the spoken request in the recording: wake word, Hermes, metrics
        hot = listener.wait_for("hermes/hotword/hey_jarvis/detected", timeout=20).json()
        assert hot["siteId"] == device
        listener.wait_for(f"{base}/state", lambda m: m.text == "listening")
        captured = listener.wait_for("hermes/asr/textCaptured", timeout=20).json()
        assert captured["text"] == "what time is it"
        listener.wait_for("hermes/intent/time")
        metrics = listener.wait_for(
            f"{base}/metrics",
            lambda m: m.json()["latency_ms"]["response"]["count"] >= 1,
            timeout=20,
        ).json()
        assert metrics["latency_ms"]["stt_final"]["p50"] is not None
    finally:
        thread.join(timeout=60)
        listener.close()
    assert not thread.is_alive()
    assert summary["replies"][-1].startswith("It's")
    last_status = [m for m in listener.on(f"{base}/status")][-1]
    assert last_status.text == "offline"  # published on the way out


@pytest.mark.slow
def test_last_will_when_the_service_is_killed(broker: Broker, tmp_path: Path) -> None:
    """``ttbt5 simulate --realtime`` with MQTT on, killed with SIGKILL: the broker
    publishes the will, so Home Assistant shows the device unavailable."""
    device = "killed"
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'device_id = "{device}"\nkeepalive_s = 5\n'
    )
    wav = wav_of(tmp_path / "quiet.wav", [(0, 750)])  # a minute of silence
    status = f"ttbt5/{device}/status"
    listener = Listener(broker, (status,))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "firmware_app",
            "simulate",
            str(wav),
            "--realtime",
            "--config",
            str(config),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        listener.wait_for(status, lambda m: m.text == "online", timeout=90)
        assert_will_after_kill(broker, listener, child.pid, status)
    finally:
        if child.poll() is None:
            child.kill()
        listener.close()
