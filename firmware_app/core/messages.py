"""What reaches the assistant's queue from the edges: audio frames, the button, MQTT,
timers, the speaker and the LLM stream. Small frozen dataclasses; only the state machine
acts on them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from firmware_app.core.errors import FaultCode

FRAME_SAMPLES = 1280  # 80 ms at 16 kHz
SAMPLE_RATE = 16000
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class Frame:
    """80 ms of microphone audio, 16 kHz mono S16_LE."""

    pcm: bytes
    t: float
    """Assistant-clock time of the frame's end."""
    ref: bytes | None = None
    """What the speaker played during this frame, aligned with ``pcm`` (same length and
    rate), for echo cancellation; None when the audio input cannot provide it."""


@dataclass(frozen=True)
class Button:
    """A button gesture, posted from gpiozero's thread."""

    gesture: Literal["press", "hold", "double"]


CommandName = Literal["say", "ask", "listen", "stop", "mute", "volume", "update", "false_wake"]
Reply = Callable[[bool, "str | None"], None]
RequestId = str | int | None
"""The id a remote gave its request (MQTT ``id``, Hermes ``id``), echoed in answers."""


MAX_TEXT_CHARS = 2000
"""The longest text a ``say``/``ask`` may carry."""


class CommandArgs(BaseModel):
    """The payload of a command; each command name has one model (`COMMAND_ARGS`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TextArgs(CommandArgs):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """What to say, or what to handle as if it had been heard."""


class MuteArgs(CommandArgs):
    muted: StrictBool


class VolumeArgs(CommandArgs):
    volume: StrictInt = Field(ge=0, le=100)


class NoArgs(CommandArgs):
    pass


COMMAND_NAMES: tuple[CommandName, ...] = get_args(CommandName)
"""Every command, in one place: remotes (MQTT, Hermes, the control socket) take theirs from
here, and the assistant's commands table is checked against it."""

COMMAND_ARGS: dict[CommandName, type[CommandArgs]] = {
    "say": TextArgs,
    "ask": TextArgs,
    "listen": NoArgs,
    "stop": NoArgs,
    "mute": MuteArgs,
    "volume": VolumeArgs,
    "update": NoArgs,
    "false_wake": NoArgs,
}
"""Command name → payload model: remote payloads are checked against it before they are
posted, and the assistant checks again before it acts."""


@dataclass(frozen=True)
class Command:
    """A command from MQTT (or any other remote): ``reply(ok, error)`` is called exactly
    once, from the assistant's thread, when the command has been carried out or refused."""

    name: CommandName
    args: dict[str, Any] = field(default_factory=dict)
    reply: Reply | None = None
    source: str = "mqtt"
    """Who sent it: ``mqtt``, ``hermes``, ``cli``, ``control``; a Hermes ``say`` is
    answered with ``sayFinished`` when its speech ends."""
    request_id: RequestId = None


@dataclass(frozen=True)
class PlaybackStarted:
    """The first audio of an utterance reached the speaker."""

    utterance: int


@dataclass(frozen=True)
class PlaybackDone:
    """The speaker finished (or was stopped on) an utterance."""

    utterance: int


@dataclass(frozen=True)
class ReplySentence:
    """One sentence of a streamed reply (LLM), in order."""

    request: int
    text: str


@dataclass(frozen=True)
class ReplyEnd:
    """A streamed reply is complete. ``error`` says why it failed, if it did; then
    ``fallback`` is the sentence to speak instead."""

    request: int
    error: str | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class Notice:
    """Something an edge wants known. The assistant turns it into an event of the same
    type with these fields, and into an LED pattern where one applies:

    - ``error`` {where, message}: an engine, device or remote failed (the service goes on);
    - ``breaker`` {state: closed|open|half_open}: the LLM circuit breaker changed;
    - ``update`` {step, ok, message, version, active}: an OTA step finished; ``active`` true
      while an update is in progress (LED shows ``updating``);
    - ``offline`` / ``online`` {where}: the network or broker went away / came back;
    - ``hotword`` {on, reason}: Hermes' ``hotword/toggleOff``/``toggleOn``: wakes stop
      while any reason holds them off;
    - ``back`` {where}: a device that failed works again (``audio.output``).
    """

    kind: Literal["error", "breaker", "update", "offline", "online", "hotword", "back"]
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    """Something failed while the assistant handled a message: it says so, shows the
    error for a moment and recovers."""

    where: FaultCode
    """The stage that failed (the ``error`` event's ``where``)."""
    message: str


