"""What the store can use from its file, row by row, and where a damaged file goes.

A row is read as raw bytes and checked on its own (UTF-8, JSON, the type a known setting
must have), so whatever one row holds costs that row only. A file that cannot be used as
it is (corrupt, not a database, empty) is moved aside under a timestamped name beside it
for inspection; only the newest few are kept, so a disk that keeps failing cannot fill up
with copies.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_KEPT_ASIDE = 3
"""Damaged files kept beside the store; older ones are deleted."""
_PARTS = ("", "-wal", "-shm")

# Primary SQLite result codes that mean the file itself is damaged (sqlite3.h).
SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26

SETTING_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "volume": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100,
        "an integer from 0 to 100",
    ),
    "muted": (lambda value: isinstance(value, bool), "true or false"),
    "wake_words": (
        lambda v: (
            isinstance(v, list)
            and len(v) <= 16
            and all(isinstance(w, str) and 0 < len(w) <= 64 for w in v)
        ),
        "a list of at most 16 wake word names",
    ),
}
"""Known settings and what they must be; a stored value that fails is dropped on load so
the caller's default applies. Unknown settings are kept as they are."""


def check_row(table: str, raw_key: Any, raw: Any) -> tuple[str, str] | str:
    """``(key, json_text)`` for a usable row, else why it cannot be used (one line)."""
    key = _utf8(raw_key)
    if key is None:
        return f"key {_preview(raw_key)} is not UTF-8 text"
    text = _utf8(raw)
    if text is None:
        return f"value {_preview(raw)} is not UTF-8 text"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return f"not JSON ({str(exc)[:60]})"
    if table == "settings" and key in SETTING_CHECKS:
        check, allowed = SETTING_CHECKS[key]
        if not check(value):
            return f"{json.dumps(value)[:60]} is not {allowed}; the default applies"
    return key, text


def _utf8(raw: Any) -> str | None:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None if raw is None else str(raw)


def _preview(raw: Any) -> str:
    return repr(raw)[:40]


def move_aside(path: Path, label: str) -> Path:
    """Move the store file (and its WAL and shared-memory files) to
    ``<name>.<label>-<UTC time>`` beside it; keep only the newest ``MAX_KEPT_ASIDE``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while any(Path(str(aside) + part).exists() for part in _PARTS):
        n += 1
        aside = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
    for part in _PARTS:
        source = Path(str(path) + part)
        if source.exists():
            source.rename(Path(str(aside) + part))
    _prune(path)
    return aside


def _prune(path: Path) -> None:
    pattern = re.compile(re.escape(path.name) + r"\.[a-z]+-(\d{8}T\d{6}Z)(?:-(\d+))?$")
    kept: list[tuple[str, int, Path]] = []
    for item in path.parent.iterdir():
        found = pattern.match(item.name)
        if found:  # newest by the time in the name (a moved file keeps its old mtime)
            kept.append((found.group(1), int(found.group(2) or 1), item))
    kept.sort()
    for _, _, old in kept[:-MAX_KEPT_ASIDE]:
        for part in _PARTS:
            with contextlib.suppress(OSError):
                Path(str(old) + part).unlink()


def is_corruption(exc: BaseException) -> bool:
    """True only when SQLite says the file is damaged, never for full/read-only/I/O."""
    if isinstance(exc, Corrupt):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        text = str(exc).lower()
        return "malformed" in text or "not a database" in text
    return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)


class Corrupt(sqlite3.DatabaseError):
    """``quick_check`` found damage."""
