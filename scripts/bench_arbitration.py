#!/usr/bin/env python3
"""Wake arbitration under a flood, printed as JSON.

Two devices, each in its own process as on two speakers, arbitrate wakes that both heard
(alternately the better one) while a stranger that watches the wire floods, at each rate,
every topic it can see: each device's last claim topic (forged claims), the group's topic
under each device's name, and the group's announcements (forged ones, a quarter of the
rate). Per rate: how many wakes exactly one device answered, two or none, how long a
claim took to decide, and what reached the devices (claims turned away, announcements
ignored).

Needs ``/usr/sbin/mosquitto`` and ``mosquitto_pub``. The floods come from separate
processes. Usage: ``python scripts/bench_arbitration.py [--rates 0,6000,12000] [--rounds 8]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # shared harness

from mqtt_broker import Broker

from firmware_app.config.settings import MqttSettings
from firmware_app.edges.mqtt.arbitration import MqttWakeArbiter, peers_topic
from firmware_app.edges.mqtt.claim_topics import claims_topic, group_topic

KEY = b"bench-group-key-0123456789abcdef"
GROUP = "bench"
DEVICES = ("kitchen", "hall")
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def forged(n: int, device: str) -> str:
    """A claim made to look signed (a MAC field, a high score), as a stranger would."""
    return json.dumps(
        {
            "device": device,
            "model": "hey_jarvis",
            "score": 1.0,
            "level_db": 0.0,
            "session": "0" * 16,
            "seq": 10**6 + n,
            "t": 0,
            "mac": f"{n:064x}",
        },
        separators=(",", ":"),
    )


def flood(port: int, topic: str, rate: int, device: str) -> None:
    """Runs in its own process: ``rate`` forged claims a second through ``mosquitto_pub``."""
    pub = subprocess.Popen(
        [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "0", "-l"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert pub.stdin is not None
    tick, n, due = 0.05, 0, time.monotonic()
    while True:
        due += tick
        lines = []
        for _ in range(int(rate * tick)):
            n += 1
            lines.append(forged(n, device))
        pub.stdin.write(("\n".join(lines) + "\n").encode())
        pub.stdin.flush()
        time.sleep(max(0.0, due - time.monotonic()))


def start_floods(port: int, rate: int, topics: list[tuple[str, str]]) -> list[Any]:
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=flood, args=(port, topic, rate, device), daemon=True)
        for topic, device in topics
    ]
    for proc in procs:
        proc.start()
    return procs


def stop(procs: list[Any]) -> None:
    for proc in procs:
        proc.kill()
        proc.join(5)


def device(name: str, port: int, conn: Connection) -> None:
    """Runs in its own process: one device's arbiter, claiming when told to."""
    arbiter = MqttWakeArbiter(
        MqttSettings(host="127.0.0.1", port=port, device_id=name), KEY, group=GROUP
    )
    ok = arbiter.wait_connected(10.0) and arbiter.wait_peers(1, 10.0)
    conn.send(ok)
    while (order := conn.recv()) is not None:
        at, score = order
        time.sleep(max(0.0, at - time.time()))
        start = time.monotonic()
        won = arbiter.claim("hey_jarvis", score)
        conn.send((won, time.monotonic() - start, bool(arbiter.last.get("echo"))))
    conn.send(arbiter.status())
    arbiter.close()


class Spy:
    """A stranger's client reading every claim topic of the group: the last one of each."""

    def __init__(self, port: int) -> None:
        self.topics: dict[str, str] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stranger-spy")
        self.client.on_connect = lambda c, *a: c.subscribe(claims_topic(GROUP, "+"), 0)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        time.sleep(0.5)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.topics[msg.topic.rsplit("/", 2)[-2]] = msg.topic

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rounds(port: int, rate: int, count: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for name in DEVICES:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=device, args=(name, port, theirs))
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    if not all(pipe.recv() for pipe in pipes):
        raise SystemExit("the devices did not see each other")
    seen = Spy(port)
    for pipe, score in zip(pipes, (0.5, 0.4), strict=True):  # claims the stranger sees
        pipe.send((time.time(), score))
        pipe.recv()
    time.sleep(1.0)
    targets = [(seen.topics[d], d) for d in DEVICES]
    targets += [(f"{group_topic(GROUP)}/{d}", d) for d in DEVICES]
    floods = start_floods(port, rate, targets) if rate else []
    if rate:
        floods += start_floods(port, rate // 4, [(f"{peers_topic(GROUP)}/x", "x")])
    time.sleep(2.0)  # the flood is under way before the first wake
    outcome = {"exactly_one_right": 0, "two": 0, "none": 0, "wrong_one": 0}
    decide_s: list[float] = []
    late = 0
    for n in range(count):
        scores = (0.93, 0.71) if n % 2 else (0.71, 0.93)
        at = time.time() + 0.2
        for pipe, score in zip(pipes, scores, strict=True):
            pipe.send((at, score))
        results = [pipe.recv() for pipe in pipes]
        won = [r[0] for r in results]
        decide_s += [r[1] for r in results]
        late += sum(r[0] and not r[2] for r in results)
        if won == [scores[0] > scores[1], scores[1] > scores[0]]:
            outcome["exactly_one_right"] += 1
        elif all(won):
            outcome["two"] += 1
        elif not any(won):
            outcome["none"] += 1
        else:
            outcome["wrong_one"] += 1
        time.sleep(1.0)
    stop(floods)
    seen.close()
    for pipe in pipes:
        pipe.send(None)
    counts = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join(10)
    return {
        "flood_per_topic_per_s": rate,
        "flood_total_per_s": rate * 2 * len(DEVICES) + rate // 4,
        "wakes": count,
        **outcome,
        "decide_s": {
            "median": round(statistics.median(decide_s), 3),
            "max": round(max(decide_s), 3),
        },
        "won_without_echo": late,
        "claims_turned_away": [
            sum(c["claims"][k] for k in ("unauthenticated", "stale")) for c in counts
        ],
        "announcements_ignored": [c["ignored_announcements"] for c in counts],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0,3000,6000,12000")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        broker.start()
        try:
            result = {
                "load": os.getloadavg(),
                "rounds": [
                    rounds(broker.port, int(rate), args.rounds) for rate in args.rates.split(",")
                ],
            }
        finally:
            broker.stop()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
