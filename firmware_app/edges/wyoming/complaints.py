"""Warnings about misbehaving clients, bounded: a flood of bad connections costs a few
log lines, not one per connection."""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger

PER_WINDOW = 5
WINDOW_S = 60.0


class Complaints:
    """At most ``PER_WINDOW`` warnings every ``WINDOW_S``; the next one after a quiet
    spell says how many were left out."""

    def __init__(
        self,
        per_window: int = PER_WINDOW,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._window_start = -window_s
        self._count = 0
        self.left_out = 0

    def warn(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._window_start >= self._window_s:
            self._window_start, self._count = now, 0
        if self._count >= self._per_window:
            self.left_out += 1
            return
        self._count += 1
        if self.left_out:
            logger.warning("wyoming: {} more warnings about clients left out", self.left_out)
            self.left_out = 0
        logger.warning(message, *args)
