"""Settings: one TOML file, every key overridable as ``TTBT5_<SECTION>__<KEY>``.

Each section is a small model whose field docstrings are the reference documentation
(``ttbt5 config show`` prints the effective values). Unknown keys are rejected, because a
misspelt key silently falling back to a default is the worst kind of configuration bug.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from firmware_app.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/ttbt5/config.toml")
BUILTIN_WAKE_MODELS = ("hey_jarvis", "alexa", "hey_mycroft", "okay_nabu", "hey_rhasspy")
MICRO_WAKE_MODELS = ("hey_jarvis", "alexa", "hey_mycroft", "okay_nabu")
WakeEngineName = Literal["openwakeword", "microwakeword"]


def default_data_dir() -> Path:
    """systemd's StateDirectory when run as the service, else the user's XDG data dir,
    so ``ttbt5 run`` works for a normal user with no configuration at all."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "ttbt5"


def default_device_id() -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", socket.gethostname().lower()).strip("-")
    return slug or "ttbt5"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class AudioSettings(Section):
    input_device: str = "default"
    """ALSA capture device (e.g. ``plughw:CARD=Device,DEV=0``; ``arecord -L`` lists them)."""
    output_device: str = "default"
    """ALSA playback device (``aplay -L`` lists them)."""
    volume: int = Field(70, ge=0, le=100)
    """Initial speaker volume in percent, used until the user changes it by voice or MQTT."""
    chimes: bool = True
    """Play a short chime on wake, at the end of a request and on errors."""
    reopen_max_s: float = Field(30.0, gt=0, le=600)
    """Longest wait between attempts to reopen a missing or unplugged device."""


class WakeSettings(Section):
    models: list[str] = Field(default_factory=lambda: ["hey_jarvis"], min_length=1)
    """Wake word models: built-in names (hey_jarvis, alexa, hey_mycroft, okay_nabu,
    hey_rhasspy) or paths to .tflite/.onnx openWakeWord or .json microWakeWord models."""
    engines: dict[str, WakeEngineName] = Field(default_factory=dict)
    """Engine per model: ``openwakeword`` (the default for a model not listed) or
    ``microwakeword`` (a fraction of the CPU, for a Pi Zero 2 W; built in: hey_jarvis, alexa,
    hey_mycroft, okay_nabu, or a path to a microWakeWord .json). Example:
    ``engines = { hey_jarvis = "microwakeword" }``. docs/wake.md compares them."""
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    """One score threshold for every model; unset, each model uses its measured default
    (docs/wake.md). Raise it if it wakes by itself, lower it if it misses you."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Threshold per model name, overriding ``threshold`` for that model."""
    refractory_s: float = Field(2.0, ge=0.0, le=30.0)
    """After a detection, ignore further detections for this long (one utterance wakes once)."""
    preroll_ms: int = Field(500, ge=0, le=2000)
    """Audio from just before the detection that is handed to speech recognition, so a
    request said in one breath with the wake phrase is heard whole."""

    clips_kept: int = Field(5, ge=1, le=50)
    """Recent wake clips (pre-roll plus 2 s) held in memory, so the last wake can be marked
    false (``cmd/false_wake``, the Home Assistant button); never written unless
    ``false_wake_dir`` is set."""
    false_wake_dir: Path | None = None
    """Opt-in: a wake marked false is saved here (WAV + JSON) for tuning. Unset (the
    default), clips of your home's audio stay in memory only."""

    @field_validator("models")
    @classmethod
    def _known_or_path(cls, models: list[str]) -> list[str]:
        for name in models:
            if name in BUILTIN_WAKE_MODELS:
                continue
            if not name.endswith((".tflite", ".onnx", ".json")):
                raise ValueError(
                    f"{name!r} is neither a built-in model ({', '.join(BUILTIN_WAKE_MODELS)}) "
                    "nor a path to a .tflite/.onnx (openWakeWord) or .json (microWakeWord) file"
                )
        return models

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for name, value in thresholds.items():
            if not 0.0 < value < 1.0:
                raise ValueError(f"threshold {value} for {name!r} must be between 0 and 1")
        return thresholds

    @model_validator(mode="after")
    def _engine_fits_model(self) -> WakeSettings:
        for name in [*self.engines, *self.thresholds]:
            if name not in self.models:
                raise ValueError(f"{name!r} is not one of the wake models {self.models}")
        for name in self.models:
            micro = self.engine_of(name) == "microwakeword"
            if micro and not (name in MICRO_WAKE_MODELS or name.endswith(".json")):
                raise ValueError(
                    f"microwakeword has no model {name!r}: use one of "
                    f"{', '.join(MICRO_WAKE_MODELS)} or a path to a .json model"
                )
            if not micro and name.endswith(".json"):
                raise ValueError(f"{name!r} is a microWakeWord model: set engines.{name}")
        return self

    def engine_of(self, model: str) -> WakeEngineName:
        return self.engines.get(model, "openwakeword")


