"""The assistant's table: its states, every happening it reacts to, in which states,
handled by which method, going to which states; the entry and exit actions; the commands.

Each happening is named once (`Happening`) and carries one payload type; `EVENT_OF` says
which happening each message or heard event is, and is checked against the rows when the
table is made. Handlers are the assistant's methods themselves (``A`` is the assistant's
class), so the type checker sees that each takes what its event carries and returns a
state. resting = idle, muted, error; busy = thinking, speaking. An event with no row in
the current state is ignored there.

The table is made from the class it is read by (`Table.of`), so this module needs the
assistant only to be type-checked: no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from firmware_app.core.dispatcher import STAY, Row, on, table
from firmware_app.core.messages import (
    COMMAND_ARGS,
    Button,
    Command,
    CommandArgs,
    CommandName,
    Fault,
    HomeAudio,
    HomeStage,
    HomeTimer,
    MuteArgs,
    NoArgs,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    TextArgs,
    VolumeArgs,
    WakeLost,
)
from firmware_app.listen.hearing import StopSaid

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant
from firmware_app.listen.segmenter import (
    NoSpeech,
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Transcript,
    Woke,
)


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


H = Happening
Nothing = type(None)
Transitions = dict[tuple[State, Happening], Row["Assistant", State]]
Action = Callable[["Assistant"], None]


def transitions(A: type[Assistant]) -> Transitions:
    # fmt: off
    return table([
        # in states                 event               payload          handler                may go to
        on(ALL - {MUTED, LISTENING}, H.WAKE,             Woke,            A.on_wake,             {LISTENING, STAY}),
        on({LISTENING},              H.SPEECH_STARTED,   SpeechStarted,   A.on_speech_started,   {STAY}),
        on({LISTENING},              H.SPEECH_ENDED,     SpeechEnded,     A.on_speech_ended,     {THINKING}),
        on({LISTENING},              H.TOO_LONG,         TooLong,         A.on_speech_ended,     {THINKING}),
        on({LISTENING},              H.NO_SPEECH,        NoSpeech,        A.rest,                RESTING | {THINKING}),
        on({LISTENING},              H.WAKE_LOST,        WakeLost,        A.on_wake_lost,        RESTING | {THINKING}),
        on({THINKING},               H.HEARD,            Transcript,      A.think,               RESTING | {THINKING}),
        on(BUSY,                     H.REPLY_SENTENCE,   ReplySentence,   A.on_reply_sentence,   {STAY}),
        on(BUSY,                     H.REPLY_END,        ReplyEnd,        A.on_reply_end,        {STAY}),
        on(BUSY,                     H.PLAYBACK_STARTED, PlaybackStarted, A.on_playback_started, {SPEAKING, STAY}),
        on(BUSY,                     H.PLAYBACK_DONE,    PlaybackDone,    A.on_playback_done,    RESTING | {LISTENING, THINKING, STAY}),
        on(BUSY,                     H.STOP_WORD,        StopSaid,        A.on_stop_word,        RESTING | {THINKING}),
        on(RESTING,                  H.STARTED,          Nothing,         A.rest,                RESTING | {THINKING}),
        on(RESTING,                  H.TIMER_DUE,        Nothing,         A.rest,                RESTING | {THINKING}),
        on({ERROR},                  H.ERROR_OVER,       Nothing,         A.rest,                RESTING | {THINKING}),
        on(ALL,                      H.PRESS,            Button,          A.on_press,            ALL),
        on(ALL,                      H.HOLD,             Button,          A.on_hold,             RESTING | {THINKING, STAY}),
        on(RESTING | {SPEAKING},     H.DOUBLE,           Button,          A.on_double,           {THINKING, STAY}),
        on(ALL,                      H.COMMAND,          Command,         A.on_command,          ALL),
        on(ALL,                      H.NOTICE,           Notice,          A.on_notice,           {ERROR, STAY}),
        on(ALL,                      H.FAULT,            Fault,           A.on_fault,            {ERROR}),
        on(ALL,                      H.HOME_STAGE,       HomeStage,       A.on_home_stage,       RESTING | {THINKING, STAY}),
        on(ALL,                      H.HOME_AUDIO,       HomeAudio,       A.on_home_audio,       {THINKING, STAY}),
        on(ALL,                      H.HOME_TIMER,       HomeTimer,       A.on_home_timer,       {THINKING, STAY}),
    ])
    # fmt: on


def entry(A: type[Assistant]) -> dict[State, Action]:
    return {LISTENING: A.enter_listening}


def exit_(A: type[Assistant]) -> dict[State, Action]:
    return {LISTENING: A.exit_listening, SPEAKING: A.exit_speaking}


EVENT_OF: dict[type, Happening] = {
    Woke: H.WAKE,
    SpeechStarted: H.SPEECH_STARTED,
    SpeechEnded: H.SPEECH_ENDED,
    TooLong: H.TOO_LONG,
    NoSpeech: H.NO_SPEECH,
    StopSaid: H.STOP_WORD,
    WakeLost: H.WAKE_LOST,
    Command: H.COMMAND,
    Notice: H.NOTICE,
    PlaybackStarted: H.PLAYBACK_STARTED,
    PlaybackDone: H.PLAYBACK_DONE,
    ReplySentence: H.REPLY_SENTENCE,
    ReplyEnd: H.REPLY_END,
    HomeStage: H.HOME_STAGE,
    HomeAudio: H.HOME_AUDIO,
    HomeTimer: H.HOME_TIMER,
}
"""The happening each message or heard event is (checked below against the rows)."""

GESTURES: dict[str, Happening] = {"press": H.PRESS, "hold": H.HOLD, "double": H.DOUBLE}
"""The happening each button gesture is."""


Args = TypeVar("Args", bound=CommandArgs)


@dataclass(frozen=True)
class CommandRow:
    args: type[CommandArgs]
    """The payload model the command's ``args`` must match."""
    handler: Callable[[Assistant, Command, Any], State]

    @property
    def name(self) -> str:
        return self.handler.__name__


