"""A real small filesystem for disk-full and read-only faults: a tmpfs mounted by root.

Used by the store tests and the soak script. Where mounting is not allowed (not root, no
CAP_SYS_ADMIN) ``SmallFs.mount`` raises ``PermissionError`` with the reason, so tests can
skip with a clear message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path


class SmallFs:
    """A tmpfs of ``size_kb`` at ``path``: ``fill()`` takes every free byte, ``free()``
    gives it back, ``read_only()``/``writable()`` remount it."""

    def __init__(self, path: Path, size_kb: int = 2048) -> None:
        self.path = path
        self.size_kb = size_kb
        self.filler = path / ".filler"
        self.mounted = False

    def mount(self) -> SmallFs:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            raise PermissionError("mounting a tmpfs needs root")
        done = self._mount("-t", "tmpfs", "-o", f"size={self.size_kb}k,mode=0755", "tmpfs")
        if done.returncode != 0:
            raise PermissionError(f"mount -t tmpfs refused: {done.stderr.strip()}")
        self.mounted = True
        return self

    def fill(self) -> int:
        """Write until the filesystem is full; returns the bytes taken."""
        written = 0
        block = b"\0" * 4096
        with open(self.filler, "ab", buffering=0) as out:
            while True:
                try:
                    written += out.write(block) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        # Fill the last partial block too, byte by byte.
        with open(self.filler, "ab", buffering=0) as out, contextlib.suppress(OSError):
            for _ in range(4096):
                written += out.write(b"\0") or 0
        return written

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def read_only(self) -> None:
        self._remount("ro")

    def writable(self) -> None:
        self._remount("rw")

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
            self.mounted = False

    def _remount(self, mode: str) -> None:
        done = self._mount("-o", f"remount,{mode}")
        if done.returncode != 0:
            raise RuntimeError(f"remount {mode} failed: {done.stderr.strip()}")

    def _mount(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = ["mount", *args, str(self.path)]
        return subprocess.run(command, capture_output=True, text=True, check=False)
