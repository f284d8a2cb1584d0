"""The assistant's voice: utterances over the speech output, and the events that tell
everyone which utterance started and ended.

``speak_start`` and ``speak_end`` carry the utterance's id, origin and the requester's
id; an utterance that ends before any of it was heard (cut while queued, or its synthesis
failed) is reported as ``speak_dropped``; for a remote ``say`` that was not heard whole an
``error`` event says so too, so an accepted ``say`` is always accounted for.
"""

from __future__ import annotations

from firmware_app.core.messages import RequestId
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.utterances import CHIME_ID, Origin, Pending, Utterance, Utterances
from firmware_app.understand.actions import Emit

REMOTE = frozenset({Origin.COMMAND, Origin.HERMES})
RING_PAUSE_S = 1.5


class Voice:
    def __init__(self, speech: SpeechOutput, emit: Emit, queue_limit: int) -> None:
        self.speech = speech
        self.utterances = Utterances(queue_limit)
        self._emit = emit
        self.ringing = False

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
            self._emit("error", where="say", message=self._describe(done, what, reason))
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
                self._emit("error", where="say", message=message)

    def busy(self) -> bool:
        return self.speech.busy() or bool(self.utterances.waiting)

    @staticmethod
    def _describe(done: Utterance, what: str, reason: str | None) -> str:
        return f"say {done.request_id!r} {what}: {reason or 'speech synthesis failed'}"
