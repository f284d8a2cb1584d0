"""The publisher's and the device's scripts together: build-release.sh signs a release from a
local wheelhouse, a server on 127.0.0.1 publishes it, ota-update.sh installs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ota_support import Device, ReleaseServer, make_app_wheel, make_keys, make_wheel

from firmware_app.ota.manifest import load_public_key
from firmware_app.ota.pointer import open_pointer

REPO = Path(__file__).resolve().parent.parent


def test_build_release_then_ota_update(tmp_path: Path):
    private, public = make_keys(tmp_path)
    site = tmp_path / "site"
    wheels = tmp_path / "wheels"
    make_app_wheel(wheels, "1.0.0", requires=["somedep>=2"])
    make_wheel(wheels, "somedep", "2.0", {"somedep.py": "VERSION = '2.0'\n"})
    build = [
        "bash",
        str(REPO / "scripts" / "build-release.sh"),
        "--key",
        str(private),
        "--out",
        str(site),
        "--wheelhouse",
        str(wheels),
        "--python",
        sys.executable,
    ]
    done = subprocess.run(
        [*build, "--version", "1.0.0"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    raw = (site / "latest.json").read_bytes()
    pointer = open_pointer(raw, load_public_key(public), hardware="any", min_serial=None)
    assert pointer.version == "1.0.0"
    listing = subprocess.run(
        ["tar", "tf", str(site / "ttbt5-1.0.0.tar")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listing == [
        "manifest.json",
        "manifest.sig",
        "wheels/somedep-2.0-py3-none-any.whl",
        "wheels/ttbt5-1.0.0-py3-none-any.whl",
    ]
    # a version with no app wheel in the wheelhouse and no way to build it is refused
    bad = subprocess.run(
        [*build, "--version", "9.9.9", "--python", "/nonexistent/python"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0

    server = ReleaseServer(site)
    device = Device(tmp_path / "device", server.url, public)
    try:
        env = {**os.environ, "TTBT5_PYTHON": sys.executable}
        update = subprocess.run(
            ["bash", str(REPO / "scripts" / "ota-update.sh"), "--config", str(device.config)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert update.returncode == 0, update.stderr
        assert "update commit ok: 1.0.0 is installed and healthy" in update.stderr
        assert device.current() == "releases/1.0.0" and device.bootable()
        # the dependency wheel was not installed (not required by the app) but was verified
        assert "2 file hashes verified" in update.stderr
    finally:
        device.stop()
        server.close()


def test_ota_update_without_an_installed_app_says_so(tmp_path: Path):
    env = {**os.environ, "TTBT5_PYTHON": str(tmp_path / "missing" / "python")}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "ota-update.sh")],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 2
    assert "is TTBT5 installed?" in done.stderr
