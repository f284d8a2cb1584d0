"""Persistent state in one SQLite file: settings (volume, mute), timers, conversation.

sqlitedict with JSON encoding (never pickle: a tampered file must not run code), WAL
journal and ``synchronous=NORMAL`` (durable across a power cut at the cost of, at worst,
the last write). A database that cannot be opened or read is moved aside and a fresh one
started, with an error logged: a corrupt file must never put the service in a crash loop.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger
from sqlitedict import SqliteDict

TABLES = ("settings", "timers", "conversation")


def _encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _decode(text: str | bytes) -> Any:
    return json.loads(text)


class Store:
    """A few named tables of JSON values. Safe to use from several threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered_from: Path | None = None
        self._lock = threading.RLock()
        try:
            self._tables = self._open()
        except (sqlite3.DatabaseError, json.JSONDecodeError, RuntimeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            logger.error(
                "store {} is unreadable ({}); moved to {}, starting fresh", self.path, exc, aside
            )
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    part.rename(Path(str(aside) + suffix))
            self.recovered_from = aside
            self._tables = self._open()

    def _open(self) -> dict[str, SqliteDict]:
        # Check the file with plain sqlite3 first: sqlitedict reports corruption from its
        # worker thread, which is harder to catch cleanly.
        if self.path.exists():
            with sqlite3.connect(self.path) as conn:
                result = conn.execute("PRAGMA quick_check").fetchone()
                if not result or result[0] != "ok":
                    raise sqlite3.DatabaseError(f"quick_check: {result}")
        tables: dict[str, SqliteDict] = {}
        for name in TABLES:
            table = SqliteDict(
                str(self.path),
                tablename=name,
                autocommit=True,
                journal_mode="WAL",
                encode=_encode,
                decode=_decode,
                outer_stack=False,
            )
            table.conn.execute("PRAGMA synchronous=NORMAL")
            # Read every value once so a corrupt row is found now, not mid-conversation.
            for _ in table.items():
                pass
            tables[name] = table
        return tables

    def get(self, table: str, key: str, default: Any = None) -> Any:
        with self._lock:
            try:
                return self._tables[table].get(key, default)
            except (json.JSONDecodeError, sqlite3.DatabaseError) as exc:
                logger.error("store: bad value {}/{} ({}); using the default", table, key, exc)
                return default

    def put(self, table: str, key: str, value: Any) -> None:
        with self._lock:
            self._tables[table][key] = value

    def delete(self, table: str, key: str) -> None:
        with self._lock:
            self._tables[table].pop(key, None)

    def items(self, table: str) -> list[tuple[str, Any]]:
        with self._lock:
            out = []
            for key in list(self._tables[table].keys()):
                value = self.get(table, key)
                if value is not None:
                    out.append((key, value))
            return out

    def clear(self, table: str) -> None:
        with self._lock:
            self._tables[table].clear()

    def close(self) -> None:
        with self._lock:
            for table in self._tables.values():
                table.close()
            self._tables = {}
