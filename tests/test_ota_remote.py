"""``cmd/update`` through the assistant's ``updater`` hook: the hook checks, drops a request
that the update service (played here by the test, as ``ttbt5-update.path`` would start it)
carries out as a separate process, and every step comes back as an ``update`` notice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ota_support import (
    Device,
    ReleaseServer,
    make_keys,
    ota,
    point_latest,
    publish,
    run_update,
    wait_for,
)

from firmware_app.config.settings import load_settings
from firmware_app.core.messages import Command, Notice
from firmware_app.ota import make_updater
from firmware_app.ota.remote import RemoteUpdater


class Replies:
    def __init__(self) -> None:
        self.calls: list[tuple[bool, str | None]] = []

    def __call__(self, ok: bool, error: str | None) -> None:
        self.calls.append((ok, error))


class PathUnit:
    """Stands in for ttbt5-update.path: when the request appears, run the update service's
    command line (``update --request FILE``) as its own process."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.request = device.data / "update" / "request.json"
        self.runs: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            if self.request.exists():
                done = ota(self.device, "update", "--request", str(self.request))
                self.runs.append(done.returncode)
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Device, Path, Path]]:
    site = tmp_path / "site"
    site.mkdir()
    private, public = make_keys(tmp_path)
    server = ReleaseServer(site)
    device = Device(tmp_path / "device", server.url, public)
    publish(site, "0.1.0", private, tmp_path)
    assert run_update(device)[0]
    yield device, site, private
    device.stop()
    server.close()


def notices(posted: list[object]) -> list[dict]:
    return [m.fields for m in posted if isinstance(m, Notice) and m.kind == "update"]


def caught_up(posted: list[object]) -> None:
    """A fresh hook first reports the last update run it has not reported yet (here the
    baseline install, as after the restart an update causes); then start clean."""
    assert wait_for(lambda: any(not n["active"] for n in notices(posted)))
    assert notices(posted)[-1]["step"] == "commit" and notices(posted)[-1]["version"] == "0.1.0"
    posted.clear()


