"""Starting the real ``ttbt5`` command on a data disk that is read-only, full, or holds bad
rows: it runs (no crash loop), keeps what the disk holds, and ``check`` says what is wrong."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from harness import start_service
from mqtt_broker import Listener

ROOT = Path(__file__).resolve().parent.parent


def ttbt5(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    env["TTBT5_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "firmware_app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def seed(data: Path) -> None:
    done = ttbt5("ask", "set a pasta timer for ten hours", "--quiet", data=data)
    assert done.returncode == 0, done.stderr
    assert ttbt5("ask", "set the volume to 35", "--quiet", data=data).returncode == 0


@pytest.mark.parametrize("fault", ["read_only", "full"])
def test_a_healthy_store_on_a_bad_disk_is_kept_not_moved_aside(small_fs, fault):
    seed(small_fs.path)
    getattr(small_fs, "read_only" if fault == "read_only" else "fill")()
    asked = ttbt5("ask", "how long is left on the pasta timer", "--quiet", data=small_fs.path)
    assert asked.returncode == 0, asked.stderr
    assert "left on your pasta timer" in asked.stdout  # the timer was read, not lost
    assert "running from memory" in asked.stderr
    checked = ttbt5("check", data=small_fs.path)
    assert checked.returncode != 0
    assert "store" in checked.stdout and "FAIL" in checked.stdout
    assert not list(small_fs.path.glob("*.corrupt-*"))
    small_fs.writable() if fault == "read_only" else small_fs.free()
    assert ttbt5("check", data=small_fs.path).stdout.count("FAIL") == 0


def test_bad_rows_never_stop_the_service(tmp_path):
    data = tmp_path / "data"
    seed(data)
    with sqlite3.connect(data / "store.sqlite") as conn:
        conn.execute("UPDATE settings SET value = '\"loud\"' WHERE key = 'volume'")
        conn.execute(
            "INSERT INTO timers VALUES ('x', ?)",
            (json.dumps({"id": "x", "name": None, "seconds": "ten", "due": 1}),),
        )
        conn.execute("INSERT INTO conversation VALUES ('llm', 'not json {')")
    asked = ttbt5("ask", "how long is left on the pasta timer", "--quiet", data=data)
    assert asked.returncode == 0, asked.stderr
    assert "left on your pasta timer" in asked.stdout
    assert "dropping" in asked.stderr and "the default applies" in asked.stderr
    assert not list(data.glob("*.corrupt-*"))


def test_the_appliance_starts_on_a_read_only_disk_and_catches_up(small_fs, broker):
    seed(small_fs.path)
    small_fs.read_only()
    base = "ttbt5/read-only"
    listener = Listener(broker, (f"{base}/#",))
    service = start_service(
        small_fs.path.parent,
        {
            "TTBT5_DATA_DIR": str(small_fs.path),
            "TTBT5_AUDIO__INPUT_DEVICE": "no_such_mic_xyz",
            "TTBT5_AUDIO__OUTPUT_DEVICE": "no_such_speaker_xyz",
            "TTBT5_MQTT__HOST": broker.host,
            "TTBT5_MQTT__PORT": str(broker.port),
            "TTBT5_MQTT__DEVICE_ID": "read-only",
            "TTBT5_MQTT__HEALTH_INTERVAL_S": "1",
        },
    )

    def health(predicate) -> dict:
        topic = f"{base}/health"
        return listener.wait_for(topic, lambda m: predicate(m.json()), timeout=90).json()

    try:
        degraded = health(lambda h: (h.get("store") or {}).get("status") == "degraded")
        assert degraded["volume"] == 35 and degraded["timers"] == 1  # kept, not moved aside
        listener.publish(f"{base}/cmd/volume", json.dumps({"volume": 55, "id": "v"}))
        assert listener.wait_for(f"{base}/cmd/result").json()["ok"]
        small_fs.writable()
        health(lambda h: h["store"]["status"] == "ok" and h["volume"] == 55)
    finally:
        err = service.stop()
    assert service.proc.returncode == 0, err[-2000:]
    with sqlite3.connect(small_fs.path / "store.sqlite") as conn:
        volume = conn.execute("SELECT value FROM settings WHERE key = 'volume'").fetchone()[0]
    assert volume == "55"