class VadSettings(Section):
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    """Silero speech probability above which a 32 ms chunk counts as speech."""
    silence_ms: int = Field(600, ge=100, le=5000)
    """End-of-speech hangover: this much silence after speech ends the request."""
    start_timeout_s: float = Field(5.0, gt=0, le=30)
    """Give up and return to idle when no speech starts this long after the wake word."""
    max_request_s: float = Field(15.0, gt=1, le=120)
    """Longest request; recording stops here even if the speaker keeps talking."""


class SttSettings(Section):
    engine: Literal["auto", "phrases", "vosk"] = "auto"
    """Speech recognition: ``phrases`` is the built-in speech-to-phrase recognizer (the
    command sentences only, no download); ``vosk`` is the Vosk model alone (open speech);
    ``auto`` runs both when a Vosk model is installed (commands from phrases, everything
    else from Vosk) and phrases alone when none is."""
    model: Path | None = None
    """Vosk model directory; default: ``<data_dir>/models/vosk-model-small-en-us-0.15``
    (installed by ``ttbt5 models pull``)."""


class TtsSettings(Section):
    voice: Path | None = None
    """Piper voice (.onnx with its .onnx.json beside it); default: the packaged
    en_US-joe-medium voice."""
    length_scale: float = Field(1.0, gt=0.3, le=3.0)
    """Speaking rate: below 1 is faster, above 1 slower."""
    cache_entries: int = Field(64, ge=0, le=10000)
    """Synthesized phrases kept in memory for instant replay (0 turns the cache off)."""


class AssistantSettings(Section):
    language: Literal["en"] = "en"
    """Language of the local intents."""
    ring_repeats: int = Field(3, ge=1, le=20)
    """How many times a finished timer rings before it stops by itself."""
    error_hold_s: float = Field(3.0, ge=0, le=60)
    """How long the error state is shown before returning to idle."""


