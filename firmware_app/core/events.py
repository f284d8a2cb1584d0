"""The event log: what the assistant did, as it happened.

Every record has ``type``, ``t`` (seconds on the assistant clock: the position in the input
audio under ``simulate``, seconds since start under ``run``) and ``wall`` (monotonic process
seconds since start). The types and their fields are documented in ``docs/events.md``;
fields are only ever added, never renamed or removed. Observers (event log file, MQTT,
LEDs, metrics) subscribe to the bus; they run on the assistant's thread, so they must only
hand work off, never block.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from loguru import logger

PROCESS_START = time.monotonic()

# The documented types (docs/events.md has every field).
EVENT_TYPES = (
    "wake",  # model, score
    "wake_lost",  # model, score, reason
    "listening",
    "speech_start",
    "speech_end",  # last_speech_t
    "transcript",  # text
    "intent",  # name, slots
    "reply",  # text, source: local|llm|fallback
    "speak_start",  # utterance, origin, request_id
    "speak_end",  # utterance, origin, request_id, cut
    "speak_dropped",  # utterance, origin, request_id, reason
    "state",  # state
    "led",  # pattern
    "error",  # where, message
    "timer",  # action: set|cancel|ring|missed, name, seconds, id
    "volume",  # volume
    "mute",  # muted
    "breaker",  # state: closed|open|half_open
    "update",  # step, ok, message, version, active
)


@dataclass(frozen=True)
class Event:
    """One record of the event log."""

    type: str
    t: float
    """Assistant clock, seconds."""
    wall: float
    """Monotonic process time, seconds since start."""
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "t": round(self.t, 3),
            "wall": round(self.wall, 4),
            **self.fields,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))


Observer = Callable[[Event], None]


def wall_now() -> float:
    return time.monotonic() - PROCESS_START


class EventBus:
    """Fans each event out to its observers. A failing observer is logged and skipped,
    never allowed to take the assistant down with it."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)

    def unsubscribe(self, observer: Observer) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    def publish(self, event: Event) -> None:
        with self._lock:
            observers = list(self._observers)
        for observer in observers:
            try:
                observer(event)
            except Exception as exc:  # an observer must not break the assistant
                logger.opt(exception=exc).error(
                    "event observer {} failed on {}: {}", _name(observer), event.type, exc
                )


def _name(observer: Observer) -> str:
    return getattr(observer, "__qualname__", None) or type(observer).__name__


class JsonlWriter:
    """Writes each event as one JSON line, flushed at once so a crash loses nothing."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self._path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = event.to_json() + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_events(path: Path | str) -> list[dict[str, Any]]:
    """Read an event log back (tests, tools)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