def command(args: type[Args], handler: Callable[[Assistant, Command, Args], State]) -> CommandRow:
    """A command's row; the type checker sees that the handler takes that payload model."""
    return CommandRow(args, handler)


def commands(A: type[Assistant]) -> dict[CommandName, CommandRow]:
    # fmt: off
    return {
        # name        payload model        handler
        "say":        command(TextArgs,    A.cmd_say),
        "ask":        command(TextArgs,    A.cmd_ask),
        "listen":     command(NoArgs,      A.cmd_listen),
        "stop":       command(NoArgs,      A.cmd_stop),
        "mute":       command(MuteArgs,    A.cmd_mute),
        "volume":     command(VolumeArgs,  A.cmd_volume),
        "update":     command(NoArgs,      A.cmd_update),
        "false_wake": command(NoArgs,      A.cmd_false_wake),
    }
    # fmt: on


@dataclass(frozen=True)
class Table:
    """The whole table, bound to the class whose methods it names."""

    transitions: Transitions
    entry: dict[State, Action]
    exit: dict[State, Action]
    commands: dict[CommandName, CommandRow]

    @staticmethod
    def of(A: type[Assistant]) -> Table:
        """The table for the class (made and checked once)."""
        made = _MADE.get(A)
        if made is None:
            made = _MADE[A] = Table(transitions(A), entry(A), exit_(A), commands(A))
            made.check()
        return made

    def check(self) -> None:
        """The mappings agree with the rows: a happening's payload is the class that maps
        to it, and every command name has one row and its one payload model."""
        for (_, event), row in self.transitions.items():
            for cls, happening in EVENT_OF.items():
                if happening == event and row.payload is not cls:
                    raise TypeError(f"{event} carries {row.payload.__name__}, not {cls.__name__}")
        if set(self.commands) != set(get_args(CommandName)) or any(
            row.args is not COMMAND_ARGS[name] for name, row in self.commands.items()
        ):
            raise TypeError("the commands table, CommandName and COMMAND_ARGS disagree")


_MADE: dict[type, Table] = {}


__all__ = [
    "ALL",
    "BUSY",
    "EVENT_OF",
    "GESTURES",
    "RESTING",
    "CommandRow",
    "Happening",
    "State",
    "Table",
    "commands",
    "transitions",
]
