"""The checks a settings model cannot make on its own: do the files and directories it
names exist and can the service use them, do the custom sentences compile, are their topics
publishable. ``config validate`` prints every problem; ``run`` stops at start-up on the
first one, so a missing CA file or a binary key file is one line naming its key rather than
a failure minutes later inside a thread.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from firmware_app.config.errors import quoted
from firmware_app.config.files import (
    JSON_MAX,
    PEM_MAX,
    SECRET_MAX,
    FileRefused,
    check_regular,
    read_capped_text,
)
from firmware_app.config.home import check_noise_key
from firmware_app.config.settings import BUILTIN_WAKE_MODELS, Settings
from firmware_app.core.errors import ConfigError

Check = Callable[[Path], str | None]
"""A path in, None when it is usable, else what is wrong (one short phrase)."""


def problems(settings: Settings) -> list[str]:
    """Every problem found, each one line starting with the key it concerns."""
    return [f"{key}: {problem}" for key, problem in _problems(settings)]


def report(settings: Settings) -> int:
    """``ttbt5 config validate``: every problem on stderr, one line each, or "config ok";
    returns the number of problems."""
    found = problems(settings)
    for line in found:
        print(f"ttbt5: error: {line}", file=sys.stderr)
    if not found:
        print("config ok")
    return len(found)


def require_usable(settings: Settings) -> None:
    """ConfigError naming the key of the first problem (used at start-up)."""
    found = problems(settings)
    if found:
        more = f" (+{len(found) - 1} more; run 'ttbt5 config validate')" if len(found) > 1 else ""
        raise ConfigError(found[0] + more)


def _problems(s: Settings) -> Iterator[tuple[str, str]]:
    for key, path, check in _paths(s):
        if path is None:
            continue
        problem = check(path)
        if problem is not None:
            yield key, problem
    yield from _intent_problems(s)


def _paths(s: Settings) -> Iterator[tuple[str, Path | None, Check]]:
    yield "data_dir", s.data_dir, _data_dir
    yield "stt.model", s.stt.model, _readable_dir
    yield "tts.voice", s.tts.voice, _voice
    for i, model in enumerate(s.wake.models):
        if model not in BUILTIN_WAKE_MODELS:
            yield f"wake.models[{i}]", Path(model), _readable_file
    yield "mqtt.password_file", s.mqtt.password_file, _text_file
    yield "mqtt.tls_ca", s.mqtt.tls_ca, _certificates
    yield "llm.api_key_file", s.llm.api_key_file, _text_file
    yield "esphome.encryption_key_file", s.esphome.encryption_key_file, _noise_key_file
    yield "arbitration.secret_file", s.arbitration.secret_file, _text_file
    yield "wyoming.homeassistant_token_file", s.wyoming.homeassistant_token_file, _text_file
    yield "llm.tls_ca", s.llm.tls_ca, _certificates
    yield "update.public_key", s.update.public_key, _pem_file
    yield "log.events", s.log.events, _writable_file
    yield "log.save_audio", s.log.save_audio, _writable_dir
    yield "wake.false_wake_dir", s.wake.false_wake_dir, _writable_dir


def _intent_problems(s: Settings) -> Iterator[tuple[str, str]]:
    from firmware_app.understand.intents.custom import CustomIntents

    for i, spec in enumerate(s.intents):
        key = f"intents[{i}]"
        try:
            CustomIntents([spec])
        except (ConfigError, ValueError) as exc:
            yield key, f"({spec.name}) {exc}"
        if "#" in spec.topic or "+" in spec.topic:
            yield f"{key}.topic", f"{quoted(spec.topic)} holds an MQTT wildcard ('#' or '+')"


# -- path checks --------------------------------------------------------------------------


def _readable_file(path: Path) -> str | None:
    """A file an engine or library opens itself (a model, a public key): a regular file,
    not a FIFO or a device that would hang or never end."""
    try:
        check_regular(path, "")
    except FileRefused as exc:
        return exc.problem
    if not os.access(path, os.R_OK):
        return f"{path} cannot be read (permissions)"
    return None


def _readable_dir(path: Path) -> str | None:
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{path} cannot be read (permissions)"
    return None


def _data_dir(path: Path) -> str | None:
    """A full or read-only data disk is not a config error: the store runs from memory and
    says so in health (``check`` fails on it). A path that is no directory is one."""
    if path.exists():
        return None if path.is_dir() else f"{path} is not a directory"
    return _writable_dir(path)


def _writable_dir(path: Path) -> str | None:
    """An existing directory the service can write, or one it can create."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} does not exist and cannot be created ({parent} is not writable)"
    return None


def _writable_file(path: Path) -> str | None:
    if path.exists():
        if not path.is_file():
            return f"{path} is not a file"
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    problem = _writable_dir(path.parent)
    return f"cannot create {path}: {problem}" if problem else None


def _text_file(path: Path) -> str | None:
    """A secret file: readable, one line of text (a binary file is a mistake: the wrong
    file, or a key in DER form)."""
    try:
        text = read_capped_text(path, "", SECRET_MAX)
    except FileRefused as exc:
        return exc.problem
    if not text.strip():
        return f"{path} is empty"
    return None


def _noise_key_file(path: Path) -> str | None:
    """The satellite's key file: one line, the key as ESPHome writes it (base64, 32 bytes)."""
    try:
        text = read_capped_text(path, "", SECRET_MAX)
    except FileRefused as exc:
        return exc.problem
    lines = text.strip().splitlines()
    if not lines:
        return f"{path} is empty"
    try:
        check_noise_key(lines[0])
    except ValueError as exc:
        return f"{path}: the key {exc}"
    return None


def _pem_file(path: Path) -> str | None:
    """A key file: a regular file no larger than a PEM file can be."""
    try:
        check_regular(path, "", PEM_MAX)
    except FileRefused as exc:
        return exc.problem
    return None


def _certificates(path: Path) -> str | None:
    try:
        pem = read_capped_text(path, "", PEM_MAX)
        ssl.create_default_context(cadata=pem)
    except FileRefused as exc:
        return exc.problem
    except (OSError, ssl.SSLError, ValueError):
        return f"{path} holds no PEM certificate"
    return None


def _voice(path: Path) -> str | None:
    problem = _readable_file(path)
    if problem:
        return problem
    config = Path(f"{path}.json")
    if not config.exists():
        return f"the voice's config {config} does not exist (it belongs beside the .onnx)"
    try:
        check_regular(config, "", JSON_MAX)
    except FileRefused as exc:
        return exc.problem
    return None
