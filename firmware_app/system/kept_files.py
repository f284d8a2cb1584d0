"""Audio kept on disk for people to listen to later, held to a size and a number of files
(``log.save_audio``, ``wake.false_wake_dir``).

A speaker runs for months on an SD card: every request saved as WAV, or every false wake
kept, would fill it in the end and take the store and the event log down with it. So each
folder is a bounded collection: before a new entry is written, the oldest entries are
deleted until it fits under both limits. An entry is the files that share a name before
their suffix (a clip's ``.wav`` and its ``.json`` note), so a note never outlives its
audio. Only files named with the folder's prefix and one of its suffixes are counted or
deleted: the folder may be one the user keeps other things in.

A full or read-only disk, or a folder that cannot be made, costs the entry and one log
line, never the service: the next failures are quiet until an entry is written again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

MB = 1024 * 1024


@dataclass
class _Entry:
    paths: list[Path]
    size: int
    mtime: int


class KeptFiles:
    """Entries named ``<prefix>…<suffix>`` in ``folder``: at most ``keep`` of them and
    ``max_mb`` in all (the newest entry is always kept whole, even when it alone is larger).
    ``what`` names them in the log line ("request audio")."""

    def __init__(
        self,
        folder: Path,
        prefix: str,
        suffixes: tuple[str, ...],
        max_mb: float,
        keep: int,
        what: str,
    ) -> None:
        self.folder = folder
        self.prefix = prefix
        self.suffixes = suffixes
        self.max_bytes = int(max_mb * MB)
        self.keep = keep
        self.what = what
        self.failing = False
        """The last save failed (and was logged); cleared by the next that succeeds."""

    def save(self, stem: str, size: int, write: Callable[[Path], None]) -> Path | None:
        """Make room for an entry of about ``size`` bytes, then ``write(folder / stem)`` (it
        writes the entry's files, each ``stem`` plus a suffix). The folder's path to the
        entry (suffix-less), or None when the disk refused it."""
        base = self.folder / stem
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._make_room(size, stem)
            write(base)
        except OSError as exc:
            with contextlib.suppress(OSError):  # nothing half-written stays behind
                self._remove(self._entries().get(stem))
            if not self.failing:
                self.failing = True
                logger.error("{}: cannot save to {}: {}", self.what, self.folder, exc)
            return None
        if self.failing:
            self.failing = False
            logger.info("{}: saving to {} again", self.what, self.folder)
        return base

    def usage(self) -> tuple[int, int]:
        """(entries, bytes) in the folder now."""
        entries = self._entries().values()
        return len(entries), sum(e.size for e in entries)

    def _make_room(self, size: int, stem: str) -> None:
        entries = self._entries()
        self._remove(entries.pop(stem, None))  # the same name again: replaced
        oldest_first = sorted(entries.items(), key=lambda item: (item[1].mtime, item[0]))
        count = len(oldest_first)
        total = sum(e.size for _, e in oldest_first)
        for _, entry in oldest_first:
            if count < self.keep and total + size <= self.max_bytes:
                break
            self._remove(entry)
            count -= 1
            total -= entry.size

    def _entries(self) -> dict[str, _Entry]:
        entries: dict[str, _Entry] = {}
        try:
            scan = os.scandir(self.folder)
        except FileNotFoundError:
            return entries
        with scan:
            for item in scan:
                stem, dot, suffix = item.name.rpartition(".")
                ours = item.name.startswith(self.prefix) and dot + suffix in self.suffixes
                if not ours or not item.is_file(follow_symlinks=False):
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                entry = entries.setdefault(stem, _Entry([], 0, st.st_mtime_ns))
                entry.paths.append(Path(item.path))
                entry.size += st.st_size
                entry.mtime = max(entry.mtime, st.st_mtime_ns)
        return entries

    @staticmethod
    def _remove(entry: _Entry | None) -> None:
        for path in entry.paths if entry else ():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
