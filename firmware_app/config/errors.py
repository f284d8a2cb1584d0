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

from firmware_app.config.files import shown_path
from firmware_app.core.errors import ConfigError

ENV_PREFIX = "TTBT5_"
NOT_SETTINGS = frozenset({"TTBT5_CONFIG", "TTBT5_PYTHON"})
"""Variables of ours that are not settings: the config file's path and the installer's
Python."""


def refuse_private_keys(data: dict[str, Any], file: Path | None) -> None:
    """Top-level keys starting with ``_`` are the settings library's own switches
    (``_env_prefix`` would silently turn off every override); deeper ones are refused by the
    sections' models like any unknown key."""
    where = f" in {shown_path(file)}" if file else ""
    for key in data:
        if key.startswith("_"):
            raise ConfigError(f"unknown key {quoted(key)}{where}: no setting starts with '_'")


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
                f"unknown environment variable {_cut(name)}: there is no setting "
                f"{quoted('.'.join(parts))} (variables are TTBT5_<SECTION>__<KEY>, e.g. "
                "TTBT5_VAD__SILENCE_MS)"
            )


def describe_environment_error(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """The settings library says which field failed to parse; name the variable and value."""
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else ""
    for name in sorted(environ):
        upper = name.upper()
        if field and upper.startswith(f"{ENV_PREFIX}{field.upper()}"):
            key = ".".join(upper[len(ENV_PREFIX) :].lower().split("__"))
            shown = _shown(key, environ[name])
            return (
                f"bad value for {key!r} from {name}: {shown}; a list or table "
                "in the environment is written as JSON, e.g. '[\"hey_jarvis\"]'"
            )
    return f"bad value in the environment: {one_line(str(exc))}"


def describe_validation_error(
    exc: ValidationError, file: Path | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """One line: the first bad key, where it came from (the environment variable that set
    it, else the file), its value (at most ~80 characters, never a secret) and what is
    allowed (+N more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    key = quoted(".".join(loc) or "(top level)")
    variable = _variable_for(loc, environ or {})
    where = f" from {variable}" if variable else f" in {shown_path(file)}" if file else ""
    msg = _cut(first["msg"])
    if first["type"] == "extra_forbidden":
        text = f"unknown key {key}{where}"
    elif first["type"] == "missing":
        text = f"missing key {key}{where}"
    else:
        text = f"bad value for {key}{where}: {_shown('.'.join(loc), first.get('input'))}; {msg}"
    more = len(errors) - 1
    return text + (f" (+{more} more)" if more else "")


def _variable_for(loc: list[str], environ: Mapping[str, str]) -> str | None:
    """The environment variable that set the setting at ``loc``: the most precise one
    (``TTBT5_MQTT__PORT``, else a ``TTBT5_MQTT`` table), since the environment overrides
    the file."""
    wanted = [part.upper() for part in loc if not part.isdigit()]
    by_upper = {name.upper(): name for name in environ}
    for depth in range(len(wanted), 0, -1):
        name = by_upper.get(ENV_PREFIX + "__".join(wanted[:depth]))
        if name is not None:
            return name
    return None


SECRET_WORDS = ("password", "api_key", "apikey", "encryption_key", "token", "secret")


def looks_secret(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_WORDS)


def _shown(key: str, value: Any) -> str:
    """A bad value as error lines quote it: hidden when its key names a secret or the value
    itself mentions one (a JSON table from the environment holding the API key), else at
    most ~80 characters."""
    if looks_secret(key):
        return "(hidden)"
    if not isinstance(value, int | float | bool | None) and looks_secret(_text_of(value)):
        return "(hidden: it holds a secret)"
    return quoted(value)


def _text_of(value: Any) -> str:
    """Enough of a value to look for secret names in, without copying a huge one whole."""
    if isinstance(value, str):
        return value[:100_000]
    try:
        return repr(value)[:100_000]
    except Exception:
        return ""


def quoted(value: Any) -> str:
    """A value as error lines quote it: its repr, at most 80 characters."""
    if isinstance(value, str) and len(value) > 200:
        value = value[:200]  # repr of a 50 MB string is not built to print 80 characters
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _cut(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "..."


def one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")