class CustomIntent(Section):
    """A home-automation sentence mapped to an MQTT publish (matched before the LLM)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """Intent name, as it appears in the event log and on MQTT."""
    sentences: list[str] = Field(min_length=1)
    """Templates such as ``turn (on|off) the {room} light``."""
    slots: dict[str, list[str]] = Field(default_factory=dict)
    """Values for each ``{slot}`` used in the templates."""
    topic: str = Field(min_length=1)
    """MQTT topic to publish; may use ``{slot}`` and ``{group1}``-style placeholders."""
    payload: str = ""
    """Payload template, with the same placeholders as the topic."""
    reply: str = "Okay."
    """Spoken confirmation; may use the placeholders."""


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
    """Home Assistant discovery prefix."""
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


class UpdateSettings(Section):
    url: str | None = None
    """Base URL of the release server (serves ``latest.json`` and bundles)."""
    public_key: Path | None = None
    """Ed25519 public key (PEM) that release manifests must be signed with."""
    root: Path = Path("/opt/ttbt5")
    """Directory holding ``releases/``, ``current`` and ``previous``."""
    health_timeout_s: float = Field(60.0, gt=0, le=3600)
    """A new release must report ready within this long."""
    health_audio_s: float = Field(10.0, ge=0, le=3600)
    """... and keep consuming audio for this long, or it is rolled back."""
    max_bundle_mb: int = Field(500, ge=1, le=10000)
    """Largest bundle that is downloaded."""
    reserve_mb: int = Field(100, ge=0, le=1_000_000)
    """Free space that must remain on the update root's disk after an update; an update
    that would leave less is refused before it downloads anything."""
    health_file: Path = Path("/run/ttbt5/health.json")
    """Health file the running service writes (version, ready, last audio frame); the
    health gate reads it to decide whether a new release came up."""
    health_stale_s: float = Field(5.0, gt=0, le=600)
    """During the health gate, audio counts as stalled when no frame was consumed for this
    long."""
    restart_command: list[str] = Field(
        default_factory=lambda: ["systemctl", "restart", "ttbt5.service"], min_length=1
    )
    """Command that restarts the service after the switch (and after a rollback)."""
    http_timeout_s: float = Field(30.0, gt=0, le=600)
    """Connect/read timeout for the release server."""
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    """How long an update asked for over MQTT waits for the update service to start."""
    check_interval_h: float = Field(12.0, ge=0, le=24 * 30)
    """While running, look up the latest release this often (and once at start) so Home
    Assistant's update entity can offer it; 0 turns the periodic check off."""
    allow_remote_force: bool = False
    """Let ``cmd/update`` with ``force`` install an older or the same version (off: a
    remote request can only move forward)."""


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level on stderr (the journal under systemd)."""
    events: Path | None = None
    """Write the event log (JSON Lines) here during ``run``."""
    save_audio: Path | None = None
    """Directory where each request's audio is saved as WAV (off unless set)."""


class EchoSettings(Section):
    engine: Literal["speex", "webrtc", "off"] = "speex"
    """Echo canceller between the speaker and everything that listens (wake word, VAD,
    recognizer, stop word): ``speex`` (libspeexdsp), ``webrtc`` (WebRTC AEC3, needs the
    pywebrtc-audio package) or ``off``."""
    tail_ms: int = Field(200, ge=50, le=1000)
    """Longest echo the canceller models: the speaker-to-mic delay, the room's
    reverberation and the output latency the reference does not know about. Raise it for
    speakers with large output buffers (USB speakerphones, Bluetooth)."""
    stop_word: bool = True
    """While it speaks or a timer rings, "stop" said alone (no wake word) stops it."""
    stop_threshold: float = Field(1e-30, gt=0.0, lt=1.0)
    """pocketsphinx keyphrase threshold for "stop": smaller hears more, and more wrongly
    (a detection also needs the word said alone, with a pause on both sides)."""


