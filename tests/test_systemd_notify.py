"""sd_notify over a real AF_UNIX datagram socket: READY, WATCHDOG only while frames are
consumed, STOPPING, STATUS; the abstract namespace; the health file; a no-op without
systemd."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_app.system.notify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(0.5)
    yield sock, path
    sock.close()


def received(sock: socket.socket, wait: float = 0.3) -> list[str]:
    """Every datagram that arrives within ``wait`` seconds of the last one."""
    messages = []
    sock.settimeout(wait)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            return messages


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ready_watchdog_stopping_status(notify_socket: tuple[socket.socket, str]):
    sock, path = notify_socket
    clock = Clock()
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier(env=env, clock=clock)
    assert notifier.interval == 1.0  # half of WatchdogSec
    notifier.ready()
    assert received(sock) == ["READY=1\nSTATUS=listening"]

    # 80 ms frames: one ping per half watchdog period, not one per frame
    for _ in range(40):  # 3.2 s of audio
        notifier.frame()
        clock.now += 0.08
    pings = received(sock)
    assert pings == ["WATCHDOG=1"] * 4

    notifier.status("muted\nby button")
    notifier.stopping()
    assert received(sock) == ["STATUS=muted by button", "STOPPING=1"]
    notifier.close()


def test_a_stalled_audio_loop_stops_the_pings(notify_socket: tuple[socket.socket, str]):
    """A real audio thread on the real clock: pings while it runs, none once it stalls,
    because nothing but frame() ever sends WATCHDOG=1."""
    sock, path = notify_socket
    notifier = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    stalled = threading.Event()

    def audio_loop() -> None:
        while not stalled.is_set():
            notifier.frame()
            time.sleep(0.01)

    thread = threading.Thread(target=audio_loop)
    thread.start()
    time.sleep(0.5)
    stalled.set()  # the loop hangs (here: stops) — the process itself lives on
    thread.join()
    while_running = received(sock, wait=0.2)
    assert while_running and set(while_running) == {"WATCHDOG=1"}
    # ten watchdog periods later: not a single ping
    assert received(sock, wait=1.0) == []
    notifier.frame()  # audio comes back: so do the pings
    assert received(sock) == ["WATCHDOG=1"]


def test_abstract_namespace_socket():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"ttbt5-test-{os.getpid()}-{time.monotonic_ns()}"
    sock.bind("\0" + name)
    try:
        Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1\nSTATUS=listening"]
    finally:
        sock.close()


def test_no_watchdog_for_another_pid_or_without_usec(notify_socket: tuple[socket.socket, str]):
    sock, path = notify_socket
    other = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    plain = Notifier(env={"NOTIFY_SOCKET": path})
    assert other.interval is None and plain.interval is None
    for _ in range(5):
        other.frame()
        plain.frame()
    assert received(sock) == []


def test_without_systemd_everything_is_a_no_op(tmp_path: Path):
    notifier = Notifier(env={})
    notifier.ready()
    notifier.frame()
    notifier.status("x")
    notifier.stopping()
    assert notifier.health_file is None
    # a socket path that does not exist: logged, never raised
    broken = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    broken.ready()


def test_health_file_for_the_update_gate(tmp_path: Path):
    clock = Clock()
    notifier = Notifier(version="1.2.3", env={"RUNTIME_DIRECTORY": str(tmp_path)}, clock=clock)
    health = tmp_path / "health.json"
    assert notifier.health_file == health
    notifier.ready()
    data = json.loads(health.read_text())
    assert data["version"] == "1.2.3" and data["ready"] and data["pid"] == os.getpid()
    assert data["frames"] == 0 and data["last_frame"] is None
    for _ in range(30):  # 2.4 s of frames: written at most once a second
        notifier.frame()
        clock.now += 0.08
    data = json.loads(health.read_text())
    assert 20 <= data["frames"] < 30
    assert data["last_frame"] == pytest.approx(time.time(), abs=5)
    notifier.stopping()
    data = json.loads(health.read_text())
    assert data["stopping"] and data["frames"] == 30
