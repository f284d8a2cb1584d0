"""The assistant without a live microphone: ``simulate`` (a WAV file as the microphone and
a timeline as the speaker, on a clock that is the position in the audio, so runs are
deterministic) and ``ask``/``say`` in this process (typed text, no microphone).

One settle loop serves them all: after each step, handle what the step caused and wait
for the work it started (synthesis, an LLM answer on its way) while the simulated clock
stands still, so the result does not depend on how fast the machine is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypedDict

from firmware_app.app.loading import Engines, load_engines
from firmware_app.app.wiring import Output, assembled
from firmware_app.audio.echo import REFERENCE_KEEP_S, EchoPath, PlaybackReference
from firmware_app.audio.sim import SimulatedSpeaker
from firmware_app.audio.wavio import WavReader, wav_writer, write_wav
from firmware_app.config.settings import Settings
from firmware_app.core.assistant import Assistant, State
from firmware_app.core.errors import BadInputError
from firmware_app.core.events import Event
from firmware_app.core.messages import FRAME_SAMPLES, FRAME_SECONDS, Command, Frame, Inbox, Stop
from firmware_app.core.parts import RealClock

SILENCE = b"\0" * (FRAME_SAMPLES * 2)
SPEECH_WAIT_S = 0.005
"""Longest a message posted during a synthesis waits to be handled while settling (the
simulated clock stands still meanwhile, so only real time is spent)."""
RESTING = (State.IDLE, State.MUTED, State.ERROR)


class Summary(TypedDict):
    replies: list[str]
    input_s: float
    """Length of the recording, seconds."""
    state: str
    """The state the run ended in."""


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


def mic_frame(pcm: bytes, t: float, speaker: SimulatedSpeaker, echo: EchoPath | None) -> Frame:
    """The microphone frame ending at ``t``. With ``echo``, what the speaker played comes
    back through the air on top of the recording, and the frame carries the playback as
    the echo canceller's reference, as on a device. Without it the recording is all the
    microphone hears, so there is nothing to cancel."""
    reference = speaker.reference
    if echo is None or reference is None:
        return Frame(pcm, t)
    pcm = echo.mix(pcm, reference, t)
    return Frame(pcm, t, reference.window(t, len(pcm) // 2).astype("<i2").tobytes())


def reply_collector() -> tuple[list[str], Callable[[Event], None]]:
    """A list that fills with the text of every ``reply`` event, and its observer."""
    replies: list[str] = []

    def collect(event: Event) -> None:
        if event.type == "reply":
            replies.append(str(event.fields.get("text", "")))

    return replies, collect


def settled(assistant: Assistant, speaker: Output, queue: bool = True) -> bool:
    """Every reply spoken and nothing left to do (``queue``: also nothing waiting)."""
    return assistant.state in RESTING and assistant.idle(queue) and not speaker.busy()


def settle(assistant: Assistant, limit_s: float = 120.0) -> None:
    """Handle everything queued and wait for the synthesis it started, with the simulated
    clock standing still. An answer streaming in (the LLM) is different: it arrives over
    real time, and what it says is spoken while it still streams; so while only that is
    awaited, settle returns after a frame's worth of real time, and the clock moves on at
    the pace the answer really took. While a synthesis runs, settle sleeps until it is done
    (or a message arrives, within ``SPEECH_WAIT_S``) rather than polling it."""
    started = time.monotonic()
    deadline = started + limit_s
    while True:
        assistant.drain()
        now = time.monotonic()
        if assistant.quiescent() or now > deadline:
            return
        streaming = assistant.awaiting_answer() and not assistant.speech.busy()
        if streaming and assistant.inbox.empty() and now - started >= FRAME_SECONDS:
            return
        if not assistant.inbox.empty():
            continue
        if assistant.speech.busy():
            assistant.speech.wait_done(SPEECH_WAIT_S)
        else:
            time.sleep(0.0005)


def step(assistant: Assistant, speaker: SimulatedSpeaker, clock: SimClock, t: float) -> None:
    """Move the simulated clock to ``t``: the speaker plays up to it, then everything that
    caused is handled before the clock moves again."""
    clock.set(t)
    speaker.advance(t)
    settle(assistant)


@contextmanager
def simulated(
    settings: Settings,
    engines: Engines,
    clock: SimClock | None = None,
    *,
    events: Path | None = None,
    observers: list[Callable[[Event], None]] | None = None,
    extras: bool = True,
    rings_timers: bool = True,
    warm_up: bool = False,
    reference: PlaybackReference | None = None,
    played: Callable[[bytes], None] | None = None,
) -> Iterator[tuple[Assistant, SimulatedSpeaker, SimClock]]:
    """The assistant with a timeline for a speaker, on a simulated clock. ``warm_up``: the
    reply cache is filled at start, as on a speaker (only worth it in real time: on the
    fast clock nothing waits for a synthesis, and the warm-up would take the CPU the
    conversation needs). ``reference``: what was played, for frames posted without one
    (as ``ttbt5 run`` hands it to the echo canceller). ``played``: where the speaker's
    audio goes as the clock passes it (SimulatedSpeaker); without it the speaker keeps it
    all."""
    clock = clock or SimClock()
    inbox = Inbox()
    speaker = SimulatedSpeaker(
        engines.tts.sample_rate,
        inbox.post,
        clock.t,
        reference=PlaybackReference(keep_s=None if played is None else REFERENCE_KEEP_S),
        played=played,
    )
    with assembled(
        settings,
        engines,
        clock=clock,
        inbox=inbox,
        speaker=speaker,
        events=events,
        observers=observers,
        extras=extras,
        rings_timers=rings_timers,
        warm_up=warm_up,
        reference=reference,
    ) as assistant:
        yield assistant, speaker, clock


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
    echo: EchoPath | None = None,
) -> Summary:
    """Run the assistant over a recording. Returns a summary (replies, duration).
    ``echo``: what the speaker plays reaches the microphone too (``--echo``). The recording
    is read and OUT.wav written as the clock moves, so a recording of any length costs
    the memory of a few seconds of audio."""
    recording = WavReader(input_wav)  # a bad file fails here, before the models load
    engines = engines or load_engines(settings, steady=not realtime)
    replies, collect = reply_collector()
    with ExitStack() as stack:
        played: Callable[[bytes], None] = _heard_by_nobody
        if output_wav is not None:
            played = stack.enter_context(wav_writer(output_wav, engines.tts.sample_rate))
        assistant, speaker, clock = stack.enter_context(
            simulated(
                settings,
                engines,
                SimClock(realtime, start_epoch),
                events=events,
                observers=[collect, *(observers or [])],
                warm_up=realtime,
                played=played,
            )
        )
        assistant.start()
        if realtime:
            _feed_realtime(assistant, speaker, clock, recording, max_tail_s, echo)
        else:
            _feed_fast(assistant, speaker, clock, recording, max_tail_s, echo)
        speaker.close()
        return {"replies": replies, "input_s": recording.seconds, "state": assistant.state.value}


def _heard_by_nobody(pcm: bytes) -> None:
    """What a simulation without OUT.wav does with what its speaker played."""


def _feed_fast(
    assistant: Assistant,
    speaker: SimulatedSpeaker,
    clock: SimClock,
    recording: WavReader,
    max_tail_s: float,
    echo: EchoPath | None = None,
) -> None:
    """As fast as the machine allows; after each frame, wait until all work it caused is
    done, so the result does not depend on how fast the machine is."""
    n = 0
    for pcm in recording.frames():
        n += 1
        assistant.post(mic_frame(pcm, n * FRAME_SECONDS, speaker, echo))
        step(assistant, speaker, clock, n * FRAME_SECONDS)
    tail_end = n + int(max_tail_s / FRAME_SECONDS)
    while not settled(assistant, speaker) and n < tail_end:
        n += 1
        assistant.post(mic_frame(SILENCE, n * FRAME_SECONDS, speaker, echo))
        step(assistant, speaker, clock, n * FRAME_SECONDS)


def _feed_realtime(
    assistant: Assistant,
    speaker: SimulatedSpeaker,
    clock: SimClock,
    recording: WavReader,
    max_tail_s: float,
    echo: EchoPath | None = None,
) -> None:
    """Paced like a live microphone, with the assistant on its own loop as under ``run``,
    so timers, the button and MQTT commands act during the run."""
    done = threading.Event()

    def feed() -> None:
        start = time.monotonic()
        n = 0
        heard = recording.frames()
        length: int | None = None  # frames in the recording, once read to its end
        tail = int(max_tail_s / FRAME_SECONDS)
        try:
            while not done.is_set():
                pcm = next(heard, None) if length is None else None
                if pcm is None:
                    length = n if length is None else length
                    if n >= length + tail or settled(assistant, speaker, queue=False):
                        break
                    pcm = SILENCE
                n += 1
                delay = start + n * FRAME_SECONDS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                speaker.advance(clock.t())
                assistant.post(mic_frame(pcm, clock.t(), speaker, echo))
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
    command = Command("ask", {"text": text}, source="cli")
    return _without_microphone(settings, command, output_wav, events, speak, engines)


def say(
    settings: Settings,
    text: str,
    output_wav: Path | None = None,
    events: Path | None = None,
    engines: Engines | None = None,
) -> None:
    command = Command("say", {"text": text}, source="cli")
    _without_microphone(settings, command, output_wav, events, True, engines)


def _without_microphone(
    settings: Settings,
    command: Command,
    output_wav: Path | None,
    events: Path | None,
    speak: bool,
    engines: Engines | None,
) -> list[str]:
    """Typed text or ``say`` in this process. Timers are left to the service: none rings
    here and no missed one is announced, though a typed command still sets, checks and
    cancels them."""
    engines = engines or load_engines(settings, microphone=False)
    replies, collect = reply_collector()
    failures: list[str] = []

    def on_reply(ok: bool, error: str | None) -> None:
        if not ok:
            failures.append(error or "failed")

    command = Command(command.name, command.args, on_reply, source=command.source)
    if speak and output_wav is None:
        from firmware_app.audio.playback import AlsaSpeaker

        inbox = Inbox()
        real = AlsaSpeaker(settings.audio.output_device, engines.tts.sample_rate, inbox.post)
        with assembled(
            settings, engines, clock=RealClock(), inbox=inbox, speaker=real, events=events,
            observers=[collect], extras=False, rings_timers=False, warm_up=False,
        ) as assistant:  # fmt: skip
            assistant.start()
            assistant.post(command)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                settle(assistant, limit_s=0.01)
                if settled(assistant, real):
                    break
                time.sleep(0.01)
    else:
        sim = simulated(
            settings, engines, events=events, observers=[collect], extras=False,
            rings_timers=False,
        )  # fmt: skip
        with sim as (assistant, speaker, clock):
            assistant.start()
            assistant.post(command)
            settle(assistant)
            n = 0
            while not settled(assistant, speaker) and n < 300 / FRAME_SECONDS:
                n += 1
                step(assistant, speaker, clock, n * FRAME_SECONDS)
            if output_wav is not None:
                write_wav(output_wav, speaker.samples(), speaker.sample_rate)
    if failures:
        raise BadInputError(failures[0])
    return replies
