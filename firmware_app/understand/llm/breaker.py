"""The circuit breaker in front of the online model.

closed ─(``failures`` consecutive failures)─► open ─(``reset_s``)─► half_open
half_open lets exactly one request through: its success closes the breaker, its failure
opens it again; other requests meanwhile get the fallback at once.

Written here rather than taken from pybreaker: pybreaker wraps a synchronous call and
holds its lock for the whole call (a streamed answer lasts seconds, and our requests run
as asyncio tasks on another thread), times the open state with the wall clock (a Pi
without a real-time clock jumps years when NTP syncs), and lets every caller through in
half-open. This one is a decision (``allow``) and an outcome (``record``), timed with
the monotonic clock, safe from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["success", "failure", "abandoned"]


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        reset_s: float,
        on_change: Callable[[BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = max(1, failures)
        self.reset_s = reset_s
        self.on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._count = 0  # consecutive failures
        self._opened_at = 0.0
        self._probing = False
        self._notify_lock = threading.Lock()
        self._reported: BreakerState = "closed"

    @property
    def state(self) -> BreakerState:
        changed = None
        with self._lock:
            changed = self._maybe_half_open()
            state = self._state
        self._notify(changed)
        return state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._count

    def allow(self) -> bool:
        """May a request go out now? In half-open, True once (the probe), until its
        outcome is recorded."""
        with self._lock:
            changed = self._maybe_half_open()
            if self._state == "closed":
                allowed = True
            elif self._state == "half_open" and not self._probing:
                self._probing = allowed = True
            else:
                allowed = False
        self._notify(changed)
        return allowed

    def record(self, outcome: Outcome) -> None:
        """The outcome of a request that ``allow`` let through. ``abandoned`` (cancelled
        by the user before any answer) proves nothing either way."""
        changed: BreakerState | None = None
        with self._lock:
            was_probe = self._state == "half_open"
            if was_probe:
                self._probing = False
            if outcome == "success":
                self._count = 0
                if self._state != "closed":
                    changed = self._state = "closed"
            elif outcome == "failure":
                self._count += 1
                if self._state == "half_open" or (
                    self._state == "closed" and self._count >= self.failures
                ):
                    changed = self._state = "open"
                    self._opened_at = self._clock()
        self._notify(changed)

    def _maybe_half_open(self) -> BreakerState | None:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_s:
            self._state = "half_open"
            self._probing = False
            return "half_open"
        return None

    def _notify(self, changed: BreakerState | None) -> None:
        # Outside the state lock (the callback posts to the assistant and may read our
        # state), but serialised and always reporting the state as it is now, so racing
        # changes can never leave a stale state as the last one reported.
        if changed is None or self.on_change is None:
            return
        with self._notify_lock:
            with self._lock:
                current = self._state
            if current != self._reported:
                self._reported = current
                self.on_change(current)
