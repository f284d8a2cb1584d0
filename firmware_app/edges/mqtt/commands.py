"""Commands arriving on ``ttbt5/<device_id>/cmd/<name>``.

Anyone on the broker can write there, so every payload is treated as hostile: it is
checked for size, encoding and shape before anything reaches the assistant, and whatever
happens the sender gets exactly one answer on ``cmd/result``: ``{command, id, ok, error}``
(``id`` echoes the request's own ``"id"`` field, so automations can match answers).

Accepted payloads (JSON objects or the plain forms Home Assistant and ``mosquitto_pub``
send naturally):

- ``say``/``ask``: ``{"text": "..."}`` or the text itself;
- ``mute``: ``{"muted": true}``, ``true``/``false`` or ``ON``/``OFF``;
- ``volume``: ``{"volume": 40}`` or ``40`` (0-100);
- ``listen``/``stop``/``update``/``false_wake``: nothing, ``{}``, ``PRESS`` or ``install``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, cast

from loguru import logger
from pydantic import ValidationError

from firmware_app.core.errors import BadInputError
from firmware_app.core.messages import (
    COMMAND_ARGS,
    Command,
    CommandName,
    Message,
    RequestId,
)

MAX_PAYLOAD_BYTES = 4096
MAX_IN_FLIGHT = 32
"""Commands handed to the assistant and not yet answered; more are refused, so a flood
cannot grow the assistant's queue without bound."""

COMMANDS: tuple[CommandName, ...] = (
    "say", "ask", "listen", "stop", "mute", "volume", "update", "false_wake"
)  # fmt: skip
_PRESS_WORDS = {"", "press", "install", "{}"}
_ON_WORDS = {"on": True, "off": False, "true": True, "false": False}


class CommandError(BadInputError):
    """A command payload was refused; the message is the one-line ``error`` of the reply."""


_MODELS = COMMAND_ARGS

_NOT_JSON = object()


MAX_ID_CHARS = 64
RETAINED = (
    "refused: the command was published with the retain flag, so the broker would run it "
    "again at every reconnect; publish it without retain"
)


def request_id(payload: bytes) -> RequestId:
    """The ``id`` a JSON-object payload carries, echoed on ``cmd/result`` so automations can
    match answers to requests; None when absent or unusable (the answer then says why)."""
    if len(payload) > MAX_PAYLOAD_BYTES or not payload.lstrip().startswith(b"{"):
        return None
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if _usable_id(value) else None


def _usable_id(value: object) -> bool:
    """A short string or a whole number JSON peers can round-trip exactly."""
    if isinstance(value, str):
        return len(value) <= MAX_ID_CHARS
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53


def parse_command(name: str, payload: bytes) -> tuple[CommandName, dict[str, Any]]:
    """Validate one command; raise CommandError with a one-line reason."""
    if name not in _MODELS:
        raise CommandError(f"unknown command {_shown(name)}; known: {', '.join(COMMANDS)}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload too large: {len(payload)} bytes (limit {MAX_PAYLOAD_BYTES})")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError("payload is not valid UTF-8") from None
    data = _json_or_plain(text)
    args = _normalise(name, text, data)
    try:
        model = _MODELS[name].model_validate(args)
    except ValidationError as exc:
        raise CommandError(_describe(exc)) from None
    values = model.model_dump()
    if "text" in values:
        values["text"] = values["text"].strip()
        if not values["text"]:
            raise CommandError("text: must not be blank")
    return cast(CommandName, name), values


def _json_or_plain(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _normalise(name: str, text: str, data: Any) -> Any:
    """Turn the plain forms into the object form; leave anything else for the model to
    refuse with a precise message."""
    if isinstance(data, dict):
        if "id" in data and not _usable_id(data["id"]):
            raise CommandError(
                f"id: must be a string of up to {MAX_ID_CHARS} characters or a whole number"
            )
        return {k: v for k, v in data.items() if k != "id"}
    if name in ("say", "ask"):
        if not text:
            raise CommandError(f"{name} wants some text; the payload is empty")
        if data is _NOT_JSON:
            return {"text": text}
        if isinstance(data, str):
            return {"text": data}
        raise CommandError(f'{name} wants plain text or {{"text": ...}}, got {_kind(data)}')
    if name == "mute":
        if isinstance(data, bool):
            return {"muted": data}
        word = data if isinstance(data, str) else text if data is _NOT_JSON else None
        if word is not None and word.strip().lower() in _ON_WORDS:
            return {"muted": _ON_WORDS[word.strip().lower()]}
        raise CommandError('mute wants ON, OFF, true, false or {"muted": true|false}')
    if name == "volume":
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, int) and not isinstance(data, bool):
            return {"volume": data}
        raise CommandError('volume wants a whole number 0-100 or {"volume": N}')
    # listen, stop, update, false_wake
    if data is None or (data is _NOT_JSON and text.lower() in _PRESS_WORDS):
        return {}
    if isinstance(data, str) and data.strip().lower() in _PRESS_WORDS:
        return {}
    raise CommandError(f"{name} takes no arguments (send an empty payload)")


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    key = ".".join(str(p) for p in first["loc"]) or "payload"
    if first["type"] == "extra_forbidden":
        return f"unknown field {_shown(key)}"
    if first["type"] == "missing":
        return f"missing field {key!r}"
    return f"{key}: {first['msg']}"


def _kind(data: Any) -> str:
    return "null" if data is None else type(data).__name__


def _shown(text: str) -> str:
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text)


Publish = Callable[[dict[str, Any]], None]


class CommandHandler:
    """Validates and routes commands from paho's thread; answers each exactly once."""

    def __init__(
        self, post: Callable[[Message], None], publish_result: Publish, limit: int = MAX_IN_FLIGHT
    ) -> None:
        self._post = post
        self._publish_result = publish_result
        self._limit = limit
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def handle(self, name: str, payload: bytes, retained: bool = False) -> None:
        """Never raises: a bad command is answered with its error and goes no further.
        ``retained``: the broker delivered a stored message; it is answered, never run."""
        shown = name if len(name) <= 64 else name[:61] + "..."
        rid = request_id(payload)
        try:
            if retained:
                raise CommandError(RETAINED)
            command, args = parse_command(name, payload)
        except CommandError as exc:
            logger.info("MQTT command {} refused: {}", _shown(shown), exc)
            self._publish_result({"command": shown, "id": rid, "ok": False, "error": str(exc)})
            return
        with self._lock:
            if self._in_flight >= self._limit:
                busy = True
            else:
                busy = False
                self._in_flight += 1
        if busy:
            self._publish_result(
                {
                    "command": command,
                    "id": rid,
                    "ok": False,
                    "error": "busy: too many commands waiting",
                }
            )
            return
        reply = self._reply_for(command, rid)
        try:
            self._post(Command(command, args, reply, request_id=rid))
        except Exception as exc:
            logger.error("MQTT command {} could not be handed over: {}", command, exc)
            reply(False, "the assistant is not accepting commands")

    def _reply_for(self, command: str, rid: RequestId) -> Callable[[bool, str | None], None]:
        done = False
        lock = threading.Lock()

        def reply(ok: bool, error: str | None = None) -> None:
            nonlocal done
            with lock:
                if done:
                    return
                done = True
            with self._lock:
                self._in_flight -= 1
            self._publish_result({"command": command, "id": rid, "ok": bool(ok), "error": error})

        return reply
