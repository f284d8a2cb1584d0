"""Kitchen timers, persisted so they ring after a restart (or are announced as missed).

While the service runs, a timer runs on the assistant's own clock (monotonic under
``run``, the audio position under ``simulate``): a wall clock stepped an hour either way
(NTP arriving late on a Raspberry Pi, which has no real-time clock; a person setting the
time) changes no timer. The wall-clock due time is kept in the store only to survive a
restart, and is rewritten when the wall clock is seen to step, so it stays true.

At start the stored timers are placed back on the running clock from the wall clock, if it
can be trusted; if it is known to be wrong (earlier than the last time the store saw, or
systemd-timesyncd has not synchronized it yet) the last time seen stands in for "now", so
a stale clock never announces timers as missed that are not, nor rings them all at once;
once the clock can be trusted (it synchronized, or stepped past the last time seen) those
timers are judged again by it, so one that came due while the device was off rings then.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.core.parts import Clock, RealClock
from firmware_app.system.store import Store

TABLE = "timers"
MAX_TIMERS = 20
MAX_SECONDS = 24 * 3600
SEEN_KEY = "wall_clock_seen"
"""Setting holding the latest wall-clock time the service saw (Unix seconds)."""
SEEN_EVERY_S = 600.0
STEP_S = 5.0
"""A change this large between the wall clock and the running clock is a step."""
SYNC_FLAG = Path("/run/systemd/timesync/synchronized")
"""Exists once systemd-timesyncd has synchronized the clock (its directory exists while
timesyncd runs)."""


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


def judge_wall_clock(
    epoch: float, last_seen: float | None, flag: Path = SYNC_FLAG
) -> tuple[float, str | None]:
    """The wall-clock time to judge stored timers by, and why it is not simply ``epoch``
    (None when the clock can be trusted)."""
    if last_seen is not None and epoch < last_seen - STEP_S:
        return last_seen, (
            f"the clock ({_when(epoch)}) is earlier than the last time seen ({_when(last_seen)})"
        )
    if flag.parent.is_dir() and not flag.exists():
        return max(epoch, last_seen or epoch), "systemd-timesyncd has not synchronized the clock"
    return epoch, None


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


class Timers:
    """The timers, each due at a time on the running clock (``clock.t()``) and, for a
    restart, at a wall-clock time (``Timer.due``)."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._store = store
        self._clock: Clock = clock or RealClock()
        self._timers: dict[str, Timer] = {}
        self._at: dict[str, float] = {}
        """When each timer is due on the running clock."""
        for key, value in store.items(TABLE):
            timer, problem = parse_timer(key, value)
            if timer is None:
                store.drop_bad(TABLE, key, problem)
            else:
                self._timers[key] = timer
        self._offset = self._clock.epoch() - self._clock.t()
        self._seen_at = float("-inf")
        self._untrusted: set[str] = set()
        """Stored timers placed while the wall clock could not be trusted: judged again by
        it once it can (it synchronized, or stepped to a time after the last one seen)."""
        self._distrust: tuple[str, float] | None = None
        """Why the wall clock could not be trusted at start, and the time judged from
        instead, until it can be (health's ``clock``)."""
        self._seen_then: float | None = None
        self._checked_at = float("-inf")
        self.next_due = float("inf")
        self.resume(self._clock.epoch())

    def resume(self, now: float | None = None) -> tuple[float, str | None]:
        """Place the stored timers on the running clock, judging the wall clock first
        (``now`` given: take it as the time). Returns the wall-clock time used and why it
        is not the clock's own (None when it is)."""
        reason = None
        if now is None:
            seen = self._store.get("settings", SEEN_KEY)
            self._seen_then = float(seen) if isinstance(seen, int | float) else None
            now, reason = judge_wall_clock(self._clock.epoch(), self._seen_then)
        t = self._clock.t()
        self._at = {key: t + (timer.due - now) for key, timer in self._timers.items()}
        self._untrusted = set(self._timers) if reason else set()
        self._distrust = (reason, now) if reason else None
        self._changed()
        return now, reason

    def _changed(self) -> None:
        self.next_due = min(self._at.values(), default=float("inf"))

    def add(self, seconds: float, name: str | None, now: float | None = None) -> Timer:
        """A new timer, due ``seconds`` from now (``now``: the wall-clock time to store)."""
        epoch = self._clock.epoch() if now is None else now
        timer = Timer(uuid.uuid4().hex[:12], name, float(seconds), epoch + seconds)
        self._store.put(TABLE, timer.id, asdict(timer))
        self._timers[timer.id] = timer
        self._at[timer.id] = self._clock.t() + seconds
        self._changed()
        self._see(self._clock.t(), self._clock.epoch())
        return timer

    def remove(self, timer: Timer) -> None:
        self._timers.pop(timer.id, None)
        self._at.pop(timer.id, None)
        self._store.delete(TABLE, timer.id)
        self._changed()

    def active(self) -> list[Timer]:
        return sorted(self._timers.values(), key=lambda t: self._at.get(t.id, t.due))

    def remaining(self, timer: Timer) -> float:
        """Seconds until ``timer`` rings, on the running clock."""
        return self._at.get(timer.id, float("inf")) - self._clock.t()

    def find(self, name: str | None) -> list[Timer]:
        """Timers called ``name`` (or all when no name is given)."""
        timers = self.active()
        if name is None:
            return timers
        return [t for t in timers if t.name == name] or [
            t for t in timers if t.name and (name in t.name or t.name in name)
        ]

    def due(self, t: float | None = None) -> list[Timer]:
        """Timers due by ``t`` on the running clock (now when not given)."""
        t = self._clock.t() if t is None else t
        if t < self.next_due:
            return []
        return [timer for timer in self.active() if self._at[timer.id] <= t]

    def tick(self) -> bool:
        """Called often while running: true when a timer is due. Notes the wall-clock
        time now and then (for the next start), and rewrites the stored due times when the
        wall clock steps, so a restart after the step still rings on time."""
        t, epoch = self._clock.t(), self._clock.epoch()
        offset = epoch - t
        stepped = abs(offset - self._offset) > STEP_S
        distrusted = self._untrusted or self._distrust is not None
        if distrusted and (stepped or t - self._checked_at >= 5.0):
            self._checked_at = t
            if judge_wall_clock(epoch, self._seen_then)[1] is None:
                self._distrust = None
                logger.info(
                    "the wall clock can be trusted now: timers from before the start judged by it"
                )
                for key in self._untrusted & set(self._timers):
                    self._at[key] = t + (self._timers[key].due - epoch)
                self._untrusted = set()
                self._changed()
        if stepped:
            logger.warning(
                "the wall clock stepped {:+.0f} s; timers keep running on their own clock",
                offset - self._offset,
            )
            self._offset = offset
            for key, timer in list(self._timers.items()):
                if key in self._untrusted:
                    continue  # its stored time waits for a clock that can be trusted
                moved = Timer(timer.id, timer.name, timer.seconds, epoch + self._at[key] - t)
                self._timers[key] = moved
                self._store.put(TABLE, key, asdict(moved))
            self._see(t, epoch, stepped=True)  # the new time is the one to trust
        elif t - self._seen_at >= SEEN_EVERY_S:
            self._see(t, epoch)
        return self.next_due <= t

    def clock_status(self) -> dict[str, object]:
        """For health: whether the wall clock is trusted; while it is not (since the start),
        why, and the time the stored timers were judged from (Unix seconds)."""
        if self._distrust is None:
            return {"trusted": True}
        reason, judged_from = self._distrust
        return {"trusted": False, "reason": reason, "judged_from": round(judged_from, 1)}

    def _see(self, t: float, epoch: float, stepped: bool = False) -> None:
        """Note the wall-clock time for the next start: only forwards, unless the clock
        was seen to step while running."""
        self._seen_at = t
        seen = self._store.get("settings", SEEN_KEY)
        if stepped or not isinstance(seen, int | float) or epoch > seen:
            self._store.put("settings", SEEN_KEY, round(epoch, 1))