@dataclass(frozen=True)
class WakeLost:
    """The wake word heard here was claimed by another device after all (arbitration
    decided late): stop listening silently, as if the wake word had not been heard."""

    reason: str = "arbitration"


@dataclass(frozen=True)
class HomeStage:
    """Home Assistant's pipeline for request ``run`` moved on (the satellite edge,
    ``firmware_app/edges/esphome``):

    - ``unanswered`` / ``lost``: it did not take the request in time, or went away or
      stopped answering mid-way: the local brain answers instead;
    - ``stt_end``: its speech-to-text is done (the request stops listening) {text};
    - ``intent``: its conversation agent answered {continue_conversation};
    - ``tts_end``: its voice has the answer's URL; ``fetched`` {seconds}: the answer's
      audio has been fetched from it (how long that took), about to play; both only
      shown in the event log, so where a request's time went can be read there;
    - ``error`` {code, message}: its pipeline failed: a short error sound, then rest;
    - ``end``: the run ended with nothing (more) to play.
    """

    run: int
    stage: Literal["unanswered", "lost", "stt_end", "intent", "tts_end", "fetched", "error", "end"]
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HomeAudio:
    """Audio Home Assistant wants played here, fetched and decoded by the satellite edge:
    the reply of run ``key`` (``reply``), an announcement or a media URL. ``pcm`` is mono
    S16_LE at ``rate``; ``key`` comes back as the ``request_id`` of its speak events."""

    kind: Literal["reply", "announce", "media"]
    key: int
    pcm: bytes
    rate: int
    text: str = ""
    listen_after: bool = False
    """Listen again without the wake word once it has played (continue_conversation,
    start_conversation)."""


@dataclass(frozen=True)
class HomeTimer:
    """A Home Assistant timer started, changed, was cancelled or finished (rings here)."""

    event: Literal["started", "updated", "cancelled", "finished"]
    id: str
    name: str = ""
    total_s: int = 0
    left_s: int = 0


@dataclass(frozen=True)
class Tick:
    """Time passes with no audio: timers still ring. ``recovering`` marks ticks from the
    microphone's reopen loop: proof that the audio loop is alive though its device is gone,
    which keeps the systemd watchdog fed while it retries."""

    t: float
    recovering: bool = False


@dataclass(frozen=True)
class Stop:
    """Shut down cleanly."""


Message = (
    Frame
    | Button
    | Command
    | PlaybackStarted
    | PlaybackDone
    | ReplySentence
    | ReplyEnd
    | Notice
    | WakeLost
    | HomeStage
    | HomeAudio
    | HomeTimer
    | Tick
    | Stop
)


class Inbox:
    """The assistant's queue. Every edge holds ``inbox.post``; frames are counted so the
    microphone can wait for room instead of letting a slow consumer pile up audio."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Message] = queue.Queue()
        self._frames = 0
        self._lock = threading.Lock()

    def post(self, msg: Message) -> None:
        if isinstance(msg, Frame):
            with self._lock:
                self._frames += 1
        self.queue.put(msg)

    def get(self, timeout: float | None = None) -> Message:
        """Next message; raises queue.Empty after ``timeout``."""
        msg = self.queue.get(timeout=timeout) if timeout is not None else self.queue.get_nowait()
        if isinstance(msg, Frame):
            with self._lock:
                self._frames -= 1
        return msg

    def empty(self) -> bool:
        return self.queue.empty()

    def has_room(self, limit: int = 25) -> bool:
        return self._frames < limit
