"""``ttbt5 check`` tries each configured part for real: a real Mosquitto (up, down, wrong
password), a real HTTP server as the online model (answering, refusing the key, hanging,
gone), and the speech recognizer the service would load."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fake_server import FakeLlm, hang, refused_url, sse, status
from mqtt_broker import Broker, free_port, settings_for
from pydantic import SecretStr

from firmware_app.app.check import check_all, probe_llm, probe_mqtt, run_checks
from firmware_app.config.settings import LlmSettings, MqttSettings, Settings

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("pw"), users={"ttbt5": PASSWORD})
    b.start()
    yield b
    b.stop()


@pytest.fixture
def server() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    yield fake
    fake.close()


def llm(url: str, **values: object) -> LlmSettings:
    return LlmSettings(url=url, model="test-model", api_key=SecretStr("sk-check"), **values)


def test_a_reachable_broker_is_ok(broker: Broker, tmp_path: Path) -> None:
    cfg = settings_for(broker, tmp_path).mqtt
    assert probe_mqtt(cfg) == f"connected to {broker.host}:{broker.port}"


def test_a_broker_that_is_down_fails(tmp_path: Path) -> None:
    cfg = MqttSettings(host="127.0.0.1", port=free_port())
    with pytest.raises(ConnectionError, match=r"cannot reach the broker at 127\.0\.0\.1:\d+"):
        probe_mqtt(cfg, timeout=3)


def test_a_wrong_password_fails_and_the_right_one_works(
    password_broker: Broker, tmp_path: Path
) -> None:
    wrong = settings_for(password_broker, tmp_path, username="ttbt5", password="nope").mqtt
    with pytest.raises(ConnectionError, match="refused the connection") as err:
        probe_mqtt(wrong, timeout=5)
    assert "nope" not in str(err.value)
    right = settings_for(password_broker, tmp_path, username="ttbt5", password=PASSWORD).mqtt
    assert probe_mqtt(right, timeout=5).startswith("connected to")


def test_a_model_that_answers_is_ok(server: FakeLlm) -> None:
    server.then(sse(["OK."]))
    assert probe_llm(llm(server.url)) == "127.0.0.1 answered with model test-model"
    request = server.requests[0]
    assert request.body["model"] == "test-model"
    assert request.headers["Authorization"] == "Bearer sk-check"


def test_a_refused_key_fails_without_showing_it(server: FakeLlm) -> None:
    server.then(status(401, b'{"error": {"message": "bad key sk-check"}}'))
    with pytest.raises(ConnectionError, match="refused the API key") as err:
        probe_llm(llm(server.url))
    assert "sk-check" not in str(err.value)
    assert len(server.requests) == 1  # no retries in a check


def test_a_hanging_model_fails_after_the_timeout(server: FakeLlm) -> None:
    server.then(hang())
    with pytest.raises(TimeoutError, match="no answer within 1 s"):
        probe_llm(llm(server.url), timeout=1)


def test_a_model_that_is_gone_fails() -> None:
    with pytest.raises(ConnectionError, match="cannot connect"):
        probe_llm(llm(refused_url()))


def test_check_fails_for_configured_parts_that_are_down(tmp_path: Path) -> None:
    """Nothing listens where the broker and the model should be, and the only recognizer
    allowed (Vosk) has no model: every one of those is a FAIL, and so is the whole check."""
    settings = Settings(
        data_dir=tmp_path / "data",
        mqtt={"host": "127.0.0.1", "port": free_port()},
        llm={"url": refused_url(), "retries": 0},
        stt={"engine": "vosk"},  # and no Vosk model installed
    )
    lines: list[str] = []
    assert run_checks(settings, lines.append) == 1
    by_name = {line.split(":")[0][5:]: line for line in lines}
    assert by_name["mqtt"].startswith("FAIL")
    assert by_name["llm"].startswith("FAIL")
    assert by_name["speech recognition"].startswith("FAIL")
    assert "no speech recognizer" in by_name["speech recognition"]
    assert by_name["voice (TTS)"].startswith("ok")
    assert by_name["wake word models"].startswith("ok")


def test_config_problems_are_failures(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", llm={"tls_ca": str(tmp_path / "ca.pem")})
    results = check_all(settings)
    assert ("FAIL", "config", f"llm.tls_ca: {tmp_path / 'ca.pem'} does not exist") in results


def test_the_bundled_recognizer_is_enough(tmp_path: Path) -> None:
    results = check_all(Settings(data_dir=tmp_path / "data"))
    by_name = {name: (status, detail) for status, name, detail in results}
    assert by_name["speech recognition"][0] == "ok"
    assert "stt.engine = auto" in by_name["speech recognition"][1]
    # one line about recognition: what works, and what adds open speech (optional here)
    assert "models pull" in by_name["speech recognition"][1]
    assert [name for name in by_name if "speech" in name] == ["speech recognition"]


def test_without_open_speech_an_online_model_is_a_warning(tmp_path: Path) -> None:
    """Questions for the LLM need open speech: the same one line, now a warning."""
    results = check_all(Settings(data_dir=tmp_path / "data", llm={"url": refused_url()}))
    speech = [(status, detail) for status, name, detail in results if "speech" in name]
    assert len(speech) == 1
    assert speech[0][0] == "WARN" and "models pull" in speech[0][1]


def test_a_missing_sound_card_is_one_line_without_alsa_noise(tmp_path: Path) -> None:
    """alsa-lib prints a dozen lines of its own for a device it cannot find; the check
    shows one line per device and nothing else from ALSA."""
    env = {
        **os.environ,
        "TTBT5_DATA_DIR": str(tmp_path / "data"),
        "TTBT5_AUDIO__INPUT_DEVICE": "hw:CARD=NoSuchCard,DEV=0",
        "TTBT5_AUDIO__OUTPUT_DEVICE": "plughw:CARD=NoSuchCard,DEV=0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "firmware_app", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "ALSA lib" not in done.stdout + done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("WARN microphone:") and "NoSuchCard" in line for line in lines)
    assert any(line.startswith("WARN speaker:") and "NoSuchCard" in line for line in lines)
