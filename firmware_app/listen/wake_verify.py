"""Second looks at openWakeWord's near misses: microWakeWord on the same audio, and a
verifier on openWakeWord's own features.

openWakeWord's hey_jarvis needs 0.95 to keep false wakes under one in two hours, and at
that threshold it misses a third of the corpus's voices (docs/wake.md). microWakeWord errs
on other audio than openWakeWord does, so a wake is taken either as before (the
openWakeWord score over its own threshold) or when both engines are fairly sure within a
short span: openWakeWord at least ``open_floor`` and microWakeWord at least ``micro_floor``,
each at its highest over the last ``span_frames`` frames. A near miss is confirmed only
once openWakeWord's score has stopped rising: a wake it would take alone is reported
where it was without the second engine (unless its score dips on the way up), and a
confirmed one at openWakeWord's peak, so the pre-roll handed to the recognizer starts
where it always did. The rule and its
figures are measured on the wake and speech corpora (scripts/bench_wake.py).

The verifier (``wake_verifier``) is the other second look: a near miss of at least
``verifier_floor`` also counts when the verifier, reading the embeddings openWakeWord
read at that peak, scores ``verifier_threshold`` or more. It is judged at the peak itself
(the step before openWakeWord's score falls), as it was trained.

The result is one score per model, so the detector's :class:`PeakPicker` decides as for a
single engine: a confirmed wake scores at least the model's openWakeWord threshold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from firmware_app.listen.wake import ScoringEngine


@dataclass(frozen=True)
class VerifyRule:
    """When a near miss of openWakeWord counts: both engines over their floors within
    ``span_frames`` 80 ms frames of each other, or a peak of at least ``verifier_floor``
    that the verifier scores ``verifier_threshold`` or more."""

    open_floor: float
    micro_floor: float
    span_frames: int
    verifier_floor: float = 1.0
    verifier_threshold: float = 1.0


# Measured on the wake corpus and the speech corpus's requests by scripts/bench_wake.py's
# rule (docs/wake.md): only models with a rule here are confirmed by both engines.
VERIFY_RULES: dict[str, VerifyRule] = {
    "hey_jarvis": VerifyRule(
        open_floor=0.4, micro_floor=0.3, span_frames=3, verifier_floor=0.1, verifier_threshold=0.7
    ),
}


class RecentPeak:
    """The highest of the last ``frames`` scores."""

    def __init__(self, frames: int) -> None:
        self._scores: deque[float] = deque(maxlen=max(1, frames))

    def push(self, score: float) -> float:
        self._scores.append(score)
        return max(self._scores)

    def clear(self) -> None:
        self._scores.clear()


def fused_score(
    open_score: float,
    open_before: float,
    open_peak: float,
    micro_peak: float,
    threshold: float,
    rule: VerifyRule,
    verifier_before: float = 0.0,
    open_before_that: float = 0.0,
) -> float:
    """openWakeWord's score, raised to its ``threshold`` when a second look confirms a
    near miss, openWakeWord no longer rising (no higher than ``open_before``, its score a
    frame earlier): microWakeWord (both recent peaks over their floors), or the verifier
    (``verifier_before``) at that earlier frame when it was the peak (no lower than
    ``open_before_that``, the frame before it)."""
    confirmed = open_peak >= rule.open_floor and micro_peak >= rule.micro_floor
    verified = (
        open_before >= max(rule.verifier_floor, open_before_that)
        and verifier_before >= rule.verifier_threshold
    )
    if open_score < threshold and open_score <= open_before and (confirmed or verified):
        return threshold
    return open_score


@dataclass
class _Recent:
    """What one model's rule reads of the frames before: the engines' recent peaks,
    openWakeWord's last two scores and the verifier's score a frame ago."""

    open_peak: RecentPeak
    micro_peak: RecentPeak
    before: float = 0.0
    before_that: float = 0.0
    verified_before: float = 0.0


class VerifiedScorer:
    """openWakeWord's scores, with its near misses confirmed for the models in ``rules``
    by microWakeWord (``micro``) and by the verifier (``verifier``), each of which scores
    those of the models it looks at, under the same names (None: that look is off). The
    verifier reads openWakeWord's front end, so it is scored after openWakeWord, and only
    on a frame where openWakeWord reached its floor: its score counts nowhere else."""

    def __init__(
        self,
        open_scorer: ScoringEngine,
        micro: ScoringEngine | None,
        rules: Mapping[str, VerifyRule],
        thresholds: Mapping[str, float],
        verifier: ScoringEngine | None = None,
    ) -> None:
        self.names = open_scorer.names
        self._open = open_scorer
        self._micro = micro
        self._verifier = verifier
        self._rules = dict(rules)
        self._thresholds = dict(thresholds)
        self._recent = self._forget()

    def _forget(self) -> dict[str, _Recent]:
        return {
            m: _Recent(RecentPeak(r.span_frames), RecentPeak(r.span_frames))
            for m, r in self._rules.items()
        }

    def scores(self, pcm: bytes) -> dict[str, float]:
        scores = self._open.scores(pcm)
        micro = self._micro.scores(pcm) if self._micro is not None else {}
        looked = any(scores[m] >= r.verifier_floor for m, r in self._rules.items())
        verified = self._verifier.scores(pcm) if self._verifier is not None and looked else {}
        for model, rule in self._rules.items():
            recent = self._recent[model]
            score = scores[model]
            scores[model] = fused_score(
                score,
                recent.before,
                recent.open_peak.push(score),
                recent.micro_peak.push(micro.get(model, 0.0)),
                self._thresholds[model],
                rule,
                recent.verified_before,
                recent.before_that,
            )
            recent.before_that, recent.before = recent.before, score
            recent.verified_before = verified.get(model, 0.0)
        return scores

    def reset(self) -> None:
        self._open.reset()
        if self._micro is not None:
            self._micro.reset()
        if self._verifier is not None:
            self._verifier.reset()
        self._recent = self._forget()
