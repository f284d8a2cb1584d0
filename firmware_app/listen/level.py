"""How loud the microphone was: the loudness of a wake word, for choosing between devices
that heard the same one (the nearest heard it loudest)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class LevelMeter:
    """How loud the last ``seconds`` of microphone audio were at their loudest 80 ms, in
    dBFS: at the moment of a wake, the loudness of the wake word itself."""

    def __init__(self, seconds: float = 1.5, frame_s: float = 0.08) -> None:
        self._levels: deque[float] = deque(maxlen=max(1, round(seconds / frame_s)))

    def feed(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        rms = float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
        self._levels.append(rms)

    def level_db(self) -> float:
        peak = max(self._levels, default=0.0)
        return round(20.0 * math.log10(max(peak, 1e-3) / 32768.0), 1)


__all__ = ["LevelMeter"]
