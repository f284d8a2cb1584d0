"""A real Mosquitto for the MQTT tests, a recording MQTT client, and a stand-in assistant.

Import the fixtures into a test module (``from mqtt_broker import broker_fixture``): each module
gets its own broker on a free loopback port, with its own config file in a temp dir.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from harness import wait_until
from paho.mqtt.enums import CallbackAPIVersion

from firmware_app.config.settings import MqttSettings, Settings
from firmware_app.core.events import Event, EventBus, wall_now
from firmware_app.core.messages import Command, Message

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Tls:
    ca: Path
    cert: Path
    key: Path


class Broker:
    """One mosquitto process; ``stop()``/``start()`` keep the same port."""

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        tls: Tls | None = None,
        nodelay: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = workdir
        self.users = users
        self.tls = tls
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            f"set_tcp_nodelay {'true' if nodelay else 'false'}",
            f"log_dest file {self.log}",
            "log_type all",
            f"allow_anonymous {'false' if users else 'true'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if users:
            pwfile = workdir / "passwords"
            for index, (user, password) in enumerate(users.items()):
                flags = ["-b", "-c"] if index == 0 else ["-b"]
                subprocess.run([MOSQUITTO_PASSWD, *flags, str(pwfile), user, password], check=True)
            lines.append(f"password_file {pwfile}")
        if tls:
            lines += [f"cafile {tls.ca}", f"certfile {tls.cert}", f"keyfile {tls.key}"]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited: {err} {self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything (a crash, a power cut)."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
        self.proc = None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def make_tls(workdir: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1/localhost, signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TTBT5 test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(workdir / "ca.pem", workdir / "server.pem", workdir / "server.key")
    tls.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return tls


@pytest.fixture(scope="module", name="broker")
def broker_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A plain anonymous broker for this test module."""
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


# -- a recording client ----------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.payload)


class Listener:
    """Subscribes and records everything it receives; ``wait_for`` blocks until a
    matching message arrives (generous timeout: machines are noisy)."""

    def __init__(
        self,
        broker: Broker,
        topics: tuple[str, ...] = ("#",),
        *,
        username: str | None = None,
        password: str | None = None,
        ca: Path | None = None,
    ) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"listener-{uuid.uuid4().hex[:8]}"
        )
        if username:
            self.client.username_pw_set(username, password)
        if ca:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_socket_open = _no_delay
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(TIMEOUT):
            raise RuntimeError("listener did not subscribe")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, p: Any) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.retain, time.time()))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Received], bool] | None = None,
        timeout: float = TIMEOUT,
        after: int = 0,
    ) -> Received:
        """The first message on ``topic`` (a filter: wildcards match) from index ``after``
        that matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[after:]:
                    if mqtt.topic_matches_sub(topic, m.topic) and (
                        predicate is None or predicate(m)
                    ):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"nothing matching on {topic} within {timeout}s; {seen}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(TIMEOUT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@pytest.fixture(name="listener")
def listener_fixture(broker: Broker) -> Iterator[Listener]:
    client = Listener(broker)
    yield client
    client.close()


# -- a stand-in assistant -----------------------------------------------------------------


class FakeAssistant:
    """Records what it is posted and answers commands the way the real one does; the
    events it emits go through a real EventBus."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.state = "idle"
        self.muted = False
        self.volume = 50
        self.wake_count = 0
        self.posted: list[Message] = []
        self.llm: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def post(self, msg: Message) -> None:
        with self._lock:
            self.posted.append(msg)
        if isinstance(msg, Command):
            self._carry_out(msg)

    def commands(self) -> list[Command]:
        with self._lock:
            return [m for m in self.posted if isinstance(m, Command)]

    def _carry_out(self, cmd: Command) -> None:
        assert cmd.reply is not None
        if cmd.name == "mute":
            self.muted = bool(cmd.args["muted"])
            self.emit("mute", muted=self.muted)
        elif cmd.name == "volume":
            self.volume = int(cmd.args["volume"])
            self.emit("volume", volume=self.volume)
        elif cmd.name == "update":
            cmd.reply(False, "updates are not available on this device")
            return
        elif cmd.name in ("say", "ask"):
            origin = "hermes" if cmd.source == "hermes" else "cmd"
            fields = {"utterance": 1, "origin": origin, "request_id": cmd.request_id}
            self.emit("speak_start", **fields)
            self.emit("speak_end", **fields, cut=False)
        cmd.reply(True, None)

    def emit(self, kind: str, **fields: Any) -> Event:
        event = Event(kind, wall_now(), wall_now(), fields)
        if kind == "state":
            self.state = fields["state"]
        if kind == "wake":
            self.wake_count += 1
        self.bus.publish(event)
        return event

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "muted": self.muted,
            "volume": self.volume,
            "wake_count": self.wake_count,
            "errors": 0,
            "timers": [],
            "audio": {"input": "ok", "xruns": 0},
            "llm": self.llm,
            "version": "0.1.0",
        }


def settings_for(broker: Broker, tmp_path: Path, **mqtt: Any) -> Settings:
    """Settings pointing at ``broker`` with a device id of its own (retained messages of
    other tests never leak in)."""
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "device_id": f"t{uuid.uuid4().hex[:10]}",
        "health_interval_s": 1.0,
    }
    values.update(mqtt)
    return Settings(data_dir=tmp_path, mqtt=MqttSettings(**values))


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant()


@contextmanager
def connected_bridge(broker: Broker, tmp_path: Path, assistant: Any, **mqtt: Any) -> Iterator[Any]:
    """A bridge from ``start_mqtt``, connected to ``broker``; closed afterwards."""
    from firmware_app.edges.mqtt import start_mqtt

    bridge = start_mqtt(settings_for(broker, tmp_path, **mqtt), assistant)
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected, what="bridge connected")
        yield bridge
    finally:
        bridge.close()


def assert_will_after_kill(broker: Broker, listener: Listener, pid: int, status: str) -> None:
    """SIGKILL ``pid`` (a process whose bridge is online): the broker publishes its
    retained last will, which a newcomer still sees."""
    import signal

    os.kill(pid, signal.SIGKILL)
    listener.wait_for(status, lambda m: m.text == "offline", timeout=20)
    late = Listener(broker, (status,))
    try:
        msg = late.wait_for(status)
        assert msg.text == "offline" and msg.retain
    finally:
        late.close()
