"""One ``ttbt5 run`` per device: a lock on a file in the runtime directory, held for the
life of the process.

The kernel releases an ``flock`` when its holder exits, however it exits (a crash, SIGKILL,
a power cut clears ``/run`` anyway), so a lock left behind can never keep the service from
starting. A second ``ttbt5 run`` started by hand while the service runs refuses at once,
before it opens the sound card or touches the control socket the first one serves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from firmware_app.core.errors import AlreadyRunningError

LOCK_NAME = "ttbt5.lock"


class InstanceLock:
    """Held from ``acquire`` until ``release`` or the process ends."""

    def __init__(self, runtime_dir: Path) -> None:
        self.path = runtime_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise AlreadyRunningError naming the holder's pid. An
        OSError means the runtime directory cannot be used at all."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another ttbt5 run is already running (pid {holder}, lock {self.path}); "
                "stop it first (sudo systemctl stop ttbt5) or use ttbt5 ask/say"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the only descriptor releases the lock
            self._fd = None
