"""Persistent state in one SQLite file: settings (volume, mute), timers, conversation.

The store never throws data away and never takes the service down:

- Every table is mirrored in memory, which is what readers see. A write changes memory,
  then the disk; if the disk refuses (full, read-only, I/O error, locked), the change is
  kept, the store reports ``degraded`` (health, one ``error`` notice) and a thread retries
  with capped exponential backoff until everything kept is written. Writes never raise.
- Only a file SQLite itself reports as corrupt (``quick_check``, SQLITE_CORRUPT or
  SQLITE_NOTADB) is moved aside; the rows still readable in it go to the fresh file. A
  full or read-only disk at start is not corruption: the rows are read (read-only if need
  be) and the service runs from memory until the disk takes writes again.
- Rows are checked one by one on load: a value that is not JSON, or a setting of the
  wrong type, is logged and dropped (the caller's default applies), never the whole store.

The file layout is sqlitedict's (one table per name, ``key TEXT PRIMARY KEY, value BLOB``,
values as JSON, never pickle: a tampered file must not run code), in WAL mode with
``synchronous=NORMAL``: a write that returned while the disk was healthy survives a kill
or a power cut at the cost of, at worst, the last write. All access goes through one
connection under one lock, so a failed commit can be retried instead of wedging a worker.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.core.messages import Notice

TABLES = ("settings", "timers", "conversation")

# Primary SQLite result codes that mean the file itself is damaged (sqlite3.h).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


SETTING_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "volume": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100,
        "an integer from 0 to 100",
    ),
    "muted": (lambda value: isinstance(value, bool), "true or false"),
}
"""Known settings and what they must be; a stored value that fails is dropped on load so
the caller's default applies. Unknown settings are kept as they are."""


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def is_corruption(exc: BaseException) -> bool:
    """True only when SQLite says the file is damaged, never for full/read-only/I/O."""
    if isinstance(exc, _Corrupt):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        return "malformed" in text or "not a database" in text
    return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


class _Corrupt(sqlite3.DatabaseError):
    """``quick_check`` found damage."""


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
        self._failed_writes = 0
        self._retry_thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        with self._lock:
            self._start()

    # --- opening and loading
    def _start(self) -> None:
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
            aside = self._move_aside(exc)
        except OSError as err:
            self._read_only_load(self.path)
            return err
        if not self._loaded:
            self._read_only_load(aside, salvage=True)
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=2.0, check_same_thread=False, isolation_level=None
        )
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
            if not row or row[0] != "ok":
                raise _Corrupt(f"quick_check: {row[0] if row else 'no answer'}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for name in TABLES:
                conn.execute(
                    f'CREATE TABLE IF NOT EXISTS "{name}" (key TEXT PRIMARY KEY, value BLOB)'
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _read_only_load(self, path: Path, salvage: bool = False) -> None:
        """The file could not be opened for writing: read what it holds, if anything."""
        if not path.exists():
            return
        for query in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(f"file:{path}?{query}", uri=True, timeout=2.0)
            except sqlite3.Error:
                continue
            try:
                self._load(conn, salvage)
                logger.warning("store {} read without writing ({})", path, query)
                return
            except Exception as exc:
                logger.warning("store {} unreadable ({}): {}", path, query, _describe(exc))
            finally:
                conn.close()

    def _load(self, conn: sqlite3.Connection | None, salvage: bool = False) -> None:
        """Read every row now, checking each one, so a bad row costs only itself.
        ``salvage``: a table that cannot be read is skipped instead of failing the load."""
        if conn is None:
            return
        for name in TABLES:
            try:
                rows = conn.execute(f'SELECT key, value FROM "{name}"').fetchall()
            except sqlite3.DatabaseError as exc:
                if "no such table" in str(exc) or salvage:
                    continue
                raise
            for key, raw in rows:
                problem = _check_row(name, key, raw)
                if problem is None:
                    if (name, key) not in self._pending and name not in self._cleared:
                        self._memory[name][str(key)] = _text(raw)
                    continue
                logger.error("store: dropping {}/{!r}: {}", name, key, problem)
                if isinstance(key, str) and (name, key) not in self._pending:
                    self._pending[(name, key)] = None
        self._loaded = True
        if self._pending and self._conn is not None:
            self._flush()

    def _move_aside(self, exc: BaseException) -> Path:
        self._close_conn()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        logger.error("store {} is corrupt ({}); moved to {}, starting fresh", self.path, exc, aside)
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                part.rename(Path(str(aside) + suffix))
        self.recovered_from = aside
        return aside

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
            return {
                "status": "degraded" if self._error else "ok",
                "error": self._error,
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
        return len(self._pending) + len(self._cleared)

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
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in cleared:
                conn.execute(f'DELETE FROM "{table}"')
            for (table, key), text in pending.items():
                if text is None:
                    conn.execute(f'DELETE FROM "{table}" WHERE key = ?', (key,))
                else:
                    conn.execute(f'REPLACE INTO "{table}" (key, value) VALUES (?, ?)', (key, text))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        for item, text in pending.items():
            if self._pending.get(item) is text:
                del self._pending[item]
        self._cleared -= cleared

    def _degrade(self, message: str) -> None:
        first = not self._error
        self._error = message
        if first:
            kept = self._changes()
            logger.error("store: {}; running from memory ({} kept), retrying", message, kept)
            if self._post is not None:
                self._post(Notice("error", {"where": "store", "message": message}))
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


def _text(raw: Any) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def _check_row(table: str, key: Any, raw: Any) -> str | None:
    """Why a stored row cannot be used, or None when it can."""
    if not isinstance(key, str):
        return f"key of type {type(key).__name__}"
    if not isinstance(raw, str | bytes):
        return f"value of type {type(raw).__name__}"
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"not JSON ({exc})"
    if table == "settings" and key in SETTING_CHECKS:
        check, allowed = SETTING_CHECKS[key]
        if not check(value):
            return f"{json.dumps(value)[:60]} is not {allowed}; the default applies"
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
