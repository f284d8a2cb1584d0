"""The transition table, walked entry by entry on the real Assistant (fakes for engines):
every (state, event) it lists is reached, handled, and ends in a state its row allows;
the transcriber is finished exactly once however LISTENING is left."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from fakes import SILENT, Rig, ScriptedStt

from firmware_app.core.assistant import Assistant
from firmware_app.core.dispatcher import IllegalTransition, Row, on, table
from firmware_app.core.engines import Detection
from firmware_app.core.messages import (
    Button,
    Command,
    Fault,
    HomeAudio,
    HomeStage,
    HomeTimer,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    WakeLost,
)
from firmware_app.core.table import Happening, State, Table
from firmware_app.listen.hearing import StopSaid
from firmware_app.listen.segmenter import (
    NoSpeech,
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Transcript,
    Woke,
)

TABLE = Table.of(Assistant)
TRANSITIONS, ENTRY, EXIT, COMMANDS = TABLE.transitions, TABLE.entry, TABLE.exit, TABLE.commands


class Responder:
    """An LLM that never answers by itself: the test plays its part."""

    def __init__(self) -> None:
        self.cancelled: list[int] = []

    def respond(self, request: int, text: str, post: Callable[[object], None]) -> None:
        pass

    def cancel(self, request: int) -> None:
        self.cancelled.append(request)

    def available(self) -> bool:
        return True

    def status(self) -> dict[str, object]:
        return {"state": "closed"}


def rig_in(settings, state: State) -> Rig:
    """A rig whose assistant is in ``state``, reached the way a user would get there."""
    rig = Rig(settings, stt=ScriptedStt("why is the sky blue"), responder=Responder())
    a = rig.assistant
    if state == State.MUTED:
        rig.post(Button("hold"))
    elif state == State.ERROR:
        rig.post(Notice("error", {"where": "audio.input", "message": "gone"}))
    elif state == State.LISTENING:
        rig.post(Button("press"))
    elif state == State.THINKING:
        rig.post(Command("ask", {"text": "why is the sky blue"}))
    elif state == State.SPEAKING:
        rig.post(Command("say", {"text": "one two three four five six"}))
        for _ in range(5):
            rig.feed(SILENT)
            if a.state == State.SPEAKING:
                break
    assert a.state == state
    return rig


def payload_for(a: Assistant, event: str) -> object:
    current = a.voice.current.id if a.voice.current is not None else 99
    request = a.turn.request or 98
    return {
        "wake": Woke(Detection("hey_jarvis", 0.8), ()),
        "speech_started": SpeechStarted(1.0),
        "speech_ended": SpeechEnded(1.0),
        "too_long": TooLong(1.0),
        "no_speech": NoSpeech(),
        "wake_lost": WakeLost(),
        "heard": Transcript("what time is it"),
        "reply_sentence": ReplySentence(request, "Because of scattering."),
        "reply_end": ReplyEnd(request),
        "playback_started": PlaybackStarted(current),
        "playback_done": PlaybackDone(current),
        "command": Command("stop"),
        "notice": Notice("offline", {"where": "mqtt"}),
        "fault": Fault("test", "boom"),
        "stop_word": StopSaid(),
        "press": Button("press"),
        "hold": Button("hold"),
        "double": Button("double"),
        "home_stage": HomeStage(a.turn.run or 97, "lost"),
        "home_audio": HomeAudio("announce", 7, b"\0\0" * 1600, 16000, "Dinner"),
        "home_timer": HomeTimer("finished", "t1", "pasta", 60, 0),
    }.get(event)


def stt_balanced(rig: Rig) -> bool:
    """Every transcriber start has its one finish, except the request being heard now."""
    open_now = 1 if rig.assistant.state == State.LISTENING else 0
    return len(rig.stt.fed) == rig.stt.starts - open_now


@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS), ids=lambda v: str(v))
def test_every_entry_of_the_table(settings, state: State, event: str) -> None:
    rig = rig_in(settings, state)
    a = rig.assistant
    row: Row[Assistant, State] = TRANSITIONS[(state, event)]
    a.fire(event, payload_for(a, event))
    assert row.allows(state, a.state)
    rig.settle()
    assert stt_balanced(rig)
    for _ in range(150):  # and it always comes back to rest
        if a.state in (State.IDLE, State.MUTED, State.ERROR) and not rig.speaker.busy():
            break
        rig.feed(SILENT)
    assert stt_balanced(rig)
    rig.close()


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("state", list(State))
def test_every_command_in_every_state_is_answered_once(settings, state, name) -> None:
    rig = rig_in(settings, state)
    answers: list[tuple[bool, str | None]] = []
    args = {"say": {"text": "hi"}, "ask": {"text": "hi"}, "mute": {"muted": True}}
    args["volume"] = {"volume": 30}
    rig.post(Command(name, args.get(name, {}), lambda ok, err: answers.append((ok, err))))
    assert len(answers) == 1
    assert stt_balanced(rig)
    rig.close()


HANDLER_MODULES = {
    "firmware_app.core.commands",
    "firmware_app.core.controls",
    "firmware_app.core.home_turns",
    "firmware_app.core.listening",
    "firmware_app.core.notices",
    "firmware_app.core.speaking",
    "firmware_app.core.understanding",
}
"""Where the handlers that are not the assistant's methods live."""


