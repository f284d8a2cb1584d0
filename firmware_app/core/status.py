"""The assistant's health as others read it: a snapshot it publishes on its own thread.

MQTT health and anything else on another thread read the last snapshot here; they never
call into the assistant, whose collections change only on its thread. The assistant
publishes after every message but frames, and while frames stream in when the state
changes or at most every half second (`StatusCadence`), so a snapshot is never more than
about that old.

It also publishes what it shows (`Showing`: its state and the flags a person should see)
to its `Display` after every event it handles; the display, at the LED edge, chooses how
that looks, so the state machine knows nothing of lights or patterns.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loguru import logger

if TYPE_CHECKING:
    from firmware_app.core.states import State


class StatusBoard:
    """The last status published: written by the assistant's thread, read by any."""

    def __init__(self, initial: Mapping[str, object] | None = None) -> None:
        self._lock = threading.Lock()
        self._snapshot: dict[str, object] = dict(initial or {"state": "idle"})

    def publish(self, status: Mapping[str, object]) -> None:
        snapshot = copy.deepcopy(dict(status))  # nothing in it is shared with its maker
        with self._lock:
            self._snapshot = snapshot

    def read(self) -> dict[str, object]:
        """A copy of the last snapshot, the reader's to keep or change."""
        with self._lock:
            return copy.deepcopy(self._snapshot)


class StatusCadence:
    """When the assistant publishes on its board: after every message but frames, and while
    frames stream in when the state changes or at most every ``FRAME_INTERVAL_S``. A status
    that cannot be made (a part's figures failing) is skipped and logged once until one can
    be made again: it must never stop the assistant. Its thread only."""

    FRAME_INTERVAL_S = 0.5

    def __init__(self, board: StatusBoard, state: object) -> None:
        self._board = board
        self._published, self._published_state = 0.0, state
        self._failed = False

    def publish(self, make: Callable[[], Mapping[str, object]], state: object, frame: bool) -> None:
        now = time.monotonic()
        if (
            frame
            and now - self._published < self.FRAME_INTERVAL_S
            and self._published_state == state
        ):
            return
        self._published, self._published_state = now, state
        try:
            status = make()
        except Exception as exc:  # a part's figures failing must not stop the assistant
            if not self._failed:
                logger.opt(exception=exc).error("status: {}", exc)
            self._failed = True
            return
        self._failed = False
        self._board.publish(status)


@dataclass(frozen=True)
class Showing:
    """What the assistant shows a person, after each event it handled."""

    state: State
    muted: bool
    ringing: bool
    """A timer is ringing."""
    updating: bool
    """An update is being installed (do not unplug)."""
    offline: bool
    """The network or the broker is gone."""
    timing: bool = False
    """A Home Assistant timer is running on this speaker."""


class Display(Protocol):
    """Shows what the assistant shows; on the assistant's thread, so it must not block."""

    def show(self, showing: Showing) -> None: ...


__all__ = ["Display", "Showing", "StatusBoard", "StatusCadence"]
