"""The assistant's health, as one report: what `core.status.StatusBoard` publishes for
MQTT health and ``ttbt5 status``.

`Health` gathers the parts' own figures (the event counters, the store, the speech cache,
the online model's breaker, the satellite, wake arbitration, the timers' clock, the audio
devices); the assistant adds what only it knows (its state, the controls, its last
error). Built once with the parts it asks, on the assistant's thread only.
"""

from __future__ import annotations

from firmware_app import __version__
from firmware_app.core.controls import Controls
from firmware_app.core.parts import Parts, Responder
from firmware_app.listen.hearing import Hearing
from firmware_app.speak.output import SpeechOutput
from firmware_app.system.metrics import Metrics
from firmware_app.system.store import Store
from firmware_app.understand.timers import Timers


class Health:
    def __init__(
        self,
        *,
        metrics: Metrics,
        store: Store,
        speech: SpeechOutput,
        hearing: Hearing,
        timers: Timers,
        controls: Controls,
        parts: Parts,
        responder: Responder | None,
        stt_problem: str | None,
    ) -> None:
        self.metrics = metrics
        """The counters, derived from the events (subscribed to the bus where it is built)."""
        self._store = store
        self._speech = speech
        self._hearing = hearing
        self._timers = timers
        self._controls = controls
        self._parts = parts
        self._responder = responder
        self._stt_problem = stt_problem

    def report(self, state: str, last_error: str) -> dict[str, object]:
        """The status now, for the assistant in ``state`` whose last error was
        ``last_error``."""
        parts = self._parts
        audio = parts.audio_status() if parts.audio_status else {}
        counts = self.metrics.snapshot()
        llm: dict[str, object] | None = None
        if self._responder is not None:
            breaker = self._responder.status().get("state")
            llm = {"available": self._responder.available(), "breaker": breaker}
        ready = self._hearing.recognizer is not None
        stt = "ready" if ready else (self._stt_problem or "missing")
        return {
            "version": __version__,
            "state": state,
            "muted": self._controls.muted,
            "volume": self._controls.volume,
            "wake_count": counts["wake_count"],
            "errors": counts["errors"],
            "last_error": last_error,
            "timers": len(self._timers.active()),
            "store": self._store.status(),
            "stt": stt,
            "audio": audio,
            "tts_cache": self._speech.cache.stats(),
            "llm": llm,
            "satellite": parts.satellite.status(),
            "arbitration": parts.arbiter.status(),
            "clock": self._timers.clock_status(),
        }


__all__ = ["Health"]
