"""Rhasspy/Snips Hermes topics, so Node-RED flows written for Rhasspy keep working.

Out: ``hermes/hotword/<wakewordId>/detected``, ``hermes/asr/textCaptured``,
``hermes/intent/<intentName>`` or ``hermes/nlu/intentNotRecognized``, and
``hermes/tts/sayFinished``, with Rhasspy's camelCase payloads and ``siteId`` = the device
id; ``sayFinished`` is sent when the speech a ``hermes/tts/say`` asked for ends (heard,
cut or not spoken), with that request's ``id``. In: ``hermes/tts/say`` and
``hermes/dialogueManager/startSession`` for our site (or with no ``siteId``). No audio
frames travel over MQTT.

Hermes flows consume recognised text, so turning ``mqtt.hermes`` on publishes it on these
topics whatever ``mqtt.publish_transcripts`` says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware_app.core.events import Event
from firmware_app.core.messages import MAX_TEXT_CHARS, Command, Message
from firmware_app.edges.mqtt import topics as t
from firmware_app.edges.mqtt.commands import MAX_PAYLOAD_BYTES

NOT_RECOGNIZED = {"", "none", "unknown", "fallback", "llm", "not_recognized"}
"""Intent names that mean no local intent matched."""
SUBSCRIPTIONS = (t.HERMES_TTS_SAY, t.HERMES_START_SESSION)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class TtsSay(_In):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    siteId: str | None = None
    id: str | None = None
    sessionId: str | None = None
    lang: str | None = None


class SessionInit(_In):
    type: Literal["action", "notification"] = "action"
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)


class StartSession(_In):
    init: SessionInit = SessionInit()
    siteId: str | None = None
    customData: str | None = None


Published = tuple[str, dict[str, Any]]


class Hermes:
    """Translates events to Hermes messages (on the bridge's worker thread) and Hermes
    requests to commands (on paho's thread)."""

    def __init__(self, site_id: str, post: Callable[[Message], None]) -> None:
        self.site_id = site_id
        self._post = post
        self._session_id: str | None = None
        self._wakeword_id: str | None = None
        self._input: str | None = None
        self._awaiting_intent = False

    # -- out ---------------------------------------------------------------------------

    def translate(self, event: Event) -> list[Published]:
        f = event.fields
        site = self.site_id
        if event.type == "wake":
            self._session_id = uuid.uuid4().hex
            self._wakeword_id = str(f.get("model") or "default")
            return [
                (
                    t.hermes_hotword_detected(self._wakeword_id),
                    {
                        "modelId": self._wakeword_id,
                        "modelVersion": "",
                        "modelType": "personal",
                        "currentSensitivity": _number(f.get("score"), 1.0),
                        "siteId": site,
                        "sessionId": self._session_id,
                        "sendAudioCaptured": None,
                        "lang": None,
                        "customEntities": None,
                    },
                )
            ]
        if event.type == "transcript":
            text = str(f.get("text") or "")
            self._input = text
            self._awaiting_intent = True
            return [
                (
                    t.HERMES_TEXT_CAPTURED,
                    {
                        "text": text,
                        "likelihood": 1.0,
                        "seconds": 0.0,
                        "siteId": site,
                        "sessionId": self._session_id,
                        "wakewordId": self._wakeword_id,
                        "asrTokens": None,
                        "lang": None,
                    },
                )
            ]
        if event.type == "intent" and self._awaiting_intent:
            self._awaiting_intent = False
            name = str(f.get("name") or "")
            if name.lower() in NOT_RECOGNIZED:
                return [self._not_recognized()]
            return [(t.hermes_intent(name), self._intent(name, f.get("slots")))]
        if event.type == "reply" and self._awaiting_intent:
            # answered without a local intent (LLM or fallback)
            self._awaiting_intent = False
            return [self._not_recognized()]
        if event.type in ("speak_end", "speak_dropped") and f.get("origin") == "hermes":
            # the utterance a Hermes say asked for has ended (heard, cut or not spoken)
            say_id = f.get("request_id")
            return [
                (
                    t.HERMES_TTS_SAY_FINISHED,
                    {
                        "siteId": site,
                        "id": say_id if isinstance(say_id, str) else None,
                        "sessionId": self._session_id,
                    },
                )
            ]
        return []

    def _intent(self, name: str, slots: Any) -> dict[str, Any]:
        items = slots.items() if isinstance(slots, dict) else []
        return {
            "input": self._input or "",
            "intent": {"intentName": name, "confidenceScore": 1.0},
            "siteId": self.site_id,
            "id": None,
            "slots": [
                {
                    "entity": str(key),
                    "slotName": str(key),
                    "rawValue": str(value),
                    "value": {"kind": "Unknown", "value": value},
                    "confidence": 1.0,
                    "range": None,
                }
                for key, value in items
            ],
            "sessionId": self._session_id,
            "customData": None,
            "asrTokens": [],
            "asrConfidence": None,
            "rawInput": self._input or "",
            "wakewordId": self._wakeword_id,
            "lang": None,
        }

    def _not_recognized(self) -> Published:
        return (
            t.HERMES_NOT_RECOGNIZED,
            {
                "input": self._input or "",
                "siteId": self.site_id,
                "id": None,
                "customData": None,
                "sessionId": self._session_id,
            },
        )

    # -- in ----------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> None:
        """Never raises; a malformed request is logged in one line and ignored (Hermes has
        no reply channel for it)."""
        try:
            data = _load(payload)
            if topic == t.HERMES_TTS_SAY:
                say = TtsSay.model_validate(data)
                if say.siteId not in (None, self.site_id):
                    return
                self._command("say", {"text": say.text}, say.id)
            elif topic == t.HERMES_START_SESSION:
                start = StartSession.model_validate(data)
                if start.siteId not in (None, self.site_id):
                    return
                if start.init.text:
                    self._command("say", {"text": start.init.text}, None)
                elif start.init.type == "action":
                    self._command("listen", {}, None)
        except (ValueError, ValidationError) as exc:
            logger.info("Hermes message on {} ignored: {}", topic, _first_line(exc))

    def _command(
        self, name: Literal["say", "listen"], args: dict[str, Any], say_id: str | None
    ) -> None:
        """Post the request; a ``say`` carries its Hermes id, which comes back on the
        ``speak_end`` of its utterance and so on the right ``sayFinished``."""

        def reply(ok: bool, error: str | None = None) -> None:
            if not ok:
                logger.info("Hermes {} refused: {}", name, error)

        self._post(Command(name, args, reply, source="hermes", request_id=say_id))


def _load(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload too large: {len(payload)} bytes")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("payload is not valid UTF-8") from None
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("payload is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("payload is not a JSON object")
    return data


def _number(value: Any, default: float) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default
    )


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'payload'}: {first['msg']}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
