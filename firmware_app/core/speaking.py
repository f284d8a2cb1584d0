"""What the assistant says, and what follows once it has been said.

A reply answers the request of the turn (`reply`): the voice tells it as a ``reply``
event and keeps it for "say that again". Anything else said now, an announcement, a
command's ``say``, the last reply again, Home Assistant failing, is spoken as it is
(`speak`). Either way the machine thinks until the speaker starts (`on_playback_started`)
and, once the utterance it waited for has played (`on_playback_done`), listens again for a
follow-up or rests. The online model's answer arrives a sentence at a time
(`on_reply_sentence`) and ends with `on_reply_end`, which says a fallback when it gave
nothing to say.

These are functions of the assistant, taking it first as a method does, and acting
through what it makes public (its voice, turn, listening and rest); the table names the
four handlers, and the other handlers call `reply` and `speak` whenever they answer or
announce. What is being said, what waits and the last reply are `speak.utterances.Voice`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_app.core.errors import FaultCode
from firmware_app.core.messages import (
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    RequestId,
)
from firmware_app.core.states import BUSY, SPEAKING, THINKING, State
from firmware_app.speak.sentences import asks_question
from firmware_app.speak.utterances import Origin
from firmware_app.understand.actions import UNKNOWN

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


def reply(assistant: Assistant, text: str, origin: Origin, cache: bool = False) -> State:
    """Under the asker's id, so a typed request (``ttbt5 ask``) sees its own answer."""
    assistant.voice.reply(text, origin, assistant.turn.asker, cache)
    return assistant.state if assistant.state in BUSY else THINKING


def speak(
    assistant: Assistant,
    origin: Origin,
    text: str,
    request_id: RequestId = None,
    cache: bool = False,
) -> State:
    """Not a reply: "say that again" keeps the last answer, not this."""
    assistant.voice.say(origin, text, request_id, cache)
    return assistant.state if assistant.state in BUSY else THINKING


def on_playback_started(assistant: Assistant, msg: PlaybackStarted) -> State:
    """Speaking only once the utterance waited for is heard: a chime does not count."""
    return SPEAKING if assistant.voice.started(msg.utterance) else assistant.state


def on_playback_done(assistant: Assistant, msg: PlaybackDone) -> State:
    """The answer has been heard: a question it asked is listened for without the wake
    word, else the turn is over."""
    if assistant.voice.done(msg.utterance) is None:
        return assistant.state  # a chime, or speech that was already cut
    assistant.turn.asker = None
    if assistant.turn.followup and not assistant.muted:
        assistant.turn.followup = False
        return assistant.listen(followup=True)
    return assistant.rest()


def on_reply_sentence(assistant: Assistant, msg: ReplySentence) -> State:
    """Spoken as it comes, so the first words play while the model still writes the rest;
    a sentence of an answer given up already is dropped."""
    if msg.request == assistant.turn.request:
        assistant.voice.stream(msg.text, assistant.turn.asker)
    return assistant.state


def on_reply_end(assistant: Assistant, msg: ReplyEnd) -> State:
    """An answer that said nothing is never silence: a fallback is said instead. One that
    ends in a question is listened for after it plays."""
    turn = assistant.turn
    if msg.request != turn.request:
        return assistant.state
    turn.request = 0
    if msg.error:
        assistant.emit("error", where=FaultCode.LLM, message=msg.error)
    current = assistant.voice.current
    if current is None or current.origin != Origin.LLM or not current.text:
        return reply(assistant, msg.fallback or UNKNOWN, Origin.FALLBACK, cache=True)
    if assistant.settings.llm.followup_s > 0 and asks_question(current.text):
        turn.followup = True
    assistant.voice.replied(turn.asker)
    return assistant.state


__all__ = [
    "on_playback_done",
    "on_playback_started",
    "on_reply_end",
    "on_reply_sentence",
    "reply",
    "speak",
]
