"""The C heap under the engines (ONNX Runtime, Piper, pocketsphinx, SQLite): returning freed
pages to the system, and how much of it is in use versus held free.

RSS alone cannot tell a leak from fragmentation: a leak grows ``in_use_mb``, while blocks
that were freed but cannot go back to the system grow ``free_mb``. Health reports both so a
speaker that has grown over weeks can be read without a debugger. Both are glibc's; on other
C libraries the functions are no-ops and the figures are None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    info = getattr(libc, "mallinfo2", None)  # glibc 2.33 and later
    if info is not None:
        info.restype = _MallInfo2
        info.argtypes = []
    return libc


def release_free_memory() -> None:
    """Hand freed heap pages back to the system (``malloc_trim``). Without it the large
    blocks of one synthesis stay in the process after it is done."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


M_MMAP_THRESHOLD = -3  # mallopt's parameter number (glibc malloc.h)
LARGE_BLOCK = 256 * 1024


def map_large_blocks_apart() -> None:
    """Give every block of 256 kB or more a mapping of its own, returned to the system when
    it is freed. glibc starts at 128 kB but raises that threshold each time such a block is
    freed, up to 32 MB; after the first synthesis ONNX Runtime's and pocketsphinx's large
    buffers then come from the heap, and what they leave behind stays resident between
    uses (about 6 MB over a conversation on the Zero profile, ``bench_profile.py``). The
    price: fresh pages for each large block, about 8% more CPU per synthesis, so only the
    Zero profile pays it. Call it before the engines load."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)


def heap_stats() -> dict[str, float] | None:
    """Bytes the C heap has in use and holds free (all arenas, plus blocks mapped on their
    own), in MB; None where the C library cannot say."""
    info = getattr(_libc(), "mallinfo2", None)
    if info is None:
        return None
    stats = info()
    return {
        "in_use_mb": round((stats.uordblks + stats.hblkhd) / 2**20, 1),
        "free_mb": round(stats.fordblks / 2**20, 1),
    }
