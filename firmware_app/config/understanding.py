"""Settings of how a request is answered (``understand/``): the language and timers of the
local intents, the custom home-automation sentences and the online model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from firmware_app.config.section import Section


class AssistantSettings(Section):
    language: Literal["en"] = "en"
    """Language of the local intents."""
    ring_repeats: int = Field(3, ge=1, le=20)
    """How many times a finished timer rings before it stops by itself."""
    error_hold_s: float = Field(3.0, ge=0, le=60)
    """How long the error state is shown before returning to idle."""


class CustomIntent(Section):
    """A home-automation sentence mapped to an MQTT publish (matched before the LLM)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    """Intent name, as it appears in the event log and on MQTT."""
    sentences: list[str] = Field(min_length=1)
    """Templates such as ``turn (on|off) the {room} light``."""
    slots: dict[str, list[str]] = Field(default_factory=dict)
    """Values for each ``{slot}`` used in the templates."""
    topic: str = Field(min_length=1)
    """MQTT topic to publish; may use ``{slot}`` and ``{group1}``-style placeholders."""
    payload: str = ""
    """Payload template, with the same placeholders as the topic."""
    reply: str = "Okay."
    """Spoken confirmation; may use the placeholders."""


class LlmSettings(Section):
    url: str | None = None
    """Base URL of an OpenAI-compatible API (``https://api.openai.com/v1``,
    ``http://127.0.0.1:11434/v1`` for Ollama); the LLM is on when this is set."""
    model: str = "gpt-4o-mini"
    """Model name sent with each request."""
    api_key: SecretStr | None = None
    """API key; prefer ``api_key_file`` or the ``llm_api_key`` systemd credential."""
    api_key_file: Path | None = None
    """File holding the API key (first line)."""
    system_prompt: str = (
        "You are a voice assistant on a smart speaker. Answer in one to three short spoken "
        "sentences, plain text only: no lists, no markdown, no emoji."
    )
    """System prompt sent first in every conversation."""
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    """TCP/TLS connect deadline."""
    read_timeout_s: float = Field(10.0, gt=0, le=300)
    """Longest silence between streamed chunks."""
    total_timeout_s: float = Field(60.0, gt=0, le=600)
    """Longest whole answer."""
    deadline_s: float = Field(6.0, gt=0, le=60)
    """The user never waits longer than this for the first word."""
    retries: int = Field(2, ge=0, le=10)
    """Retries before the first token (connection errors, 429, 5xx only)."""
    breaker_failures: int = Field(3, ge=1, le=100)
    """Consecutive failures that open the circuit breaker."""
    breaker_reset_s: float = Field(30.0, gt=0, le=3600)
    """How long the breaker stays open before one probe request."""
    memory_turns: int = Field(6, ge=0, le=50)
    """Previous exchanges sent with each request."""
    memory_idle_s: float = Field(300.0, ge=0, le=86400)
    """Conversation memory is forgotten after this long without a question."""
    followup_s: float = Field(5.0, ge=0, le=30)
    """After an answer that asks a question, listen this long without the wake word
    (0 turns follow-ups off)."""
    max_reply_chars: int = Field(2000, ge=100, le=100000)
    """Longest answer that is spoken; the rest is dropped."""
    tls_ca: Path | None = None
    """CA certificate file for a server with a private certificate (e.g. on the LAN);
    certificates are always verified, this only adds whom to trust."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError(
                "must be an http:// or https:// base URL such as http://127.0.0.1:11434/v1"
            )
        return url
