"""Library code that only start-up ran, let go of once the engines are loaded.

Resident memory counts every page of program code the process has mapped in, and loading
maps in far more than listening and speaking run: ONNX Runtime registers all of its kernels
and optimizes the voice's graph, pydantic builds its schemas, every library runs its
initializers, and the kernel maps up to 64 kB around each page that is run. On the Zero
profile 55 MB of the process is in file mappings over a conversation when all of that stays;
letting it go after loading, 32 MB: a conversation maps back about half of the 43 MB let go
of (``scripts/bench_profile.py``, docs/performance.md).

``release_loading_code`` unmaps the read-only pages of the interpreter and of every shared
library from the process (``madvise(MADV_DONTNEED)``). The pages stay in the kernel's page
cache, where they count as available memory and are the first to be reclaimed; a page that
is run again is mapped back by a minor fault, as on its first use, with no disk read while
the cache holds it. Only mappings without a page the process wrote are touched: a library's
relocated data is read-only too but holds written pages, and dropping those would lose
them. Linux only; elsewhere, or where the call is refused, nothing happens.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SMAPS = Path("/proc/self/smaps")
_LIBRARY = re.compile(r"\.so(\.[0-9]+)*$")


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    perms: str
    path: str
    written_kb: int
    """Pages of this file mapping the process has written (copied on write)."""


def mappings(smaps: str) -> list[Mapping]:
    """The mappings in ``/proc/<pid>/smaps`` text."""
    out: list[Mapping] = []
    head: list[str] | None = None
    written = 0

    def close() -> None:
        if head is not None:
            start, end = (int(x, 16) for x in head[0].split("-"))
            path = " ".join(head[5:])
            out.append(Mapping(start, end, head[1], path, written))

    for line in smaps.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0].endswith(":"):
            if fields[0] == "Anonymous:" and len(fields) > 1:
                written = int(fields[1])
            continue
        close()
        head, written = fields, 0
    close()
    return out


def loading_code(found: list[Mapping], executable: str) -> list[Mapping]:
    """The mappings to let go of: read-only, never written, of a shared library or the
    interpreter (data files such as the recognizer's model are used at every frame)."""
    return [
        m
        for m in found
        if "w" not in m.perms
        and m.perms.startswith("r")
        and m.written_kb == 0
        and (_LIBRARY.search(m.path) is not None or m.path == executable)
    ]


def resident_file_bytes() -> int:
    """Resident pages of file mappings (code, constant data, mapped models), in bytes; 0
    where the system cannot say."""
    try:
        shared_pages = int(Path("/proc/self/statm").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return 0
    return shared_pages * os.sysconf("SC_PAGE_SIZE")


def release_loading_code() -> int:
    """Unmap the code pages start-up mapped in; the ones that run again come back on use.
    Call it once, when loading is done. Returns the resident bytes let go of."""
    dontneed = getattr(mmap, "MADV_DONTNEED", None)  # this system's number for it
    if not sys.platform.startswith("linux") or dontneed is None:
        return 0
    try:
        found = mappings(SMAPS.read_text())
    except OSError:
        return 0
    try:  # the C library is already loaded: no search for it (that would start ldconfig)
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    before = resident_file_bytes()
    for m in loading_code(found, os.path.realpath(sys.executable)):
        madvise(m.start, m.end - m.start, dontneed)  # refused: that mapping stays
    return max(0, before - resident_file_bytes())
