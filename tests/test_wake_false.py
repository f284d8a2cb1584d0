"""False wakes the user can act on: ``cmd/false_wake`` and the Home Assistant button mark
the last wake false, it is counted per model, and its clip is kept in memory or, when
configured, saved for tuning."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audio_helpers import conversation, write
from fakes import SILENT, WAKE, Rig
from mqtt_broker import Broker, Listener

from firmware_app.app import simulation
from firmware_app.audio.wavio import read_wav
from firmware_app.config.settings import MqttSettings, Settings, WakeSettings
from firmware_app.core.messages import FRAME_SAMPLES, Command
from firmware_app.system.metrics import Metrics


def answers() -> tuple[list[tuple[bool, str | None]], Any]:
    """A command reply that records what it was told."""
    got: list[tuple[bool, str | None]] = []
    return got, lambda ok, error: got.append((ok, error))


@pytest.fixture
def rig(settings: Settings, tmp_path: Path):
    s = settings.model_copy(
        update={"wake": WakeSettings(false_wake_dir=tmp_path / "false", clips_kept=2)}
    )
    r = Rig(s)
    yield r
    r.close()


def test_marking_the_last_wake_false(rig: Rig, tmp_path: Path):
    got, reply = answers()
    rig.post(Command("false_wake", reply=reply))
    assert got == [(False, "no wake to mark: none heard yet, or marked already")]
    rig.feed(SILENT, 3.0)
    rig.feed(WAKE)
    assert rig.assistant.state.value == "listening"
    [woke] = rig.of("wake")
    rig.post(Command("false_wake", reply=reply))
    assert got[-1] == (True, None)
    assert rig.assistant.state.value == "idle"  # the request it opened is dropped
    [event] = rig.of("false_wake")
    assert event.fields == {"model": "hey_jarvis", "score": 0.9, "wake_t": round(woke.t, 3)}
    rig.post(Command("false_wake", reply=reply))
    assert got[-1][0] is False  # the same wake is not counted twice

    metrics = Metrics()
    for e in rig.events:
        metrics(e)
    snapshot = metrics.snapshot()
    assert snapshot["false_wakes"] == {"hey_jarvis": 1}
    assert snapshot["wakes_by_model"] == {"hey_jarvis": 1}

    rig.feed(SILENT, 2.0)  # the clip's two seconds after the wake: then it is saved
    [wav] = (tmp_path / "false").glob("*.wav")
    audio = read_wav(wav)
    assert len(audio) == (25 + 25) * FRAME_SAMPLES  # 2 s of pre-roll, 2 s after
    assert int(audio[24 * FRAME_SAMPLES]) == WAKE  # the frame that woke ends the pre-roll
    note = json.loads(wav.with_suffix(".json").read_text())
    assert note["model"] == "hey_jarvis" and note["false"] is True


def test_clips_stay_in_memory_by_default(settings: Settings, tmp_path: Path):
    rig = Rig(settings)
    try:
        for _ in range(7):
            rig.feed(WAKE)
            rig.until_idle()
        assert len(rig.assistant.clips.clips()) == settings.wake.clips_kept == 5
        rig.post(Command("false_wake"))
        assert rig.assistant.clips.last().false  # type: ignore[union-attr]
        assert settings.wake.false_wake_dir is None
        assert not list(settings.data_dir.rglob("*.wav"))
    finally:
        rig.close()


def test_muted_audio_never_reaches_a_clip(rig: Rig):
    rig.post(Command("mute", {"muted": True}))
    rig.feed(WAKE, 1.0)
    rig.post(Command("mute", {"muted": False}))
    assert rig.assistant.clips.clips() == []


def test_home_assistant_button_marks_a_real_wake(broker: Broker, tmp_path: Path, real_engines):
    """Real openWakeWord on the Piper voice, real Mosquitto: the discovered button's
    command marks the wake, the metrics count it, the clip is saved."""
    device = "false-wake"
    settings = Settings(
        data_dir=tmp_path / "data",
        wake=WakeSettings(false_wake_dir=tmp_path / "clips"),
        mqtt=MqttSettings(
            host=broker.host, port=broker.port, device_id=device, health_interval_s=1
        ),
    )
    audio = conversation(2.0, "Hey Jarvis.", 9.0)
    wav = write(tmp_path / "in.wav", audio)
    base = f"ttbt5/{device}"
    listener = Listener(broker, (f"{base}/#", "homeassistant/#"))
    thread = threading.Thread(
        target=simulation.simulate,
        args=(settings, wav),
        kwargs={"realtime": True, "engines": real_engines, "max_tail_s": 3},
    )
    thread.start()
    try:
        button = listener.wait_for(
            f"homeassistant/button/ttbt5_{device}/false_wake/config", timeout=30
        ).json()
        assert button["name"] == "That wasn't for me"
        wake = listener.wait_for(f"{base}/event/wake", timeout=30).json()
        assert wake["model"] == "hey_jarvis"
        listener.publish(button["command_topic"], button["payload_press"])
        result = listener.wait_for(f"{base}/cmd/result").json()
        assert result["command"] == "false_wake" and result["ok"] is True
        marked = listener.wait_for(f"{base}/event/false_wake").json()
        assert (marked["model"], marked["score"]) == ("hey_jarvis", wake["score"])
        listener.wait_for(
            f"{base}/metrics", lambda m: m.json()["false_wakes"] == {"hey_jarvis": 1}, timeout=20
        )
    finally:
        thread.join(timeout=60)
        listener.close()
    assert not thread.is_alive()
    [clip] = (tmp_path / "clips").glob("*.wav")
    samples = read_wav(clip)
    assert 3.5 < len(samples) / 16000 <= 4.1  # pre-roll and two seconds
    assert np.abs(samples).max() > 3000  # the wake phrase is in it
