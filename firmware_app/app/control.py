"""The control socket: one assistant per device. This module is what its two sides share:
where the socket is, the request, the limits both keep and the line format; the service's
side is ``control_server``, the command line's ``control_client``.

While ``ttbt5 run`` is running, ``ttbt5 ask`` and ``ttbt5 say`` are carried out by it: the
command line connects to ``control.sock`` in the service's runtime directory, sends one
request and prints what the service replies. So a typed request is heard exactly like a
spoken one: custom sentences publish over the service's MQTT connection, a timer is the
service's timer, "repeat that" repeats its last reply, and no second process opens the
sound card. Without a running service the command runs in-process instead.

The protocol is one JSON line each way and then some: the request
``{"command": "ask"|"say", "text": "..."}``; answers ``{"accepted": true}`` as soon as the
assistant has taken it, ``{"reply": "..."}`` for each reply, then one ``{"ok": true}`` or
``{"ok": false, "error": "..."}`` that ends the exchange. A request that is not valid (too
long, not JSON, unknown fields) gets only the error line, and the server goes on serving.
The socket is the service's (owner and group, mode 0660): only members of its group can
use it.

Every local client is assumed careless or hostile: a connection must send its request
within ``REQUEST_DEADLINE_S`` and take each answer line within it, whatever it does costs
only its own exchange, and the command line gives up with one clear line when the service
does not take its connection or answer in time.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware_app.core.errors import TTBT5Error
from firmware_app.core.messages import MAX_TEXT_CHARS

SOCKET_NAME = "control.sock"
DEFAULT_RUNTIME_DIR = Path("/run/ttbt5")
MAX_REQUEST_BYTES = 8192
REQUEST_DEADLINE_S = 5.0
"""A connection must have sent its whole request line within this; every answer line must
be taken by the client within it too. No client holds anything longer."""
ANSWER_TIMEOUT_S = 120.0


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


def parse_request(data: bytes) -> Request:
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


def encode_line(answer: Mapping[str, object]) -> bytes:
    return (json.dumps(answer, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def send_line(conn: socket.socket, answer: Mapping[str, object]) -> None:
    conn.sendall(encode_line(answer))
