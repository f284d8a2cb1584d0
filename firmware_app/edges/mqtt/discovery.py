"""Home Assistant MQTT discovery: the device appears with its entities by itself.

Every config is retained under ``<prefix>/<component>/ttbt5_<device_id>/<key>/config``
and uses the device's status topic for availability. Entities read the retained
``state``, ``health`` and ``metrics`` topics, so they show values as soon as they exist.
An entity that is switched off in the configuration (last transcript, cloud, update) has
its config replaced by an empty retained message, which removes it from Home Assistant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from firmware_app.edges.mqtt.topics import PREFIX, Topics

STATES = ("idle", "listening", "thinking", "speaking", "muted", "error")
HA_STATE_LIMIT = 255
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


def board_model(path: Path = DEVICE_TREE_MODEL) -> str | None:
    """``Raspberry Pi 4 Model B Rev 1.4`` on a Pi; None elsewhere."""
    try:
        return path.read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def device_block(topics: Topics, version: str) -> dict[str, Any]:
    device: dict[str, Any] = {
        "identifiers": [f"{PREFIX}_{topics.device_id}"],
        "name": f"TTBT5 {topics.device_id}",
        "manufacturer": "TTBT5",
        "model": "TTBT5 voice assistant",
        "sw_version": version,
    }
    board = board_model()
    if board:
        device["hw_version"] = board
    return device


def discovery_messages(
    topics: Topics,
    version: str,
    *,
    transcripts: bool,
    cloud: bool,
    update: bool,
) -> list[tuple[str, str]]:
    """(topic, payload) for every entity; an empty payload removes that entity."""
    device = device_block(topics, version)
    common = {
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": "TTBT5", "sw_version": version},
    }
    health = topics.health
    entities: list[tuple[str, str, dict[str, Any] | None]] = [
        (
            "sensor",
            "state",
            {
                "name": "State",
                "state_topic": topics.state,
                "device_class": "enum",
                "options": list(STATES),
                "icon": "mdi:account-voice",
            },
        ),
        (
            "switch",
            "mute",
            {
                "name": "Mute",
                "command_topic": topics.cmd("mute"),
                "state_topic": health,
                "value_template": "{{ 'ON' if value_json.muted else 'OFF' }}",
                "payload_on": "ON",
                "payload_off": "OFF",
                "icon": "mdi:microphone-off",
            },
        ),
        (
            "number",
            "volume",
            {
                "name": "Volume",
                "command_topic": topics.cmd("volume"),
                "state_topic": health,
                "value_template": "{{ value_json.volume }}",
                "min": 0,
                "max": 100,
                "step": 1,
                "mode": "slider",
                "unit_of_measurement": "%",
                "icon": "mdi:volume-high",
            },
        ),
        (
            "button",
            "listen",
            {
                "name": "Listen",
                "command_topic": topics.cmd("listen"),
                "payload_press": "PRESS",
                "icon": "mdi:microphone",
            },
        ),
        (
            "button",
            "false_wake",
            {
                "name": "That wasn't for me",
                "command_topic": topics.cmd("false_wake"),
                "payload_press": "PRESS",
                "icon": "mdi:account-voice-off",
            },
        ),
        (
            "sensor",
            "cpu_temperature",
            {
                "name": "CPU temperature",
                "state_topic": health,
                "value_template": "{{ value_json.cpu_temp_c }}",
                "device_class": "temperature",
                "unit_of_measurement": "°C",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            },
        ),
        (
            "sensor",
            "response_latency",
            {
                "name": "Response latency",
                "state_topic": topics.metrics,
                "value_template": "{{ value_json.latency_ms.response.p50 }}",
                "json_attributes_topic": topics.metrics,
                "json_attributes_template": "{{ value_json.latency_ms | tojson }}",
                "device_class": "duration",
                "unit_of_measurement": "ms",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            },
        ),
        (
            "sensor",
            "wake_count",
            {
                "name": "Wake count",
                "state_topic": health,
                "value_template": "{{ value_json.wake_count }}",
                "state_class": "total_increasing",
                "icon": "mdi:counter",
            },
        ),
        (
            "sensor",
            "last_transcript",
            {
                "name": "Last transcript",
                "state_topic": topics.event("transcript"),
                "value_template": f"{{{{ value_json.text[:{HA_STATE_LIMIT}] }}}}",
                "json_attributes_topic": topics.event("transcript"),
                "json_attributes_template": "{{ {'text': value_json.text} | tojson }}",
                "icon": "mdi:text-box",
            }
            if transcripts
            else None,
        ),
        (
            "binary_sensor",
            "cloud",
            {
                "name": "Cloud LLM available",
                "state_topic": health,
                "value_template": "{{ value_json.cloud }}",
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
            }
            if cloud
            else None,
        ),
        (
            "update",
            "firmware",
            {
                "name": "Firmware",
                "state_topic": health,
                "value_template": (
                    "{{ {'installed_version': value_json.version,"
                    " 'latest_version': value_json.latest_version,"
                    " 'in_progress': value_json.update_active} | tojson }}"
                ),
                "command_topic": topics.cmd("update"),
                "payload_install": "install",
                "device_class": "firmware",
                "entity_category": "config",
                "title": "TTBT5",
            }
            if update
            else None,
        ),
    ]
    messages: list[tuple[str, str]] = []
    for component, key, config in entities:
        topic = topics.discovery(component, key)
        if config is None:
            messages.append((topic, ""))
            continue
        payload = {"unique_id": f"{PREFIX}_{topics.device_id}_{key}", **config, **common}
        messages.append((topic, json.dumps(payload, ensure_ascii=False, separators=(",", ":"))))
    return messages
