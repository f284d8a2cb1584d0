"""A request understood: heard or typed, it is answered here, carried out, or asked of
the online model.

What a request means is `understand.actions.Actions`' to say (a built-in or custom
intent, the answer to a question asked); what the assistant then does about it, and what
it says when nothing here understands, is decided by `think`, which the table names for
``heard``. A request that is no command is never met with silence: it is answered by
the online model when there is one, else told what would answer it.

Functions of the assistant, taking it first as a method does and acting through what it
makes public (its actions, responder, voice, turn, stop and rest).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from loguru import logger

from firmware_app.core.controls import set_volume
from firmware_app.core.messages import Notice, ReplyEnd, ReplySentence
from firmware_app.core.speaking import reply
from firmware_app.core.states import THINKING, State
from firmware_app.listen.segmenter import Transcript
from firmware_app.speak.utterances import Origin
from firmware_app.understand.actions import (
    NO_MODEL,
    NOT_HEARD,
    NOTHING_SAID,
    Outcome,
    beyond_commands,
    how_to_add,
)

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


def think(assistant: Assistant, heard: Transcript) -> State:
    """A request, heard or typed (text None: heard, but there is no speech model)."""
    text = heard.text
    assistant.emit("transcript", text=text or "")
    turn = assistant.turn
    question, turn.question = turn.question, None  # answered now, or not at all
    if text is None:
        return reply(assistant, NO_MODEL, Origin.FALLBACK, cache=True)
    if not text:
        if heard.out_of_grammar:  # speech, but no command in it
            return _beyond_commands(assistant)
        return reply(assistant, NOT_HEARD, Origin.FALLBACK, cache=True)
    outcome = assistant.actions.understand(
        text, question, assistant.clock.epoch(), assistant.volume
    )
    if outcome is None and heard.near_command:
        outcome = assistant.actions.understand(
            heard.near_command, question, assistant.clock.epoch(), assistant.volume
        )
        if outcome is not None:
            logger.info("heard {!r} as the command {!r}", text, heard.near_command)
    if outcome is not None:
        return _carry_out(assistant, outcome)
    if assistant.responder is None:
        return _beyond_commands(assistant)
    if assistant.settings.audio.chimes:  # the answer takes a moment: say we heard
        assistant.voice.chime("done")
    turn.request = assistant.voice.utterances.new_id()
    assistant.responder.respond(turn.request, text, partial(_from_responder, assistant))
    return THINKING


def _beyond_commands(assistant: Assistant) -> State:
    """No command, and nothing here answers questions: say what would."""
    llm = assistant.responder is not None
    logger.info("not a command; {}", how_to_add(assistant.open_speech, llm))
    said = beyond_commands(assistant.open_speech, llm)
    return reply(assistant, said, Origin.FALLBACK, cache=True)


def _carry_out(assistant: Assistant, outcome: Outcome) -> State:
    """A question asked back ("Which one?") is listened for without the wake word, but
    not while the microphone is muted: the answer could not be heard."""
    if outcome.volume is not None:
        set_volume(assistant, outcome.volume)
    if outcome.stop:
        return assistant.stop_everything()
    text = outcome.text
    if outcome.repeat:
        text = assistant.voice.last_reply or NOTHING_SAID
    if text is None:
        return assistant.rest()
    if outcome.question is not None and not assistant.muted:
        assistant.turn.question, assistant.turn.followup = outcome.question, True
    return reply(assistant, text, Origin.LOCAL, cache=outcome.cache)


def _from_responder(assistant: Assistant, msg: object) -> None:
    """The responder's door, called on its own thread: only its own kinds of message
    pass, and only through the assistant's thread-safe `Assistant.post`."""
    if isinstance(msg, ReplySentence | ReplyEnd | Notice):
        assistant.post(msg)
    else:
        logger.error("responder posted a {}; ignored", type(msg).__name__)


__all__ = ["think"]
