"""A short soak in CI: the real assistant process under every scheduled fault for a couple
of minutes. Counts only (every command answered once, nothing lost, process alive);
timings and memory figures are for the long run in ``scripts/soak.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.geteuid() != 0, reason="the soak mounts a small tmpfs: needs root")
def test_short_soak_answers_everything_and_loses_nothing(tmp_path):
    out = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTBT5_", "ALSA_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "soak.py"),
            *("--duration", "150", "--cycle", "75", "--sample-s", "5", "--grace", "15"),
            *("--output", str(out)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["crashes"] == 0 and report["exit_code"] == 0
    commands = report["commands"]
    assert commands["sent"] > 20
    assert commands["unanswered"] == 0 and commands["answered_twice"] == 0
    assert report["hostile"]["answered"] == report["hostile"]["sent"] > 0
    assert report["retained"]["run_on_redelivery"] == 0
    assert report["timers"]["lost"] == 0 and report["timers"]["in_store"] is not None
    assert report["volume"]["in_store"] == report["volume"]["in_memory"]
    assert report["wakes"]["played"] == report["wakes"]["detected"] == report["wakes"]["answered"]
    assert report["faults"]["disk_full"] == 2 and report["faults"]["broker_outage"] == 2
    assert report["errors_by_kind"].get("store", 0) >= 1  # the full disk was reported
    assert report["errors_by_kind"].get("audio.input", 0) >= 1  # so was the stalled mic
    abuse = report["socket_abuse"]
    assert abuse["rounds"] == 2 and abuse["ask_answered"] == 2 and abuse["max_ask_s"] < 5
    claims = report["claims"]["device"]
    # the stranger's forged claims were sent, and reached no device: it cannot know where
    # a claim goes
    assert report["claims"]["forged_sent"] > 0
    assert claims["peers"] == 1 and claims["claims"]["unauthenticated"] == 0
    assert claims["claims"]["accepted"] > 0  # the skewed peer's claims counted, and lost
    assert report["clock_steps"]["rang_on_time"] == report["clock_steps"]["steps"] == 2
    assert report["corrupt_row"] == {"store_errors": 1, "bad_rows_left": 0, "store": "ok"}
