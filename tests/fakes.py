"""Fakes for state-machine tests: they record what they were sent, and tests assert on
those records. Audio is marked by amplitude so a test can say which frame is what."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from firmware_app.app.assistant_parts import build_assistant
from firmware_app.audio.sim import SimulatedSpeaker
from firmware_app.config.settings import Settings
from firmware_app.core.engines import Detection
from firmware_app.core.events import Event, EventBus
from firmware_app.core.messages import FRAME_SAMPLES, FRAME_SECONDS, Frame, Inbox
from firmware_app.core.parts import Parts
from firmware_app.listen.hearing import Hearing
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.reply_cache import ReplyCache
from firmware_app.system.store import Store

WAKE = 20000  # a frame at this level is "the wake word"
SPEECH = 8000  # a frame at this level is speech
SILENT = 0


def frame_of(level: int) -> bytes:
    return np.full(FRAME_SAMPLES, level, dtype=np.int16).tobytes()


class FakeWake:
    def __init__(self) -> None:
        self.frames = 0
        self.resets = 0

    def detect(self, pcm: bytes) -> Detection | None:
        self.frames += 1
        return Detection("hey_jarvis", 0.9) if pcm[:2] == frame_of(WAKE)[:2] else None

    def reset(self) -> None:
        self.resets += 1


class FakeVad:
    def speech_probability(self, pcm: bytes) -> float:
        return 1.0 if abs(int(np.frombuffer(pcm[:2], dtype=np.int16)[0])) >= SPEECH else 0.0

    def reset(self) -> None:
        pass


class ScriptedStt:
    """Returns the next scripted transcript for each utterance; records frames fed."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.fed: list[int] = []
        """Frames fed to each finished utterance, one entry per ``finish``."""
        self.starts = 0
        self._n = 0

    def start(self) -> None:
        self.starts += 1
        self._n = 0

    def feed(self, pcm: bytes) -> None:
        self._n += 1

    def finish(self) -> str:
        self.fed.append(self._n)
        self._n = 0
        return self.texts.pop(0) if self.texts else ""


class FakeTts:
    """0.4 s of a constant level per word, one chunk per sentence."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.said: list[str] = []

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.said.append(text)
        for sentence in [s for s in text.replace("?", ".").split(".") if s.strip()]:
            words = len(sentence.split())
            yield (np.full(6400 * words, 3000, dtype=np.int16)).tobytes()


class ManualClock:
    def __init__(self, epoch: float = 1_800_000_000.0) -> None:
        self.now = 0.0
        self.base = epoch

    def t(self) -> float:
        return self.now

    def epoch(self) -> float:
        return self.base + self.now


SCRIPTED = ScriptedStt()
"""Rig's default transcriber: a fresh ScriptedStt that hears nothing (pass ``stt=None``
for an assistant without a speech model)."""


class Rig:
    """An Assistant on fakes, stepped frame by frame on a manual clock."""

    def __init__(
        self,
        settings: Settings,
        stt: Any = SCRIPTED,
        responder: Any = None,
        clock: ManualClock | None = None,
        store_path: Path | None = None,
        parts: Parts | None = None,
        echo: Any = None,
        stop: Any = None,
        speaker: Any = None,
    ) -> None:
        """``speaker``: a real one (at 16 kHz) instead of the simulated timeline."""
        self.settings = settings
        self.clock = clock or ManualClock()
        self.inbox = Inbox()
        self.events: list[Event] = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        self.store = Store(store_path or settings.store_path)
        self.tts = FakeTts()
        self.speaker = speaker or SimulatedSpeaker(16000, self.inbox.post, self.clock.t)
        self.speech = SpeechOutput(self.tts, self.speaker, self.inbox.post, ReplyCache(16))
        self.wake = FakeWake()
        self.stt = ScriptedStt() if stt is SCRIPTED else stt
        self.hearing = Hearing.from_settings(
            settings, self.wake, FakeVad(), self.stt, echo=echo, stop=stop
        )
        self.assistant = build_assistant(
            settings,
            hearing=self.hearing,
            speech=self.speech,
            store=self.store,
            inbox=self.inbox,
            clock=self.clock,
            bus=bus,
            responder=responder,
            parts=parts,
        )
        self.assistant.start()
        self.settle()

    def settle(self) -> None:
        """Handle everything the last step caused (the test plays the LLM's part itself)."""
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.assistant.drain()
            if self.inbox.empty() and not self.speech.busy():
                return
            time.sleep(0.0005)

    def feed(self, level: int, seconds: float = FRAME_SECONDS) -> None:
        for _ in range(max(1, round(seconds / FRAME_SECONDS))):
            self.clock.now = round(self.clock.now + FRAME_SECONDS, 6)
            if isinstance(self.speaker, SimulatedSpeaker):  # a real one keeps its own time
                self.speaker.advance(self.clock.now)
            self.inbox.post(Frame(frame_of(level), self.clock.now))
            self.settle()

    def until_idle(self, limit_s: float = 60) -> None:
        end = self.clock.now + limit_s
        while self.clock.now < end:
            self.feed(SILENT)
            if self.assistant.state.value in ("idle", "muted") and not self.speaker.busy():
                return
        raise AssertionError(f"still {self.assistant.state} after {limit_s} s")

    def post(self, msg: Any) -> None:
        self.inbox.post(msg)
        self.settle()

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]

    def states(self) -> list[str]:
        return [e.fields["state"] for e in self.of("state")]

    def close(self) -> None:
        self.speech.close()
        self.store.close()
