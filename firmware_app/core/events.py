"""The event log: what the assistant did, as it happened.

Every record has ``type``, ``t`` (seconds on the assistant clock: the position in the input
audio under ``simulate``, seconds since start under ``run``) and ``wall`` (monotonic process
seconds since start). The types and their fields are documented in ``docs/events.md``;
fields are only ever added, never renamed or removed. Observers (event log file, MQTT,
LEDs, metrics) subscribe to the bus; they run on the assistant's thread, so they must only
hand work off, never block.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.core.errors import ConfigError


def _process_start() -> float:
    """The monotonic time this process started: the kernel's start time of the process
    (Linux; in clock ticks since boot), so ``wall`` counts the interpreter's start and the
    imports before this module too. Elsewhere, or if it cannot be read, the time this
    module was imported."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat", encoding="ascii") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return now
    return now - age if age >= 0 else now


PROCESS_START = _process_start()

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
"""The event log file's size before it is rotated (``log.events_max_mb``)."""
DEFAULT_KEEP = 3
"""Rotated event log files kept (``log.events_keep``)."""

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
    "satellite",  # stage, run, ... (Home Assistant's pipeline)
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


class Emitter:
    """Tells the assistant's events on the bus, each stamped with the assistant's time.

    The assistant's time (``t``) is the latest time it has reached: the frames' and the
    ticks' times, moved on by the assistant alone (`advance`). An event is stamped with that
    or the clock's time, whichever is later, so a simulation's frames, which run ahead of
    its clock, and a real clock between frames both give events in order. The assistant's
    parts (its voice, its actions, the LED patterns) tell theirs through the same emitter.
    """

    def __init__(self, bus: EventBus, clock: Callable[[], float]) -> None:
        self.bus = bus
        self._clock = clock
        self.t = 0.0

    def advance(self, t: float) -> None:
        self.t = max(self.t, t)

    def __call__(self, type_: str, /, **fields: object) -> None:
        self.at(None, type_, **fields)

    def at(self, wall: float | None, type_: str, /, **fields: object) -> None:
        """An event stamped with the process time ``wall`` it happened at, a moment ago
        (None: now): the end of speech, decided before the recognizer's last pass."""
        stamp = wall_now() if wall is None else wall
        self.bus.publish(Event(type_, max(self.t, self._clock()), stamp, dict(fields)))


def _name(observer: Observer) -> str:
    return getattr(observer, "__qualname__", None) or type(observer).__name__


class JsonlWriter:
    """Writes each event as one JSON line, straight to the file (nothing buffered, so a
    crash loses nothing), and keeps the log bounded: when the file would pass ``max_bytes``
    it becomes ``<name>.1`` (``.1`` becomes ``.2`` ... up to ``keep`` old files, the
    oldest dropped) and a new file starts. ``keep = 0`` keeps no old file.

    The path must name a regular file (or none yet): a FIFO or a device is refused when
    the writer is made, never waited on. A write that fails (a full or read-only disk)
    costs that event, is logged once, and writing resumes when the disk takes it again."""

    def __init__(
        self,
        path: Path | str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        key: str = "log.events",
    ) -> None:
        self._path = Path(path)
        self._max_bytes = max(1, int(max_bytes))
        self._keep = max(0, int(keep))
        self._key = key
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._failing = False
        self._closed = False
        self._fd: int | None = None
        self._size = 0
        self._open()

    def _open(self, truncate: bool = False) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self._path, flags | (os.O_TRUNC if truncate else 0), 0o644)
        except OSError as exc:
            raise ConfigError(f"{self._key}: cannot open {self._path}: {exc.strerror}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ConfigError(f"{self._key}: {self._path} is not a regular file")
        os.set_blocking(fd, True)
        self._fd, self._size = fd, info.st_size

    def __call__(self, event: Event) -> None:
        data = (event.to_json() + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                return
            try:
                if self._fd is None:  # a rotation could not start the new file
                    self._open()
                if self._size > 0 and self._size + len(data) > self._max_bytes:
                    self._rotate()
                assert self._fd is not None
                written = os.write(self._fd, data)
                if written != len(data):  # the disk filled mid-line: take the half back
                    os.ftruncate(self._fd, self._size)
                    raise OSError(errno.ENOSPC, "no room for a whole line")
                self._size += len(data)
            except (OSError, ConfigError) as exc:
                if not self._failing:
                    self._failing = True
                    logger.error(
                        "event log {}: cannot write ({}); events are not logged until it works",
                        self._path,
                        getattr(exc, "strerror", None) or exc,
                    )
                return
            if self._failing:
                self._failing = False
                logger.info("event log {}: writing again", self._path)

    def _rotate(self) -> None:
        """Under the lock: shift the old files along and start a new one."""
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        if self._keep == 0:
            self._open(truncate=True)
            return
        for n in range(self._keep - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            if older.exists():
                os.replace(older, self._path.with_name(f"{self._path.name}.{n + 1}"))
        os.replace(self._path, self._path.with_name(f"{self._path.name}.1"))
        self._open()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_events(path: Path | str) -> list[dict[str, Any]]:
    """Read an event log back (tests, tools)."""
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
