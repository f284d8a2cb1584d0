"""Settings of the links to the home (``edges/``): the MQTT broker and the wake arbitration
that runs over it, the Home Assistant satellite (ESPHome's native API) and the Wyoming
server. Their checks are about what the other side accepts: topic prefixes without
wildcards, an encryption key as ESPHome writes it."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from firmware_app.config.section import Section


def default_device_id() -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-")
    return slug or "ttbt5"


_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_topic_prefix(prefix: str) -> None:
    """ValueError unless ``prefix`` can start topics we publish and subscribe to: a wildcard
    (``#``, ``+``) there would make every subscription match other devices' topics and
    every publish fail."""
    if "#" in prefix or "+" in prefix:
        raise ValueError("must not contain the MQTT wildcards '#' or '+'")
    levels = prefix.split("/")
    if len(prefix) > 200 or not all(_TOPIC_LEVEL.match(level) for level in levels):
        raise ValueError(
            "must be topic levels of letters, digits, '_', '-' or '.' joined by '/' "
            "(no empty levels, no spaces), e.g. 'homeassistant'"
        )


class MqttSettings(Section):
    host: str | None = None
    """Broker host name; MQTT is on when this is set."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker port (8883 is usual with TLS)."""
    username: str | None = None
    """User name, when the broker wants one."""
    password: SecretStr | None = None
    """Password; prefer ``password_file`` or the ``mqtt_password`` systemd credential."""
    password_file: Path | None = None
    """File holding the password (first line)."""
    tls_ca: Path | None = None
    """CA certificate file; when set the connection uses TLS and verifies the broker."""
    device_id: str = Field(default_factory=default_device_id, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Topic namespace ``ttbt5/<device_id>/`` and Home Assistant identifier."""
    discovery_prefix: str = "homeassistant"
    """Home Assistant discovery prefix: topic levels of letters, digits, ``_``, ``-`` and
    ``.`` joined by ``/`` (no MQTT wildcards, no empty levels)."""
    hermes: bool = False
    """Also speak Rhasspy/Snips Hermes topics for existing flows."""
    publish_transcripts: bool = False
    """Publish transcript and reply text (privacy: off by default)."""
    event_ttl_s: float = Field(60.0, gt=0, le=86400)
    """Queued events older than this are dropped instead of being delivered late."""
    health_interval_s: float = Field(30.0, ge=1, le=3600)
    """How often health and metrics are published."""
    queue_size: int = Field(1000, ge=10, le=100000)
    """Most messages held while the broker is away; the oldest go first."""
    keepalive_s: int = Field(30, ge=5, le=3600)
    """MQTT keepalive."""
    reconnect_max_s: int = Field(60, ge=1, le=3600)
    """Longest wait between attempts to reach a broker that went away (the wait doubles
    from 1 s up to this)."""

    @field_validator("discovery_prefix")
    @classmethod
    def _topic_prefix(cls, prefix: str) -> str:
        check_topic_prefix(prefix)
        return prefix


class ArbitrationSettings(Section):
    enabled: bool = True
    """With several devices on one MQTT broker, only the one that heard a wake word best
    answers it; the others stay silent. Needs ``mqtt.host`` and the group's ``secret``;
    without them each device answers alone."""
    group: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Devices in the same group (and with the same ``secret``) arbitrate among themselves
    (``ttbt5/group/<group>/``)."""
    window_ms: int = Field(300, ge=50, le=2000)
    """How long a device waits for the others' claims on the same wake word (its answer
    starts this much later). Measured on each device's own clock: wall clocks need not
    agree (no NTP needed)."""
    secret: SecretStr | None = None
    """The group's shared key, the same on every device of the group: claims are signed
    with it (HMAC-SHA256), and claims or announcements without a valid signature are
    ignored, so nobody else on the broker can silence the speakers. Without it, wake
    arbitration is off and every device answers alone. Prefer ``secret_file`` or the
    ``arbitration_secret`` systemd credential; make one with ``openssl rand -hex 32``."""
    secret_file: Path | None = None
    """File holding the group's shared key (first line)."""


class WyomingSettings(Section):
    enabled: bool = False
    """Serve the speaker's recognizer and voice to Home Assistant over the Wyoming protocol
    inside ``ttbt5 run`` (``ttbt5 wyoming`` serves them on their own, whatever this says)."""
    host: str = "0.0.0.0"
    """Address to listen on (0.0.0.0: every address, so Home Assistant on another machine
    reaches it; 127.0.0.1: this machine only)."""
    port: int = Field(10300, ge=1, le=65535)
    """TCP port (Home Assistant's Wyoming integration asks for it with the host)."""
    max_connections: int = Field(8, ge=1, le=256)
    """Clients served at once. A new client beyond this takes the place of the longest idle
    one; when every one is mid-request it is refused."""
    idle_s: float = Field(10.0, gt=0, le=3600)
    """A client that sends nothing for this long is disconnected (a request in progress
    included: Home Assistant streams audio continuously)."""
    max_audio_s: float = Field(30.0, gt=0, le=300)
    """Longest audio one transcription request may send; longer is refused with an error."""
    max_text_chars: int = Field(2000, ge=10, le=100000)
    """Longest text one synthesis request may ask for; longer is refused with an error."""
    homeassistant_url: str | None = Field(None, pattern=r"^https?://[^\s/?#@]+(/[^\s?#@]*)?$")
    """Home Assistant's address (e.g. ``http://homeassistant.local:8123``): the recognizer
    then also hears Home Assistant's own sentences for the entities, areas and floors
    exposed to Assist there, learned over its websocket API with
    ``homeassistant_token``. Unset: only the speaker's own command sentences. No user or
    password in it: the token is the login."""
    homeassistant_token: SecretStr | None = None
    """A long-lived access token of a Home Assistant administrator (the list of exposed
    entities is an administrator's). Prefer ``homeassistant_token_file`` or the
    ``homeassistant_token`` systemd credential."""
    homeassistant_token_file: Path | None = None
    """File holding the long-lived access token (first line)."""
    homeassistant_refresh_s: float = Field(300.0, ge=10, le=86400)
    """How often the names are asked for again (a failed attempt is retried sooner,
    from 10 s, doubling up to this). Until they change, the grammar is not rebuilt."""
    homeassistant_max_names: int = Field(1000, ge=1, le=10000)
    """The most names (entities and their aliases, areas, floors) the recognizer takes
    from Home Assistant; the rest are left out with a warning. Each name adds to the
    grammar's build time and the recognizer's memory (docs/wyoming.md)."""


def check_noise_key(key: str) -> None:
    """ValueError unless ``key`` is what ESPHome writes as ``api: encryption: key:``: 32
    random bytes in standard base64 (44 characters ending in ``=``)."""
    import base64
    import binascii

    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "must be base64 (as ESPHome writes it, e.g. from `openssl rand -base64 32`)"
        ) from None
    if len(raw) != 32:
        raise ValueError(f"must be 32 bytes in base64 (this one is {len(raw)} bytes)")


class EsphomeSettings(Section):
    enabled: bool = False
    """Serve the ESPHome native API, so Home Assistant adds this speaker as an Assist
    satellite (its pipeline, announcements, timers, media player). While Home Assistant is
    not connected, the local brain answers as usual."""
    host: str = "0.0.0.0"
    """Address the API listens on (all addresses by default)."""
    port: int = Field(6053, ge=0, le=65535)
    """TCP port of the API (6053 is ESPHome's; 0 picks a free one, which the zeroconf
    advertisement then carries)."""
    name: str | None = Field(None, pattern=r"^[a-z0-9-]{1,31}$")
    """Device name shown to Home Assistant (lower-case letters, digits, ``-``); default:
    ``ttbt5-`` and the device id."""
    encryption_key: SecretStr | None = None
    """Noise encryption key, base64 of 32 bytes as ESPHome writes it; when set, plaintext
    clients are refused. Prefer ``encryption_key_file`` or the ``esphome_key`` systemd
    credential."""
    encryption_key_file: Path | None = None
    """File holding the encryption key (first line)."""
    silence_ms: int = Field(300, ge=100, le=900)
    """End-of-speech hangover while Home Assistant listens (at most ``[vad] silence_ms``):
    its pipeline starts only once the stream ends, so every millisecond here is added to
    the wait for its answer (Home Assistant's own default is 700 ms)."""
    unfinished_ms: int = Field(600, ge=100, le=900)
    """Silence allowed while Home Assistant listens inside what the speaker's recognizer
    hears as the start of a command (``[vad] unfinished_ms`` otherwise); at most 900 ms so
    the stream always ends within a second of the end of speech."""
    media_duck_db: float = Field(-15.0, ge=-60.0, le=0.0)
    """Level of Home Assistant's media (``media_player.play_media``) while the speaker
    talks over it (a reply, an announcement, a timer), in dB; it fades back up after."""
    pipeline_answer_s: float = Field(1.0, ge=0.2, le=5.0)
    """How long Home Assistant has to accept a pipeline start before the local brain takes
    the request instead."""
    stage_timeout_s: float = Field(4.0, ge=0.5, le=30.0)
    """After the end of speech, the longest wait for Home Assistant's next pipeline event
    (its speech to text, then the intent); past it the local brain answers. A Home
    Assistant that is gone or hung is noticed sooner: it must answer a ping sent with the
    end of speech within 1 s."""
    answer_timeout_s: float = Field(30.0, ge=2.0, le=300.0)
    """Longest wait for the answer once Home Assistant has started on the intent (a
    conversation agent or LLM may take this long)."""
    max_audio_mb: float = Field(8.0, ge=0.1, le=64.0)
    """Largest WAV the speaker fetches for a reply, announcement or media URL."""
    fetch_timeout_s: float = Field(10.0, ge=1.0, le=120.0)
    """Longest time to fetch one WAV URL."""
    max_connections: int = Field(8, ge=1, le=64)
    """Connections served at once; a new one beyond that pushes out the oldest that has
    not finished its handshake, and is closed when every slot holds a connected client."""

    @field_validator("encryption_key")
    @classmethod
    def _noise_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None or not key.get_secret_value().strip():
            return None
        check_noise_key(key.get_secret_value())
        return SecretStr(key.get_secret_value().strip())
