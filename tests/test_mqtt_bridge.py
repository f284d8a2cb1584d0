"""The bridge against a real Mosquitto: discovery, retained topics, events, commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_broker import (
    Broker,
    FakeAssistant,
    Listener,
    connected_bridge,
    settings_for,
    wait_until,
)

from firmware_app.config.settings import LlmSettings, UpdateSettings
from firmware_app.core.messages import Notice
from firmware_app.edges.mqtt import MqttBridge, start_mqtt
from firmware_app.edges.mqtt.discovery import STATES


@pytest.fixture
def bridge(broker: Broker, tmp_path: Path, assistant: FakeAssistant) -> Iterator[MqttBridge]:
    with connected_bridge(broker, tmp_path, assistant) as b:
        yield b


def test_off_without_host(tmp_path: Path) -> None:
    from firmware_app.config.settings import Settings

    assert start_mqtt(Settings(data_dir=tmp_path), FakeAssistant()) is None


def test_status_retained_online_then_offline_on_close(
    broker: Broker, tmp_path: Path, assistant: FakeAssistant
) -> None:
    bridge = start_mqtt(settings_for(broker, tmp_path), assistant)
    assert bridge is not None
    status = bridge.topics.status
    wait_until(lambda: bridge.connected)
    first = Listener(broker, (status,))
    try:  # "online" is out (live or retained, depending on who was first at the broker)
        assert first.wait_for(status).text == "online"
    finally:
        first.close()
    late = Listener(broker, (status,))  # subscribes after the fact: gets the retained value
    try:
        msg = late.wait_for(status)
        assert msg.text == "online" and msg.retain
        bridge.close()
        assert late.wait_for(status, lambda m: m.text == "offline").text == "offline"
    finally:
        late.close()
    again = Listener(broker, (status,))
    try:
        assert again.wait_for(status).text == "offline"
    finally:
        again.close()
    assert not any(isinstance(m, Notice) for m in assistant.posted)


def test_discovery_payloads(broker: Broker, tmp_path: Path, listener: Listener) -> None:
    settings = settings_for(broker, tmp_path).model_copy(
        update={
            "llm": LlmSettings(url="http://127.0.0.1:9/v1"),
            "update": UpdateSettings(url="http://127.0.0.1:9/"),
        }
    )
    bridge = start_mqtt(settings, FakeAssistant())
    assert bridge is not None
    try:
        dev = bridge.topics.device_id
        prefix = f"homeassistant/{{}}/ttbt5_{dev}/{{}}/config"
        expected = {
            ("sensor", "state"),
            ("switch", "mute"),
            ("number", "volume"),
            ("button", "listen"),
            ("sensor", "cpu_temperature"),
            ("sensor", "response_latency"),
            ("sensor", "wake_count"),
            ("binary_sensor", "cloud"),
            ("update", "firmware"),
        }
        configs = {}
        for component, key in expected:
            configs[key] = listener.wait_for(prefix.format(component, key)).json()
        # retained: a client that subscribes afterwards gets them all
        late = Listener(broker, (f"homeassistant/+/ttbt5_{dev}/+/config",))
        try:
            for component, key in expected:
                assert late.wait_for(prefix.format(component, key)).retain
        finally:
            late.close()
        ids = {c["unique_id"] for c in configs.values()}
        assert len(ids) == len(expected)
        for config in configs.values():
            assert config["availability_topic"] == f"ttbt5/{dev}/status"
            assert config["device"]["identifiers"] == [f"ttbt5_{dev}"]
            assert {"name", "manufacturer", "model", "sw_version"} <= set(config["device"])
        state = configs["state"]
        assert state["device_class"] == "enum" and state["options"] == list(STATES)
        assert state["state_topic"] == f"ttbt5/{dev}/state"
        assert configs["mute"]["command_topic"] == f"ttbt5/{dev}/cmd/mute"
        volume = configs["volume"]
        assert (volume["min"], volume["max"], volume["mode"]) == (0, 100, "slider")
        assert volume["unit_of_measurement"] == "%"
        assert configs["listen"]["command_topic"] == f"ttbt5/{dev}/cmd/listen"
        temp = configs["cpu_temperature"]
        assert temp["device_class"] == "temperature"
        assert temp["state_class"] == "measurement"
        assert temp["entity_category"] == "diagnostic"
        latency = configs["response_latency"]
        assert latency["unit_of_measurement"] == "ms"
        assert latency["entity_category"] == "diagnostic"
        assert configs["cloud"]["device_class"] == "connectivity"
        assert configs["firmware"]["command_topic"] == f"ttbt5/{dev}/cmd/update"
        # transcripts are not opted in: the entity is removed (empty retained config)
        removed = listener.wait_for(prefix.format("sensor", "last_transcript"))
        assert removed.payload == b""
    finally:
        bridge.close()


def test_transcript_entity_when_opted_in(
    broker: Broker, tmp_path: Path, listener: Listener
) -> None:
    bridge = start_mqtt(settings_for(broker, tmp_path, publish_transcripts=True), FakeAssistant())
    assert bridge is not None
    try:
        topic = f"homeassistant/sensor/ttbt5_{bridge.topics.device_id}/last_transcript/config"
        config = listener.wait_for(topic).json()
        assert config["state_topic"] == bridge.topics.event("transcript")
        assert "[:255]" in config["value_template"]
        assert config["json_attributes_topic"] == bridge.topics.event("transcript")
    finally:
        bridge.close()


def test_state_topic_follows_state_events(
    broker: Broker, bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    state = bridge.topics.state
    assert listener.wait_for(state).text == "idle"
    for name in ("listening", "thinking", "speaking", "idle"):
        mark = listener.mark()
        assistant.emit("state", state=name)
        assert listener.wait_for(state, after=mark).text == name
    assistant.emit("state", state="muted")
    listener.wait_for(bridge.topics.event("state"), lambda m: m.json()["state"] == "muted")
    late = Listener(broker, (state,))
    try:
        msg = late.wait_for(state)
        assert msg.text == "muted" and msg.retain
    finally:
        late.close()


def test_events_published_with_time(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    emitted = assistant.emit("wake", model="hey_jarvis", score=0.91)
    msg = listener.wait_for(bridge.topics.event("wake"))
    body = msg.json()
    assert body["type"] == "wake" and body["model"] == "hey_jarvis" and body["score"] == 0.91
    assert body["wall"] == round(emitted.wall, 4)
    assert abs(body["ts"] - msg.at) < 5


def test_transcripts_absent_unless_opted_in(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    assistant.emit("transcript", text="turn on the kitchen light")
    assistant.emit("reply", text="Okay, kitchen light on.", source="local")
    transcript = listener.wait_for(bridge.topics.event("transcript")).json()
    reply = listener.wait_for(bridge.topics.event("reply")).json()
    assert "text" not in transcript
    assert "text" not in reply and reply["source"] == "local"
    for m in listener.messages:
        assert b"kitchen" not in m.payload, m.topic


def test_transcripts_published_when_opted_in(
    broker: Broker, tmp_path: Path, listener: Listener
) -> None:
    assistant = FakeAssistant()
    bridge = start_mqtt(settings_for(broker, tmp_path, publish_transcripts=True), assistant)
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected)
        assistant.emit("transcript", text="what time is it")
        body = listener.wait_for(bridge.topics.event("transcript")).json()
        assert body["text"] == "what time is it"
    finally:
        bridge.close()


def test_health_and_metrics(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    health = listener.wait_for(bridge.topics.health).json()
    for key in (
        "version",
        "boot_time",
        "cpu_percent",
        "cpu_temp_c",
        "throttled",
        "memory",
        "disk_free_mb",
        "audio",
        "wake_count",
        "errors",
        "state",
        "muted",
        "volume",
    ):
        assert key in health, key
    assert health["memory"]["total_mb"] > 0
    assert health["cloud"] is None  # no cloud LLM configured
    # one request: the metrics topic carries its latencies
    assistant.emit("wake", model="hey_jarvis", score=0.9)
    assistant.emit("listening")
    assistant.emit("speech_start")
    assistant.emit("speech_end")
    assistant.emit("transcript", text="what time is it")
    assistant.emit("intent", name="time", slots={})
    assistant.emit("reply", text="It is noon.", source="local")
    assistant.emit("speak_start")
    assistant.emit("speak_end")
    metrics = listener.wait_for(
        bridge.topics.metrics, lambda m: m.json()["latency_ms"]["response"]["count"] == 1
    ).json()
    assert metrics["wake_count"] == 1 and metrics["requests"] == 1
    for stage in ("wake_to_listening", "stt_final", "tts_first_audio", "response"):
        assert metrics["latency_ms"][stage]["p50"] is not None, stage


def test_health_republished_on_mute_and_volume(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    listener.wait_for(bridge.topics.health)
    listener.publish(bridge.topics.cmd("mute"), "ON")
    listener.wait_for(bridge.topics.health, lambda m: m.json()["muted"] is True)
    listener.publish(bridge.topics.cmd("volume"), "35")
    listener.wait_for(bridge.topics.health, lambda m: m.json()["volume"] == 35)


@pytest.mark.parametrize(
    ("command", "payload", "check"),
    [
        ("say", "Hello there", lambda a: a.args == {"text": "Hello there"}),
        ("say", '{"text": "Hi"}', lambda a: a.args == {"text": "Hi"}),
        ("ask", '{"text": "what time is it"}', lambda a: a.args == {"text": "what time is it"}),
        ("listen", "", lambda a: a.args == {}),
        ("listen", "PRESS", lambda a: a.args == {}),
        ("stop", "", lambda a: a.args == {}),
        ("mute", "ON", lambda a: a.args == {"muted": True}),
        ("mute", '{"muted": false}', lambda a: a.args == {"muted": False}),
        ("volume", "40", lambda a: a.args == {"volume": 40}),
        ("volume", '{"volume": 100}', lambda a: a.args == {"volume": 100}),
    ],
)
def test_command_round_trip(
    bridge: MqttBridge,
    assistant: FakeAssistant,
    listener: Listener,
    command: str,
    payload: str,
    check,
) -> None:
    listener.publish(bridge.topics.cmd(command), payload)
    result = listener.wait_for(bridge.topics.cmd_result).json()
    assert result == {"command": command, "id": None, "ok": True, "error": None}
    (cmd,) = assistant.commands()
    assert cmd.name == command and check(cmd)


def test_update_not_available_is_reported(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    listener.publish(bridge.topics.cmd("update"), "install")
    result = listener.wait_for(bridge.topics.cmd_result).json()
    assert result["command"] == "update" and result["ok"] is False
    assert "not available" in result["error"]


@pytest.mark.parametrize(
    ("command", "payload", "words"),
    [
        ("volume", "101", "less than or equal to 100"),
        ("volume", '"loud"', "whole number"),
        ("volume", '{"volume": "40"}', "volume"),
        ("mute", "maybe", "mute wants"),
        ("say", '{"text": 5}', "text"),
        ("say", '{"text": "hi", "extra": 1}', "unknown field"),
        ("say", "", "empty"),
        ("listen", "now please", "no arguments"),
        ("launch", "", "unknown command"),
    ],
)
def test_bad_command_gets_error_and_nothing_happens(
    bridge: MqttBridge,
    assistant: FakeAssistant,
    listener: Listener,
    command: str,
    payload: str,
    words: str,
) -> None:
    listener.publish(bridge.topics.cmd(command), payload)
    result = listener.wait_for(bridge.topics.cmd_result).json()
    assert result["command"] == command and result["ok"] is False
    assert words in result["error"]
    assert assistant.posted == []


def test_oversize_and_invalid_utf8(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    listener.publish(bridge.topics.cmd("say"), b"x" * 5000)
    first = listener.wait_for(bridge.topics.cmd_result)
    assert "too large" in first.json()["error"]
    mark = listener.mark()
    listener.publish(bridge.topics.cmd("say"), b"\xff\xfe hello")
    second = listener.wait_for(bridge.topics.cmd_result, after=mark)
    assert "UTF-8" in second.json()["error"]
    assert assistant.posted == []


def test_ha_birth_republishes_discovery(bridge: MqttBridge, listener: Listener) -> None:
    config = f"homeassistant/sensor/ttbt5_{bridge.topics.device_id}/state/config"
    listener.wait_for(config)
    mark = listener.mark()
    listener.publish("homeassistant/status", "online")
    again = listener.wait_for(config, after=mark)
    assert again.json()["device_class"] == "enum"
    listener.wait_for(bridge.topics.state, after=mark)
    mark = listener.mark()
    listener.publish("homeassistant/status", "offline")  # not a birth: nothing is resent
    listener.publish(bridge.topics.cmd("stop"), "")
    listener.wait_for(bridge.topics.cmd_result, after=mark)
    assert not [m for m in listener.messages[mark:] if m.topic == config]


def test_custom_publish(bridge: MqttBridge, listener: Listener) -> None:
    bridge.publish("home/kitchen/light/set", "ON")
    assert listener.wait_for("home/kitchen/light/set").text == "ON"
    bridge.publish("home/kitchen/light/state", "ON", qos=0, retain=True)
    listener.wait_for("home/kitchen/light/state")
    for bad in ("", "home/+/set", "home/#"):
        with pytest.raises(ValueError):
            bridge.publish(bad, "ON")


def test_cloud_and_update_entities_follow_events(
    broker: Broker, tmp_path: Path, listener: Listener
) -> None:
    assistant = FakeAssistant()
    settings = settings_for(broker, tmp_path, health_interval_s=60).model_copy(
        update={
            "llm": LlmSettings(url="http://127.0.0.1:9/v1"),
            "update": UpdateSettings(url="http://127.0.0.1:9/"),
        }
    )
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        # The cloud entity shows the online model's own ``available`` (one source of
        # truth); a breaker event only makes the health report go out at once.
        health = bridge.topics.health
        assistant.llm = {"available": False, "state": "open"}
        assistant.emit("breaker", state="open")
        listener.wait_for(health, lambda m: m.json()["cloud"] == "OFF")
        assistant.llm = {"available": True, "state": "closed"}
        assistant.emit("breaker", state="closed")
        listener.wait_for(health, lambda m: m.json()["cloud"] == "ON")
        # One failed question makes it unavailable with the breaker still closed: the
        # fallback reply is enough for the health report to follow at once.
        assistant.llm = {"available": False, "state": "closed"}
        assistant.emit("reply", text="Sorry.", source="fallback")
        listener.wait_for(health, lambda m: m.json()["cloud"] == "OFF", timeout=5)
        assistant.emit("update", step="check", ok=True, message="", version="0.2.0", active=False)
        body = listener.wait_for(health, lambda m: m.json()["latest_version"] == "0.2.0").json()
        assert body["version"] == "0.1.0" and body["update_server"] == "ok"
        # A frozen release server (its signed pointer expired) shows in health until a
        # check succeeds again.
        stale = "update server stale since 2026-11-30 10:00 (latest.json expired)"
        assistant.emit("update", step="check", ok=False, message=stale, active=False)
        listener.wait_for(health, lambda m: m.json()["update_server"] == stale)
        assistant.emit("update", step="check", ok=True, message="", version="0.2.0", active=False)
        listener.wait_for(health, lambda m: m.json()["update_server"] == "ok")
    finally:
        bridge.close()
