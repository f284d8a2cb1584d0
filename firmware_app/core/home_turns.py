"""Home Assistant's part in the dialogue turn: the satellite's pipeline runs offered, fed,
handed over and withdrawn, and the announcement held while a request is heard.

A request goes to Home Assistant when the satellite takes it at the start of listening
(it is connected and subscribed). The local transcriber still hears the request, so when
Home Assistant does not take it in time, goes away, or stops answering, the local brain
answers from that transcript at once, as it does when Home Assistant is not there at
all. While Home Assistant answers, the local brain never does: no ``reply`` event, only
``satellite`` events that show where the request went.

`HomeTurns` does the satellite's side of that and tells the ``satellite`` events; it
keeps only the announcement that waits. The turn itself (its run, whether it was handed
over, the local transcript: `core.turn.Turn`) is the assistant's: its own handlers offer
the request, hand it over and withdraw it; what becomes of the turn and the state when
Home Assistant speaks (a stage of its run, audio, a timer) is decided by the handlers
below (`on_stage`, `on_audio`, `on_timer`), which the table names and which take the
assistant first, as a method does. Runs on the assistant's thread; the satellite edge
(``edges/esphome/satellite.py``) only posts messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from firmware_app.audio.wavio import scale
from firmware_app.core.events import Emitter
from firmware_app.core.listening import hand_over
from firmware_app.core.messages import HomeAudio, HomeStage, HomeTimer
from firmware_app.core.parts import Satellite
from firmware_app.core.speaking import speak
from firmware_app.core.states import BUSY, LISTENING, RESTING, THINKING, Happening, State
from firmware_app.listen.segmenter import Transcript
from firmware_app.speak.utterances import Origin, Pending
from firmware_app.understand.actions import without_wake_words

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant

HOME_ERROR = "Sorry, Home Assistant could not answer that."


@runtime_checkable
class MediaSpeaker(Protocol):
    """A speaker that plays media under speech, ducked (`audio.playback.AlsaSpeaker`);
    with any other, media plays as an utterance of its own (cut by the wake word)."""

    def play_media(self, pcm: bytes, rate: int) -> None: ...

    def stop_media(self) -> None: ...

    def media_playing(self) -> bool: ...

    def duck(self, on: bool) -> None: ...


class HomeTurns:
    def __init__(self, satellite: Satellite, emit: Emitter, speaker: object = None) -> None:
        self._satellite = satellite
        self._emit = emit
        self._media = speaker if isinstance(speaker, MediaSpeaker) else None
        """The speaker, when it can mix Home Assistant's media under speech."""
        self.held: HomeAudio | None = None
        """An announcement or media from Home Assistant that came mid-request: it plays
        when the request is over (a newer one replaces it)."""

    def hears(self, model: str) -> bool:
        """Whether this wake word is one to answer (Home Assistant can turn some off)."""
        return self._satellite.hears(model)

    def offer(self, phrase: str, followup: bool) -> int:
        """Listening starts: the request is offered to Home Assistant; the run it went to
        (0: the local brain answers). While it listens, the request's frames reach it
        through hearing (`relay`). Media playing is held low until the turn ends."""
        if self._media is not None:
            self._media.duck(True)  # media stays low while the request is heard and answered
        run = self._satellite.start("" if followup else phrase, followup)
        if run:
            self._emit("satellite", stage="start", run=run)
        return run

    def relay(self, run: int, pcm: bytes) -> None:
        self._satellite.feed(run, pcm)

    def hand_over(self, run: int) -> None:
        """End of speech (the speaker's detector, or Home Assistant's): the stream stops
        and Home Assistant answers."""
        self._satellite.end(run)
        self._emit("satellite", stage="end_of_speech", run=run)

    def withdraw(self, run: int) -> None:
        """Home Assistant stops working on the request."""
        self._satellite.abort(run)

    def tell_stage(self, msg: HomeStage) -> None:
        self._emit("satellite", stage=msg.stage, run=msg.run, **msg.fields)

    def hold(self, msg: HomeAudio) -> None:
        """Keep ``msg`` until the request is over (an older one waiting is dropped)."""
        if self.held is not None:
            self._emit("satellite", stage="dropped", key=self.held.key)
        self.held = msg

    def take_held(self) -> HomeAudio | None:
        """At rest: media comes back up, and the announcement that waited, if any, is
        given back to play."""
        if self._media is not None:
            self._media.duck(False)
        held, self.held = self.held, None
        return held

    def mix_media(self, msg: HomeAudio, volume: int) -> bool:
        """Media from Home Assistant, played under whatever happens (ducked while the
        speaker talks), when the speaker can mix; False: play it as an utterance."""
        if msg.kind != "media" or self._media is None:
            return False
        seconds = round(len(msg.pcm) / 2 / max(1, msg.rate), 2)
        fields = {"kind": "media", "key": msg.key, "seconds": seconds, "mixed": True}
        self._emit("satellite", stage="play", **fields)
        self._media.play_media(scale(msg.pcm, volume), msg.rate)
        return True

    def stop_media(self) -> None:
        """A stop (the button, "stop", Home Assistant's stop): the media stops too (the
        wake word only ducks it)."""
        if self._media is not None and self._media.media_playing():
            self._media.stop_media()
            self._emit("satellite", stage="media_stopped")

    def tell_play(self, msg: HomeAudio) -> None:
        seconds = round(len(msg.pcm) / 2 / max(1, msg.rate), 2)
        self._emit("satellite", stage="play", kind=msg.kind, key=msg.key, seconds=seconds)

    def tell_timer(self, msg: HomeTimer) -> str | None:
        """A Home Assistant timer changed: what to say as it rings here, when it finished."""
        fields = {"id": msg.id, "name": msg.name, "seconds": msg.total_s, "left": msg.left_s}
        self._emit("satellite", stage="timer", event=msg.event, **fields)
        if msg.event != "finished":
            return None
        return f"Your {msg.name} timer is done." if msg.name else "Your timer is done."


