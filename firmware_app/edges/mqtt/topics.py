"""The MQTT namespace, in one place, so documentation, discovery and the bridge agree."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "ttbt5"

HERMES_TTS_SAY = "hermes/tts/say"
HERMES_TTS_SAY_FINISHED = "hermes/tts/sayFinished"
HERMES_START_SESSION = "hermes/dialogueManager/startSession"
HERMES_TEXT_CAPTURED = "hermes/asr/textCaptured"
HERMES_NOT_RECOGNIZED = "hermes/nlu/intentNotRecognized"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def topic_part(text: str) -> str:
    """One topic level made from outside text (an event type, a model or intent name):
    no ``/``, ``+``, ``#`` or empty levels can come out of it."""
    return _UNSAFE.sub("_", text)[:64] or "_"


def hermes_hotword_detected(wakeword_id: str) -> str:
    return f"hermes/hotword/{topic_part(wakeword_id)}/detected"


def hermes_intent(name: str) -> str:
    return f"hermes/intent/{topic_part(name)}"


@dataclass(frozen=True)
class Topics:
    """Every topic of one device under ``ttbt5/<device_id>/``."""

    device_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{PREFIX}/{self.device_id}"

    @property
    def status(self) -> str:
        """``online``/``offline``, retained; the last will."""
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def health(self) -> str:
        return f"{self.base}/health"

    @property
    def metrics(self) -> str:
        return f"{self.base}/metrics"

    @property
    def cmd_filter(self) -> str:
        return f"{self.base}/cmd/+"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/result"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth/last-will topic."""
        return f"{self.discovery_prefix}/status"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    def event(self, kind: str) -> str:
        return f"{self.base}/event/{topic_part(kind)}"

    def command_name(self, topic: str) -> str | None:
        """The command a ``cmd/<name>`` topic addresses; None for other topics and for
        ``cmd/result`` (our own replies come back through the same subscription)."""
        head = f"{self.base}/cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return None if name == "result" else name

    def discovery(self, component: str, key: str) -> str:
        return f"{self.discovery_prefix}/{component}/{PREFIX}_{self.device_id}/{key}/config"
