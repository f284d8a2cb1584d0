"""The transition table, walked entry by entry on the real Assistant (fakes for engines):
every (state, event) it lists is reached, handled, and ends in a state its row allows;
the transcriber is finished exactly once however LISTENING is left."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fakes import SILENT, Rig, ScriptedStt

from firmware_app.core.assistant import COMMANDS, ENTRY, EXIT, TRANSITIONS, Assistant, State
from firmware_app.core.dispatcher import IllegalTransition, Row, table
from firmware_app.core.engines import Detection
from firmware_app.core.messages import (
    Button,
    Command,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    WakeLost,
)
from firmware_app.listen.segmenter import NoSpeech, SpeechEnded, SpeechStarted, TooLong, Woke


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
    request = a._request or 98
    return {
        "wake": Woke(Detection("hey_jarvis", 0.8), ()),
        "speech_started": SpeechStarted(1.0),
        "speech_ended": SpeechEnded(1.0),
        "too_long": TooLong(1.0),
        "no_speech": NoSpeech(),
        "wake_lost": WakeLost(),
        "heard": "what time is it",
        "reply_sentence": ReplySentence(request, "Because of scattering."),
        "reply_end": ReplyEnd(request),
        "playback_started": PlaybackStarted(current),
        "playback_done": PlaybackDone(current),
        "command": Command("stop"),
        "notice": Notice("offline", {"where": "mqtt"}),
        "fault": ("test", "boom"),
    }.get(event)


def stt_balanced(rig: Rig) -> bool:
    """Every transcriber start has its one finish, except the request being heard now."""
    open_now = 1 if rig.assistant.state == State.LISTENING else 0
    return len(rig.stt.fed) == rig.stt.starts - open_now


@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS), ids=lambda v: str(v))
def test_every_entry_of_the_table(settings, state: State, event: str) -> None:
    rig = rig_in(settings, state)
    a = rig.assistant
    row: Row[State] = TRANSITIONS[(state, event)]
    a.fire(event, payload_for(a, event))
    assert a.state in row.allowed
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


def test_the_table_names_real_handlers_and_covers_the_edges() -> None:
    for row in TRANSITIONS.values():
        assert callable(getattr(Assistant, row.handler)), row.handler
        assert row.allowed <= set(State)
    for name in [*ENTRY.values(), *EXIT.values()]:
        assert callable(getattr(Assistant, name))
    for _, handler in COMMANDS.values():
        assert callable(getattr(Assistant, handler))
    for state in State:  # whatever the state, these are never ignored
        for event in ("command", "notice", "fault", "press", "hold"):
            assert (state, event) in TRANSITIONS


def test_a_handler_returning_a_state_its_row_forbids_is_a_loud_error(settings) -> None:
    rig = Rig(settings)
    a = rig.assistant
    with pytest.raises(IllegalTransition):
        a.transitions = {**TRANSITIONS, (State.IDLE, "probe"): Row("rest", frozenset())}
        a.fire("probe")
    rig.close()


def test_a_table_with_a_pair_twice_or_a_bare_state_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        table([({State.IDLE}, "x", "rest", {State.IDLE}), ({State.IDLE}, "x", "rest", set())])
    with pytest.raises(TypeError):
        table([(State.IDLE, "x", "rest", {State.IDLE})])  # type: ignore[list-item]


def test_the_architecture_doc_shows_the_table_as_the_code_has_it() -> None:
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    rows = {line for line in doc.splitlines() if line.startswith("| `")}
    for (_, event), row in TRANSITIONS.items():
        assert any(r.startswith(f"| `{event}` |") and f"`{row.handler}`" in r for r in rows), event
    documented = {r.split("`")[1] for r in rows}
    assert {event for _, event in TRANSITIONS} <= documented
    for name in [*ENTRY.values(), *EXIT.values()]:
        assert f"`{name}`" in doc
    for command, (model, handler) in COMMANDS.items():
        assert any(
            r.startswith(f"| `{command}` |") and model.__name__ in r and handler in r for r in rows
        ), command
