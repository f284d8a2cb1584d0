"""Wiring: the one place that builds real objects from settings and runs them.

``run`` is the appliance (ALSA, GPIO, MQTT, systemd). ``simulate`` is the same assistant
with a WAV file as the microphone and a timeline as the speaker, on a clock that is the
position in the audio, so runs are deterministic. ``ask`` and ``say`` skip the microphone.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from firmware_app.assistant import Assistant, RealClock, State
from firmware_app.audio.sim import SimulatedSpeaker
from firmware_app.audio.wavio import read_wav, write_wav
from firmware_app.config import Settings
from firmware_app.engines import Detection, SpeechDetector, Synthesizer, Transcriber, WakeDetector
from firmware_app.events import Event, EventBus, JsonlWriter
from firmware_app.messages import FRAME_SAMPLES, FRAME_SECONDS, Command, Frame, Inbox, Stop
from firmware_app.speech import SpeechOutput
from firmware_app.store import Store


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
    from firmware_app.engines.tts import PiperSynthesizer

    tts = PiperSynthesizer(settings.tts, steady=steady)
    for _ in tts.synthesize("Ready."):  # first inference is slow: pay it before anyone waits
        pass
    return tts


def load_stt(settings: Settings) -> tuple[Transcriber | None, str | None]:
    from firmware_app.engines.stt import load_transcriber

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
    from firmware_app.engines.vad import SileroVad
    from firmware_app.engines.wake import OpenWakeWord

    started = time.monotonic()
    wake: WakeDetector = OpenWakeWord(settings.wake) if microphone else NoWake()
    vad: SpeechDetector = SileroVad() if microphone else NoVad()
    problem = None
    if stt is None and microphone:
        stt, problem = load_stt(settings)
    tts = load_tts(settings, steady)
    logger.info("models loaded in {:.1f} s", time.monotonic() - started)
    return Engines(wake, vad, stt, problem, tts)


class SimClock:
    """The assistant clock under ``simulate``: the position in the input audio."""

    def __init__(self, realtime: bool = False, epoch: float | None = None) -> None:
        self.base = time.time() if epoch is None else epoch
        self._t = 0.0
        self._realtime = realtime
        self._start = time.monotonic()

    def set(self, t: float) -> None:
        self._t = t

    def t(self) -> float:
        if self._realtime:
            return time.monotonic() - self._start
        return self._t

    def epoch(self) -> float:
        return self.base + self.t()


def _optional_parts(settings: Settings, assistant: Assistant, stack: ExitStack) -> None:
    """MQTT, GPIO, the LLM's health hook and updates, when installed and configured."""
    from firmware_app.gpio import start_gpio
    from firmware_app.mqtt import start_mqtt

    mqtt = start_mqtt(settings, assistant)
    if mqtt is not None:
        stack.callback(mqtt.close)
        assistant.home_publish = mqtt.publish
    gpio = start_gpio(settings, assistant)
    if gpio is not None:
        stack.callback(gpio.close)
    try:
        from firmware_app.ota import make_updater
    except ImportError:
        return
    assistant.updater = make_updater(settings, assistant.post)


def _responder(settings: Settings, store: Store) -> Any:
    if settings.llm.url is None:
        return None
    from firmware_app.llm import build_responder

    return build_responder(settings, store)


@contextmanager
def assembled(
    settings: Settings,
    engines: Engines,
    *,
    clock: Any,
    speaker_factory: Callable[[Inbox], Any],
    events: Path | None = None,
    observers: list[Callable[[Event], None]] | None = None,
    extras: bool = True,
) -> Iterator[tuple[Assistant, Any]]:
    """Build the assistant with its speaker, store and observers; tear it all down after."""
    with ExitStack() as stack:
        inbox = Inbox()
        bus = EventBus()
        if events is not None:
            writer = JsonlWriter(events)
            stack.callback(writer.close)
            bus.subscribe(writer)
        for observer in observers or []:
            bus.subscribe(observer)
        store = Store(settings.store_path)
        stack.callback(store.close)
        speaker = speaker_factory(inbox)
        if hasattr(speaker, "close"):
            stack.callback(speaker.close)
        speech = SpeechOutput(engines.tts, speaker, inbox.post, settings.tts.cache_entries)
        stack.callback(speech.close)
        responder = _responder(settings, store)
        if responder is not None and hasattr(responder, "close"):
            stack.callback(responder.close)
        assistant = Assistant(
            settings,
            wake=engines.wake,
            vad=engines.vad,
            stt=engines.stt,
            speech=speech,
            store=store,
            inbox=inbox,
            clock=clock,
            bus=bus,
            responder=responder,
            stt_problem=engines.stt_problem,
        )
        if store.recovered_from is not None:
            bus.publish(
                Event(
                    "error",
                    0.0,
                    0.0,
                    {
                        "where": "store",
                        "message": f"corrupt store moved to {store.recovered_from.name}",
                    },
                )
            )
        if extras:
            _optional_parts(settings, assistant, stack)
        yield assistant, speaker


