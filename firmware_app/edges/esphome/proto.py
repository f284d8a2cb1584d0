"""The API's messages: aioesphomeapi's protobuf classes and their type numbers.

The messages this device speaks are listed by hand, so what it reads and writes can be
seen here; their numbers come from the ``id`` option in the ``.proto`` itself, so they are
exactly the ones Home Assistant's client uses (aioesphomeapi is imported only here and
only when the satellite is enabled: importing it costs memory the plain speaker never
pays). A message of any other type is ignored, as ESPHome ignores the ones it does not
implement.
"""

from __future__ import annotations

from typing import Any

from aioesphomeapi import api_options_pb2, api_pb2
from google.protobuf.message import Message as Proto

pb: Any = api_pb2
_options: Any = api_options_pb2
"""The generated modules (their classes are made at run time, so typed as Any)."""

SPOKEN: tuple[type[Proto], ...] = (
    # the connection
    pb.HelloRequest,
    pb.HelloResponse,
    pb.ConnectRequest,
    pb.ConnectResponse,
    pb.DisconnectRequest,
    pb.DisconnectResponse,
    pb.PingRequest,
    pb.PingResponse,
    pb.DeviceInfoRequest,
    pb.DeviceInfoResponse,
    pb.GetTimeRequest,
    pb.GetTimeResponse,
    # entities and their states
    pb.ListEntitiesRequest,
    pb.ListEntitiesSensorResponse,
    pb.ListEntitiesSwitchResponse,
    pb.ListEntitiesSelectResponse,
    pb.ListEntitiesMediaPlayerResponse,
    pb.ListEntitiesDoneResponse,
    pb.SubscribeStatesRequest,
    pb.SensorStateResponse,
    pb.SwitchStateResponse,
    pb.SwitchCommandRequest,
    pb.SelectStateResponse,
    pb.SelectCommandRequest,
    pb.MediaPlayerStateResponse,
    pb.MediaPlayerCommandRequest,
    # the voice assistant
    pb.SubscribeVoiceAssistantRequest,
    pb.VoiceAssistantRequest,
    pb.VoiceAssistantResponse,
    pb.VoiceAssistantEventResponse,
    pb.VoiceAssistantAudio,
    pb.VoiceAssistantTimerEventResponse,
    pb.VoiceAssistantAnnounceRequest,
    pb.VoiceAssistantAnnounceFinished,
    pb.VoiceAssistantConfigurationRequest,
    pb.VoiceAssistantConfigurationResponse,
    pb.VoiceAssistantSetConfiguration,
)
"""Every message this device reads or writes."""


def type_number(cls: type[Proto]) -> int:
    """The message's number on the wire, from the ``.proto``."""
    number = int(cls.DESCRIPTOR.GetOptions().Extensions[_options.id])
    if not number:
        raise ValueError(f"{cls.__name__} is not a message of its own on the wire")
    return number


BY_TYPE: dict[int, type[Proto]] = {type_number(cls): cls for cls in SPOKEN}
TYPE_OF: dict[type[Proto], int] = {cls: number for number, cls in BY_TYPE.items()}

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
