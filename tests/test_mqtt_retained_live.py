"""A command published with the retain flag is never carried out, on every path: stored at
the broker before the device subscribed, or published while it is connected (MQTT 3.1.1
forwards that one to live subscribers without the flag; the bridge speaks MQTT 5 and asks
for Retain-As-Published). A broker that speaks only MQTT 3.1.1 still works. Real Mosquitto,
with a stranger client publishing."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_broker import (
    Broker,
    FakeAssistant,
    Listener,
    connected_bridge,
    settings_for,
    wait_until,
)

from firmware_app.edges.mqtt import start_mqtt
from firmware_app.edges.mqtt.commands import RETAINED

HERMES_SAY = "hermes/tts/say"


def test_a_retained_command_published_while_connected_is_refused(
    broker: Broker, tmp_path: Path, assistant: FakeAssistant, listener: Listener
) -> None:
    with connected_bridge(broker, tmp_path, assistant, hermes=True) as bridge:
        topic = bridge.topics.cmd("volume")
        stranger = Listener(broker, ("nothing/here",))  # a 3.1.1 client, like mosquitto_pub
        try:
            mark = listener.mark()
            stranger.publish(topic, '{"volume": 3, "id": "sticky"}', retain=True)
            reply = listener.wait_for(bridge.topics.cmd_result, after=mark).json()
            assert reply == {"command": "volume", "id": "sticky", "ok": False, "error": RETAINED}

            # a retained Hermes request is ignored too; a live one is carried out
            stranger.publish(HERMES_SAY, '{"text": "stale", "id": "h1"}', retain=True)
            mark = listener.mark()
            stranger.publish(topic, '{"volume": 40, "id": "live"}')
            live = listener.wait_for(bridge.topics.cmd_result, after=mark).json()
            assert live["ok"] is True and live["id"] == "live"
            wait_until(lambda: len(assistant.commands()) == 1, what="the live command")
            assert [c.args for c in assistant.commands()] == [{"volume": 40}]
        finally:
            stranger.publish(topic, b"", retain=True)  # leave the broker as it was
            stranger.publish(HERMES_SAY, b"", retain=True)
            stranger.close()


class OldBroker:
    """What a broker that speaks only MQTT 3.1.1 does, in front of the real Mosquitto: an
    MQTT 5 CONNECT is refused with the 3.1.1 answer "unacceptable protocol version"
    (CONNACK return code 1); any other connection is passed through to Mosquitto."""

    def __init__(self, upstream: Broker) -> None:
        self.upstream = upstream
        self.refused = 0
        self.passed = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self._server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            packet = _read_packet(conn)
        except OSError:
            conn.close()
            return
        level = _protocol_level(packet)
        if level == 5:
            self.refused += 1
            conn.sendall(b"\x20\x02\x00\x01")
            conn.close()
            return
        self.passed += 1
        up = socket.create_connection((self.upstream.host, self.upstream.port))
        self._sockets.append(up)
        up.sendall(packet)
        threading.Thread(target=_pipe, args=(up, conn), daemon=True).start()
        _pipe(conn, up)

    def close(self) -> None:
        self._server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> bytes:
    """One whole MQTT packet (fixed header, remaining length, body)."""
    head = _read_exact(sock, 1)
    length, shift, raw = 0, 0, b""
    while True:
        byte = _read_exact(sock, 1)
        raw += byte
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
    return head + raw + _read_exact(sock, length)


def _protocol_level(packet: bytes) -> int:
    """The protocol level of a CONNECT: after the remaining length and "MQTT"."""
    i = 1
    while packet[i] & 0x80:
        i += 1
    i += 1
    name_len = int.from_bytes(packet[i : i + 2], "big")
    return packet[i + 2 + name_len]


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def old_broker(broker: Broker) -> Iterator[OldBroker]:
    proxy = OldBroker(broker)
    yield proxy
    proxy.close()


def test_a_broker_that_speaks_only_311_still_serves_commands(
    broker: Broker, old_broker: OldBroker, tmp_path: Path, listener: Listener
) -> None:
    settings = settings_for(broker, tmp_path, port=old_broker.port)
    topic = f"ttbt5/{settings.mqtt.device_id}/cmd/volume"
    listener.publish(topic, '{"volume": 5, "id": "stored"}', retain=True)
    assistant = FakeAssistant()
    bridge = start_mqtt(settings, assistant)
    assert bridge is not None
    try:
        wait_until(lambda: bridge.connected, timeout=15, what="connected through 3.1.1")
        assert old_broker.refused >= 1 and old_broker.passed >= 1
        # stored before the device subscribed: delivered with the flag, refused
        stored = listener.wait_for(bridge.topics.cmd_result).json()
        assert stored["id"] == "stored" and stored["ok"] is False
        mark = listener.mark()
        listener.publish(topic, "40")
        live = listener.wait_for(bridge.topics.cmd_result, after=mark).json()
        assert live["ok"] is True
        wait_until(lambda: [c.args for c in assistant.commands()] == [{"volume": 40}])
    finally:
        bridge.close()
        listener.publish(topic, b"", retain=True)
