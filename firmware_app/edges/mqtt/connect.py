"""The paho client as the config describes it (credentials, TLS, reconnect backoff), for
the bridge and for ``ttbt5 check``'s connection test, so both connect the same way."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from loguru import logger
from paho.mqtt.enums import CallbackAPIVersion

from firmware_app.config.settings import MqttSettings, read_secret
from firmware_app.core.errors import ConfigError


def paho_client(cfg: MqttSettings, client_id: str) -> mqtt.Client:
    """A paho client, not connected. Raises ConfigError naming the key when the password
    file or the CA certificate cannot be used."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=cfg.reconnect_max_s)
    client.max_queued_messages_set(cfg.queue_size)
    if cfg.username:
        secret = read_secret(cfg.password, cfg.password_file, "mqtt.password_file", "mqtt_password")
        client.username_pw_set(cfg.username, secret.get_secret_value() if secret else None)
    elif cfg.password is not None or cfg.password_file is not None:
        logger.warning("MQTT: a password is set but no mqtt.username; it is not sent")
    if cfg.tls_ca is not None:
        try:
            client.tls_set(ca_certs=str(cfg.tls_ca))
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"mqtt.tls_ca: cannot load {cfg.tls_ca}: {reason}") from None
    return client
