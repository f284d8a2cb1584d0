"""Audio saved for people to listen to later (``log.save_audio``, ``wake.false_wake_dir``)
stays bounded: the real assistant saving real WAV files keeps only the newest within the
configured count and size, and a real small filesystem, full or read-only, costs the
entries it refuses and one log line, never the assistant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeTts, FakeVad, FakeWake, ScriptedStt
from loguru import logger
from small_fs import SmallFs
from test_config_hostile import one_error_line, validate
from test_event_log_bounds import conversations

from firmware_app.app import loading, simulation
from firmware_app.audio.wavio import read_wav
from firmware_app.config.settings import LogSettings, Settings
from firmware_app.listen.segmenter import REQUEST_PREFIX
from firmware_app.system.kept_files import KeptFiles

KB = 1024


@pytest.fixture(name="log_lines")
def log_lines_fixture() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    yield lines
    logger.remove(sink)


def save(kept: KeptFiles, n: int, size: int) -> Path | None:
    """Save request ``n``: one ``size``-byte file."""

    def write(base: Path) -> None:
        base.with_name(base.name + ".wav").write_bytes(b"\1" * size)

    return kept.save(f"{REQUEST_PREFIX}{n}", size, write)


def test_the_assistant_keeps_only_the_newest_requests(tmp_path: Path) -> None:
    """Eight requests heard, four kept: the last four, each the request's real audio."""
    folder = tmp_path / "requests"
    settings = Settings(
        data_dir=tmp_path / "data", log=LogSettings(save_audio=folder, save_audio_keep=4)
    )
    engines = loading.Engines(
        FakeWake(), FakeVad(), ScriptedStt(*["what time is it"] * 8), None, FakeTts()
    )
    summary = simulation.simulate(settings, conversations(tmp_path / "in.wav", 8), engines=engines)
    assert len(summary["replies"]) == 8  # every request answered while the folder was pruned
    kept = sorted(folder.iterdir())
    assert len(kept) == 4 and all(p.name.startswith(REQUEST_PREFIX) for p in kept)
    stamps = [int(p.stem.removeprefix(REQUEST_PREFIX)) for p in kept]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert all(len(read_wav(p)) > 0 for p in kept)  # whole WAV files

    sized = tmp_path / "sized"
    one = max(p.stat().st_size for p in kept)
    settings = settings.model_copy(
        update={
            "log": LogSettings(save_audio=sized, save_audio_max_mb=2.5 * one / 2**20),
        }
    )
    engines = loading.Engines(
        FakeWake(), FakeVad(), ScriptedStt(*["what time is it"] * 8), None, FakeTts()
    )
    simulation.simulate(settings, conversations(tmp_path / "in.wav", 8), engines=engines)
    assert len(list(sized.iterdir())) == 2
    assert sum(p.stat().st_size for p in sized.iterdir()) <= 2.5 * one


def test_a_cap_below_the_disk_keeps_the_disk_from_filling(small_fs: SmallFs) -> None:
    """A 2 MB card, audio capped at 1 MB: fifty 100 KB requests are all written, the disk
    never fills, and the oldest went first."""
    kept = KeptFiles(
        small_fs.path / "requests", REQUEST_PREFIX, (".wav",), 1.0, 1000, "request audio"
    )
    for n in range(50):
        assert save(kept, 1000 + n, 100 * KB) is not None
    count, used = kept.usage()
    assert used <= 1024 * KB and count == 10
    names = sorted(p.name for p in kept.folder.iterdir())
    assert names == [f"{REQUEST_PREFIX}{1000 + n}.wav" for n in range(40, 50)]


def test_a_full_or_read_only_disk_costs_one_log_line(
    small_fs: SmallFs, log_lines: list[str]
) -> None:
    kept = KeptFiles(
        small_fs.path / "requests", REQUEST_PREFIX, (".wav",), 100.0, 1000, "request audio"
    )
    assert save(kept, 1, 10 * KB) is not None
    small_fs.fill()
    refused = [save(kept, n, 64 * KB) for n in range(2, 12)]
    assert refused == [None] * 10
    assert sorted(p.name for p in kept.folder.iterdir()) == [
        f"{REQUEST_PREFIX}1.wav"
    ]  # no half files
    failures = [line for line in log_lines if "cannot save" in line]
    assert len(failures) == 1 and "request audio" in failures[0], log_lines

    small_fs.free()
    assert save(kept, 20, 10 * KB) is not None
    assert sum("saving to" in line and "again" in line for line in log_lines) == 1

    small_fs.read_only()
    try:
        refused = [save(kept, n, 10 * KB) for n in range(30, 35)]
        assert refused == [None] * 5
        assert sum("cannot save" in line for line in log_lines) == 2  # one more, not five
    finally:
        small_fs.writable()
    names = sorted(p.name for p in kept.folder.iterdir())
    assert names == [f"{REQUEST_PREFIX}1.wav", f"{REQUEST_PREFIX}20.wav"]


def test_the_limits_are_validated_like_every_setting(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[log]\nsave_audio_keep = 0\n")
    line = one_error_line(validate("--config", str(config)))
    assert "log.save_audio_keep" in line and "greater than or equal to 1" in line
    config.write_text("[wake]\nfalse_wake_keep = 10\n")
    env = {"TTBT5_WAKE__FALSE_WAKE_MAX_MB": "-1"}
    line = one_error_line(validate("--config", str(config), env=env))
    assert "TTBT5_WAKE__FALSE_WAKE_MAX_MB" in line and "greater than or equal to 0.1" in line
