"""Persistent state in one SQLite file: settings (volume, mute), timers, conversation.

The store never throws data away and never takes the service down:

- Every table is mirrored in memory, which is what readers see. A write changes memory,
  then the disk; if the disk refuses (full, read-only, I/O error, locked), the change is
  kept, the store reports ``degraded`` (health, one ``error`` notice) and a thread retries
  with capped exponential backoff until everything kept is written. Writes never raise.
- Only a file SQLite itself reports as corrupt (``quick_check``, SQLITE_CORRUPT or
  SQLITE_NOTADB: a truncated copy is one), or an empty one, is moved aside
  (``store_rows.move_aside``: a timestamped name beside it, the newest three kept); the
  rows still readable in it go to the fresh file, and health says ``recovered`` with why
  until the next start, with an ``error`` notice. A full or read-only disk at start is not
  corruption: the rows are read (read-only if need be) and the service runs from memory
  until the disk takes writes again; a read-only disk shows in health from the start.
- Rows are read as bytes and checked one by one on load: a key or value that is not UTF-8,
  not JSON, or a setting of the wrong type is logged, reported in one ``error`` notice and
  dropped (the caller's default applies), never the whole store.

The file's layout and every SQL statement are in ``store_file.py``. All access goes through
one connection under one lock, so a failed commit can be retried instead of wedging a
worker.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.core.errors import FaultCode
from firmware_app.core.messages import Notice
from firmware_app.system.store_file import (
    READ_ONLY_MODES,
    TABLES,
    open_file,
    open_read_only,
    read_rows,
    write_changes,
)
from firmware_app.system.store_rows import is_corruption, move_aside


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Store:
    """A few named tables of JSON values, mirrored in memory. Safe from several threads.

    ``post`` receives a :class:`Notice` when the disk starts refusing writes, so the
    failure shows as an ``error`` event; ``retry_min_s``/``retry_max_s`` bound the backoff.
    """

    def __init__(
        self,
        path: Path | str,
        post: Callable[[Any], None] | None = None,
        retry_min_s: float = 1.0,
        retry_max_s: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.recovered_from: Path | None = None
        self._post = post
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._lock = threading.RLock()
        self._memory: dict[str, dict[str, str]] = {name: {} for name in TABLES}
        self._pending: dict[tuple[str, str], str | None] = {}
        """Changes not yet on disk: the JSON text, or None for a delete."""
        self._cleared: set[str] = set()
        self._conn: sqlite3.Connection | None = None
        self._loaded = False
        self._error = ""
        self._damage = ""
        """What was wrong with the file at start (moved aside, rows dropped); kept until
        the next start, so health does not say ``ok`` about a store that lost something."""
        self._bad_rowids: dict[str, set[int]] = {}
        """Unusable rows of the open file, deleted with the next write."""
        self._failed_writes = 0
        self._retry_thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        with self._lock:
            self._start()

    # --- opening and loading
    def _start(self) -> None:
        with contextlib.suppress(OSError):
            if self.path.stat().st_size == 0:  # power lost mid-copy, a bad restore
                self._set_aside(sqlite3.DatabaseError("the file is empty"), "empty")
        try:
            self._connect()
            self._load(self._conn)
            return
        except Exception as exc:
            failure = exc
        self._close_conn()
        problem: Exception | None = failure
        if is_corruption(failure):
            problem = self._recover(failure)
        else:
            self._read_only_load(self.path)
        if problem is not None:
            self._degrade(f"cannot open {self.path}: {_describe(problem)}")

    def _recover(self, exc: Exception) -> Exception | None:
        """Move a corrupt file aside, keep every row that can still be read from it, and
        start a fresh file with them (and with everything already in memory)."""
        try:
            aside = self._set_aside(exc, "corrupt")
        except OSError as err:
            self._read_only_load(self.path)
            return err
        self._bad_rowids.clear()  # they were the old file's
        if not self._loaded:
            kept = self._read_only_load(aside, salvage=True)
            self._report(f"{self._damage}; {kept} rows could be read from it")
        else:
            self._report(f"{self._damage}; everything in memory is written to a fresh file")
        for table, rows in self._memory.items():
            for key, text in rows.items():
                self._pending.setdefault((table, key), text)
        try:
            self._connect()
        except Exception as err:
            return err
        self._loaded = True
        self._flush()
        return None

    def _connect(self) -> None:
        self._conn = open_file(self.path)

    def _read_only_load(self, path: Path, salvage: bool = False) -> int:
        """The file could not be opened for writing: read what it holds, if anything.
        Returns the rows read."""
        if not path.exists():
            return 0
        for query in READ_ONLY_MODES:
            try:
                conn = open_read_only(path, query)
            except sqlite3.Error:
                continue
            try:
                rows = self._load(conn, salvage)
                logger.warning("store {} read without writing ({})", path, query)
                return rows
            except Exception as exc:
                logger.warning("store {} unreadable ({}): {}", path, query, _describe(exc))
            finally:
                conn.close()
        return 0

    def _load(self, conn: sqlite3.Connection | None, salvage: bool = False) -> int:
        """Read every row now, as bytes, checking each one, so a bad row costs only itself
        whatever it holds. ``salvage``: a table that cannot be read is skipped instead of
        failing the load. Returns the rows kept."""
        if conn is None:
            return 0
        kept = 0
        dropped: list[str] = []
        for name, rowid, row in read_rows(conn, salvage):
            if isinstance(row, tuple):
                key, text = row
                kept += 1
                if (name, key) not in self._pending and name not in self._cleared:
                    self._memory[name][key] = text
                continue
            logger.error("store: dropping {} row {}: {}", name, rowid, row)
            dropped.append(f"{name} row {rowid}: {row}")
            if conn is self._conn:
                self._bad_rowids.setdefault(name, set()).add(rowid)
        self._loaded = True
        if dropped:
            more = f" (and {len(dropped) - 1} more)" if len(dropped) > 1 else ""
            self._report(f"store: dropped {dropped[0]}{more}")
        if self._changes() and self._conn is not None:
            self._flush()
        return kept

    def _set_aside(self, exc: BaseException, label: str) -> Path:
        """Move the damaged file aside for inspection and say so (health, the log); the
        caller reports it once it knows what could be kept."""
        self._close_conn()
        aside = move_aside(self.path, label)
        logger.error(
            "store {} is {} ({}); moved to {}, starting fresh", self.path, label, exc, aside
        )
        self.recovered_from = aside
        self._damage = f"{self.path.name} was {label} ({exc}); kept as {aside.name}"
        if label == "empty":
            self._report(self._damage)
        return aside

    def _report(self, message: str) -> None:
        """One ``error`` notice (an event, the LED for a moment)."""
        if self._post is not None:
            self._post(Notice("error", {"where": FaultCode.STORE, "message": message[:300]}))

    # --- the public API
    def get(self, table: str, key: str, default: Any = None) -> Any:
        with self._lock:
            text = self._memory[table].get(key)
        return default if text is None else json.loads(text)

    def put(self, table: str, key: str, value: Any) -> None:
        text = _encode(value)
        with self._lock:
            self._memory[table][key] = text
            self._pending[(table, key)] = text
            self._flush()

    def delete(self, table: str, key: str) -> None:
        with self._lock:
            self._memory[table].pop(key, None)
            self._pending[(table, key)] = None
            self._flush()

    def drop_bad(self, table: str, key: str, problem: str) -> None:
        """A row its reader cannot use (a timer of the wrong shape): gone, logged and
        reported, so it costs only itself."""
        logger.error("store: dropping {}/{!r}: {}", table, key[:64], problem)
        self._report(f"store: dropped {table}/{key[:64]!r}: {problem}")
        self.delete(table, key)

    def items(self, table: str) -> list[tuple[str, Any]]:
        with self._lock:
            rows = list(self._memory[table].items())
        return [(key, json.loads(text)) for key, text in rows]

    def clear(self, table: str) -> None:
        with self._lock:
            self._memory[table].clear()
            for pending in [p for p in self._pending if p[0] == table]:
                del self._pending[pending]
            self._cleared.add(table)
            self._flush()

    def status(self) -> dict[str, Any]:
        """For the health report: ``ok`` (on disk), or ``degraded`` (running from memory
        with ``pending`` changes not yet written, and why)."""
        with self._lock:
            status = "degraded" if self._error else "recovered" if self._damage else "ok"
            return {
                "status": status,
                "error": self._error or self._damage,
                "pending": self._changes(),
                "failed_writes": self._failed_writes,
            }

    def close(self) -> None:
        """Stop retrying; one last attempt to write what is kept, then close the file."""
        with self._lock:
            self._closed = True
            self._wake.set()
        if self._retry_thread is not None:
            self._retry_thread.join(timeout=5)
        with self._lock:
            if self._changes() and not self._retry_once():
                logger.error("store: {} changes lost on closing: {}", self._changes(), self._error)
            self._close_conn()

    def _changes(self) -> int:
        bad = sum(len(rowids) for rowids in self._bad_rowids.values())
        return len(self._pending) + len(self._cleared) + bad

    # --- writing, and healing when the disk refuses
    def _flush(self) -> None:
        """Write every kept change in one transaction (under the lock). While degraded the
        retry thread does this on its own schedule, so callers never wait on a bad disk."""
        if self._error or self._conn is None or self._closed or not self._changes():
            return
        try:
            self._write(self._conn)
        except Exception as exc:
            self._failed_writes += 1
            self._close_conn()  # the retry starts from a fresh connection
            self._degrade(f"cannot write {self.path}: {_describe(exc)}")

    def _write(self, conn: sqlite3.Connection) -> None:
        pending = dict(self._pending)
        cleared = set(self._cleared)
        bad = {table: set(rowids) for table, rowids in self._bad_rowids.items()}
        write_changes(conn, pending, cleared, bad)
        for item, text in pending.items():
            if self._pending.get(item) is text:
                del self._pending[item]
        self._cleared -= cleared
        for table, rowids in bad.items():
            self._bad_rowids[table] -= rowids
            if not self._bad_rowids[table]:
                del self._bad_rowids[table]

    def _degrade(self, message: str) -> None:
        first = not self._error
        self._error = message
        if first:
            kept = self._changes()
            logger.error("store: {}; running from memory ({} kept), retrying", message, kept)
            if self._post is not None:
                self._post(Notice("error", {"where": FaultCode.STORE, "message": message}))
        if self._retry_thread is None and not self._closed:
            self._retry_thread = threading.Thread(
                target=self._retry_loop, name="store-retry", daemon=True
            )
            self._retry_thread.start()

    def _retry_loop(self) -> None:
        delay = self._retry_min_s
        while True:
            self._wake.wait(delay)
            with self._lock:
                if self._closed:
                    self._retry_thread = None
                    return
                if self._retry_once():
                    self._retry_thread = None
                    return
            delay = min(delay * 2, self._retry_max_s)

    def _retry_once(self) -> bool:
        """One attempt to get back to disk (under the lock); True when healthy again."""
        try:
            if self._conn is None:
                try:
                    self._connect()
                except Exception as exc:
                    if not is_corruption(exc):
                        raise
                    failure = self._recover(exc)
                    if failure is not None:
                        raise failure from exc
                if not self._loaded:
                    self._load(self._conn)
            if self._changes():
                self._write(self._conn)  # type: ignore[arg-type]
        except Exception as exc:
            self._failed_writes += 1
            self._close_conn()
            message = _describe(exc)
            if message not in self._error:
                logger.warning("store: still cannot write: {}", message)
            self._error = f"cannot write {self.path}: {message}"
            return False
        logger.info("store {} is writable again; everything kept has been written", self.path)
        self._error = ""
        return True

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