def _frames(samples: np.ndarray) -> Iterator[bytes]:
    pad = (-len(samples)) % FRAME_SAMPLES
    if pad:
        samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    data = samples.astype("<i2").tobytes()
    step = FRAME_SAMPLES * 2
    for start in range(0, len(data), step):
        yield data[start : start + step]


SILENCE = b"\0" * (FRAME_SAMPLES * 2)


def _reply_collector() -> tuple[list[str], Callable[[Event], None]]:
    """A list that fills with the text of every ``reply`` event, and its observer."""
    replies: list[str] = []

    def collect(event: Event) -> None:
        if event.type == "reply":
            replies.append(str(event.fields.get("text", "")))

    return replies, collect


def simulate(
    settings: Settings,
    input_wav: Path,
    output_wav: Path | None = None,
    events: Path | None = None,
    realtime: bool = False,
    engines: Engines | None = None,
    max_tail_s: float = 120.0,
    observers: list[Callable[[Event], None]] | None = None,
    start_epoch: float | None = None,
) -> dict[str, Any]:
    """Run the assistant over a recording. Returns a summary (replies, duration)."""
    samples = read_wav(input_wav)
    engines = engines or load_engines(settings, steady=not realtime)
    clock = SimClock(realtime, start_epoch)
    replies, collect = _reply_collector()

    with assembled(
        settings,
        engines,
        clock=clock,
        events=events,
        observers=[collect, *(observers or [])],
        speaker_factory=lambda inbox: SimulatedSpeaker(
            engines.tts.sample_rate, inbox.post, clock.t
        ),
        extras=True,
    ) as (assistant, speaker):
        assistant.start()
        if realtime:
            _feed_realtime(assistant, speaker, clock, samples, max_tail_s)
        else:
            _feed_fast(assistant, speaker, clock, samples, max_tail_s)
        if output_wav is not None:
            write_wav(output_wav, speaker.samples(), speaker.sample_rate)
        return {"replies": replies, "input_s": len(samples) / 16000, "state": assistant.state.value}


def _settled(assistant: Assistant, speaker: SimulatedSpeaker, queue: bool = True) -> bool:
    """Every reply spoken and nothing left to do (``queue``: also nothing waiting)."""
    resting = assistant.state in (State.IDLE, State.MUTED, State.ERROR)
    return resting and assistant.idle(queue) and not speaker.busy()


def _feed_fast(
    assistant: Assistant,
    speaker: SimulatedSpeaker,
    clock: SimClock,
    samples: np.ndarray,
    max_tail_s: float,
) -> None:
    """As fast as the machine allows; after each frame, wait until all work it caused is
    done, so the result does not depend on how fast the machine is."""
    n = 0

    def step(pcm: bytes) -> None:
        nonlocal n
        n += 1
        t = n * FRAME_SECONDS
        clock.set(t)
        speaker.advance(t)
        assistant.post(Frame(pcm, t))
        _settle(assistant)

    for pcm in _frames(samples):
        step(pcm)
    tail_end = n + int(max_tail_s / FRAME_SECONDS)
    while not _settled(assistant, speaker) and n < tail_end:
        step(SILENCE)


