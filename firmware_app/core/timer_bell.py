"""Timers that ring on this speaker: when one comes due, what it says, and the timers
that came due while the service was off.

Ringing is the service's job. A one-off ``ttbt5 ask``/``say`` runs its own assistant on a
fast simulated clock, so its bell is silent (``rings=False``): it can neither ring a
timer early nor take a missed one's announcement away from the service. The bell tells
the assistant what is due and what to say; the assistant decides when it is said.
"""

from __future__ import annotations

from loguru import logger

from firmware_app.core.events import Emitter
from firmware_app.speak.utterances import Origin, Pending
from firmware_app.understand.actions import clock_time
from firmware_app.understand.timers import Timers

MISSED_AFTER_S = 10.0
"""A timer due longer ago than this at start was missed (announced); one due more
recently than that rings as usual."""


class TimerBell:
    def __init__(self, timers: Timers, emit: Emitter, *, rings: bool) -> None:
        self.timers = timers
        self.rings = rings
        self._emit = emit

    def resume(self) -> list[Pending]:
        """At start: the stored timers back on the running clock; the announcements of
        the ones that went off while the service was off (those are removed)."""
        now, untrusted = self.timers.resume()
        if untrusted:  # missed timers are judged from the last time seen instead
            logger.warning("timers: {}; judging them from {}", untrusted, clock_time(now))
            self._emit("clock", synchronized=False, reason=untrusted, judged_from=now)
        missed: list[Pending] = []
        for timer in self.timers.due() if self.rings else []:
            if now - timer.due < MISSED_AFTER_S:
                continue  # only just due: it rings normally
            self.timers.remove(timer)
            fields = {"name": timer.name, "seconds": timer.seconds, "id": timer.id}
            self._emit("timer", action="missed", **fields)
            text = f"While I was off, your {timer.label()} went off at {clock_time(timer.due)}."
            missed.append(Pending(Origin.ANNOUNCEMENT, text))
        return missed

    def came_due(self) -> bool:
        """A timer came due since the last call (the clock moved on)."""
        return self.rings and self.timers.tick()

    def next_ring(self) -> str | None:
        """The first timer due, taken off the list: what to say as it rings (None: no
        timer is due, or timers do not ring here)."""
        due = self.timers.due() if self.rings else []
        if not due:
            return None
        timer = due[0]
        self.timers.remove(timer)
        self._emit("timer", action="ring", name=timer.name, seconds=timer.seconds, id=timer.id)
        return f"Your {timer.label()} is done."


__all__ = ["MISSED_AFTER_S", "TimerBell"]
