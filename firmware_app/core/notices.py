"""What holds the assistant away from plain idle, and the notices that say so.

Parts on other threads (the microphone and speaker, the store, the network and MQTT
link, the updater, the online model's breaker) do not act on the assistant: they post a
`Notice`, and `on_notice` (which the table names) turns it into `Conditions` here and an
event on the bus. The conditions decide where the machine rests (a microphone that
failed, or an error still shown: ERROR) and part of what the LEDs show (an update
running, the network gone); faults in the middle of a request set them too
(`Assistant.on_fault`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from firmware_app.core.errors import FaultCode
from firmware_app.core.listening import set_wake_word
from firmware_app.core.messages import Notice
from firmware_app.core.states import ERROR, IDLE, MUTED, State

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


@dataclass
class Conditions:
    """``hold_s``: how long an error stays shown after it happened."""

    hold_s: float
    last_error: str = ""  # "where: message", for the health report
    mic_fault: bool = False  # the microphone failed; the next frame clears it
    error_until: float = 0.0  # an error is shown until then (assistant clock)
    offline: bool = False
    updating: bool = False

    def failed(self, where: str, message: str, t: float, hold: bool = True) -> None:
        """Something failed at ``t``; with ``hold``, the error is shown for ``hold_s``."""
        self.last_error = f"{where}: {message}"
        if hold:
            self.error_until = t + self.hold_s

    def erring(self, t: float) -> bool:
        """Whether the machine rests in ERROR at ``t``."""
        return self.mic_fault or t < self.error_until


def on_notice(a: Assistant, notice: Notice) -> State:
    """A part's notice: an error (the microphone's keeps ERROR until a frame arrives; the
    store's is shown for a moment, while health goes on saying it), the breaker or an
    update, the network, the wake word turned on or off, a part back."""
    fields = dict(notice.fields)
    conditions = a.conditions
    at_rest = a.state in (IDLE, MUTED)
    if notice.kind == "error":
        where, message = str(fields.get("where", "unknown")), str(fields.get("message", ""))
        held = where == FaultCode.STORE
        conditions.failed(where, message, a.emit.t, hold=held)
        a.emit("error", where=where, message=message)
        if where == FaultCode.AUDIO_INPUT:
            conditions.mic_fault = True
        if (where == FaultCode.AUDIO_INPUT or held) and at_rest:
            return ERROR
    elif notice.kind in ("breaker", "update"):
        if notice.kind == "update":
            conditions.updating = bool(fields.get("active"))
        a.emit(notice.kind, **fields)
    elif notice.kind in ("offline", "online"):
        conditions.offline = notice.kind == "offline"
    elif notice.kind == "hotword":
        set_wake_word(a, bool(fields.get("on")), str(fields.get("reason", "")))
    elif notice.kind == "back":
        a.emit("back", where=str(fields.get("where", "unknown")))
    return a.state
