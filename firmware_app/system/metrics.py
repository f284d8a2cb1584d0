"""Counters and per-stage latency, computed from the event log as it happens.

It is an ordinary bus observer, so the same numbers come out of a live device (published
on MQTT), a ``simulate`` run and a benchmark reading an events file. Latencies use the
``wall`` clock (real time spent by this process), except the end-of-speech delay, which is
a property of the audio and so uses the assistant clock ``t``.

Stages of one spoken request:

- ``wake_to_listening``: ``listening.wall - wake.wall`` (chime and recorder start-up);
- ``end_of_speech``: ``speech_end.t`` minus the last speech the detector heard (the
  ``last_speech_t`` field of ``speech_end``, when the assistant reports it);
- ``stt_final``: ``transcript.wall - speech_end.wall`` (the recogniser's last pass:
  ``speech_end`` is stamped when the end was decided, before it);
- ``tts_first_audio``: ``speak_start.wall`` minus the answer (``reply``, else ``intent``);
- ``response``: ``speak_start.wall - speech_end.wall``, what the user waits.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

from firmware_app.core.events import Event

STAGES = ("wake_to_listening", "end_of_speech", "stt_final", "tts_first_audio", "response")
WINDOW = 200
"""Latency samples kept per stage: recent enough to follow a change, small enough to sort."""


def percentile(samples: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Metrics:
    """Subscribe an instance to ``assistant.bus`` (it is cheap: a few dictionary updates
    per event) and read ``snapshot()`` from any thread."""

    def __init__(self, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._sources: Counter[str] = Counter()
        self._wakes: Counter[str] = Counter()  # by model
        self._false_wakes: Counter[str] = Counter()  # by model, marked by the user
        self._samples: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self._totals: Counter[str] = Counter()
        # marks of the request in progress
        self._wake_wall: float | None = None
        self._speech_end_wall: float | None = None
        self._transcript_pending = False
        self._answer_wall: float | None = None

    def __call__(self, event: Event) -> None:
        self.observe(event.type, event.t, event.wall, event.fields)

    def observe_record(self, record: Mapping[str, Any]) -> None:
        """One record of an events file (``read_events``)."""
        self.observe(
            str(record.get("type", "")),
            float(record.get("t", 0.0)),
            float(record.get("wall", 0.0)),
            record,
        )

    def observe(self, kind: str, t: float, wall: float, fields: Mapping[str, Any]) -> None:
        with self._lock:
            self._counts[kind] += 1
            if kind == "wake":
                self._wake_wall = wall
                self._wakes[str(fields.get("model"))] += 1
            elif kind == "false_wake":
                self._false_wakes[str(fields.get("model"))] += 1
            elif kind == "listening":
                if self._wake_wall is not None:
                    self._add("wake_to_listening", wall - self._wake_wall)
                self._wake_wall = None
            elif kind == "speech_end":
                last = fields.get("last_speech_t")
                if isinstance(last, int | float) and not isinstance(last, bool):
                    self._add("end_of_speech", t - float(last))
                self._speech_end_wall = wall
                self._transcript_pending = True
                self._answer_wall = None
            elif kind == "transcript":
                if self._transcript_pending and self._speech_end_wall is not None:
                    self._add("stt_final", wall - self._speech_end_wall)
                self._transcript_pending = False
            elif kind == "intent":
                if self._answer_wall is None:
                    self._answer_wall = wall
            elif kind == "reply":
                self._sources[str(fields.get("source", "unknown"))] += 1
                self._answer_wall = wall
            elif kind == "speak_start":
                if self._answer_wall is not None:
                    self._add("tts_first_audio", wall - self._answer_wall)
                if self._speech_end_wall is not None:
                    self._add("response", wall - self._speech_end_wall)
                self._answer_wall = None
                self._speech_end_wall = None
                self._transcript_pending = False

    def _add(self, stage: str, seconds: float) -> None:
        if seconds >= 0:
            self._samples[stage].append(seconds * 1000.0)
            self._totals[stage] += 1

    def snapshot(self) -> dict[str, Any]:
        """JSON-able: event counts, replies by source, and per stage the number of samples
        ever taken, p50/p95 over the recent window and the last value, in milliseconds."""
        with self._lock:
            latency: dict[str, dict[str, Any]] = {}
            for stage in STAGES:
                samples = list(self._samples[stage])
                latency[stage] = {
                    "count": self._totals[stage],
                    "p50": _ms(percentile(samples, 50)),
                    "p95": _ms(percentile(samples, 95)),
                    "last": _ms(samples[-1] if samples else None),
                }
            counts = dict(self._counts)
            return {
                "wake_count": counts.get("wake", 0),
                "requests": counts.get("speech_end", 0),
                "errors": counts.get("error", 0),
                "events": counts,
                "replies": dict(self._sources),
                "wakes_by_model": dict(self._wakes),
                "false_wakes": dict(self._false_wakes),
                "latency_ms": latency,
            }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def metrics_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The snapshot an events file would have produced live (benchmarks, tools)."""
    metrics = Metrics(window=1_000_000)
    for record in records:
        metrics.observe_record(record)
    return metrics.snapshot()
