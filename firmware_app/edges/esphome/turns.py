"""What the assistant does with Home Assistant's pipeline: the handlers the table's
``home_*`` rows name, and the hooks listening calls. Runs on the assistant's thread like
every handler; the satellite edge (`satellite.Satellite`) only posts messages.

A request goes to Home Assistant when the satellite takes it at the start of listening
(it is connected and subscribed). The local transcriber still hears the request, so when
Home Assistant does not take it in time, goes away, or stops answering, the local brain
answers from that transcript at once, as it does when Home Assistant is not there at
all. While Home Assistant answers, the local brain never does: no ``reply`` event, only
``satellite`` events that show where the request went.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from firmware_app.core.messages import HomeAudio, HomeStage, HomeTimer
from firmware_app.core.states import BUSY, LISTENING, RESTING, THINKING, State
from firmware_app.speak.utterances import Origin, Pending

if TYPE_CHECKING:
    from firmware_app.core.flow import Flow

HOME_ERROR = "Sorry, Home Assistant could not answer that."


@dataclass
class HomeTurn:
    """The request Home Assistant is answering, as the assistant sees it."""

    run: int = 0
    """The pipeline run the current request went to (0: the local brain has it)."""
    waiting: bool = False
    """Speech ended; Home Assistant is answering."""
    text: str | None = None
    """The local transcript, answered locally if Home Assistant fails."""
    phrase: str = ""
    """The wake word that opened the request (sent as the wake word phrase)."""
    held: HomeAudio | None = None
    """An announcement or media that arrived mid-request, played when it is over."""

    def clear(self) -> None:
        self.run, self.waiting, self.text = 0, False, None


def wake_phrase(model: str) -> str:
    """``hey_jarvis`` (or a model's path) → ``hey jarvis``."""
    stem = model.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem.replace("_", " ").strip()


# --- hooks from listening -------------------------------------------------------------


def begin(flow: Flow, followup: bool) -> None:
    """Listening starts: offer the request to Home Assistant."""
    home = flow.home
    home.clear()
    home.run = flow.parts.satellite.start("" if followup else home.phrase, followup)
    home.phrase = ""
    if home.run:
        flow._emit("satellite", stage="start", run=home.run)


def feed(flow: Flow, pcm: bytes) -> None:
    if flow.home.run and not flow.home.waiting:
        flow.parts.satellite.feed(flow.home.run, pcm)


def speech_ended(flow: Flow) -> State:
    """End of speech (the speaker's detector, or Home Assistant's): stop the stream and
    wait for the answer, keeping the local transcript in case it does not come."""
    home = flow.home
    flow.parts.satellite.end(home.run)
    home.waiting = True
    home.text = flow.transcript_now()
    flow._emit("satellite", stage="end_of_speech", run=home.run)
    return THINKING


def leave_listening(flow: Flow) -> None:
    """Listening ended without a request for Home Assistant: tell it to stop."""
    if flow.home.run and not flow.home.waiting:
        flow.parts.satellite.abort(flow.home.run)
        flow.home.clear()


def drop(flow: Flow) -> None:
    """Barge-in, stop, a fault: whatever Home Assistant was doing for us is abandoned."""
    if flow.home.run:
        flow.parts.satellite.abort(flow.home.run)
    flow.home.clear()


def awaiting(flow: Flow) -> bool:
    return flow.home.waiting


def take_held(flow: Flow) -> State | None:
    """At rest: the announcement that waited, if any, now plays."""
    held, flow.home.held = flow.home.held, None
    return None if held is None else play(flow, held)


# --- the table's handlers -------------------------------------------------------------


def on_stage(flow: Flow, msg: HomeStage) -> State:
    home = flow.home
    if msg.run != home.run or not msg.run:
        return flow.state  # a run given up already
    flow._emit("satellite", stage=msg.stage, run=msg.run, **msg.fields)
    if msg.stage in ("unanswered", "lost"):
        home.run = 0
        if not home.waiting:
            return flow.state  # still listening: the local transcriber hears it all
        text = home.text
        home.clear()
        flow.fire("heard", text)
        return THINKING
    if msg.stage == "stt_end":
        if flow.state == LISTENING and not home.waiting:
            return speech_ended(flow)
        return flow.state
    if msg.stage == "error":
        home.clear()
        if flow.state not in (LISTENING, THINKING):
            return flow.state
        if flow.settings.audio.chimes:
            flow.voice.chime("error")
            return flow.rest()
        return flow.speak(Origin.FALLBACK, HOME_ERROR, cache=True)
    if msg.stage == "end" and home.waiting:
        home.clear()
        return flow.rest()
    return flow.state


def on_audio(flow: Flow, msg: HomeAudio) -> State:
    if msg.kind == "reply":
        home = flow.home
        if msg.key != home.run or not home.waiting:
            return flow.state
        home.clear()
        return play(flow, msg)
    if flow.state == LISTENING or flow.home.waiting:
        if flow.home.held is not None:
            flow._emit("satellite", stage="dropped", key=flow.home.held.key)
        flow.home.held = msg
        return flow.state
    return play(flow, msg)


def play(flow: Flow, msg: HomeAudio) -> State:
    seconds = round(len(msg.pcm) / 2 / max(1, msg.rate), 2)
    flow._emit("satellite", stage="play", kind=msg.kind, key=msg.key, seconds=seconds)
    flow._followup = msg.listen_after and not flow.muted
    flow.voice.play(Origin.HOME, msg.pcm, msg.rate, msg.text, msg.key)
    return flow.state if flow.state in BUSY else THINKING


def on_timer(flow: Flow, msg: HomeTimer) -> State:
    fields = {"id": msg.id, "name": msg.name, "seconds": msg.total_s, "left": msg.left_s}
    flow._emit("satellite", stage="timer", event=msg.event, **fields)
    if msg.event != "finished":
        return flow.state
    text = f"Your {msg.name} timer is done." if msg.name else "Your timer is done."
    if flow.state in RESTING or (flow.state in BUSY and not flow.home.waiting):
        flow.interrupt()
        flow.voice.ring(text, flow.settings.assistant.ring_repeats)
        return THINKING
    flow.voice.queue(Pending(Origin.TIMER, text), force=True)
    return flow.state
