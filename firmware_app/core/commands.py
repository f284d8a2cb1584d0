"""The control commands (MQTT, Hermes, the control socket, the command line): a command
arrives, is looked up in the commands table (``COMMANDS`` in ``core/table.py``), its
arguments are checked against the row's payload model, and its handler here runs.

Each handler takes the assistant, the command and its checked arguments and returns the
next state, as the assistant's own handlers do; the table names them, so the type checker
sees that each takes its row's payload model. They act through what the assistant makes
public (listening, speaking, resting, the controls, the turn); every command is answered
exactly once, through `answer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger
from pydantic import ValidationError

from firmware_app.core.controls import set_muted, set_volume
from firmware_app.core.listening import drop_false_wake
from firmware_app.core.messages import Command, MuteArgs, NoArgs, TextArgs, VolumeArgs
from firmware_app.core.speaking import speak
from firmware_app.core.states import LISTENING, RESTING, THINKING, Happening, State
from firmware_app.listen.segmenter import Transcript
from firmware_app.speak.utterances import Origin, Pending
from firmware_app.understand.actions import strip_wake_words

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


def on_command(assistant: Assistant, cmd: Command) -> State:
    """Its row's handler, given arguments checked against the row's payload model: an
    empty text is answered as the user's slip, anything else malformed is the sender's
    bug."""
    row = assistant.table.commands.get(cmd.name)
    if row is None:
        answer(cmd, False, f"unknown command {cmd.name!r}")
        return assistant.state
    model = row.args
    if "text" in model.model_fields and not str(cmd.args.get("text", "")).strip():
        answer(cmd, False, f"{cmd.name} needs a non-empty text")
        return assistant.state
    try:
        args = model.model_validate(cmd.args)
    except ValidationError as exc:  # a bug in the sender: answered and reported
        raise ValueError(str(exc).splitlines()[0]) from None
    after: State = row.handler(assistant, cmd, args)
    return after


def answer(cmd: Command, ok: bool, error: str | None = None) -> None:
    """Tell the sender how its command went; a sender gone away costs a log line, never
    the assistant."""
    if cmd.reply is not None:
        try:
            cmd.reply(ok, error)
        except Exception as exc:
            logger.error("command reply for {} failed: {}", cmd.name, exc)


def say(assistant: Assistant, cmd: Command, args: TextArgs) -> State:
    origin = Origin.HERMES if cmd.source == "hermes" else Origin.COMMAND
    output = (assistant.parts.audio_status() if assistant.parts.audio_status else {}).get("output")
    if isinstance(output, dict) and output.get("status") == "missing":
        answer(cmd, False, f"no speaker: {output.get('error') or 'missing'}")
        return assistant.state
    if assistant.state in RESTING:
        answer(cmd, True)
        return speak(assistant, origin, args.text.strip(), cmd.request_id)
    if not assistant.voice.queue(Pending(origin, args.text.strip(), cmd.request_id)):
        answer(cmd, False, "busy: too many announcements waiting")
        return assistant.state
    answer(cmd, True)
    return assistant.state


def ask(assistant: Assistant, cmd: Command, args: TextArgs) -> State:
    """Typed text handled as if it had been heard (wake words and all)."""
    assistant.interrupt()
    assistant.turn.asker = cmd.request_id  # its reply and speech carry the request's id
    assistant.fire(Happening.HEARD, Transcript(strip_wake_words(args.text.strip())))
    answer(cmd, True)
    return THINKING


def listen(assistant: Assistant, cmd: Command, _: NoArgs) -> State:
    if assistant.muted:
        answer(cmd, False, "the microphone is muted")
        return assistant.state
    answer(cmd, True)
    if assistant.state == LISTENING:
        return LISTENING
    assistant.interrupt()
    return assistant.listen()


def stop(assistant: Assistant, cmd: Command, _: NoArgs) -> State:
    answer(cmd, True)
    return assistant.stop_everything()


def mute(assistant: Assistant, cmd: Command, args: MuteArgs) -> State:
    after = set_muted(assistant, args.muted)
    answer(cmd, True)
    return after


def volume(assistant: Assistant, cmd: Command, args: VolumeArgs) -> State:
    set_volume(assistant, args.volume)
    answer(cmd, True)
    return assistant.state


def update(assistant: Assistant, cmd: Command, _: NoArgs) -> State:
    if assistant.parts.updater is None:
        answer(cmd, False, "updates are not available on this installation")
    else:
        assistant.parts.updater(cmd)  # it answers when the update step is done
    return assistant.state


def false_wake(assistant: Assistant, cmd: Command, _: NoArgs) -> State:
    """ "That wasn't for me": the last wake is counted false (and saved, if configured);
    a request it opened is dropped."""
    clip = assistant.hearing.clips.mark_false()
    if clip is None:
        answer(cmd, False, "no wake to mark: none heard yet, or marked already")
        return assistant.state
    dropped = drop_false_wake(assistant, clip.t)
    assistant.emit(
        "false_wake",
        model=clip.model,
        score=clip.score,
        wake_t=round(clip.t, 3),
        dropped=dropped,
    )
    answer(cmd, True)
    return assistant.state if dropped is None else assistant.rest()


__all__ = [
    "answer",
    "ask",
    "false_wake",
    "listen",
    "mute",
    "on_command",
    "say",
    "stop",
    "update",
    "volume",
]
