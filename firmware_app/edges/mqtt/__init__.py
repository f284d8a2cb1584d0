"""MQTT: health, metrics and the event log out; commands in; Home Assistant discovery;
Rhasspy Hermes topics. Off unless ``mqtt.host`` is set."""

from __future__ import annotations

from typing import Any

from firmware_app.config.settings import Settings
from firmware_app.edges.mqtt.bridge import MqttBridge

__all__ = ["MqttBridge", "start_mqtt"]


def start_mqtt(settings: Settings, assistant: Any) -> MqttBridge | None:
    """Connect in the background and start reporting; None when MQTT is not configured.

    Returns at once whether or not the broker is reachable. Raises ConfigError when the
    password file or TLS CA cannot be read."""
    if settings.mqtt.host is None:
        return None
    bridge = MqttBridge(settings, assistant)
    bridge.start()
    return bridge
