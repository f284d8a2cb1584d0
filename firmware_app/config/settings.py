"""Settings: one TOML file, every key overridable as ``TTBT5_<SECTION>__<KEY>``.

Each section is a small model whose field docstrings are the reference documentation
(``ttbt5 config show`` prints the effective values). Unknown keys are rejected, because a
misspelt key silently falling back to a default is the worst kind of configuration bug.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
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

from firmware_app.config.errors import (
    describe_environment_error,
    describe_validation_error,
    quoted,
    refuse_private_keys,
    refuse_unknown_environment,
)
from firmware_app.config.files import (
    CONFIG_MAX,
    SECRET_MAX,
    read_capped_text,
    shown_path,
)
from firmware_app.config.profiles import ProfileName, apply_profile
from firmware_app.config.sections import (
    EsphomeSettings,
    GpioSettings,
    LlmSettings,
    MqttSettings,
    Section,
    WyomingSettings,
)
from firmware_app.core.errors import ConfigError

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
    false_wake_max_mb: float = Field(20.0, ge=0.1, le=100_000)
    """Most space the clips in ``false_wake_dir`` take (a clip is about 130 KB): before a
    new one is written, the oldest are deleted to stay under it."""
    false_wake_keep: int = Field(100, ge=1, le=100_000)
    """Most clips kept in ``false_wake_dir`` (each a WAV and its JSON note); the oldest
    are deleted first."""

    @field_validator("models")
    @classmethod
    def _known_or_path(cls, models: list[str]) -> list[str]:
        for name in models:
            if name in BUILTIN_WAKE_MODELS:
                continue
            if not name.endswith((".tflite", ".onnx", ".json")):
                raise ValueError(
                    f"{quoted(name)} is neither a built-in model "
                    f"({', '.join(BUILTIN_WAKE_MODELS)}) "
                    "nor a path to a .tflite/.onnx (openWakeWord) or .json (microWakeWord) file"
                )
        return models

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for name, value in thresholds.items():
            if not 0.0 < value < 1.0:
                raise ValueError(f"threshold {value} for {quoted(name)} must be between 0 and 1")
        return thresholds

    @model_validator(mode="after")
    def _engine_fits_model(self) -> WakeSettings:
        for name in [*self.engines, *self.thresholds]:
            if name not in self.models:
                raise ValueError(
                    f"{quoted(name)} is not one of the wake models {quoted(self.models)}"
                )
        for name in self.models:
            micro = self.engine_of(name) == "microwakeword"
            if micro and not (name in MICRO_WAKE_MODELS or name.endswith(".json")):
                raise ValueError(
                    f"microwakeword has no model {quoted(name)}: use one of "
                    f"{', '.join(MICRO_WAKE_MODELS)} or a path to a .json model"
                )
            if not micro and name.endswith(".json"):
                raise ValueError(
                    f"{quoted(name)} is a microWakeWord model: set engines.{quoted(name)}"
                )
        return self

    def engine_of(self, model: str) -> WakeEngineName:
        return self.engines.get(model, "openwakeword")


class VadSettings(Section):
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    """Silero speech probability above which a 32 ms chunk counts as speech."""
    silence_ms: int = Field(600, ge=100, le=5000)
    """End-of-speech hangover: this much silence after speech ends the request."""
    done_ms: int = Field(160, ge=0, le=5000)
    """Silence that ends a request sooner, once the command recognizer holds a whole
    command (0: always wait ``silence_ms``)."""
    unfinished_ms: int = Field(1600, ge=100, le=10000)
    """Silence allowed inside a request the command recognizer hears as the start of a
    command ("set a timer for ..."): a pause to think does not cut it."""
    start_timeout_s: float = Field(5.0, gt=0, le=30)
    """Give up and return to idle when no speech starts this long after the wake word."""
    max_request_s: float = Field(15.0, gt=1, le=120)
    """Longest request; recording stops here even if the speaker keeps talking."""


class SttSettings(Section):
    engine: Literal["auto", "phrases", "vosk", "whisper"] = "auto"
    """Speech recognition: ``phrases`` is the built-in speech-to-phrase recognizer (the
    command sentences only, no download); ``vosk`` and ``whisper`` are that open-speech
    model alone (Whisper needs the ``whisper`` extra: faster-whisper); ``auto`` runs
    speech-to-phrase and, when an open-speech model is installed, that model beside it
    (commands from speech-to-phrase, everything else from the model)."""
    model: Path | None = None
    """Open-speech model directory: a Vosk model, or a CTranslate2 Whisper model
    (``model.bin``, ``config.json``, ``tokenizer.json``). Default:
    ``<data_dir>/models/vosk-model-small-en-us-0.15``, or
    ``<data_dir>/models/faster-whisper-tiny.en`` for ``whisper`` (and for ``auto`` when
    only that one is installed); ``ttbt5 models pull`` installs both."""


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
    events_max_mb: float = Field(10.0, ge=0.001, le=10_000)
    """Size at which the event log file is rotated: it becomes ``<name>.1`` and a new
    file starts (also for ``simulate --events``)."""
    events_keep: int = Field(3, ge=0, le=100)
    """Rotated event log files kept (``<name>.1`` is the newest); older ones are deleted.
    At most (1 + ``events_keep``) × ``events_max_mb`` is used (40 MB by default)."""
    save_audio: Path | None = None
    """Directory where each request's audio is saved as WAV (off unless set)."""
    save_audio_max_mb: float = Field(50.0, ge=0.1, le=100_000)
    """Most space the requests in ``save_audio`` take (a 5 s request is about 160 KB):
    before a new one is written, the oldest are deleted to stay under it."""
    save_audio_keep: int = Field(300, ge=1, le=100_000)
    """Most requests kept in ``save_audio``; the oldest are deleted first."""


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TTBT5_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    profile: ProfileName = "default"
    """``zero`` sets every part up for a Raspberry Pi Zero 2 W (512 MB): microWakeWord,
    speech-to-phrase alone, no separate "stop" spotter, a small reply cache. Keys set
    here still win. See docs/performance.md."""
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
    wyoming: WyomingSettings = WyomingSettings()
    esphome: EsphomeSettings = EsphomeSettings()

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

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        return apply_profile(data, MICRO_WAKE_MODELS, ["hey_jarvis"])

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
        shown = shown_path(file)
        text = read_capped_text(file, "config file", CONFIG_MAX)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {shown} is not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"config file {shown} nests too deeply to be valid") from None
    refuse_private_keys(data, file)
    refuse_unknown_environment(Settings, os.environ)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, file, os.environ)) from None
    except SettingsError as exc:
        raise ConfigError(describe_environment_error(exc, os.environ)) from None
    except RecursionError:
        raise ConfigError("the configuration nests too deeply to be a valid setting") from None


def read_secret(
    value: SecretStr | None, file: Path | None, key: str, credential: str
) -> SecretStr | None:
    """A secret from the config value, else its file, else the systemd credential of that
    name (``LoadCredential=``). Returned still wrapped so it cannot be printed by accident.
    A file that cannot be read, or holds binary data rather than one line of text, is a
    ConfigError naming ``key`` (e.g. ``llm.api_key_file``)."""
    if value is not None and value.get_secret_value():
        return value
    candidates = [file] if file else []
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidates.append(Path(cred_dir) / credential)
    for path in candidates:
        named = key if key and path == file else f"the {credential} credential"
        if path != file and not path.exists():
            continue
        text = read_capped_text(path, named, SECRET_MAX).strip().splitlines()
        if text and text[0].strip():
            return SecretStr(text[0].strip())
    return None
