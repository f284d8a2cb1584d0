"""The assistant and its own parts: its voice, timer bell, actions, controls, Home
Assistant's side of a request, health report and LED display. Built the same way for the
service (``app/wiring.py``), the simulation and the tests, around what each caller built
itself (hearing, speech output, store, responder, the edges' parts)."""

from __future__ import annotations

from firmware_app.config.settings import Settings
from firmware_app.core.assistant import Assistant
from firmware_app.core.controls import Controls
from firmware_app.core.engines import GrammarTranscriber
from firmware_app.core.events import Emitter, EventBus
from firmware_app.core.health import Health
from firmware_app.core.home_turns import HomeTurns
from firmware_app.core.messages import Inbox
from firmware_app.core.parts import Clock, Parts, Responder
from firmware_app.core.status import StatusBoard
from firmware_app.core.timer_bell import TimerBell
from firmware_app.edges.gpio.patterns import LedPatterns
from firmware_app.listen.hearing import Hearing
from firmware_app.listen.segmenter import request_audio
from firmware_app.recognize.stt import hears_open_speech
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.utterances import MAX_ANNOUNCEMENTS, Voice
from firmware_app.system.metrics import Metrics
from firmware_app.system.store import Store
from firmware_app.understand.actions import NO_HOME, NO_SERVICE, Actions
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.timers import Timers


def build_assistant(
    settings: Settings,
    *,
    hearing: Hearing,
    speech: SpeechOutput,
    store: Store,
    inbox: Inbox,
    clock: Clock,
    bus: EventBus,
    responder: Responder | None = None,
    stt_problem: str | None = None,
    parts: Parts | None = None,
    board: StatusBoard | None = None,
    rings_timers: bool = True,
) -> Assistant:
    """The assistant and its own parts, around what the caller built (hearing, speech
    output, store, responder). ``rings_timers``: timers ring here (the service,
    ``simulate``), not in a one-off ``ask``/``say``, whose fast simulated clock could ring
    a timer early or take a missed one's announcement away from the service."""
    parts = parts or Parts()
    emit = Emitter(bus, clock.t)
    timers = Timers(store, clock)
    if isinstance(hearing.recognizer, GrammarTranscriber):  # "the pasta timer" after a restart
        hearing.recognizer.hold_timers({t.id: t.name for t in timers.active()})
    # MQTT set up but no publisher: a one-off process (``ttbt5 ask --local``)
    no_home = NO_HOME if settings.mqtt.host is None else NO_SERVICE
    custom = CustomIntents(settings.intents)
    metrics = Metrics()  # the counters, derived from the events like everywhere
    bus.subscribe(metrics)
    controls = Controls(store, speech, settings.audio.volume)
    health = Health(
        metrics=metrics,
        store=store,
        speech=speech,
        hearing=hearing,
        timers=timers,
        controls=controls,
        parts=parts,
        responder=responder,
        stt_problem=stt_problem,
    )
    return Assistant(
        settings,
        hearing=hearing,
        voice=Voice(speech, emit, MAX_ANNOUNCEMENTS),
        bell=TimerBell(timers, emit, rings=rings_timers),
        actions=Actions(timers, custom, emit, parts.home_publish, no_home),
        controls=controls,
        display=LedPatterns(emit),
        home=HomeTurns(parts.satellite, emit, speech.speaker),
        health=health,
        emit=emit,
        inbox=inbox,
        clock=clock,
        board=board or StatusBoard(),
        parts=parts,
        responder=responder,
        open_speech=hears_open_speech(settings, hearing.recognizer),
        kept_requests=request_audio(settings),
    )


__all__ = ["build_assistant"]
