"""The outbox on its own: bounded queues with a drop-oldest policy, command results before
events, old messages dropped instead of sent late, the acknowledgement window, and messages
taken back from paho after a lost connection. (The bridge tests run it against Mosquitto.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from firmware_app.core.errors import BadInputError
from firmware_app.core.events import wall_now
from firmware_app.edges.mqtt.outbox import WINDOW, Outbox, Outgoing, check_publish


@dataclass
class Info:
    rc: int
    mid: int


@dataclass
class Dropped:
    mid: int


class RecordingClient:
    """Stands in for paho's client: records publishes and hands out message ids."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str, int, bool]] = []
        self.rc = mqtt.MQTT_ERR_SUCCESS
        self.mid = 0
        self.unacked: list[int] = []

    def publish(self, topic: str, payload: str, qos: int = 0, retain: bool = False) -> Info:
        if self.rc != mqtt.MQTT_ERR_SUCCESS:
            return Info(self.rc, 0)
        self.mid += 1
        self.published.append((topic, payload, qos, retain))
        if qos:
            self.unacked.append(self.mid)
        return Info(self.rc, self.mid)

    def drop_out_messages(self) -> list[Dropped]:
        dropped = [Dropped(mid) for mid in self.unacked]
        self.unacked = []
        return dropped


def event(topic: str, ttl: float | None = 60.0, born: float | None = None) -> Outgoing:
    return Outgoing(topic, "{}", 1, False, wall_now() if born is None else born, ttl)


def make(size: int = 10) -> tuple[Outbox, RecordingClient]:
    client = RecordingClient()
    return Outbox(client, size, lambda: None), client  # type: ignore[arg-type]


def topics(client: RecordingClient) -> list[str]:
    return [t for t, *_ in client.published]


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    box, client = make(size=10)
    for i in range(15):
        box.put(event(f"e/{i}"))
    assert box.queued() == 10 and box.counters["dropped"] == 5
    box.send(lambda: True)
    assert topics(client) == [f"e/{i}" for i in range(5, 15)]


def test_results_go_before_events_and_retained_topics_first() -> None:
    box, client = make()
    box.put(event("e/1"))
    box.put(Outgoing("cmd/result", "{}", 1, False, wall_now(), 60.0, urgent=True))
    box.set_current("status", "online")
    box.send(lambda: True)
    assert topics(client) == ["status", "cmd/result", "e/1"]
    assert client.published[0][3] is True  # retained


def test_too_old_messages_are_dropped_not_sent() -> None:
    box, client = make()
    box.put(event("old", ttl=1.0, born=wall_now() - 5))
    box.put(event("fresh"))
    box.send(lambda: True)
    assert topics(client) == ["fresh"] and box.counters["expired"] == 1


def test_the_window_holds_back_what_the_broker_has_not_acknowledged() -> None:
    box, client = make(size=100)
    for i in range(WINDOW + 8):
        box.put(event(f"e/{i}"))
    box.send(lambda: True)
    assert len(client.published) == WINDOW and box.queued() == 8
    for mid in range(1, 9):
        box.acknowledged(mid)
    box.send(lambda: True)
    assert len(client.published) == WINDOW + 8


def test_unacknowledged_messages_come_back_after_a_reconnect() -> None:
    box, client = make()
    box.set_current("health", "{}")
    box.put(event("e/1"))
    box.put(event("e/2"))
    box.send(lambda: True)
    box.acknowledged(1)  # health, the retained one; e/1 and e/2 remain unacknowledged
    box.reclaim()
    assert box.queued() == 2 and box.in_flight() == 0
    box.mark_all_dirty()
    box.send(lambda: True)
    assert topics(client)[-3:] == ["health", "e/1", "e/2"]


def test_a_refused_publish_stays_queued() -> None:
    box, client = make()
    box.put(event("e/1"))
    client.rc = mqtt.MQTT_ERR_QUEUE_SIZE
    box.send(lambda: True)
    assert box.queued() == 1 and client.published == []
    client.rc = mqtt.MQTT_ERR_SUCCESS
    box.send(lambda: True)
    assert topics(client) == ["e/1"]


@pytest.mark.parametrize(
    ("topic", "payload", "qos"),
    [
        ("", "x", 1),
        ("home/+/set", "x", 1),
        ("home/#", "x", 1),
        ("a\0b", "x", 1),
        ("home/x", "x", 3),
        ("home/x", "x" * (256 * 1024 + 1), 1),
    ],
)
def test_what_cannot_be_published_is_refused(topic: str, payload: str, qos: Any) -> None:
    with pytest.raises(BadInputError):
        check_publish(topic, payload, qos)
