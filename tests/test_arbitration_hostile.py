"""Wake arbitration against a stranger on the broker and against clocks that disagree:
a real Mosquitto, real devices' arbiters, and strangers publishing (from this process and
from a separate ``mosquitto_pub`` process) without the group's key."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from harness import wait_until
from mqtt_broker import Broker, Listener, broker_fixture  # noqa: F401
from paho.mqtt.enums import CallbackAPIVersion
from test_arbitration import KEY, make, together

from firmware_app.edges.mqtt.arbitration import MqttWakeArbiter, peers_topic
from firmware_app.edges.mqtt.claim_topics import claim_token, claims_topic, group_topic
from firmware_app.edges.mqtt.claims import sign

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def pair(
    broker: Broker, group: str, **kwargs: dict[str, Callable[[], float]]
) -> list[MqttWakeArbiter]:
    arbiters = [
        make(broker, "kitchen", group, **kwargs.get("kitchen", {})),
        make(broker, "hall", group, **kwargs.get("hall", {})),
    ]
    assert all(a.wait_peers(1, 10.0) for a in arbiters), "the devices did not see each other"
    time.sleep(0.2)  # each has subscribed to the other's claims
    return arbiters


@pytest.fixture(name="group")
def group_fixture(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "_").replace("]", "")


def exactly_one(kitchen: MqttWakeArbiter, hall: MqttWakeArbiter, rounds: int = 4) -> None:
    """Several wakes, each heard by both; exactly the better device answers each one."""
    for n in range(rounds):
        k_score, h_score = (0.93, 0.71) if n % 2 else (0.71, 0.93)
        results, _ = together(
            lambda k=k_score: kitchen.claim("hey_jarvis", k),  # type: ignore[misc]
            lambda h=h_score: hall.claim("hey_jarvis", h),  # type: ignore[misc]
            stagger_s=0.05 * (n % 3),
        )
        assert results == [k_score > h_score, h_score > k_score], (n, kitchen.last, hall.last)
        time.sleep(1.0)  # the next utterance, well apart


class Stranger:
    """Publishes ``payload()`` to each of ``topics`` every ``period`` s until stopped; with
    no topics, ``payload()`` names the topic of each message itself."""

    def __init__(
        self,
        broker: Broker,
        topics: tuple[str, ...],
        payload: Callable[[], str | bytes] | Callable[[], tuple[str, bytes]],
        period: float,
    ):
        self.client = Listener(broker, ("ttbt5/stranger-nothing",))
        self._stop = threading.Event()
        self.sent = 0

        def run() -> None:
            while not self._stop.wait(period):
                if not topics:
                    topic, message = payload()  # type: ignore[misc]
                    self.client.client.publish(topic, message, qos=0)
                    self.sent += 1
                for topic in topics:
                    self.client.client.publish(topic, payload(), qos=0)
                    self.sent += 1

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


def test_a_stranger_claiming_score_one_every_100_ms_changes_nothing(
    broker: Broker, group: str
) -> None:
    """The attack as seen: an unsigned score-1.0 claim every 100 ms, on the group's topic,
    under each device's name and on a claim topic guessed for each. None of it reaches a
    device: each listens only to the topics of the claims it expects."""
    kitchen, hall = pair(broker, group)
    forged = Stranger(
        broker,
        (
            group_topic(group),
            f"{group_topic(group)}/kitchen",
            claims_topic(group, "kitchen", "0" * 24),
            claims_topic(group, "hall", "1" * 24),
        ),
        lambda: json.dumps(
            {
                "device": "aaa-stranger",
                "model": "hey_jarvis",
                "score": 1.0,
                "level_db": 0,
                "t": time.time(),
            }
        ),
        0.1,
    )
    try:
        exactly_one(kitchen, hall)
        assert forged.sent >= 40
        assert kitchen.status()["claims"]["unauthenticated"] == 0  # type: ignore[index]
        assert hall.status()["claims"]["unauthenticated"] == 0  # type: ignore[index]
    finally:
        forged.stop()
        kitchen.close()
        hall.close()


def test_replayed_claims_and_forged_announcements_change_nothing(
    broker: Broker, group: str
) -> None:
    kitchen, hall = pair(broker, group)
    spy = Listener(broker, (claims_topic(group, "kitchen"),))
    try:
        # a real, signed claim of the kitchen's, recorded off the wire with its topic
        assert kitchen.claim("hey_jarvis", 0.99)
        recorded = spy.wait_for(claims_topic(group, "kitchen"))
        replay = Stranger(broker, (recorded.topic,), lambda: recorded.payload, 0.1)
        # "the hall has left": an empty retained announcement, and an unsigned one
        spy.publish(f"{peers_topic(group)}/hall", b"", retain=True)
        spy.publish(f"{peers_topic(group)}/hall", b'{"device":"hall","present":false}', retain=True)
        try:
            time.sleep(0.5)
            assert set(kitchen.peers) == {"hall"}  # not fooled: it still waits for the hall
            exactly_one(kitchen, hall)
            assert replay.sent >= 40
            # its own four and the kitchen's five real claims, none of the replays
            assert hall.status()["claims"]["accepted"] == 9  # type: ignore[index]
            assert kitchen.status()["ignored_announcements"] >= 2  # type: ignore[index]
        finally:
            replay.stop()
    finally:
        spy.close()
        kitchen.close()
        hall.close()


@pytest.mark.parametrize("skew_s", [0.5, 2.0])
def test_devices_whose_clocks_disagree_still_answer_once(
    broker: Broker, group: str, skew_s: float
) -> None:
    """The wall clocks (what the claims carry) are ``skew_s`` apart, either way round; the
    decision is made on each device's own monotonic clock, so exactly one answers."""
    kitchen, hall = pair(
        broker,
        group,
        kitchen={"wall_clock": lambda: time.time() + skew_s},
        hall={"wall_clock": lambda: time.time() - skew_s / 2},
    )
    spy = Listener(broker, (group_topic(group) + "/#",))
    try:
        exactly_one(kitchen, hall)
        claims = [m.json() for m in spy.messages]
        by_device = {c["device"]: c["t"] for c in claims}
        assert by_device["kitchen"] - by_device["hall"] > skew_s  # the skew is on the wire
    finally:
        spy.close()
        kitchen.close()
        hall.close()


