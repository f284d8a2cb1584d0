"""Reading Wyoming events with every length checked before anything is buffered.

A Wyoming event is a JSON header line, then ``data_length`` bytes of JSON and
``payload_length`` bytes of payload. The ``wyoming`` package's reader trusts both lengths
(a header claiming a 4 GB payload makes it wait for, and keep, 4 GB); this reader refuses
a header line, data block or payload over its limit before reading it, and a header that
is not a JSON object naming a type. Writing uses the package's own writer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from wyoming.event import Event

from firmware_app.core.errors import BadInputError

MAX_HEADER_BYTES = 16 * 1024
"""Longest header line; Home Assistant's are a few hundred bytes."""
MAX_DATA_BYTES = 64 * 1024
"""Longest JSON data block (a synthesis request's text is in it)."""
MAX_PAYLOAD_BYTES = 256 * 1024
"""Longest payload of one event: an audio chunk is a few kilobytes (8 s of 16 kHz audio
fits)."""


class FramingError(BadInputError):
    """The peer sent something that is not a Wyoming event within the limits."""


@dataclass(frozen=True)
class Limits:
    header: int = MAX_HEADER_BYTES
    data: int = MAX_DATA_BYTES
    payload: int = MAX_PAYLOAD_BYTES


def reader_limit(limits: Limits) -> int:
    """The ``limit`` to give ``asyncio.start_server``: a line longer than the header limit
    fails inside the stream reader, before it is buffered whole."""
    return limits.header + 1


async def read_event(reader: asyncio.StreamReader, limits: Limits) -> Event | None:
    """The next event, or None when the peer closed the connection between events.

    Raises FramingError for anything malformed or over a limit, and
    ``asyncio.IncompleteReadError`` when the peer closes in the middle of an event.
    """
    try:
        line = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError) as exc:
        raise FramingError(f"header line longer than {limits.header} bytes") from exc
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise asyncio.IncompleteReadError(line, None)
    header = _json_object(line, "header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise FramingError("header has no event type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise FramingError("header data is not an object")
    data_length = _length(header, "data_length", limits.data)
    if data_length:
        data = {**data, **_json_object(await reader.readexactly(data_length), "data")}
    payload_length = _length(header, "payload_length", limits.payload)
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=kind, data=data, payload=payload)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FramingError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise FramingError(f"{what} is not a JSON object")
    return value


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FramingError(f"{key} is not a byte count")
    if value > limit:
        raise FramingError(f"{key} {value} is over the limit of {limit} bytes")
    return value
