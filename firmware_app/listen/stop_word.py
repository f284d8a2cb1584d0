"""The word "stop" without the wake word, while the assistant speaks or a timer rings.

pocketsphinx's keyphrase search (the en-us model ships in its wheel) spots "stop" in the
echo-cancelled microphone signal at a few percent of one core. A spotter alone also fires
on "stops", "bus stop" or "don't stop" in the middle of a sentence, so a detection only
counts when the word stands alone: a pause before it and after it, judged from the signal
level relative to the word itself (residual echo is well below a word said to the device).
The answer therefore comes about a quarter of a second after the word ends.

A keyword spotter also takes words that merely sound like the keyword ("top", "shop",
"stopped" said alone) for it. So a word that stands alone is heard once more by a second,
tiny recognizer that must choose between "stop" and its near neighbours: only "stop"
counts. That runs on the half second of a candidate word, nothing else.

That tiny recognizer shares pocketsphinx's acoustic model, which tells "stop" from "stock",
"stopped" or "top" little better than chance on the speech corpus's voices
(docs/speech.md). Where a Whisper model is at hand, the second look can be Whisper's
transcript of the candidate word instead (``second_look``): far slower (about 0.6 CPU
seconds per candidate on a development machine), but it runs only on a word already
spotted and standing alone, and it hears "Top.", "Non-stop." and "It stopped." as what
they are.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware_app.core.errors import EngineUnavailableError
from firmware_app.recognize.pronunciations import decoder, entries

RATE = 16000
THRESHOLD = 1e-30  # pocketsphinx's keyphrase threshold for "stop"
HOP = 160  # pocketsphinx frames are 10 ms
MAX_GAP = 8  # hops: quiet inside a word (the closures of "s-t-o-p") up to 80 ms
LOOK_BACK = 15  # hops: the word may begin up to 150 ms before the spotted segment
WORD_HOPS = (8, 50)  # the loud part of "stop" lasts 0.08 to 0.5 s
SLACK = 20  # hops the loud stretch may reach beyond the spotted word's boundaries
REFRACTORY = 100  # hops: one "stop" is one stop, however many times it is spotted
MAX_WAIT = 150  # hops: give up on a detection not followed by a pause within 1.5 s
ROOM_MARGIN = 2.0  # the pause around the word may be this much (6 dB) above the room's noise
KEPT_HOPS = 400  # the last 4 s of audio, for the second look at a candidate word
PAD_HOPS = 15  # audio kept on each side of the word for that look
# What "stop" said alone must not be taken for. Each is one path of the second look's
# grammar, next to "stop" itself; only "stop" counts.
REJECTING = {"top", "tops", "shop", "step", "drop", "stomp", "stopped", "stops", "non"}
NEIGHBOURS = [
    "top", "tops", "shop", "step", "stock", "drop", "stomp", "stopped", "stops", "non", "a",
    "it", "up",
]  # fmt: skip


@dataclass(frozen=True)
class WordShape:
    """How long a candidate word may be: its loud stretch lasts up to ``longest`` hops
    and reaches up to ``slack`` hops beyond the end of the spotted word (a reverberant
    tail; before the word only ``SLACK``: a word said before "stop" is no tail)."""

    longest: int = WORD_HOPS[1]
    slack: int = SLACK


# With the tiny grammar as the second look, a longer word lets as many near misses
# through as it gains real stops; Whisper tells them apart, so with it a reverberant tail
# is allowed (docs/speech.md, "The stop word alone").
PLAIN_WORD = WordShape()
REVERBERANT_WORD = WordShape(longest=70, slack=35)


class PocketsphinxStopSpotter:
    """``spot(pcm) -> bool`` is true once per "stop" said alone.

    ``threshold`` is pocketsphinx's keyphrase threshold (smaller spots more, and also more
    wrongly); ``pause_ms`` the quiet needed on both sides of the word; ``quiet_db`` how far
    below the word's loudest 10 ms that quiet must stay; ``floor`` an absolute level that
    always counts as quiet (room noise); ``min_level`` the RMS the word must reach at its
    loudest (about -30 dBFS: a word said to the device, not a whisper of residual echo);
    ``second_look`` a transcriber of 16 kHz float samples (Whisper's) that judges each
    candidate word instead of the tiny grammar: only a transcript that is the phrase counts.
    """

    def __init__(
        self,
        phrase: str = "stop",
        threshold: float = THRESHOLD,
        pause_ms: int = 250,
        quiet_db: float = 15.0,
        floor: float = 200.0,
        min_level: float = 1000.0,
        second_look: Callable[[np.ndarray], str] | None = None,
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
        self._phrase = phrase
        self._transcribe = second_look
        self._rule = REVERBERANT_WORD if second_look else PLAIN_WORD
        self._checker = None if second_look else _second_look(phrase)
        self._audio: deque[np.ndarray] = deque(maxlen=KEPT_HOPS)  # 10 ms blocks
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

    def spot(self, pcm: bytes) -> bool:
        samples = np.concatenate([self._tail, np.frombuffer(pcm, dtype="<i2")])
        whole = len(samples) // HOP * HOP
        self._tail = samples[whole:]
        if whole == 0:
            return False
        for start in range(0, whole, HOP):
            block = samples[start : start + HOP]
            self._audio.append(block)
            wide = block.astype(np.float64)
            self._levels.append(float(np.sqrt(np.mean(wide * wide))))
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
        # Quiet is relative to the word, and to the room: in steady noise (a fan, a hood)
        # the pause around a word is only as quiet as the noise, a little above it.
        room = float(np.percentile(self._levels, 20)) * ROOM_MARGIN if self._levels else 0.0
        quiet = max(self._floor, peak_value * self._quiet_ratio, room)
        start, end = self._edge(peak, -1, quiet), self._edge(peak, 1, quiet)
        if end + self._pause >= self._hops:
            # still loud after it: listen a little longer, then give up
            return None if self._hops - last < MAX_WAIT else False
        if not WORD_HOPS[0] <= end - start + 1 <= self._rule.longest:
            return False  # a phrase, or a click: not one word
        if start < first - SLACK or end > last + self._rule.slack:
            return False  # the loud stretch is more than the spotted word: part of a phrase
        if start <= self._last_stop + REFRACTORY:
            return False
        around = [*range(start - self._pause, start), *range(end + 1, end + 1 + self._pause)]
        # Before the first audio (start of listening) counts as quiet.
        levels = [self._level(h) for h in around]
        if not all(v is None or v <= quiet for v in levels):
            return False
        if not self._second_look_says_stop(start - PAD_HOPS, end + PAD_HOPS):
            return False
        self._last_stop = end
        return True

    def _second_look_says_stop(self, first: int, last: int) -> bool:
        """Whether the word between hops ``first`` and ``last`` is heard as the phrase
        and not one of its neighbours."""
        offset = len(self._audio) - self._hops  # position of hop h is h + offset
        blocks = list(self._audio)[max(0, first + offset) : max(0, last + offset + 1)]
        if not blocks:
            return False
        if self._transcribe is not None:
            said = self._transcribe(np.concatenate(blocks).astype(np.float32) / 32768.0)
            return " ".join(re.sub(r"[^a-z' ]", " ", said.lower()).split()) == self._phrase
        if self._checker is None:
            return True
        self._checker.set_cmn(self._decoder.get_cmn())  # the room as heard so far
        self._checker.start_utt()
        self._checker.process_raw(np.concatenate(blocks).astype("<i2").tobytes(), False, True)
        self._checker.end_utt()
        hyp = self._checker.hyp()
        heard = set(hyp.hypstr.split()) if hyp is not None else set()
        # The second look errs towards the phrase: only a word that is clearly another
        # ("top", "stopped", "shop") and no phrase at all rejects the candidate.
        return self._phrase in heard or not heard & REJECTING

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
        self._audio.clear()
        self._hops = 0
        self._restart()


def _second_look(phrase: str) -> Any:
    """A recognizer that hears one word: ``phrase`` or one of its ``NEIGHBOURS`` (None for
    a phrase of several words, which is spotted without a second look)."""
    if " " in phrase.strip():
        return None
    words = entries([phrase, *NEIGHBOURS])
    checker: Any = decoder(words, samprate=RATE, loglevel="FATAL")
    said = dict.fromkeys(word.split("(")[0] for word, _ in words)  # alternates: one arc
    arcs: list[tuple[int, int, float] | tuple[int, int, float, str]] = [(1, 0, 1.0)]
    arcs += [(0, 1, 1.0, word) for word in said]  # words in a row: "a stop", "non stop"
    checker.add_fsg("look", checker.create_fsg("look", 0, 1, arcs))
    checker.activate_search("look")
    return checker
