"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the LLM tests and the benchmark:
scripted replies with fixed token timing, and faults (error statuses, hangs, malformed
events, endless streams, dropped connections). It records what it was sent and when
streams ended or were cut by the client."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = Callable[["_Handler"], None]


@dataclass
class Recorded:
    t: float
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeLlm:
    """Each request takes the next scripted behaviour, or ``default`` when the script is
    empty."""

    default: Behaviour | None = None
    requests: list[Recorded] = field(default_factory=list)
    stream_ends: list[float] = field(default_factory=list)
    disconnects: list[float] = field(default_factory=list)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self.script: deque[Behaviour] = deque()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            # The handshake happens in the handler's thread, on its first read.
            self._server.socket = self.tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = "localhost" if self.tls is not None else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/v1"

    def then(self, *behaviours: Behaviour) -> FakeLlm:
        self.script.extend(behaviours)
        return self

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            if self.script:
                return self.script.popleft()
        return self.default or sse(["Hello."])

    def close(self) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed TLS handshakes and dropped clients are what the tests are about


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeLlm
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        fake = self.server_fake
        with fake.lock:
            fake.requests.append(
                Recorded(time.monotonic(), self.path, dict(self.headers.items()), body)
            )
        behaviour = fake.next_behaviour()
        try:
            behaviour(self)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            with fake.lock:
                fake.disconnects.append(time.monotonic())

    def send(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def sleep(self, seconds: float) -> bool:
        """False when the server is shutting down."""
        return not self.server_fake.stop_event.wait(seconds)


def chunk(text: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if text is None else {"content": text}
    obj = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def sse(
    tokens: Iterable[str],
    first_delay: float = 0.0,
    delay: float = 0.0,
    done: bool = True,
    content_type: str = "text/event-stream",
) -> Behaviour:
    """A streamed completion: headers at once, the first token after ``first_delay``,
    then one token every ``delay`` seconds."""
    tokens = list(tokens)

    def run(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.end_headers()
        h.wfile.flush()
        if first_delay and not h.sleep(first_delay):
            return
        for i, token in enumerate(tokens):
            if i and delay and not h.sleep(delay):
                return
            h.send(chunk(token))
        h.send(chunk(finish="stop"))
        if done:
            h.send(b"data: [DONE]\n\n")
        with h.server_fake.lock:
            h.server_fake.stream_ends.append(time.monotonic())

    return run


def timed(schedule: Iterable[tuple[float, str]]) -> Behaviour:
    """A streamed completion where each token is sent ``at`` seconds after the request
    arrived (tokens due at the same time go out together, as one burst)."""
    schedule = sorted(schedule, key=lambda item: item[0])

    def run(h: _Handler) -> None:
        start = time.monotonic()
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        h.wfile.flush()
        for at, token in schedule:
            wait = start + at - time.monotonic()
            if wait > 0 and not h.sleep(wait):
                return
            h.send(chunk(token))
        h.send(chunk(finish="stop") + b"data: [DONE]\n\n")
        with h.server_fake.lock:
            h.server_fake.stream_ends.append(time.monotonic())

    return run


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Behaviour:
    def run(h: _Handler) -> None:
        h.send_response(code)
        for name, value in (headers or {"Content-Type": "application/json"}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.send(body)

    return run


def raw(parts: Iterable[bytes], delay: float = 0.0, content_type: str = "text/event-stream"):
    """Whatever bytes a broken or hostile server sends."""
    parts = list(parts)

    def run(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.end_headers()
        for part in parts:
            h.send(part)
            if delay and not h.sleep(delay):
                return
        with h.server_fake.lock:
            h.server_fake.stream_ends.append(time.monotonic())

    return run


def endless(token: str = "la la. ", delay: float = 0.0) -> Behaviour:
    """A stream that never ends (until the client goes away or the server stops)."""

    def run(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        while not h.server_fake.stop_event.is_set():
            h.send(chunk(token))
            if delay and not h.sleep(delay):
                return

    return run


def hang() -> Behaviour:
    """Accept the request and never answer."""

    def run(h: _Handler) -> None:
        h.sleep(3600)

    return run


def refused_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
