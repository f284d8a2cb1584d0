"""The control socket's server: the running service's side of ``ttbt5 ask``/``say``.

One thread reads every connection without blocking, each under its own deadline, and hands
a complete request to a thread of its own that posts it to the assistant and follows it on
the event bus. The protocol and the limits the client shares are in ``control``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import selectors
import socket
import stat
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from firmware_app.app.control import (
    ANSWER_TIMEOUT_S,
    MAX_REQUEST_BYTES,
    REQUEST_DEADLINE_S,
    ControlError,
    Request,
    encode_line,
    parse_request,
    send_line,
)
from firmware_app.core.events import Event, EventBus
from firmware_app.core.messages import Command, Message

MAX_CLIENTS = 4
"""Requests carried out at once (each holds a thread); more wait for one to finish, up to
``REQUEST_DEADLINE_S``, and are then answered ``busy``."""
MAX_WAITING = 64
"""Connections still sending their request; a newcomer beyond this pushes out the oldest."""
RESTING = {"idle", "muted", "error"}


@dataclass
class _Waiting:
    """A connection that has not yet sent its whole request."""

    conn: socket.socket
    deadline: float
    data: bytes = b""


class ControlServer:
    """Serves ``ask``/``say`` requests for the running assistant.

    One thread reads every connection's request without blocking, each under its own
    deadline, so silent, slow or vanishing clients cost a file descriptor for at most
    ``REQUEST_DEADLINE_S`` and never the thread. A complete request is carried out on a
    thread of its own (at most ``MAX_CLIENTS``); a write to a client that fails or stalls
    ends that client's exchange only.
    """

    def __init__(self, path: Path, post: Callable[[Message], None], bus: EventBus) -> None:
        self.path = path
        self._post = post
        self._bus = bus
        self._sock: socket.socket | None = None
        self._bound: tuple[int, int] | None = None
        """The (device, inode) of the socket this server created: the only one it removes."""
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._closed = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)  # a full pipe already says "look again"
        self._thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self._ready: deque[tuple[socket.socket, Request, float]] = deque()
        """Complete requests waiting (each until its deadline) for a request to finish."""
        self.refused = 0
        """Connections answered ``busy``, timed out or pushed out (for tests and health)."""

    def start(self) -> None:
        """Listen. A socket left behind is replaced: the caller holds the instance lock
        (``instance.hold``), so no other service can be using it.

        The socket is bound and listening under a hidden name first and then renamed into
        place, so its path appears only once it takes connections: a client that finds
        the path and is refused knows no service is there (``ttbt5 ask`` then answers
        itself), never that one is still starting."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_socket():
            self.path.unlink()
        staging = self.path.with_name(f".{self.path.name}.new")
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)  # never world-writable, not even for a moment
        try:
            sock.bind(str(staging))
        finally:
            os.umask(old)
        os.chmod(staging, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
        sock.listen(MAX_WAITING)
        os.replace(staging, self.path)
        info = os.stat(self.path)
        self._bound = (info.st_dev, info.st_ino)
        sock.setblocking(False)
        self._sock = sock
        self._thread.start()
        logger.info("control socket: {}", self.path)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._bound is not None:
            with contextlib.suppress(OSError):
                info = os.stat(self.path)
                if (info.st_dev, info.st_ino) == self._bound:  # never another's socket
                    self.path.unlink()

    # -- the reading thread --------------------------------------------------------------

    def _loop(self) -> None:
        assert self._sock is not None
        selector = selectors.DefaultSelector()
        selector.register(self._sock, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        waiting: dict[int, _Waiting] = {}  # by file descriptor, oldest first
        try:
            while not self._closed.is_set():
                try:
                    self._turn(selector, waiting)
                except Exception as exc:  # nothing a client does may end this loop
                    logger.opt(exception=exc).error("control: {}", exc)
                    time.sleep(0.05)
        finally:
            for item in waiting.values():
                item.conn.close()
            for conn, _, _ in self._ready:
                conn.close()
            selector.close()

    def _turn(self, selector: selectors.BaseSelector, waiting: dict[int, _Waiting]) -> None:
        now = time.monotonic()
        deadlines = [w.deadline for w in waiting.values()] + [d for _, _, d in self._ready]
        first = min(deadlines, default=now + 1.0)
        for key, _ in selector.select(max(0.0, first - now)):
            if key.fileobj is self._sock:
                self._take(selector, waiting)
            elif key.fileobj is self._wake_r:
                self._wake_r.recv(4096)  # a request finished: a slot may be free
            else:
                item = waiting.get(key.fd)
                if item is not None and item.conn is key.fileobj:  # not pushed out just now
                    self._read(selector, waiting, item)
        now = time.monotonic()
        for item in [w for w in waiting.values() if w.deadline <= now]:
            self._drop(selector, waiting, item, "request incomplete: send one JSON line")
        self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        """Start the requests that wait, oldest first, while there is room; one that has
        waited its whole deadline is answered ``busy``."""
        while self._ready:
            conn, request, deadline = self._ready[0]
            if self._slots.acquire(blocking=False):
                self._ready.popleft()
                worker = threading.Thread(target=self._serve, args=(conn, request), daemon=True)
                worker.start()
            elif deadline <= now:
                self._ready.popleft()
                self.refused += 1
                _answer_and_close(conn, {"ok": False, "error": "busy: too many requests at once"})
            else:
                return

    def _take(self, selector: selectors.BaseSelector, waiting: dict[int, _Waiting]) -> None:
        assert self._sock is not None
        for _ in range(MAX_WAITING):
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of file descriptors: let the others finish first
                logger.warning("control: cannot take a connection: {}", exc)
                time.sleep(0.05)
                return
            conn.setblocking(False)
            if len(waiting) >= MAX_WAITING:
                oldest = next(iter(waiting.values()))
                self._drop(selector, waiting, oldest, "too many connections: try again")
            item = _Waiting(conn, time.monotonic() + REQUEST_DEADLINE_S)
            waiting[conn.fileno()] = item
            selector.register(conn, selectors.EVENT_READ)

    def _read(
        self, selector: selectors.BaseSelector, waiting: dict[int, _Waiting], item: _Waiting
    ) -> None:
        try:
            chunk = item.conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:  # reset by the client: nobody to answer
            self._forget(selector, waiting, item)
            item.conn.close()
            return
        item.data += chunk
        if chunk and b"\n" not in item.data and len(item.data) <= MAX_REQUEST_BYTES:
            return
        self._forget(selector, waiting, item)
        try:
            request = parse_request(item.data)
        except ControlError as exc:
            _answer_and_close(item.conn, {"ok": False, "error": str(exc)})
            return
        if len(self._ready) >= MAX_WAITING:
            self.refused += 1
            _answer_and_close(item.conn, {"ok": False, "error": "busy: too many requests at once"})
            return
        self._ready.append((item.conn, request, time.monotonic() + REQUEST_DEADLINE_S))

    def _drop(
        self,
        selector: selectors.BaseSelector,
        waiting: dict[int, _Waiting],
        item: _Waiting,
        error: str,
    ) -> None:
        self.refused += 1
        self._forget(selector, waiting, item)
        _answer_and_close(item.conn, {"ok": False, "error": error})

    @staticmethod
    def _forget(
        selector: selectors.BaseSelector, waiting: dict[int, _Waiting], item: _Waiting
    ) -> None:
        waiting.pop(item.conn.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(item.conn)

    # -- one request's thread ------------------------------------------------------------

    def _serve(self, conn: socket.socket, request: Request) -> None:
        try:
            with conn:
                conn.setblocking(True)
                conn.settimeout(REQUEST_DEADLINE_S)  # a client that stops reading: its loss
                try:
                    for answer in self.carry_out(request, lambda: _hung_up(conn)):
                        send_line(conn, answer)
                except OSError:
                    raise
                except Exception as exc:  # one request must not take the server down
                    logger.opt(exception=exc).error("control: {} failed: {}", request.command, exc)
                    send_line(conn, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        except OSError as exc:  # the client went away or stopped reading: nothing to tell it
            logger.debug("control: client gone: {}", exc)
        finally:
            self._slots.release()
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")

    def carry_out(
        self, request: Request, gone: Callable[[], bool] = lambda: False
    ) -> Iterator[dict[str, object]]:
        """Post the request to the assistant and follow it to its end on the event bus:
        that it was taken, each ``reply`` it gets, then whether its speech was heard.
        Following stops early when ``gone`` says the client hung up (the request itself
        goes on: a ``say`` taken is still spoken)."""
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
            yield from _follow(events, request.command, gone)
        finally:
            self._bus.unsubscribe(observe)


def _follow(
    events: queue.Queue[Event | tuple[bool, str | None]],
    command: str,
    gone: Callable[[], bool],
) -> Iterator[dict[str, object]]:
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    accepted = False
    replied = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            yield {"ok": False, "error": "no answer from the assistant in time"}
            return
        try:
            item = events.get(timeout=min(left, 0.25))
        except queue.Empty:
            if gone():
                return
            continue
        if isinstance(item, tuple):
            ok, error = item
            if not ok:
                yield {"ok": False, "error": error or f"{command} failed"}
                return
            accepted = True
            yield {"accepted": True}
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


def _hung_up(conn: socket.socket) -> bool:
    """Whether the client closed its end entirely (a half-closed client, done sending but
    still reading, has not)."""
    poller = select.poll()
    poller.register(conn, select.POLLHUP | select.POLLERR)
    try:
        return any(mask & (select.POLLHUP | select.POLLERR) for _, mask in poller.poll(0))
    except OSError:
        return True


def _answer_and_close(conn: socket.socket, answer: Mapping[str, object]) -> None:
    """One last line to a client, if it takes it at once; whatever happens, close."""
    with conn, contextlib.suppress(OSError):
        conn.setblocking(False)
        conn.send(encode_line(answer))


def _not_heard(reason: str) -> dict[str, object]:
    return {"ok": False, "error": f"the reply was not heard whole: {reason}"}
