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

from firmware_app.core.errors import EngineUnavailableError
from firmware_app.recognize.pronunciations import decoder, entries

RATE = 16000
HOP = 160  # pocketsphinx frames are 10 ms
MAX_GAP = 8  # hops: quiet inside a word (the closures of "s-t-o-p") up to 80 ms
LOOK_BACK = 15  # hops: the word may begin up to 150 ms before the spotted segment
WORD_HOPS = (8, 50)  # the loud part of "stop" lasts 0.08 to 0.5 s
SLACK = 20  # hops the loud stretch may reach beyond the spotted word's boundaries
REFRACTORY = 100  # hops: one "stop" is one stop, however many times it is spotted
MAX_WAIT = 150  # hops: give up on a detection not followed by a pause within 1.5 s


class PocketsphinxStopSpotter:
    """``process(pcm) -> bool`` is true once per "stop" said alone.

    ``threshold`` is pocketsphinx's keyphrase threshold (smaller spots more, and also more
    wrongly); ``pause_ms`` the quiet needed on both sides of the word; ``quiet_db`` how far
    below the word's loudest 10 ms that quiet must stay; ``floor`` an absolute level that
    always counts as quiet (room noise); ``min_level`` the RMS the word must reach at its
    loudest (about -30 dBFS: a word said to the device, not a whisper of residual echo).
    """

    def __init__(
        self,
        phrase: str = "stop",
        threshold: float = 1e-30,
        pause_ms: int = 250,
        quiet_db: float = 15.0,
        floor: float = 200.0,
        min_level: float = 1000.0,
    ) -> None:
        try:
            import pocketsphinx  # noqa: F401
        except ImportError as exc:
            raise EngineUnavailableError(
                "the stop word needs the pocketsphinx package; reinstall with scripts/setup.sh"
            ) from exc
        self._decoder: Any = decoder(
            entries(phrase.split()),
            keyphrase=phrase,
            kws_threshold=threshold,
            samprate=RATE,
            loglevel="FATAL",
        )
        self._pause = max(1, pause_ms // 10)
        self._quiet_ratio = float(10.0 ** (-quiet_db / 20.0))
        self._floor = floor
        self._min_level = min_level
        self._levels: deque[float] = deque(maxlen=400)  # 4 s of 10 ms RMS levels
        self._hops = 0  # 10 ms hops seen since the last reset
        self._utt_start = 0  # hop at which the decoder's current utterance began
        self._tail = np.zeros(0, dtype=np.int16)
        self._pending: deque[tuple[int, int]] = deque()  # (first hop, last hop) of each word
        self._seen = 0  # detections of the decoder's current utterance already taken
        self._last_stop = -REFRACTORY - 1  # last hop of the last "stop" counted
        self._decoder.start_utt()

    def process(self, pcm: bytes) -> bool:
        samples = np.concatenate([self._tail, np.frombuffer(pcm, dtype="<i2")])
        whole = len(samples) // HOP * HOP
        self._tail = samples[whole:]
        if whole == 0:
            return False
        for start in range(0, whole, HOP):
            block = samples[start : start + HOP].astype(np.float64)
            self._levels.append(float(np.sqrt(np.mean(block * block))))
        self._hops += whole // HOP
        self._decoder.process_raw(samples[:whole].astype("<i2").tobytes(), False, False)
        if self._decoder.hyp() is not None:
            # The search goes on through the utterance, listing every detection so far; it
            # is not restarted on a detection, which could cut a following word in two.
            segments = [s for s in self._decoder.seg() if s.word != "<sil>"]
            for seg in segments[self._seen :]:
                self._pending.append(
                    (self._utt_start + seg.start_frame, self._utt_start + seg.end_frame)
                )
            self._seen = len(segments)
        if (
            self._hops - self._utt_start > 2000
            and not self._pending
            and self._levels
            and self._levels[-1] <= self._floor
        ):
            self._restart()  # keep the search short over hours of listening; cut only in a pause
        heard = False
        while self._pending and not heard:
            decided = self._confirm(*self._pending[0])
            if decided is None:
                break  # the pause after it has not been heard yet
            self._pending.popleft()
            heard = decided
        return heard

    def _restart(self) -> None:
        self._decoder.end_utt()
        self._decoder.start_utt()
        self._utt_start = self._hops
        self._seen = 0

    def _level(self, hop: int) -> float | None:
        back = self._hops - 1 - hop
        if back < 0 or back >= len(self._levels):
            return None
        return self._levels[len(self._levels) - 1 - back]

    def _confirm(self, first: int, last: int) -> bool | None:
        """Decide a detection once enough audio after it has been heard (None: not yet):
        the word is the loud stretch around the spotted segment (the spotter's boundaries
        are rough, and "stop" has two short closures inside it), and both sides of it must
        be quiet."""
        if self._hops < last + self._pause + MAX_GAP:
            return None
        near = [self._level(h) for h in range(first - LOOK_BACK, last + 1)]
        peak_value = max((v for v in near if v is not None), default=0.0)
        if peak_value < self._min_level:
            return False
        peak = first - LOOK_BACK + near.index(peak_value)
        quiet = max(self._floor, peak_value * self._quiet_ratio)
        start, end = self._edge(peak, -1, quiet), self._edge(peak, 1, quiet)
        if end + self._pause >= self._hops:
            # still loud after it: listen a little longer, then give up
            return None if self._hops - last < MAX_WAIT else False
        if not WORD_HOPS[0] <= end - start + 1 <= WORD_HOPS[1]:
            return False  # a phrase, or a click: not one word
        if start < first - SLACK or end > last + SLACK:
            return False  # the loud stretch is more than the spotted word: part of a phrase
        if start <= self._last_stop + REFRACTORY:
            return False
        around = [*range(start - self._pause, start), *range(end + 1, end + 1 + self._pause)]
        # Before the first audio (start of listening) counts as quiet.
        levels = [self._level(h) for h in around]
        if not all(v is None or v <= quiet for v in levels):
            return False
        self._last_stop = end
        return True

    def _edge(self, hop: int, step: int, quiet: float) -> int:
        """The last loud hop from ``hop`` in direction ``step``, bridging short gaps."""
        edge, gap = hop, 0
        while gap <= MAX_GAP:
            hop += step
            level = self._level(hop)
            if level is None:
                break
            if level > quiet:
                edge, gap = hop, 0
            else:
                gap += 1
        return edge

    def reset(self) -> None:
        """Start afresh (when the device starts speaking or ringing)."""
        self._pending.clear()
        self._last_stop = -REFRACTORY - 1
        self._tail = np.zeros(0, dtype=np.int16)
        self._levels.clear()
        self._hops = 0
        self._restart()
