"""What the assistant does with Home Assistant's pipeline: the handlers the table's
``home_*`` rows name, and the steps of the dialogue turn that involve it (offered when
listening starts, handed over at the end of speech; withdrawn when the turn ends, in
`core.assistant.Assistant`). The turn's run, whether it was handed over and the local
transcript are fields of `core.turn.Turn`. These are the assistant's handlers, kept
apart because they hold one concern: they run on its thread, and the satellite edge
(``edges/esphome/satellite.py``) only posts messages.

A request goes to Home Assistant when the satellite takes it at the start of listening
(it is connected and subscribed). The local transcriber still hears the request, so when
Home Assistant does not take it in time, goes away, or stops answering, the local brain
answers from that transcript at once, as it does when Home Assistant is not there at
all. While Home Assistant answers, the local brain never does: no ``reply`` event, only
``satellite`` events that show where the request went.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_app.core.messages import HomeAudio, HomeStage, HomeTimer
from firmware_app.core.table import BUSY, LISTENING, RESTING, THINKING, Happening, State
from firmware_app.listen.segmenter import Transcript
from firmware_app.speak.utterances import Origin, Pending
from firmware_app.understand.actions import without_wake_words

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant

HOME_ERROR = "Sorry, Home Assistant could not answer that."


def wake_phrase(model: str) -> str:
    """``hey_jarvis`` (or a model's path) → ``hey jarvis``."""
    stem = model.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem.replace("_", " ").strip()


# --- the turn's steps ------------------------------------------------------------------


def offer(a: Assistant, phrase: str, followup: bool) -> None:
    """Listening starts: the request is offered to Home Assistant. While it listens, the
    request's frames reach it through hearing (`Assistant.relay`)."""
    turn = a.turn
    turn.release()
    turn.run = a.parts.satellite.start("" if followup else phrase, followup)
    if turn.run:
        a.emit("satellite", stage="start", run=turn.run)


def hand_over(a: Assistant, heard: Transcript) -> State:
    """End of speech (the speaker's detector, or Home Assistant's): the stream stops and
    Home Assistant answers, the local transcript kept in case it does not."""
    turn = a.turn
    a.parts.satellite.end(turn.run)
    turn.handed, turn.heard = True, heard
    a.emit("satellite", stage="end_of_speech", run=turn.run)
    return THINKING


def take_held(a: Assistant) -> State | None:
    """At rest: the announcement that waited, if any, now plays."""
    held, a.held = a.held, None
    return None if held is None else play(a, held)


# --- the table's handlers (the ``home_*`` rows) -----------------------------------------


def on_stage(a: Assistant, msg: HomeStage) -> State:
    turn = a.turn
    if msg.run != turn.run or not msg.run:
        return a.state  # a run given up already
    a.emit("satellite", stage=msg.stage, run=msg.run, **msg.fields)
    if msg.stage in ("unanswered", "lost"):
        turn.run = 0  # gone: nothing to withdraw
        if not turn.handed:
            return a.state  # still listening: the local recognizer hears it all
        heard = turn.heard if turn.heard is not None else Transcript("")
        turn.release()
        a.fire(Happening.HEARD, heard)
        return THINKING
    if msg.stage == "stt_end":
        if a.state == LISTENING and not turn.handed:  # it heard the end first
            return hand_over(a, without_wake_words(a.hearing.end()))
        return a.state
    if msg.stage == "error":
        turn.release()
        if a.state not in (LISTENING, THINKING):
            return a.state
        if a.settings.audio.chimes:
            a.voice.chime("error")
            return a.rest()
        return a.speak(Origin.FALLBACK, HOME_ERROR, cache=True)
    if msg.stage == "end" and turn.handed:
        turn.release()
        return a.rest()
    return a.state


def on_audio(a: Assistant, msg: HomeAudio) -> State:
    turn = a.turn
    if msg.kind == "reply":
        if msg.key != turn.run or not turn.handed:
            return a.state
        turn.release()
        return play(a, msg)
    if a.state == LISTENING or turn.handed:
        if a.held is not None:
            a.emit("satellite", stage="dropped", key=a.held.key)
        a.held = msg
        return a.state
    return play(a, msg)


def play(a: Assistant, msg: HomeAudio) -> State:
    seconds = round(len(msg.pcm) / 2 / max(1, msg.rate), 2)
    a.emit("satellite", stage="play", kind=msg.kind, key=msg.key, seconds=seconds)
    a.turn.followup = msg.listen_after and not a.muted
    a.voice.play(Origin.HOME, msg.pcm, msg.rate, msg.text, msg.key)
    return a.state if a.state in BUSY else THINKING


def on_timer(a: Assistant, msg: HomeTimer) -> State:
    fields = {"id": msg.id, "name": msg.name, "seconds": msg.total_s, "left": msg.left_s}
    a.emit("satellite", stage="timer", event=msg.event, **fields)
    if msg.event != "finished":
        return a.state
    text = f"Your {msg.name} timer is done." if msg.name else "Your timer is done."
    if a.state in RESTING or (a.state in BUSY and not a.turn.handed):
        a.interrupt()
        a.voice.ring(text, a.settings.assistant.ring_repeats)
        return THINKING
    a.voice.queue(Pending(Origin.TIMER, text), force=True)
    return a.state
