"""Password and TLS brokers: the right credentials connect, wrong ones are reported in one
line and retried, and the password never reaches a log, an event or MQTT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from mqtt_broker import Broker, FakeAssistant, Listener, make_tls, settings_for, wait_until
from pydantic import SecretStr

from firmware_app.core.errors import ConfigError
from firmware_app.core.messages import Notice
from firmware_app.edges.mqtt import start_mqtt

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("pw"), users={"ttbt5": PASSWORD, "watcher": "w"})
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    workdir = tmp_path_factory.mktemp("tls")
    b = Broker(workdir, tls=make_tls(workdir))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    yield lines
    logger.remove(sink)


def test_password_from_file(password_broker: Broker, tmp_path: Path, logs: list[str]) -> None:
    secret = tmp_path / "mqtt_password"
    secret.write_text(PASSWORD + "\n")
    assistant = FakeAssistant()
    settings = settings_for(password_broker, tmp_path, username="ttbt5", password_file=secret)
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    watcher = Listener(password_broker, username="watcher", password="w")
    try:
        assert watcher.wait_for(bridge.topics.status).text == "online"
        watcher.publish(bridge.topics.cmd("say"), "hello")
        assert watcher.wait_for(bridge.topics.cmd_result).json()["ok"] is True
        watcher.wait_for(bridge.topics.health)
    finally:
        bridge.close()
        watcher.close()
    assert all(PASSWORD not in m.payload.decode("utf-8", "replace") for m in watcher.messages)
    assert not any(PASSWORD in line for line in logs)


def test_wrong_password_reported_and_retried(
    password_broker: Broker, tmp_path: Path, logs: list[str]
) -> None:
    wrong = "not-the-password-1234"
    refused_before = password_broker.log_text().count("not authorised")
    assistant = FakeAssistant()
    settings = settings_for(
        password_broker,
        tmp_path,
        username="ttbt5",
        password=SecretStr(wrong),
        reconnect_max_s=1,
    )
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        wait_until(lambda: any("refused" in line for line in logs), what="refusal logged")
        assert Notice("offline", {"where": "mqtt"}) in assistant.posted
        assert not bridge.connected
        for _ in range(50):
            assistant.emit("led", pattern="idle")  # still never blocks
        wait_until(
            lambda: password_broker.log_text().count("not authorised") >= refused_before + 2,
            timeout=15,
            what="a second attempt",
        )
    finally:
        bridge.close()
    refusals = [line for line in logs if "refused" in line]
    assert "Not authorized" in refusals[0] or "not authorised" in refusals[0].lower()
    assert len(refusals) == 1  # one line, not one per retry
    assert not any(wrong in line for line in logs)


def test_tls_with_ca(tls_broker: Broker, tmp_path: Path) -> None:
    assert tls_broker.tls is not None
    assistant = FakeAssistant()
    bridge = start_mqtt(settings_for(tls_broker, tmp_path, tls_ca=tls_broker.tls.ca), assistant)
    assert bridge is not None
    watcher = Listener(tls_broker, ca=tls_broker.tls.ca)
    try:
        assert watcher.wait_for(bridge.topics.status).text == "online"
        watcher.publish(bridge.topics.cmd("volume"), "25")
        assert watcher.wait_for(bridge.topics.cmd_result).json()["ok"] is True
        assert assistant.volume == 25
    finally:
        bridge.close()
        watcher.close()


def test_tls_with_wrong_ca_does_not_connect(
    tls_broker: Broker, tmp_path: Path, logs: list[str]
) -> None:
    other = make_tls(tmp_path)  # a CA that did not sign the broker's certificate
    assistant = FakeAssistant()
    settings = settings_for(tls_broker, tmp_path, tls_ca=other.ca, reconnect_max_s=1)
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        wait_until(lambda: Notice("offline", {"where": "mqtt"}) in assistant.posted)
        wait_until(lambda: any("cannot reach" in line for line in logs))
        assert not bridge.connected
    finally:
        bridge.close()


def test_missing_ca_file(tls_broker: Broker, tmp_path: Path) -> None:
    settings = settings_for(tls_broker, tmp_path, tls_ca=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match=r"mqtt\.tls_ca"):
        start_mqtt(settings, FakeAssistant())


def test_missing_password_file(password_broker: Broker, tmp_path: Path) -> None:
    settings = settings_for(
        password_broker, tmp_path, username="ttbt5", password_file=tmp_path / "nope"
    )
    with pytest.raises(ConfigError, match="cannot read secret file"):
        start_mqtt(settings, FakeAssistant())
