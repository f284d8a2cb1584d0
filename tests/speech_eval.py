"""Scoring the speech corpus through the whole assistant.

Each request of ``speech_corpus`` is run through ``simulate`` with the real wake word
engine, Silero, the speech-to-phrase recognizer and Piper, and judged from the event log:

- woken: a ``wake`` event;
- a command is *right* when its intent and slots are the ones meant, *wrong* when another
  action was taken (a different intent, or the right one with other slots), *rejected*
  when no intent came out;
- an open question or chatter *taken as a command* when any intent came out;
- *cut off* when the turn ended (``speech_end``) before the request's true end of speech;
- end of speech → first audio: how long after the true end of speech the reply starts,
  on the assistant clock (the hangover) plus the wall time from ``speech_end`` to
  ``speak_start`` (recognizer, intent, Piper's first audio; the simulated clock stands
  still while they work).

"Stop" and its near misses, said alone, go through the product's stop spotter as while
the device speaks.
"""

from __future__ import annotations

import statistics
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audio_helpers import write
from speech_corpus import Item

from firmware_app.app import simulation
from firmware_app.app.loading import Engines
from firmware_app.config.settings import Settings
from firmware_app.core.events import read_events
from firmware_app.core.messages import FRAME_SAMPLES
from firmware_app.system.store import Store
from firmware_app.understand.timers import Timers


@dataclass
class Outcome:
    item: Item
    woken: bool = False
    intent: str | None = None
    slots: dict[str, Any] | None = None
    transcript: str = ""
    cut_off: bool = False
    first_audio_ms: float | None = None
    hangover_ms: float | None = None  # of it, the silence waited (assistant clock)
    work_ms: float | None = None  # and the work: speech_end -> speak_start (wall)
    synthesis_ms: float | None = None  # of that, reply -> speak_start: the first audio
    reply: str = ""
    wake_to_listening_ms: float | None = None
    stops: int = 0

    def describe(self) -> str:
        """One line: who said what, how, and what came of it."""
        item = self.item
        said = f"{item.voice.tag} {item.cond} {item.form}: {item.text!r}"
        action = f" -> {self.intent} {self.slots}" if self.intent else ""
        return f"{said} heard {self.transcript!r}{action}"

    @property
    def verdict(self) -> str:
        """For a command: right | wrong | rejected | not_woken."""
        if not self.woken:
            return "not_woken"
        if self.intent is None:
            return "rejected"
        item = self.item
        if self.intent != item.intent:
            return "wrong"
        if item.slots is not None and {k: self.slots.get(k) for k in item.slots} != item.slots:
            return "wrong"
        return "right"


EPOCH = 1.8e9  # the simulated wall clock's start


def timers_running(item: Item, settings: Settings) -> None:
    """The household as the request finds it: a question about the pasta timer is asked
    while a pasta timer runs (the store holds it when ``simulate`` starts), every other
    request when no timer runs."""
    name = (item.slots or {}).get("name")
    if item.kind != "command" or item.intent == "timer_set" or not isinstance(name, str):
        return
    store = Store(settings.store_path)
    try:
        Timers(store, simulation.SimClock(epoch=EPOCH)).add(600, name)
    finally:
        store.close()


def run_request(engines: Engines, item: Item, tmp: Path, settings: Settings) -> Outcome:
    """One request through ``simulate``."""
    wav = write(tmp / "in.wav", item.audio)
    timers_running(item, settings)
    events_path = tmp / "events.jsonl"
    engines.wake.reset()
    simulation.simulate(settings, wav, None, events_path, engines=engines, start_epoch=EPOCH)
    events = read_events(events_path)
    out = Outcome(item)
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by[event["type"]].append(event)
    out.woken = bool(by["wake"])
    if by["wake"] and by["listening"]:
        out.wake_to_listening_ms = 1000 * (by["listening"][0]["wall"] - by["wake"][0]["wall"])
    if by["intent"]:
        out.intent = by["intent"][0]["name"]
        out.slots = dict(by["intent"][0].get("slots") or {})
    if by["transcript"]:
        out.transcript = by["transcript"][0]["text"]
    if not out.transcript:  # not a command: what the recognizer took it for
        out.transcript = str(getattr(engines.stt, "last_text", ""))
    if by["speech_end"]:
        end = by["speech_end"][0]
        out.cut_off = end["t"] < item.speech_end - 0.02
        reply = by["reply"][0] if by["reply"] else None
        starts = [s for s in by["speak_start"] if reply is not None and s["wall"] >= reply["wall"]]
        if reply is not None and reply.get("source") == "local" and starts:
            hangover = end["t"] - item.speech_end
            out.first_audio_ms = 1000 * (hangover + starts[0]["wall"] - end["wall"])
            out.hangover_ms = 1000 * hangover
            out.work_ms = 1000 * (starts[0]["wall"] - end["wall"])
            out.synthesis_ms = 1000 * (starts[0]["wall"] - reply["wall"])
            out.reply = str(reply.get("text", ""))
    return out


