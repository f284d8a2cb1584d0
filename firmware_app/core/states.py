"""The assistant's states and the groups the transition table names."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    MUTED = "muted"
    ERROR = "error"


IDLE, LISTENING, THINKING, SPEAKING, MUTED, ERROR = State
RESTING = frozenset({IDLE, MUTED, ERROR})
"""Where the machine waits for the next wake or command."""
BUSY = frozenset({THINKING, SPEAKING})
ALL = frozenset(State)
