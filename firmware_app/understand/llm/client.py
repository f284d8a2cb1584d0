"""Streaming client for OpenAI-compatible ``/chat/completions`` (OpenAI, Ollama,
llama.cpp's server, vLLM, LM Studio ...), over server-sent events with httpx.

Every reply is treated as hostile: the SSE parser bounds each line, the whole stream is
capped in bytes and the answer in characters, bad JSON is skipped, an HTML page (a captive
portal) is refused, and a stream that never ends is cut by the caller's deadline. Error
messages are one line built here, never the provider's text: a provider's 401 body can
quote part of the key.

Retries (tenacity) happen only before the first token, only for errors that a retry can
fix: connection failures, 429 (honouring ``Retry-After``) and 5xx. A 4xx is final. The
caller wraps the whole call in its circuit breaker and first-word deadline.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from loguru import logger
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from firmware_app import __version__
from firmware_app.config.settings import LlmSettings
from firmware_app.core.errors import ConfigError, TTBT5Error
from firmware_app.understand.llm.sse import Event, SseParser, parse_event, parse_plain

MAX_USER_CHARS = 2000
"""Longest question sent (a transcript is far shorter; this bounds a remote ``ask``)."""
MAX_RETRY_AFTER_S = 120.0


def stream_byte_cap(max_reply_chars: int) -> int:
    """Raw bytes read for one answer. SSE wraps every token in a JSON envelope of a few
    hundred bytes, so the cap is generous per character yet far below a runaway stream."""
    return 1024 * 1024 + 1024 * max_reply_chars


class LlmError(TTBT5Error, ConnectionError):
    """The online model could not answer. ``str()`` is one line with no secret in it."""

    retryable = False


class LlmUnreachable(LlmError):
    """No connection (refused, DNS, reset before a reply)."""

    retryable = True


class LlmHttpError(LlmError):
    """The provider answered with an HTTP error status."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.retryable = status == 429 or status >= 500


class LlmBadReply(LlmError):
    """The reply was not a usable chat completion (malformed, empty, not the API)."""


@dataclass
class StreamResult:
    chars: int = 0
    """Characters of answer text delivered."""
    truncated: bool = False
    """The answer was cut at ``max_reply_chars`` or the byte cap."""
    finish_reason: str | None = None


