"""The API's messages: aioesphomeapi's protobuf classes and their type numbers.

The numbers come from the ``id`` option in the ``.proto`` itself, so this map is exactly
the one Home Assistant's client uses (aioesphomeapi is imported only here and only when
the satellite is enabled: importing it costs memory the plain speaker never pays).
"""

from __future__ import annotations

from typing import Any

from aioesphomeapi import api_options_pb2, api_pb2
from google.protobuf.message import Message as Proto

pb: Any = api_pb2
_options: Any = api_options_pb2
"""The generated module (its classes are made at run time, so typed as Any)."""


def _type_map() -> dict[int, type[Proto]]:
    out: dict[int, type[Proto]] = {}
    for name, desc in pb.DESCRIPTOR.message_types_by_name.items():
        number = desc.GetOptions().Extensions[_options.id]
        if number:
            out[int(number)] = getattr(api_pb2, name)
    return out


BY_TYPE = _type_map()
TYPE_OF = {cls: number for number, cls in BY_TYPE.items()}

API_MAJOR, API_MINOR = 1, 10
"""The API version answered in HelloResponse (that of ESPHome 2025.4, which Home
Assistant 2024.10 and later speak)."""

# VoiceAssistantFeature flags (aioesphomeapi.model), as DeviceInfo announces them
VOICE_ASSISTANT, API_AUDIO, TIMERS, ANNOUNCE, START_CONVERSATION = 1, 4, 8, 16, 32


def decode(type_: int, payload: bytes) -> Proto | None:
    """The message, or None for a type this server does not know (ignored, as ESPHome
    does). A payload that does not parse raises DecodeError (the connection is dropped)."""
    cls = BY_TYPE.get(type_)
    if cls is None:
        return None
    msg = cls()
    msg.ParseFromString(payload)
    return msg


def encode(msg: Proto) -> tuple[int, bytes]:
    return TYPE_OF[type(msg)], msg.SerializeToString()