def test_no_release_server_no_hook(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    assert make_updater(load_settings(config), lambda m: None) is None


def test_update_over_the_hook_end_to_end(setup: tuple[Device, Path, Path], tmp_path: Path):
    device, site, private = setup
    publish(site, "0.2.0", private, tmp_path)
    posted: list[object] = []
    hook = make_updater(load_settings(device.config), posted.append)
    assert hook is not None
    caught_up(posted)
    unit = PathUnit(device)
    try:
        first, second, bad = Replies(), Replies(), Replies()
        hook(Command("update", {}, reply=first))
        hook(Command("update", {}, reply=second))  # while the first is running
        hook(Command("update", {"channel": "beta"}, reply=bad))
        assert first.calls == [(True, None)]
        assert second.calls == [(False, "an update is already in progress")]
        assert bad.calls[0][0] is False and "unknown argument 'channel'" in str(bad.calls[0][1])
        assert wait_for(lambda: any(not n["active"] for n in notices(posted)), timeout=90)
    finally:
        unit.close()
    got = notices(posted)
    assert got[0]["step"] == "check" and got[0]["version"] == "0.2.0" and got[0]["ok"]
    assert got[1]["step"] == "request" and got[1]["active"]
    steps = [n["step"] for n in got[2:]]
    assert steps == [
        "check",
        "download",
        "verify",
        "install",
        "switch",
        "restart",
        "health",
        "commit",
    ]
    assert all(n["ok"] for n in got) and [n["active"] for n in got][-1] is False
    assert set(got[-1]) == {"step", "ok", "message", "version", "active"}
    assert unit.runs == [0]
    assert device.current() == "releases/0.2.0"

    # asked again: already up to date, no request is made
    posted.clear()
    replies = Replies()
    hook(Command("update", {}, reply=replies))
    assert wait_for(lambda: bool(notices(posted)))
    assert replies.calls == [(True, None)]
    assert notices(posted)[0]["active"] is False and "up to date" in notices(posted)[0]["message"]
    assert not (device.data / "update" / "request.json").exists()


def test_a_forged_request_cannot_force_a_downgrade(setup: tuple[Device, Path, Path], tmp_path):
    """The request file is written by the unprivileged service: ``force`` is ignored unless
    root's config allows it, and garbage is consumed and refused."""
    device, site, private = setup
    publish(site, "0.0.5", private, tmp_path)
    request = device.data / "update" / "request.json"
    request.write_text(json.dumps({"id": "abc123", "force": True}))
    done = ota(device, "update", "--request", str(request))
    assert done.returncode == 1
    assert "older than the installed 0.1.0" in done.stderr
    assert "remote 'force' ignored" in done.stderr
    assert not request.exists()
    assert device.current() == "releases/0.1.0"
    request.write_text('{"id": "../../x", "force": "yes"}')
    done = ota(device, "update", "--request", str(request))
    assert done.returncode == 1 and "bad id" in done.stderr
    assert not request.exists()


def test_update_service_that_never_starts_is_reported(setup: tuple[Device, Path, Path], tmp_path):
    device, site, private = setup
    publish(site, "0.2.0", private, tmp_path)
    settings = load_settings(device.config)
    settings = settings.model_copy(
        update={"update": settings.update.model_copy(update={"request_timeout_s": 0.5})}
    )
    posted: list[object] = []
    hook = make_updater(settings, posted.append)
    assert hook is not None
    caught_up(posted)
    hook(Command("update", {}, reply=Replies()))
    assert wait_for(lambda: any(not n["active"] for n in notices(posted)), timeout=30)
    last = notices(posted)[-1]
    assert last["step"] == "request" and not last["ok"]
    assert "ttbt5-update.path" in last["message"]
    assert not (device.data / "update" / "request.json").exists()


def test_after_a_restart_the_rest_of_the_run_is_reported(tmp_path: Path):
    """The service is restarted mid-update: the new process posts what it has not yet."""
    config = tmp_path / "c.toml"
    config.write_text(
        f'data_dir = "{tmp_path}"\n[update]\nurl = "http://127.0.0.1:9/"\n'
        f'root = "{tmp_path / "opt"}"\n'
    )
    journal = tmp_path / "opt" / "state" / "journal.jsonl"  # root's, read by the service
    journal.parent.mkdir(parents=True)
    (tmp_path / "update").mkdir()
    now = time.time()
    lines = [
        {
            "run": "old",
            "time": now - 10,
            "step": "commit",
            "ok": True,
            "message": "m",
            "version": "0.1.0",
            "active": False,
        },
        {
            "run": "r1",
            "time": now,
            "step": "check",
            "ok": True,
            "message": "a",
            "version": "0.2.0",
            "active": True,
        },
        {
            "run": "r1",
            "time": now,
            "step": "restart",
            "ok": True,
            "message": "b",
            "version": "0.2.0",
            "active": True,
        },
    ]
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{cut by a power")
    (tmp_path / "update" / "posted").write_text("r1 1\n")
    posted: list[object] = []
    RemoteUpdater(load_settings(config), posted.append)
    assert wait_for(lambda: len(notices(posted)) == 1)
    assert notices(posted)[0]["step"] == "restart"
    with journal.open("a") as fh:  # the update service carries on meanwhile
        fh.write(
            "\n"
            + json.dumps(
                {
                    "run": "r1",
                    "time": now,
                    "step": "commit",
                    "ok": True,
                    "message": "c",
                    "version": "0.2.0",
                    "active": False,
                }
            )
            + "\n"
        )
    assert wait_for(lambda: len(notices(posted)) == 2)
    assert notices(posted)[1]["step"] == "commit"
    assert wait_for(lambda: (tmp_path / "update" / "posted").read_text() == "r1 3\n")
    # a third start has nothing new to say
    again: list[object] = []
    RemoteUpdater(load_settings(config), again.append)
    time.sleep(0.5)
    assert again == []


def test_running_service_looks_up_the_latest_release(
    setup: tuple[Device, Path, Path], tmp_path: Path
):
    """Home Assistant's update entity learns the latest version without anyone asking."""
    device, site, private = setup
    publish(site, "0.3.0", private, tmp_path)
    settings = load_settings(device.config)
    settings = settings.model_copy(
        update={"update": settings.update.model_copy(update={"check_interval_h": 1.0})}
    )
    posted: list[object] = []
    make_updater(settings, posted.append)

    def offered() -> list[dict]:
        return [n for n in notices(posted) if n["step"] == "check" and n["version"] == "0.3.0"]

    assert wait_for(lambda: bool(offered()))
    assert offered()[0]["version"] == "0.3.0" and offered()[0]["active"] is False
    assert "installed 0.1.0" in offered()[0]["message"]
    assert not (device.data / "update" / "request.json").exists()  # looking is not updating


def test_a_frozen_release_server_is_reported_as_stale(
    setup: tuple[Device, Path, Path], tmp_path: Path
):
    """The server keeps serving a correctly signed pointer past its expiry: the running
    service says so on its update entity, where a silent failure would hide it."""
    device, site, private = setup
    bundle = publish(site, "0.3.0", private, tmp_path)
    point_latest(site, bundle, private, expires_days=-2)
    settings = load_settings(device.config)
    settings = settings.model_copy(
        update={"update": settings.update.model_copy(update={"check_interval_h": 1.0})}
    )
    posted: list[object] = []
    make_updater(settings, posted.append)

    def stale() -> list[dict]:
        return [n for n in notices(posted) if "update server stale since" in n["message"]]

    assert wait_for(lambda: bool(stale()))
    assert stale()[0]["step"] == "check" and stale()[0]["ok"] is False
    assert stale()[0]["active"] is False
