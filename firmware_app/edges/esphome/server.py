"""The API's connections, on one asyncio loop in its own thread.

Each connection reads frames (`frames`), answers the session messages itself (hello,
connect, device info, entities, states, ping, disconnect, time) and hands every other
message to the `Handler` (the satellite). What a hostile peer can cost is bounded:

- frames over ``frames.MAX_FRAME``, garbage and undecodable messages drop the connection;
- a connection that has not finished hello and connect within ``HANDSHAKE_S`` is closed;
- at most ``max_connections`` at once: a new one beyond that evicts the oldest connection
  still in its handshake, and is refused if every slot holds a connected client, so a
  flood never pushes Home Assistant's established connection out;
- a peer that stops reading is dropped once ``MAX_BACKLOG`` bytes wait to be sent;
- a peer that says nothing for ``PING_AFTER_S`` is pinged and dropped after ``DEAD_AFTER_S``
  of silence (Home Assistant pings every 20 s, so a dead one is noticed within a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as Proto
from loguru import logger

from firmware_app.edges.esphome import proto
from firmware_app.edges.esphome.frames import FrameError, Framing, NoiseFraming, PlainFraming
from firmware_app.edges.esphome.proto import pb

HANDSHAKE_S = 10.0
PING_AFTER_S = 30.0
DEAD_AFTER_S = 50.0
MAX_BACKLOG = 1024 * 1024
KEEPALIVE_CHECK_S = 1.0


class Handler(Protocol):
    """What the connections need from the satellite."""

    def device_info(self) -> Proto: ...

    def entities(self) -> list[Proto]: ...

    def states(self) -> list[Proto]: ...

    def on_message(self, conn: Connection, msg: Proto) -> None: ...

    def on_closed(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One client. Only touched on the loop's thread."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.framing: Framing = server.new_framing()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.client_info = ""
        self.connected = False
        """Hello and connect done: the client may use the API."""
        self.opened = time.monotonic()
        self.last_heard = self.opened
        self.closed = False

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self.server.admit(self):
            logger.warning("esphome: {} refused: too many connections", self.peer)
            self.close()

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        try:
            packets = self.framing.feed(data)
        except FrameError as exc:
            self._flush_framing()
            logger.info("esphome: {} dropped: {}", self.peer, exc)
            self.close()
            return
        self._flush_framing()
        for type_, payload in packets:
            if self.closed:
                return
            try:
                msg = proto.decode(type_, payload)
            except DecodeError:
                logger.info("esphome: {} dropped: message type {} does not parse", self.peer, type_)
                self.close()
                return
            if msg is not None:
                self._dispatch(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.forget(self)

    # --- sending
    def send(self, *messages: Proto) -> None:
        if self.closed or self.transport is None or not self.framing.ready:
            return
        try:
            data = self.framing.encode([proto.encode(m) for m in messages])
        except FrameError as exc:
            logger.error("esphome: not sent to {}: {}", self.peer, exc)
            return
        if self.transport.get_write_buffer_size() + len(data) > MAX_BACKLOG:
            logger.warning("esphome: {} dropped: it does not read what is sent", self.peer)
            self.close()
            return
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if not self.closed:
            self.closed = True
            self.server.forget(self)

    def _flush_framing(self) -> None:
        out = self.framing.take_output()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    # --- the session messages
    def _dispatch(self, msg: Proto) -> None:
        handler = self.server.handler
        if isinstance(msg, pb.HelloRequest):
            self.client_info = msg.client_info[:64]
            self.send(
                pb.HelloResponse(
                    api_version_major=proto.API_MAJOR,
                    api_version_minor=proto.API_MINOR,
                    server_info=self.server.server_info,
                    name=self.server.name,
                )
            )
        elif isinstance(msg, pb.ConnectRequest):
            self.connected = True  # no password: the key (if any) already proved the peer
            self.send(pb.ConnectResponse(invalid_password=False))
            logger.info("esphome: {} connected ({})", self.peer, self.client_info or "?")
        elif isinstance(msg, pb.PingRequest):
            self.send(pb.PingResponse())
        elif isinstance(msg, pb.DisconnectRequest):
            self.send(pb.DisconnectResponse())
            self.close()
        elif isinstance(msg, pb.DeviceInfoRequest):
            self.send(handler.device_info())
        elif not self.connected:
            logger.info("esphome: {} dropped: {} before connect", self.peer, type(msg).__name__)
            self.close()
        elif isinstance(msg, pb.ListEntitiesRequest):
            self.send(*handler.entities(), pb.ListEntitiesDoneResponse())
        elif isinstance(msg, pb.SubscribeStatesRequest):
            self.send(*handler.states())
        elif isinstance(msg, pb.GetTimeRequest):
            self.send(pb.GetTimeResponse(epoch_seconds=int(time.time())))
        elif isinstance(msg, pb.PingResponse | pb.DisconnectResponse):
            pass
        else:
            handler.on_message(self, msg)


class ApiServer:
    """The listening socket and its connections (create and use on the loop's thread)."""

    def __init__(
        self,
        handler: Handler,
        *,
        name: str,
        mac: str,
        server_info: str,
        psk: bytes | None,
        max_connections: int,
    ) -> None:
        self.handler = handler
        self.name = name
        self.mac = mac
        self.server_info = server_info
        self.psk = psk
        self.max_connections = max_connections
        self.connections: list[Connection] = []
        self.handshake_s = HANDSHAKE_S
        self.ping_after_s = PING_AFTER_S
        self.dead_after_s = DEAD_AFTER_S
        self.check_every_s = KEEPALIVE_CHECK_S
        self._server: asyncio.Server | None = None
        self._keepalive: asyncio.Task[None] | None = None

    def new_framing(self) -> Framing:
        if self.psk is None:
            return PlainFraming()
        # the hello carries the MAC as Home Assistant's client compares it: aabbccddeeff
        return NoiseFraming(self.psk, self.name, self.mac.replace(":", "").lower())

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (the one given, or the one chosen for port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, reuse_address=True
        )
        self._keepalive = loop.create_task(self._watch())
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def admit(self, conn: Connection) -> bool:
        if len(self.connections) >= self.max_connections:
            waiting = [c for c in self.connections if not c.connected]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda c: c.opened)
            logger.info("esphome: {} dropped to make room", oldest.peer)
            oldest.close()
        self.connections.append(conn)
        return True

    def forget(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
            self.handler.on_closed(conn)

    async def _watch(self) -> None:
        """Handshake deadlines and keepalive, for every connection."""
        while True:
            await asyncio.sleep(self.check_every_s)
            now = time.monotonic()
            for conn in list(self.connections):
                silent = now - conn.last_heard
                if not conn.connected and now - conn.opened > self.handshake_s:
                    logger.info("esphome: {} dropped: no handshake in time", conn.peer)
                    conn.close()
                elif silent > self.dead_after_s:
                    logger.warning("esphome: {} dropped: silent for {:.0f} s", conn.peer, silent)
                    conn.close()
                elif silent > self.ping_after_s:
                    conn.send(pb.PingRequest())


class LoopThread:
    """An asyncio loop on its own daemon thread; the rest of the program reaches it only
    through ``call`` (fire and forget) and ``run`` (wait for a result)."""

    def __init__(self, name: str = "esphome") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closing: nothing left to tell
                self.loop.call_soon_threadsafe(fn, *args)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()
