"""The store's SQLite file: its layout, and how it is opened, read and written. All the
store's SQL is here; what is kept in memory, when a write is retried and what becomes of a
damaged file is the store's own business (``store.py``).

The layout is sqlitedict's (one table per name, ``key TEXT PRIMARY KEY, value BLOB``,
values as JSON, never pickle: a tampered file must not run code), in WAL mode with
``synchronous=NORMAL``: a write that returned while the disk was healthy survives a kill
or a power cut at the cost of, at worst, the last write.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from firmware_app.system.store_rows import Corrupt, check_row

TABLES = ("settings", "timers", "conversation")

READ_ONLY_MODES = ("mode=ro", "immutable=1")
"""How a file that cannot be opened for writing is still read: read-only first, then as
immutable (no lock, no WAL recovery) for a directory that refuses even that."""

Row = tuple[str, int, tuple[str, str] | str]
"""A row as read: its table, its rowid, and ``(key, json_text)`` or why it cannot be used."""


WAL_PAGES = 32
WAL_LIMIT_BYTES = 256 * 1024
"""The write-ahead log is checkpointed every 32 pages and cut back to 256 kB after."""


def open_file(path: Path) -> sqlite3.Connection:
    """Open the store file for reading and writing, creating it and its tables if need be.
    Raises :class:`Corrupt` when ``quick_check`` finds damage, and raises now, not at the
    first write, when the disk will refuse writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=2.0, check_same_thread=False, isolation_level=None)
    try:
        row = conn.execute("PRAGMA quick_check").fetchone()
        if not row or row[0] != "ok":
            raise Corrupt(f"quick_check: {row[0] if row else 'no answer'}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # The write-ahead log grows to 1,000 pages (4 MB) between checkpoints and keeps
        # that size: on a small or nearly full disk it would take the room the store
        # itself needs. The store's writes are a few rows; checkpoint often, keep it small.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        for name in TABLES:
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (key TEXT PRIMARY KEY, value BLOB)')
        probe_writable(path, conn)
    except BaseException:
        conn.close()
        raise
    return conn


def open_read_only(path: Path, mode: str) -> sqlite3.Connection:
    """Open the file without writing to it, in one of ``READ_ONLY_MODES``."""
    return sqlite3.connect(f"file:{path}?{mode}", uri=True, timeout=2.0)


def probe_writable(path: Path, conn: sqlite3.Connection) -> None:
    """Raise now, not at the first write, when the disk will refuse writes: a read-only
    mount, or a file SQLite opened read-only."""
    info = os.statvfs(path.parent)
    if info.f_flag & os.ST_RDONLY:
        raise sqlite3.OperationalError(f"{path.parent} is on a read-only filesystem")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS _writable (x)")
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def read_rows(conn: sqlite3.Connection, salvage: bool = False) -> Iterator[Row]:
    """Every row of every table, read as bytes and checked on its own, so whatever one row
    holds costs that row only. A missing table is skipped; ``salvage``: so is a table that
    cannot be read at all, instead of raising."""
    for name in TABLES:
        query = f'SELECT rowid, CAST(key AS BLOB), CAST(value AS BLOB) FROM "{name}"'
        try:
            rows = conn.execute(query).fetchall()
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc) or salvage:
                continue
            raise
        for rowid, raw_key, raw in rows:
            yield name, int(rowid), check_row(name, raw_key, raw)


def write_changes(
    conn: sqlite3.Connection,
    pending: Mapping[tuple[str, str], str | None],
    cleared: Iterable[str],
    bad: Mapping[str, Iterable[int]],
) -> None:
    """Write changes in one transaction, all or nothing: the unusable rows deleted, the
    cleared tables emptied, then each changed key written (its JSON text) or deleted
    (None)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, rowids in bad.items():
            for rowid in rowids:
                conn.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
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
