"""The assistant's health as others read it: a snapshot it publishes on its own thread.

MQTT health and anything else on another thread read the last snapshot here; they never
call into the assistant, whose collections change only on its thread. The assistant
publishes after every message but frames, and while frames stream in when the state
changes or at most every half second, so a snapshot is never more than about that old.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping


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


__all__ = ["StatusBoard"]