class ArbitrationSettings(Section):
    enabled: bool = True
    """With several devices on one MQTT broker, only the one that heard a wake word best
    answers it; the others stay silent. Needs ``mqtt.host``; without a broker each device
    answers alone."""
    group: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """Devices in the same group arbitrate among themselves (``ttbt5/group/<group>/wake``)."""
    window_ms: int = Field(300, ge=50, le=2000)
    """How long a device waits for the others' claims on the same wake word (its answer
    starts this much later). Device clocks must agree to well within it (NTP)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TTBT5_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    """Where the store (timers, settings, conversation) and downloaded models live."""
    audio: AudioSettings = AudioSettings()
    wake: WakeSettings = WakeSettings()
    vad: VadSettings = VadSettings()
    stt: SttSettings = SttSettings()
    tts: TtsSettings = TtsSettings()
    assistant: AssistantSettings = AssistantSettings()
    intents: list[CustomIntent] = Field(default_factory=list)
    """Custom home-automation intents (``[[intents]]`` tables)."""
    mqtt: MqttSettings = MqttSettings()
    gpio: GpioSettings = GpioSettings()
    llm: LlmSettings = LlmSettings()
    update: UpdateSettings = UpdateSettings()
    log: LogSettings = LogSettings()
    echo: EchoSettings = EchoSettings()
    arbitration: ArbitrationSettings = ArbitrationSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init kwargs; the environment overrides it.
        return (env_settings, init_settings)

    @property
    def stt_model_path(self) -> Path:
        return self.stt.model or self.data_dir / "models" / DEFAULT_STT_MODEL

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.sqlite"


DEFAULT_STT_MODEL = "vosk-model-small-en-us-0.15"


def config_path(explicit: str | Path | None) -> Path | None:
    """``--config``, else ``$TTBT5_CONFIG``, else /etc/ttbt5/config.toml if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TTBT5_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_settings(path: str | Path | None = None) -> Settings:
    """Load and validate; raise ConfigError with a one-line message on any problem."""
    file = config_path(path)
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {file} cannot be read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"config file {file} nests too deeply to be valid") from None
    _refuse_private_keys(data, file)
    _refuse_unknown_environment(os.environ)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, file)) from None
    except SettingsError as exc:
        raise ConfigError(_describe_environment_error(exc, os.environ)) from None
    except RecursionError:
        raise ConfigError("the configuration nests too deeply to be a valid setting") from None


ENV_PREFIX = "TTBT5_"
NOT_SETTINGS = frozenset({"TTBT5_CONFIG", "TTBT5_PYTHON"})
"""Variables of ours that are not settings: the config file's path and the installer's
Python."""


def _refuse_private_keys(data: dict[str, Any], file: Path | None) -> None:
    """Top-level keys starting with ``_`` are the settings library's own switches
    (``_env_prefix`` would silently turn off every override); deeper ones are refused by the
    sections' models like any unknown key."""
    where = f" in {file}" if file else ""
    for key in data:
        if key.startswith("_"):
            raise ConfigError(f"unknown key {key!r}{where}: no setting starts with '_'")


def _setting_exists(parts: list[str]) -> bool:
    """Whether ``section.key`` names a setting; a leaf, or a section or list given whole as
    JSON, ends the path."""
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return i == len(parts) - 1
        model = annotation
    return True


def _refuse_unknown_environment(environ: Mapping[str, str]) -> None:
    """A mistyped variable (``TTBT5_VADD__SILENCE_MS``) would otherwise be ignored without a
    word while the user believes it is in force."""
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NOT_SETTINGS:
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        if not _setting_exists(parts):
            raise ConfigError(
                f"unknown environment variable {name}: there is no setting "
                f"{'.'.join(parts)!r} (variables are TTBT5_<SECTION>__<KEY>, e.g. "
                "TTBT5_VAD__SILENCE_MS)"
            )


