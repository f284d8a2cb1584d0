"""Installing a verified bundle as ``releases/<version>``: unpack, build the venv, write
``release.json`` last.

The venv holds exactly what was signed. pip runs isolated from the machine: ``--isolated``
and ``PIP_CONFIG_FILE=/dev/null`` (no ``pip.conf`` anywhere, no ``PIP_*`` variables), a
clean environment, ``--no-index`` with the bundle's own directory as the only source, and
``--require-hashes`` with every file's SHA-256 taken from the signed manifest. Every
project in the bundle is installed with ``--no-deps`` and ``pip check`` then proves the set
is complete, so no resolver can reach for anything else. Source distributions the target
has no wheel for (see ``wheelhouse.py``) are compiled with the build tools from the same
bundle, without build isolation (which would fetch its own).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from packaging.tags import Tag, sys_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from firmware_app.ota.bundle import unpack_bundle
from firmware_app.ota.layout import APP_NAME, Layout, write_atomic
from firmware_app.ota.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest, UpdateError

BUILD_TOOLS = ("setuptools", "wheel")
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def requirements(
    manifest: Manifest, version: str, supported: frozenset[Tag] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Hash-pinned requirement lines for the bundle's ``wheels/``: (build tools, every
    wheel, source builds). A bundle serves several Pythons (Raspberry Pi OS Bookworm's 3.11
    and Trixie's 3.13, see ``wheelhouse.py``): only the wheels whose tags this interpreter
    (``supported``, by default the running one, which builds the venv) accepts count, and a
    project's source only when none of its wheels does. What is left must be one version
    of each project, possibly in several builds."""
    tags = supported if supported is not None else frozenset(sys_tags())
    fitting: list[tuple[str, str, str]] = []
    sdists: list[tuple[str, str, str]] = []
    for name, digest in sorted(manifest.files.items()):
        if not name.startswith("wheels/") or name.count("/") != 1:
            continue
        filename = name.split("/", 1)[1]
        try:
            if filename.endswith(".whl"):
                project, ver, _, wheel_tags = parse_wheel_filename(filename)
                if wheel_tags & tags:
                    fitting.append((project, str(ver), digest))
            else:
                project, ver = parse_sdist_filename(filename)
                sdists.append((project, str(ver), digest))
        except (InvalidWheelFilename, InvalidSdistFilename) as exc:
            raise UpdateError(f"bundle file {filename!r} is no wheel or sdist: {exc}") from None
    have_wheel = {project for project, _, _ in fitting}
    found: dict[str, tuple[str, list[str], bool]] = {}
    chosen = [(*w, False) for w in fitting]
    chosen += [(*s, True) for s in sdists if s[0] not in have_wheel]
    for dist, pinned, digest, source in chosen:
        have = found.setdefault(dist, (pinned, [], source))
        if have[0] != pinned:
            raise UpdateError(f"bundle holds {dist} {have[0]} and {pinned}")
        have[1].append(digest)
    if found.get(APP_NAME, ("",))[0] != version:
        raise UpdateError(f"bundle has no {APP_NAME} {version} wheel under wheels/")
    lines = {
        project: f"{project}=={ver} " + " ".join(f"--hash=sha256:{d}" for d in digests)
        for project, (ver, digests, _) in found.items()
    }
    sources = [lines[p] for p, (_, _, src) in found.items() if src]
    tools = [lines[p] for p in BUILD_TOOLS if p in found] if sources else []
    wheels = [lines[p] for p, (_, _, src) in found.items() if not src]
    return tools, wheels, sources


def isolated_env() -> dict[str, str]:
    """What pip sees of the machine: nothing that could add a source or a config."""
    return {
        "PATH": CLEAN_PATH,
        "LC_ALL": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PYTHONNOUSERSITE": "1",
        "HOME": "/nonexistent",
        # lgpio from source (Python 3.13): its C library compiled in, as in its wheels,
        # rather than linked to a liblgpio Raspberry Pi OS has and Debian does not
        "PYPI": "1",
    }


class Installer:
    def __init__(self, layout: Layout, python: str, ensure_space: Callable[[int], None]) -> None:
        self.layout = layout
        self._python = python
        self._ensure_space = ensure_space
        self.message = ""

    def install(self, bundle: Path, manifest: Manifest, hook: Callable[[str], None]) -> Path:
        release = self.layout.release(manifest.version)
        if release == self.layout.target(self.layout.current):
            raise UpdateError(f"{manifest.version} is the running release; nothing to reinstall")
        if self.layout.is_complete(release):
            self.message = f"{manifest.version} was already installed"
            return release
        if release.exists():
            shutil.rmtree(release)
        staging = self.layout.releases / f".incoming-{manifest.version}"
        if staging.exists():
            shutil.rmtree(staging)
        self.layout.releases.mkdir(parents=True, exist_ok=True)
        tools, wheels, sources = requirements(manifest, manifest.version)
        unpack_bundle(bundle, staging, manifest)
        unpacked = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        self._ensure_space(unpacked // 2)
        hook("install.venv")
        release.mkdir()
        venv = release / "venv"
        self._make_venv(venv, staging / "wheels", tools, wheels, sources)
        if not (venv / "bin" / APP_NAME).exists():
            raise UpdateError(f"the app wheel did not install a {APP_NAME} command")
        for name in (MANIFEST_NAME, SIGNATURE_NAME):
            shutil.copy2(staging / name, release / name)
        digest = hashlib.sha256((release / MANIFEST_NAME).read_bytes()).hexdigest()
        info = {"version": manifest.version, "installed": time.time(), "manifest_sha256": digest}
        write_atomic(release / "release.json", json.dumps(info, indent=2).encode())
        shutil.rmtree(staging)
        self.message = f"{manifest.version} installed in {release}"
        return release

    def _make_venv(
        self, venv: Path, wheels: Path, tools: list[str], every: list[str], sources: list[str]
    ) -> None:
        has_pip = importlib.util.find_spec("pip") is not None
        self._call([self._python, "-I", "-m", "venv", "--without-pip", str(venv)])
        python = str(venv / "bin" / "python")
        if not has_pip:
            self._call([python, "-I", "-m", "ensurepip", "--default-pip"])
        pip = (
            [self._python, "-I", "-m", "pip", "--python", python]
            if has_pip
            else [python, "-I", "-m", "pip"]
        )
        common = [
            "--isolated",
            "--disable-pip-version-check",
            "--no-input",
            "--no-cache-dir",
            "--no-index",
            "--find-links",
            str(wheels),
            "--no-deps",
            "--require-hashes",
        ]
        work = venv.parent
        passes = [("tools", tools, []), ("wheels", every, ["--only-binary=:all:"])]
        passes.append(("sources", sources, ["--no-build-isolation", "--no-binary=:all:"]))
        for name, lines, extra in passes:
            if not lines:
                continue
            req = work / f".requirements-{name}.txt"
            req.write_text("\n".join(lines) + "\n")
            try:
                self._call([*pip, *common[:1], "install", *common[1:], *extra, "-r", str(req)])
            finally:
                req.unlink(missing_ok=True)
        self._call([*pip, "--isolated", "check"])

    def _call(self, cmd: list[str]) -> None:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
            env=isolated_env(),
            cwd="/",
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            what = " ".join([Path(cmd[0]).name, *cmd[1:4]])
            raise UpdateError(f"{what} failed (exit {done.returncode}): {tail[0][:200]}")