def low_claim(n: int) -> str:
    """The flood as seen: unsigned low-score claims, each from a new name."""
    claim = {
        "device": f"flood-{n}",
        "model": "hey_jarvis",
        "score": 0.1,
        "level_db": -60.0,
        "t": time.time(),
    }
    return json.dumps(claim)


class Flood:
    """A separate ``mosquitto_pub`` process fed ``rate`` messages a second (``line(n)``,
    by default low-score claims at the rate the attack was seen at) until stopped."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        rate: int = 12000,
        line: Callable[[int], str] = low_claim,
    ) -> None:
        self.proc = subprocess.Popen(
            [
                MOSQUITTO_PUB,
                "-h",
                broker.host,
                "-p",
                str(broker.port),
                "-t",
                topic,
                "-q",
                "0",
                "-l",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.sent = 0
        self._stop = threading.Event()
        self._rate = rate
        self._line = line
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        assert self.proc.stdin is not None
        tick = 0.05
        n = 0
        while not self._stop.wait(tick):
            lines = []
            for _ in range(int(self._rate * tick)):
                n += 1
                lines.append(self._line(n))
            try:
                self.proc.stdin.write(("\n".join(lines) + "\n").encode())
                self.proc.stdin.flush()
            except OSError:
                return
            self.sent += len(lines)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.proc.kill()
        self.proc.wait()


def test_a_flood_of_low_score_claims_leaves_exactly_one_answering(
    broker: Broker, group: str
) -> None:
    """~12,000 claims a second from each of two other processes (the old claim buffer held
    256) on the group's topic and under a device's name, and unsigned ones on claim topics
    guessed for each device, while the two devices arbitrate: none of it reaches them."""
    kitchen, hall = pair(broker, group)
    floods = [Flood(broker, group_topic(group)), Flood(broker, f"{group_topic(group)}/hall")]
    onto_peers = Stranger(
        broker,
        (claims_topic(group, "kitchen", "f" * 24), claims_topic(group, "hall", "e" * 24)),
        lambda: json.dumps({"device": "hall", "model": "alexa", "score": 0.1, "t": 0}),
        0.004,
    )
    try:
        time.sleep(0.5)
        exactly_one(kitchen, hall, rounds=3)
        assert all(flood.sent > 10000 for flood in floods)
        assert onto_peers.sent > 100
        for arbiter in (kitchen, hall):
            assert arbiter.status()["claims"]["unauthenticated"] == 0  # type: ignore[index]
    finally:
        onto_peers.stop()
        for flood in floods:
            flood.stop()
        kitchen.close()
        hall.close()


def test_a_group_member_flooding_is_held_to_its_rate(broker: Broker, group: str) -> None:
    """Even with the key, a flood of low claims from one sender is cut to a few a second
    and crowds out nobody's claims."""
    kitchen, hall = pair(broker, group)
    announce = Listener(broker, ("ttbt5/stranger-nothing",))
    presence = {"device": "noisy", "session": "s", "present": True}
    announce.publish(f"{peers_topic(group)}/noisy", sign(KEY, group, "peer", presence), True)
    announce.close()
    assert kitchen.wait_peers(2, 10.0) and hall.wait_peers(2, 10.0)
    time.sleep(0.2)
    sent = 0

    def noisy() -> tuple[str, bytes]:
        nonlocal sent
        sent += 1
        fields = {
            "device": "noisy",
            "model": "alexa",
            "score": 0.2,
            "level_db": -50.0,
            "session": "s",
            "seq": sent,
            "t": 0.0,
        }
        topic = claims_topic(group, "noisy", claim_token(KEY, group, "noisy", "s", sent))
        return topic, sign(KEY, group, "claim", fields)

    flood = Stranger(broker, (), noisy, 0.002)
    try:
        exactly_one(kitchen, hall, rounds=2)
        assert kitchen.status()["claims"]["rate_limited"] > 50  # type: ignore[index]
    finally:
        flood.stop()
        kitchen.close()
        hall.close()


