"""What a release bundle holds for its target, and whether each file fits it.

The targets are Raspberry Pi OS 64-bit, both releases in use: Bookworm (CPython 3.11,
``cp311``, glibc 2.36) and Trixie (CPython 3.13, ``cp313``, glibc 2.41), on aarch64. One
bundle serves both: it holds each dependency's wheel for each Python (pip on the device
picks its own), so a speaker updates whichever system it runs. A cross build on another
machine takes wheels only, so the wheel platforms must be listed one by one: pip does not
widen ``--platform manylinux_2_36_aarch64`` to the older manylinux tags that lgpio and
pyopen-wakeword are published for, and it evaluates dependency markers
(``platform_machine == 'aarch64'``) for the build machine, not the target. Both are done
here instead. Pure-Python projects published only as source
(srt, for one) are built into ``py3-none-any`` wheels by the release build.

pyalsaaudio publishes no Linux wheels at all. It goes into the bundle as its source
distribution and the updater compiles it on the device, with the compiler and ALSA headers
``install.sh`` installs (``build-essential``, ``libasound2-dev``, ``python3-dev``). That keeps
the version the one the app was tested with and the release venv free of the system's
site-packages, which Debian's ``python3-alsaaudio`` would need.

``python -m firmware_app.ota.wheelhouse targets`` prints one line per target Python
(``3.11``, ``3.13``);
``python -m firmware_app.ota.wheelhouse requirements APP_WHEEL wheels|sources [PY]`` prints
the app's dependencies for a target: those installed from wheels and those compiled on
the device;
``python -m firmware_app.ota.wheelhouse platforms [PY]`` the pip ``--platform`` list;
``python -m firmware_app.ota.wheelhouse check DIR`` exits 1 naming every file that fits
no target, or a target that a project has no file for.
"""

from __future__ import annotations

import contextlib
import re
import sys
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

BUILT_ON_DEVICE = frozenset({"pyalsaaudio"})
"""Projects without a wheel for any target: shipped as source, compiled by the updater."""


