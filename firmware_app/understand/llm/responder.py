"""Answers what the local intents cannot, with the online model, sentence by sentence.

The assistant calls ``respond`` and goes on with its life; the answer arrives as
``ReplySentence`` messages (the first one is spoken while the rest streams in) and one
``ReplyEnd``. Requests run as asyncio tasks on one thread owned by the responder, so
``cancel`` (barge-in, ``stop``) ends a request at once and really closes its connection,
and the first-word deadline is one timer rather than a sum of per-read timeouts.

Order of protection, outermost first: the circuit breaker (while open, the fallback is
posted before ``respond`` returns, with no network attempt), the first-word deadline
(``deadline_s``, then ``total_timeout_s`` for the whole answer), the retries inside the
client (before the first token only).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from pydantic import SecretStr

from firmware_app.config.settings import LlmSettings
from firmware_app.core.messages import Notice
from firmware_app.system.store import Store
from firmware_app.understand.llm.breaker import BreakerState, CircuitBreaker, Outcome
from firmware_app.understand.llm.client import ChatClient, LlmError, LlmHttpError, LlmUnreachable
from firmware_app.understand.llm.job import Job, Post, safe_post
from firmware_app.understand.llm.memory import ConversationMemory
from firmware_app.understand.llm.sentences import SentenceSplitter

FALLBACK_UNREACHABLE = "Sorry, I can't reach my online brain right now."
"""Spoken when the provider is down, slow or the breaker is open (a fixed sentence, so
the speech cache has it ready)."""
FALLBACK_BROKEN = "Sorry, my online brain isn't working right now."
"""Spoken when the provider answers but unusably (refused key, bad reply)."""
FALLBACK_SPEECHLESS = "Sorry, I have no spoken answer for that."
"""Spoken when the answer held nothing speakable (only code, say)."""
FALLBACK_EMPTY = "Sorry, I didn't catch that."
"""Spoken when there was no question to send."""
FALLBACK_CUT_OFF = "Sorry, I lost the rest of that answer."
"""Spoken after the sentences that were complete when an answer broke off."""
FALLBACKS = (FALLBACK_UNREACHABLE, FALLBACK_BROKEN, FALLBACK_SPEECHLESS, FALLBACK_CUT_OFF)
"""Every fixed sentence a ReplyEnd may carry, for warming the speech cache at start."""
CANCELLED = "cancelled"
SETTLE_S = 0.3
"""A sentence end followed by this long a pause in the stream counts as the end of a
sentence: it is spoken now, not when (or if) the stream goes on."""


class LlmResponder:
    """The online model behind a circuit breaker (see the module docstring)."""

    def __init__(
        self, settings: LlmSettings, store: Store | None, api_key: SecretStr | None = None
    ) -> None:
        self.settings = settings
        self.client = ChatClient(settings, api_key)
        self.memory = (
            ConversationMemory(store, settings.memory_turns, settings.memory_idle_s)
            if store is not None
            else None
        )
        self.breaker = CircuitBreaker(
            settings.breaker_failures, settings.breaker_reset_s, on_change=self._breaker_changed
        )
        self._secrets = [s for s in self.client.secret_words() if s]
        self._notice_post: Post | None = None
        self._last_attempt: dict[str, Any] | None = None
        """Outcome of the last request that went out: ok, error, when (monotonic)."""
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llm", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(_warm_up(), self._loop)

    # The Responder protocol -------------------------------------------------------------

    def respond(self, request: int, text: str, post: Callable[[object], None]) -> None:
        """Start answering; see the module docstring. Returns at once."""
        now = self._loop.time()
        job = Job(request, post, deadline=now + self.settings.deadline_s, started=now)
        self._notice_post = post
        question = " ".join(text.split())
        with self._lock:
            closed = self._closed
            previous = self._jobs.get(request)
            if not closed:
                self._jobs[request] = job
        if previous is not None:
            self._abandon(previous, CANCELLED)
        if closed:
            job.end("the online model is shut down", FALLBACK_UNREACHABLE)
            return
        if not question:
            self._finish(job, "nothing to ask", FALLBACK_EMPTY)
            return
        if not self.breaker.allow():
            logger.info("llm: request {} not sent: circuit breaker {}", request, self.breaker.state)
            self._finish(
                job,
                "online model paused after repeated failures (circuit breaker open)",
                FALLBACK_UNREACHABLE,
            )
            return
        try:
            self._loop.call_soon_threadsafe(self._start, job, question)
        except RuntimeError:  # closed in the meantime
            self.breaker.record("abandoned")
            self._finish(job, "the online model is shut down", FALLBACK_UNREACHABLE)

    def cancel(self, request: int) -> None:
        """Stop a request now: no more sentences, its ReplyEnd (error "cancelled") is
        posted before this returns, and its HTTP stream is closed."""
        with self._lock:
            job = self._jobs.pop(request, None)
        if job is not None:
            self._abandon(job, CANCELLED)

    def available(self) -> bool:
        """Whether the next question is expected to get an answer: the breaker lets requests
        through and the last request that went out (if any) did not fail."""
        last = self._last_attempt
        return self.breaker.state != "open" and (last is None or last["ok"])

    def status(self) -> dict[str, Any]:
        """For health reports, the one place the online model's state is read from: the
        breaker, the last attempt, and which provider (never the key)."""
        last = self._last_attempt
        if last is not None:
            last = {**last, "age_s": round(time.monotonic() - last["at"], 1)}
            del last["at"]
        return {
            "available": self.available(),
            "state": self.breaker.state,
            "failures": self.breaker.consecutive_failures,
            "last_attempt": last,
            "host": self.client.host,
            "model": self.settings.model,
        }

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            self._abandon(job, "the online model is shutting down")
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=3)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            logger.warning("llm: shutdown incomplete ({})", type(exc).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=3)
        if not self._thread.is_alive():
            self._loop.close()

    # Inside --------------------------------------------------------------------------

    async def _answer(self, job: Job, question: str) -> None:
        splitter = SentenceSplitter()
        got_text = False
        error: str | None = None
        fallback: str | None = None
        outcome: Outcome = "failure"
        first_word_at: float | None = None
        loop = asyncio.get_running_loop()
        pause: asyncio.TimerHandle | None = None
        cancelled = False

        def settle() -> None:
            for sentence in splitter.settle():
                job.sentence(sentence)

        try:
            if job.ended:  # cancelled before it started
                outcome = "abandoned"
                return
            history = self._history()
            messages = self.client.messages(history, question)
            async with asyncio.timeout_at(job.deadline) as scope:

                def on_text(piece: str) -> None:
                    nonlocal got_text, first_word_at, pause
                    if not got_text:
                        got_text = True
                        first_word_at = loop.time()
                        scope.reschedule(job.started + self.settings.total_timeout_s)
                    for sentence in splitter.feed(piece):
                        job.sentence(sentence)
                    if pause is not None:
                        pause.cancel()
                    pause = loop.call_later(SETTLE_S, settle)

                result = await self.client.stream(messages, on_text)
            for sentence in splitter.flush():
                job.sentence(sentence)
            outcome = "success"
            if not job.spoken and not job.ended:
                error, fallback = "the answer had nothing speakable", FALLBACK_SPEECHLESS
            if result.truncated:
                logger.info(
                    "llm: request {} answer cut at {} characters", job.request, result.chars
                )
        except asyncio.CancelledError:
            # cancel() or close(): the job has already been ended by them.
            outcome = "success" if got_text else "abandoned"
            cancelled = True
        except TimeoutError:
            fallback = FALLBACK_UNREACHABLE
            if got_text:
                outcome = "success"
                error = f"answer cut off after {self.settings.total_timeout_s:g} s"
            else:
                error = f"no answer within {self.settings.deadline_s:g} s"
        except LlmError as exc:
            outcome = "success" if got_text else "failure"
            error = str(exc)
            fallback = _fallback_for(exc)
        except Exception as exc:  # a bug must cost one answer, never the service
            # No traceback: its locals would include the request headers.
            outcome = "success" if got_text else "failure"
            error = f"unexpected {type(exc).__name__} while answering"
            logger.error(
                "llm: request {} failed: {}",
                job.request,
                self._redact(f"{type(exc).__name__}: {exc}"),
            )
            fallback = FALLBACK_BROKEN
        finally:
            if pause is not None:
                pause.cancel()
            worked = error is None or fallback == FALLBACK_SPEECHLESS
            if error is not None:
                # Broken off: what was complete is spoken, then a fallback that says so.
                for sentence in splitter.complete():
                    job.sentence(sentence)
                if job.spoken:
                    fallback = FALLBACK_CUT_OFF
            if not cancelled and outcome != "abandoned":
                self._last_attempt = {
                    "ok": worked,
                    "error": None if error is None else self._redact(error),
                    "at": time.monotonic(),
                }
            self._record(job, outcome)
            elapsed = loop.time() - job.started
            if error is not None and not job.ended:
                logger.warning(
                    "llm: request {} failed after {:.2f} s: {}",
                    job.request,
                    elapsed,
                    self._redact(error),
                )
            elif first_word_at is not None:
                logger.info(
                    "llm: request {} answered in {:.2f} s (first word {:.2f} s)",
                    job.request,
                    elapsed,
                    first_word_at - job.started,
                )
            if job.spoken and self.memory is not None:
                try:
                    self.memory.remember(question, " ".join(job.spoken))
                except Exception as exc:  # the store must not take the answer down
                    logger.error("llm: cannot store the conversation: {}", exc)
            self._finish(job, error, fallback)

    def _history(self) -> list[dict[str, str]]:
        if self.memory is None:
            return []
        try:
            return self.memory.history()
        except Exception as exc:  # a broken store costs the memory, not the answer
            logger.error("llm: cannot read the conversation: {}", type(exc).__name__)
            return []

    def _finish(self, job: Job, error: str | None, fallback: str | None) -> None:
        if error is not None:
            error = self._redact(error)
        job.end(error, fallback)
        with self._lock:
            if self._jobs.get(job.request) is job:
                del self._jobs[job.request]

    def _start(self, job: Job, question: str) -> None:
        """On the loop: run the request as a task. Whatever becomes of the task (even a
        cancellation before it ever ran), the breaker hears about it, so a half-open probe
        can never be left holding its slot."""
        job.task = self._loop.create_task(self._answer(job, question))
        job.task.add_done_callback(lambda _task: self._record(job, "abandoned"))

    def _record(self, job: Job, outcome: Outcome) -> None:
        if not job.recorded:
            job.recorded = True
            self.breaker.record(outcome)

    def _abandon(self, job: Job, why: str) -> None:
        job.end(why, None)
        # Callbacks run in order, so this comes after the task was started. A closed
        # loop runs nothing any more: then there is nothing to cancel.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._cancel_task, job)

    @staticmethod
    def _cancel_task(job: Job) -> None:
        if job.task is not None:
            job.task.cancel()  # the stream's connection closes as the task unwinds

    async def _shutdown(self) -> None:
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        await self.client.aclose()

    def _breaker_changed(self, state: BreakerState) -> None:
        if state == "open":
            logger.warning(
                "llm: circuit breaker open after {} failures; next try in {:g} s",
                self.breaker.failures,
                self.settings.breaker_reset_s,
            )
        else:
            logger.info("llm: circuit breaker {}", state)
        post = self._notice_post
        if post is not None:
            safe_post(post, Notice("breaker", {"state": state}))

    def _redact(self, text: str) -> str:
        """One line, no secret: the last guard before a message leaves this module."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text[:300]


async def _warm_up() -> None:
    """httpx's async backend loads lazily; done now rather than during the first question
    (about 40 ms on a desktop, more on a Pi)."""
    import anyio

    await anyio.sleep(0)


def _fallback_for(exc: LlmError) -> str:
    if isinstance(exc, LlmUnreachable):
        return FALLBACK_UNREACHABLE
    if isinstance(exc, LlmHttpError) and (exc.status == 429 or exc.status >= 500):
        return FALLBACK_UNREACHABLE
    return FALLBACK_BROKEN
