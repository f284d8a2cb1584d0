"""The soak's hostile-neighbour faults: abuse of the control socket, forged and skewed wake
claims, the wall clock stepped both ways, a corrupt row in the store. Each returns what it
saw, for the report; none of them needs the machine's own clock or root."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_app.app import control, control_client
from firmware_app.config.settings import MqttSettings
from firmware_app.edges.mqtt.arbitration import MqttWakeArbiter
from firmware_app.edges.mqtt.claim_topics import claims_topic, group_topic

GROUP = "soak"
KEY = "soak group key, shared by the device and its peer"
WALL_SKEW_S = 2.0


def socket_abuse(path: Path) -> dict[str, Any]:
    """4 silent connections, one closed at once, 8 ``say`` and vanish, 200 connect-and-leave
    and 2 slow-loris clients; meanwhile a real ``ask`` must be answered in time."""
    silent = []
    for _ in range(4):
        with_timeout = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with_timeout.settimeout(5)
        with_timeout.connect(str(path))
        silent.append(with_timeout)
    stop = threading.Event()

    def loris() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            for byte in b'{"command": "say", "text": "never"}':
                if stop.wait(2.0):
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return

    lorises = [threading.Thread(target=loris, daemon=True) for _ in range(2)]
    for t in lorises:
        t.start()
    try:
        fifth = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        fifth.connect(str(path))
        fifth.close()
        for _ in range(8):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                sock.sendall(b'{"command": "say", "text": "gone"}\n')
        for _ in range(200):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                try:
                    sock.connect(str(path))
                except BlockingIOError:
                    time.sleep(0.01)
        t0 = time.monotonic()
        try:
            replies = control_client.request("ask", "what time is it", path)
            answered = bool(replies)
            error = None
        except control.ControlError as exc:
            answered, error = False, str(exc)
        took = time.monotonic() - t0
    finally:
        stop.set()
        for sock in silent:
            sock.close()
    return {"ask_answered": answered, "ask_s": round(took, 2), "error": error}


class Claims:
    """A peer in the device's group (same key, wall clock ``WALL_SKEW_S`` ahead) and a
    stranger without the key, both claiming while the device hears its wake word."""

    def __init__(self, host: str, port: int) -> None:
        settings = MqttSettings(host=host, port=port, device_id="soak-peer")
        self.peer = MqttWakeArbiter(
            settings, KEY.encode(), GROUP, wall_clock=lambda: time.time() + WALL_SKEW_S
        )
        self.peer.wait_connected(10)
        self.stranger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="aaa-stranger")
        self.stranger.connect(host, port)
        self.stranger.loop_start()
        self.forged = 0
        self.peer_claims = 0

    def during(self, wake: Callable[[], None]) -> None:
        """Run ``wake`` while the peer makes low claims and a stranger forged high ones."""
        stop = threading.Event()

        def stranger() -> None:
            forged = {"device": "aaa-stranger", "model": "hey_jarvis", "score": 1.0, "t": 0}
            topics = (
                group_topic(GROUP),
                f"{group_topic(GROUP)}/soak",
                claims_topic(GROUP, "soak", "0" * 24),
            )
            while not stop.wait(0.1):
                for topic in topics:
                    self.stranger.publish(topic, json.dumps(forged), qos=0)
                    self.forged += 1

        def peer() -> None:
            while not stop.wait(0.3):
                self.peer.claim("hey_jarvis", 0.31)  # always the worse claim
                self.peer_claims += 1

        threads = [threading.Thread(target=f, daemon=True) for f in (stranger, peer)]
        for t in threads:
            t.start()
        try:
            wake()
        finally:
            stop.set()
            for t in threads:
                t.join(5)

    def report(self, health: dict[str, Any]) -> dict[str, Any]:
        return {
            "forged_sent": self.forged,
            "peer_claims": self.peer_claims,
            "device": health.get("arbitration"),
        }

    def close(self) -> None:
        self.stranger.disconnect()
        self.stranger.loop_stop()
        self.peer.close()


class ClockSteps:
    """A timer set, then the device's wall clock stepped an hour forward, two hours back
    and forward again to true (through the test-mode clock file) before it is due: it must
    ring once, on time by the running clock."""

    TIMER_S = 30.0

    def __init__(self, clock_file: Path) -> None:
        self.file = clock_file
        self.file.write_text("0\n")
        self.results: list[dict[str, Any]] = []

    def run(self, set_timer: Callable[[], None], rings: Callable[[float], list[float]]) -> None:
        """Blocking (about ``TIMER_S`` + 15 s): call it on a thread of its own."""
        set_timer()
        t0 = time.monotonic()
        for at, offset in ((3.0, 3600.0), (8.0, -3600.0), (14.0, 0.0)):
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            self.file.write_text(f"{offset}\n")
        time.sleep(max(0.0, t0 + self.TIMER_S + 15 - time.monotonic()))
        after = [round(t - t0, 1) for t in rings(t0)]
        self.results.append({"rang_after_s": after})

    def report(self) -> dict[str, Any]:
        on_time = [
            r
            for r in self.results
            if len(r["rang_after_s"]) >= 1
            and self.TIMER_S - 3 <= r["rang_after_s"][0] <= self.TIMER_S + 10
        ]
        return {"steps": len(self.results), "rang_on_time": len(on_time), "runs": self.results}


def corrupt_row(store: Path) -> None:
    """One timer row of bytes that are not UTF-8 (and one of bad JSON), written beside the
    running service's rows; they are read at its next start."""
    import sqlite3

    with sqlite3.connect(store, timeout=10) as conn:
        conn.execute("INSERT OR REPLACE INTO timers VALUES ('bad-bytes', CAST(x'7bff7d' AS TEXT))")
        conn.execute("INSERT OR REPLACE INTO timers VALUES ('bad-json', '{\"id\": ')")
