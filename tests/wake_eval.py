"""Scoring the wake corpus: false rejects and false accepts per model.

A stream is fed in 80 ms frames, as the microphone delivers it. A detection belongs to
the corpus stretch it falls in: in a positive clip of its own model it accepts that clip;
in a sound-alike of its own model ("Hey Jarvie" for hey_jarvis) it is a sound-alike accept,
counted per clip (near misses by design would swamp a per-hour figure); anywhere else in
the negative audio it is a false accept, counted per hour of that audio; in another
model's positive clip it is a confusion.
``trace`` + ``replay`` score once and decide many times, so the benchmark can sweep
thresholds with the product's own :class:`PeakPicker`, and two-engine rules on the
product's :class:`VerifiedScorer` (``fused_trace``; ``fused_fast`` for a sweep).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from wake_corpus import Corpus, Stream

from firmware_app.core.engines import Detection, WakeDetector
from firmware_app.core.messages import FRAME_SAMPLES, FRAME_SECONDS
from firmware_app.listen.wake import PeakPicker, ScoringEngine
from firmware_app.listen.wake_verify import VerifiedScorer, VerifyRule

Found = list[tuple[float, Detection]]


def frames(audio: np.ndarray) -> Iterator[bytes]:
    for i in range(len(audio) // FRAME_SAMPLES):
        yield audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes()


def run(detector: WakeDetector, stream: Stream) -> Found:
    """Detections through the real detector; times are the ends of their frames."""
    detector.reset()
    found = []
    for i, pcm in enumerate(frames(stream.audio)):
        detection = detector.detect(pcm)
        if detection is not None:
            found.append(((i + 1) * FRAME_SECONDS, detection))
    return found


def trace(scorer: ScoringEngine, stream: Stream) -> tuple[dict[str, np.ndarray], float]:
    """Every frame's score per model, and the CPU seconds the scoring took."""
    scorer.reset()
    rows = []
    start = time.process_time()
    for pcm in frames(stream.audio):
        rows.append(scorer.scores(pcm))
    cpu = time.process_time() - start
    return {name: np.array([r[name] for r in rows]) for name in scorer.names}, cpu


def replay(
    scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float], refractory: int
) -> Found:
    """The detections a detector with these thresholds would have made on the trace."""
    picker = PeakPicker(thresholds, refractory)
    names = list(scores)
    found = []
    for i, row in enumerate(zip(*(scores[n] for n in names), strict=True)):
        detection = picker.update(dict(zip(names, row, strict=True)))
        if detection is not None:
            found.append(((i + 1) * FRAME_SECONDS, detection))
    return found


@dataclass
class ModelTally:
    model: str
    positives: int = 0
    accepted: int = 0
    false_accepts: int = 0
    sound_alike_accepts: int = 0
    confusions: int = 0
    by_condition: dict[str, list[int]] = field(default_factory=dict)  # tag: [accepted, clips]

    def figures(self, corpus: Corpus) -> dict:
        own = [s for s in corpus.negatives.spans if s.imitates == self.model]
        ordinary_hours = corpus.negatives.seconds - sum(s.end - s.start for s in own)
        alike_clips = len(own)
        return {
            "positives": self.positives,
            "rejected": self.positives - self.accepted,
            "frr": round(1 - self.accepted / self.positives, 4) if self.positives else None,
            "false_accepts": self.false_accepts,
            "fa_per_hour": round(self.false_accepts / (ordinary_hours / 3600), 2),
            "sound_alike_accepts": f"{self.sound_alike_accepts}/{alike_clips}",
            "confusions": self.confusions,
            "accepted_by_condition": {k: f"{a}/{n}" for k, (a, n) in self.by_condition.items()},
        }


def _span_at(stream: Stream, t: float) -> int:
    starts = [s.start for s in stream.spans]
    return max(0, bisect.bisect_right(starts, t) - 1)


