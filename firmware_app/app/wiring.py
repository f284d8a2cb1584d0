"""Wiring: the one place that builds real objects from settings and connects them.

Everything is built before the assistant and handed to its constructor: engines (loaded
by ``app/loading.py``), store, speech output, the LLM responder, the MQTT bridge (whose
``publish`` sends custom home sentences), the updater and the systemd heartbeat; then
the assistant with its own parts (``app/assistant_parts.py``, the same for the service,
the simulation and the tests). ``run`` is the appliance (ALSA, GPIO, MQTT,
systemd); the drivers that run the same assistant without a microphone or on a
recording live in ``app/simulation.py``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from loguru import logger

from firmware_app.app.assistant_parts import build_assistant
from firmware_app.app.loading import Engines, NoWake, build_hearing, load_engines
from firmware_app.audio.ducking import duck_gain
from firmware_app.audio.echo import REFERENCE_KEEP_S, PlaybackReference, PlaybackTap
from firmware_app.config.settings import Settings
from firmware_app.core.assistant import Assistant
from firmware_app.core.engines import (
    GrammarTranscriber,
    Speaker,
)
from firmware_app.core.events import Event, EventBus, JsonlWriter, wall_now
from firmware_app.core.messages import Inbox, Message, Stop
from firmware_app.core.parts import (
    AlwaysClaim,
    Clock,
    NoSatellite,
    Parts,
    RealClock,
    Responder,
    Updater,
    WakeArbiter,
)
from firmware_app.core.status import StatusBoard
from firmware_app.listen.hearing import Hearing
from firmware_app.speak.output import MAX_AHEAD_S, SpeechOutput
from firmware_app.speak.reply_cache import ReplyCache
from firmware_app.system.store import Store

if TYPE_CHECKING:
    from firmware_app.edges.mqtt import MqttBridge


class Output(Speaker, Protocol):
    """A speaker the drivers can wait for."""

    def busy(self) -> bool: ...


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


class Edges:
    """What the MQTT bridge sees of the assistant: the event bus and the queue, which
    exist before the assistant, and the status it publishes (`StatusBoard`)."""

    def __init__(self, bus: EventBus, inbox: Inbox, board: StatusBoard) -> None:
        self.bus = bus
        self._inbox = inbox
        self._board = board

    def post(self, msg: Message) -> None:
        self._inbox.post(msg)

    def status(self) -> dict[str, object]:
        return self._board.read()


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


def _satellite(
    settings: Settings, edges: Edges, store: Store, parts: Parts, stack: ExitStack
) -> Parts:
    """The Home Assistant satellite (``[esphome] enabled``), listening before the
    assistant starts, unless the caller brought its own."""
    if not settings.esphome.enabled or not isinstance(parts.satellite, NoSatellite):
        return parts
    from firmware_app.edges.esphome.wiring import build_satellite

    volume = int(store.get("settings", "volume", settings.audio.volume))
    muted = bool(store.get("settings", "muted", False))
    satellite = build_satellite(
        settings, edges.post, edges.status, stack, volume=volume, muted=muted, store=store
    )
    if satellite is None:
        return parts
    edges.bus.subscribe(satellite)
    return replace(parts, satellite=satellite)


def _updater(settings: Settings, edges: Edges) -> Updater | None:
    if not settings.update.url:  # no release server: leave the updater's 12 MB unimported
        return None
    try:
        from firmware_app.ota import make_updater
    except ImportError:
        return None
    return make_updater(settings, edges.post)


def _arbiter(
    settings: Settings, engines: Engines, hearing: Hearing, stack: ExitStack
) -> WakeArbiter | None:
    """Wake arbitration with the devices on the same broker, when configured; a claim says
    how loud the wake word was here, as hearing measured it."""
    arbitration = settings.arbitration
    if isinstance(engines.wake, NoWake) or not (arbitration.enabled and settings.mqtt.host):
        return None
    from firmware_app.config.settings import read_secret
    from firmware_app.edges.mqtt.arbitration import MqttWakeArbiter

    key = read_secret(
        arbitration.secret,
        arbitration.secret_file,
        "arbitration.secret_file",
        "arbitration_secret",
    )
    if key is None:
        logger.warning(
            "wake arbitration is off: set arbitration.secret_file (the same key on every "
            "device of the group); until then this device answers every wake alone"
        )
        return None
    arbiter = MqttWakeArbiter(
        settings.mqtt,
        key.get_secret_value().encode(),
        arbitration.group,
        arbitration.window_ms / 1000,
        meter=hearing.level,
    )
    stack.callback(arbiter.close)
    return arbiter


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
    reference: PlaybackReference | None = None,
    rings_timers: bool = True,
    warm_up: bool = True,
) -> Iterator[Assistant]:
    """Build the assistant with its hearing, store, voice, observers and (``extras``) MQTT,
    GPIO and updates; tear it all down after, the speaker included. ``reference`` is what
    the speaker played, for microphone frames that do not carry it. ``rings_timers``:
    timers ring here (the service, ``simulate``), not in a one-off ``ask``/``say``.
    ``warm_up``: the reply cache is filled at start (where replies are awaited in real
    time: the service, ``simulate --realtime``)."""
    with ExitStack() as stack:
        if isinstance(speaker, Closable):
            stack.callback(speaker.close)
        bus = EventBus()
        if events is not None:
            writer = JsonlWriter(
                events,
                max_bytes=int(settings.log.events_max_mb * 1024 * 1024),
                keep=settings.log.events_keep,
                key="log.events" if events == settings.log.events else "--events",
            )
            stack.callback(writer.close)
            bus.subscribe(writer)
        for observer in observers or []:
            bus.subscribe(observer)
        if isinstance(engines.stt, GrammarTranscriber):  # timer names for its grammar
            bus.subscribe(engines.stt.observe)
        store = Store(settings.store_path, post=inbox.post)
        stack.callback(store.close)
        ahead = MAX_AHEAD_S if isinstance(clock, RealClock) else None  # a real-time speaker
        speech = SpeechOutput(
            engines.tts,
            speaker,
            inbox.post,
            ReplyCache(settings.tts.cache_entries),
            max_ahead_s=ahead,
            warm_up=warm_up,
        )
        stack.callback(speech.close)
        responder = _responder(settings, store)
        if isinstance(responder, Closable):
            stack.callback(responder.close)
        board = StatusBoard()
        edges = Edges(bus, inbox, board)
        hearing = build_hearing(settings, engines, reference)
        parts = parts or Parts()
        if extras and isinstance(parts.arbiter, AlwaysClaim):
            arbiter = _arbiter(settings, engines, hearing, stack)
            if arbiter is not None:
                parts = replace(parts, arbiter=arbiter)
        mqtt = _mqtt(settings, edges, stack) if extras else None
        if extras:
            home = mqtt.publish if mqtt is not None else None
            parts = replace(parts, updater=_updater(settings, edges), home_publish=home)
            parts = _satellite(settings, edges, store, parts, stack)
        assistant = build_assistant(
            settings,
            hearing=hearing,
            speech=speech,
            store=store,
            inbox=inbox,
            clock=clock,
            bus=bus,
            responder=responder,
            stt_problem=engines.stt_problem,
            parts=parts,
            board=board,
            rings_timers=rings_timers,
        )
        if mqtt is not None:
            mqtt.start()  # reports start with the assistant's own status
        if extras:
            from firmware_app.edges.gpio import start_gpio

            gpio = start_gpio(settings, assistant)
            if gpio is not None:
                stack.callback(gpio.close)
        yield assistant


def run(settings: Settings) -> int:
    """The appliance: microphone, speaker, GPIO, MQTT, systemd notifications. Refuses to
    start while another ``ttbt5 run`` holds the device (AlreadyRunningError)."""
    from firmware_app.app.control import socket_path
    from firmware_app.app.instance import InstanceLock

    lock = InstanceLock(socket_path().parent)
    try:
        lock.acquire()  # before the sound card or the socket are touched
    except OSError as exc:  # e.g. started by hand, without its runtime directory
        logger.warning("cannot lock {} ({}); not checking for another ttbt5 run", lock.path, exc)
    try:
        return _run_locked(settings)
    finally:
        lock.release()


def _run_locked(settings: Settings) -> int:
    from firmware_app.app.control import socket_path
    from firmware_app.app.control_server import ControlServer
    from firmware_app.audio.capture import Microphone
    from firmware_app.audio.playback import AlsaSpeaker
    from firmware_app.system.notify import Notifier
    from firmware_app.system.test_clock import clock_from_env

    notifier = Notifier()
    notifier.status("loading models")
    engines = load_engines(settings)
    inbox = Inbox()
    audio = settings.audio
    # What the speaker plays is the echo canceller's reference for each microphone frame
    # (docs/echo.md: how it is aligned).
    reference = PlaybackReference(keep_s=REFERENCE_KEEP_S)
    tap = PlaybackTap(reference, engines.tts.sample_rate, wall_now)
    mic = Microphone(audio.input_device, inbox.post, inbox.has_room, audio.reopen_max_s)
    speaker = AlsaSpeaker(
        audio.output_device,
        engines.tts.sample_rate,
        inbox.post,
        tap=tap,
        duck_gain=duck_gain(settings.esphome.media_duck_db),
    )

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
        clock=clock_from_env(),
        inbox=inbox,
        speaker=speaker,
        events=settings.log.events,
        parts=parts,
        reference=reference,
    ) as assistant:

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal {}: stopping", signal.Signals(signum).name)
            assistant.post(Stop())

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        control = ControlServer(socket_path(), inbox.post, assistant.bus)
        wyoming = _wyoming(settings)
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
            if wyoming is not None:
                wyoming.close()
    return 0


def _wyoming(settings: Settings) -> Closable | None:
    """The Wyoming server (``[wyoming] enabled``), serving engines of its own; a port it
    cannot have is a warning, not a reason for the assistant not to start."""
    if not settings.wyoming.enabled:
        return None
    from firmware_app.core.errors import TTBT5Error
    from firmware_app.edges.wyoming.server import BackgroundWyoming, load_service

    try:
        server = BackgroundWyoming(load_service(settings), settings.wyoming)
        server.start()
    except (OSError, TTBT5Error) as exc:
        logger.warning("the Wyoming server is off: {}", exc)
        return None
    return server
