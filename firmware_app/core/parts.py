"""The parts the assistant works with: its clock, the LLM responder and the optional
parts, each behind a small Protocol; optional ones have a default that does nothing, so
the state machine never checks whether a part exists.

All of them are handed to the `Assistant` constructor in one `Parts` value: nothing is
attached to the assistant after it is built, so what it depends on is visible in one place.

- `EchoCanceller`: removes the speaker's own sound from the microphone (``Frame.ref`` is
  what was played during that frame) before the wake word and speech stages hear it.
- `StopSpotter`: hears "stop" without the wake word, but only while the assistant is
  speaking or a timer rings, when it is the natural thing to say.
- `WakeArbiter`: several speakers in one home hear the same wake word; only the one that
  claims it answers, the others go back to idle without a sound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from firmware_app.core.events import wall_now
from firmware_app.core.messages import Command


class EchoCanceller(Protocol):
    def process(self, mic: bytes, ref: bytes) -> bytes:
        """The microphone frame with the speaker's sound (``ref``) taken out."""
        ...

    def reset(self) -> None:
        """Forget adaptation state (the audio path was restarted)."""
        ...


class StopSpotter(Protocol):
    def process(self, pcm: bytes) -> bool:
        """Feed one frame; True when "stop" ends in it."""
        ...

    def reset(self) -> None: ...


class WakeArbiter(Protocol):
    def claim(self, model: str, score: float) -> bool:
        """Called on each wake word: True to answer it here, False to stay silent."""
        ...


class Clock(Protocol):
    def t(self) -> float:
        """Assistant clock (seconds)."""
        ...

    def epoch(self) -> float:
        """Wall-clock time (Unix seconds) for timers and the time of day."""
        ...


class RealClock:
    def t(self) -> float:
        return wall_now()

    def epoch(self) -> float:
        return time.time()


class Responder(Protocol):
    """Answers what the local intents cannot (the LLM). Posts ReplySentence* then ReplyEnd."""

    def respond(self, request: int, text: str, post: Callable[[object], None]) -> None:
        """Start answering; ``post`` takes its ReplySentence/ReplyEnd/Notice messages."""
        ...

    def cancel(self, request: int) -> None: ...

    def available(self) -> bool: ...

    def status(self) -> dict[str, object]: ...


class NoEcho:
    """No echo canceller: the microphone frame passes unchanged."""

    def process(self, mic: bytes, ref: bytes) -> bytes:
        return mic

    def reset(self) -> None:
        pass


class NoStopSpotter:
    """No stop word: only the wake word, the button or a command stop speech."""

    def process(self, pcm: bytes) -> bool:
        return False

    def reset(self) -> None:
        pass


class AlwaysClaim:
    """A speaker alone in its home answers every wake word it hears."""

    def claim(self, model: str, score: float) -> bool:
        return True


Updater = Callable[[Command], None]
"""Carries out an ``update`` command and answers it (``Command.reply``) itself."""
HomePublish = Callable[[str, str], None]
"""Publishes a custom sentence's action: ``(topic, payload)``."""
Heartbeat = Callable[[bool], None]
"""Called with True for every frame consumed, False for each tick of a microphone that is
being reopened (the systemd watchdog is fed from here, nowhere else)."""
AudioStatus = Callable[[], dict[str, object]]
"""The audio devices' health for ``status()``."""


@dataclass(frozen=True)
class Parts:
    """Everything optional the assistant is built with. Absent parts are no-ops (or None
    where the assistant says so: no updater → updates are refused)."""

    echo: EchoCanceller = field(default_factory=NoEcho)
    stop_spotter: StopSpotter = field(default_factory=NoStopSpotter)
    arbiter: WakeArbiter = field(default_factory=AlwaysClaim)
    updater: Updater | None = None
    home_publish: HomePublish | None = None
    heartbeat: Heartbeat | None = None
    audio_status: AudioStatus | None = None


__all__ = [
    "AlwaysClaim",
    "AudioStatus",
    "Clock",
    "EchoCanceller",
    "Heartbeat",
    "HomePublish",
    "NoEcho",
    "NoStopSpotter",
    "Parts",
    "RealClock",
    "Responder",
    "StopSpotter",
    "Updater",
    "WakeArbiter",
]
