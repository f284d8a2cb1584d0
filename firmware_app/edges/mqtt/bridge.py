"""The MQTT bridge: the assistant's events out, commands in, never in the audio path.

Three threads meet here and none waits on another:

- the assistant's thread calls the bus observer, which only appends the event to a
  bounded deque (the oldest is dropped when it is full) and wakes the worker;
- the worker thread (``mqtt-out``) turns events into messages, keeps the retained topics
  (status, discovery, state, health, metrics) current, and hands messages to the outbox
  (``outbox.py``: bounded queues, message age limits, the acknowledgement window), which
  delivers them while the broker is connected;
- paho's network thread (``loop_start``) connects, reconnects with backoff, and delivers
  incoming commands, which are validated and posted to the assistant as messages.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from loguru import logger

from firmware_app import __version__
from firmware_app.config.settings import Settings
from firmware_app.core.errors import ConfigError
from firmware_app.core.events import Event, wall_now
from firmware_app.core.messages import Message, Notice
from firmware_app.edges.mqtt.commands import CommandHandler
from firmware_app.edges.mqtt.connect import paho_client
from firmware_app.edges.mqtt.discovery import discovery_messages
from firmware_app.edges.mqtt.health import SystemProbe
from firmware_app.edges.mqtt.hermes import SUBSCRIPTIONS as HERMES_SUBSCRIPTIONS
from firmware_app.edges.mqtt.hermes import Hermes
from firmware_app.edges.mqtt.outbox import Outbox, Outgoing, check_publish
from firmware_app.edges.mqtt.topics import Topics
from firmware_app.system.metrics import Metrics

PRIVATE_TYPES = ("transcript", "reply")
"""Events whose ``text`` is only published when ``mqtt.publish_transcripts`` is on."""
HEALTH_TRIGGERS = ("mute", "volume", "breaker", "update")
"""Events that change what the health topic shows (Home Assistant's switch, slider,
cloud and update entities read it), so it is republished at once."""


class MqttBridge:
    """Start with ``start_mqtt``; ``close()`` publishes ``offline`` and disconnects."""

    def __init__(self, settings: Settings, assistant: Any) -> None:
        cfg = settings.mqtt
        if cfg.host is None:
            raise ConfigError("mqtt.host is not set")
        self._cfg = cfg
        self._settings = settings
        self._assistant = assistant
        self.topics = Topics(cfg.device_id, cfg.discovery_prefix)
        self.metrics = Metrics()
        self._probe = SystemProbe(settings.data_dir)
        self._version = __version__

        self._inbox: deque[Event] = deque(maxlen=cfg.queue_size)
        self._inbox_dropped = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = False
        self._subscribed = False
        self._closed = False
        self._offline_noticed = False
        self._last_problem: str | None = None
        self._health_due = True
        self._metrics_due = True

        # what the health report adds from events
        self._latest_version: str | None = None
        self._update_active = False
        self._update_server: str | None = None  # why the last release check failed

        self._commands = CommandHandler(self._post, self._publish_result)
        self._hermes = Hermes(cfg.device_id, self._post) if cfg.hermes else None

        self._client = self._make_client()
        self._outbox = Outbox(self._client, cfg.queue_size, self._wake.set)
        self._set_current(self.topics.status, "online")
        for topic, payload in discovery_messages(
            self.topics,
            self._version,
            transcripts=cfg.publish_transcripts,
            cloud=settings.llm.url is not None,
            update=settings.update.url is not None,
        ):
            self._set_current(topic, payload)
        self._set_current(self.topics.state, self._initial_state())
        self._worker = threading.Thread(target=self._run, name="mqtt-out", daemon=True)

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._assistant.bus.subscribe(self._on_event)
        self._worker.start()
        self._client.connect_async(str(self._cfg.host), self._cfg.port, self._cfg.keepalive_s)
        self._client.loop_start()
        logger.info(
            "MQTT: connecting to {}:{} as {} (topics under {}/)",
            self._cfg.host,
            self._cfg.port,
            self.topics.device_id,
            self.topics.base,
        )

    def close(self, flush_s: float = 2.0) -> None:
        """Deliver what is queued (for at most ``flush_s``), publish ``offline`` retained,
        then disconnect. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._assistant.bus.unsubscribe(self._on_event)
        deadline = time.monotonic() + flush_s
        while self._connected and time.monotonic() < deadline and self._pending():
            self._wake.set()
            time.sleep(0.01)
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout=5)
        if self._connected:
            info = self._client.publish(self.topics.status, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
        self._client.disconnect()
        self._client.loop_stop()
        logger.info("MQTT: closed")

    @property
    def connected(self) -> bool:
        """Connected, and the broker has confirmed the command subscriptions (a command
        published from now on reaches us)."""
        return self._connected and self._subscribed

    @property
    def counters(self) -> dict[str, int]:
        """Messages dropped (a queue was full), expired (too old to send) and published."""
        counters = dict(self._outbox.counters)
        counters["dropped"] += self._inbox_dropped
        return counters

    def queued(self) -> int:
        """Messages waiting for the broker (events, results, custom publishes)."""
        return self._outbox.queued() + len(self._inbox)

    def _pending(self) -> bool:
        return bool(self._inbox) or self._outbox.pending()

    # -- publishing API --------------------------------------------------------------------

    def publish(self, topic: str, payload: str, qos: int = 1, retain: bool = False) -> None:
        """Queue a message (custom home intents). Never blocks; delivered while within
        ``mqtt.event_ttl_s`` of now, else dropped. A topic with wildcards or no text is a
        BadInputError."""
        check_publish(topic, payload, qos)
        self._outbox.put(
            Outgoing(topic, payload, qos, retain, wall_now(), self._cfg.event_ttl_s, urgent=True)
        )

    def _set_current(self, topic: str, payload: str) -> None:
        self._outbox.set_current(topic, payload)

    # -- the assistant's side ---------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        """Runs on the assistant's thread: append and wake, nothing else."""
        inbox = self._inbox
        if len(inbox) == inbox.maxlen:
            self._inbox_dropped += 1
        inbox.append(event)
        if not self._wake.is_set():  # a plain read; only the first of a burst pays the lock
            self._wake.set()

    def _post(self, message: Message) -> None:
        self._assistant.post(message)

    def _notice(self, kind: str) -> None:
        try:
            self._post(Notice(kind, {"where": "mqtt"}))  # type: ignore[arg-type]
        except Exception as exc:
            logger.error("MQTT: could not tell the assistant {}: {}", kind, exc)

    def _publish_result(self, result: dict[str, Any]) -> None:
        payload = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        ttl = self._cfg.event_ttl_s
        self._outbox.put(Outgoing(self.topics.cmd_result, payload, 1, False, wall_now(), ttl, True))

    def _initial_state(self) -> str:
        state = getattr(self._assistant, "state", None)
        if state is None:
            try:
                state = self._assistant.status().get("state")
            except Exception:
                state = None
        return str(state or "idle")

    # -- the worker -----------------------------------------------------------------------

    def _run(self) -> None:
        next_health = time.monotonic()
        while True:
            timeout = min(max(0.0, next_health - time.monotonic()), 0.5)
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                self._drain_inbox()
                now = time.monotonic()
                if now >= next_health or self._health_due:
                    self._health_due = False
                    self._metrics_due = True
                    self._set_current(self.topics.health, self._health_payload())
                    if now >= next_health:
                        next_health = now + self._cfg.health_interval_s
                if self._metrics_due:
                    self._metrics_due = False
                    self._set_current(self.topics.metrics, _dumps(self.metrics.snapshot()))
                if self._connected:
                    self._outbox.send(lambda: self._connected)
            except Exception as exc:  # the worker must outlive any one bad event
                logger.opt(exception=exc).error("MQTT worker: {}", exc)
                time.sleep(0.1)
            if self._stop.is_set():
                return

    def _drain_inbox(self) -> None:
        ttl = self._cfg.event_ttl_s
        offset = time.time() - wall_now()
        while self._inbox:
            event = self._inbox.popleft()
            self.metrics(event)
            kind = event.type
            if kind == "state":
                self._set_current(self.topics.state, str(event.fields.get("state", "")))
            elif kind in HEALTH_TRIGGERS or _online_answer(event):
                self._note(event)
                self._health_due = True
            elif kind == "speak_end":
                self._metrics_due = True
            record = event.as_dict()
            if kind in PRIVATE_TYPES and not self._cfg.publish_transcripts:
                record.pop("text", None)
            record["ts"] = round(offset + event.wall, 3)
            self._outbox_event(self.topics.event(kind), _dumps(record), event.wall, ttl)
            if self._hermes is not None:
                for topic, message in self._hermes.translate(event):
                    self._outbox_event(topic, _dumps(message), event.wall, ttl)

    def _outbox_event(self, topic: str, payload: str, born: float, ttl: float) -> None:
        self._outbox.put(Outgoing(topic, payload, 1, False, born, ttl))

    def _note(self, event: Event) -> None:
        f = event.fields
        if event.type == "update":
            if "active" in f:
                self._update_active = bool(f.get("active"))
            if f.get("step") == "check" and f.get("ok", True) and f.get("version"):
                self._latest_version = str(f["version"])
            if f.get("step") == "check":  # "update server stale since …", until a good check
                self._update_server = None if f.get("ok", True) else str(f.get("message", ""))

    def _health_payload(self) -> str:
        status: dict[str, Any] = {}
        for attempt in range(3):  # read from another thread: a collection may change under it
            try:
                status = dict(self._assistant.status())
                break
            except Exception as exc:
                if attempt == 2:
                    logger.warning("MQTT: assistant status unavailable: {}", exc)
                    status = {"status_error": str(exc)}
        version = str(status.get("version") or self._version)
        health: dict[str, Any] = {**status, **self._probe.collect()}
        health["version"] = version
        health.setdefault("wake_count", self.metrics.snapshot()["wake_count"])
        health["latest_version"] = self._latest_version or version
        health["update_active"] = self._update_active
        health["update_server"] = self._update_server or "ok"
        health["cloud"] = self._cloud(status.get("llm"))
        health["mqtt"] = {"queued": self.queued(), **self.counters}
        return _dumps(health)

    @staticmethod
    def _cloud(llm: Any) -> str | None:
        """ON/OFF for the cloud binary sensor, from the online model's own status (its
        ``available``: the breaker and the last attempt, kept in one place by the
        responder); None when there is no cloud LLM."""
        if isinstance(llm, dict) and isinstance(llm.get("available"), bool):
            return "ON" if llm["available"] else "OFF"
        return None

    # -- paho's side --------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = paho_client(self._cfg, f"ttbt5-{self._cfg.device_id}")
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = _no_delay
        return client

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self._problem(f"the broker refused the connection: {reason}")
            return
        subscriptions = [(self.topics.cmd_filter, 1), (self.topics.ha_status, 1)]
        if self._hermes is not None:
            subscriptions += [(topic, 1) for topic in HERMES_SUBSCRIPTIONS]
        self._outbox.reclaim()
        self._subscribed = False
        client.subscribe(subscriptions)
        self._connected = True
        self._last_problem = None
        logger.info("MQTT: connected to {}:{}", self._cfg.host, self._cfg.port)
        self._outbox.mark_all_dirty()
        if self._offline_noticed:
            self._offline_noticed = False
            self._notice("online")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, *rest: Any) -> None:
        self._subscribed = True

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        self._outbox.acknowledged(mid)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        was = self._connected
        self._connected = False
        if self._closed:
            return
        if was:
            self._problem(f"lost the broker: {reason}")

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._problem(f"cannot reach the broker at {self._cfg.host}:{self._cfg.port}")

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            logger.warning("MQTT: {}; retrying in the background", text)
            self._last_problem = text
        if not self._offline_noticed:
            self._offline_noticed = True
            self._notice("offline")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = "?"
        try:
            topic = msg.topic
            if topic == self.topics.ha_status:
                if msg.payload.strip().lower() == b"online":
                    logger.info("MQTT: Home Assistant is online; announcing the device again")
                    self._outbox.mark_all_dirty()
                return
            name = self.topics.command_name(topic)
            if name is not None:
                self._commands.handle(name, bytes(msg.payload), retained=bool(msg.retain))
            elif self._hermes is not None and topic in HERMES_SUBSCRIPTIONS:
                self._hermes.handle(topic, bytes(msg.payload))
        except Exception as exc:  # never let one message end paho's thread
            logger.opt(exception=exc).error("MQTT: message on {!r} failed: {}", topic, exc)


def _online_answer(event: Event) -> bool:
    """An answer from the online model or its fallback: ``llm.available`` (the cloud
    entity) follows the last attempt, so it may have changed without a breaker event."""
    return event.type == "reply" and event.fields.get("source") in ("llm", "fallback")


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Small packets go out at once: without this a command's result can wait ~40 ms for
    Nagle's algorithm and the peer's delayed ACK."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
