"""A small run-to-completion state machine: the dispatcher under the assistant's table.

A table maps (state, event) to a row: the handler (a typed callable, bound to its owner
when the machine is built), the payload type the event carries and the states the handler
may return. `Machine.fire` runs one event to completion: the handler returns the next
state, the dispatcher checks it against the row, runs the exit action of the old state and
the entry action of the new one, and only then takes the next event. Events raised while
one is being handled (a transcript arriving with the end of speech) wait in an internal
queue, so every handler sees the machine in a settled state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)
O = TypeVar("O")  # noqa: E741 - the handlers' owner
P = TypeVar("P")


class Stay:
    """In a row's destinations: the handler may leave the machine in the state it was in
    (whichever of the row's states that is)."""

    def __repr__(self) -> str:
        return "STAY"


STAY = Stay()


@dataclass(frozen=True)
class Row(Generic[O, S]):
    handler: Callable[[O, Any], S]
    """The function that handles the event (called with its owner and the payload); it
    returns the next state."""
    payload: type
    """What the event carries (``type(None)``: nothing)."""
    allowed: frozenset[S]
    """The states the handler may go to."""
    stays: bool = False
    """The handler may also stay in the state it was called in."""

    @property
    def name(self) -> str:
        return self.handler.__name__

    def allows(self, before: S, after: S) -> bool:
        return after in self.allowed or (self.stays and after == before)


def on(
    states: Iterable[S],
    event: E,
    payload: type[P],
    handler: Callable[[O, P], S],
    allowed: Iterable[S | Stay],
) -> tuple[Iterable[S], E, Row[O, S]]:
    """One line of a table: in ``states``, ``event`` carrying a ``payload`` is handled by
    ``handler`` (the type checker sees that it takes that payload), which returns one of
    ``allowed`` (`STAY`: the state it was called in)."""
    if isinstance(states, str) or isinstance(allowed, str):
        raise TypeError(f"{event}: give states as a set, not a single state")
    goes = [s for s in allowed if not isinstance(s, Stay)]
    stays = any(isinstance(s, Stay) for s in allowed)
    return states, event, Row(handler, payload, frozenset(goes), stays)


def table(rows: Iterable[tuple[Iterable[S], E, Row[O, S]]]) -> dict[tuple[S, E], Row[O, S]]:
    """Expand rows into one entry per state; a (state, event) pair listed twice is a
    mistake in the table and refused."""
    out: dict[tuple[S, E], Row[O, S]] = {}
    for states, event, row in rows:
        for state in states:
            if (state, event) in out:
                raise ValueError(f"{state.value} × {event} is in the table twice")
            out[(state, event)] = row
    return out


class IllegalTransition(RuntimeError):
    """A handler returned a state its row does not allow: a bug, reported loudly."""


class Machine(Generic[O, S, E]):
    """The owner's handlers behind one door, `fire`."""

    def __init__(
        self,
        owner: O,
        initial: S,
        transitions: Mapping[tuple[S, E], Row[O, S]],
        entry: Mapping[S, Callable[[O], None]],
        exit: Mapping[S, Callable[[O], None]],
        changed: Callable[[S, S], None],
        settled: Callable[[], None],
    ) -> None:
        self.owner = owner
        self.state: S = initial
        self.transitions = transitions
        self.entry = entry
        self.exit = exit
        self._changed = changed
        self._settled = settled
        self._queued: deque[tuple[E, object]] = deque()
        self._firing = False

    def fire(self, event: E, payload: object = None) -> None:
        """Handle ``event`` now, or right after the event being handled, if any."""
        self._queued.append((event, payload))
        if self._firing:
            return
        self._firing = True
        try:
            while self._queued:
                self._step(*self._queued.popleft())
        finally:
            self._firing = False
            self._queued.clear()

    def _step(self, event: E, payload: object) -> None:
        row = self.transitions.get((self.state, event))
        if row is None:
            return
        if not isinstance(payload, row.payload):
            raise TypeError(f"{event} carries {type(payload).__name__}, not {row.payload}")
        after = row.handler(self.owner, payload)
        if not row.allows(self.state, after):
            raise IllegalTransition(f"{self.state.value} × {event} returned {after!r}")
        if after != self.state:
            before = self.state
            if before in self.exit:
                self.exit[before](self.owner)
            self.state = after
            self._changed(before, after)  # after the exit action, before the entry action
            if after in self.entry:
                self.entry[after](self.owner)
        self._settled()  # an event has been handled, whether or not the state changed
