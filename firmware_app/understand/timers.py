"""Kitchen timers, persisted so they ring after a restart (or are announced as missed).

Times are wall-clock epoch seconds, because a timer set for five minutes must ring five
minutes later even if the service restarted in between. Under ``simulate`` the epoch is the
simulation's, so runs stay deterministic.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from loguru import logger

from firmware_app.system.store import Store

TABLE = "timers"
MAX_TIMERS = 20
MAX_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Timer:
    id: str
    name: str | None
    seconds: float
    due: float

    def label(self) -> str:
        from firmware_app.understand.intents.numbers import spoken_duration

        return f"{self.name} timer" if self.name else f"{spoken_duration(self.seconds)} timer"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_timer(key: str, value: Any) -> tuple[Timer | None, str]:
    """A stored row as a Timer, or None and why not. Every field is checked, because one
    row of the wrong type must cost that timer, not every start of the service."""
    if not isinstance(value, dict):
        return None, f"a {type(value).__name__}, not an object"
    if set(value) != {"id", "name", "seconds", "due"}:
        return None, f"fields {sorted(value)}"
    name, seconds, due = value["name"], _number(value["seconds"]), _number(value["due"])
    if value["id"] != key:
        return None, "its id does not match its key"
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        return None, "the name is not text"
    if seconds is None or not 0 < seconds <= MAX_SECONDS:
        return None, f"seconds must be a number from 0 to {MAX_SECONDS}"
    if due is None:
        return None, "due must be a number"
    return Timer(key, name, seconds, due), ""


class Timers:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._timers: dict[str, Timer] = {}
        for key, value in store.items(TABLE):
            timer, problem = parse_timer(key, value)
            if timer is None:
                logger.error("timers: dropping unreadable timer {!r}: {}", key, problem)
                store.delete(TABLE, key)
            else:
                self._timers[key] = timer
        self.next_due = min((t.due for t in self._timers.values()), default=float("inf"))

    def _changed(self) -> None:
        self.next_due = min((t.due for t in self._timers.values()), default=float("inf"))

    def add(self, seconds: float, name: str | None, now: float) -> Timer:
        timer = Timer(uuid.uuid4().hex[:12], name, float(seconds), now + seconds)
        self._store.put(TABLE, timer.id, asdict(timer))
        self._timers[timer.id] = timer
        self._changed()
        return timer

    def remove(self, timer: Timer) -> None:
        self._timers.pop(timer.id, None)
        self._store.delete(TABLE, timer.id)
        self._changed()

    def active(self) -> list[Timer]:
        return sorted(self._timers.values(), key=lambda t: t.due)

    def find(self, name: str | None) -> list[Timer]:
        """Timers called ``name`` (or all when no name is given)."""
        timers = self.active()
        if name is None:
            return timers
        return [t for t in timers if t.name == name] or [
            t for t in timers if t.name and (name in t.name or t.name in name)
        ]

    def due(self, now: float) -> list[Timer]:
        if now < self.next_due:
            return []
        return [t for t in self.active() if t.due <= now]