@dataclass(frozen=True)
class Target:
    python: tuple[int, int] = (3, 11)
    python_full: str = "3.11.2"
    glibc: tuple[int, int] = (2, 36)
    arch: str = "aarch64"
    built_on_device: frozenset[str] = BUILT_ON_DEVICE
    """Projects this target gets as source (no wheel for its Python), compiled by the
    updater with the build tools install.sh puts on the device (swig for lgpio)."""

    @property
    def abi(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}"

    def platforms(self) -> list[str]:
        """Every manylinux platform tag the target's glibc accepts, newest first."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.arch}" for m in range(minor, 16, -1)]
        return [*tags, f"manylinux2014_{self.arch}"]

    def markers(self) -> dict[str, str]:
        return {
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_machine": self.arch,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "python_version": f"{self.python[0]}.{self.python[1]}",
            "python_full_version": self.python_full,
            "implementation_version": self.python_full,
            "extra": "",
        }


PI_OS_BOOKWORM_64 = Target()
# lgpio (gpiozero's pin driver) publishes aarch64 wheels up to Python 3.12
PI_OS_TRIXIE_64 = Target(
    python=(3, 13),
    python_full="3.13.5",
    glibc=(2, 41),
    built_on_device=BUILT_ON_DEVICE | {"lgpio"},
)
TARGETS = (PI_OS_BOOKWORM_64, PI_OS_TRIXIE_64)
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _platform_fits(platform: str, target: Target) -> bool:
    if platform == "any":
        return True
    if platform == f"linux_{target.arch}":
        return True  # built on such a machine (piwheels, --native)
    match = _MANYLINUX.match(platform)
    if match:
        glibc, arch = (int(match[1]), int(match[2])), match[3]
        return arch == target.arch and glibc <= target.glibc
    for legacy, glibc in _LEGACY.items():
        if platform == f"{legacy}_{target.arch}":
            return glibc <= target.glibc
    return False


def _interpreter_fits(interpreter: str, abi: str, target: Target) -> bool:
    major, minor = target.python
    if abi == target.abi:
        return interpreter == target.abi
    if abi == "abi3":
        found = re.fullmatch(r"cp(\d)(\d+)", interpreter)
        if found is None:
            return False
        return int(found[1]) == major and int(found[2]) <= minor
    if abi == "none":
        found = re.fullmatch(r"(?:py|cp)(\d)(\d*)", interpreter)
        if not found or int(found[1]) != major:
            return False
        return not found[2] or int(found[2]) <= minor
    return False


def target_for(python: str | None) -> Target:
    """The target of a ``3.11``-style version (None: Bookworm, the oldest)."""
    for target in TARGETS:
        if python in (None, f"{target.python[0]}.{target.python[1]}"):
            return target
    raise ValueError(f"no target for Python {python}")


def misfit(filename: str, target: Target = PI_OS_BOOKWORM_64) -> str | None:
    """Why this bundle file cannot be installed on the target, or None when it can."""
    if filename.endswith(".whl"):
        try:
            _, _, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            return str(exc)
        for tag in tags:
            if _platform_fits(tag.platform, target) and _interpreter_fits(
                tag.interpreter, tag.abi, target
            ):
                return None
        shown = ", ".join(sorted(str(tag) for tag in tags))
        glibc = ".".join(map(str, target.glibc))
        return f"{filename}: no tag fits {target.abi} {target.arch} glibc {glibc} ({shown})"
    try:
        name, _ = parse_sdist_filename(filename)
    except InvalidSdistFilename as exc:
        return str(exc)
    if name in target.built_on_device:
        return None
    return f"{filename}: a source distribution of {name}, which is not built on the device"


def bundle_hardware(filenames: list[str]) -> tuple[str, ...]:
    """The hardware a set of wheels runs on, as pointers name it: ``any`` for pure Python,
    else ``linux-<arch>`` for each architecture the platform wheels are built for."""
    arches = set()
    for filename in filenames:
        if not filename.endswith(".whl"):
            continue
        with contextlib.suppress(InvalidWheelFilename):
            for tag in parse_wheel_filename(filename)[3]:
                if tag.platform != "any":
                    arches.add(
                        tag.platform.split("_", 1)[1]
                        if tag.platform.startswith("linux_")
                        else re.sub(r"^manylinux(?:_\d+_\d+|\d+)_", "", tag.platform)
                    )
    return tuple(sorted(f"linux-{arch}" for arch in arches)) or ("any",)


def target_requirements(app_wheel: Path, target: Target = PI_OS_BOOKWORM_64) -> list[Requirement]:
    """The app's ``Requires-Dist`` whose markers hold on the target."""
    with zipfile.ZipFile(app_wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(zf.read(meta).decode())
    wanted = []
    for line in headers.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(target.markers()):
            req.marker = None
            wanted.append(req)
    return wanted


def project_of(filename: str) -> str | None:
    with contextlib.suppress(InvalidWheelFilename, InvalidSdistFilename):
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        return str(parse_sdist_filename(filename)[0])
    return None


def check(names: list[str], targets: tuple[Target, ...] = TARGETS) -> list[str]:
    """Every file must fit some target, and each project must have a file for every target
    (a project with wheels only for one Python leaves the other system without it)."""
    problems = []
    fits: dict[str, set[str]] = {}
    for name in names:
        why = [misfit(name, target) for target in targets]
        if all(why):
            problems.append(str(why[0]))
        project = project_of(name)
        if project is not None:
            fits.setdefault(project, set()).update(
                t.abi for t, w in zip(targets, why, strict=True) if w is None
            )
    for project, abis in sorted(fits.items()):
        if abis and len(abis) < len(targets):
            lacking = sorted({t.abi for t in targets} - abis)
            problems.append(f"{project}: no file for {', '.join(lacking)}")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["targets"] and len(argv) == 1:
        print("\n".join(f"{t.python[0]}.{t.python[1]}" for t in TARGETS))
        return 0
    if argv[:1] == ["platforms"] and len(argv) <= 2:
        print("\n".join(target_for(argv[1] if len(argv) == 2 else None).platforms()))
        return 0
    if argv[:1] == ["requirements"] and len(argv) in (3, 4) and argv[2] in ("wheels", "sources"):
        sources = argv[2] == "sources"
        target = target_for(argv[3] if len(argv) == 4 else None)
        for req in target_requirements(Path(argv[1]), target):
            if (canonicalize_name(req.name) in target.built_on_device) == sources:
                print(req)
        return 0
    if argv[:1] == ["check"] and len(argv) == 2:
        names = sorted(p.name for p in Path(argv[1]).iterdir() if p.is_file())
        problems = check(names)
        abis = " and ".join(t.abi for t in TARGETS)
        print("\n".join(problems) or f"{len(names)} files fit {abis} aarch64")
        return 1 if problems else 0
    print(
        "usage: python -m firmware_app.ota.wheelhouse targets | platforms [PY] | "
        "requirements APP_WHEEL wheels|sources [PY] | check DIR",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
