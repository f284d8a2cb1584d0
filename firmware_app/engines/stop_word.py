"""The word "stop" without the wake word, while the assistant speaks or a timer rings.

pocketsphinx's keyphrase search (the en-us model ships in its wheel) spots "stop" in the
echo-cancelled microphone signal at a few percent of one core. A spotter alone also fires
on "stops", "bus stop" or "don't stop" in the middle of a sentence, so a detection only
counts when the word stands alone: a pause before it and after it, judged from the signal
level relative to the word itself (residual echo is well below a word said to the device).
The answer therefore comes about a quarter of a second after the word ends.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from firmware_app.errors import EngineUnavailableError

RATE = 16000
HOP = 160  # pocketsphinx frames are 10 ms


class PocketsphinxStopSpotter:
    """``process(pcm) -> bool`` is true once per "stop" said alone.

    ``threshold`` is pocketsphinx's keyphrase threshold (smaller spots more, and also more
    wrongly); ``pause_ms`` the quiet needed on both sides of the word; ``quiet_db`` how far
    below the word's loudest 10 ms that quiet must stay; ``floor`` an absolute level that
    always counts as quiet (room noise).
    """

    def __init__(
        self,
        phrase: str = "stop",
        threshold: float = 1e-20,
        pause_ms: int = 250,
        quiet_db: float = 15.0,
        floor: float = 200.0,
    ) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise EngineUnavailableError(
                "the stop word needs the pocketsphinx package; reinstall with scripts/setup.sh"
            ) from exc
        self._decoder: Any = Decoder(
            keyphrase=phrase, kws_threshold=threshold, samprate=RATE, loglevel="FATAL"
        )
        self._pause = max(1, pause_ms // 10)
        self._quiet_ratio = float(10.0 ** (-quiet_db / 20.0))
        self._floor = floor
        self._levels: deque[float] = deque(maxlen=400)  # 4 s of 10 ms RMS levels
        self._hops = 0  # 10 ms hops seen since the last reset
        self._utt_start = 0  # hop at which the decoder's current utterance began
        self._tail = np.zeros(0, dtype=np.int16)
        self._pending: tuple[int, int] | None = None  # (first hop, last hop) of the word
        self._decoder.start_utt()

    def process(self, pcm: bytes) -> bool:
        samples = np.concatenate([self._tail, np.frombuffer(pcm, dtype="<i2")])
        whole = len(samples) // HOP * HOP
        self._tail = samples[whole:]
        if whole == 0:
            return self._confirm()
        for start in range(0, whole, HOP):
            block = samples[start : start + HOP].astype(np.float64)
            self._levels.append(float(np.sqrt(np.mean(block * block))))
        self._hops += whole // HOP
        self._decoder.process_raw(samples[:whole].astype("<i2").tobytes(), False, False)
        if self._decoder.hyp() is not None:
            segments = [s for s in self._decoder.seg() if s.word != "<sil>"]
            if segments:
                first = self._utt_start + segments[0].start_frame
                last = self._utt_start + segments[-1].end_frame
                self._pending = (first, last)
            self._restart()
        elif (
            self._hops - self._utt_start > 2000 and self._levels and self._levels[-1] <= self._floor
        ):
            self._restart()  # keep the search short over hours of listening; cut only in a pause
        return self._confirm()

    def _restart(self) -> None:
        self._decoder.end_utt()
        self._decoder.start_utt()
        self._utt_start = self._hops

    def _level(self, hop: int) -> float | None:
        back = self._hops - 1 - hop
        if back < 0 or back >= len(self._levels):
            return None
        return self._levels[len(self._levels) - 1 - back]

    def _confirm(self) -> bool:
        if self._pending is None:
            return False
        first, last = self._pending
        if self._hops < last + self._pause + 2:
            return False  # the pause after the word has not been heard yet
        self._pending = None
        word = [self._level(h) for h in range(first, last + 1)]
        peak = max((v for v in word if v is not None), default=0.0)
        quiet = max(self._floor, peak * self._quiet_ratio)
        around = [
            *range(first - self._pause - 2, first - 2),
            *range(last + 3, last + 3 + self._pause),
        ]
        levels = [self._level(h) for h in around]
        # Before the first audio (start of listening) counts as quiet.
        return all(v is None or v <= quiet for v in levels)

    def reset(self) -> None:
        """Start afresh (when the device starts speaking or ringing)."""
        self._pending = None
        self._tail = np.zeros(0, dtype=np.int16)
        self._levels.clear()
        self._hops = 0
        self._decoder.end_utt()
        self._decoder.start_utt()
        self._utt_start = 0