class ChatClient:
    """One provider endpoint. Safe to use from one asyncio loop; several requests may run
    at once (each has its own connection when needed)."""

    def __init__(self, settings: LlmSettings, api_key: SecretStr | None) -> None:
        if not settings.url:
            raise ValueError("llm.url is not set")
        self.settings = settings
        parts = urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("llm.url must be an http:// or https:// URL")
        self.endpoint = settings.url.rstrip("/") + "/chat/completions"
        self.host = parts.hostname
        self._key = api_key
        if api_key is not None and parts.scheme == "http" and not _is_local(parts.hostname):
            logger.warning(
                "llm: the API key is sent unencrypted to {} (use https:// for remote providers)",
                parts.hostname,
            )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.connect_timeout_s,
                read=settings.read_timeout_s,
                write=settings.connect_timeout_s,
                pool=settings.connect_timeout_s,
            ),
            verify=_tls_context(settings),
            follow_redirects=False,
            trust_env=False,  # no proxy or CA surprises from the environment
        )

    def secret_words(self) -> list[str]:
        """Strings that must never appear in a message (for redaction)."""
        if self._key is None:
            return []
        return [self._key.get_secret_value()]

    async def aclose(self) -> None:
        await self._http.aclose()

    def messages(self, history: list[dict[str, str]], question: str) -> list[dict[str, str]]:
        """System prompt, remembered exchanges, then the question (text only, never audio)."""
        return [
            {"role": "system", "content": self.settings.system_prompt},
            *history,
            {"role": "user", "content": question[:MAX_USER_CHARS]},
        ]

    async def stream(
        self, messages: list[dict[str, str]], on_text: Callable[[str], None]
    ) -> StreamResult:
        """Send the conversation and call ``on_text`` with each piece of the answer as it
        arrives. Retries before the first piece only; raises ``LlmError``."""
        result = StreamResult()

        def retry_allowed(exc: BaseException) -> bool:
            return isinstance(exc, LlmError) and exc.retryable and result.chars == 0

        retrying = AsyncRetrying(
            retry=retry_if_exception(retry_allowed),
            stop=(
                stop_after_attempt(self.settings.retries + 1)
                | stop_before_delay(self.settings.deadline_s)
            ),
            wait=_backoff,
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._attempt(messages, on_text, result)
        return result

    async def _attempt(
        self,
        messages: list[dict[str, str]],
        on_text: Callable[[str], None],
        result: StreamResult,
    ) -> None:
        headers = {
            "Accept": "text/event-stream, application/json",
            "Accept-Encoding": "identity",
            "User-Agent": f"ttbt5/{__version__}",
        }
        if self._key is not None:
            headers["Authorization"] = "Bearer " + self._key.get_secret_value()
        body = {"model": self.settings.model, "messages": messages, "stream": True}
        try:
            async with self._http.stream(
                "POST", self.endpoint, json=body, headers=headers
            ) as response:
                _check_status(response)
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "text/html":
                    raise LlmBadReply(f"{self.host} answered with a web page, not the API")
                await self._read(response, kind == "application/json", on_text, result)
        except LlmError:
            raise
        except httpx.TimeoutException as exc:
            what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
            error: LlmError = LlmUnreachable(f"{self.host} timed out ({what})")
            error.retryable = what == "connect"
            raise error from None
        except httpx.HTTPError as exc:
            raise _connection_error(exc, self.host) from None

    async def _read(
        self,
        response: httpx.Response,
        plain_json: bool,
        on_text: Callable[[str], None],
        result: StreamResult,
    ) -> None:
        limit = self.settings.max_reply_chars
        byte_cap = stream_byte_cap(limit)
        seen_bytes = 0
        parser = SseParser()
        body = bytearray()
        bad_events = 0

        def deliver(text: str) -> bool:
            """Pass text on; False once the answer is long enough."""
            room = limit - result.chars
            if len(text) >= room:
                text = text[:room]
                result.truncated = True
            if text:
                result.chars += len(text)
                on_text(text)
            return not result.truncated

        async for chunk in response.aiter_bytes():
            seen_bytes += len(chunk)
            if seen_bytes > byte_cap:
                if result.chars:
                    result.truncated = True
                    logger.warning("llm: reply stream passed {} bytes; cut", byte_cap)
                    return
                raise LlmBadReply(f"reply from {self.host} exceeds {byte_cap} bytes")
            if plain_json:
                body += chunk
                continue
            for data in parser.feed(chunk):
                if data.strip() == "[DONE]":
                    result.finish_reason = result.finish_reason or "stop"
                    return
                event = parse_event(data)
                if event is None:
                    bad_events += 1
                    continue
                if event.error is not None:
                    if result.chars:
                        logger.warning("llm: provider error mid-answer: {}", event.error)
                        return
                    raise LlmBadReply(f"{self.host} reported an error: {event.error}")
                if event.text and not deliver(event.text):
                    return
                if event.finish_reason:
                    result.finish_reason = event.finish_reason
                    return
            if parser.overflow:
                if result.chars:
                    result.truncated = True
                    return
                raise LlmBadReply(f"reply from {self.host} has an over-long line")
        for data in parser.finish():
            event = parse_event(data) if data.strip() != "[DONE]" else Event()
            if event is None:
                bad_events += 1
            elif event.text:
                deliver(event.text)
        if plain_json:
            message = parse_plain(bytes(body))
            if message is None:
                raise LlmBadReply(f"reply from {self.host} is not a chat completion")
            deliver(message)
        if bad_events:
            logger.warning("llm: skipped {} malformed event(s) in the reply", bad_events)
        if result.chars == 0:
            what = "malformed" if bad_events else "empty"
            raise LlmBadReply(f"{what} reply from {self.host}")


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    host = response.request.url.host
    retry_after = _retry_after(response.headers.get("retry-after"))
    if status in (401, 403):
        message = f"{host} refused the API key (HTTP {status}); check llm.api_key"
    elif status == 404:
        message = f"{host} has no such endpoint or model (HTTP 404); check llm.url and llm.model"
    elif status == 429:
        message = f"{host} is rate limiting (HTTP 429)"
    elif status >= 500:
        message = f"{host} failed (HTTP {status})"
    elif 300 <= status < 400:
        message = f"{host} redirected (HTTP {status}); check llm.url"
    else:
        message = f"{host} rejected the request (HTTP {status})"
    raise LlmHttpError(message, status, retry_after)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _connection_error(exc: httpx.HTTPError, host: str) -> LlmError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            error: LlmError = LlmUnreachable(f"TLS certificate of {host} is not trusted")
            error.retryable = False
            return error
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return LlmUnreachable(f"cannot connect to {host}: {_short(exc)}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return LlmUnreachable(f"connection to {host} broke: {_short(exc)}")
    return LlmUnreachable(f"request to {host} failed: {type(exc).__name__}")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


_jitter = wait_random_exponential(multiplier=0.2, max=2.0)


def _backoff(state: RetryCallState) -> float:
    """Exponential backoff with full jitter, or the server's ``Retry-After`` if longer."""
    delay = float(_jitter(state))
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, LlmHttpError) and exc.retry_after is not None:
        delay = max(delay, exc.retry_after + random.uniform(0, 0.05))
    return delay


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.info(
        "llm: attempt {} failed ({}); retrying in {:.2f} s",
        state.attempt_number,
        exc,
        state.upcoming_sleep,
    )


def _tls_context(settings: LlmSettings) -> ssl.SSLContext | bool:
    """Verification is always on; ``tls_ca`` only adds trust for a private CA."""
    if settings.tls_ca is None:
        return True
    try:
        context = ssl.create_default_context(cafile=str(settings.tls_ca))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or "not a PEM certificate"
        raise ConfigError(f"llm.tls_ca: cannot load {settings.tls_ca}: {reason}") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _is_local(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
