"""The appliance itself (``ttbt5 run``, real models, ALSA file devices) with its wall clock
stepped an hour forward and back while a timer runs, through the documented test-mode
clock file: the timer rings once, on time by the running clock."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from harness import start_service, wait_until

from firmware_app.app import control_client
from firmware_app.core.events import read_events
from firmware_app.system.test_clock import ENV


def test_a_running_service_keeps_its_timer_through_wall_clock_steps(tmp_path: Path, alsa_files):
    mic, _ = alsa_files
    mic.write_bytes(np.zeros(16000 * 120, dtype=np.int16).tobytes())
    events = tmp_path / "events.jsonl"
    offset = tmp_path / "wall-offset"
    offset.write_text("0\n")
    service = start_service(tmp_path, {"TTBT5_LOG__EVENTS": str(events), ENV: str(offset)})

    def timer_events(action: str) -> list[dict]:
        return [e for e in read_events(events) if e["type"] == "timer" and e["action"] == action]

    try:
        sock = service.socket
        service.wait_serving()
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
        err = service.stop()
    assert service.proc.returncode == 0, err[-2000:]
    assert "test mode: the wall clock is shifted" in err
    (set_,), (ring,) = timer_events("set"), timer_events("ring")
    took = ring["wall"] - set_["wall"]  # the service's own monotonic time
    assert 19.9 <= took <= 25, took