def test_claims_replayed_from_a_devices_earlier_sessions_change_nothing(
    broker: Broker, group: str
) -> None:
    """A stranger who recorded one signed claim of the kitchen's in each of its last five
    runs (five restarts) replays them, in turn, on the kitchen's own claims topic. They are
    the kitchen's real signatures, but not of the run it announces now: none of them may
    count, make the hall lose a wake the kitchen never heard, or use up the kitchen's rate
    at the hall so that its real claims go unheard."""
    spy = Listener(broker, (claims_topic(group, "kitchen"),))
    recorded: list[tuple[str, bytes]] = []
    try:
        for _ in range(5):
            earlier = make(broker, "kitchen", group)
            mark = spy.mark()
            assert earlier.claim("hey_jarvis", 0.99)  # alone in the group: answered at once
            claim = spy.wait_for(claims_topic(group, "kitchen"), after=mark)
            recorded.append((claim.topic, claim.payload))
            earlier.close()
    finally:
        spy.close()
    kitchen, hall = pair(broker, group)
    turn = iter(range(10**9))
    replay = Stranger(broker, (), lambda: recorded[next(turn) % len(recorded)], 0.02)
    try:
        time.sleep(1.0)  # 50 replays: ten times the kitchen's allowed rate
        for _ in range(3):
            assert hall.claim("hey_jarvis", 0.6), hall.last  # the kitchen heard nothing
            time.sleep(0.5)
        exactly_one(kitchen, hall)
        counts = hall.status()["claims"]
        assert counts["rate_limited"] == 0, counts  # type: ignore[index]
        assert counts["accepted"] == 3 + 4 + 4, counts  # its own three, then both's four
        assert replay.sent >= 100
    finally:
        replay.stop()
        kitchen.close()
        hall.close()


def test_an_earlier_runs_announcement_played_back_brings_nothing_back(
    broker: Broker, group: str
) -> None:
    """The kitchen restarts while the hall runs. A stranger who recorded the kitchen's
    earlier announcement ("present", signed) and one of its claims plays both back, the
    announcement retained: the hall, which saw that run end, keeps the new one; the kitchen
    puts its own announcement back, so a device starting later learns the new run too; and
    the old claims count nowhere."""
    spy = Listener(broker, (f"{peers_topic(group)}/kitchen", claims_topic(group, "kitchen")))
    kitchen_before, hall = pair(broker, group)
    kitchen = porch = None
    replay = None
    try:
        present = spy.wait_for(
            f"{peers_topic(group)}/kitchen", lambda m: b'"present":true' in m.payload
        ).payload
        assert kitchen_before.claim("hey_jarvis", 0.99)
        claim = spy.wait_for(claims_topic(group, "kitchen"))
        kitchen_before.close()
        wait_until(lambda: "kitchen" not in hall.peers, what="the hall to see the kitchen go")
        kitchen = make(broker, "kitchen", group)
        assert hall.wait_peers(1, 10.0) and kitchen.wait_peers(1, 10.0)
        new_session = hall.peers["kitchen"]
        spy.publish(f"{peers_topic(group)}/kitchen", present, retain=True)
        replay = Stranger(broker, (claim.topic,), lambda: claim.payload, 0.05)
        time.sleep(1.5)  # the kitchen has put its own announcement back
        assert hall.peers["kitchen"] == new_session
        porch = make(broker, "porch", group)
        assert porch.wait_peers(2, 10.0)
        wait_until(lambda: porch.peers.get("kitchen") == new_session, what="the porch's view")
        assert hall.status()["ignored_announcements"] >= 1  # type: ignore[operator]
        for _ in range(3):
            assert hall.claim("hey_jarvis", 0.6), hall.last  # the kitchen heard nothing
            time.sleep(0.3)
        exactly_one(kitchen, hall)
        assert hall.status()["claims"]["rate_limited"] == 0  # type: ignore[index]
    finally:
        if replay is not None:
            replay.stop()
        spy.close()
        for arbiter in (kitchen, hall, porch):
            if arbiter is not None:
                arbiter.close()


