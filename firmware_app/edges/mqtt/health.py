"""System figures for the health report: what a person managing a few devices wants to
see without logging in (is it hot, throttled, out of memory or disk, when did it boot)."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from loguru import logger

from firmware_app.system.heap import heap_stats

THERMAL_ROOT = Path("/sys/class/thermal")

# `vcgencmd get_throttled` bits (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capped_occurred",
    18: "throttled_occurred",
    19: "soft_temperature_limit_occurred",
}


def cpu_temperature(root: Path = THERMAL_ROOT) -> float | None:
    """Degrees Celsius from the kernel's thermal zones, preferring one that names the CPU
    or SoC; None on machines that have none (most containers and VMs)."""
    zones = sorted(root.glob("thermal_zone*"))
    preferred = []
    others = []
    for zone in zones:
        try:
            kind = (zone / "type").read_text().strip().lower()
        except OSError:
            kind = ""
        if any(word in kind for word in ("cpu", "soc", "x86_pkg", "package")):
            preferred.append(zone)
        else:
            others.append(zone)
    for zone in preferred + others:
        try:
            millis = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        return round(millis / 1000.0, 1)
    return None


def parse_throttled(text: str) -> dict[str, Any] | None:
    """``throttled=0x50005`` → the raw value and each flag by name; None if unreadable."""
    _, _, value = text.strip().partition("=")
    try:
        bits = int(value.strip(), 16)
    except ValueError:
        return None
    flags = {name: bool(bits >> bit & 1) for bit, name in THROTTLE_BITS.items()}
    return {"raw": hex(bits), **flags}


class SystemProbe:
    """Collects the system part of the health report. Cheap enough to call every few
    seconds; ``vcgencmd`` (Pi only) runs with a short timeout."""

    def __init__(self, data_dir: Path, vcgencmd: str | None = None) -> None:
        self._data_dir = data_dir
        self._vcgencmd = vcgencmd if vcgencmd is not None else shutil.which("vcgencmd")
        self._process = psutil.Process()
        self._started = time.time()
        psutil.cpu_percent(interval=None)  # the first call only sets the baseline
        self._warned_vcgencmd = False

    def collect(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        return {
            "boot_time": datetime.fromtimestamp(psutil.boot_time(), UTC).isoformat(),
            "uptime_s": round(time.time() - self._started, 1),
            "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_temp_c": cpu_temperature(),
            "throttled": self._throttled(),
            "load_avg": [round(x, 2) for x in psutil.getloadavg()],
            "memory": {
                "total_mb": memory.total // 2**20,
                "available_mb": memory.available // 2**20,
                "percent": memory.percent,
                "process_rss_mb": round(self._process.memory_info().rss / 2**20, 1),
                "heap": heap_stats(),
            },
            "disk_free_mb": self._disk_free_mb(),
        }

    def _disk_free_mb(self) -> int | None:
        path = self._data_dir
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            return shutil.disk_usage(path).free // 2**20
        except OSError:
            return None

    def _throttled(self) -> dict[str, Any] | None:
        if not self._vcgencmd:
            return None
        try:
            done = subprocess.run(
                [self._vcgencmd, "get_throttled"],
                capture_output=True,
                text=True,
                timeout=2,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            if not self._warned_vcgencmd:
                logger.warning("vcgencmd get_throttled failed: {}", exc)
                self._warned_vcgencmd = True
            return None
        return parse_throttled(done.stdout) if done.returncode == 0 else None
