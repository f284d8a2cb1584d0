"""Config that tells the truth: topic prefixes with wildcards are refused at load, and the
files, directories and sentences the config names are checked, each problem one line that
starts with its key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from firmware_app.config.settings import (
    LlmSettings,
    Settings,
    TtsSettings,
    load_settings,
    read_secret,
)
from firmware_app.config.validate import problems, require_usable
from firmware_app.core.errors import ConfigError, ModelMissingError
from firmware_app.understand.llm import build_responder
from firmware_app.understand.llm.client import ChatClient


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("prefix", ["home/#", "home/+/x", "#", "home//x", "/home", "home ha", ""])
def test_a_discovery_prefix_that_is_no_topic_prefix_is_refused_at_load(
    tmp_path: Path, prefix: str
) -> None:
    path = write_config(tmp_path, f'[mqtt]\ndiscovery_prefix = "{prefix}"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "'mqtt.discovery_prefix'" in message and "\n" not in message


def test_a_wildcard_prefix_from_the_environment_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTBT5_MQTT__DISCOVERY_PREFIX", "home/#")
    with pytest.raises(ConfigError, match=r"mqtt\.discovery_prefix.*wildcards"):
        load_settings(write_config(tmp_path, ""))


@pytest.mark.parametrize("prefix", ["homeassistant", "ha/site-1", "home.assistant_2"])
def test_ordinary_prefixes_load(tmp_path: Path, prefix: str) -> None:
    path = write_config(tmp_path, f'[mqtt]\ndiscovery_prefix = "{prefix}"\n')
    assert load_settings(path).mqtt.discovery_prefix == prefix


def test_a_good_config_has_no_problems(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-secret\n")
    settings = Settings(
        data_dir=tmp_path / "data",
        llm={"url": "http://127.0.0.1:9/v1", "api_key_file": str(key)},
        log={"events": str(tmp_path / "events.jsonl")},
        intents=[
            {
                "name": "light",
                "sentences": ["turn (on|off) the {room} light"],
                "slots": {"room": ["kitchen"]},
                "topic": "home/{room}/light/set",
            }
        ],
    )
    assert problems(settings) == []
    require_usable(settings)


def test_every_problem_names_its_key(tmp_path: Path) -> None:
    binary = tmp_path / "key.der"
    binary.write_bytes(b"\x30\x82\x01\x0a\x00\xff\xfe")
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("hello\n")
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"onnx")  # no voice.onnx.json beside it
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    settings = Settings(
        data_dir=blocker,
        stt={"model": str(tmp_path / "no-model")},
        tts={"voice": str(voice)},
        wake={
            "models": ["hey_jarvis", str(tmp_path / "mine.tflite")],
            "false_wake_dir": str(blocker / "clips"),
        },
        mqtt={"host": "localhost", "tls_ca": str(not_a_cert)},
        llm={
            "url": "https://example.invalid/v1",
            "api_key_file": str(binary),
            "tls_ca": str(tmp_path / "missing-ca.pem"),
        },
        update={"public_key": str(tmp_path / "release.pem")},
        log={"save_audio": str(blocker / "audio")},
        intents=[
            {"name": "bad", "sentences": ["turn on the {room}"], "topic": "home/x"},
            {"name": "wild", "sentences": ["hello"], "topic": "home/#"},
        ],
    )
    found = problems(settings)
    keys = [line.split(":")[0] for line in found]
    assert keys == [
        "data_dir",
        "stt.model",
        "tts.voice",
        "wake.models[1]",
        "mqtt.tls_ca",
        "llm.api_key_file",
        "llm.tls_ca",
        "update.public_key",
        "log.save_audio",
        "wake.false_wake_dir",
        "intents[0]",
        "intents[1].topic",
    ]
    assert all("\n" not in line for line in found)
    text = "\n".join(found)
    assert "is binary" in text and "holds no PEM certificate" in text
    assert "does not exist" in text and "voice.onnx.json" in text
    assert "{room}" in text  # the template problem says what is wrong
    with pytest.raises(ConfigError, match=r"^data_dir: .*\(\+11 more"):
        require_usable(settings)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_an_unreadable_key_file_is_a_problem(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-secret\n")
    key.chmod(0)
    settings = Settings(data_dir=tmp_path, llm={"url": "http://h/v1", "api_key_file": str(key)})
    assert problems(settings) == [f"llm.api_key_file: {key} cannot be read (permissions)"]


def test_a_binary_key_file_fails_naming_its_key(tmp_path: Path, store: Any) -> None:
    key = tmp_path / "key.bin"
    key.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match=r"^llm\.api_key_file: .* is binary"):
        read_secret(None, key, "llm.api_key_file", "llm_api_key")
    settings = Settings(data_dir=tmp_path, llm={"url": "http://h/v1", "api_key_file": str(key)})
    with pytest.raises(ConfigError, match=r"^llm\.api_key_file:"):
        build_responder(settings, store)


def test_a_missing_llm_ca_fails_naming_its_key(tmp_path: Path) -> None:
    settings = LlmSettings(url="https://h/v1", tls_ca=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"^llm\.tls_ca: .*nope\.pem does not exist"):
        ChatClient(settings, None)


def test_a_missing_voice_fails_naming_its_key(tmp_path: Path) -> None:
    from firmware_app.speak.piper import PiperSynthesizer

    with pytest.raises(ModelMissingError, match=r"^tts\.voice: Piper voice .* does not exist"):
        PiperSynthesizer(TtsSettings(voice=tmp_path / "nope.onnx"))


@pytest.fixture
def store(tmp_path: Path) -> Any:
    from firmware_app.system.store import Store

    s = Store(tmp_path / "store.sqlite")
    yield s
    s.close()
