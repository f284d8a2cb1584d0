"""A broker that is down at start, goes away mid-run, comes back; a service killed hard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mqtt_broker import (
    Broker,
    FakeAssistant,
    Listener,
    assert_will_after_kill,
    settings_for,
    wait_until,
)

from firmware_app.core.events import Event, wall_now
from firmware_app.core.messages import Notice
from firmware_app.edges.mqtt import start_mqtt

TESTS = Path(__file__).parent


def notices(assistant: FakeAssistant) -> list[str]:
    return [m.kind for m in assistant.posted if isinstance(m, Notice)]


def test_broker_down_at_start_then_up(tmp_path: Path) -> None:
    broker = Broker(tmp_path)  # port chosen, not started yet
    assistant = FakeAssistant()
    settings = settings_for(broker, tmp_path, reconnect_max_s=1)
    began = time.monotonic()
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    assert time.monotonic() - began < 5  # returns at once, does not wait for the broker
    try:
        wait_until(lambda: "offline" in notices(assistant), what="offline notice")
        assert assistant.posted[0] == Notice("offline", {"where": "mqtt"})
        for _ in range(1000):  # the assistant's thread is never held up
            assistant.emit("led", pattern="idle")
        assistant.emit("state", state="muted")
        broker.start()
        listener = Listener(broker, (bridge.topics.status, bridge.topics.state))
        try:
            assert listener.wait_for(bridge.topics.status, timeout=20).text == "online"
            assert listener.wait_for(bridge.topics.state).text == "muted"
            wait_until(lambda: "online" in notices(assistant), what="online notice")
            assert notices(assistant) == ["offline", "online"]
        finally:
            listener.close()
    finally:
        bridge.close()
        broker.stop()


def test_broker_restart_mid_run(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    assistant = FakeAssistant()
    ttl = 30.0
    settings = settings_for(broker, tmp_path, reconnect_max_s=1, event_ttl_s=ttl, queue_size=50)
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected)
        assistant.emit("state", state="listening")
        broker.stop()
        wait_until(lambda: not bridge.connected, what="disconnect noticed")
        wait_until(lambda: notices(assistant) == ["offline"], what="offline notice")

        # while the broker is away: one event that is already too old, fresh ones, a
        # flood that must not grow memory, a custom publish, and a state change
        for i in range(500):
            assistant.emit("led", pattern=f"p{i}")
        old = Event("intent", 0.0, wall_now() - 2 * ttl, {"name": "heater_on", "slots": {}})
        assistant.bus.publish(old)
        assert bridge.queued() <= 3 * 50
        assistant.emit("intent", name="lights_on", slots={"room": "kitchen"})
        bridge.publish("home/kitchen/light/set", "ON")
        assistant.emit("state", state="speaking")
        assert bridge.queued() <= 3 * 50
        broker.start()
        listener = Listener(broker)
        try:
            wait_until(lambda: bridge.connected, timeout=20, what="reconnect")
            assert listener.wait_for(bridge.topics.state).text == "speaking"
            assert listener.wait_for(bridge.topics.status).text == "online"
            intent = bridge.topics.event("intent")
            assert listener.wait_for(intent).json()["name"] == "lights_on"
            listener.wait_for("home/kitchen/light/set")
            # a marker sent after everything else: once it is in, nothing else is coming
            assistant.emit("speak_end")
            listener.wait_for(bridge.topics.event("speak_end"))
            names = [m.json()["name"] for m in listener.on(intent)]
            assert names == ["lights_on"]  # once, and the expired one never
            assert len(listener.on("home/kitchen/light/set")) == 1
            leds = listener.on(bridge.topics.event("led"))
            assert 0 < len(leds) <= 50
            assert leds[-1].json()["pattern"] == "p499"  # the oldest were dropped first
            assert bridge.counters["dropped"] >= 400
            assert bridge.counters["expired"] >= 1
            wait_until(lambda: notices(assistant) == ["offline", "online"], what="online")
        finally:
            listener.close()
    finally:
        bridge.close()
        broker.stop()


def test_close_without_broker_does_not_hang(tmp_path: Path) -> None:
    broker = Broker(tmp_path)  # never started
    bridge = start_mqtt(settings_for(broker, tmp_path), FakeAssistant())
    assert bridge is not None
    began = time.monotonic()
    bridge.close()
    assert time.monotonic() - began < 10


CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from mqtt_broker import FakeAssistant
    from firmware_app.config.settings import MqttSettings, Settings
    from firmware_app.edges.mqtt import start_mqtt

    settings = Settings(data_dir={data!r}, mqtt=MqttSettings(host="127.0.0.1", port={port},
                        device_id={device!r}, keepalive_s=5))
    bridge = start_mqtt(settings, FakeAssistant())
    while not bridge.connected:
        time.sleep(0.01)
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_last_will_when_killed(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    device = "lwt-child"
    status = f"ttbt5/{device}/status"
    script = tmp_path / "child.py"
    script.write_text(
        CHILD.format(tests=str(TESTS), data=str(tmp_path), port=broker.port, device=device)
    )
    listener = Listener(broker, (status,))
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        listener.wait_for(status, lambda m: m.text == "online")
        assert_will_after_kill(broker, listener, child.pid, status)
    finally:
        if child.poll() is None:
            child.kill()
        listener.close()
        broker.stop()


def test_home_command_is_not_sent_late(tmp_path: Path) -> None:
    """'Turn on the heater' said while the broker is away must not fire when it returns
    after ``event_ttl_s``."""
    broker = Broker(tmp_path)
    broker.start()
    assistant = FakeAssistant()
    settings = settings_for(broker, tmp_path, reconnect_max_s=1, event_ttl_s=1)
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected)
        broker.stop()
        wait_until(lambda: not bridge.connected)
        bridge.publish("home/heater/set", "ON")
        time.sleep(1.5)
        broker.start()
        listener = Listener(broker, ("home/#",))
        try:
            wait_until(lambda: bridge.connected, timeout=20)
            bridge.publish("home/marker", "after")
            listener.wait_for("home/marker")
            assert listener.on("home/heater/set") == []
            assert bridge.counters["expired"] == 1
        finally:
            listener.close()
    finally:
        bridge.close()
        broker.stop()


@pytest.mark.parametrize(("ttl", "delivered"), [(1.0, 0), (60.0, 1)])
def test_unacknowledged_messages_follow_the_same_age_rule(
    tmp_path: Path, ttl: float, delivered: int
) -> None:
    """The broker freezes (no acknowledgements) and then dies, with a home publish already
    on the wire: after the restart it arrives once if still young, never if too old."""
    broker = Broker(tmp_path)
    broker.start()
    settings = settings_for(broker, tmp_path, reconnect_max_s=1, event_ttl_s=ttl)
    bridge = start_mqtt(settings, FakeAssistant())
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected)
        wait_until(lambda: bridge.queued() == 0)
        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        bridge.publish("home/heater/set", "ON")
        wait_until(lambda: bridge.queued() == 0, what="handed to the network")
        broker.kill()
        wait_until(lambda: not bridge.connected)
        time.sleep(1.5)
        broker.start()
        listener = Listener(broker, ("home/#",))
        try:
            wait_until(lambda: bridge.connected, timeout=20)
            bridge.publish("home/marker", "after")
            listener.wait_for("home/marker")
            assert len(listener.on("home/heater/set")) == delivered
        finally:
            listener.close()
    finally:
        bridge.close()
        broker.stop()
