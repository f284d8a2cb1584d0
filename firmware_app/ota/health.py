"""The health gate: did the release we just switched to come up, and is it hearing audio?

It reads the health file the service writes (``firmware_app.system.notify.Notifier``): version,
pid, start time, ``ready`` (sent after the models loaded) and the wall time of the last
consumed audio frame. A file from before the restart, from another version, or one whose
frames stopped, fails the gate. Wall-clock times are used because writer and reader are
different processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from firmware_app.ota.layout import read_untrusted

POLL_S = 0.2
HEALTH_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Health:
    version: str
    pid: int
    started: float
    ready: bool
    stopping: bool
    frames: int
    last_frame: float | None


def read_health(path: Path) -> Health | None:
    """The current health record, or None if it is missing, half-written or malformed.
    The service writes it and root reads it, so it is read as an untrusted file: a link or
    a FIFO planted there counts as no health at all."""
    try:
        data = json.loads(read_untrusted(path, HEALTH_MAX_BYTES).decode("utf-8"))
        last = data.get("last_frame")
        return Health(
            version=str(data["version"]),
            pid=int(data["pid"]),
            started=float(data["started"]),
            ready=bool(data["ready"]),
            stopping=bool(data.get("stopping", False)),
            frames=int(data.get("frames", 0)),
            last_frame=None if last is None else float(last),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def wait_healthy(
    path: Path,
    version: str,
    since: float,
    timeout_s: float,
    audio_s: float,
    stale_s: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """(passed, one-line reason). Ready within ``timeout_s`` of ``since``, then frames
    consumed without a gap longer than ``stale_s`` for ``audio_s``."""
    deadline = clock() + timeout_s
    seen: Health | None = None
    while True:
        seen = read_health(path)
        if seen and seen.version == version and seen.started >= since and seen.ready:
            break
        if clock() >= deadline:
            why = _why(seen, version, since)
            return False, f"{version} did not report ready within {timeout_s:g} s ({why})"
        sleep(POLL_S)
    pid, first_frames, start = seen.pid, seen.frames, clock()
    while True:
        now = clock()
        health = read_health(path)
        if health is None or health.pid != pid or health.stopping:
            return False, f"{version} stopped or restarted during the health check"
        last = health.last_frame if health.last_frame is not None else start
        if now - max(last, start) > stale_s:
            return False, f"{version} stopped consuming audio (no frame for {now - last:.1f} s)"
        if now - start >= audio_s:
            if audio_s > 0 and health.frames <= first_frames:
                return False, f"{version} consumed no audio frames in {audio_s:g} s"
            return True, f"{version} ready and consuming audio for {audio_s:g} s"
        sleep(POLL_S)


def _why(seen: Health | None, version: str, since: float) -> str:
    if seen is None:
        return "no health file"
    if seen.version != version:
        return f"the running version is {seen.version}"
    if seen.started < since:
        return "the service was not restarted"
    return "not ready"