def tally(corpus: Corpus, on_positives: Found, on_negatives: Found, models: list[str]) -> dict:
    """Counts per model: what the CI test asserts and the benchmark prints."""
    out = {m: ModelTally(m) for m in models}
    accepted: set[int] = set()
    for t, d in on_positives:
        i = _span_at(corpus.positives, t)
        if corpus.positives.spans[i].model == d.model:
            accepted.add(i)
        elif d.model in out:
            out[d.model].confusions += 1
    for i, span in enumerate(corpus.positives.spans):
        if span.model in out:
            tally_ = out[span.model]
            hit = i in accepted
            tally_.positives += 1
            tally_.accepted += hit
            cell = tally_.by_condition.setdefault(span.tag, [0, 0])
            cell[0] += hit
            cell[1] += 1
    for t, d in on_negatives:
        if d.model in out:
            if corpus.negatives.spans[_span_at(corpus.negatives, t)].imitates == d.model:
                out[d.model].sound_alike_accepts += 1
            else:
                out[d.model].false_accepts += 1
    return out


def false_accept_tags(corpus: Corpus, on_negatives: Found) -> dict[str, int]:
    """Where the detections in the negative audio came from (sound-alike, ordinary, noise)."""
    tags: dict[str, int] = {}
    for t, _ in on_negatives:
        tag = corpus.negatives.spans[_span_at(corpus.negatives, t)].tag
        tags[tag] = tags.get(tag, 0) + 1
    return tags


class TraceScorer:
    """Scores read back from a trace, so the product's rule decides on recorded scores."""

    def __init__(self, trace: dict[str, np.ndarray]) -> None:
        self.names = list(trace)
        self._trace = trace
        self._i = 0

    def scores(self, pcm: bytes) -> dict[str, float]:
        row = {name: float(self._trace[name][self._i]) for name in self.names}
        self._i += 1
        return row

    def reset(self) -> None:
        self._i = 0


def fused_trace(
    model: str,
    open_trace: np.ndarray,
    micro_trace: np.ndarray,
    threshold: float,
    rule: VerifyRule,
    looked: np.ndarray | None = None,
) -> np.ndarray:
    """What the product's scorer gives on these recorded scores (``looked``: the
    verifier's, when its second look is on)."""
    scorer = VerifiedScorer(
        TraceScorer({model: open_trace}),
        TraceScorer({model: micro_trace}),
        {model: rule},
        {model: threshold},
        TraceScorer({model: looked}) if looked is not None else None,
    )
    return np.array([scorer.scores(b"")[model] for _ in range(len(open_trace))])


def recent_peak(scores: np.ndarray, frames: int) -> np.ndarray:
    out = scores.copy()
    for k in range(1, frames):
        out[k:] = np.maximum(out[k:], scores[:-k])
    return out


def fused_fast(
    open_trace: np.ndarray,
    micro_trace: np.ndarray,
    threshold: float,
    rule: VerifyRule,
    looked: np.ndarray | None = None,
) -> np.ndarray:
    """``fused_trace`` in numpy, for the sweep (checked against it at the chosen rule)."""
    before = np.concatenate([[0.0], open_trace[:-1]])
    both = (recent_peak(open_trace, rule.span_frames) >= rule.open_floor) & (
        recent_peak(micro_trace, rule.span_frames) >= rule.micro_floor
    )
    if looked is not None:
        looked_before = np.concatenate([[0.0], looked[:-1]])
        before_that = np.concatenate([[0.0, 0.0], open_trace[:-2]])[: len(open_trace)]
        both |= (before >= np.maximum(rule.verifier_floor, before_that)) & (
            looked_before >= rule.verifier_threshold
        )
    confirmed = (open_trace < threshold) & (open_trace <= before) & both
    return np.where(confirmed, threshold, open_trace)


def woken(model: str, threshold: float, scores: list[np.ndarray], refractory: int) -> list[bool]:
    """For each recording's trace: whether it would wake at all."""
    return [bool(replay({model: s}, {model: threshold}, refractory)) for s in scores]
