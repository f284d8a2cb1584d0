"""The control socket's client: how ``ttbt5 ask`` and ``ttbt5 say`` reach the running
service. It gives up with one clear line when the service does not take its connection or
answer in time, so a stuck service never hangs the command line. The protocol is in
``control``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from firmware_app.app.control import (
    ANSWER_TIMEOUT_S,
    REQUEST_DEADLINE_S,
    ControlError,
    send_line,
    socket_path,
)

CONNECT_TIMEOUT_S = 5.0
"""The command line's wait for the service to take its connection."""
ACCEPT_TIMEOUT_S = REQUEST_DEADLINE_S + 5.0
"""The command line's wait for the service's first answer line (it is sent as soon as the
assistant has taken the request)."""


def request(
    command: Literal["ask", "say"], text: str, path: Path | None = None
) -> list[str] | None:
    """Have the running service carry out ``command``; its replies, or None when no
    service is listening (then the caller runs it in-process). Raises ControlError when
    the service refuses or fails it, or does not answer in time (a stuck service must
    not hang the command line)."""
    path = path or socket_path()
    sock = _connect(path)
    if sock is None:
        return None  # no service running
    replies: list[str] = []
    with sock:
        sock.settimeout(ACCEPT_TIMEOUT_S)
        try:
            send_line(sock, {"command": command, "text": text})
            for answer in _answers(sock):
                sock.settimeout(ANSWER_TIMEOUT_S + 10)  # it answered: it is alive
                if answer.get("accepted") is True:
                    continue
                if "reply" in answer:
                    replies.append(str(answer["reply"]))
                elif answer.get("ok") is True:
                    return replies
                else:
                    raise ControlError(str(answer.get("error") or f"{command} failed"))
        except TimeoutError:
            raise ControlError(
                f"the running service ({path}) did not answer in time: it may be stuck; "
                "see journalctl -u ttbt5, or use --local"
            ) from None
        except (BrokenPipeError, ConnectionResetError):
            pass
    raise ControlError("the running service closed the connection without an answer")


def _connect(path: Path) -> socket.socket | None:
    """Connected to the service, or None when none listens. A full backlog (a service
    that stopped taking connections) is retried until ``CONNECT_TIMEOUT_S``."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except PermissionError:
            sock.close()
            raise ControlError(
                f"the running service's {path} is not open to this user: join its group "
                "(sudo adduser $USER ttbt5) or use --local"
            ) from None
        except (BlockingIOError, TimeoutError):
            sock.close()
            if time.monotonic() >= deadline:
                raise ControlError(
                    f"the running service ({path}) is not taking connections "
                    f"(waited {CONNECT_TIMEOUT_S:.0f} s): it may be stuck; use --local"
                ) from None
            time.sleep(0.05)


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
