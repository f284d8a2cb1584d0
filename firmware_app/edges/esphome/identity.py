"""Who the satellite is to Home Assistant: its name and a MAC-like unique id.

Home Assistant keys the device and every entity on ``mac_address``, so it must never
change: it is derived from the device id (a locally administered address, so it cannot
clash with a real card's) and written to the data directory the first time, so a later
change of host name or device id does not turn the speaker into a new device.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from loguru import logger

_MAC = re.compile(r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$")


def derived_mac(device_id: str) -> str:
    raw = bytearray(hashlib.sha256(f"ttbt5-esphome:{device_id}".encode()).digest()[:6])
    raw[0] = (raw[0] | 0x02) & 0xFE  # locally administered, unicast
    return ":".join(f"{b:02X}" for b in raw)


def device_mac(device_id: str, path: Path) -> str:
    """The persisted id, else the derived one (persisted now; a read-only disk only
    costs the persistence, logged)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8")).get("mac", "")
        if isinstance(stored, str) and _MAC.match(stored):
            return stored
    except (OSError, ValueError, AttributeError):
        pass
    mac = derived_mac(device_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mac": mac}) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("esphome: the satellite's id could not be saved ({}); using {}", exc, mac)
    return mac


def device_name(name: str | None, device_id: str) -> str:
    """ESPHome's naming rules: lower-case letters, digits and ``-``, at most 31."""
    if name:
        return name
    slug = re.sub(r"[^a-z0-9-]+", "-", f"ttbt5-{device_id}".lower()).strip("-")
    return slug[:31].rstrip("-") or "ttbt5"
