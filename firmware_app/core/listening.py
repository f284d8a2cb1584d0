"""What hearing reports while the assistant listens: a wake word, a wake taken back, the
request's speech starting and ending, and the request handed to Home Assistant.

A wake opens a request only when Home Assistant still lets that wake word answer and no
other speaker in the home claimed the same utterance (`Parts.arbiter`); it cuts whatever
was playing (barge-in) and remembers when it woke, so "that wasn't for me" can drop the
very request it opened (`drop_false_wake`). At the end of speech the request is
understood here (`understanding.think`, through the table's ``heard``) or, while Home
Assistant listens to it, handed over with the local transcript kept in case it does not
answer (`hand_over`).

How LISTENING is entered and left (the recognizer started and finished once, the pre-roll
handed over) stays with the assistant: those entry and exit actions hold how the next
request opens. These are functions of the assistant, taking it first as a method does
and acting through what it makes public.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware_app.core.messages import WakeLost
from firmware_app.core.states import LISTENING, RESTING, THINKING, Happening, State
from firmware_app.listen.segmenter import (
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Transcript,
    Woke,
    save_request_audio,
)
from firmware_app.understand.actions import without_wake_words

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


def wake_phrase(model: str) -> str:
    """The wake word as Home Assistant is told it: ``hey_jarvis`` (or a model's path) →
    ``hey jarvis``."""
    stem = model.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem.replace("_", " ").strip()


def on_wake(assistant: Assistant, woke: Woke) -> State:
    model, score = woke.detection.model, woke.detection.score
    assistant.emit("wake", model=model, score=score)
    if not assistant.home.hears(model):  # turned off from Home Assistant
        assistant.emit("wake_lost", model=model, score=score, reason="inactive")
        return assistant.state
    if not assistant.parts.arbiter.claim(model, score):
        assistant.emit("wake_lost", model=model, score=score, reason="arbitration")
        return assistant.state
    assistant.interrupt()
    assistant.turn.opened_by = assistant.emit.t
    return assistant.listen(woke.preroll, phrase=wake_phrase(model))


def set_wake_word(assistant: Assistant, on: bool, reason: str) -> None:
    """Wakes stop while any reason holds them off (Rhasspy's dialogue manager turns them
    off for a session or while it plays audio, and on again with the same reason);
    turning on without a reason clears them all. Hearing holds the switch, so a wake heard
    while it is off never reaches the table."""
    switch = assistant.hearing.wake_word
    if switch.turn(on, reason):
        assistant.emit("wake_word", on=switch.on, reasons=switch.reasons)


def drop_false_wake(assistant: Assistant, wake_t: float) -> str | None:
    """ "That wasn't for me": the request the wake at ``wake_t`` opened is dropped,
    whatever it has reached (listening, thinking, its answer playing); returns the state
    it was dropped in, or None when that wake opened nothing still going."""
    if assistant.turn.opened_by != wake_t or assistant.state in RESTING:
        return None
    dropped = assistant.state.value
    assistant.interrupt("false wake")
    return dropped


def on_wake_lost(assistant: Assistant, lost: WakeLost) -> State:
    assistant.emit("wake_lost", model=None, score=None, reason=lost.reason)
    return assistant.rest()


def on_speech_started(assistant: Assistant, _: SpeechStarted) -> State:
    assistant.emit("speech_start")
    return LISTENING


def on_speech_ended(assistant: Assistant, ended: SpeechEnded | TooLong) -> State:
    # last_speech_t: when the voice was last heard, so the end-of-speech delay shows
    # stamped when the end was decided, so speech_end -> transcript is the recognizer's time
    assistant.emit.at(ended.ended_wall, "speech_end", last_speech_t=round(ended.last_speech_t, 3))
    if ended.audio and assistant.kept_requests is not None:
        save_request_audio(assistant.kept_requests, list(ended.audio), assistant.clock.epoch())
    heard = without_wake_words(ended.transcript)
    if assistant.turn.run:  # Home Assistant answers this one
        return hand_over(assistant, heard)
    assistant.fire(Happening.HEARD, heard)
    return THINKING


def hand_over(assistant: Assistant, heard: Transcript) -> State:
    """End of speech: Home Assistant answers, the local transcript kept in case it does
    not. Home Assistant's own end of speech hands the turn over too (``home_turns``)."""
    assistant.home.hand_over(assistant.turn.run)
    assistant.turn.handed, assistant.turn.heard = True, heard
    return THINKING


__all__ = [
    "drop_false_wake",
    "hand_over",
    "on_speech_ended",
    "on_speech_started",
    "on_wake",
    "on_wake_lost",
    "set_wake_word",
    "wake_phrase",
]
