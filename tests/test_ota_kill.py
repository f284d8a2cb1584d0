"""A power cut at any point of an update: the updater is SIGKILLed as each step begins
(no cleanup handler runs), and every time ``current`` must still be a complete, runnable
release; the next run must finish the job. Config and data are never touched."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from ota_support import Device, ReleaseServer, make_keys, publish, run_update, update_killed_at

KILL_POINTS = [
    "check",
    "download",
    "verify",
    "install",
    "install.venv",
    "switch",
    "switch.current",
    "restart",
    "health",
    "commit",
]
SWITCHED = {"restart", "health", "commit"}
"""Kill points at which the run has already moved ``current`` to the new release."""


def test_killed_at_every_step_current_stays_bootable(tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    private, public = make_keys(tmp_path)
    server = ReleaseServer(site)
    device = Device(tmp_path / "device", server.url, public)
    try:
        publish(site, "0.1.0", private, tmp_path)
        assert run_update(device)[0]
        before = device.snapshot()
        publish(site, "0.2.0", private, tmp_path)

        for point in KILL_POINTS:
            code = update_killed_at(device, point)
            assert code == -signal.SIGKILL, f"the run did not reach {point!r} (exit {code})"
            expected = "releases/0.2.0" if point in SWITCHED else "releases/0.1.0"
            assert device.current() == expected, point
            assert device.bootable(), f"current is not bootable after a kill at {point!r}"
            assert device.snapshot() == before, point

        ok, results = run_update(device)
        assert ok, results[-1]
        assert device.current() == "releases/0.2.0"
        assert device.previous() == "releases/0.1.0"
        assert device.bootable()
        assert json.loads(device.health.read_text())["version"] == "0.2.0"
        assert not (device.root / "pending.json").exists()
        assert sorted(p.name for p in (device.root / "releases").iterdir()) == ["0.1.0", "0.2.0"]
        assert device.snapshot() == before
    finally:
        device.stop()
        server.close()


def test_kill_between_switch_and_commit_of_a_bad_release_rolls_back_next_run(tmp_path: Path):
    """The power went out after switching to a release that turns out to be broken: the
    next run gates it, finds it unhealthy and goes back."""
    site = tmp_path / "site"
    site.mkdir()
    private, public = make_keys(tmp_path)
    server = ReleaseServer(site)
    device = Device(tmp_path / "device", server.url, public, health_timeout_s=2.0)
    try:
        publish(site, "0.1.0", private, tmp_path)
        assert run_update(device)[0]
        publish(site, "0.2.0", private, tmp_path, behaviour="crash")
        assert update_killed_at(device, "restart") == -signal.SIGKILL
        assert device.current() == "releases/0.2.0"
        assert (device.root / "pending.json").exists()
        ok, results = run_update(device)
        assert not ok
        steps = [(r.step, r.ok) for r in results]
        assert ("health", False) in steps
        assert results[-1].step == "rollback" and results[-1].ok
        assert device.current() == "releases/0.1.0"
        assert device.bootable()
    finally:
        device.stop()
        server.close()
