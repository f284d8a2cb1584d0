"""What every test of a running assistant shares: waiting for a condition, and the order of
events in one spoken turn."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

TIMEOUT = 10.0

TURN_ORDER = (
    "wake",
    "listening",
    "speech_start",
    "speech_end",
    "transcript",
    "intent",
    "reply",
    "speak_start",
    "speak_end",
)
"""The events of one spoken request answered by a local intent, in the order they happen."""


def wait_until(check: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.01)


def turn_events(types: Iterable[str]) -> list[str]:
    """The turn's events among ``types``, in the order they came."""
    return [t for t in types if t in TURN_ORDER]
