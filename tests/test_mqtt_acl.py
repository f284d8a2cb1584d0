"""The Mosquitto ACL that docs/mqtt.md gives, on a real Mosquitto: a stranger with an
account on the broker reaches neither a speaker's ``cmd/`` nor its group's claims, a
speaker cannot claim under another's name, and Home Assistant can still command."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_broker import Broker, Listener

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"
USERS = {"kitchen": "k-pw", "hall": "h-pw", "homeassistant": "ha-pw", "stranger": "s-pw"}


def documented_acl() -> str:
    text = DOC.read_text()
    section = text[text.index("## Keeping strangers out") :]
    found = re.search(r"```\n(.*?)```", section, re.S)
    assert found, "no ACL example in docs/mqtt.md"
    return found.group(1)


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    workdir = tmp_path_factory.mktemp("mosquitto-acl")
    acl = workdir / "ttbt5.acl"
    acl.write_text(documented_acl())
    broker = Broker(workdir, users=USERS)
    broker.conf.write_text(broker.conf.read_text() + f"acl_file {acl}\n")
    broker.start()
    yield broker
    broker.stop()


def client(broker: Broker, user: str) -> Listener:
    return Listener(broker, ("ttbt5/#",), username=user, password=USERS[user])


def test_the_documented_acl_keeps_strangers_off_cmd_and_group(acl_broker: Broker) -> None:
    kitchen, hall = client(acl_broker, "kitchen"), client(acl_broker, "hall")
    stranger, home = client(acl_broker, "stranger"), client(acl_broker, "homeassistant")
    try:
        for topic in (
            "ttbt5/kitchen/cmd/say",
            "ttbt5/group/default/wake/kitchen/0123abcd",
            "ttbt5/group/default/peers/kitchen",
            "ttbt5/group/default/wake",
        ):
            stranger.publish(topic, b"from a stranger")
        hall.publish("ttbt5/group/default/wake/kitchen/0123", b"hall pretending to be the kitchen")
        home.publish("ttbt5/kitchen/cmd/say", b"dinner is ready")
        hall.publish("ttbt5/group/default/wake/hall/0123", b"a claim of the hall's")
        kitchen.wait_for("ttbt5/kitchen/cmd/say", lambda m: m.payload == b"dinner is ready")
        kitchen.wait_for("ttbt5/group/default/wake/hall/0123")
        time.sleep(0.5)  # anything denied would have arrived by now
        assert not [m for m in kitchen.messages if m.payload.startswith(b"from a stranger")]
        assert not [m for m in kitchen.messages if b"pretending" in m.payload]
        assert not [m for m in stranger.messages if m.topic.startswith("ttbt5/group/")]
    finally:
        for c in (kitchen, hall, stranger, home):
            c.close()
