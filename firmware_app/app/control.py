"""The control socket: one assistant per device.

While ``ttbt5 run`` is running, ``ttbt5 ask`` and ``ttbt5 say`` are carried out by it: the
command line connects to ``control.sock`` in the service's runtime directory, sends one
request and prints what the service replies. So a typed request is heard exactly like a
spoken one: custom sentences publish over the service's MQTT connection, a timer is the
service's timer, "repeat that" repeats its last reply, and no second process opens the
sound card. Without a running service the command runs in-process instead.

The protocol is one JSON line each way and then some: the request
``{"command": "ask"|"say", "text": "..."}``; answers ``{"reply": "..."}`` for each reply,
then one ``{"ok": true}`` or ``{"ok": false, "error": "..."}`` that ends the exchange. A
request that is not valid (too long, not JSON, unknown fields) gets only the error line,
and the server goes on serving. The socket is the service's (owner and group, mode 0660):
only members of its group can use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware_app.core.errors import TTBT5Error
from firmware_app.core.events import Event, EventBus
from firmware_app.core.messages import MAX_TEXT_CHARS, Command, Message

SOCKET_NAME = "control.sock"
DEFAULT_RUNTIME_DIR = Path("/run/ttbt5")
MAX_REQUEST_BYTES = 8192
MAX_CLIENTS = 4
"""Requests served at once; more are answered ``busy`` (each holds a thread)."""
ANSWER_TIMEOUT_S = 120.0
READ_TIMEOUT_S = 5.0
RESTING = {"idle", "muted", "error"}


class ControlError(TTBT5Error):
    """The running service refused a request or could not be reached."""


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    command: Literal["ask", "say"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


def socket_path(env: Mapping[str, str] = os.environ) -> Path:
    """Where the service listens: its runtime directory (``$RUNTIME_DIRECTORY`` under
    systemd), else ``/run/ttbt5``."""
    runtime = env.get("RUNTIME_DIRECTORY")
    base = Path(runtime.split(":")[0]) if runtime else DEFAULT_RUNTIME_DIR
    return base / SOCKET_NAME


class ControlServer:
    """Serves ``ask``/``say`` requests for the running assistant, each on its own thread."""

    def __init__(self, path: Path, post: Callable[[Message], None], bus: EventBus) -> None:
        self.path = path
        self._post = post
        self._bus = bus
        self._sock: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="control", daemon=True)

    def start(self) -> None:
        """Listen (replacing a socket a previous run left behind)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)  # never world-writable, not even for a moment
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
        sock.listen(MAX_CLIENTS)
        self._sock = sock
        self._thread.start()
        logger.info("control socket: {}", self.path)

    def close(self) -> None:
        self._closed.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):  # wakes the accept loop
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                _send(conn, {"ok": False, "error": "busy: too many requests at once"})
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(READ_TIMEOUT_S)
                try:
                    request = _read_request(conn)
                except ControlError as exc:
                    _send(conn, {"ok": False, "error": str(exc)})
                    return
                try:
                    for answer in self.carry_out(request):
                        _send(conn, answer)
                except OSError:
                    raise
                except Exception as exc:  # one request must not take the server down
                    logger.opt(exception=exc).error("control: {} failed: {}", request.command, exc)
                    _send(conn, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        except OSError as exc:  # the client went away: nothing to tell it
            logger.debug("control: client gone: {}", exc)
        finally:
            self._slots.release()

    def carry_out(self, request: Request) -> Iterator[dict[str, object]]:
        """Post the request to the assistant and follow it to its end on the event bus:
        each ``reply`` it gets, then whether its speech was heard."""
        token = f"control-{uuid.uuid4().hex[:12]}"
        events: queue.Queue[Event | tuple[bool, str | None]] = queue.Queue()

        def observe(event: Event) -> None:  # the assistant's thread: hand over, no more
            if event.fields.get("request_id") == token or event.type == "state":
                events.put(event)

        def answered(ok: bool, error: str | None) -> None:
            events.put((ok, error))

        self._bus.subscribe(observe)
        try:
            args = {"text": request.text}
            self._post(Command(request.command, args, answered, "control", token))
            yield from _follow(events, request.command)
        finally:
            self._bus.unsubscribe(observe)


def _follow(
    events: queue.Queue[Event | tuple[bool, str | None]], command: str
) -> Iterator[dict[str, object]]:
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    accepted = False
    replied = False
    while True:
        try:
            item = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            yield {"ok": False, "error": "no answer from the assistant in time"}
            return
        if isinstance(item, tuple):
            ok, error = item
            if not ok:
                yield {"ok": False, "error": error or f"{command} failed"}
                return
            accepted = True
            continue
        kind, fields = item.type, item.fields
        if kind == "reply":
            replied = True
            yield {"reply": fields.get("text", "")}
        elif kind == "speak_end":
            yield {"ok": True} if not fields.get("cut") else _not_heard("cut off")
            return
        elif kind == "speak_dropped":
            yield _not_heard(str(fields.get("reason") or "not spoken"))
            return
        elif kind == "state" and command == "ask" and accepted and not replied:
            done = fields.get("state") in RESTING  # handled with nothing to say ("stop")
            if done:
                yield {"ok": True}
                return


def _not_heard(reason: str) -> dict[str, object]:
    return {"ok": False, "error": f"the reply was not heard whole: {reason}"}


def _read_request(conn: socket.socket) -> Request:
    data = b""
    while b"\n" not in data:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            raise ControlError("request incomplete: send one JSON line") from None
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ControlError(f"request too large (limit {MAX_REQUEST_BYTES} bytes)")
    line = data.split(b"\n", 1)[0]
    if len(line) > MAX_REQUEST_BYTES:
        raise ControlError(f"request too large (limit {MAX_REQUEST_BYTES} bytes)")
    try:
        return Request.model_validate(json.loads(line.decode("utf-8")))
    except UnicodeDecodeError:
        raise ControlError("request is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "request"
            raise ControlError(f"bad request: {where}: {first['msg']}") from None
        raise ControlError('request is not JSON: send {"command": ..., "text": ...}') from None


def _send(conn: socket.socket, answer: Mapping[str, object]) -> None:
    line = json.dumps(answer, ensure_ascii=False, separators=(",", ":")) + "\n"
    conn.sendall(line.encode("utf-8"))


# -- the command line's side ---------------------------------------------------------------


def request(
    command: Literal["ask", "say"], text: str, path: Path | None = None
) -> list[str] | None:
    """Have the running service carry out ``command``; its replies, or None when no
    service is listening (then the caller runs it in-process). Raises ControlError when
    the service refuses or fails it."""
    path = path or socket_path()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None  # no service running
    except PermissionError:
        sock.close()
        raise ControlError(
            f"the running service's {path} is not open to this user: join its group "
            "(sudo adduser $USER ttbt5) or use --local"
        ) from None
    replies: list[str] = []
    with sock:
        sock.settimeout(ANSWER_TIMEOUT_S + 10)
        _send(sock, {"command": command, "text": text})
        for answer in _answers(sock):
            if "reply" in answer:
                replies.append(str(answer["reply"]))
            elif answer.get("ok") is True:
                return replies
            else:
                raise ControlError(str(answer.get("error") or f"{command} failed"))
    raise ControlError("the running service closed the connection without an answer")


def _answers(sock: socket.socket) -> Iterator[dict[str, object]]:
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            answer = json.loads(line)
            if isinstance(answer, dict):
                yield answer
