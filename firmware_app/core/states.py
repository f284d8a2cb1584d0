"""The words the assistant's table is written in: its states and the happenings it reacts
to, each named once.

They stand apart from the table (``core/table.py``) because the handlers it names, the
assistant's methods and the functions beside it (``core/controls.py``,
``core/commands.py``, ``core/listening.py``, ``core/understanding.py``,
``core/speaking.py``, ``core/home_turns.py``), return these states and raise these
happenings, and the table imports those functions.
"""

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


class Happening(StrEnum):
    """Everything the table reacts to."""

    WAKE = "wake"
    SPEECH_STARTED = "speech_started"
    SPEECH_ENDED = "speech_ended"
    TOO_LONG = "too_long"
    NO_SPEECH = "no_speech"
    WAKE_LOST = "wake_lost"
    HEARD = "heard"
    REPLY_SENTENCE = "reply_sentence"
    REPLY_END = "reply_end"
    PLAYBACK_STARTED = "playback_started"
    PLAYBACK_DONE = "playback_done"
    STOP_WORD = "stop_word"
    STARTED = "started"
    TIMER_DUE = "timer_due"
    ERROR_OVER = "error_over"
    PRESS = "press"
    HOLD = "hold"
    DOUBLE = "double"
    COMMAND = "command"
    NOTICE = "notice"
    FAULT = "fault"
    HOME_STAGE = "home_stage"
    HOME_AUDIO = "home_audio"
    HOME_TIMER = "home_timer"


__all__ = [
    "ALL",
    "BUSY",
    "ERROR",
    "IDLE",
    "LISTENING",
    "MUTED",
    "RESTING",
    "SPEAKING",
    "THINKING",
    "Happening",
    "State",
]
