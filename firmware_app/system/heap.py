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


M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers (glibc malloc.h)
M_MMAP_THRESHOLD = -3
HELD_TOP = 4 * 2**20
"""Free memory at the top of a heap beyond which glibc hands it back at once."""
HEAP_BLOCK_MAX = 32 * 2**20
"""glibc's own ceiling for its moving mapping threshold (64-bit): what it settles at once
the engines have freed their first large buffers."""
SEPARATE_BLOCK = 256 * 1024
"""The Zero profile's mapping threshold (``fix_heap_thresholds``)."""


def fix_heap_thresholds(separate_block: int = HEAP_BLOCK_MAX) -> None:
    """Fixed heap thresholds in place of glibc's moving ones, so what the service holds
    after a request does not depend on which thread last freed a large buffer.

    glibc raises its thresholds each time a block it mapped on its own is freed: blocks
    up to that size then come from a heap, and a thread's own heap keeps a free top of up
    to twice that size (64 MB at most). ``malloc_trim`` returns free memory inside every
    heap but the top only of the main one, so over hours RSS sat on one of several levels
    about 16 MB apart, depending on which worker thread's heap last held a large buffer
    (``scripts/soak.py``). With the top's limit fixed at
    ``HELD_TOP``, a free top past 4 MB goes back at once.

    Blocks of ``separate_block`` or more get a mapping of their own, returned to the
    system when freed. The default keeps them in the heap, where the moving threshold
    settles anyway. The Zero profile passes ``SEPARATE_BLOCK``: ONNX Runtime's and
    pocketsphinx's large buffers then never stay resident between uses (about 6 MB less
    over a conversation, ``bench_profile.py``), for fresh pages on each large block, about
    8% more CPU per synthesis. Call it before the engines load."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_TRIM_THRESHOLD, HELD_TOP)
        mallopt(M_MMAP_THRESHOLD, separate_block)


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
