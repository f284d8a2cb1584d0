"""Conversation memory: the last few exchanges, so "and how far is it?" makes sense.

Kept in the store's ``conversation`` table so a restart mid-conversation loses nothing,
and forgotten after ``idle_s`` without a question so yesterday's talk is not sent with
today's. Ages use the wall clock because they must survive a restart; a clock that went
backwards (a Pi without a real-time clock before NTP) forgets rather than guesses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from firmware_app.system.store import Store

TABLE = "conversation"
KEY = "llm"
MAX_TURN_CHARS = 4000


class ConversationMemory:
    def __init__(
        self,
        store: Store,
        turns: int,
        idle_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.turns = turns
        self.idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()

    def history(self) -> list[dict[str, str]]:
        """The remembered exchanges as chat messages, oldest first ([] when forgotten)."""
        with self._lock:
            turns = self._load()
        messages: list[dict[str, str]] = []
        for question, answer in turns:
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": answer})
        return messages

    def remember(self, question: str, answer: str) -> None:
        if self.turns <= 0 or self.idle_s <= 0 or not question or not answer:
            return
        with self._lock:
            turns = self._load()
            turns.append((question[:MAX_TURN_CHARS], answer[:MAX_TURN_CHARS]))
            turns = turns[-self.turns :]
            self.store.put(
                TABLE, KEY, {"updated": self._clock(), "turns": [list(t) for t in turns]}
            )

    def forget(self) -> None:
        with self._lock:
            self.store.delete(TABLE, KEY)

    def _load(self) -> list[tuple[str, str]]:
        if self.turns <= 0 or self.idle_s <= 0:
            return []
        value: Any = self.store.get(TABLE, KEY)
        if value is None:
            return []
        try:
            age = self._clock() - float(value["updated"])
            turns = [(str(q), str(a)) for q, a in value["turns"]]
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning(
                "llm: conversation memory unreadable ({}); starting afresh", type(exc).__name__
            )
            self.store.delete(TABLE, KEY)
            return []
        if age < 0 or age > self.idle_s:
            self.store.delete(TABLE, KEY)
            return []
        return turns[-self.turns :]
