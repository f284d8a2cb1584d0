"""Settings: one TOML file, every key overridable as ``TTBT5_<SECTION>__<KEY>``.

Each section is a small model whose field docstrings are the reference documentation
(``ttbt5 config show`` prints the effective values). Unknown keys are rejected, because a
misspelt key silently falling back to a default is the worst kind of configuration bug.

The sections live in modules named by what they configure: ``hardware`` (sound card,
LEDs and button), ``hearing`` (wake word, voice detector, echo canceller), ``speech``
(recognizer and voice), ``understanding`` (local intents, custom sentences, the online
model), ``home`` (MQTT, arbitration, the satellite, Wyoming) and ``service`` (logs,
updates). This module holds the root that joins them and its loading from the file and
the environment; every section and helper can still be imported from here, so code that
needs the whole configuration has one import.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from firmware_app.config.errors import (
    describe_environment_error,
    describe_validation_error,
    refuse_private_keys,
    refuse_unknown_environment,
)
from firmware_app.config.files import CONFIG_MAX, read_capped_text, shown_path
from firmware_app.config.hardware import AudioSettings, GpioSettings
from firmware_app.config.hearing import (
    BUILTIN_WAKE_MODELS,
    MICRO_WAKE_MODELS,
    EchoSettings,
    VadSettings,
    WakeEngineName,
    WakeSettings,
)
from firmware_app.config.home import (
    ArbitrationSettings,
    EsphomeSettings,
    MqttSettings,
    WyomingSettings,
    check_noise_key,
    check_topic_prefix,
)
from firmware_app.config.profiles import ProfileName, apply_profile
from firmware_app.config.secrets import read_secret
from firmware_app.config.section import Section
from firmware_app.config.service import LogSettings, UpdateSettings
from firmware_app.config.speech import DEFAULT_STT_MODEL, SttSettings, TtsSettings
from firmware_app.config.understanding import AssistantSettings, CustomIntent, LlmSettings
from firmware_app.core.errors import ConfigError

__all__ = [
    "BUILTIN_WAKE_MODELS",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_STT_MODEL",
    "MICRO_WAKE_MODELS",
    "ArbitrationSettings",
    "AssistantSettings",
    "AudioSettings",
    "CustomIntent",
    "EchoSettings",
    "EsphomeSettings",
    "GpioSettings",
    "LlmSettings",
    "LogSettings",
    "MqttSettings",
    "Section",
    "Settings",
    "SttSettings",
    "TtsSettings",
    "UpdateSettings",
    "VadSettings",
    "WakeEngineName",
    "WakeSettings",
    "WyomingSettings",
    "check_noise_key",
    "check_topic_prefix",
    "config_path",
    "default_data_dir",
    "load_settings",
    "read_secret",
]

DEFAULT_CONFIG_PATH = Path("/etc/ttbt5/config.toml")


def default_data_dir() -> Path:
    """systemd's StateDirectory when run as the service, else the user's XDG data dir,
    so ``ttbt5 run`` works for a normal user with no configuration at all."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "ttbt5"


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
