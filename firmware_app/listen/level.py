"""How loud the microphone was: the loudness of a wake word, for choosing between devices
that heard the same one (the nearest heard it loudest)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class LevelMeter:
    """How loud the last ``seconds`` of microphone audio were at their loudest 80 ms, in
    dBFS: at the moment of a wake, the loudness of the wake word itself.

    The level is asked for only on a wake, while every idle frame passes through here; so
    a frame is only kept (the bytes object itself, no copy), and the loudness is measured
    when it is asked for."""

    def __init__(self, seconds: float = 1.5, frame_s: float = 0.08) -> None:
        self._frames: deque[bytes] = deque(maxlen=max(1, round(seconds / frame_s)))

    def feed(self, pcm: bytes) -> None:
        self._frames.append(pcm)

    def level_db(self) -> float:
        peak = max((rms(pcm) for pcm in self._frames), default=0.0)
        return round(20.0 * math.log10(max(peak, 1e-3) / 32768.0), 1)


def rms(pcm: bytes) -> float:
    """Root-mean-square amplitude of 16-bit samples (0 for none)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0


__all__ = ["LevelMeter", "rms"]
