"""The parts the soak test drives the real assistant with: a live-paced microphone on a
FIFO behind ALSA's ``file`` plugin, the ``ttbt5 run`` process, an MQTT observer that sends
commands and counts every answer and event, and hostile payloads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent


def asoundrc(workdir: Path, fifo: Path) -> Path:
    """ALSA devices for the run: ``soakmic`` reads the FIFO, ``soakspeaker`` discards."""
    path = workdir / "asoundrc"
    path.write_text(
        f'pcm.soakmic {{ type file slave.pcm "null" file "/dev/null" infile "{fifo}" '
        'format "raw" }\n'
        'pcm.soakspeaker { type file slave.pcm "null" file "/dev/null" format "raw" }\n'
    )
    return path


class Device:
    """``ttbt5 run`` as a subprocess, restarted if it dies (each death is a crash)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.crashes: list[dict[str, Any]] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.workdir / "device.log", "ab")  # noqa: SIM115 (owned by the process)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_app", "run"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._ps = psutil.Process(self.proc.pid)

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.crashes.append({"t": time.time(), "exit": self.proc.returncode})
            self.start()

    def sample(self) -> dict[str, float]:
        try:
            with self._ps.oneshot():
                figures = {
                    "rss_mb": round(self._ps.memory_info().rss / 2**20, 1),
                    "fds": self._ps.num_fds(),
                    "threads": self._ps.num_threads(),
                }
            return {**figures, **_rss_parts(self._ps.pid)}
        except (psutil.Error, OSError):
            return {}

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


class Observer:
    """One MQTT client that sends the commands and records everything the device says."""

    def __init__(self, host: str, port: int, base: str) -> None:
        self.base = base
        self.lock = threading.Lock()
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.anonymous_results = 0
        self.events: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.timeline: list[tuple[float, str, dict[str, Any]]] = []
        self.health: dict[str, Any] = {}
        self.store_statuses: Counter[str] = Counter()
        self.mic_statuses: Counter[str] = Counter()
        self.status = ""
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"soak-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 2)
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.base}/#", qos=1)
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic[len(self.base) + 1 :]
        if topic.startswith("cmd/") and topic != "cmd/result":
            return  # our own commands, hostile ones included
        try:
            data = json.loads(msg.payload) if msg.payload else None
        except (ValueError, RecursionError):
            data = None
        with self.lock:
            if topic == "cmd/result" and isinstance(data, dict):
                rid = data.get("id")
                if isinstance(rid, str):
                    self.results.setdefault(rid, []).append(data)
                else:
                    self.anonymous_results += 1
            elif topic.startswith("event/") and isinstance(data, dict):
                kind = topic[len("event/") :]
                self.events[kind] += 1
                self.timeline.append((time.monotonic(), kind, data))
                del self.timeline[:-500]
                if kind == "error":
                    self.errors[str(data.get("where", "?"))] += 1
            elif topic == "health" and isinstance(data, dict):
                self.health = data
                store = data.get("store")
                if isinstance(store, dict):
                    self.store_statuses[str(store.get("status"))] += 1
                mic = (data.get("audio") or {}).get("input") or {}
                if isinstance(mic, dict) and "status" in mic:
                    self.mic_statuses[str(mic["status"])] += 1
            elif topic == "status":
                self.status = msg.payload.decode(errors="replace")

    def publish(self, command: str, payload: bytes | str, retain: bool = False) -> bool:
        """True once the broker has the message (QoS 1 acknowledged)."""
        if not self.connected.is_set():
            return False
        info = self.client.publish(f"{self.base}/cmd/{command}", payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout=5)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def since(self, t: float, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [data for at, k, data in self.timeline if at >= t and k == kind]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def hostile_payloads(tag: str) -> list[tuple[str, bytes]]:
    """(command, payload) pairs a careless or hostile publisher might send."""
    deep = b"[" * 3000 + b"]" * 3000
    rid = f'"id": "h-{tag}-'
    items: list[tuple[str, bytes]] = [
        ("volume", b"\xff\xfe\x00garbage"),
        ("volume", b"{"),
        ("volume", b"[]"),
        ("volume", b"null"),
        ("volume", deep),
        ("say", b'{"text": 5, ' + rid.encode() + b'1"}'),
        ("say", b'{"text": "", ' + rid.encode() + b'2"}'),
        ("volume", b'{"volume": "loud", ' + rid.encode() + b'3"}'),
        ("volume", b'{"volume": 1e999, ' + rid.encode() + b'4"}'),
        ("mute", b'{"muted": "perhaps", ' + rid.encode() + b'5"}'),
        ("volume", b'{"id": {"nested": [1, 2]}, "volume": 10}'),
        ("listen", b'{"seconds": -1, ' + rid.encode() + b'6"}'),
        ("say", b'{"text": "' + b"x" * 20000 + b'", ' + rid.encode() + b'7"}'),
        ("volume", json.dumps({"volume": 30, "extra": "x" * 5000}).encode()),
    ]
    return items


def _rss_parts(pid: int) -> dict[str, float]:
    """The resident memory the process made (anonymous) apart from the pages of files it
    maps (models, libraries). The kernel may page the latter out when they go cold and
    back in on the next use (DAMON's reclaim does, on machines that run it), which moves
    RSS by megabytes that are not the service's to keep or leak."""
    parts: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile"):
                key = "rss_anon_mb" if name == "RssAnon" else "rss_file_mb"
                parts[key] = round(int(value.split()[0]) / 1024, 1)
    return parts
