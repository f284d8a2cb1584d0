"""docs/configuration.md, made from the settings' field docstrings so it cannot drift
(``python scripts/config_doc.py`` writes it; a test checks the file is current)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from firmware_app.config.errors import looks_secret, one_line
from firmware_app.config.settings import CustomIntent, Section, Settings


def reference_markdown() -> str:
    """The whole reference page, in Markdown."""

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
        "with status 2 and one line naming the key, the value and what is allowed. It also",
        "checks that the files and directories the config names exist and can be used (a",
        "secret file must be one line of text, a CA file must hold a PEM certificate), that",
        "MQTT topic prefixes hold no wildcards and that custom sentences compile: one line per",
        "problem, each starting with its key. `ttbt5 run` makes the same checks at start and",
        "stops at the first problem.",
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
        out.append(f"| `{name}` | `{default}` | {one_line(info.description)} |")
    for name, info in root_fields.items():
        annotation = info.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, Section)):
            continue
        out += ["", f"## [{name}]", "", "| key | default | meaning |", "|---|---|---|"]
        for key, field in annotation.model_fields.items():
            default = field.get_default(call_default_factory=True)
            shown = "hostname" if key == "device_id" else value(default)
            out.append(f"| `{key}` | `{shown}` | {one_line(field.description)} |")
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
        out.append(f"| `{key}` | {one_line(field.description)} |")
    return "\n".join(out) + "\n"


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
            lines.append(_toml_line(key, value, secret=looks_secret(key)))
    for intent in settings.intents:
        lines.append("\n[[intents]]")
        for key, value in intent.model_dump(mode="json").items():
            lines.append(_toml_line(key, value))
    return "\n".join(lines) + "\n"


def _toml_line(key: str, value: Any, secret: bool = False) -> str:
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