def found(handler: Callable[..., object]) -> object:
    """What the handler's module and qualified name lead to."""
    at: object = sys.modules[handler.__module__]
    for part in handler.__qualname__.split("."):
        at = getattr(at, part)
    return at


def doc_name(handler: Callable[..., object]) -> str:
    """How the architecture doc names a handler: a method by its name, a function beside
    the assistant by its module's and its own (``commands.say``)."""
    if handler.__qualname__.startswith("Assistant."):
        return handler.__name__
    return f"{handler.__module__.rsplit('.', 1)[1]}.{handler.__name__}"


def test_the_table_names_real_handlers_and_covers_the_edges() -> None:
    handlers = [row.handler for row in TRANSITIONS.values()]
    handlers += [row.handler for row in COMMANDS.values()]
    for handler in handlers:
        assert found(handler) is handler, handler
        method = getattr(Assistant, handler.__name__, None) is handler
        assert method or handler.__module__ in HANDLER_MODULES, handler
    for row in TRANSITIONS.values():
        assert row.allowed <= set(State) and (row.allowed or row.stays)
    for action in [*ENTRY.values(), *EXIT.values()]:
        assert getattr(Assistant, action.__name__) is action
    for state in State:  # whatever the state, these are never ignored
        for event in ("command", "notice", "fault", "press", "hold"):
            assert (state, event) in TRANSITIONS


def test_a_handler_returning_a_state_its_row_forbids_is_a_loud_error(settings) -> None:
    rig = Rig(settings)
    a = rig.assistant
    with pytest.raises(IllegalTransition):
        probe = Row(Assistant.rest, type(None), frozenset())
        a.machine.transitions = {**TRANSITIONS, (State.IDLE, Happening.STARTED): probe}
        a.fire(Happening.STARTED)
    rig.close()


def test_a_table_with_a_pair_twice_or_a_bare_state_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        started, rest = Happening.STARTED, Assistant.rest
        table(
            [
                on({State.IDLE}, started, type(None), rest, {State.IDLE}),
                on({State.IDLE}, started, type(None), rest, set()),
            ]
        )
    with pytest.raises(TypeError):
        on(State.IDLE, Happening.STARTED, type(None), Assistant.rest, {State.IDLE})


def test_the_architecture_doc_shows_the_table_as_the_code_has_it() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    rows = {line for line in doc.splitlines() if line.startswith("| `")}
    for (_, event), row in TRANSITIONS.items():
        name = doc_name(row.handler)
        assert any(r.startswith(f"| `{event}` |") and f"`{name}`" in r for r in rows), event
    documented = {r.split("`")[1] for r in rows}
    assert {event for _, event in TRANSITIONS} <= documented
    for action in [*ENTRY.values(), *EXIT.values()]:
        assert f"`{action.__name__}`" in doc
    for command, row in COMMANDS.items():
        assert any(
            r.startswith(f"| `{command}` |")
            and row.args.__name__ in r
            and f"`{doc_name(row.handler)}`" in r
            for r in rows
        ), command
