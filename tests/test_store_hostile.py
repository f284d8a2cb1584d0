"""The store against whatever bytes its file holds, on a real small filesystem: a bad row
costs that row only, an empty or truncated file is reported and kept aside, and a
read-only disk shows in health from the start."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from firmware_app.core.messages import Notice
from firmware_app.system.store import Store
from firmware_app.system.store_rows import MAX_KEPT_ASIDE
from firmware_app.understand.timers import Timers


def four_timers(path: Path) -> list[str]:
    store = Store(path)
    timers = Timers(store)
    ids = [timers.add(60 * (i + 1), name, now=1000.0).id for i, name in enumerate("abcd")]
    store.put("settings", "volume", 35)
    store.close()
    return ids


def errors(notices: list[Notice]) -> list[str]:
    return [str(n.fields["message"]) for n in notices if n.kind == "error"]


@pytest.mark.parametrize(
    ("what", "sql"),
    [
        (
            "a non-UTF-8 byte in the value",
            "UPDATE timers SET value = CAST(x'7bff7d' AS TEXT) WHERE key = ?",
        ),
        ("a non-UTF-8 key", "UPDATE timers SET key = CAST(x'c328' AS TEXT) WHERE key = ?"),
        ("bad JSON", "UPDATE timers SET value = '{\"id\": ' WHERE key = ?"),
        ("a number", "UPDATE timers SET value = 12 WHERE key = ?"),
        (
            "wrong types",
            'UPDATE timers SET value = \'{"id":1,"name":2,"seconds":[],"due":{}}\' WHERE key = ?',
        ),
        ("NULL", "UPDATE timers SET value = NULL WHERE key = ?"),
    ],
)
def test_one_bad_timer_row_costs_that_timer_only(small_fs, what: str, sql: str) -> None:
    path = small_fs.path / "store.sqlite"
    ids = four_timers(path)
    with sqlite3.connect(path) as conn:
        conn.execute(sql, (ids[1],))
    notices: list[Notice] = []
    store = Store(path, post=notices.append)
    timers = Timers(store)
    assert sorted(t.name for t in timers.active()) == ["a", "c", "d"], what
    assert store.get("settings", "volume") == 35
    assert store.status()["status"] == "ok"  # nothing else is wrong with the store
    assert len(errors(notices)) == 1 and "timers" in errors(notices)[0]
    timers.add(42, "tea", now=2000.0)
    store.close()

    again = Store(path, post=notices.append)  # and it is all still there after a restart
    assert sorted(t.name for t in Timers(again).active()) == ["a", "c", "d", "tea"]
    assert again.status()["status"] == "ok" and len(errors(notices)) == 1  # the row is gone
    again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM timers").fetchone()[0] == 4


def test_an_empty_file_is_reported_and_kept_aside(small_fs) -> None:
    path = small_fs.path / "store.sqlite"
    four_timers(path)
    path.write_bytes(b"")  # power lost during a copy, a bad restore
    notices: list[Notice] = []
    store = Store(path, post=notices.append)
    status = store.status()
    assert status["status"] == "recovered" and "empty" in status["error"]
    assert len(errors(notices)) == 1 and "empty" in errors(notices)[0]
    (aside,) = [
        p
        for p in small_fs.path.glob("store.sqlite.empty-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert aside.stat().st_size == 0
    Timers(store).add(42, "tea", now=2000.0)
    store.close()
    again = Store(path)
    assert [t.name for t in Timers(again).active()] == ["tea"]
    assert again.status()["status"] == "ok"  # a new start on a healthy file
    again.close()


def test_a_truncated_file_is_reported_salvaged_and_kept_aside(small_fs) -> None:
    path = small_fs.path / "store.sqlite"
    four_timers(path)
    store = Store(path)
    for i in range(100):  # enough pages that a cut loses some
        store.put("conversation", f"turn-{i}", "x" * 400)
    store.close()
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2])
    notices: list[Notice] = []
    store = Store(path, post=notices.append)
    status = store.status()
    assert status["status"] == "recovered" and "corrupt" in status["error"]
    assert len(errors(notices)) == 1 and "rows could be read" in errors(notices)[0]
    (aside,) = [
        p
        for p in small_fs.path.glob("store.sqlite.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert aside.read_bytes() == original[: len(original) // 2]  # kept as it was
    store.put("settings", "muted", True)
    store.close()
    again = Store(path)
    assert again.get("settings", "muted") is True and again.status()["status"] == "ok"
    again.close()


def test_damaged_files_kept_aside_are_bounded(small_fs) -> None:
    path = small_fs.path / "store.sqlite"
    for _ in range(MAX_KEPT_ASIDE + 3):
        path.write_bytes(b"not a database at all" * 50)
        Store(path).close()
    kept = [
        p
        for p in small_fs.path.glob("store.sqlite.corrupt-*")
        if not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(kept) == MAX_KEPT_ASIDE


@pytest.mark.parametrize("left", ["closed cleanly", "killed with its WAL"])
def test_a_read_only_disk_shows_in_health_from_the_start(small_fs, tmp_path, left: str) -> None:
    path = small_fs.path / "store.sqlite"
    if left == "closed cleanly":
        four_timers(path)
    else:  # the files as a killed service leaves them: store, -wal and -shm
        live = tmp_path / "live.sqlite"
        four_timers(live)
        running = Store(live)
        running.put("settings", "muted", True)
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{live}{suffix}").exists():
                shutil.copy(f"{live}{suffix}", f"{path}{suffix}")
        running.close()
    small_fs.read_only()
    notices: list[Notice] = []
    store = Store(path, post=notices.append, retry_min_s=0.05, retry_max_s=0.2)
    try:
        assert store.status()["status"] == "degraded"  # before any write was tried
        assert len(errors(notices)) == 1
        assert len(Timers(store).active()) == 4  # everything still readable
    finally:
        store.close()
        small_fs.writable()
