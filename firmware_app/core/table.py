"""The assistant's table: every happening it reacts to, in which states, handled by which
function, going to which states; the entry and exit actions; the commands. The states
and happenings themselves are named once, in ``core/states.py``.

Each happening carries one payload type; `EVENT_OF` says which happening each message or
heard event is, and is checked against the rows when the table is made. Handlers are the
assistant's methods themselves (``A`` is the assistant's class) or functions beside it
that take the assistant first, as a method does: the button's (``core/controls.py``),
the commands (``core/commands.py``), a wake and the request's speech
(``core/listening.py``), a request understood (``core/understanding.py``), what is said
and what follows it (``core/speaking.py``), Home Assistant's side of a turn
(``core/home_turns.py``) and the parts' notices (``core/notices.py``). Either way the
type checker sees that each takes what its event carries and returns a state. resting =
idle, muted, error; busy = thinking, speaking. An event with no row in the current state
is ignored there.

The table is made from the class it is read by (`Table.of`), so this module, and the
modules of functions it names, need the assistant only to be type-checked: no import
cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from firmware_app.core import (
    commands,
    controls,
    home_turns,
    listening,
    notices,
    speaking,
    understanding,
)
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
from firmware_app.core.states import (
    ALL,
    BUSY,
    ERROR,
    LISTENING,
    MUTED,
    RESTING,
    SPEAKING,
    THINKING,
    Happening,
    State,
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

H = Happening
Nothing = type(None)
Transitions = dict[tuple[State, Happening], Row["Assistant", State]]
Action = Callable[["Assistant"], None]


def transitions(A: type[Assistant]) -> Transitions:
    # fmt: off
    return table([
        #  in states                 event               payload          handler                       may go to
        on(ALL - {MUTED, LISTENING}, H.WAKE,             Woke,            listening.on_wake,            {LISTENING, STAY}),
        on({LISTENING},              H.SPEECH_STARTED,   SpeechStarted,   listening.on_speech_started,  {STAY}),
        on({LISTENING},              H.SPEECH_ENDED,     SpeechEnded,     listening.on_speech_ended,    {THINKING}),
        on({LISTENING},              H.TOO_LONG,         TooLong,         listening.on_speech_ended,    {THINKING}),
        on({LISTENING},              H.NO_SPEECH,        NoSpeech,        A.rest,                       RESTING | {THINKING}),
        on({LISTENING},              H.WAKE_LOST,        WakeLost,        listening.on_wake_lost,       RESTING | {THINKING}),
        on({THINKING},               H.HEARD,            Transcript,      understanding.think,          RESTING | {THINKING}),
        on(BUSY,                     H.REPLY_SENTENCE,   ReplySentence,   speaking.on_reply_sentence,   {STAY}),
        on(BUSY,                     H.REPLY_END,        ReplyEnd,        speaking.on_reply_end,        {STAY}),
        on(BUSY,                     H.PLAYBACK_STARTED, PlaybackStarted, speaking.on_playback_started, {SPEAKING, STAY}),
        on(BUSY,                     H.PLAYBACK_DONE,    PlaybackDone,    speaking.on_playback_done,    RESTING | {LISTENING, THINKING, STAY}),
        on(BUSY,                     H.STOP_WORD,        StopSaid,        A.on_stop_word,               RESTING | {THINKING}),
        on(RESTING,                  H.STARTED,          Nothing,         A.rest,                       RESTING | {THINKING}),
        on(RESTING,                  H.TIMER_DUE,        Nothing,         A.rest,                       RESTING | {THINKING}),
        on({ERROR},                  H.ERROR_OVER,       Nothing,         A.rest,                       RESTING | {THINKING}),
        on(ALL,                      H.PRESS,            Button,          controls.on_press,            ALL),
        on(ALL,                      H.HOLD,             Button,          controls.on_hold,             RESTING | {THINKING, STAY}),
        on(RESTING | {SPEAKING},     H.DOUBLE,           Button,          controls.on_double,           {THINKING, STAY}),
        on(ALL,                      H.COMMAND,          Command,         commands.on_command,          ALL),
        on(ALL,                      H.NOTICE,           Notice,          notices.on_notice,            {ERROR, STAY}),
        on(ALL,                      H.FAULT,            Fault,           A.on_fault,                   {ERROR}),
        on(ALL,                      H.HOME_STAGE,       HomeStage,       home_turns.on_stage,          RESTING | {THINKING, STAY}),
        on(ALL,                      H.HOME_AUDIO,       HomeAudio,       home_turns.on_audio,          {THINKING, STAY}),
        on(ALL,                      H.HOME_TIMER,       HomeTimer,       home_turns.on_timer,          {THINKING, STAY}),
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


# fmt: off
COMMANDS: dict[CommandName, CommandRow] = {
    # name        payload model        handler
    "say":        command(TextArgs,    commands.say),
    "ask":        command(TextArgs,    commands.ask),
    "listen":     command(NoArgs,      commands.listen),
    "stop":       command(NoArgs,      commands.stop),
    "mute":       command(MuteArgs,    commands.mute),
    "volume":     command(VolumeArgs,  commands.volume),
    "update":     command(NoArgs,      commands.update),
    "false_wake": command(NoArgs,      commands.false_wake),
}
"""The commands: each name's payload model and handler."""
# fmt: on


@dataclass(frozen=True)
class Table:
    """The whole table, bound to the class whose methods it names (and the functions
    beside it)."""

    transitions: Transitions
    entry: dict[State, Action]
    exit: dict[State, Action]
    commands: dict[CommandName, CommandRow]

    @staticmethod
    def of(A: type[Assistant]) -> Table:
        """The table for the class (made and checked once)."""
        made = _MADE.get(A)
        if made is None:
            made = _MADE[A] = Table(transitions(A), entry(A), exit_(A), COMMANDS)
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
    "COMMANDS",
    "EVENT_OF",
    "GESTURES",
    "RESTING",
    "CommandRow",
    "Happening",
    "State",
    "Table",
    "transitions",
]
