"""Several speakers, one answer: devices on the same broker that wake on the same
utterance agree that only the one that heard it best answers.

On a wake each device publishes its claim ``{device, model, score, level_db, ...}``,
signed with the group's shared key (``claims.py``: strangers on the broker can neither
claim nor replay), under the group's topic, and compares every claim that arrived within the
window (300 ms by default) of its own. The best claim wins: a wake word model's score
barely depends on how loud the voice was (a far device scores 0.99 as well as a near one),
so scores are compared in steps of 0.1 and, within a step, the device that heard the wake
word loudest (the nearest) wins; then the smallest device id. That order is total, every
device applies it to the same claims, so exactly one answers and the others return to idle
without a sound. A device that lost knows as soon as a better claim arrives; only the
winner waits out the window.

Time is each device's own monotonic clock, and the window is measured around the moment
a device's own claim comes back from the broker: the broker hands every subscriber the
claims in the order it received them, so a rival claim made just before or after this one
arrives just before or after its echo, however late everything arrives (a busy broker, a
flood on the topic) and whatever the devices' wall clocks say. No NTP is needed.

With the broker down or not yet reached, ``claim`` is true at once: each device answers
alone, as it would without one. A device that is alone in its group pays no wait either:
every device announces itself with a signed retained message under the group's ``peers/``
topic (replaced by a signed "gone" as its last will), and a device that knows no peer
answers at once, so arbitration costs nothing until a second speaker joins.

A flood cannot reach the claims: each is published under a topic of its own that only
the group can work out (``claim_topics.py``), on a connection that carries nothing else.
The announcements, which a stranger can flood, travel on a second connection of their
own; a flood there delays learning of a new peer, never a wake. Each announcement says
the number of the device's next claim, so a device that joins later knows where to listen.

Only the session a device announces counts (``claims.py``, ``peers.py``). Each connection
of its announcements to the broker is a session of its own, ended by its "gone" or its last
will; a session seen to end is never taken back from a played-back announcement, and a
device puts its own announcement back when anything else appears under its name
(``own_announcement.py``), so recorded claims and announcements of a device's earlier
sessions count for nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from loguru import logger

from firmware_app.config.settings import MqttSettings
from firmware_app.edges.mqtt.bridge import _no_delay
from firmware_app.edges.mqtt.claim_topics import Changes, ClaimTopics
from firmware_app.edges.mqtt.claims import Claim, ClaimBook, sign
from firmware_app.edges.mqtt.connect import paho_client
from firmware_app.edges.mqtt.own_announcement import OwnAnnouncement
from firmware_app.edges.mqtt.peers import PeerBook, peers_topic
from firmware_app.listen.level import LevelMeter

ECHO_WAIT_S = 2.0
"""How long a claim waits for its own echo from a broker that has gone quiet before judging
by the moment it was sent instead (a broker that slow makes a double answer possible,
never none)."""
ECHO_WAIT_BUSY_S = 6.0
"""How long it waits while the broker keeps delivering claims: the echo is in the same
ordered stream, behind what is being read, so it is on its way and waiting for it keeps
the answer single; past this the device answers rather than not at all."""
BUSY_GAP_S = 0.1
"""The broker counts as delivering while something arrived within this long."""


class MqttWakeArbiter:
    """``claim(model, score) -> bool``: true when this device should answer.

    It keeps two small MQTT connections of its own (client ids ``ttbt5-<device>-wake`` for
    the claims, ``ttbt5-<device>-peers`` for the announcements), so it never waits behind
    the bridge's queue of events nor behind a flood of announcements; the broker,
    credentials and TLS are the bridge's. ``key`` is the group's shared secret: every
    device of the group must have the same.
    """

    def __init__(
        self,
        settings: MqttSettings,
        key: bytes,
        group: str = "default",
        window_s: float = 0.3,
        grace_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        meter: LevelMeter | None = None,
    ) -> None:
        if not key:
            raise ValueError("wake arbitration needs the group's shared key")
        self.device = settings.device_id
        self.meter = meter
        self.group = group
        self.peers_topic = peers_topic(group)
        self._members = PeerBook(key, group)
        self.peers = self._members.sessions
        """Other devices announced in the group (device → session); with none, a claim is
        won at once."""
        self.window_s = window_s
        self.grace_s = grace_s
        self._key = key
        self._clock = clock
        self._wall = wall_clock
        self._seq = 0
        self._echoes: deque[tuple[int, float]] = deque(maxlen=16)
        """(number, arrival) of this device's own claims as the broker sent them back."""
        self._cond = threading.Condition()
        self._client = self._make_claims_client(settings)
        self._announcer = self._make_peers_client(settings)
        self._own = OwnAnnouncement(
            self._announcer, key, group, self.device, lambda: self._seq + 1, clock
        )
        self._book = ClaimBook(key, group, self.device, self._own.session)
        self._topics = ClaimTopics(key, group)
        self._claims_up = False
        self._peers_up = False
        self._delivered = -BUSY_GAP_S
        """When the last claim of any kind arrived (a float written by paho's thread)."""
        self.last: dict[str, Any] = {}
        """The last decision: won, own score, rivals seen (for the event log and tests)."""
        for client in (self._client, self._announcer):
            client.connect_async(settings.host or "127.0.0.1", settings.port, settings.keepalive_s)
            client.loop_start()

    def _make_claims_client(self, cfg: MqttSettings) -> mqtt.Client:
        client = paho_client(cfg, f"ttbt5-{cfg.device_id}-wake")
        client.on_connect = self._on_claims_connect
        client.on_disconnect = self._on_claims_disconnect
        client.on_message = self._on_message
        client.on_socket_open = _no_delay
        return client

    def _make_peers_client(self, cfg: MqttSettings) -> mqtt.Client:
        client = paho_client(cfg, f"ttbt5-{cfg.device_id}-peers")
        client.on_connect = self._on_peers_connect
        client.on_disconnect = self._on_peers_disconnect
        client.on_message = self._on_peer_message
        return client

    @property
    def connected(self) -> bool:
        return self._claims_up and self._peers_up

    def status(self) -> dict[str, object]:
        """For health: the group, its peers and what was turned away (forged, replayed,
        too many, malformed claims)."""
        with self._cond:
            counts = dict(self._book.counts)
            return {
                "group": self.group,
                "connected": self.connected,
                "peers": len(self.peers),
                "claims": counts,
                "ignored_announcements": self._members.ignored,
            }

    def wait_peers(self, count: int, timeout: float) -> bool:
        """True once ``count`` other devices have announced themselves in the group."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.peers) >= count, timeout)

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.connected, timeout)

    def claim(self, model: str, score: float) -> bool:
        """Publish this device's claim and decide. Blocks the window plus grace after the
        claim's echo (at most ``ECHO_WAIT_S`` for the echo, ``ECHO_WAIT_BUSY_S`` while the
        broker is still delivering claims)."""
        level = self.meter.level_db() if self.meter is not None else -120.0
        if not self.connected:
            self.last = {"won": True, "score": float(score), "rivals": [], "alone": True}
            return True
        with self._cond:
            self._seq += 1
            seq = self._seq
            alone = not self.peers
            session = self._own.session
            # listen from this claim on: its echo, and the next few
            changes = self._topics.listen_from(self.device, session, seq)
        self._apply(changes)
        mine = Claim(self.device, float(score), model, level, session, seq, self._wall())
        fields = {
            "device": mine.device,
            "model": model,
            "score": mine.score,
            "level_db": mine.level_db,
            "session": mine.session,
            "seq": seq,
            "t": mine.t,
        }
        topic = self._topics.topic(self.device, session, seq)
        sent = self._clock()
        self._client.publish(topic, sign(self._key, self.group, "claim", fields), qos=0)
        # where a device that joins later should listen for the next claim
        self._own.publish()
        if alone:  # the claim still goes out, for a peer whose announcement is on its way
            self.last = {"won": True, "score": mine.score, "rivals": [], "alone": True}
            return True
        with self._cond:
            while True:
                echo = next((at for n, at in self._echoes if n == seq), None)
                ref = sent if echo is None else echo
                now = self._clock()
                rivals = [
                    c
                    for c in self._book.recent(now)
                    if c.device != self.device and abs(c.at - ref) <= self.window_s
                ]
                better = [c for c in rivals if c.beats(mine)]
                end = (
                    self._deadline(sent, now)
                    if echo is None
                    else echo + self.window_s + self.grace_s
                )
                if better or now >= end:
                    break
                self._cond.wait(end - now)
        won = not better
        self.last = {
            "won": won,
            "score": mine.score,
            "level_db": mine.level_db,
            "rivals": [
                {"device": c.device, "score": c.score, "level_db": c.level_db} for c in rivals
            ],
            "alone": False,
            "echo": echo is not None,
            "echo_s": None if echo is None else round(echo - sent, 4),
        }
        if won and echo is None:
            logger.warning("wake: the broker did not return this claim in time; judged alone")
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

    def _deadline(self, sent: float, now: float) -> float:
        """When a claim whose echo has not come back is judged without it: ``ECHO_WAIT_S``
        after it was sent, later while the broker is still delivering (up to
        ``ECHO_WAIT_BUSY_S``), re-checked every ``BUSY_GAP_S`` since turned-away messages
        wake nobody."""
        end = sent + ECHO_WAIT_S
        if now >= end and now - self._delivered < BUSY_GAP_S:
            return min(sent + ECHO_WAIT_BUSY_S, now + BUSY_GAP_S)
        return end if now < end else now

    def _apply(self, changes: Changes) -> None:
        subscribe, unsubscribe = changes
        if subscribe and self._claims_up:
            self._client.subscribe([(t, 0) for t in subscribe])
        if unsubscribe and self._claims_up:
            self._client.unsubscribe(unsubscribe)

    # -- paho's threads -------------------------------------------------------------------

    def _on_claims_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        with self._cond:
            topics = self._topics.all()
            self._claims_up = True
            self._cond.notify_all()
        if topics:
            client.subscribe([(t, 0) for t in topics])

    def _on_claims_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._cond:
            self._claims_up = False
            self._cond.notify_all()

    def _on_peers_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            return
        client.subscribe(f"{self.peers_topic}/+", 1)
        with self._cond:
            changes = self._topics.listen_from(self.device, self._own.session, self._seq + 1)
            self._peers_up = True
            self._cond.notify_all()
        self._apply(changes)
        self._own.publish()

    def _on_peers_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._cond:
            self._peers_up = False
            session = self._own.renew()
            if session is not None:  # only this session's claims count from now on
                self._book.announced(self.device, session, self._clock())
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._delivered = self._clock()
        try:  # never crash paho's thread, whatever arrives
            self._on_claim(msg.topic, bytes(msg.payload))
        except Exception as exc:
            logger.opt(exception=exc).error("wake arbitration: {}", exc)

    def _on_peer_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:  # never crash paho's thread, whatever arrives
            self._on_peer(msg.topic[len(self.peers_topic) + 1 :], bytes(msg.payload))
        except Exception as exc:
            logger.opt(exception=exc).error("wake arbitration: {}", exc)

    def _on_claim(self, topic: str, payload: bytes) -> None:
        now = self._clock()
        device = topic.rsplit("/", 2)[-2]
        changes: Changes = ([], [])
        with self._cond:
            claim = self._book.take(payload, now, device)
            last = self._book.last_seq(device)
            session = self.peers.get(device)
            if device != self.device and session is not None and last is not None:
                # a peer's fresh claim, counted or held to its rate: listen past it
                changes = self._topics.listen_from(device, session, last + 1)
            if claim is not None:
                if claim.device == self.device and claim.session == self._own.session:
                    self._echoes.append((claim.seq, now))
                    # its topic has done its work: a stranger who saw it floods nothing
                    changes = self._topics.listen_from(self.device, claim.session, claim.seq + 1)
                self._cond.notify_all()
        self._apply(changes)

    def _on_peer(self, device: str, payload: bytes) -> None:
        if device == self.device:
            self._own.heard(payload)
            return
        changes: Changes = ([], [])
        with self._cond:
            heard = self._members.heard(device, payload)
            if heard is None:
                return
            # only the announced session's claims count from now on, and only its topics
            # are listened to
            self._book.announced(device, heard.session, self._clock())
            if heard.session is not None:
                changes = self._topics.listen_from(device, heard.session, heard.first)
            elif heard.was_peer:
                changes = self._topics.forget(device)
            self._cond.notify_all()
        self._apply(changes)

    def close(self) -> None:
        self._own.close(connected=self._peers_up)
        for client in (self._announcer, self._client):
            client.disconnect()
            client.loop_stop()
