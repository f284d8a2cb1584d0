"""System figures for the health report, with the Pi's own sources simulated."""

from __future__ import annotations

import ctypes
import stat
from pathlib import Path

import pytest

from firmware_app.edges.mqtt.health import SystemProbe, cpu_temperature, parse_throttled
from firmware_app.system.heap import heap_stats


def zone(root: Path, n: int, kind: str, millis: str) -> None:
    d = root / f"thermal_zone{n}"
    d.mkdir(parents=True)
    (d / "type").write_text(kind + "\n")
    (d / "temp").write_text(millis + "\n")


def test_cpu_temperature_prefers_the_cpu_zone(tmp_path: Path) -> None:
    zone(tmp_path, 0, "acpitz", "30000")
    zone(tmp_path, 1, "cpu-thermal", "48312")
    assert cpu_temperature(tmp_path) == 48.3


def test_cpu_temperature_falls_back_and_tolerates_junk(tmp_path: Path) -> None:
    zone(tmp_path, 0, "weird", "garbage")
    zone(tmp_path, 1, "other", "41000")
    assert cpu_temperature(tmp_path) == 41.0
    assert cpu_temperature(tmp_path / "none") is None


def test_parse_throttled() -> None:
    flags = parse_throttled("throttled=0x50005\n")
    assert flags is not None
    assert flags["raw"] == "0x50005"
    assert flags["under_voltage"] and flags["throttled"]
    assert flags["under_voltage_occurred"] and flags["throttled_occurred"]
    assert not flags["arm_frequency_capped"] and not flags["soft_temperature_limit_occurred"]
    assert parse_throttled("throttled=0x0") == {
        "raw": "0x0",
        **{k: False for k in flags if k != "raw"},
    }
    assert parse_throttled("error") is None


def test_probe_with_a_vcgencmd(tmp_path: Path) -> None:
    tool = tmp_path / "vcgencmd"
    tool.write_text('#!/bin/sh\n[ "$1" = get_throttled ] && echo "throttled=0x20002"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    health = SystemProbe(tmp_path / "data" / "missing", vcgencmd=str(tool)).collect()
    assert health["throttled"]["arm_frequency_capped"] is True
    assert health["throttled"]["arm_frequency_capped_occurred"] is True
    assert health["disk_free_mb"] > 0  # measured on the nearest existing parent
    assert health["memory"]["total_mb"] > 0 and health["memory"]["process_rss_mb"] > 0
    heap = health["memory"]["heap"]
    assert heap is None or (heap["in_use_mb"] > 0 and heap["free_mb"] >= 0)
    assert 0.0 <= health["cpu_percent"] <= 100.0 * 64
    assert health["boot_time"].endswith("+00:00")


def test_probe_without_vcgencmd(tmp_path: Path) -> None:
    broken = tmp_path / "vcgencmd"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    assert SystemProbe(tmp_path, vcgencmd=str(broken)).collect()["throttled"] is None
    assert SystemProbe(tmp_path, vcgencmd=str(tmp_path / "absent")).collect()["throttled"] is None


def test_heap_figures_follow_what_the_c_heap_holds() -> None:
    """A block the engines' C code would allocate shows in ``in_use_mb`` and leaves it when
    freed: the figure that tells a leak from fragmentation on a speaker that has grown."""
    before = heap_stats()
    if before is None:
        pytest.skip("this C library does not report its heap (mallinfo2 is glibc's)")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block = libc.malloc(64 * 2**20)
    try:
        during = heap_stats()
    finally:
        libc.free(block)
    after = heap_stats()
    assert during is not None and after is not None
    assert during["in_use_mb"] - before["in_use_mb"] >= 60
    assert abs(after["in_use_mb"] - before["in_use_mb"]) < 4
    assert after["free_mb"] >= 0
