"""The service's fixed heap thresholds, on the real C library: a worker thread's large
buffers, once freed, do not stay resident (glibc's moving thresholds keep them)."""

from __future__ import annotations

import subprocess
import sys

import pytest

WORKER = r"""
import ctypes, sys, threading
from firmware_app.system.heap import fix_heap_thresholds
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
MB = 2**20

def anon_kb():
    with open("/proc/self/status") as status:
        return int(next(x for x in status if x.startswith("RssAnon:")).split()[1])

if sys.argv[1] == "fixed":
    fix_heap_thresholds()

def request():
    # One large buffer (glibc maps it apart, then raises its thresholds past its size),
    # then the same amount in pieces, from the thread's own heap.
    big = libc.malloc(16 * MB)
    ctypes.memset(big, 1, 16 * MB)
    libc.free(big)
    pieces = [libc.malloc(MB) for _ in range(16)]
    for piece in pieces:
        ctypes.memset(piece, 1, MB)
    for piece in pieces:
        libc.free(piece)

before = anon_kb()
worker = threading.Thread(target=request)
worker.start()
worker.join()
libc.malloc_trim(0)
print((anon_kb() - before) // 1024)
"""


def held_mb(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_worker_threads_freed_buffers_go_back_to_the_system() -> None:
    if held_mb("moving") < 12:
        pytest.skip("this C library hands a thread heap's free top back by itself")
    assert held_mb("fixed") < 4
