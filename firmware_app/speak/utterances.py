"""Every spoken thing is an utterance: an id, an origin and, for remote requests, the id
the requester gave. ``speak_start``/``speak_end`` events carry these, so whoever asked
for the speech (a Hermes flow waiting for ``sayFinished``, an automation matching
``cmd/result``) learns when *its* speech ended, not someone else's.

Announcements (``cmd/say``, Hermes ``say``, missed timers) that arrive while the assistant
is busy wait in a bounded queue; when it is full the request is refused at once (``busy``)
rather than accepted and dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from firmware_app.core.messages import RequestId

MAX_ANNOUNCEMENTS = 10
"""Announcements waiting for their turn; a full queue answers ``busy``."""


class Origin(StrEnum):
    LOCAL = "local"  # a reply to a local intent (or a fixed phrase)
    LLM = "llm"  # a streamed answer
    FALLBACK = "fallback"  # what is said when there is no answer
    COMMAND = "cmd"  # cmd/say (MQTT), ttbt5 say
    HERMES = "hermes"  # hermes/tts/say or a notification session
    TIMER = "timer"  # a timer ringing
    ANNOUNCEMENT = "announcement"  # something the assistant has to tell (missed timers)
    REPEAT = "repeat"  # the last reply again (double press)
    CHIME = "chime"  # a short sound; always utterance 0, never waited for


CHIME_ID = 0
"""The utterance id of chimes: played in order with speech, never awaited."""


@dataclass
class Utterance:
    id: int
    origin: Origin
    text: str
    request_id: RequestId = None
    started: bool = False

    def fields(self) -> dict[str, object]:
        """What ``speak_start``/``speak_end`` say about it."""
        return {"utterance": self.id, "origin": self.origin.value, "request_id": self.request_id}


@dataclass(frozen=True)
class Pending:
    """An announcement waiting for its turn."""

    origin: Origin
    text: str
    request_id: RequestId = None


class Utterances:
    """Ids, the utterance being spoken and the announcements waiting."""

    def __init__(self, limit: int = MAX_ANNOUNCEMENTS) -> None:
        self._next = 0
        self.current: Utterance | None = None
        self.waiting: deque[Pending] = deque()
        self.limit = limit

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def begin(self, origin: Origin, text: str, request_id: RequestId = None) -> Utterance:
        """Make ``text`` the utterance the assistant now waits for."""
        self.current = Utterance(self.new_id(), origin, text, request_id)
        return self.current

    def is_current(self, utterance: int) -> bool:
        return self.current is not None and utterance != CHIME_ID and self.current.id == utterance

    def end(self) -> Utterance | None:
        """The current utterance is over (played, cut or failed); returns it."""
        done, self.current = self.current, None
        return done

    def full(self) -> bool:
        return len(self.waiting) >= self.limit

    def queue(self, pending: Pending, force: bool = False) -> bool:
        """Queue an announcement; False when the queue is full (``force``: the assistant's
        own announcements are never refused)."""
        if self.full() and not force:
            return False
        self.waiting.append(pending)
        return True

    def next_waiting(self) -> Pending | None:
        return self.waiting.popleft() if self.waiting else None

    def drop_waiting(self) -> list[Pending]:
        dropped = list(self.waiting)
        self.waiting.clear()
        return dropped


__all__ = ["CHIME_ID", "MAX_ANNOUNCEMENTS", "Origin", "Pending", "Utterance", "Utterances"]
