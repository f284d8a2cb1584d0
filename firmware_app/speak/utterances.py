"""Every spoken thing is an utterance: an id, an origin and, for remote requests, the id
the requester gave. ``speak_start``/``speak_end`` events carry these, so whoever asked
for the speech (a Hermes flow waiting for ``sayFinished``, an automation matching
``cmd/result``) learns when *its* speech ended, not someone else's.

Announcements (``cmd/say``, Hermes ``say``, missed timers) that arrive while the assistant
is busy wait in a bounded queue; when it is full the request is refused at once (``busy``)
rather than accepted and dropped.

`Voice` speaks them through the speech output and tells everyone which utterance started
and ended: ``speak_start`` and ``speak_end`` carry the utterance's id, origin and the
requester's id; an utterance that ends before any of it was heard (cut while queued, or
its synthesis failed) is reported as ``speak_dropped``; for a remote ``say`` that was not
heard whole an ``error`` event says so too, so an accepted ``say`` is always accounted for.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from firmware_app.core.errors import FaultCode
from firmware_app.core.messages import RequestId
from firmware_app.speak.output import SpeechOutput
from firmware_app.understand.actions import Emit

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
    HOME = "home"  # audio from Home Assistant: its reply, an announcement, media
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


REMOTE = frozenset({Origin.COMMAND, Origin.HERMES})
RING_PAUSE_S = 1.5


class Voice:
    def __init__(self, speech: SpeechOutput, emit: Emit, queue_limit: int) -> None:
        self.speech = speech
        self.utterances = Utterances(queue_limit)
        self._emit = emit
        self.ringing = False
        self.last_reply = ""
        """The last answer given, for "say that again": it outlives the turn it ended."""

    @property
    def current(self) -> Utterance | None:
        return self.utterances.current

    def say(
        self, origin: Origin, text: str, request_id: RequestId = None, cache: bool = False
    ) -> Utterance:
        """Speak ``text`` as the utterance the assistant now waits for (whatever was being
        spoken is cut first)."""
        self.cut("replaced")
        utterance = self.utterances.begin(origin, text, request_id)
        self.speech.say(utterance.id, text, cache=cache)
        self.speech.finish(utterance.id)
        return utterance

    def reply(
        self, text: str, origin: Origin, request_id: RequestId = None, cache: bool = False
    ) -> Utterance:
        """Answer a request: a ``reply`` event, remembered for "say that again", spoken."""
        self._tell_reply(text, origin.value, request_id)
        return self.say(origin, text, request_id, cache)

    def replied(self, request_id: RequestId = None) -> None:
        """The streamed answer is whole: its ``reply`` event, remembered, and its end."""
        current = self.utterances.current
        if current is not None:
            self._tell_reply(current.text, Origin.LLM.value, request_id)
        self.end_stream()

    def _tell_reply(self, text: str, source: str, request_id: RequestId) -> None:
        """A ``reply`` event; one answering a typed request names it (``request_id``)."""
        if request_id is None:
            self._emit("reply", text=text, source=source)
        else:
            self._emit("reply", text=text, source=source, request_id=request_id)
        self.last_reply = text

    def play(
        self, origin: Origin, pcm: bytes, rate: int, text: str = "", request_id: RequestId = None
    ) -> Utterance:
        """Play recorded audio as the utterance the assistant now waits for."""
        self.cut("replaced")
        utterance = self.utterances.begin(origin, text, request_id)
        self.speech.play(utterance.id, pcm, rate)
        self.speech.finish(utterance.id)
        return utterance

    def stream(self, text: str, request_id: RequestId = None) -> None:
        """One more sentence of a streamed answer (the utterance begins with the first)."""
        current = self.utterances.current
        if current is None or current.origin != Origin.LLM:
            self.cut("replaced")
            current = self.utterances.begin(Origin.LLM, "", request_id)
        current.text = f"{current.text} {text}".strip()
        self.speech.say(current.id, text)

    def end_stream(self) -> None:
        if self.utterances.current is not None:
            self.speech.finish(self.utterances.current.id)

    def ring(self, text: str, repeats: int) -> None:
        self.cut("replaced")
        self.ringing = True
        utterance = self.utterances.begin(Origin.TIMER, text)
        for i in range(repeats):
            self.speech.chime(utterance.id, "timer")
            self.speech.say(utterance.id, text, cache=True)
            if i + 1 < repeats:
                self.speech.pause(utterance.id, RING_PAUSE_S)
        self.speech.finish(utterance.id)

    def chime(self, name: str) -> None:
        self.speech.chime(CHIME_ID, name)

    def started(self, utterance: int) -> bool:
        """Playback of ``utterance`` began; True if it is the awaited one, heard first now."""
        current = self.utterances.current
        if not self.utterances.is_current(utterance) or current is None or current.started:
            return False
        current.started = True
        self._emit("speak_start", **current.fields())
        return True

    def done(self, utterance: int) -> Utterance | None:
        """Playback of ``utterance`` ended; returns it if it was the awaited one."""
        if not self.utterances.is_current(utterance):
            return None
        return self._end(None)

    def cut(self, reason: str) -> None:
        """Stop waiting for the current utterance (its audio is cancelled separately)."""
        if self.utterances.current is not None:
            self._end(reason)
        self.ringing = False

    def _end(self, reason: str | None) -> Utterance | None:
        done = self.utterances.end()
        if done is None:
            return None
        if done.started:
            self._emit("speak_end", **done.fields(), cut=reason is not None)
        else:
            self._emit("speak_dropped", **done.fields(), reason=reason or "nothing to play")
        if done.origin in REMOTE and (reason is not None or not done.started):
            what = "cut off" if done.started else "not spoken"
            self._emit("error", where=FaultCode.SAY, message=self._describe(done, what, reason))
        if done.origin == Origin.TIMER:
            self.ringing = False
        return done

    def queue(self, pending: Pending, force: bool = False) -> bool:
        return self.utterances.queue(pending, force)

    def next_waiting(self) -> Pending | None:
        return self.utterances.next_waiting()

    def drop_waiting(self, reason: str) -> None:
        for pending in self.utterances.drop_waiting():
            fields = {"utterance": None, "origin": pending.origin.value}
            self._emit("speak_dropped", **fields, request_id=pending.request_id, reason=reason)
            if pending.origin in REMOTE:
                message = f"say {pending.request_id!r} not spoken: {reason}"
                self._emit("error", where=FaultCode.SAY, message=message)

    def busy(self) -> bool:
        return self.speech.busy() or bool(self.utterances.waiting)

    @staticmethod
    def _describe(done: Utterance, what: str, reason: str | None) -> str:
        return f"say {done.request_id!r} {what}: {reason or 'speech synthesis failed'}"


__all__ = [
    "CHIME_ID",
    "MAX_ANNOUNCEMENTS",
    "Origin",
    "Pending",
    "Utterance",
    "Utterances",
    "Voice",
]
