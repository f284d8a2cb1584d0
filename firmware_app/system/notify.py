"""Tell systemd how the service is doing (sd_notify) and leave a health file for the updater.

The watchdog is fed only from ``frame()``, which the runtime calls for every audio frame
the assistant consumes: if the audio loop stalls, the pings stop and systemd restarts the
service. There is deliberately no timer thread that could keep pinging a hung process.

The health file (``$RUNTIME_DIRECTORY/health.json`` under systemd) is how the OTA health
gate sees a freshly started release: its version, whether it is ready, and when it last
consumed a frame. Both are no-ops when their environment is absent (a developer's shell).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

from loguru import logger

from firmware_app import __version__

HEALTH_WRITE_INTERVAL_S = 1.0
"""The health file is rewritten at most this often while frames flow."""


def installed_version() -> str:
    """The version pip installed (what release manifests and the health gate speak of),
    falling back to the package's own when run from a source tree."""
    try:
        return metadata.version("ttbt5")
    except metadata.PackageNotFoundError:
        return __version__


def default_health_file(env: Mapping[str, str] = os.environ) -> Path | None:
    runtime = env.get("RUNTIME_DIRECTORY")
    return Path(runtime.split(":")[0]) / "health.json" if runtime else None


class Notifier:
    """sd_notify over ``$NOTIFY_SOCKET`` (abstract namespace ``@`` included) plus the health
    file. Call ``ready()`` once models are loaded, ``frame()`` per consumed audio frame,
    ``stopping()`` on shutdown. Never raises: telling systemd must not break the service."""

    def __init__(
        self,
        *,
        version: str | None = None,
        health_file: Path | None = None,
        env: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None
        """Seconds between watchdog pings (half of WatchdogSec=), None when not watched."""
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_health = float("-inf")
        self.health_file = health_file or default_health_file(env)
        self._health = {
            "version": version or installed_version(),
            "pid": os.getpid(),
            "started": time.time(),
            "ready": False,
            "stopping": False,
            "frames": 0,
            "last_frame": None,
        }

    def ready(self) -> None:
        self._health["ready"] = True
        self._send("READY=1\nSTATUS=listening")
        self._write_health()

    def frame(self) -> None:
        now = self._clock()
        self._health["frames"] = int(self._health["frames"] or 0) + 1  # type: ignore[call-overload]
        self._health["last_frame"] = time.time()
        if self.interval is not None and now - self._last_ping >= self.interval:
            self._last_ping = now
            self._send("WATCHDOG=1")
        if self.health_file is not None and now - self._last_health >= HEALTH_WRITE_INTERVAL_S:
            self._last_health = now
            self._write_health()

    def alive(self) -> None:
        """The audio loop is running but its device is gone and being reopened: keep the
        watchdog fed (a restart would not bring the device back) without counting a frame,
        so the update health gate still sees that no audio flows."""
        now = self._clock()
        if self.interval is not None and now - self._last_ping >= self.interval:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._health["stopping"] = True
        self._send("STOPPING=1")
        self._write_health()

    def status(self, text: str) -> None:
        self._send("STATUS=" + text.replace("\n", " "))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            logger.warning("sd_notify {!r} failed: {}", message.split("=")[0], exc)

    def _write_health(self) -> None:
        if self.health_file is None:
            return
        tmp = self.health_file.with_name(self.health_file.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self._health), encoding="utf-8")
            os.replace(tmp, self.health_file)
        except OSError as exc:
            logger.warning("cannot write health file {}: {}", self.health_file, exc)


def _socket_address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value if value.startswith("/") else None
