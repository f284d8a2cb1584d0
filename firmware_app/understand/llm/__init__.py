"""The optional online model: an OpenAI-compatible streaming client behind a circuit
breaker, with sentence streaming and conversation memory. Off unless ``llm.url`` is set;
importing this package costs nothing until ``build_responder`` is called."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_app.understand.llm.sentences import asks_question

if TYPE_CHECKING:
    from firmware_app.config.settings import Settings
    from firmware_app.system.store import Store
    from firmware_app.understand.llm.responder import LlmResponder

__all__ = ["asks_question", "build_responder"]


def build_responder(settings: Settings, store: Store) -> LlmResponder | None:
    """The responder for ``settings.llm``, or None when no URL is configured. Raises
    ConfigError when the API key file cannot be read."""
    if settings.llm.url is None:
        return None
    from firmware_app.config.settings import read_secret
    from firmware_app.understand.llm.responder import LlmResponder

    llm = settings.llm
    key = read_secret(llm.api_key, llm.api_key_file, "llm.api_key_file", "llm_api_key")
    return LlmResponder(settings.llm, store, key)