def _describe_environment_error(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """The settings library says which field failed to parse; name the variable and value."""
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else ""
    for name in sorted(environ):
        upper = name.upper()
        if field and upper.startswith(f"{ENV_PREFIX}{field.upper()}"):
            shown = "(hidden)" if _looks_secret(upper.lower()) else _short(environ[name])
            key = ".".join(upper[len(ENV_PREFIX) :].lower().split("__"))
            return (
                f"bad value for {key!r} from {name}: {shown}; a list or table "
                "in the environment is written as JSON, e.g. '[\"hey_jarvis\"]'"
            )
    return f"bad value in the environment: {_one_line(str(exc))}"


def describe_validation_error(exc: ValidationError, file: Path | None = None) -> str:
    """One line: the first bad key, its value and what is allowed (+N more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    where = f" in {file}" if file else ""
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        text = f"unknown key {key!r}{where}"
    elif first["type"] == "missing":
        text = f"missing key {key!r}{where}"
    else:
        value = first.get("input")
        shown = "(hidden)" if _looks_secret(key) else _short(value)
        text = f"bad value for {key!r}{where}: {shown}; {msg}"
    more = len(errors) - 1
    return text + (f" (+{more} more)" if more else "")


def _looks_secret(key: str) -> bool:
    return any(word in key for word in ("password", "api_key", "token", "secret"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def read_secret(value: SecretStr | None, file: Path | None, credential: str) -> SecretStr | None:
    """A secret from the config value, else its file, else the systemd credential of that
    name (``LoadCredential=``). Returned still wrapped so it cannot be printed by accident."""
    if value is not None and value.get_secret_value():
        return value
    candidates = [file] if file else []
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidates.append(Path(cred_dir) / credential)
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8").strip().splitlines()
        except OSError as exc:
            if path == file:
                raise ConfigError(f"cannot read secret file {path}: {exc.strerror}") from None
            continue
        if text and text[0].strip():
            return SecretStr(text[0].strip())
    return None


def settings_as_toml(settings: Settings) -> str:
    """The effective settings as TOML, secrets masked (``ttbt5 config show``)."""
    data = settings.model_dump(mode="json", exclude={"intents"})
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        lines.append(_toml_line(key, value))
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            lines.append(_toml_line(key, value, secret=_looks_secret(key)))
    for intent in settings.intents:
        lines.append("\n[[intents]]")
        for key, value in intent.model_dump(mode="json").items():
            lines.append(_toml_line(key, value))
    return "\n".join(lines) + "\n"


def _toml_line(key: str, value: Any, secret: bool = False) -> str:
    import json

    if value is None:
        return f"# {key} = (not set)"
    if secret:
        return f'{key} = "**********"'
    if isinstance(value, bool):
        return f"{key} = {'true' if value else 'false'}"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
        return f"{key} = {{ {inner} }}"
    return f"{key} = {json.dumps(value)}"


def reference_markdown() -> str:
    """docs/configuration.md, made from the field docstrings so it cannot drift."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, SecretStr):
            return "(secret)"
        if isinstance(v, Path):
            return str(v)
        return json.dumps(v) if v is not None else "(not set)"

    out = [
        "# Configuration",
        "",
        "One TOML file: `--config PATH`, else `$TTBT5_CONFIG`, else `/etc/ttbt5/config.toml`,",
        "else the defaults below. Every key can be overridden from the environment as",
        "`TTBT5_<SECTION>__<KEY>` (lists and tables as JSON, e.g.",
        "`TTBT5_WAKE__MODELS='[\"alexa\"]'`). Secrets (`mqtt.password`, `llm.api_key`) can come",
        "from a file (`*_file`) or a systemd credential and are never printed or logged.",
        "",
        "`ttbt5 config validate` checks a file and the environment; a bad key or value exits",
        "with status 2 and one line naming the key, the value and what is allowed.",
        "`ttbt5 config show` prints the effective settings, secrets masked.",
        "",
        "This page is generated from the code (`python scripts/config_doc.py`).",
        "",
        "## Top level",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    root_fields = Settings.model_fields
    for name, info in root_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            continue
        default = (
            "per user" if name == "data_dir" else value(info.get_default(call_default_factory=True))
        )
        out.append(f"| `{name}` | `{default}` | {_one_line(info.description)} |")
    for name, info in root_fields.items():
        annotation = info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            continue
        out += ["", f"## [{name}]", "", "| key | default | meaning |", "|---|---|---|"]
        for key, field in annotation.model_fields.items():
            default = field.get_default(call_default_factory=True)
            shown = "hostname" if key == "device_id" else value(default)
            out.append(f"| `{key}` | `{shown}` | {_one_line(field.description)} |")
    out += [
        "",
        "## [[intents]]",
        "",
        "Custom home-automation sentences, matched before the LLM (see docs/mqtt.md).",
        "",
        "| key | meaning |",
        "|---|---|",
    ]
    for key, field in CustomIntent.model_fields.items():
        out.append(f"| `{key}` | {_one_line(field.description)} |")
    return "\n".join(out) + "\n"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")
