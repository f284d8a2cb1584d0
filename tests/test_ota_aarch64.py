"""The documented release build for Raspberry Pi OS 64-bit, for real: wheels from PyPI for
aarch64 (so it needs PyPI; pip's cache makes a second run quick), then every file checked
against what Bookworm (CPython 3.11, glibc 2.36) and Trixie (CPython 3.13, glibc 2.41)
accept, computed here with ``packaging.tags`` rather than with the build's own check.
pyalsaaudio travels as source and is compiled by the updater, offline, the way the device
does it."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from ota_support import Device, ReleaseServer, make_keys, publish, run_update
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from firmware_app.ota.manifest import load_public_key
from firmware_app.ota.pointer import open_pointer

REPO = Path(__file__).resolve().parent.parent
PI_MARKERS = {
    "platform_machine": "aarch64",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not pypi_reachable(), reason="the aarch64 build downloads from PyPI"),
]


# Raspberry Pi OS 64-bit: Bookworm and Trixie, (Python, glibc)
PI_OS = {"bookworm": ((3, 11), 36, "3.11.2"), "trixie": ((3, 13), 41, "3.13.5")}


def pi_os_tags(release: str) -> set[Tag]:
    """What pip on that Raspberry Pi OS 64-bit release installs."""
    python, glibc, _ = PI_OS[release]
    abi = f"cp{python[0]}{python[1]}"
    platforms = [f"manylinux_2_{minor}_aarch64" for minor in range(glibc, 16, -1)]
    platforms += ["manylinux2014_aarch64", "linux_aarch64"]
    tags = set(cpython_tags(python, abis=[abi], platforms=platforms))
    tags |= set(compatible_tags(python, abi, platforms=platforms))
    return tags


def not_sources(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: the repository, virtual environments, build records and
    anything that is not a file or a folder (a named pipe or socket a running program left
    in the checkout)."""
    left = set(shutil.ignore_patterns(".git", ".venv", ".venv-*", "*.egg-info")(folder, names))
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            left.add(name)
    return left


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("aarch64")
    private, public = make_keys(work)
    out = work / "public"
    src = work / "src"  # a clean copy: the build leaves nothing in the checkout
    shutil.copytree(REPO, src, ignore=not_sources)
    script = src / "scripts" / "build-release.sh"
    done = subprocess.run(
        ["bash", str(script), "--key", str(private), "--out", str(out), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, public


def test_every_file_fits_raspberry_pi_os_64_bookworm_and_trixie(
    built: tuple[Path, Path], tmp_path: Path
):
    out, public = built
    pointer = open_pointer(
        (out / "latest.json").read_bytes(),
        load_public_key(public),
        hardware="linux-aarch64",
        min_serial=None,
    )
    assert pointer.hardware == ("linux-aarch64",)
    with tarfile.open(out / pointer.bundle) as tar:
        names = [m.name.split("/", 1)[1] for m in tar if m.name.startswith("wheels/")]
        tar.extractall(tmp_path, filter="data")
    supported = {release: pi_os_tags(release) for release in PI_OS}
    # what pip on each release can take from the bundle: one version of each project
    projects: dict[str, dict[str, str]] = {release: {} for release in PI_OS}
    for name in names:
        if name.endswith(".whl"):
            project, version, _, tags = parse_wheel_filename(name)
            fits = {release for release, ok in supported.items() if tags & ok}
            assert fits, f"{name} installs on neither Pi OS Bookworm nor Trixie 64-bit"
        else:
            project, version = parse_sdist_filename(name)
            # pyalsaaudio has no wheel at all, lgpio none for Python 3.13
            assert project in ("pyalsaaudio", "lgpio"), f"{name}: not one built on the device"
            fits = set(PI_OS) if project == "pyalsaaudio" else {"trixie"}
        for release in fits:
            have = projects[release].setdefault(project, str(version))
            assert have == str(version), f"{project} twice for {release}"
    for release, found in projects.items():
        assert {"setuptools", "wheel", "pyalsaaudio", "lgpio", "ai-edge-litert"} <= set(found)
        assert "pyopen-wakeword" in found and "tflite-runtime" not in found, release
    # every dependency the app declares for the Pi is in the bundle, in a matching version
    app = next(tmp_path.glob("wheels/ttbt5-*.whl"))
    with zipfile.ZipFile(app) as zf:
        meta = next(n for n in zf.namelist() if n.endswith("METADATA"))
        requires = HeaderParser().parsestr(zf.read(meta).decode()).get_all("Requires-Dist")
    for release, (_, _, full) in PI_OS.items():
        markers = {**PI_MARKERS, "python_version": full[:4], "python_full_version": full}
        for line in requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(markers):
                continue
            have = projects[release].get(canonicalize_name(req.name))
            assert have is not None, f"{req.name} is missing from the bundle for {release}"
            assert req.specifier.contains(have, prereleases=True), f"{req.name} {have} vs {req}"


def test_pyalsaaudio_is_compiled_by_the_updater_offline(built: tuple[Path, Path], tmp_path: Path):
    """The bundle's pyalsaaudio source and build tools, in a release for this machine:
    the updater compiles it with no index and no network, and the module imports."""
    if shutil.which("gcc") is None or not Path("/usr/include/alsa/asoundlib.h").exists():
        pytest.skip("needs gcc and libasound2-dev, as install.sh puts on the device")
    out, _ = built
    with tarfile.open(next(out.glob("ttbt5-*.tar"))) as tar:
        wanted = [
            m
            for m in tar
            if m.name.startswith(
                ("wheels/pyalsaaudio-", "wheels/setuptools-", "wheels/wheel-", "wheels/packaging-")
            )
        ]
        tar.extractall(tmp_path / "from-pi", members=wanted, filter="data")
    extra = {p.name: p.read_bytes() for p in (tmp_path / "from-pi" / "wheels").iterdir()}
    site = tmp_path / "site"
    site.mkdir()
    private, public = make_keys(tmp_path)
    publish(site, "0.2.0", private, tmp_path, requires=["pyalsaaudio"], wheels=extra)
    server = ReleaseServer(site)
    device = Device(tmp_path / "device", server.url, public)
    try:
        ok, results = run_update(device)
        assert ok, [r.message for r in results]
        python = device.root / "releases" / "0.2.0" / "venv" / "bin" / "python"
        done = subprocess.run(
            [str(python), "-I", "-c", "import alsaaudio; print(alsaaudio.__file__)"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "releases/0.2.0/venv" in done.stdout, done.stderr
    finally:
        device.stop()
        server.close()
