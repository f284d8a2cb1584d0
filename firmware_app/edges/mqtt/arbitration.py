"""Several speakers, one answer: devices on the same broker that wake on the same
utterance agree that only the one that heard it best answers.

On a wake each device publishes its claim ``{device, model, score, level_db, t}`` to the
group's topic, waits the window (300 ms by default, plus a little for the broker's latency)
and compares every claim made within the window of its own. The best claim wins: a wake
word model's score barely depends on how loud the voice was (a far device scores 0.99 as
well as a near one), so scores are compared in steps of 0.1 and, within a step, the device
that heard the wake word loudest (the nearest) wins; then the smallest device id. That
order is total, every device applies it to the same claims, so exactly one answers and the
others return to idle without a sound. A device that lost knows as soon as a better claim
arrives; only the winner waits out the window.

``t`` is wall-clock time, so the devices' clocks should agree to well within the window
(NTP on the same network does, to a few milliseconds). With the broker down or not yet
reached, ``claim`` is true at once: each device answers alone, as it would without one.
A device that is alone in its group pays no wait either: every device announces itself
with a retained message under the group's ``peers/`` topic (cleared by its last will), and
a device that knows no peer answers at once, so arbitration costs nothing until a second
speaker joins.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from loguru import logger

from firmware_app.config.settings import MqttSettings
from firmware_app.core.engines import Detection, WakeDetector
from firmware_app.edges.mqtt.bridge import _no_delay
from firmware_app.edges.mqtt.connect import paho_client

KEEP_S = 10.0  # claims older than this are forgotten
MAX_CLAIMS = 256  # a flood of claims within KEEP_S costs at most this many entries
MAX_PEERS = 64


@dataclass(frozen=True)
class Claim:
    device: str
    score: float
    t: float
    model: str = ""
    level_db: float = -120.0

    def rank(self) -> tuple[int, float]:
        return (math.floor(self.score * 10 + 1e-9), round(self.level_db, 1))

    def beats(self, other: Claim) -> bool:
        """The rule every device applies: score step, then loudness, then smaller id."""
        return (self.rank(), other.device) > (other.rank(), self.device)


class LevelMeter:
    """How loud the last ``seconds`` of microphone audio were at their loudest 80 ms, in
    dBFS: at the moment of a wake, the loudness of the wake word itself."""

    def __init__(self, seconds: float = 1.5, frame_s: float = 0.08) -> None:
        self._levels: deque[float] = deque(maxlen=max(1, round(seconds / frame_s)))

    def feed(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        rms = float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
        self._levels.append(rms)

    def level_db(self) -> float:
        peak = max(self._levels, default=0.0)
        return round(20.0 * math.log10(max(peak, 1e-3) / 32768.0), 1)


class MeteredWake:
    """A wake detector that also measures what it hears, so a claim can say how loud the
    wake word was. Everything else is the wrapped detector's."""

    def __init__(self, inner: WakeDetector, meter: LevelMeter) -> None:
        self.inner = inner
        self.meter = meter

    def process(self, pcm: bytes) -> Detection | None:
        self.meter.feed(pcm)
        return self.inner.process(pcm)

    def reset(self) -> None:
        self.inner.reset()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def group_topic(group: str) -> str:
    return f"ttbt5/group/{group}/wake"


def peers_topic(group: str) -> str:
    return f"ttbt5/group/{group}/peers"


