"""The assistant behind a real bridge and a real Mosquitto: Hermes' hotword toggles stop
and restart wakes (as a message to the assistant), a request nothing understood is
announced on ``hermes/nlu/intentNotRecognized``, and ``cmd/false_wake`` while the answer
plays stops it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import SILENT, SPEECH, WAKE, Rig, ScriptedStt
from mqtt_broker import Broker, Listener, settings_for

from firmware_app.edges.mqtt import MqttBridge, start_mqtt


@pytest.fixture
def rig_bridge(broker: Broker, tmp_path: Path) -> Iterator[tuple[Rig, MqttBridge]]:
    settings = settings_for(broker, tmp_path, hermes=True)  # transcripts not published
    rig = Rig(settings, stt=ScriptedStt("why is the sky blue", "why is the sky blue"))
    bridge = start_mqtt(settings, rig.assistant)
    assert bridge is not None
    try:
        settle_until(rig, lambda: bridge.connected, "the bridge connected")
        yield rig, bridge
    finally:
        bridge.close()
        rig.close()


def settle_until(rig: Rig, check, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Let the assistant handle what the broker posts until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        rig.settle()
        time.sleep(0.01)


def ask_aloud(rig: Rig) -> None:
    rig.feed(WAKE)
    rig.feed(SPEECH, 0.8)
    rig.feed(SILENT, 1.0)


def test_hotword_toggle_off_and_on(rig_bridge: tuple[Rig, MqttBridge], listener: Listener) -> None:
    rig, bridge = rig_bridge
    site = bridge.topics.device_id
    listener.publish(
        "hermes/hotword/toggleOff", json.dumps({"siteId": site, "reason": "dialogueSession"})
    )
    settle_until(rig, lambda: rig.of("wake_word"), "the wake word turned off")
    assert rig.of("wake_word")[-1].fields == {"on": False, "reasons": ["dialogueSession"]}
    listener.publish("hermes/hotword/toggleOn", json.dumps({"siteId": "another-room"}))
    rig.feed(SILENT, 1.0)
    rig.feed(WAKE)
    rig.feed(SILENT, 0.5)
    assert not rig.of("wake") and rig.assistant.state.value == "idle"

    listener.publish(
        "hermes/hotword/toggleOn", json.dumps({"siteId": site, "reason": "dialogueSession"})
    )
    settle_until(rig, lambda: len(rig.of("wake_word")) == 2, "the wake word turned on")
    assert rig.of("wake_word")[-1].fields == {"on": True, "reasons": []}
    ask_aloud(rig)
    assert len(rig.of("wake")) == 1
    rig.until_idle()
    # nothing understood the request: Hermes flows are told so
    missed = listener.wait_for("hermes/nlu/intentNotRecognized").json()
    assert missed["input"] == "why is the sky blue" and missed["siteId"] == site
    assert not [m for m in listener.messages if m.topic.startswith("hermes/intent/")]


def test_false_wake_stops_the_answer_it_opened(
    rig_bridge: tuple[Rig, MqttBridge], listener: Listener
) -> None:
    rig, bridge = rig_bridge
    ask_aloud(rig)
    settle_until(rig, lambda: rig.assistant.state.value == "speaking", "the answer playing")
    rig.feed(SILENT, 0.4)
    assert rig.speaker.busy()
    listener.publish(bridge.topics.cmd("false_wake"), "")
    settle_until(rig, lambda: rig.of("false_wake"), "the false wake handled")
    [marked] = rig.of("false_wake")
    assert marked.fields["dropped"] == "speaking"
    [end] = rig.of("speak_end")
    assert end.fields["cut"] is True and end.fields["origin"] == "fallback"
    assert rig.assistant.state.value == "idle"
    rig.feed(SILENT, 0.2)
    assert not rig.speaker.busy()
    reply = listener.wait_for(bridge.topics.cmd_result).json()
    assert reply["command"] == "false_wake" and reply["ok"] is True
    listener.wait_for(bridge.topics.event("false_wake"))

    # a wake whose request has ended: counted false, nothing is dropped
    ask_aloud(rig)
    rig.until_idle()
    listener.publish(bridge.topics.cmd("false_wake"), "")
    settle_until(rig, lambda: len(rig.of("false_wake")) == 2, "the second false wake")
    assert rig.of("false_wake")[-1].fields["dropped"] is None


def test_a_toggle_flood_stays_small(rig_bridge: tuple[Rig, MqttBridge], listener: Listener) -> None:
    """A stranger repeating toggleOff, or inventing reasons, cannot grow what the assistant
    holds; a toggleOn without a reason turns the wake word back on."""
    rig, _ = rig_bridge
    off = "hermes/hotword/toggleOff"
    for _ in range(50):
        listener.publish(off, json.dumps({"reason": "same"}))
    for n in range(100):
        listener.publish(off, json.dumps({"reason": f"made-up-{n}"}))
    listener.publish("hermes/hotword/toggleOn", "{}")
    settle_until(
        rig, lambda: rig.of("wake_word") and rig.of("wake_word")[-1].fields["on"], "back on"
    )
    events = rig.of("wake_word")
    assert max(len(e.fields["reasons"]) for e in events) == 16
    assert len(events) <= 1 + 100 + 1  # the 49 repeats of "same" were never posted
    ask_aloud(rig)
    assert len(rig.of("wake")) == 1