def on_stage(assistant: Assistant, msg: HomeStage) -> State:
    turn = assistant.turn
    if msg.run != turn.run or not msg.run:
        return assistant.state  # a run given up already
    assistant.home.tell_stage(msg)
    if msg.stage in ("unanswered", "lost"):
        turn.run = 0  # gone: nothing to withdraw
        if not turn.handed:
            return assistant.state  # still listening: the local recognizer hears it all
        heard = turn.heard if turn.heard is not None else Transcript("")
        turn.release()
        assistant.fire(Happening.HEARD, heard)
        return THINKING
    if msg.stage == "stt_end":
        if assistant.state == LISTENING and not turn.handed:  # it heard the end first
            return hand_over(assistant, without_wake_words(assistant.hearing.end()))
        return assistant.state
    if msg.stage == "error":
        turn.release()
        if assistant.state not in (LISTENING, THINKING):
            return assistant.state
        if assistant.settings.audio.chimes:
            assistant.voice.chime("error")
            return assistant.rest()
        return speak(assistant, Origin.FALLBACK, HOME_ERROR, cache=True)
    if msg.stage == "end" and turn.handed:
        turn.release()
        return assistant.rest()
    return assistant.state


def on_audio(assistant: Assistant, msg: HomeAudio) -> State:
    if assistant.home.mix_media(msg, assistant.volume):
        return assistant.state  # it plays under whatever happens
    if msg.kind == "reply":
        if msg.key != assistant.turn.run or not assistant.turn.handed:
            return assistant.state
        assistant.turn.release()
        return play(assistant, msg)
    if assistant.state == LISTENING or assistant.turn.handed:
        assistant.home.hold(msg)
        return assistant.state
    return play(assistant, msg)


def play(assistant: Assistant, msg: HomeAudio) -> State:
    """Home Assistant's reply, announcement or media, spoken as an utterance of its own
    (also what waited, once the turn is over: `Assistant.rest`)."""
    assistant.home.tell_play(msg)
    assistant.turn.followup = msg.listen_after and not assistant.muted
    assistant.voice.play(Origin.HOME, msg.pcm, msg.rate, msg.text, msg.key)
    return assistant.state if assistant.state in BUSY else THINKING


def on_timer(assistant: Assistant, msg: HomeTimer) -> State:
    text = assistant.home.tell_timer(msg)
    if text is None:
        return assistant.state
    if assistant.state in RESTING or (assistant.state in BUSY and not assistant.turn.handed):
        assistant.interrupt()
        assistant.voice.ring(text, assistant.settings.assistant.ring_repeats)
        return THINKING
    assistant.voice.queue(Pending(Origin.TIMER, text), force=True)
    return assistant.state


__all__ = [
    "HOME_ERROR",
    "HomeTurns",
    "MediaSpeaker",
    "on_audio",
    "on_stage",
    "on_timer",
    "play",
]
