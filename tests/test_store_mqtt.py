"""The whole device with its data directory on a real small tmpfs that fills up, over a real
Mosquitto: every command is answered once while the disk is full, the failure shows in
health and as an error event, and everything changed meanwhile reaches the disk after."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

import numpy as np
from fakes import FakeTts, FakeVad, FakeWake, ScriptedStt
from mqtt_broker import Broker, Listener

from firmware_app.app import loading, simulation
from firmware_app.audio.wavio import write_wav
from firmware_app.config.settings import MqttSettings, Settings


def test_commands_are_answered_while_the_disk_is_full(broker: Broker, small_fs, tmp_path):
    device = "disk-full"
    base = f"ttbt5/{device}"
    settings = Settings(
        data_dir=small_fs.path,
        mqtt=MqttSettings(
            host=broker.host, port=broker.port, device_id=device, health_interval_s=1
        ),
    )
    engines = loading.Engines(FakeWake(), FakeVad(), ScriptedStt(""), None, FakeTts())
    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(16000 * 30, dtype=np.int16), 16000)
    listener = Listener(broker, (f"{base}/#",))
    thread = threading.Thread(
        target=simulation.simulate,
        args=(settings, wav),
        kwargs={"realtime": True, "engines": engines, "max_tail_s": 2},
        daemon=True,
    )
    thread.start()

    def result(rid: str) -> dict[str, Any]:
        return listener.wait_for(f"{base}/cmd/result", lambda m: m.json().get("id") == rid).json()

    def health(predicate) -> dict[str, Any]:
        return listener.wait_for(f"{base}/health", lambda m: predicate(m.json())).json()

    listener.wait_for(f"{base}/status", lambda m: m.text == "online", timeout=30)
    small_fs.fill()
    for n in range(40):
        listener.publish(f"{base}/cmd/volume", json.dumps({"volume": n + 10, "id": f"v{n}"}))
    answers = [result(f"v{n}") for n in range(40)]
    listener.publish(
        f"{base}/cmd/ask", json.dumps({"text": "set a pasta timer for ten hours", "id": "t1"})
    )
    assert result("t1")["ok"]
    # A burst may meet back-pressure ("busy"), itself an answer; the rest are carried out.
    assert all(a["ok"] or a["error"].startswith("busy") for a in answers)
    last_ok = max(n for n, a in enumerate(answers) if a["ok"]) + 10
    error = listener.wait_for(f"{base}/event/error", lambda m: m.json()["where"] == "store")
    assert "full" in error.json()["message"]
    led = listener.wait_for(f"{base}/event/led", lambda m: m.json()["pattern"] == "error")
    assert led.json()["pattern"] == "error"  # shown, then back to idle
    degraded = health(
        lambda h: h.get("store", {}).get("status") == "degraded" and h["volume"] == last_ok
    )
    assert degraded["store"]["pending"] >= 1

    small_fs.free()
    healthy = health(lambda h: h.get("store", {}).get("status") == "ok" and h["timers"] == 1)
    assert healthy["store"]["pending"] == 0
    listener.publish(f"{base}/cmd/volume", json.dumps({"volume": 77, "id": "after"}))
    assert result("after")["ok"]  # nothing stays busy after space is freed
    results = [m.json()["id"] for m in listener.messages if m.topic == f"{base}/cmd/result"]
    assert sorted(results) == sorted([f"v{n}" for n in range(40)] + ["t1", "after"])
    thread.join(timeout=60)
    with sqlite3.connect(small_fs.path / "store.sqlite") as conn:
        volume = conn.execute("SELECT value FROM settings WHERE key = 'volume'").fetchone()[0]
        timers = [json.loads(v) for (v,) in conn.execute("SELECT value FROM timers")]
    assert json.loads(volume) == 77
    assert [t["name"] for t in timers] == ["pasta"]
