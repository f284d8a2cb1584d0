"""The appliance itself (``ttbt5 run``, real models, ALSA file devices) with its wall clock
stepped an hour forward and back while a timer runs, through the documented test-mode
clock file: the timer rings once, on time by the running clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import wait_until

from firmware_app.app import control, control_client
from firmware_app.core.events import read_events
from firmware_app.system.test_clock import ENV

ROOT = Path(__file__).resolve().parent.parent


def test_a_running_service_keeps_its_timer_through_wall_clock_steps(tmp_path: Path, alsa_files):
    mic, _ = alsa_files
    mic.write_bytes(np.zeros(16000 * 120, dtype=np.int16).tobytes())
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir()
    events = tmp_path / "events.jsonl"
    offset = tmp_path / "wall-offset"
    offset.write_text("0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    env |= {
        "RUNTIME_DIRECTORY": str(runtime_dir),
        "TTBT5_DATA_DIR": str(tmp_path / "data"),
        "TTBT5_AUDIO__INPUT_DEVICE": "testmic",
        "TTBT5_AUDIO__OUTPUT_DEVICE": "testspeaker",
        "TTBT5_LOG__EVENTS": str(events),
        ENV: str(offset),
    }
    service = subprocess.Popen(
        [sys.executable, "-m", "firmware_app", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def timer_events(action: str) -> list[dict]:
        return [e for e in read_events(events) if e["type"] == "timer" and e["action"] == action]

    try:
        sock = runtime_dir / control.SOCKET_NAME
        wait_until(lambda: sock.exists(), timeout=90, what="the service's socket")
        assert control_client.request("ask", "set a pasta timer for twenty seconds", sock) == [
            "Pasta timer set for 20 seconds."
        ]
        offset.write_text("3600\n")  # an hour forward: it used to ring at once
        time.sleep(4)
        offset.write_text("-3600\n")  # two hours back: "1 hour and ... left"
        time.sleep(2)
        assert timer_events("ring") == []
        left = control_client.request("ask", "how long is left on the pasta timer", sock)
        assert left is not None and left[0].endswith("seconds left on your pasta timer."), left
        assert "hour" not in left[0]
        wait_until(lambda: timer_events("ring"), timeout=40, what="the timer to ring")
    finally:
        service.send_signal(signal.SIGTERM)
        _, err = service.communicate(timeout=30)
    assert service.returncode == 0, err[-2000:]
    assert "test mode: the wall clock is shifted" in err
    (set_,), (ring,) = timer_events("set"), timer_events("ring")
    took = ring["wall"] - set_["wall"]  # the service's own monotonic time
    assert 19.9 <= took <= 25, took
