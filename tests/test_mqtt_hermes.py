"""Rhasspy Hermes topics through a real broker."""

from __future__ import annotations

import json
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

from firmware_app.core.messages import Command
from firmware_app.edges.mqtt import MqttBridge, start_mqtt


@pytest.fixture
def bridge(broker: Broker, tmp_path: Path, assistant: FakeAssistant) -> Iterator[MqttBridge]:
    with connected_bridge(broker, tmp_path, assistant, hermes=True) as b:
        yield b


def test_a_recognised_request(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    site = bridge.topics.device_id
    assistant.emit("wake", model="hey_jarvis", score=0.87)
    assistant.emit("listening")
    assistant.emit("speech_end")
    assistant.emit("transcript", text="turn on the kitchen light")
    assistant.emit("intent", name="lights", slots={"room": "kitchen", "state": "on"})
    assistant.emit("reply", text="Okay.", source="local")
    local = {"utterance": 7, "origin": "local", "request_id": None}
    assistant.emit("speak_start", **local)
    assistant.emit("speak_end", **local, cut=False)
    assistant.emit("volume", volume=40)  # a marker published after them

    hot = listener.wait_for("hermes/hotword/hey_jarvis/detected").json()
    assert hot["modelId"] == "hey_jarvis" and hot["siteId"] == site
    assert hot["currentSensitivity"] == 0.87
    session = hot["sessionId"]
    assert session

    text = listener.wait_for("hermes/asr/textCaptured").json()
    assert text["text"] == "turn on the kitchen light"
    assert (text["siteId"], text["sessionId"], text["wakewordId"]) == (site, session, "hey_jarvis")
    assert {"likelihood", "seconds"} <= set(text)

    intent = listener.wait_for("hermes/intent/lights").json()
    assert intent["intent"] == {"intentName": "lights", "confidenceScore": 1.0}
    assert intent["input"] == "turn on the kitchen light"
    assert intent["siteId"] == site and intent["sessionId"] == session
    slots = {s["slotName"]: s for s in intent["slots"]}
    assert slots["room"]["value"] == {"kind": "Unknown", "value": "kitchen"}
    assert slots["room"]["rawValue"] == "kitchen" and slots["room"]["entity"] == "room"

    listener.wait_for(bridge.topics.event("volume"))
    assert not listener.on("hermes/tts/sayFinished")  # only for speech Hermes asked for
    assert not listener.on("hermes/nlu/intentNotRecognized")
    assert not any(m.topic.startswith("hermes/audioServer") for m in listener.messages)


def test_not_recognised_when_answered_without_a_local_intent(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    assistant.emit("wake", model="alexa", score=0.7)
    assistant.emit("transcript", text="why is the sky blue")
    assistant.emit("reply", text="Because of scattering.", source="llm")
    body = listener.wait_for("hermes/nlu/intentNotRecognized").json()
    assert body["input"] == "why is the sky blue" and body["siteId"] == bridge.topics.device_id
    assert not [m for m in listener.messages if m.topic.startswith("hermes/intent/")]


def test_tts_say_and_start_session(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener
) -> None:
    site = bridge.topics.device_id
    listener.publish(
        "hermes/tts/say", json.dumps({"text": "Dinner is ready", "siteId": site, "id": "abc-1"})
    )
    wait_until(lambda: len(assistant.commands()) == 1)
    say = assistant.commands()[0]
    assert (say.name, say.args, say.source) == ("say", {"text": "Dinner is ready"}, "hermes")
    finished = listener.wait_for("hermes/tts/sayFinished").json()
    assert finished["id"] == "abc-1" and finished["siteId"] == site

    listener.publish(
        "hermes/dialogueManager/startSession",
        json.dumps({"siteId": site, "init": {"type": "action"}}),
    )
    listener.publish(
        "hermes/dialogueManager/startSession",
        json.dumps({"init": {"type": "notification", "text": "Door open"}}),
    )
    wait_until(lambda: len(assistant.commands()) == 3)
    names = [(c.name, c.args) for c in assistant.commands()]
    assert names[1:] == [("listen", {}), ("say", {"text": "Door open"})]


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("hermes/tts/say", b'{"text": "for another room", "siteId": "bedroom"}'),
        ("hermes/tts/say", b"not json"),
        ("hermes/tts/say", b"\xff\xfe"),
        ("hermes/tts/say", b'{"text": 12}'),
        ("hermes/tts/say", b'["text"]'),
        ("hermes/tts/say", b'{"text": "' + b"a" * 5000 + b'"}'),
        ("hermes/dialogueManager/startSession", b'{"init": {"type": "chat"}}'),
        ("hermes/dialogueManager/startSession", b'{"siteId": "elsewhere"}'),
    ],
)
def test_ignored_requests(
    bridge: MqttBridge, assistant: FakeAssistant, listener: Listener, topic: str, payload: bytes
) -> None:
    listener.publish(topic, payload)
    listener.publish(bridge.topics.cmd("stop"), "")  # a marker handled after it
    listener.wait_for(bridge.topics.cmd_result)
    assert [c.name for c in assistant.commands()] == ["stop"]
    assert all(isinstance(m, Command) for m in assistant.posted)


def test_hermes_off_by_default(broker: Broker, tmp_path: Path, listener: Listener) -> None:
    assistant = FakeAssistant()
    bridge = start_mqtt(settings_for(broker, tmp_path), assistant)
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected)
        listener.publish("hermes/tts/say", json.dumps({"text": "hello"}))
        assistant.emit("wake", model="hey_jarvis", score=0.9)
        listener.wait_for(bridge.topics.event("wake"))
        assert not [m for m in listener.messages if m.topic.startswith("hermes/hotword")]
        assert assistant.commands() == []
    finally:
        bridge.close()


@pytest.mark.parametrize(
    ("event", "fields", "finished"),
    [
        ("speak_end", {"origin": "hermes", "request_id": "b-2", "cut": False}, "b-2"),
        ("speak_end", {"origin": "hermes", "request_id": "c-3", "cut": True}, "c-3"),
        ("speak_dropped", {"origin": "hermes", "request_id": "d-4", "reason": "stopped"}, "d-4"),
        ("speak_end", {"origin": "hermes", "request_id": None, "cut": False}, None),
        ("speak_end", {"origin": "local", "request_id": None, "cut": False}, "none"),
        ("speak_end", {"origin": "cmd", "request_id": "x", "cut": False}, "none"),
        ("speak_end", {}, "none"),
    ],
)
def test_say_finished_names_the_hermes_utterance_that_ended(
    event: str, fields: dict[str, object], finished: str | None
) -> None:
    from firmware_app.core.events import Event
    from firmware_app.edges.mqtt.hermes import Hermes

    hermes = Hermes("kitchen", lambda msg: None)
    out = hermes.translate(Event(event, 1.0, 1.0, {"utterance": 3, **fields}))
    if finished == "none":
        assert out == []
    else:
        ((topic, body),) = out
        assert topic == "hermes/tts/sayFinished"
        assert body["id"] == finished and body["siteId"] == "kitchen"
