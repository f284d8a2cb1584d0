"""Bad settings in, one line out: which key, which value, what is allowed.

Also the checks the settings library does not make: keys starting with ``_`` (its own
switches) and environment variables that look like settings but name none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from firmware_app.core.errors import ConfigError

ENV_PREFIX = "TTBT5_"
NOT_SETTINGS = frozenset({"TTBT5_CONFIG", "TTBT5_PYTHON"})
"""Variables of ours that are not settings: the config file's path and the installer's
Python."""


def refuse_private_keys(data: dict[str, Any], file: Path | None) -> None:
    """Top-level keys starting with ``_`` are the settings library's own switches
    (``_env_prefix`` would silently turn off every override); deeper ones are refused by the
    sections' models like any unknown key."""
    where = f" in {file}" if file else ""
    for key in data:
        if key.startswith("_"):
            raise ConfigError(f"unknown key {key!r}{where}: no setting starts with '_'")


def _setting_exists(root: type[BaseModel], parts: list[str]) -> bool:
    """Whether ``section.key`` names a setting; a leaf, or a section or list given whole as
    JSON, ends the path."""
    model: type[BaseModel] = root
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return i == len(parts) - 1
        model = annotation
    return True


def refuse_unknown_environment(root: type[BaseModel], environ: Mapping[str, str]) -> None:
    """A mistyped variable (``TTBT5_VADD__SILENCE_MS``) would otherwise be ignored without a
    word while the user believes it is in force."""
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in NOT_SETTINGS:
            continue
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        if not _setting_exists(root, parts):
            raise ConfigError(
                f"unknown environment variable {name}: there is no setting "
                f"{'.'.join(parts)!r} (variables are TTBT5_<SECTION>__<KEY>, e.g. "
                "TTBT5_VAD__SILENCE_MS)"
            )


def describe_environment_error(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """The settings library says which field failed to parse; name the variable and value."""
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else ""
    for name in sorted(environ):
        upper = name.upper()
        if field and upper.startswith(f"{ENV_PREFIX}{field.upper()}"):
            shown = "(hidden)" if looks_secret(upper.lower()) else _short(environ[name])
            key = ".".join(upper[len(ENV_PREFIX) :].lower().split("__"))
            return (
                f"bad value for {key!r} from {name}: {shown}; a list or table "
                "in the environment is written as JSON, e.g. '[\"hey_jarvis\"]'"
            )
    return f"bad value in the environment: {one_line(str(exc))}"


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
        shown = "(hidden)" if looks_secret(key) else _short(value)
        text = f"bad value for {key!r}{where}: {shown}; {msg}"
    more = len(errors) - 1
    return text + (f" (+{more} more)" if more else "")


def looks_secret(key: str) -> bool:
    return any(word in key for word in ("password", "api_key", "token", "secret"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")
