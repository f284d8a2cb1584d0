"""The store under real faults: a real small tmpfs that fills up or turns read-only, and
damaged rows written into a real SQLite file. Nothing is thrown away but real corruption."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from harness import wait_until

from firmware_app.core.messages import Notice
from firmware_app.system.store import Store
from firmware_app.understand.timers import Timers


def seeded(path: Path) -> None:
    store = Store(path)
    store.put("settings", "volume", 35)
    store.put("settings", "muted", True)
    timers = Timers(store)
    timers.add(300, "pasta", now=1000.0)
    timers.add(60, None, now=1000.0)
    store.close()


def on_disk(path: Path, table: str) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute(f'SELECT key, value FROM "{table}"').fetchall())


def test_bad_rows_are_dropped_one_by_one(tmp_path):
    path = tmp_path / "s.sqlite"
    seeded(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO conversation VALUES ('llm', 'not json {')")
        conn.execute("INSERT INTO settings VALUES ('colour', '\"blue\"')")
        conn.execute("UPDATE settings SET value = '\"loud\"' WHERE key = 'volume'")
        conn.execute(
            'INSERT INTO timers VALUES (\'bad1\', \'{"id":"bad1","name":null,'
            '"seconds":"ten","due":5}\')'
        )
        conn.execute("INSERT INTO timers VALUES ('bad2', '[1, 2]')")
    store = Store(path)
    assert store.recovered_from is None  # a bad row is not a corrupt store
    assert store.get("settings", "volume", 70) == 70  # wrong type: the default applies
    assert store.get("settings", "muted") is True and store.get("settings", "colour") == "blue"
    assert store.get("conversation", "llm") is None
    timers = Timers(store)
    assert sorted(t.name or "" for t in timers.active()) == ["", "pasta"]
    assert store.status()["status"] == "ok"
    store.close()
    assert "volume" not in on_disk(path, "settings")  # dropped rows are gone from the file
    assert set(on_disk(path, "timers")) == {t.id for t in timers.active()}


def test_a_corrupt_file_is_moved_aside_keeping_what_can_be_read(tmp_path):
    path = tmp_path / "s.sqlite"
    seeded(path)
    with sqlite3.connect(path) as conn:
        settings_page = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'settings'"
        ).fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (settings_page - 1) * 4096
    data[start : start + 200] = b"\xff" * 200  # damage the settings table's page
    path.write_bytes(bytes(data))
    notices: list[Notice] = []
    store = Store(path, post=notices.append)
    assert store.recovered_from is not None and store.recovered_from.exists()
    assert len(Timers(store).active()) == 2  # the readable tables were kept
    store.put("settings", "volume", 50)
    # written again, but health goes on saying what was found until the next start
    assert store.status()["status"] == "recovered" and "corrupt" in store.status()["error"]
    assert [n.fields["where"] for n in notices] == ["store"]
    store.close()
    assert on_disk(path, "settings") == {"volume": "50"} and len(on_disk(path, "timers")) == 2


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = Store(path)
    assert store.recovered_from is not None and store.status()["status"] == "recovered"
    store.put("settings", "muted", True)
    store.close()
    assert on_disk(path, "settings") == {"muted": "true"}


def test_disk_full_while_running_keeps_everything_and_writes_it_later(small_fs):
    path = small_fs.path / "store.sqlite"
    seeded(path)
    notices: list[Notice] = []
    store = Store(path, post=notices.append, retry_min_s=0.05, retry_max_s=0.2)
    timers = Timers(store)
    small_fs.fill()
    for level in range(40):
        store.put("settings", "volume", level)  # never raises, never hangs
    added = [timers.add(100 + n, f"t{n}", now=2000.0) for n in range(30)]
    store.put("conversation", "llm", {"turns": [["q" * 3000, "a" * 3000]], "updated": 1.0})
    assert store.get("settings", "volume") == 39
    status = store.status()
    assert status["status"] == "degraded" and "full" in status["error"]
    assert status["pending"] >= 3
    assert [n.fields["where"] for n in notices] == ["store"]  # one notice, not one per write
    small_fs.free()
    wait_until(lambda: store.status()["status"] == "ok", 10.0)
    assert store.status()["pending"] == 0
    store.close()
    again = Store(path)
    assert again.get("settings", "volume") == 39
    assert {t.id for t in Timers(again).active()} >= {t.id for t in added}
    assert again.get("conversation", "llm")["turns"][0][0] == "q" * 3000
    again.close()


def test_disk_full_at_start_is_not_corruption(small_fs):
    path = small_fs.path / "store.sqlite"
    seeded(path)
    small_fs.fill()
    store = Store(path, retry_min_s=0.05, retry_max_s=0.2)
    assert store.recovered_from is None
    assert store.get("settings", "volume") == 35 and len(Timers(store).active()) == 2
    store.put("settings", "volume", 60)
    assert store.get("settings", "volume") == 60
    small_fs.free()
    wait_until(lambda: store.status()["status"] == "ok", 10.0)
    store.close()
    assert on_disk(path, "settings")["volume"] == "60"
    assert not list(small_fs.path.glob("*.corrupt-*"))


def test_read_only_at_start_runs_from_memory_then_writes(small_fs):
    path = small_fs.path / "store.sqlite"
    seeded(path)
    small_fs.read_only()
    notices: list[Notice] = []
    store = Store(path, post=notices.append, retry_min_s=0.05, retry_max_s=0.2)
    assert store.recovered_from is None
    assert store.get("settings", "muted") is True and len(Timers(store).active()) == 2
    assert store.status()["status"] == "degraded" and len(notices) == 1
    Timers(store).add(42, "tea", now=3000.0)
    store.put("settings", "muted", False)
    time.sleep(0.3)
    assert store.status()["status"] == "degraded"  # still read-only: still kept in memory
    small_fs.writable()
    wait_until(lambda: store.status()["status"] == "ok", 10.0)
    store.close()
    assert on_disk(path, "settings")["muted"] == "false"
    assert len(on_disk(path, "timers")) == 3


def test_missing_directory_that_cannot_be_made_runs_from_memory(small_fs):
    small_fs.read_only()
    store = Store(small_fs.path / "sub" / "store.sqlite", retry_min_s=0.05, retry_max_s=0.2)
    store.put("settings", "volume", 20)
    assert store.get("settings", "volume") == 20 and store.status()["status"] == "degraded"
    small_fs.writable()
    wait_until(lambda: store.status()["status"] == "ok", 10.0)
    store.close()
    assert on_disk(small_fs.path / "sub" / "store.sqlite", "settings") == {"volume": "20"}


def test_deletes_and_clears_made_while_degraded_reach_the_disk(small_fs):
    path = small_fs.path / "store.sqlite"
    seeded(path)
    store = Store(path, retry_min_s=0.05, retry_max_s=0.2)
    timers = Timers(store)
    small_fs.fill()
    for timer in timers.active():
        timers.remove(timer)
    store.clear("settings")
    store.put("settings", "volume", 11)
    assert store.status()["status"] == "degraded"
    small_fs.free()
    wait_until(lambda: store.status()["status"] == "ok", 10.0)
    store.close()
    assert on_disk(path, "timers") == {} and on_disk(path, "settings") == {"volume": "11"}


def test_thousands_of_writes_leave_a_small_disk_room(small_fs):
    """A volume change every two seconds for hours: SQLite's write-ahead log would grow to
    4 MB and keep that size, more than this 2 MB disk. It is checkpointed often and cut
    back, so the store stays "ok" and the disk keeps its room."""
    path = small_fs.path / "store.sqlite"
    store = Store(path, retry_min_s=0.05, retry_max_s=0.2)
    for level in range(3000):
        store.put("settings", "volume", level % 100)
    wait_until(lambda: store.status()["pending"] == 0, 10.0)
    assert store.status()["status"] == "ok", store.status()
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size <= 300 * 1024
    free = os.statvfs(small_fs.path)
    assert free.f_bavail * free.f_frsize > 1024 * 1024  # more than half the disk is free
    store.close()
    assert Store(path).get("settings", "volume") == 2999 % 100