def _settle(assistant: Assistant, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        assistant.drain()
        if assistant.quiescent() or time.monotonic() > deadline:
            return
        time.sleep(0.0005)


def _feed_realtime(
    assistant: Assistant,
    speaker: SimulatedSpeaker,
    clock: SimClock,
    samples: np.ndarray,
    max_tail_s: float,
) -> None:
    """Paced like a live microphone, with the assistant on its own loop as under ``run``,
    so timers, the button and MQTT commands act during the run."""
    done = threading.Event()

    def feed() -> None:
        start = time.monotonic()
        n = 0
        frames = list(_frames(samples))
        tail = int(max_tail_s / FRAME_SECONDS)
        try:
            while not done.is_set():
                if n < len(frames):
                    pcm = frames[n]
                elif n >= len(frames) + tail or _settled(assistant, speaker, queue=False):
                    break
                else:
                    pcm = SILENCE
                n += 1
                delay = start + n * FRAME_SECONDS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                speaker.advance(clock.t())
                assistant.post(Frame(pcm, clock.t()))
        finally:
            assistant.post(Stop())  # whatever happens, the run ends

    feeder = threading.Thread(target=feed, name="wav-mic", daemon=True)
    feeder.start()
    try:
        assistant.run()
    finally:
        done.set()
        feeder.join(timeout=2)


def ask(
    settings: Settings,
    text: str,
    output_wav: Path | None = None,
    events: Path | None = None,
    speak: bool = True,
    engines: Engines | None = None,
) -> list[str]:
    """Handle typed text as if it had been heard; return what was replied."""
    return _without_microphone(
        settings, Command("ask", {"text": text}), output_wav, events, speak, engines
    )


def say(
    settings: Settings,
    text: str,
    output_wav: Path | None = None,
    events: Path | None = None,
    engines: Engines | None = None,
) -> None:
    _without_microphone(settings, Command("say", {"text": text}), output_wav, events, True, engines)


def _without_microphone(
    settings: Settings,
    command: Command,
    output_wav: Path | None,
    events: Path | None,
    speak: bool,
    engines: Engines | None,
) -> list[str]:
    engines = engines or load_engines(settings, microphone=False)
    replies, collect = _reply_collector()
    failures: list[str] = []

    def on_reply(ok: bool, error: str | None) -> None:
        if not ok:
            failures.append(error or "failed")

    command = Command(command.name, command.args, on_reply, source="cli")
    live = speak and output_wav is None
    if live:
        from firmware_app.audio.alsa import AlsaSpeaker

        clock: Any = RealClock()

        def factory(inbox: Inbox) -> Any:
            return AlsaSpeaker(settings.audio.output_device, engines.tts.sample_rate, inbox.post)
    else:
        clock = SimClock()

        def factory(inbox: Inbox) -> Any:
            return SimulatedSpeaker(engines.tts.sample_rate, inbox.post, clock.t)

    with assembled(
        settings,
        engines,
        clock=clock,
        events=events,
        observers=[collect],
        speaker_factory=factory,
        extras=False,
    ) as (assistant, speaker):
        assistant.start()
        assistant.post(command)
        if live:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                assistant.drain()
                if (
                    assistant.state in (State.IDLE, State.MUTED, State.ERROR)
                    and assistant.quiescent()
                    and not speaker.busy()
                ):
                    break
                time.sleep(0.01)
        else:
            n = 0
            _settle(assistant)
            while not _settled(assistant, speaker) and n < 300 / FRAME_SECONDS:
                n += 1
                clock.set(n * FRAME_SECONDS)
                speaker.advance(clock.t())
                _settle(assistant)
            if output_wav is not None:
                write_wav(output_wav, speaker.samples(), speaker.sample_rate)
    if failures:
        from firmware_app.errors import BadInputError

        raise BadInputError(failures[0])
    return replies


def run(settings: Settings) -> int:
    """The appliance: microphone, speaker, GPIO, MQTT, systemd notifications."""
    from firmware_app.audio.alsa import AlsaSpeaker, Microphone
    from firmware_app.notify import Notifier

    notifier = Notifier()
    notifier.status("loading models")
    engines = load_engines(settings)
    clock = RealClock()
    with assembled(
        settings,
        engines,
        clock=clock,
        events=settings.log.events,
        speaker_factory=lambda inbox: AlsaSpeaker(
            settings.audio.output_device, engines.tts.sample_rate, inbox.post
        ),
    ) as (assistant, speaker):
        mic = Microphone(
            settings.audio.input_device,
            assistant.post,
            assistant.inbox.has_room,
            settings.audio.reopen_max_s,
        )
        assistant.audio_status = lambda: {"input": mic.stats(), "output": speaker.stats()}
        assistant.heartbeat = lambda audio: notifier.frame() if audio else notifier.alive()

        def on_signal(signum: int, _frame: Any) -> None:
            logger.info("signal {}: stopping", signal.Signals(signum).name)
            assistant.post(Stop())

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        assistant.start()
        mic.start()
        notifier.ready()
        notifier.status("listening")
        logger.info("ready: say {}", " or ".join(settings.wake.models))
        try:
            assistant.run()
        finally:
            notifier.stopping()
            mic.close()
    return 0
