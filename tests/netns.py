"""A network namespace of the test's own, with nothing in it but loopback.

Home Assistant's ESPHome integration and the speaker's satellite both speak mDNS, which
must never reach a shared network; inside this namespace their multicast goes nowhere.
Processes run in it through ``nsenter``; the test, which stays outside, reaches a port in
it through ``forward``: a loopback port out here whose connections are made from a thread
that joined the namespace (a socket keeps the namespace it was created in).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import socket
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
SETUP = (  # loopback up, and able to carry mDNS (zeroconf joins its multicast group)
    "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"
)


def netns_problem() -> str | None:
    """Why a namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "making a network namespace needs root"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return f"network namespaces are not allowed here: {probe.stderr.strip()}"
    return None


class Netns:
    """Held open by a sleeping process; ``close`` ends it and the namespace with it."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", SETUP + " && exec sleep infinity"],
            start_new_session=True,
        )
        self.path = f"/proc/{self._holder.pid}/ns/net"
        self._forwards: list[_Forward] = []
        deadline = time.monotonic() + 10
        while not self._loopback_up():
            if time.monotonic() > deadline or self._holder.poll() is not None:
                self.close()
                raise RuntimeError("the network namespace did not come up")
            time.sleep(0.05)

    def _loopback_up(self) -> bool:
        try:
            if os.readlink(self.path) == os.readlink("/proc/self/ns/net"):
                return False  # not unshared yet
        except OSError:
            return False
        out = subprocess.run(
            ["nsenter", f"--net={self.path}", "ip", "-o", "link", "show", "lo"],
            capture_output=True,
            text=True,
        )
        return "UP" in out.stdout.split(">")[0] if out.returncode == 0 else False

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["nsenter", f"--net={self.path}", *argv]

    def forward(self, port: int) -> int:
        """A loopback port out here that reaches ``port`` on the namespace's loopback."""
        forward = _Forward(self.path, port)
        self._forwards.append(forward)
        return forward.port

    def close(self) -> None:
        for forward in self._forwards:
            forward.close()
        self._holder.kill()
        self._holder.wait()


class _Forward:
    def __init__(self, ns_path: str, target: int) -> None:
        self._ns_path = ns_path
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._requests: queue.Queue[queue.Queue[socket.socket | OSError] | None] = queue.Queue()
        self._closed = False
        threading.Thread(target=self._connector, name="netns-connect", daemon=True).start()
        threading.Thread(target=self._accept, name="netns-accept", daemon=True).start()

    def _connector(self) -> None:
        """Joins the namespace (this thread only) and makes every outgoing connection."""
        libc = ctypes.CDLL(None, use_errno=True)
        with open(self._ns_path) as ns:
            if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
        while (reply := self._requests.get()) is not None:
            try:
                reply.put(socket.create_connection(("127.0.0.1", self._target), timeout=10))
            except OSError as exc:
                reply.put(exc)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            reply: queue.Queue[socket.socket | OSError] = queue.Queue()
            self._requests.put(reply)
            inner = reply.get()
            if isinstance(inner, OSError):
                client.close()
                continue
            inner.settimeout(None)
            for a, b in ((client, inner), (inner, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._requests.put(None)
        self._listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
    with contextlib.suppress(OSError):
        source.close()
