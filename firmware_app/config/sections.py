"""Settings sections that stand on their own: MQTT, GPIO and the online model (the rest,
and the whole ``Settings``, are in ``config/settings.py``, which re-exports these)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


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


class GpioSettings(Section):
    enabled: bool = True
    """Drive LEDs and read the button (mock pins are used automatically off a Pi)."""
    led: Literal["none", "single", "rgb", "apa102"] = "none"
    """LED kind: one PWM LED, an RGB LED, or APA102 pixels (ReSpeaker HATs)."""
    led_pin: int | None = Field(None, ge=0, le=27)
    """BCM pin of a single LED."""
    rgb_pins: tuple[int, int, int] | None = None
    """BCM pins of an RGB LED (red, green, blue)."""
    rgb_active_high: bool = True
    """False for a common-anode RGB LED."""
    apa102_count: int = Field(3, ge=1, le=255)
    """Number of APA102 pixels (3 on the ReSpeaker 2-Mic HAT, 12 on the 4-Mic)."""
    apa102_brightness: int = Field(8, ge=0, le=31)
    """APA102 global brightness (0-31)."""
    button_pin: int | None = Field(None, ge=0, le=27)
    """BCM pin of the button (17 on the ReSpeaker 2-Mic HAT); none: no button."""
    hold_s: float = Field(2.0, ge=0.5, le=10)
    """Holding the button this long toggles mute."""
    double_press_s: float = Field(0.4, ge=0.1, le=2)
    """Two presses within this time are a double press (a single press is acted on this
    long after release, once no second press follows)."""
    bounce_s: float = Field(0.05, ge=0, le=0.5)
    """Button debounce: edges closer together than this are contact chatter."""
    apa102_order: Literal["bgr", "brg", "gbr", "grb", "rbg", "rgb"] = "bgr"
    """Colour byte order of the APA102 pixels (bgr on genuine APA102 and the ReSpeaker HATs)."""
    apa102_spi_device: int = Field(0, ge=0, le=1)
    """SPI0 chip select claimed for the pixels (0: GPIO8/CE0, 1: GPIO7/CE1); the pixels
    ignore it, so pick the one no other SPI device uses."""
    apa102_power_pin: int | None = Field(None, ge=0, le=27)
    """BCM pin driven high to power the pixels (5 on the ReSpeaker 4-Mic HAT); none: not needed."""

    @model_validator(mode="after")
    def _pins_make_sense(self) -> GpioSettings:
        if not self.enabled:
            return self
        used: dict[int, str] = {}
        if self.led == "single":
            if self.led_pin is None:
                raise ValueError('led = "single" needs led_pin (the BCM pin of the LED)')
            used[self.led_pin] = "led_pin"
        elif self.led == "rgb":
            if self.rgb_pins is None:
                raise ValueError('led = "rgb" needs rgb_pins = [red, green, blue] (BCM pins)')
            for pin in self.rgb_pins:
                if not 0 <= pin <= 27:
                    raise ValueError(f"rgb_pins: {pin} is not a BCM GPIO pin (0-27)")
                if pin in used:
                    raise ValueError(f"rgb_pins: GPIO{pin} is listed twice")
                used[pin] = "rgb_pins"
        elif self.led == "apa102":
            spi_pins = (9, 10, 11, 7 if self.apa102_spi_device else 8)
            used.update({pin: "the APA102 pixels (SPI0)" for pin in spi_pins})
            if self.apa102_power_pin is not None:
                _claim(used, self.apa102_power_pin, "apa102_power_pin")
        if self.button_pin is not None:
            _claim(used, self.button_pin, "button_pin")
        return self


def _claim(used: dict[int, str], pin: int, key: str) -> None:
    if pin in used:
        raise ValueError(f"{key}: GPIO{pin} is already used by {used[pin]}")
    used[pin] = key


class LlmSettings(Section):
    url: str | None = None
    """Base URL of an OpenAI-compatible API (``https://api.openai.com/v1``,
    ``http://127.0.0.1:11434/v1`` for Ollama); the LLM is on when this is set."""
    model: str = "gpt-4o-mini"
    """Model name sent with each request."""
    api_key: SecretStr | None = None
    """API key; prefer ``api_key_file`` or the ``llm_api_key`` systemd credential."""
    api_key_file: Path | None = None
    """File holding the API key (first line)."""
    system_prompt: str = (
        "You are a voice assistant on a smart speaker. Answer in one to three short spoken "
        "sentences, plain text only: no lists, no markdown, no emoji."
    )
    """System prompt sent first in every conversation."""
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    """TCP/TLS connect deadline."""
    read_timeout_s: float = Field(10.0, gt=0, le=300)
    """Longest silence between streamed chunks."""
    total_timeout_s: float = Field(60.0, gt=0, le=600)
    """Longest whole answer."""
    deadline_s: float = Field(6.0, gt=0, le=60)
    """The user never waits longer than this for the first word."""
    retries: int = Field(2, ge=0, le=10)
    """Retries before the first token (connection errors, 429, 5xx only)."""
    breaker_failures: int = Field(3, ge=1, le=100)
    """Consecutive failures that open the circuit breaker."""
    breaker_reset_s: float = Field(30.0, gt=0, le=3600)
    """How long the breaker stays open before one probe request."""
    memory_turns: int = Field(6, ge=0, le=50)
    """Previous exchanges sent with each request."""
    memory_idle_s: float = Field(300.0, ge=0, le=86400)
    """Conversation memory is forgotten after this long without a question."""
    followup_s: float = Field(5.0, ge=0, le=30)
    """After an answer that asks a question, listen this long without the wake word
    (0 turns follow-ups off)."""
    max_reply_chars: int = Field(2000, ge=100, le=100000)
    """Longest answer that is spoken; the rest is dropped."""
    tls_ca: Path | None = None
    """CA certificate file for a server with a private certificate (e.g. on the LAN);
    certificates are always verified, this only adds whom to trust."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError(
                "must be an http:// or https:// base URL such as http://127.0.0.1:11434/v1"
            )
        return url


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
