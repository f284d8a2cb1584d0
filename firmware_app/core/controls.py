"""The listener's controls: the volume and the microphone's mute, kept across restarts.

`Controls` is the one place mute is held. The assistant's ``muted`` state is not a second
copy of it: it is the name of the resting state while the microphone is off, derived
from `Controls.muted` each time the machine comes to rest, so the two can never disagree.
Only the assistant calls the setters (on its thread, from its handlers); each change is
written to the store before it is reported, so a restart comes back as the user left it.
"""

from __future__ import annotations

from firmware_app.speak.output import SpeechOutput
from firmware_app.system.store import Store


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


__all__ = ["Controls"]
