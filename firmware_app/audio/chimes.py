"""Short chimes made by the program (no sound files shipped): soft sine notes with a
raised-cosine envelope so they never click."""

from __future__ import annotations

from functools import cache

import numpy as np

CHIMES = {
    # name: (frequency Hz, duration s) notes, played in sequence
    "wake": ((880.0, 0.07), (1318.5, 0.09)),
    "done": ((1318.5, 0.06), (987.8, 0.08)),
    "error": ((392.0, 0.12), (0.0, 0.05), (392.0, 0.12)),
    "timer": ((1046.5, 0.12), (0.0, 0.06), (1046.5, 0.12), (0.0, 0.06), (1568.0, 0.2)),
}


@cache
def chime(name: str, rate: int) -> bytes:
    parts: list[np.ndarray] = []
    for freq, seconds in CHIMES[name]:
        n = int(rate * seconds)
        if freq == 0.0:
            parts.append(np.zeros(n, dtype=np.float32))
            continue
        t = np.arange(n, dtype=np.float32) / rate
        tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)
        ramp = min(n // 4, int(rate * 0.01))
        env = np.ones(n, dtype=np.float32)
        edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp, dtype=np.float32))
        env[:ramp], env[n - ramp :] = edge, edge[::-1]
        parts.append(tone * env * 0.3)
    wave = np.concatenate(parts)
    return (wave * 32767).astype(np.int16).tobytes()
