"""What the assistant does with Home Assistant's pipeline: the handlers the table's
``home_*`` rows name, and the steps of the dialogue turn that involve it (offered when
listening starts, handed over at the end of speech; withdrawn when the turn ends, in
`core.flow.Flow`). The turn's run, whether it was handed over and the local transcript
are fields of `core.turn.Turn`. Runs on the assistant's thread like every handler; the
satellite edge (`satellite.Satellite`) only posts messages.

A request goes to Home Assistant when the satellite takes it at the start of listening
(it is connected and subscribed). The local transcriber still hears the request, so when
Home Assistant does not take it in time, goes away, or stops answering, the local brain
answers from that transcript at once, as it does when Home Assistant is not there at
all. While Home Assistant answers, the local brain never does: no ``reply`` event, only
``satellite`` events that show where the request went.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from firmware_app.audio.wavio import scale
from firmware_app.core.messages import HomeAudio, HomeStage, HomeTimer
from firmware_app.core.table import BUSY, LISTENING, RESTING, THINKING, Happening, State
from firmware_app.listen.segmenter import Transcript
from firmware_app.speak.utterances import Origin, Pending
from firmware_app.understand.actions import without_wake_words

if TYPE_CHECKING:
    from firmware_app.core.flow import Flow

HOME_ERROR = "Sorry, Home Assistant could not answer that."


@runtime_checkable
class MediaSpeaker(Protocol):
    """A speaker that plays media under speech, ducked (`audio.playback.AlsaSpeaker`);
    with any other, media plays as an utterance of its own (cut by the wake word)."""

    def play_media(self, pcm: bytes, rate: int) -> None: ...

    def stop_media(self) -> None: ...

    def media_playing(self) -> bool: ...

    def duck(self, on: bool) -> None: ...


def wake_phrase(model: str) -> str:
    """``hey_jarvis`` (or a model's path) → ``hey jarvis``."""
    stem = model.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem.replace("_", " ").strip()


# --- the turn's steps ------------------------------------------------------------------


def offer(flow: Flow, phrase: str, followup: bool) -> None:
    """Listening starts: media playing is held low until the turn ends, and the request is
    offered to Home Assistant. While it listens, the request's frames reach it through
    hearing (`Flow._relay`)."""
    turn = flow.turn
    turn.release()
    speaker = flow.speech.speaker
    if isinstance(speaker, MediaSpeaker):
        speaker.duck(True)  # media stays low while the request is heard and answered
    turn.run = flow.parts.satellite.start("" if followup else phrase, followup)
    if turn.run:
        cfg = flow.settings.esphome
        flow.hearing.limit_silence(cfg.silence_ms / 1000, cfg.unfinished_ms / 1000)
        flow._emit("satellite", stage="start", run=turn.run)


def hand_over(flow: Flow, heard: Transcript) -> State:
    """End of speech (the speaker's detector, or Home Assistant's): the stream stops and
    Home Assistant answers, the local transcript kept in case it does not."""
    turn = flow.turn
    flow.parts.satellite.end(turn.run)
    turn.handed, turn.heard = True, heard
    flow._emit("satellite", stage="end_of_speech", run=turn.run)
    return THINKING


def take_held(flow: Flow) -> State | None:
    """At rest: media comes back up, and the announcement that waited, if any, now
    plays."""
    speaker = flow.speech.speaker
    if isinstance(speaker, MediaSpeaker):
        speaker.duck(False)
    held, flow.held = flow.held, None
    return None if held is None else play(flow, held)


# --- the table's handlers (the ``home_*`` rows) -----------------------------------------


def on_stage(flow: Flow, msg: HomeStage) -> State:
    turn = flow.turn
    if msg.run != turn.run or not msg.run:
        return flow.state  # a run given up already
    flow._emit("satellite", stage=msg.stage, run=msg.run, **msg.fields)
    if msg.stage in ("unanswered", "lost"):
        turn.run = 0  # gone: nothing to withdraw
        if not turn.handed:
            return flow.state  # still listening: the local recognizer hears it all
        heard = turn.heard if turn.heard is not None else Transcript("")
        turn.release()
        flow.fire(Happening.HEARD, heard)
        return THINKING
    if msg.stage == "stt_end":
        if flow.state == LISTENING and not turn.handed:  # it heard the end first
            return hand_over(flow, without_wake_words(flow.hearing.end()))
        return flow.state
    if msg.stage == "error":
        turn.release()
        if flow.state not in (LISTENING, THINKING):
            return flow.state
        if flow.settings.audio.chimes:
            flow.voice.chime("error")
            return flow.rest()
        return flow.speak(Origin.FALLBACK, HOME_ERROR, cache=True)
    if msg.stage == "end" and turn.handed:
        turn.release()
        return flow.rest()
    return flow.state


def on_audio(flow: Flow, msg: HomeAudio) -> State:
    turn = flow.turn
    speaker = flow.speech.speaker
    if msg.kind == "media" and isinstance(speaker, MediaSpeaker):
        seconds = round(len(msg.pcm) / 2 / max(1, msg.rate), 2)
        fields = {"kind": "media", "key": msg.key, "seconds": seconds, "mixed": True}
        flow._emit("satellite", stage="play", **fields)
        speaker.play_media(scale(msg.pcm, flow.speech.volume), msg.rate)
        return flow.state  # it plays under whatever happens, ducked while the speaker talks
    if msg.kind == "reply":
        if msg.key != turn.run or not turn.handed:
            return flow.state
        turn.release()
        return play(flow, msg)
    if flow.state == LISTENING or turn.handed:
        if flow.held is not None:
            flow._emit("satellite", stage="dropped", key=flow.held.key)
        flow.held = msg
        return flow.state
    return play(flow, msg)


def play(flow: Flow, msg: HomeAudio) -> State:
    seconds = round(len(msg.pcm) / 2 / max(1, msg.rate), 2)
    flow._emit("satellite", stage="play", kind=msg.kind, key=msg.key, seconds=seconds)
    flow.turn.followup = msg.listen_after and not flow.muted
    flow.voice.play(Origin.HOME, msg.pcm, msg.rate, msg.text, msg.key)
    return flow.state if flow.state in BUSY else THINKING


def on_timer(flow: Flow, msg: HomeTimer) -> State:
    fields = {"id": msg.id, "name": msg.name, "seconds": msg.total_s, "left": msg.left_s}
    flow._emit("satellite", stage="timer", event=msg.event, **fields)
    if msg.event != "finished":
        return flow.state
    text = f"Your {msg.name} timer is done." if msg.name else "Your timer is done."
    if flow.state in RESTING or (flow.state in BUSY and not flow.turn.handed):
        flow.interrupt()
        flow.voice.ring(text, flow.settings.assistant.ring_repeats)
        return THINKING
    flow.voice.queue(Pending(Origin.TIMER, text), force=True)
    return flow.state


def stop_media(flow: Flow) -> None:
    """A stop (the button, "stop", Home Assistant's stop): the media stops too (the wake
    word only ducks it)."""
    speaker = flow.speech.speaker
    if isinstance(speaker, MediaSpeaker) and speaker.media_playing():
        speaker.stop_media()
        flow._emit("satellite", stage="media_stopped")
