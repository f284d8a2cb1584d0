"""Command payload validation: unit cases, and hostile payloads (hypothesis) sent through a
real broker to every command topic: each gets exactly one error reply, nothing reaches the
assistant, and the bridge keeps working."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_broker import (
    Broker,
    FakeAssistant,
    Listener,
    settings_for,
    wait_until,
)

from firmware_app.core.messages import Command
from firmware_app.edges.mqtt import MqttBridge, start_mqtt
from firmware_app.edges.mqtt.commands import (
    COMMANDS,
    MAX_PAYLOAD_BYTES,
    CommandError,
    CommandHandler,
    parse_command,
)


@pytest.mark.parametrize(
    ("name", "payload", "args"),
    [
        ("say", b"  Hello  ", {"text": "Hello"}),
        ("say", '"Grüße"'.encode(), {"text": "Grüße"}),
        ("ask", b'{"text": "what time is it"}', {"text": "what time is it"}),
        ("mute", b"off", {"muted": False}),
        ("mute", b"true", {"muted": True}),
        ("mute", b'"ON"', {"muted": True}),
        ("volume", b"0", {"volume": 0}),
        ("volume", b"42.0", {"volume": 42}),
        ("listen", b"{}", {}),
        ("stop", b"PRESS", {}),
        ("update", b"install", {}),
        ("update", b"", {}),
    ],
)
def test_accepted(name: str, payload: bytes, args: dict) -> None:
    assert parse_command(name, payload) == (name, args)


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("say", b"   "),
        ("say", b'{"text": "   "}'),
        ("say", b"[1, 2]"),
        ("say", b"123"),
        ("say", b"null"),
        ("say", b'{"text": null}'),
        ("say", b'{"txt": "hi"}'),
        ("ask", b'{"text": ["a"]}'),
        ("mute", b"1"),
        ("mute", b'{"muted": "yes"}'),
        ("volume", b"-1"),
        ("volume", b"42.5"),
        ("volume", b"true"),
        ("volume", b"NaN"),
        ("volume", b"1e400"),
        ("volume", b'{"volume": 50, "x": 1}'),
        ("stop", b"[]"),
        ("stop", b'{"now": true}'),
        ("result", b""),
        ("SAY", b"hi"),
        ("say", b"[" * 3000),
        ("say", b"x" * (MAX_PAYLOAD_BYTES + 1)),
        ("say", b"\xc3\x28"),
    ],
)
def test_refused(name: str, payload: bytes) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(name, payload)
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 200


def test_error_does_not_echo_long_names() -> None:
    with pytest.raises(CommandError) as info:
        parse_command("x" * 1000, b"")
    assert len(str(info.value)) < 200


@given(name=st.sampled_from(COMMANDS), payload=st.binary(max_size=6000))
@settings(max_examples=400, deadline=None)
def test_any_bytes_parse_or_refuse(name: str, payload: bytes) -> None:
    try:
        command, args = parse_command(name, payload)
    except CommandError as exc:
        assert "\n" not in str(exc)
        return
    assert command == name
    json.dumps(args)


def test_handler_answers_once_and_bounds_in_flight() -> None:
    results: list[dict] = []
    held: list[Command] = []
    handler = CommandHandler(held.append, results.append, limit=3)
    for _ in range(5):
        handler.handle("listen", b"")
    assert len(held) == 3 and handler.in_flight == 3
    assert [r["ok"] for r in results] == [False, False]
    assert all("busy" in r["error"] for r in results)
    for cmd in held:
        assert cmd.reply is not None
        cmd.reply(True, None)
        cmd.reply(False, "twice")  # a second answer is ignored
    assert handler.in_flight == 0
    assert [r["ok"] for r in results[2:]] == [True, True, True]


def test_handler_survives_a_failing_post() -> None:
    results: list[dict] = []

    def post(msg: object) -> None:
        raise RuntimeError("queue closed")

    handler = CommandHandler(post, results.append)
    handler.handle("stop", b"")
    assert results == [{"command": "stop", "id": None, "ok": False, "error": results[0]["error"]}]
    assert handler.in_flight == 0


# -- hostile payloads through the broker ---------------------------------------------------


def _hostile() -> st.SearchStrategy[bytes]:
    invalid_utf8 = st.binary(min_size=1, max_size=300).filter(_not_utf8)
    huge = st.integers(MAX_PAYLOAD_BYTES + 1, 3 * MAX_PAYLOAD_BYTES).map(lambda n: b"{" * n)
    wrong_json = st.one_of(
        st.lists(st.integers(), max_size=5),
        st.dictionaries(
            st.text(max_size=5).filter(lambda k: k not in ("text", "muted", "volume")),
            st.integers(),
            min_size=1,
            max_size=3,
        ),
        st.fixed_dictionaries({"text": st.one_of(st.integers(), st.none(), st.lists(st.text()))}),
        st.fixed_dictionaries({"muted": st.one_of(st.integers(), st.text(), st.none())}),
        st.fixed_dictionaries(
            {
                "volume": st.one_of(
                    st.integers(101),
                    st.integers(max_value=-1),
                    st.text(),
                    st.floats(allow_nan=True),
                )
            }
        ),
    ).map(lambda v: json.dumps(v).encode())
    return st.one_of(invalid_utf8, huge, wrong_json)


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.fixture(scope="module")
def hostile_setup(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MqttBridge, FakeAssistant, Listener]]:
    assistant = FakeAssistant()
    bridge = start_mqtt(settings_for(broker, tmp_path_factory.mktemp("h")), assistant)
    assert bridge is not None
    wait_until(lambda: bridge.connected)
    client = Listener(broker, (bridge.topics.cmd_result,))
    yield bridge, assistant, client
    client.close()
    bridge.close()


_lock = threading.Lock()
_sent = [0]


@given(name=st.sampled_from([*COMMANDS, "nope"]), payload=_hostile())
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_hostile_payload_gets_one_error_reply(
    hostile_setup: tuple[MqttBridge, FakeAssistant, Listener], name: str, payload: bytes
) -> None:
    bridge, assistant, client = hostile_setup
    with _lock:
        mark = client.mark()
        client.publish(bridge.topics.cmd(name), payload)
        _sent[0] += 1
        reply = client.wait_for(bridge.topics.cmd_result, after=mark).json()
        assert reply["command"] == name and reply["ok"] is False and reply["error"]
        assert assistant.posted == []


def test_still_working_after_hostile_payloads(
    hostile_setup: tuple[MqttBridge, FakeAssistant, Listener],
) -> None:
    bridge, assistant, client = hostile_setup
    mark = client.mark()
    client.publish(bridge.topics.cmd("volume"), "20")
    _sent[0] += 1
    reply = client.wait_for(bridge.topics.cmd_result, after=mark).json()
    assert reply == {"command": "volume", "id": None, "ok": True, "error": None}
    assert assistant.volume == 20
    # exactly one reply for every command sent, no more
    wait_until(lambda: bridge.queued() == 0)
    assert len(client.on(bridge.topics.cmd_result)) == _sent[0]
