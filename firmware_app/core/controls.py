"""The listener's controls: the button, the volume and the microphone's mute.

`Controls` is the one place volume and mute are held. The assistant's ``muted`` state is
not a second copy of mute: it is the name of the resting state while the microphone is
off, derived from `Controls.muted` each time the machine comes to rest, so the two can
never disagree. Each change is written to the store before it is reported, so a restart
comes back as the user left it.

What using them does is decided by the functions below, on the assistant's thread: the
button's gestures (`on_press`, `on_hold`, `on_double`, which the table names) and a new
volume or mute, whether it came from the button, a command or a request (`set_volume`,
`set_muted`). They take the assistant first, as a method does, and act through what it
makes public; only they call `Controls`' setters, so every change is also told on the bus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from firmware_app.core.speaking import speak
from firmware_app.core.states import BUSY, LISTENING, RESTING, State
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.utterances import Origin
from firmware_app.system.store import Store

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


class Controls:
    """Volume (0-100, applied to the speech output) and mute, as the store keeps them."""

    def __init__(self, store: Store, speech: SpeechOutput, default_volume: int) -> None:
        self._store = store
        self._speech = speech
        self._muted = bool(store.get("settings", "muted", False))
        self._volume = int(store.get("settings", "volume", default_volume))
        speech.volume = self._volume

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def volume(self) -> int:
        return self._volume

    def set_volume(self, level: int) -> None:
        """Clamped to 0-100; stored and applied only when it changes."""
        level = max(0, min(100, int(level)))
        if level != self._volume:
            self._volume = level
            self._speech.volume = level
            self._store.put("settings", "volume", level)

    def set_muted(self, muted: bool) -> bool:
        """Whether this changed it."""
        if muted == self._muted:
            return False
        self._muted = muted
        self._store.put("settings", "muted", muted)
        return True


def set_volume(assistant: Assistant, level: int) -> None:
    """Told even when it did not change, so whoever asked sees where it is."""
    assistant.controls.set_volume(level)
    assistant.emit("volume", volume=assistant.volume)


def set_muted(assistant: Assistant, muted: bool) -> State:
    """Muting cuts a request being heard short; at rest, the machine rests under the new
    name (muted or idle)."""
    if assistant.controls.set_muted(muted):
        if not muted:
            assistant.hearing.reset()  # it heard nothing while muted: drop what it held
        logger.info("microphone {}", "muted" if muted else "unmuted")
    assistant.emit("mute", muted=assistant.muted)
    if muted and assistant.state == LISTENING:
        return assistant.rest()
    return assistant.resting_state() if assistant.state in RESTING else assistant.state


def on_press(assistant: Assistant, _: object) -> State:
    """One button does what the moment needs: stop what plays or rings, give up listening,
    or listen (a muted microphone says no with the error chime)."""
    if assistant.voice.ringing or assistant.state in BUSY:
        return assistant.stop_everything()
    if assistant.state == LISTENING:
        return assistant.rest()
    if assistant.muted:
        if assistant.settings.audio.chimes:
            assistant.voice.chime("error")
        return assistant.state
    return assistant.listen()


def on_hold(assistant: Assistant, _: object) -> State:
    return set_muted(assistant, not assistant.muted)


def on_double(assistant: Assistant, _: object) -> State:
    """Say the last reply again."""
    if not assistant.voice.last_reply:
        return assistant.state
    assistant.interrupt()
    return speak(assistant, Origin.REPEAT, assistant.voice.last_reply)


__all__ = ["Controls", "on_double", "on_hold", "on_press", "set_muted", "set_volume"]
