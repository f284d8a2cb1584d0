"""The control socket against careless and hostile local clients: real Unix sockets, the
real assistant behind them, and real ``ttbt5`` processes. Nobody locks anybody out for
longer than the per-request deadline, and a write to a vanished client costs only it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from harness import start_service, wait_until
from test_control import Service

from firmware_app.app import control, control_client
from firmware_app.app.control import REQUEST_DEADLINE_S, ControlError
from firmware_app.app.control_server import ControlServer
from firmware_app.core.events import EventBus

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def service(settings, tmp_path: Path) -> Iterator[Service]:
    s = Service(settings, tmp_path / "run")
    yield s
    s.close()


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    return sock


def ask_in_time(service: Service) -> float:
    """A real ``ask`` through the socket; how long it took (it must be answered)."""
    t0 = time.monotonic()
    replies = control_client.request("ask", "what time is it", service.path)
    took = time.monotonic() - t0
    assert replies is not None and replies[0].startswith("It's ")
    return took


def test_silent_connections_and_one_closed_at_once_do_not_stop_the_server(
    service: Service,
) -> None:
    silent = [connect(service.path) for _ in range(4)]
    try:
        fifth = connect(service.path)
        fifth.close()  # the old server wrote "busy" into this and its accept thread died
        assert ask_in_time(service) < REQUEST_DEADLINE_S
        # the silent ones are told, once their deadline has passed, and let go
        silent[0].settimeout(REQUEST_DEADLINE_S + 5)
        answer = json.loads(silent[0].recv(4096).splitlines()[0])
        assert answer["ok"] is False and "incomplete" in answer["error"]
    finally:
        for sock in silent:
            sock.close()
    assert ask_in_time(service) < REQUEST_DEADLINE_S


def test_clients_that_send_say_and_vanish_cost_only_themselves(service: Service) -> None:
    for _ in range(8):
        sock = connect(service.path)
        sock.sendall(b'{"command": "say", "text": "hello there"}\n')
        sock.close()
    assert ask_in_time(service) < REQUEST_DEADLINE_S
    wait_until(
        lambda: len([e for e in service.of("speak_end") if e.fields.get("origin") == "cmd"]) >= 1,
        what="the vanished clients' speech (taken requests are still carried out)",
    )
    assert ask_in_time(service) < REQUEST_DEADLINE_S


def test_a_thousand_connect_and_leave_clients(service: Service) -> None:
    for i in range(1000):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(service.path))
        except BlockingIOError:  # the backlog is full for a moment: the next one waits
            time.sleep(0.01)
        finally:
            if i % 2:  # half of them reset the connection, half close it politely
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            sock.close()
    assert ask_in_time(service) < REQUEST_DEADLINE_S


def test_slow_loris_clients_lock_nobody_out(service: Service) -> None:
    stop = threading.Event()
    told: list[bytes] = []

    def loris() -> None:
        with connect(service.path) as sock:
            request = b'{"command": "say", "text": "never finished"}'
            for byte in request:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    break
                if stop.wait(2.0):
                    return
            sock.settimeout(2)
            try:
                told.append(sock.recv(4096))
            except OSError:
                told.append(b"")

    threads = [threading.Thread(target=loris, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)  # every loris connected and trickling
        assert ask_in_time(service) < REQUEST_DEADLINE_S
        time.sleep(2.5)
        assert ask_in_time(service) < REQUEST_DEADLINE_S
        for t in threads:  # each is cut off at its own deadline, not served
            t.join(REQUEST_DEADLINE_S + 10)
        assert len(told) == 4 and all(b"incomplete" in answer for answer in told), told
    finally:
        stop.set()
    assert not [e for e in service.of("speak_start") if e.fields.get("origin") == "cmd"]


def test_the_socket_appears_only_once_it_takes_connections(tmp_path: Path, monkeypatch) -> None:
    """A client that finds the path is never refused by a service still starting (it
    would take that for no service at all and answer the request itself)."""
    from firmware_app.app import control_server

    path = tmp_path / "control.sock"
    seen_at_listen: list[bool] = []

    class Watched(socket.socket):
        def listen(self, backlog: int = 0) -> None:
            seen_at_listen.append(path.exists())
            super().listen(backlog)

    monkeypatch.setattr(control_server.socket, "socket", Watched)
    server = ControlServer(path, lambda msg: None, EventBus())
    server.start()
    try:
        assert seen_at_listen == [False]
        assert path.is_socket() and stat.S_IMODE(path.stat().st_mode) == 0o660
        assert [p.name for p in tmp_path.iterdir()] == ["control.sock"]  # nothing else left
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))
    finally:
        server.close()


def test_a_server_closing_never_removes_a_socket_it_does_not_own(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    first = ControlServer(path, lambda msg: None, EventBus())
    first.start()
    path.unlink()  # someone else's socket now sits at the same path
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    try:
        first.close()
        assert path.is_socket()
    finally:
        other.close()


def test_the_command_line_gives_up_on_a_service_that_does_not_answer(tmp_path: Path) -> None:
    """A socket that takes connections but never answers (a stuck service): ``ttbt5 ask``
    ends with one line instead of hanging forever."""
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir()
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.bind(str(runtime_dir / control.SOCKET_NAME))
    stuck.listen(8)  # never accepted, never read
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    env |= {"RUNTIME_DIRECTORY": str(runtime_dir), "TTBT5_DATA_DIR": str(tmp_path / "data")}
    try:
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "firmware_app", "ask", "what", "time", "is", "it"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - t0
    finally:
        stuck.close()
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not answer in time" in lines[0], done.stderr
    assert control_client.ACCEPT_TIMEOUT_S <= took < control_client.ACCEPT_TIMEOUT_S + 20


def test_a_full_backlog_is_a_clear_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "control.sock"
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.bind(str(path))
    stuck.listen(0)
    queued: list[socket.socket] = []
    try:
        while True:  # fill the backlog of a service that stopped accepting
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            queued.append(sock)
            try:
                sock.connect(str(path))
            except BlockingIOError:
                break
        monkeypatch.setattr(control_client, "CONNECT_TIMEOUT_S", 1.0)
        t0 = time.monotonic()
        with pytest.raises(ControlError, match="not taking connections"):
            control_client.request("ask", "what time is it", path)
        assert time.monotonic() - t0 < 5
    finally:
        for sock in queued:
            sock.close()
        stuck.close()


def test_a_second_ttbt5_run_refuses_and_leaves_the_first_serving(
    tmp_path: Path, alsa_files
) -> None:
    mic, _ = alsa_files
    mic.write_bytes(np.zeros(16000 * 60, dtype=np.int16).tobytes())
    first = start_service(tmp_path)
    sock_path = first.socket
    try:
        first.wait_serving("the first service's socket")
        before = sock_path.stat().st_ino
        second = first.ttbt5("run", timeout=30)
        assert second.returncode == 1
        assert "already running" in second.stderr and f"pid {first.proc.pid}" in second.stderr
        assert sock_path.is_socket() and sock_path.stat().st_ino == before
        asked = first.ttbt5("ask", "what time is it")
        assert asked.returncode == 0 and asked.stdout.startswith("It's "), asked.stderr
    finally:
        err = first.stop()
    assert first.proc.returncode == 0, err[-2000:]
    assert not sock_path.exists()
    # with the first one gone the lock is free again: a new run could start
    from firmware_app.app.instance import InstanceLock

    lock = InstanceLock(first.runtime_dir)
    lock.acquire()
    lock.release()
