"""Timers in the store when no service runs them: ``simulate`` announces every missed
timer and never stalls on them, and a one-off ``ask`` leaves the store's timers to the
service (its fast simulated clock neither rings one early nor takes a missed one away),
while a typed command still sets them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from audio_helpers import write
from fakes import FakeTts, FakeVad, FakeWake, ScriptedStt

from firmware_app.app import simulation
from firmware_app.app.loading import Engines
from firmware_app.config.settings import Settings
from firmware_app.core.events import read_events
from firmware_app.system.store import Store
from firmware_app.understand.actions import HELP
from firmware_app.understand.timers import Timer, Timers

T = TypeVar("T")
EPOCH = 1.8e9


class SlowTts(FakeTts):
    """Two seconds of sound per word: a reply long enough for the clock to pass a timer."""

    def synthesize(self, text: str) -> Iterator[bytes]:
        self.said.append(text)
        yield np.full(32000 * len(text.split()), 3000, dtype=np.int16).tobytes()


def engines(tts: FakeTts | None = None) -> Engines:
    return Engines(FakeWake(), FakeVad(), ScriptedStt(), None, tts or FakeTts())


def timers_in(settings: Settings) -> list[Timer]:
    store = Store(settings.store_path)
    try:
        return Timers(store).active()
    finally:
        store.close()


def add_timers(settings: Settings, *due: tuple[str, float]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.store_path)
    timers = Timers(store)
    for name, at in due:
        timers.add(60, name, at - 60)
    store.close()


def within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn``'s result, failing the test if it has not returned after ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


def test_simulate_announces_every_missed_timer_without_stalling(settings, tmp_path: Path):
    add_timers(settings, ("pasta", EPOCH - 3600), ("egg", EPOCH - 1800), ("tea", EPOCH - 900))
    wav = write(tmp_path / "in.wav", np.zeros(16000, dtype=np.int16))
    events = tmp_path / "events.jsonl"
    within(
        60,
        lambda: simulation.simulate(
            settings, wav, events=events, engines=engines(), start_epoch=EPOCH, max_tail_s=60
        ),
    )
    got = read_events(events)
    missed = [e["name"] for e in got if e["type"] == "timer" and e["action"] == "missed"]
    assert missed == ["pasta", "egg", "tea"]
    spoken = [e for e in got if e["type"] == "speak_end" and e["origin"] == "announcement"]
    assert len(spoken) == 3 and not any(e["cut"] for e in spoken)
    assert timers_in(settings) == []


@pytest.mark.parametrize(
    "due_in", [(-3600, -1800), (30,), (-3600, -1800, 30)], ids=["missed", "soon", "both"]
)
def test_ask_leaves_the_stores_timers_to_the_service(settings, tmp_path: Path, due_in):
    now = time.time()
    add_timers(settings, *((f"timer {i}", now + s) for i, s in enumerate(due_in)))
    before = timers_in(settings)
    events = tmp_path / "events.jsonl"
    replies = within(
        60,
        lambda: simulation.ask(
            settings,
            "what can you do",
            output_wav=tmp_path / "out.wav",
            events=events,
            engines=engines(SlowTts()),
        ),
    )
    assert replies == [HELP]
    got = read_events(events)
    speak_end = next(e for e in got if e["type"] == "speak_end")
    assert speak_end["t"] > 40  # the simulated clock ran past the tea timer's time
    assert [e for e in got if e["type"] == "timer"] == []  # nothing rang, nothing missed
    assert timers_in(settings) == before


def test_a_typed_timer_is_still_set(settings, tmp_path: Path):
    replies = simulation.ask(
        settings, "set a pasta timer for ten minutes", output_wav=tmp_path / "o.wav",
        engines=engines(),
    )  # fmt: skip
    assert replies == ["Pasta timer set for 10 minutes."]
    assert [(t.name, t.seconds) for t in timers_in(settings)] == [("pasta", 600.0)]
