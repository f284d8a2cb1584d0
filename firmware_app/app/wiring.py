"""Wiring: the one place that builds real objects from settings and connects them.

Everything is built before the assistant and handed to its constructor: engines, store,
speech output, the LLM responder, the MQTT bridge (whose ``publish`` sends custom home
sentences), the updater and the systemd heartbeat. ``run`` is the appliance (ALSA, GPIO,
MQTT, systemd); the drivers that run the same assistant without a microphone or on a
recording live in ``app/simulation.py``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from loguru import logger

from firmware_app.audio.echo import CAPTURE_LEAD_S, PlaybackReference, PlaybackTap
from firmware_app.config.settings import Settings
from firmware_app.core.assistant import Assistant
from firmware_app.core.engines import (
    Detection,
    Speaker,
    SpeechDetector,
    Synthesizer,
    Transcriber,
    WakeDetector,
)
from firmware_app.core.errors import EngineUnavailableError
from firmware_app.core.events import Event, EventBus, JsonlWriter, wall_now
from firmware_app.core.messages import Frame, Inbox, Message, Stop
from firmware_app.core.parts import (
    AlwaysClaim,
    Clock,
    NoEcho,
    NoStopSpotter,
    Parts,
    RealClock,
    Responder,
    Updater,
)
from firmware_app.speak.output import MAX_AHEAD_S, SpeechOutput
from firmware_app.system.store import Store

if TYPE_CHECKING:
    from firmware_app.edges.mqtt import MqttBridge


@dataclass
class Engines:
    wake: WakeDetector
    vad: SpeechDetector
    stt: Transcriber | None
    stt_problem: str | None
    tts: Synthesizer


class NoWake:
    """For ``ask``/``say``: no microphone, so nothing to detect."""

    def process(self, pcm: bytes) -> Detection | None:
        return None

    def reset(self) -> None:
        pass


class NoVad:
    def process(self, pcm: bytes) -> float:
        return 0.0

    def reset(self) -> None:
        pass


def load_tts(settings: Settings, steady: bool = False) -> Synthesizer:
    from firmware_app.speak.piper import PiperSynthesizer

    tts = PiperSynthesizer(settings.tts, steady=steady)
    for _ in tts.synthesize("Ready."):  # first inference is slow: pay it before anyone waits
        pass
    return tts


def load_stt(settings: Settings) -> tuple[Transcriber | None, str | None]:
    from firmware_app.recognize.stt import load_transcriber

    stt, problem, active = load_transcriber(settings)
    if stt is None:
        logger.warning("speech recognition is off: {}", problem)
    else:
        logger.info("speech recognition: {}", active)
    return stt, problem


def load_engines(
    settings: Settings,
    microphone: bool = True,
    stt: Transcriber | None = None,
    steady: bool = False,
) -> Engines:
    """Load every model once, timing each (start-up time matters on a Pi)."""
    from firmware_app.listen.vad import SileroVad
    from firmware_app.listen.wake import build_wake_detector

    started = time.monotonic()
    wake: WakeDetector = build_wake_detector(settings.wake) if microphone else NoWake()
    vad: SpeechDetector = SileroVad() if microphone else NoVad()
    problem = None
    if stt is None and microphone:
        stt, problem = load_stt(settings)
    tts = load_tts(settings, steady)
    logger.info("models loaded in {:.1f} s", time.monotonic() - started)
    return Engines(wake, vad, stt, problem, tts)


class Output(Speaker, Protocol):
    """A speaker the drivers can wait for."""

    def busy(self) -> bool: ...


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


class Edges:
    """What the MQTT bridge sees of the assistant: the event bus and the queue, which
    exist before the assistant, and its status, readable once it is built (health reports
    start after that)."""

    def __init__(self, bus: EventBus, inbox: Inbox) -> None:
        self.bus = bus
        self._inbox = inbox
        self._status: Callable[[], dict[str, object]] = lambda: {"state": "idle"}

    def post(self, msg: Message) -> None:
        self._inbox.post(msg)

    def status(self) -> dict[str, object]:
        return self._status()

    def serve(self, status: Callable[[], dict[str, object]]) -> None:
        self._status = status


def _responder(settings: Settings, store: Store) -> Responder | None:
    if settings.llm.url is None:
        return None
    from firmware_app.understand.llm import build_responder

    return build_responder(settings, store)


def _mqtt(settings: Settings, edges: Edges, stack: ExitStack) -> MqttBridge | None:
    """The MQTT bridge, built (not yet connected) when ``mqtt.host`` is set."""
    if settings.mqtt.host is None:
        return None
    from firmware_app.edges.mqtt import MqttBridge

    bridge = MqttBridge(settings, edges)
    stack.callback(bridge.close)
    return bridge


def _updater(settings: Settings, edges: Edges) -> Updater | None:
    try:
        from firmware_app.ota import make_updater
    except ImportError:
        return None
    return make_updater(settings, edges.post)


def _hearing(
    settings: Settings, engines: Engines, parts: Parts, stack: ExitStack, extras: bool
) -> tuple[Parts, WakeDetector]:
    """The echo canceller, the stop word and (``extras``, with a broker) wake arbitration,
    as configured, unless the caller brought its own. A part that cannot be loaded is
    left out with a warning: the assistant still works without it."""
    if isinstance(engines.wake, NoWake):
        return parts, engines.wake  # no microphone: nothing to hear
    wake = engines.wake
    changes: dict[str, object] = {}
    cfg = settings.echo
    if isinstance(parts.echo, NoEcho) and cfg.engine != "off":
        from firmware_app.listen.echo_canceller import make_echo_canceller

        try:
            changes["echo"] = make_echo_canceller(cfg.engine, cfg.tail_ms)
        except EngineUnavailableError as exc:
            logger.warning("echo cancellation is off: {}", exc)
    if isinstance(parts.stop_spotter, NoStopSpotter) and cfg.stop_word:
        from firmware_app.listen.stop_word import PocketsphinxStopSpotter

        try:
            changes["stop_spotter"] = PocketsphinxStopSpotter(threshold=cfg.stop_threshold)
        except EngineUnavailableError as exc:
            logger.warning("the stop word is off: {}", exc)
    arbitration = settings.arbitration
    if (
        extras
        and arbitration.enabled
        and settings.mqtt.host
        and isinstance(parts.arbiter, AlwaysClaim)
    ):
        from firmware_app.edges.mqtt.arbitration import LevelMeter, MeteredWake, MqttWakeArbiter

        meter = LevelMeter()
        wake = MeteredWake(wake, meter)
        arbiter = MqttWakeArbiter(
            settings.mqtt, arbitration.group, arbitration.window_ms / 1000, meter=meter
        )
        stack.callback(arbiter.close)
        changes["arbiter"] = arbiter
    return replace(parts, **changes), wake  # type: ignore[arg-type]


@contextmanager
def assembled(
    settings: Settings,
    engines: Engines,
    *,
    clock: Clock,
    inbox: Inbox,
    speaker: Output,
    events: Path | None = None,
    observers: list[Callable[[Event], None]] | None = None,
    extras: bool = True,
    parts: Parts | None = None,
) -> Iterator[Assistant]:
    """Build the assistant with its store, voice, observers and (``extras``) MQTT, GPIO
    and updates; tear it all down after, the speaker included."""
    with ExitStack() as stack:
        if isinstance(speaker, Closable):
            stack.callback(speaker.close)
        bus = EventBus()
        if events is not None:
            writer = JsonlWriter(events)
            stack.callback(writer.close)
            bus.subscribe(writer)
        for observer in observers or []:
            bus.subscribe(observer)
        stt_observer = getattr(engines.stt, "observe", None)  # timer names for its grammar
        if stt_observer is not None:
            bus.subscribe(stt_observer)
        store = Store(settings.store_path, post=inbox.post)
        stack.callback(store.close)
        ahead = MAX_AHEAD_S if isinstance(clock, RealClock) else None  # a real-time speaker
        speech = SpeechOutput(
            engines.tts, speaker, inbox.post, settings.tts.cache_entries, max_ahead_s=ahead
        )
        stack.callback(speech.close)
        responder = _responder(settings, store)
        if isinstance(responder, Closable):
            stack.callback(responder.close)
        edges = Edges(bus, inbox)
        parts, wake = _hearing(settings, engines, parts or Parts(), stack, extras)
        mqtt = _mqtt(settings, edges, stack) if extras else None
        if extras:
            home = mqtt.publish if mqtt is not None else None
            parts = replace(parts, updater=_updater(settings, edges), home_publish=home)
        assistant = Assistant(
            settings,
            wake=wake,
            vad=engines.vad,
            stt=engines.stt,
            speech=speech,
            store=store,
            inbox=inbox,
            clock=clock,
            bus=bus,
            responder=responder,
            stt_problem=engines.stt_problem,
            parts=parts,
        )
        edges.serve(assistant.status)
        if mqtt is not None:
            mqtt.start()  # reports start with the assistant's own status
        if store.recovered_from is not None:
            message = f"corrupt store moved to {store.recovered_from.name}"
            bus.publish(Event("error", 0.0, 0.0, {"where": "store", "message": message}))
        if extras:
            from firmware_app.edges.gpio import start_gpio

            gpio = start_gpio(settings, assistant)
            if gpio is not None:
                stack.callback(gpio.close)
        yield assistant


def run(settings: Settings) -> int:
    """The appliance: microphone, speaker, GPIO, MQTT, systemd notifications."""
    from firmware_app.app.control import ControlServer, socket_path
    from firmware_app.audio.alsa import AlsaSpeaker, Microphone
    from firmware_app.system.notify import Notifier

    notifier = Notifier()
    notifier.status("loading models")
    engines = load_engines(settings)
    inbox = Inbox()
    audio = settings.audio
    # What the speaker plays is the echo canceller's reference for each microphone frame
    # (docs/echo.md: how it is aligned).
    reference = PlaybackReference(keep_s=10.0)
    tap = PlaybackTap(reference, engines.tts.sample_rate, wall_now)

    def post(msg: Message) -> None:
        if isinstance(msg, Frame) and msg.ref is None and settings.echo.engine != "off":
            played = reference.window(msg.t - CAPTURE_LEAD_S, len(msg.pcm) // 2)
            msg = replace(msg, ref=played.tobytes())
        inbox.post(msg)

    mic = Microphone(audio.input_device, post, inbox.has_room, audio.reopen_max_s)
    speaker = AlsaSpeaker(audio.output_device, engines.tts.sample_rate, inbox.post, tap=tap)

    def heartbeat(frame: bool) -> None:
        if frame:
            notifier.frame()
        else:
            notifier.alive()

    parts = Parts(
        heartbeat=heartbeat,
        audio_status=lambda: {"input": mic.stats(), "output": speaker.stats()},
    )
    with assembled(
        settings,
        engines,
        clock=RealClock(),
        inbox=inbox,
        speaker=speaker,
        events=settings.log.events,
        parts=parts,
    ) as assistant:

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal {}: stopping", signal.Signals(signum).name)
            assistant.post(Stop())

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        control = ControlServer(socket_path(), inbox.post, assistant.bus)
        assistant.start()
        try:
            control.start()
        except OSError as exc:  # e.g. started by hand, without its runtime directory
            logger.warning("ttbt5 ask/say cannot reach this service: {}", exc)
        mic.start()
        notifier.ready()
        notifier.status("listening")
        logger.info("ready: say {}", " or ".join(settings.wake.models))
        try:
            assistant.run()
        finally:
            notifier.stopping()
            control.close()
            mic.close()
    return 0
