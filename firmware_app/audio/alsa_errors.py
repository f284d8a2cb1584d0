"""alsa-lib's own error printing, turned off around a probe.

alsa-lib writes every failure it meets while resolving a device name ("ALSA lib
confmisc.c:855:(parse_card) cannot find card '0'", a dozen lines for one ``default`` on a
machine without a sound card) straight to stderr, before pyalsaaudio raises the one error
that says the same. ``ttbt5 check`` reports that error in its own line, so while it probes,
alsa-lib's printer is replaced by one that prints nothing (``snd_lib_error_set_handler``),
and the default is put back afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator
from functools import cache
from typing import Any

# void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...):
# the variadic tail is never read, so the fixed part is enough to receive the call
_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)


def _ignore(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
    return None


_SILENT = _HANDLER(_ignore)  # kept for the life of the process: alsa-lib holds its address


@cache
def _asound() -> Any:
    """libasound as pyalsaaudio uses it (the same library, so the same handler), or None."""
    name = ctypes.util.find_library("asound") or "libasound.so.2"
    try:
        lib = ctypes.CDLL(name)
        setter = lib.snd_lib_error_set_handler
    except (OSError, AttributeError):
        return None
    setter.argtypes = [ctypes.c_void_p]
    setter.restype = ctypes.c_int
    return lib


@contextlib.contextmanager
def alsa_errors_quiet() -> Iterator[None]:
    """alsa-lib prints nothing inside this block (the Python errors still come)."""
    lib = _asound()
    if lib is None:
        yield
        return
    lib.snd_lib_error_set_handler(ctypes.cast(_SILENT, ctypes.c_void_p))
    try:
        yield
    finally:
        lib.snd_lib_error_set_handler(None)