def run_stop(spotter: Any, item: Item) -> Outcome:
    """A word said alone, through the stop spotter as while the device speaks."""
    spotter.reset()
    out = Outcome(item)
    audio = item.audio
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        out.stops += bool(spotter.spot(audio[start : start + FRAME_SAMPLES].tobytes()))
    return out


def run_all(
    engines: Engines, spotter: Any, items: Iterable[Item], settings: Settings | None = None
) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        base = settings or Settings()
        for i, item in enumerate(items):
            if item.kind in ("stop", "near_stop"):
                outcomes.append(run_stop(spotter, item))
                continue
            run_dir = Path(tmp) / f"r{i}"
            run_dir.mkdir()
            settings_i = base.model_copy(update={"data_dir": run_dir / "data"})
            outcomes.append(run_request(engines, item, run_dir, settings_i))
    return outcomes


@dataclass
class Tally:
    commands: int = 0
    woken: int = 0
    right: int = 0
    wrong: int = 0
    rejected: int = 0
    negatives: int = 0
    negatives_woken: int = 0
    taken_as_command: int = 0
    stop_said: int = 0
    stop_heard: int = 0
    near_stop: int = 0
    false_stops: int = 0
    cut_off: int = 0
    first_audio_ms: list[float] = field(default_factory=list)
    hangover_ms: list[float] = field(default_factory=list)
    work_ms: list[float] = field(default_factory=list)
    synthesis_ms: list[float] = field(default_factory=list)
    wake_to_listening_ms: list[float] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """What went wrong, item by item: wrong, rejected, taken (an open question or
    chatter taken as a command), cut_off; what each bench run is read for."""

    def add(self, o: Outcome) -> None:
        kind = o.item.kind
        if kind == "command":
            self.commands += 1
            self.woken += o.woken
            verdict = o.verdict
            if verdict in ("right", "wrong", "rejected"):
                setattr(self, verdict, getattr(self, verdict) + 1)
            if verdict in ("wrong", "rejected"):
                self.examples[verdict].append(o.describe())
            if o.cut_off:
                self.cut_off += 1
                self.examples["cut_off"].append(o.describe())
            if o.first_audio_ms is not None and verdict == "right":
                self.first_audio_ms.append(o.first_audio_ms)
                self.hangover_ms.append(o.hangover_ms or 0.0)
                self.work_ms.append(o.work_ms or 0.0)
                self.synthesis_ms.append(o.synthesis_ms or 0.0)
        elif kind in ("open", "chatter"):
            self.negatives += 1
            self.negatives_woken += o.woken
            if o.intent is not None:
                self.taken_as_command += 1
                self.examples["taken"].append(o.describe())
        elif kind == "stop":
            self.stop_said += 1
            self.stop_heard += o.stops > 0
        elif kind == "near_stop":
            self.near_stop += 1
            self.false_stops += o.stops
        if o.wake_to_listening_ms is not None:
            self.wake_to_listening_ms.append(o.wake_to_listening_ms)

    def figures(self) -> dict[str, Any]:
        def pct(a: int, b: int) -> float | None:
            return round(100 * a / b, 1) if b else None

        def median(xs: list[float]) -> float | None:
            return round(statistics.median(xs), 1) if xs else None

        return {
            "commands": self.commands,
            "wake_recall_pct": pct(self.woken, self.commands),
            "right": self.right,
            "wrong_action": self.wrong,
            "rejected": self.rejected,
            "right_pct_of_woken": pct(self.right, self.woken),
            "right_pct_of_all": pct(self.right, self.commands),
            "wrong_pct_of_woken": pct(self.wrong, self.woken),
            "open_or_chatter": self.negatives,
            "open_taken_as_command": self.taken_as_command,
            "open_taken_pct_of_woken": pct(self.taken_as_command, self.negatives_woken),
            "stop_heard": f"{self.stop_heard}/{self.stop_said}",
            "false_stops": f"{self.false_stops} in {self.near_stop}",
            "cut_off": self.cut_off,
            "end_of_speech_to_first_audio_ms_median": median(self.first_audio_ms),
            "of_which_silence_waited_ms_median": median(self.hangover_ms),
            "of_which_work_ms_median": median(self.work_ms),
            "of_that_reply_to_first_audio_ms_median": median(self.synthesis_ms),
            "wake_to_listening_ms_median": median(self.wake_to_listening_ms),
        }


def tally(outcomes: Iterable[Outcome], key: str = "family") -> dict[str, Tally]:
    """Tallies by ``key`` (family, cond, form) and ``all``."""
    found: dict[str, Tally] = defaultdict(Tally)
    for o in outcomes:
        found[str(getattr(o.item, key))].add(o)
        found["all"].add(o)
    return dict(found)