class MqttWakeArbiter:
    """``claim(model, score) -> bool``: true when this device should answer.

    It keeps its own small MQTT connection (its own client id under the device's), so it
    never waits behind the bridge's queue of events; the broker, credentials and TLS are
    the bridge's.
    """

    def __init__(
        self,
        settings: MqttSettings,
        group: str = "default",
        window_s: float = 0.3,
        grace_s: float = 0.05,
        clock: Callable[[], float] = time.time,
        meter: LevelMeter | None = None,
    ) -> None:
        self.device = settings.device_id
        self.meter = meter
        self.topic = group_topic(group)
        self.peers_topic = peers_topic(group)
        self.peers: set[str] = set()
        """Other devices announced in the group; with none, a claim is won at once."""
        self.window_s = window_s
        self.grace_s = grace_s
        self._clock = clock
        self._cond = threading.Condition()
        self._claims: deque[Claim] = deque(maxlen=MAX_CLAIMS)
        self._connected = False
        self.last: dict[str, Any] = {}
        """The last decision: won, own score, rivals seen (for the event log and tests)."""
        self._client = self._make_client(settings)
        self._client.connect_async(
            settings.host or "127.0.0.1", settings.port, settings.keepalive_s
        )
        self._client.loop_start()

    def _make_client(self, cfg: MqttSettings) -> mqtt.Client:
        client = paho_client(cfg, f"ttbt5-{cfg.device_id}-wake")
        client.will_set(f"{self.peers_topic}/{cfg.device_id}", b"", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = _no_delay
        return client

    @property
    def connected(self) -> bool:
        return self._connected

    def wait_peers(self, count: int, timeout: float) -> bool:
        """True once ``count`` other devices have announced themselves in the group."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.peers) >= count, timeout)

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected, timeout)

    def claim(self, model: str, score: float) -> bool:
        """Publish this device's claim and decide. Blocks at most the window plus grace."""
        level = self.meter.level_db() if self.meter is not None else -120.0
        mine = Claim(self.device, float(score), self._clock(), model, level)
        if not self._connected:
            self.last = {"won": True, "score": mine.score, "rivals": [], "alone": True}
            return True
        payload = json.dumps(
            {
                "device": mine.device,
                "model": model,
                "score": mine.score,
                "level_db": mine.level_db,
                "t": mine.t,
            }
        )
        self._client.publish(self.topic, payload, qos=0)
        with self._cond:
            alone = not self.peers
        if alone:  # the claim still goes out, for a peer whose announcement is on its way
            self.last = {"won": True, "score": mine.score, "rivals": [], "alone": True}
            return True
        deadline = time.monotonic() + self.window_s + self.grace_s
        with self._cond:
            while True:
                rivals = [
                    c
                    for c in self._claims
                    if c.device != self.device and abs(c.t - mine.t) <= self.window_s
                ]
                better = [c for c in rivals if c.beats(mine)]
                left = deadline - time.monotonic()
                if better or left <= 0:
                    break
                self._cond.wait(left)
        won = not better
        self.last = {
            "won": won,
            "score": mine.score,
            "level_db": mine.level_db,
            "rivals": [
                {"device": c.device, "score": c.score, "level_db": c.level_db} for c in rivals
            ],
            "alone": False,
        }
        if not won:
            best = better[0]
            for c in better[1:]:
                best = c if c.beats(best) else best
            logger.info(
                "wake: {} answers it (score {}, {} dBFS; here {}, {} dBFS)",
                best.device,
                best.score,
                best.level_db,
                mine.score,
                mine.level_db,
            )
        return won

    # -- paho's thread -------------------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        client.subscribe([(self.topic, 0), (f"{self.peers_topic}/+", 1)])
        client.publish(f"{self.peers_topic}/{self.device}", b"1", qos=1, retain=True)
        with self._cond:
            self._connected = True
            self._cond.notify_all()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(self.peers_topic + "/"):
            self._on_peer(msg.topic[len(self.peers_topic) + 1 :], bool(msg.payload))
            return
        try:
            data = json.loads(msg.payload)
            claim = Claim(
                str(data["device"]),
                float(data["score"]),
                float(data["t"]),
                str(data.get("model", "")),
                float(data.get("level_db", -120.0)),
            )
        except (ValueError, KeyError, TypeError):
            return  # not a claim: ignore it, never crash paho's thread
        if not all(map(math.isfinite, (claim.score, claim.t, claim.level_db))):
            return
        now = self._clock()
        with self._cond:
            while self._claims and now - self._claims[0].t >= KEEP_S:
                self._claims.popleft()
            self._claims.append(claim)
            self._cond.notify_all()

    def _on_peer(self, device: str, present: bool) -> None:
        if device == self.device:
            return
        with self._cond:
            if not present:
                self.peers.discard(device)
            elif len(self.peers) < MAX_PEERS:
                self.peers.add(device)
            self._cond.notify_all()

    def close(self) -> None:
        info = self._client.publish(f"{self.peers_topic}/{self.device}", b"", qos=1, retain=True)
        if self._connected:
            # not connected after all: the last will clears the entry
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=1.0)
        self._client.disconnect()
        self._client.loop_stop()
