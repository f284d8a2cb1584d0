"""A small run-to-completion state machine: the dispatcher under the assistant's table.

A table maps (state, event) to a handler name and the states it may return. `Machine.fire`
runs one event to completion: the handler returns the next state, the dispatcher checks it
against the row, runs the exit action of the old state and the entry action of the new
one, and only then takes the next event. Events raised while one is being handled (a
transcript arriving with the end of speech) wait in an internal queue, so every handler
sees the machine in a settled state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class Row(Generic[S]):
    handler: str
    """Name of the method that handles the event; it returns the next state."""
    allowed: frozenset[S]
    """The states the handler may return."""


def table(
    rows: Iterable[tuple[Iterable[S], str, str, Iterable[S]]],
) -> dict[tuple[S, str], Row[S]]:
    """Expand rows of (states, event, handler, next states) into one entry per state; a
    (state, event) pair listed twice is a mistake in the table and refused."""
    out: dict[tuple[S, str], Row[S]] = {}
    for states, event, handler, allowed in rows:
        if isinstance(states, str) or isinstance(allowed, str):
            raise TypeError(f"{event}: give states as a set, not a single state")
        for state in states:
            if (state, event) in out:
                raise ValueError(f"{state.value} × {event} is in the table twice")
            out[(state, event)] = Row(handler, frozenset(allowed))
    return out


class IllegalTransition(RuntimeError):
    """A handler returned a state its row does not allow: a bug, reported loudly."""


class Machine(Generic[S]):
    """Subclasses set the tables and write the handlers; `fire` is the only door."""

    transitions: Mapping[tuple[S, str], Row[S]] = {}
    entry: Mapping[S, str] = {}
    exit: Mapping[S, str] = {}

    def __init__(self, initial: S) -> None:
        self.state: S = initial
        self._queued: deque[tuple[str, object]] = deque()
        self._firing = False

    def fire(self, event: str, payload: object = None) -> None:
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

    def _step(self, event: str, payload: object) -> None:
        row = self.transitions.get((self.state, event))
        if row is None:
            return
        handler: Callable[[object], S] = getattr(self, row.handler)
        after = handler(payload)
        if after not in row.allowed:
            raise IllegalTransition(f"{self.state.value} × {event} returned {after!r}")
        if after != self.state:
            before = self.state
            if before in self.exit:
                getattr(self, self.exit[before])()
            self.state = after
            self.changed(before, after)
            if after in self.entry:
                getattr(self, self.entry[after])()
        self.settled()

    def changed(self, before: S, after: S) -> None:
        """The state changed (after the exit action, before the entry action)."""

    def settled(self) -> None:
        """An event has been handled (whether or not the state changed)."""
