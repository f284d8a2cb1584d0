#!/usr/bin/env python3
"""Time from a ``say`` to its first sound, right after start-up, with the real Piper voice,
printed as JSON.

At start the voice warms its cache with the fixed phrases (fallbacks, "I didn't catch
that" ...). A ``say``/``ask`` given at that moment must not wait for them: live speech goes
first, so the wait is at most the one warm-up piece already being synthesized plus the first
piece of the live text. Each run starts a fresh ``SpeechOutput`` (the voice model stays
loaded, as in the running service), starts the warm-up, and at once says a reply; the figure
is from the ``say`` call to the first audio handed to the speaker. ``idle`` is the same
without any warm-up, for comparison. ``assistant_say`` goes through the whole assistant as
``ttbt5 say`` does (a fresh assistant per run, which starts its warm-up, then the command):
from the command's ``thinking`` state to ``speak_start`` in the event log. Goal: medians
≤ 300 ms.

Also ``real_time_factor``: synthesis time / audio time for a long text (below 1 means the
voice keeps ahead of the speaker).

    .venv/bin/python scripts/bench_first_sound.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from firmware_app.config.settings import Settings, TtsSettings  # noqa: E402
from firmware_app.core.events import read_events  # noqa: E402
from firmware_app.speak.output import SpeechOutput  # noqa: E402
from firmware_app.speak.piper import PiperSynthesizer  # noqa: E402
from firmware_app.understand.llm.responder import FALLBACKS  # noqa: E402

WARM_UP = [
    "I can't understand speech yet. Install a speech model with: ttbt5 models pull.",
    "Sorry, I didn't catch that.",
    "Sorry, I can't help with that yet.",
    "You have no timers.",
    *FALLBACKS,
]
"""The kind of fixed phrases the assistant warms at start (its own list may differ)."""
REPLY = "It's twenty past nine in the morning, and the kitchen timer has four minutes left."
LONG = (
    "The sky looks blue because air scatters blue light much more than red light. "
    "That blue light reaches your eyes from every part of the sky, so the whole sky glows "
    "blue on a clear day, while the sun itself looks a little yellow."
)


class FirstSound:
    sample_rate = 22050

    def __init__(self) -> None:
        self.first: float | None = None
        self.bytes = 0
        self.event = threading.Event()
        self.done = threading.Event()

    def play(self, utterance: int, pcm: bytes) -> None:
        self.bytes += len(pcm)
        if self.first is None:
            self.first = time.monotonic()
            self.event.set()

    def finish(self, utterance: int) -> None:
        self.done.set()

    def stop(self) -> None:
        pass


def first_sound(tts: PiperSynthesizer, warm: bool) -> float:
    speaker = FirstSound()
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    try:
        if warm:
            speech.prewarm(WARM_UP)
            time.sleep(0.02)  # the warm-up is under way when the command arrives
        start = time.monotonic()
        speech.say(1, REPLY)
        speech.finish(1)
        speaker.event.wait(30)
        assert speaker.first is not None
        return speaker.first - start
    finally:
        speaker.done.wait(30)
        speech.close()


def assistant_say(runs: int) -> list[float]:
    """Command accepted (``thinking``) → ``speak_start``, through ``ttbt5 say``'s path."""
    import tempfile

    from firmware_app.app.loading import load_engines
    from firmware_app.app.simulation import say

    waits = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        engines = load_engines(settings, microphone=False)
        for run in range(runs):
            events = Path(tmp) / f"events{run}.jsonl"
            say(settings, REPLY, Path(tmp) / "out.wav", events, engines=engines)
            log = read_events(events)
            asked = next(e["wall"] for e in log if e.get("state") == "thinking")
            heard = next(e["wall"] for e in log if e["type"] == "speak_start")
            waits.append(heard - asked)
    return waits


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "runs": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    logger.remove()
    tts = PiperSynthesizer(TtsSettings())
    for _ in tts.synthesize("Ready."):
        pass
    idle = [first_sound(tts, warm=False) for _ in range(args.runs)]
    after_start = [first_sound(tts, warm=True) for _ in range(args.runs)]
    through_assistant = assistant_say(args.runs)

    speaker = FirstSound()
    speaker.sample_rate = tts.sample_rate
    speech = SpeechOutput(tts, speaker, lambda _m: None)
    start = time.monotonic()
    speech.say(1, LONG)
    speech.finish(1)
    speaker.done.wait(120)
    took = time.monotonic() - start
    speech.close()
    audio_s = speaker.bytes / 2 / tts.sample_rate
    print(
        json.dumps(
            {
                "goal_ms": 300,
                "after_start": summary(after_start),
                "idle": summary(idle),
                "assistant_say": summary(through_assistant),
                "real_time_factor": round(took / audio_s, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
