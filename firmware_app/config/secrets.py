"""Secrets the settings name (the MQTT password, the LLM's API key, the arbitration secret,
the satellite's encryption key): read when a part needs one, from the value, its file or a
systemd credential, and kept wrapped so no log line can show it."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from firmware_app.config.files import SECRET_MAX, read_capped_text


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
