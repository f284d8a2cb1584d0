"""Automations match answers to requests by ``id``, and a command published with the retain
flag (a common ``mqtt.publish`` slip) is answered but never run: otherwise the broker would
replay it at every reconnect and restart. Real Mosquitto."""

from __future__ import annotations

from pathlib import Path

from mqtt_broker import (
    Broker,
    FakeAssistant,
    Listener,
    connected_bridge,
    settings_for,
    wait_until,
)

from firmware_app.edges.mqtt import start_mqtt
from firmware_app.edges.mqtt.commands import CommandHandler, request_id


def test_request_id_is_taken_only_from_a_small_json_object() -> None:
    assert request_id(b'{"volume": 3, "id": "kitchen-7"}') == "kitchen-7"
    assert request_id(b'{"id": 42}') == 42
    for payload in (b"40", b'"text"', b'{"id": true}', b'{"id": [1]}', b"{bad", b""):
        assert request_id(payload) is None
    assert request_id(b'{"id": "' + b"x" * 65 + b'"}') is None


def test_every_answer_carries_the_request_id() -> None:
    results: list[dict] = []
    held: list = []
    handler = CommandHandler(held.append, results.append)
    handler.handle("volume", b'{"volume": 30, "id": "a1"}')
    handler.handle("say", b'{"text": " ", "id": 7}')
    handler.handle("stop", b'{"id": "s"}')
    handler.handle("volume", b'{"volume": 30, "id": [1]}')
    assert [c.args for c in held] == [{"volume": 30}, {}]
    for cmd in held:
        cmd.reply(True, None)
    by_id = {r["id"]: r for r in results}
    assert by_id["a1"]["ok"] is True and by_id["s"]["ok"] is True
    assert by_id[7]["ok"] is False and "blank" in by_id[7]["error"]
    assert by_id[None]["ok"] is False and by_id[None]["error"].startswith("id:")
    assert handler.in_flight == 0


def test_id_round_trip_over_the_broker(
    broker: Broker, tmp_path: Path, assistant: FakeAssistant, listener: Listener
) -> None:
    with connected_bridge(broker, tmp_path, assistant) as bridge:
        listener.publish(bridge.topics.cmd("volume"), '{"volume": 25, "id": "r-9"}')
        result = listener.wait_for(bridge.topics.cmd_result).json()
        assert result == {"command": "volume", "id": "r-9", "ok": True, "error": None}


def test_a_retained_command_is_answered_and_never_run(
    broker: Broker, tmp_path: Path, listener: Listener
) -> None:
    settings = settings_for(broker, tmp_path)
    topic = f"ttbt5/{settings.mqtt.device_id}/cmd/volume"
    listener.publish(topic, '{"volume": 5, "id": "stale"}', retain=True)
    assistant = FakeAssistant()
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        assert bridge.topics.cmd("volume") == topic
        reply = listener.wait_for(bridge.topics.cmd_result).json()
        assert reply["ok"] is False and reply["id"] == "stale"
        assert "retain" in reply["error"]
        # a live command on the same topic still works
        mark = listener.mark()
        listener.publish(topic, "40")
        live = listener.wait_for(bridge.topics.cmd_result, after=mark).json()
        assert live["ok"] is True
        wait_until(lambda: len(assistant.commands()) == 1)
        assert assistant.commands()[0].args == {"volume": 40}
    finally:
        bridge.close()
        listener.publish(topic, b"", retain=True)  # leave the broker as it was
