"""The paho client as the config describes it (credentials, TLS, reconnect backoff), for
the bridge and for ``ttbt5 check``'s connection test, so both connect the same way.

The bridge speaks MQTT 5 so that its command subscriptions can ask for Retain-As-Published:
with MQTT 3.1.1 a message published with the retain flag while the device is subscribed
reaches it without the flag, and a retained command could not be told from a live one.
A broker that speaks only 3.1.1 refuses the MQTT 5 connection; the client then steps down
to 3.1.1 for good (``step_down_to_311``), as paho itself steps down from 3.1.1 to 3.1.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt
from loguru import logger
from paho.mqtt.enums import CallbackAPIVersion

from firmware_app.config.files import ca_context
from firmware_app.config.settings import MqttSettings, read_secret

UNSUPPORTED_PROTOCOL = 132
"""The CONNACK reason a broker gives (or paho reads from an MQTT 3.1.1 refusal) when it
does not speak the protocol version asked for."""


def paho_client(cfg: MqttSettings, client_id: str, protocol: int = mqtt.MQTTv311) -> mqtt.Client:
    """A paho client, not connected, for ``protocol`` (MQTT 3.1.1 or 5; with MQTT 5 every
    connection starts a clean session, like ``clean_session`` with 3.1.1). Raises
    ConfigError naming the key when the password file or the CA certificate cannot be used."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if protocol == mqtt.MQTTv5 else True,
        protocol=mqtt.MQTTProtocolVersion(protocol),
    )
    client.reconnect_delay_set(min_delay=1, max_delay=cfg.reconnect_max_s)
    client.max_queued_messages_set(cfg.queue_size)
    if cfg.username:
        secret = read_secret(cfg.password, cfg.password_file, "mqtt.password_file", "mqtt_password")
        client.username_pw_set(cfg.username, secret.get_secret_value() if secret else None)
    elif cfg.password is not None or cfg.password_file is not None:
        logger.warning("MQTT: a password is set but no mqtt.username; it is not sent")
    if cfg.tls_ca is not None:
        client.tls_set_context(ca_context(cfg.tls_ca, "mqtt.tls_ca"))
    return client


def step_down_to_311(client: mqtt.Client, reason: object) -> bool:
    """After a refused MQTT 5 connection: True (and the client speaks 3.1.1 from its next
    attempt on) when the broker refused because it does not speak MQTT 5.

    paho has no public way to change the version of a client; it does this itself when it
    steps down from 3.1.1 to 3.1. The client keeps its callbacks, its queue and the outbox
    that holds it, which a new client would not."""
    if client.protocol != mqtt.MQTTv5 or getattr(reason, "value", None) != UNSUPPORTED_PROTOCOL:
        return False
    client._protocol = mqtt.MQTTv311
    client._clean_session = True
    return True
