"""One request to the online model: what was said so far, and the order of its posts.

Its lock orders posts against ``cancel``: once a request has ended (answered, failed or
cancelled), nothing more is posted for it, so the assistant never hears a sentence after
the end it was told about.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from firmware_app.core.messages import ReplyEnd, ReplySentence

Post = Callable[[object], None]


@dataclass
class Job:
    """One request (see the module docstring)."""

    request: int
    post: Post
    deadline: float
    """Loop-clock time by which the first word must have arrived."""
    started: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    ended: bool = False
    spoken: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    """Set on the loop thread; only touched there."""
    recorded: bool = False
    """The breaker has been told this request's outcome (loop thread only)."""

    def sentence(self, text: str) -> None:
        with self.lock:
            if self.ended:
                return
            self.spoken.append(text)
            safe_post(self.post, ReplySentence(self.request, text))

    def end(self, error: str | None, fallback: str | None) -> bool:
        with self.lock:
            if self.ended:
                return False
            self.ended = True
            safe_post(self.post, ReplyEnd(self.request, error=error, fallback=fallback))
            return True


def safe_post(post: Post, message: object) -> None:
    try:
        post(message)
    except Exception as exc:  # the assistant is gone; nothing to tell
        logger.warning("llm: cannot post {}: {}", type(message).__name__, exc)
