"""The event log file stays bounded: rotated by size into a fixed number of old files,
through the real assistant writing a real file; it refuses a FIFO at once and survives a
full disk (a real small filesystem)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from fakes import SPEECH, WAKE, FakeTts, FakeVad, FakeWake, ScriptedStt
from small_fs import SmallFs

from firmware_app.app import loading, simulation
from firmware_app.audio.wavio import write_wav
from firmware_app.config.settings import LogSettings, Settings
from firmware_app.core.errors import ConfigError
from firmware_app.core.events import Event, JsonlWriter, read_events
from firmware_app.core.messages import FRAME_SAMPLES


def conversations(path: Path, n: int) -> Path:
    """``n`` requests (wake word, speech, quiet), as the fakes hear them."""
    parts = [np.zeros(FRAME_SAMPLES * 10, dtype=np.int16)]
    for _ in range(n):
        parts += [
            np.full(FRAME_SAMPLES, WAKE, dtype=np.int16),
            np.full(FRAME_SAMPLES * 6, SPEECH, dtype=np.int16),
            np.zeros(FRAME_SAMPLES * 40, dtype=np.int16),
        ]
    write_wav(path, np.concatenate(parts), 16000)
    return path


def test_the_assistant_s_event_log_is_rotated_by_size(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "events.jsonl"
    settings = Settings(
        data_dir=tmp_path / "data", log=LogSettings(events_max_mb=0.004, events_keep=2)
    )
    engines = loading.Engines(
        FakeWake(), FakeVad(), ScriptedStt(*["what time is it"] * 12), None, FakeTts()
    )
    summary = simulation.simulate(
        settings, conversations(tmp_path / "in.wav", 12), events=log, engines=engines
    )
    assert len(summary["replies"]) == 12  # everything was answered while it rotated
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    limit = int(0.004 * 1024 * 1024)
    records = []
    for name in reversed(files):  # oldest first
        path = log.parent / name
        assert path.stat().st_size <= limit
        records += read_events(path)  # every line whole, valid JSON
    walls = [r["wall"] for r in records]
    assert walls == sorted(walls)  # the files follow each other in order
    wakes = sum(r["type"] == "wake" for r in records)
    assert 0 < wakes < 12  # the oldest requests' events are gone, the newest are there
    assert records[-1]["type"] in ("state", "led", "speak_end")


def test_rotation_keeps_at_most_keep_files_and_keep_zero_truncates(tmp_path: Path) -> None:
    log = tmp_path / "e.jsonl"
    writer = JsonlWriter(log, max_bytes=200, keep=1)
    for n in range(50):
        writer(Event("volume", float(n), float(n), {"volume": n}))
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl", "e.jsonl.1"]
    assert read_events(log)[-1]["volume"] == 49
    assert read_events(tmp_path / "e.jsonl.1")[-1]["volume"] == read_events(log)[0]["volume"] - 1

    alone = tmp_path / "alone" / "e.jsonl"
    writer = JsonlWriter(alone, max_bytes=200, keep=0)
    for n in range(50):
        writer(Event("volume", float(n), float(n), {"volume": n}))
    writer.close()
    assert [p.name for p in alone.parent.iterdir()] == ["e.jsonl"]
    assert alone.stat().st_size <= 200 and read_events(alone)[-1]["volume"] == 49


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"^log\.events: cannot open .*fifo"):
        JsonlWriter(fifo)  # no reader: never waits for one
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(ConfigError, match=r"^log\.events: .* is not a regular file"):
            JsonlWriter(fifo)
    finally:
        os.close(reader)


def test_a_full_disk_costs_events_not_the_writer(small_fs: SmallFs) -> None:
    log = small_fs.path / "events.jsonl"
    writer = JsonlWriter(log)
    writer(Event("volume", 0.0, 0.0, {"volume": 1}))
    small_fs.fill()
    for n in range(20):
        writer(Event("volume", 1.0, 1.0, {"volume": n, "pad": "x" * 4096}))  # refused: no raise
    small_fs.free()
    writer(Event("mute", 2.0, 2.0, {"muted": True}))
    writer.close()
    lines = log.read_text().splitlines()
    assert json.loads(lines[0])["volume"] == 1 and json.loads(lines[-1])["type"] == "mute"
    assert all(json.loads(line) for line in lines)  # nothing half-written


def test_wall_counts_from_the_start_of_the_process() -> None:
    """``wall`` is seconds since the process started (docs/events.md), not since the event
    module was imported: a process that spends 0.4 s before importing it says so."""
    import subprocess
    import sys

    code = (
        "import time; time.sleep(0.4)\n"
        "from firmware_app.core.events import wall_now\n"
        "print(wall_now())\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout) >= 0.4