def test_a_device_whose_connection_drops_and_comes_back_is_arbitrated_with(
    broker: Broker, group: str
) -> None:
    """The kitchen's connection is taken over (a client with its id connects: the broker
    drops the kitchen's and sends its last will, "gone"), and the kitchen reconnects by
    itself. The hall, which saw that "gone", takes the kitchen back all the same: a run
    seen to end never comes back, but a connection that ends is not the device's end."""
    kitchen, hall = pair(broker, group)
    try:
        impostor = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ttbt5-kitchen-peers")
        impostor.connect(broker.host, broker.port)

        def gone() -> bool:
            impostor.loop(0.05)  # no reconnecting of its own: the kitchen takes its id back
            return "kitchen" not in hall.peers

        wait_until(gone, what="the kitchen's last will")
        impostor.disconnect()
        wait_until(
            lambda: "kitchen" in hall.peers and kitchen.connected,
            timeout=30,
            what="the kitchen back in the hall's group",
        )
        time.sleep(0.3)  # the hall has subscribed to the kitchen's claims again
        exactly_one(kitchen, hall)
    finally:
        kitchen.close()
        hall.close()


def test_a_flood_on_every_topic_a_stranger_can_see_changes_nothing(
    broker: Broker, group: str
) -> None:
    """A stranger watching the wire floods what it saw at the rate the attack was seen at:
    each device's last claim topic with 6,000 forged claims a second (made to look signed:
    a MAC field, the device's announced session, rising numbers, score 1.0) and copies of
    the claim it saw there, and the group's announcements with forged ones. A claim's
    topic is used once and the next cannot be worked out without the key, so none of the
    claims reaches a device, and the announcements arrive on a connection of their own:
    exactly one device answers each wake, and neither device's rate is touched."""
    kitchen, hall = pair(broker, group)
    spy = Listener(broker, (group_topic(group) + "/#",))
    floods: list[Flood] = []
    try:
        kitchen.claim("hey_jarvis", 0.99)  # a real claim of each, recorded off the wire
        hall.claim("hey_jarvis", 0.2)
        wait_until(lambda: len(spy.messages) >= 2, what="both claims on the wire")
        recorded = {m.json()["device"]: m for m in spy.messages}
        time.sleep(1.0)

        for device in ("kitchen", "hall"):
            session = hall.peers["kitchen"] if device == "kitchen" else kitchen.peers["hall"]

            def forged(n: int, device: str = device, session: str = session) -> str:
                claim = {
                    "device": device,
                    "model": "hey_jarvis",
                    "score": 1.0,
                    "level_db": 0.0,
                    "session": session,
                    "seq": 10**6 + n,
                    "t": time.time(),
                    "mac": f"{n:064x}",
                }
                return json.dumps(claim, separators=(",", ":"))

            def replayed(n: int, device: str = device) -> str:
                return recorded[device].text

            topic = recorded[device].topic
            floods += [Flood(broker, topic, 3000, forged), Flood(broker, topic, 3000, replayed)]
        announcement = json.dumps({"device": "x", "session": "s", "present": True, "next": 1})
        floods.append(Flood(broker, f"{peers_topic(group)}/x", 500, lambda n: announcement))
        time.sleep(0.5)
        exactly_one(kitchen, hall, rounds=3)
        assert all(flood.sent > 1000 for flood in floods)
        for arbiter in (kitchen, hall):
            status = arbiter.status()
            counts = status["claims"]
            assert counts["unauthenticated"] == 0 and counts["stale"] == 0, counts  # type: ignore[index]
            assert counts["rate_limited"] == 0, counts  # type: ignore[index]
            assert status["ignored_announcements"] > 500, status  # type: ignore[operator]
            assert status["peers"] == 1
    finally:
        for flood in floods:
            flood.stop()
        spy.close()
        kitchen.close()
        hall.close()
