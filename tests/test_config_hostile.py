"""Files and values the configuration names, at their worst: a device, a FIFO nobody writes
to, an 8 GB sparse secret file, megabytes in one key or value, secrets inside a malformed
environment table. Each is one line naming the key (or the variable), exit 2, at once;
nothing hangs, nothing is read without bound, no secret is echoed. Real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_app.config.files import MIB, FileRefused, read_capped
from firmware_app.config.settings import read_secret
from firmware_app.core.errors import ConfigError

SECRET = "sk-VERYSECRET-0123456789"
GUARD_S = 60  # a hang fails the test instead of the suite; not a performance figure


def validate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "firmware_app", "config", "validate", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=GUARD_S,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ttbt5: error: ")
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def sparse_8gb(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    with path.open("wb") as fh:
        fh.truncate(8 * 1024 * MIB)  # sparse: no disk used
    return path


def test_config_naming_a_device_or_a_fifo(fifo: Path) -> None:
    line = one_error_line(validate("--config", "/dev/zero"))
    assert "config file" in line and "/dev/zero is a character device" in line
    line = one_error_line(validate("--config", str(fifo)))
    assert "config file" in line and "is a FIFO" in line


def test_a_huge_config_file_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as fh:
        fh.truncate(8 * 1024 * MIB)
    line = one_error_line(validate("--config", str(big)))
    assert "config file" in line and "8,192 MiB" in line


def test_an_8gb_sparse_password_file(tmp_path: Path, sparse_8gb: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nusername = "u"\npassword_file = "{sparse_8gb}"\n'
    )
    line = one_error_line(validate("--config", str(config)))
    assert "mqtt.password_file:" in line and "at most 64 KiB" in line
    with pytest.raises(ConfigError, match=r"^llm\.api_key_file: .* at most 64 KiB"):
        read_secret(None, sparse_8gb, "llm.api_key_file", "llm_api_key")


def test_secret_and_ca_files_that_are_fifos(tmp_path: Path, fifo: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[llm]\nurl = "https://127.0.0.1/v1"\ntls_ca = "{fifo}"\n')
    line = one_error_line(validate("--config", str(config)))
    assert line.startswith("ttbt5: error: llm.tls_ca:") and "FIFO" in line
    with pytest.raises(FileRefused, match=r"^mqtt\.password_file: .* is a FIFO"):
        read_secret(None, fifo, "mqtt.password_file", "mqtt_password")
    # a credential slot holding a FIFO is refused the same way, naming the credential
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    os.mkfifo(credentials / "mqtt_password")
    os.environ["CREDENTIALS_DIRECTORY"] = str(credentials)
    try:
        with pytest.raises(FileRefused, match="mqtt_password credential"):
            read_secret(None, None, "mqtt.password_file", "mqtt_password")
    finally:
        del os.environ["CREDENTIALS_DIRECTORY"]


def test_a_file_one_byte_over_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 100)
    assert read_capped(path, "k", 100) == b"x" * 100
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileRefused, match=r"^k: .* is 101 bytes"):
        read_capped(path, "k", 100)


def test_a_megabyte_unknown_key_and_value_are_quoted_short(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("k" + "x" * 1_000_000 + " = 1\n")
    line = one_error_line(validate("--config", str(config)))
    assert "unknown key 'kxxx" in line and len(line) < 250
    config.write_text('[mqtt]\nport = "' + "9" * 900_000 + 'x"\n')
    line = one_error_line(validate("--config", str(config)))
    assert "bad value for 'mqtt.port'" in line and len(line) < 300
    config.write_text(
        '[[intents]]\nname = "x"\nsentences = ["turn on the light"]\n'
        'topic = "home/#' + "b" * 300_000 + '"\n'
    )
    line = one_error_line(validate("--config", str(config)))
    assert "intents[0].topic:" in line and "wildcard" in line and len(line) < 200
    config.write_text('[wake]\nmodels = ["' + "m" * 300_000 + '"]\n')
    line = one_error_line(validate("--config", str(config)))
    assert "'wake.models'" in line and len(line) < 400  # the path, the value, the rule


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[mqtt]\nport = 1883\n")
    line = one_error_line(validate("--config", str(config), env={"TTBT5_MQTT__PORT": "abc"}))
    assert "from TTBT5_MQTT__PORT: 'abc'" in line and str(config) not in line


@pytest.mark.parametrize(
    "table",
    [
        '{"url": "http://127.0.0.1/v1", "api_key": "' + SECRET + '", "timeout_s": "bad"',
        '{"url": "http://127.0.0.1/v1", "api_key": "' + SECRET + '", "timeout_s": "bad"}',
        '["' + SECRET + '", "api_key"]',
        '{"api_key": "' + SECRET + '", "surprise": 1}',
    ],
)
def test_a_malformed_environment_table_never_echoes_its_secret(tmp_path: Path, table: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    line = one_error_line(validate("--config", str(config), env={"TTBT5_LLM": table}))
    assert "TTBT5_LLM" in line and SECRET not in line and "VERYSECRET" not in line
