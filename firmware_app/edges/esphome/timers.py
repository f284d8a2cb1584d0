"""Home Assistant's timers as the speaker knows them: which are running, so the LEDs can
show them while they run (they ring here when Home Assistant says they finished).

Home Assistant keeps its timers itself and tells the satellite of each change; when it
goes away (or restarts, losing them) without saying a timer ended, the timer is forgotten
at the time it was due, so the LEDs never show a timer that no longer exists for long.
Written on the satellite's loop, read on the assistant's thread (for every LED decision):
a lock, and nothing slow under it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_TIMERS = 64
"""Timers held at once; a flood of made-up ones pushes out the soonest due."""
WEEK_S = 7 * 86400.0
GRACE_S = 5.0
"""How long past its due time a timer is still shown, waiting for Home Assistant's
``finished`` (which rings it)."""


class HomeTimers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, event: str, timer_id: str, left_s: float, active: bool = True) -> None:
        """``started``/``updated``: running, due in ``left_s``; ``cancelled``/``finished``:
        gone. A paused timer (not ``active``) still counts as running, and is not due
        until it runs again (at most a week: the bound on a timer nobody ends)."""
        with self._lock:
            if event in ("cancelled", "finished"):
                self._due.pop(timer_id, None)
                return
            if timer_id not in self._due and len(self._due) >= MAX_TIMERS:
                del self._due[min(self._due, key=self._due.__getitem__)]
            left = max(0.0, min(left_s, WEEK_S)) if active else WEEK_S
            self._due[timer_id] = self._clock() + left

    def running(self) -> bool:
        """Whether any timer is running (those long past due are forgotten)."""
        now = self._clock()
        with self._lock:
            for key in [k for k, due in self._due.items() if due + GRACE_S < now]:
                del self._due[key]
            return bool(self._due)
