"""The parts the assistant works with: its clock, the LLM responder and the optional
parts, each behind a small Protocol; optional ones have a default that does nothing, so
the state machine never checks whether a part exists.

All of them are handed to the `Assistant` constructor in one `Parts` value: nothing is
attached to the assistant after it is built, so what it depends on is visible in one place.

- `WakeArbiter`: several speakers in one home hear the same wake word; only the one that
  claims it answers, the others go back to idle without a sound.
- `Satellite`: Home Assistant, connected over the ESPHome native API, takes requests to
  its own pipeline; without it (or while it is away) the local brain answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from firmware_app.core.events import wall_now
from firmware_app.core.messages import Command


class WakeArbiter(Protocol):
    def claim(self, model: str, score: float) -> bool:
        """Called on each wake word: True to answer it here, False to stay silent."""
        ...

    def status(self) -> dict[str, object] | None:
        """For health: what the arbiter turned away (None: no arbitration)."""
        ...


class Satellite(Protocol):
    """Hands requests to Home Assistant's pipeline. Called on the assistant's thread and
    never blocks: what Home Assistant says comes back as HomeStage/HomeAudio/HomeTimer
    messages in the inbox."""

    def start(self, wake_phrase: str, followup: bool) -> int:
        """A request begins (wake word, button, follow-up): the id of the pipeline run it
        went to, or 0 when Home Assistant is not there (the local brain answers)."""
        ...

    def hears(self, model: str) -> bool:
        """Whether this wake word is one to answer (Home Assistant can turn some off)."""
        ...

    def timing(self) -> bool:
        """Home Assistant has timers running (the LEDs show it)."""
        ...

    def feed(self, run: int, pcm: bytes) -> None:
        """One frame of the request's audio (after the wake word)."""
        ...

    def end(self, run: int) -> None:
        """The speaker's own voice detector heard the end of speech."""
        ...

    def abort(self, run: int) -> None:
        """The request was dropped here (stop, mute, no speech, a new wake word)."""
        ...

    def status(self) -> dict[str, object] | None:
        """For health: whether Home Assistant is connected, and from where (None: no
        satellite configured)."""
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


class AlwaysClaim:
    """A speaker alone in its home answers every wake word it hears."""

    def claim(self, model: str, score: float) -> bool:
        return True

    def status(self) -> dict[str, object] | None:
        return None


class NoSatellite:
    """No Home Assistant satellite: every request is answered by the local brain."""

    def start(self, wake_phrase: str, followup: bool) -> int:
        return 0

    def hears(self, model: str) -> bool:
        return True

    def timing(self) -> bool:
        return False

    def feed(self, run: int, pcm: bytes) -> None:
        pass

    def end(self, run: int) -> None:
        pass

    def abort(self, run: int) -> None:
        pass

    def status(self) -> dict[str, object] | None:
        return None


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

    arbiter: WakeArbiter = field(default_factory=AlwaysClaim)
    satellite: Satellite = field(default_factory=NoSatellite)
    updater: Updater | None = None
    home_publish: HomePublish | None = None
    heartbeat: Heartbeat | None = None
    audio_status: AudioStatus | None = None


__all__ = [
    "AlwaysClaim",
    "AudioStatus",
    "Clock",
    "Heartbeat",
    "HomePublish",
    "NoSatellite",
    "Parts",
    "RealClock",
    "Responder",
    "Satellite",
    "Updater",
    "WakeArbiter",
]
