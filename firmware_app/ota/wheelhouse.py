"""What a release bundle holds for its target, and whether each file fits it.

The target is Raspberry Pi OS Bookworm 64-bit: CPython 3.11 (``cp311``), glibc 2.36,
aarch64. A cross build on another machine takes wheels only, so the wheel platforms must be
listed one by one: pip does not widen ``--platform manylinux_2_36_aarch64`` to the older
manylinux tags that tflite-runtime, lgpio and pyopen-wakeword are published for, and it
evaluates dependency markers (``platform_machine == 'aarch64'``) for the build machine, not
the target. Both are done here instead. Pure-Python projects published only as source
(srt, for one) are built into ``py3-none-any`` wheels by the release build.

pyalsaaudio publishes no Linux wheels at all. It goes into the bundle as its source
distribution and the updater compiles it on the device, with the compiler and ALSA headers
``install.sh`` installs (``build-essential``, ``libasound2-dev``, ``python3-dev``). That keeps
the version the one the app was tested with and the release venv free of the system's
site-packages, which Debian's ``python3-alsaaudio`` would need.

``python -m firmware_app.ota.wheelhouse requirements APP_WHEEL wheels|sources`` prints
the app's dependencies for the target: those installed from wheels and those compiled on
the device;
``python -m firmware_app.ota.wheelhouse platforms`` the pip ``--platform`` list;
``python -m firmware_app.ota.wheelhouse check DIR`` exits 1 naming every file that does not
fit the target.
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
    parse_sdist_filename,
    parse_wheel_filename,
)

BUILT_ON_DEVICE = frozenset({"pyalsaaudio"})
"""Projects without a wheel for the target: shipped as source, compiled by the updater."""


@dataclass(frozen=True)
class Target:
    python: tuple[int, int] = (3, 11)
    python_full: str = "3.11.2"
    glibc: tuple[int, int] = (2, 36)
    arch: str = "aarch64"

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
    if name in BUILT_ON_DEVICE:
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


def main(argv: list[str]) -> int:
    if argv[:1] == ["platforms"]:
        print("\n".join(PI_OS_BOOKWORM_64.platforms()))
        return 0
    if argv[:1] == ["requirements"] and len(argv) == 3 and argv[2] in ("wheels", "sources"):
        sources = argv[2] == "sources"
        for req in target_requirements(Path(argv[1])):
            if (req.name in BUILT_ON_DEVICE) == sources:
                print(req)
        return 0
    if argv[:1] == ["check"] and len(argv) == 2:
        names = sorted(p.name for p in Path(argv[1]).iterdir() if p.is_file())
        problems = [why for name in names if (why := misfit(name))]
        print("\n".join(problems) or f"{len(names)} files fit {PI_OS_BOOKWORM_64.abi} aarch64")
        return 1 if problems else 0
    print(
        "usage: python -m firmware_app.ota.wheelhouse "
        "platforms | requirements APP_WHEEL wheels|sources | check DIR",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
