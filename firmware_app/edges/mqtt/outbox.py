"""What waits to be delivered to the broker, and the rules for delivering it.

Knows MQTT and paho, nothing of the assistant: the bridge puts messages in and calls
``send`` from its worker thread while the broker is connected.

- Retained topics (status, discovery, state, health, metrics) are not queued: only their
  latest value is kept, and it is republished on every (re)connect.
- Everything else waits in one of two bounded queues of ``size`` messages, the oldest
  dropped first when full (counted as ``dropped``): ``urgent`` (command results and
  home-automation publishes, sent first and never pushed out by a flood of events) and
  ``events`` (the event log and Hermes messages).
- Messages carry their birth time; one older than its ``ttl`` when it could finally be sent
  is dropped (counted as ``expired``), so nothing is replayed an hour late.
- At most ``WINDOW`` messages are handed to paho and not yet acknowledged. When the
  connection drops with some of them unacknowledged, ``reclaim`` takes them back from paho
  on reconnecting, and they go through the same age check as everything else.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from firmware_app.core.errors import BadInputError
from firmware_app.core.events import wall_now

WINDOW = 32
"""Most messages handed to paho and not yet acknowledged by the broker."""
WINDOW_STALE_S = 10.0
"""An unacknowledged message stops counting against the window after this long."""
MAX_PUBLISH_BYTES = 256 * 1024
"""Largest payload of a home-automation publish."""
MAX_EARLY_ACKS = 100
"""Acknowledgements remembered before their message was recorded (they age out in 5 s)."""


@dataclass(frozen=True)
class Outgoing:
    topic: str
    payload: str
    qos: int
    retain: bool
    born: float
    """``wall`` seconds when the thing it reports happened."""
    ttl: float | None
    urgent: bool = False
    """A command result or a home-automation publish: sent before the event log."""

    def expired(self) -> bool:
        return self.ttl is not None and wall_now() - self.born > self.ttl


def check_publish(topic: str, payload: str, qos: int) -> None:
    """BadInputError unless this is a message one can publish: a topic with text and no
    wildcards, a known QoS, a payload of sensible size."""
    if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
        raise BadInputError(f"not a topic one can publish to: {topic!r}")
    if "\0" in topic or len(topic.encode("utf-8")) > 65535:
        raise BadInputError("topic is not valid")
    if qos not in (0, 1, 2):
        raise BadInputError(f"qos must be 0, 1 or 2, not {qos!r}")
    if len(payload.encode("utf-8")) > MAX_PUBLISH_BYTES:
        raise BadInputError(f"payload larger than {MAX_PUBLISH_BYTES} bytes")


class Outbox:
    """See the module docstring. ``client`` is the paho client messages are handed to."""

    def __init__(self, client: mqtt.Client, size: int, wake: Callable[[], None]) -> None:
        self._client = client
        self._wake = wake
        self._events: deque[Outgoing] = deque(maxlen=size)
        self._urgent: deque[Outgoing] = deque(maxlen=size)
        self._current: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._current_lock = threading.Lock()
        self._sent: dict[int, tuple[float, Outgoing]] = {}
        """Handed to paho, not yet acknowledged by the broker (by message id)."""
        self._acked_early: dict[int, float] = {}
        """Acknowledgements that arrived before we recorded the message (by id, with time;
        acknowledgements of QoS 0 and untracked messages land here too and age out)."""
        self._sent_lock = threading.Lock()
        self.counters = {"dropped": 0, "expired": 0, "published": 0}

    # -- putting things in ---------------------------------------------------------------

    def put(self, msg: Outgoing) -> None:
        queue = self._urgent if msg.urgent else self._events
        if len(queue) == queue.maxlen:
            self.counters["dropped"] += 1
        queue.append(msg)
        if msg.urgent:
            self._wake()

    def set_current(self, topic: str, payload: str) -> None:
        """The latest value of a retained topic; published when it changed."""
        with self._current_lock:
            if self._current.get(topic) == payload and topic not in self._dirty:
                return
            self._current[topic] = payload
            self._dirty.add(topic)

    def mark_all_dirty(self) -> None:
        """Republish every retained topic (a new connection, Home Assistant restarted)."""
        with self._current_lock:
            self._dirty.update(self._current)
        self._wake()

    def queued(self) -> int:
        return len(self._events) + len(self._urgent)

    def pending(self) -> bool:
        return bool(self._events or self._urgent or self._dirty or self.in_flight())

    # -- delivering ----------------------------------------------------------------------

    def send(self, connected: Callable[[], bool]) -> None:
        """Retained topics first, then urgent messages, then events, while ``connected()``
        and the window has room."""
        with self._current_lock:
            retained = [(t, self._current[t]) for t in self._current if t in self._dirty]
            self._dirty.clear()
        for index, (topic, payload) in enumerate(retained):
            if not self._hand_to_paho(Outgoing(topic, payload, 1, True, wall_now(), None)):
                with self._current_lock:  # the rest go out on the next attempt
                    self._dirty.update(t for t, _ in retained[index:])
                return
        for queue in (self._urgent, self._events):
            while queue and connected():
                if self.in_flight() >= WINDOW:
                    self._wake()
                    time.sleep(0.005)
                    return
                msg = queue.popleft()
                if msg.expired():
                    self.counters["expired"] += 1
                    continue
                if not self._hand_to_paho(msg):
                    queue.appendleft(msg)
                    return

    def _hand_to_paho(self, msg: Outgoing) -> bool:
        """False when paho refused it (so it stays ours to send later). A QoS 1 message
        paho accepted is remembered until the broker acknowledges it: if the connection
        drops first, it comes back to our queue (``reclaim``), where its age is checked."""
        # paho calls on_publish holding its own lock: never hold ours while calling paho
        info = self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return False
        if info.rc == mqtt.MQTT_ERR_NO_CONN and msg.qos == 0:
            return False
        if msg.qos > 0:
            with self._sent_lock:
                if self._acked_early.pop(info.mid, None) is None:  # else: already acked
                    self._sent[info.mid] = (time.monotonic(), msg)
        self.counters["published"] += 1
        return True

    def in_flight(self) -> int:
        """Unacknowledged messages; one the broker ignores for long stops counting, so a
        silent broker slows the flow without stopping it."""
        now = time.monotonic()
        with self._sent_lock:
            stale = [mid for mid, (at, _) in self._sent.items() if now - at > WINDOW_STALE_S]
            for mid in stale:
                del self._sent[mid]
            return len(self._sent)

    def acknowledged(self, mid: int) -> None:
        """paho's on_publish: the broker has the message."""
        with self._sent_lock:
            if self._sent.pop(mid, None) is None:
                now = time.monotonic()
                if len(self._acked_early) > MAX_EARLY_ACKS:
                    self._acked_early = {
                        m: at for m, at in self._acked_early.items() if now - at < 5.0
                    }
                self._acked_early[mid] = now

    def reclaim(self) -> None:
        """On reconnecting, before paho would re-send what the old connection left
        unacknowledged: take it back, so what is now too old is dropped and retained
        topics are not overwritten with stale values."""
        drop: Any = getattr(self._client, "drop_out_messages", None)  # paho-mqtt >= 2.0
        if drop is None:
            return
        dropped = drop()
        with self._sent_lock:
            sent = dict(self._sent)
            self._sent.clear()
            self._acked_early.clear()
        back: list[Outgoing] = []
        for message in dropped:
            entry = sent.get(message.mid)
            if entry is None or (entry[1].retain and entry[1].topic in self._current):
                continue  # ours to republish anyway, with its current value
            if entry[1].expired():
                self.counters["expired"] += 1
            else:
                back.append(entry[1])
        for msg in reversed(back):
            (self._urgent if msg.urgent else self._events).appendleft(msg)
