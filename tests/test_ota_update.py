"""OTA end to end: a release server on 127.0.0.1, a temporary update root, real venvs built
from the bundle's wheelhouse, and a stand-in service that writes the health file."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
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
    signed_tar,
)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ota")


@pytest.fixture(scope="module")
def keys(work: Path) -> tuple[Path, Path]:
    return make_keys(work)


@pytest.fixture(scope="module")
def site(work: Path) -> Path:
    path = work / "site"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[ReleaseServer]:
    srv = ReleaseServer(site)
    yield srv
    srv.close()


def journal(device: Device) -> list[dict]:
    return [json.loads(line) for line in device.journal.read_text().splitlines()]


def last_run(device: Device) -> list[dict]:
    lines = journal(device)
    return [line for line in lines if line["run"] == lines[-1]["run"]]


def install_baseline(device: Device, site: Path, key: Path, work: Path) -> None:
    """0.1.0 installed through the updater itself (an empty root accepts any version)."""
    publish(site, "0.1.0", key, work)
    ok, _ = run_update(device)
    assert ok
    assert device.current() == "releases/0.1.0"


def test_update_resumes_download_switches_and_rolls_back_by_hand(
    tmp_path: Path, work: Path, keys: tuple[Path, Path], site: Path, server: ReleaseServer
):
    private, public = keys
    device = Device(tmp_path, server.url, public)
    try:
        install_baseline(device, site, private, work)
        before = device.snapshot()
        publish(site, "0.2.0", private, work)
        server.requests.clear()
        server.cut["ttbt5-0.2.0.tar"], server.cut_times["ttbt5-0.2.0.tar"] = 3000, 1
        done = ota(device, "update")
        assert done.returncode == 0, done.stderr
        # the cut download was resumed from where it stopped, with a Range request
        assert ("/ttbt5-0.2.0.tar", "bytes=3000-") in server.requests
        assert device.current() == "releases/0.2.0"
        assert device.previous() == "releases/0.1.0"
        assert device.bootable()
        assert json.loads(device.health.read_text())["version"] == "0.2.0"
        steps = [(line["step"], line["ok"]) for line in last_run(device)]
        assert steps == [
            ("check", True),
            ("download", True),
            ("verify", True),
            ("install", True),
            ("switch", True),
            ("restart", True),
            ("health", True),
            ("commit", True),
        ]
        assert last_run(device)[0]["version"] == "0.2.0"  # check carries the latest version
        assert [line["active"] for line in last_run(device)][-2:] == [True, False]
        assert not (device.root / "pending.json").exists()
        assert device.snapshot() == before

        # by hand: back to 0.1.0, with 0.2.0 kept as previous
        done = ota(device, "rollback")
        assert done.returncode == 0, done.stderr
        assert (device.current(), device.previous()) == ("releases/0.1.0", "releases/0.2.0")
        assert json.loads(device.health.read_text())["version"] == "0.1.0"
        assert device.snapshot() == before

        # the next update keeps current, previous and one more to fall back on
        publish(site, "0.3.0", private, work)
        ok, _ = run_update(device)
        assert ok
        assert (device.current(), device.previous()) == ("releases/0.3.0", "releases/0.1.0")
        releases = sorted(p.name for p in (device.root / "releases").iterdir())
        assert releases == ["0.1.0", "0.2.0", "0.3.0"]
        publish(site, "0.8.0", private, work)
        assert run_update(device)[0]
        releases = sorted(p.name for p in (device.root / "releases").iterdir())
        assert releases == ["0.2.0", "0.3.0", "0.8.0"]  # previous stays, the oldest other goes
        assert not (device.root / "downloads").exists()
        assert device.snapshot() == before
        # up to date: nothing happens
        ok, results = run_update(device)
        assert ok and "already installed" in results[-1].message
        status = json.loads(ota(device, "status").stdout)
        assert status["installed"] == "0.8.0" and status["previous"] == "0.3.0"
    finally:
        device.stop()


@pytest.fixture(scope="module")
def baseline(
    tmp_path_factory: pytest.TempPathFactory,
    work: Path,
    keys: tuple[Path, Path],
    site: Path,
    server: ReleaseServer,
) -> Iterator[Device]:
    private, public = keys
    device = Device(tmp_path_factory.mktemp("device"), server.url, public)
    install_baseline(device, site, private, work)
    yield device
    device.stop()


def _rewrite_tar(bundle: Path, change: dict[str, bytes]) -> None:
    """Replace members' content in place, keeping everything else (signature included)."""
    with tarfile.open(bundle) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    with tarfile.open(bundle, "w") as tar:
        for info, data in members:
            data = change.get(info.name, data)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _case_tampered_manifest(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.2.1", private, work)
    with tarfile.open(bundle) as tar:
        raw = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
    _rewrite_tar(
        bundle,
        {"manifest.json": raw.replace(b'"min_from_version": null', b'"min_from_version": "0.0.1"')},
    )
    point_latest(site, bundle, private)
    return "signature is not valid"


def _case_tampered_file(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.2.2", private, work)
    _rewrite_tar(bundle, {"wheels/ttbt5-0.2.2-py3-none-any.whl": b"not the signed wheel"})
    point_latest(site, bundle, private)
    return "does not match its SHA-256"


def _case_wrong_key(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.2.3", other, work)
    point_latest(site, bundle, private)  # the pointer holds, the manifest does not
    return "manifest signature is not valid"


def _case_truncated_on_server(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.2.4", private, work)
    bundle.write_bytes(bundle.read_bytes()[:3000])  # inside the wheel
    point_latest(site, bundle, private)  # signed as it is: only the tar checks catch it
    return "damaged"


def _case_traversal(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = site / "ttbt5-0.2.5.tar"
    evil = tarfile.TarInfo("../../../../escaped.txt")
    signed_tar(bundle, private, [(evil, b"owned")], version="0.2.5")
    point_latest(site, bundle, private)
    return "not a plain relative path"


def _case_symlink(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = site / "ttbt5-0.2.6.tar"
    link = tarfile.TarInfo("wheels/ttbt5-0.2.6-py3-none-any.whl")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    signed_tar(bundle, private, [(link, None)], listed={"wheels/x.whl": b"x"}, version="0.2.6")
    point_latest(site, bundle, private)
    return "is a link"


def _case_downgrade(site: Path, private: Path, other: Path, work: Path) -> str:
    publish(site, "0.0.9", private, work)
    return "older than the installed 0.1.0"


def _case_min_from(site: Path, private: Path, other: Path, work: Path) -> str:
    publish(site, "0.5.0", private, work, min_from="0.4.0")
    return "can only update 0.4.0 or later"


def _case_lying_pointer(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.2.7", private, work)
    point_latest(site, bundle, private, version="0.2.8")
    return "server announced 0.2.8"


def _case_tampered_on_server(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.2", private, work)
    _rewrite_tar(bundle, {"wheels/ttbt5-0.3.2-py3-none-any.whl": b"swapped on the server"})
    return "does not match the signed SHA-256"


def _case_gzip_bomb(site: Path, private: Path, other: Path, work: Path) -> str:
    """A correctly signed pointer to a gzip that would expand to 256 MiB: refused as not a
    plain tar, without expanding it."""
    bundle = site / "ttbt5-0.3.3.tar"
    with gzip.open(bundle, "wb", compresslevel=9) as fh:
        for _ in range(256):
            fh.write(bytes(1 << 20))
    point_latest(site, bundle, private)
    return "not a readable tar file"


def _case_longer_than_signed(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.4", private, work)
    point_latest(site, bundle, private, size=1000)
    return "more than the signed 1000 bytes"


def _case_unsigned_pointer(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.5", private, work)
    (site / "latest.json").write_text(json.dumps({"version": "0.3.5", "bundle": bundle.name}))
    return "not a signed pointer"


def _case_pointer_wrong_key(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.6", private, work)
    point_latest(site, bundle, other)
    return "pointer signature is not valid"


def _case_older_serial(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.7", private, work)
    point_latest(site, bundle, private, serial=5)
    return "older than"


def _case_expired(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.8", private, work)
    point_latest(site, bundle, private, expires_days=-1)
    return "update server stale since"


def _case_other_hardware(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.3.9", private, work)
    point_latest(site, bundle, private, hardware=("linux-riscv64",))
    return "built for linux-riscv64"


def _case_other_product(site: Path, private: Path, other: Path, work: Path) -> str:
    bundle = publish(site, "0.4.0", private, work)
    point_latest(site, bundle, private, product="doorbell")
    return "not ttbt5"


CASES = {
    "tampered-manifest": (_case_tampered_manifest, "verify", {}),
    "tampered-file": (_case_tampered_file, "verify", {}),
    "wrong-key": (_case_wrong_key, "verify", {}),
    "truncated": (_case_truncated_on_server, "verify", {}),
    "path-traversal": (_case_traversal, "verify", {}),
    "symlink": (_case_symlink, "verify", {}),
    "downgrade": (_case_downgrade, "check", {}),
    "min-from": (_case_min_from, "verify", {}),
    "lying-pointer": (_case_lying_pointer, "verify", {}),
    "tampered-on-server": (_case_tampered_on_server, "download", {}),
    "gzip-bomb": (_case_gzip_bomb, "verify", {}),
    "longer-than-signed": (_case_longer_than_signed, "download", {}),
    "unsigned-pointer": (_case_unsigned_pointer, "check", {}),
    "pointer-wrong-key": (_case_pointer_wrong_key, "check", {}),
    "older-serial": (_case_older_serial, "check", {}),
    "expired-pointer": (_case_expired, "check", {}),
    "other-hardware": (_case_other_hardware, "check", {}),
    "other-product": (_case_other_product, "check", {}),
    "no-disk-space": (
        lambda site, private, other, work: (publish(site, "0.2.9", private, work), "disk space")[1],
        "download",
        {"reserve_mb": 1_000_000},
    ),
    "too-big": (
        lambda site, private, other, work: (
            publish(site, "0.3.1", private, work, extra={"pad.whl": os.urandom(1_200_000)}),
            "more than update.max_bundle_mb",
        )[1],
        "download",
        {"max_bundle_mb": 1},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_releases_are_refused_and_current_is_untouched(
    case: str, baseline: Device, site: Path, keys: tuple[Path, Path], work: Path
):
    private, _ = keys
    other = work / "other.key"
    if not other.exists():
        make_keys(work, "other")
    make, step, overrides = CASES[case]
    expected = make(site, private, other, work)
    before_current, before_previous = baseline.current(), baseline.previous()
    before = baseline.snapshot()
    ok, results = run_update(baseline, **overrides)
    assert not ok
    assert expected in results[-1].message
    final = last_run(baseline)[-1]
    assert (final["step"], final["ok"], final["active"]) == (step, False, False)
    assert expected in final["message"]
    assert (baseline.current(), baseline.previous()) == (before_current, before_previous)
    assert baseline.bootable()
    assert sorted(p.name for p in (baseline.root / "releases").iterdir()) == ["0.1.0"]
    assert not (baseline.root / "pending.json").exists()
    assert not (work.parent / "escaped.txt").exists()
    assert baseline.snapshot() == before


def test_download_cut_every_time_fails_and_keeps_the_partial_file(
    baseline: Device, site: Path, keys: tuple[Path, Path], work: Path, server: ReleaseServer
):
    private, _ = keys
    publish(site, "0.4.1", private, work)
    server.cut["ttbt5-0.4.1.tar"], server.cut_times["ttbt5-0.4.1.tar"] = 2000, 3
    ok, results = run_update(baseline)
    assert not ok
    assert "download interrupted" in results[-1].message and "resumes it" in results[-1].message
    assert baseline.current() == "releases/0.1.0"
    part = baseline.root / "downloads" / "ttbt5-0.4.1.tar.part"
    assert part.stat().st_size == 6000  # three cut responses, each resumed from the last
    server.cut.pop("ttbt5-0.4.1.tar")


def test_failing_health_gate_rolls_back_and_reports(
    tmp_path: Path, work: Path, keys: tuple[Path, Path], site: Path, server: ReleaseServer
):
    private, public = keys
    device = Device(tmp_path, server.url, public)
    try:
        install_baseline(device, site, private, work)
        before = device.snapshot()
        # a release whose audio loop stalls right after READY
        publish(site, "0.6.0", private, work, behaviour="stall")
        ok, _ = run_update(device)
        assert not ok
        run = last_run(device)
        health, rollback = next(line for line in run if line["step"] == "health"), run[-1]
        assert (health["step"], health["ok"]) == ("health", False)
        assert "audio" in health["message"]  # stalled after READY
        assert (rollback["step"], rollback["ok"], rollback["active"]) == ("rollback", True, False)
        assert (
            "0.6.0 failed" in rollback["message"] and "rolled back to 0.1.0" in rollback["message"]
        )
        assert "and it is healthy" in rollback["message"]
        assert device.current() == "releases/0.1.0" and device.previous() is None
        assert json.loads(device.health.read_text())["version"] == "0.1.0"
        assert not (device.root / "releases" / "0.6.0").exists()
        assert device.snapshot() == before

        # a release that never comes up at all
        publish(site, "0.6.1", private, work, behaviour="crash")
        ok, _ = run_update(device, health_timeout_s=2.0)
        assert not ok
        health = next(line for line in last_run(device) if line["step"] == "health")
        assert "did not report ready within 2 s" in health["message"]
        assert device.current() == "releases/0.1.0"
        assert device.bootable()
        assert device.snapshot() == before
    finally:
        device.stop()


def test_forced_downgrade_is_allowed(
    tmp_path: Path, work: Path, keys: tuple[Path, Path], site: Path, server: ReleaseServer
):
    private, public = keys
    device = Device(tmp_path, server.url, public)
    try:
        publish(site, "0.7.0", private, work)
        assert run_update(device)[0]
        publish(site, "0.6.9", private, work)
        done = ota(device, "update", "--force")  # refused without it: see the cases above
        assert done.returncode == 0, done.stderr
        assert (device.current(), device.previous()) == ("releases/0.6.9", "releases/0.7.0")
    finally:
        device.stop()


def test_a_rollback_that_fails_too_tries_the_next_kept_release(
    tmp_path: Path, work: Path, keys: tuple[Path, Path], site: Path, server: ReleaseServer
):
    private, public = keys
    device = Device(tmp_path, server.url, public, health_timeout_s=3.0)
    try:
        for version in ("1.1.0", "1.2.0", "1.3.0"):
            publish(site, version, private, work)
            assert run_update(device)[0]
        assert (device.current(), device.previous()) == ("releases/1.3.0", "releases/1.2.0")
        # the running release rots on disk (a bad SD card): it no longer starts
        package = next((device.root / "releases" / "1.3.0").rglob("firmware_app/__init__.py"))
        package.write_text("raise SystemExit(3)\n")
        publish(site, "1.4.0", private, work, behaviour="crash")
        ok, results = run_update(device)
        assert not ok
        rollbacks = [(r.ok, r.version, r.active) for r in results if r.step == "rollback"]
        assert rollbacks == [(False, "1.3.0", True), (True, "1.2.0", False)]
        assert "rolled back to 1.2.0 and it is healthy" in results[-1].message
        assert device.current() == "releases/1.2.0"
        assert json.loads(device.health.read_text())["version"] == "1.2.0"
        final = last_run(device)[-1]
        assert (final["step"], final["ok"], final["version"]) == ("rollback", True, "1.2.0")

        # nothing left that comes up: reported as failed, the first choice stays current
        for release in ("1.1.0", "1.2.0"):
            package = next((device.root / "releases" / release).rglob("firmware_app/__init__.py"))
            package.write_text("raise SystemExit(3)\n")
        publish(site, "1.5.0", private, work, behaviour="crash")
        ok, results = run_update(device)
        assert not ok
        assert (results[-1].step, results[-1].ok, results[-1].active) == ("rollback", False, False)
        assert "no kept release came up healthy" in results[-1].message
        assert device.current() == "releases/1.2.0"
    finally:
        device.stop()


def test_every_restart_clears_the_start_limit_first(tmp_path: Path):
    """Two rolled-back updates in ten minutes must not leave the third attempt, or its
    rollback, refused by systemd with start-limit-hit: ``reset-failed`` comes first."""
    from firmware_app.config.settings import UpdateSettings
    from firmware_app.ota.update import Updater

    log = tmp_path / "calls"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    systemctl.chmod(0o755)
    settings = UpdateSettings(
        root=tmp_path / "root", restart_command=[str(systemctl), "--no-block", "restart", "a", "b"]
    )
    Updater(settings).restart()
    assert log.read_text().splitlines() == ["--no-block reset-failed a b", "--no-block restart a b"]
    # any other restart command is run as it is
    other = UpdateSettings(root=tmp_path / "root", restart_command=["sh", "-c", f"echo x >> {log}"])
    Updater(other).restart()
    assert log.read_text().splitlines()[-1] == "x"
