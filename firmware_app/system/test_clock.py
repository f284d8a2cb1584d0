"""A wall clock that a test can step, honoured only in a documented test mode.

``TTBT5TEST_WALL_CLOCK_FILE=/path`` makes ``ttbt5 run`` add the number of seconds written
in that file to the wall clock it tells timers, the time of day and the store (the file
is re-read at most twice a second; missing or unreadable means 0). The soak uses it to
step the clock an hour either way under a running service without touching the machine's
clock. Never set it on a device: the service logs a warning at start when it is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from loguru import logger

from firmware_app.core.parts import RealClock

ENV = "TTBT5TEST_WALL_CLOCK_FILE"
REREAD_S = 0.5


class OffsetClock(RealClock):
    """The real clocks, the wall clock shifted by the file's number of seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0.0
        self._read_at = float("-inf")

    def epoch(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= REREAD_S:
            self._read_at = now
            try:
                self._offset = float(self.path.read_text(encoding="ascii")[:32].strip() or 0)
            except (OSError, ValueError):
                self._offset = 0.0
        return time.time() + self._offset


def clock_from_env(env: Mapping[str, str] = os.environ) -> RealClock:
    """The service's clock: the real one, unless the test mode asks for a steppable one."""
    path = env.get(ENV)
    if not path:
        return RealClock()
    logger.warning("test mode: the wall clock is shifted by the seconds in {} ({})", path, ENV)
    return OffsetClock(Path(path))
