#!/usr/bin/env python3
"""Memory of one long utterance, with the real Piper voice, printed as JSON.

The voice (``SpeechOutput`` + ``PiperSynthesizer``, the product's default voice, the same the
tests use) is started and warmed up as at start-up; then a 2,000-character text with no
punctuation (the largest ``cmd/say``) is spoken ``--runs`` times. For each run: the process
RSS before, the peak while it is spoken (sampled every 2 ms on a separate thread; the
speaker holds its audio until played, at ``--speed`` times real time, and speech keeps at
most ``MAX_AHEAD_S`` ahead of it, as with a sound card), and
the RSS once speech is idle again; also the process's peak RSS since it started (the kernel's
high-water mark, what an OOM report shows) before and after. Goal: ``added_peak_mb`` (the
peak over the RSS just before, the stricter figure) ≤ 50 and ``after_mb`` back at
``before_mb`` (within a few MB) on every run.

    .venv/bin/python scripts/bench_memory.py [--runs 3] [--chars 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from firmware_app.config.settings import TtsSettings  # noqa: E402
from firmware_app.speak.output import IDLE_TRIM_S, MAX_AHEAD_S, SpeechOutput  # noqa: E402
from firmware_app.speak.piper import MAX_PIECE_CHARS, PiperSynthesizer  # noqa: E402
from firmware_app.understand.llm.responder import FALLBACKS  # noqa: E402

MB = 2**20


class PlayingSpeaker:
    """Holds the audio it was given until it has been played, as a sound card's queue
    does, playing ``speed`` times faster than real time (on ``clock``) so a run of six
    minutes of speech takes less; speech keeps its pace on the same clock."""

    sample_rate = 22050

    def __init__(self, clock: Callable[[], float]) -> None:
        self.bytes = 0
        self.held: deque[tuple[float, bytes]] = deque()  # (when it will have played, audio)
        self.most_held = 0
        self.done = threading.Event()
        self._clock = clock
        self._end = 0.0
        self._lock = threading.Lock()

    def play(self, utterance: int, pcm: bytes) -> None:
        with self._lock:
            now = self._clock()
            while self.held and self.held[0][0] <= now:
                self.held.popleft()
            self._end = max(self._end, now) + len(pcm) / 2 / self.sample_rate
            self.held.append((self._end, pcm))
            self.bytes += len(pcm)
            self.most_held = max(self.most_held, sum(len(p) for _, p in self.held))

    def finish(self, utterance: int) -> None:
        with self._lock:
            self.held.clear()
        self.done.set()

    def stop(self) -> None:
        pass


class PeakSampler:
    def __init__(self, process: psutil.Process) -> None:
        self._process = process
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.002)


def settle(speech: SpeechOutput) -> None:
    """Speech idle, and long enough for its idle clean-up to have run once."""
    while speech.busy() or speech.warming():
        time.sleep(0.01)
    time.sleep(IDLE_TRIM_S + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--speed", type=float, default=2.0, help="playback speed")
    args = parser.parse_args()
    logger.remove()

    process = psutil.Process()
    text = " ".join(f"word{i}" for i in range(args.chars))[: args.chars]
    tts = PiperSynthesizer(TtsSettings())
    start = time.monotonic()

    def clock() -> float:
        return (time.monotonic() - start) * args.speed

    speaker = PlayingSpeaker(clock)
    speaker.sample_rate = tts.sample_rate
    speech = SpeechOutput(tts, speaker, lambda _m: None, max_ahead_s=MAX_AHEAD_S, clock=clock)
    speech.prewarm(list(FALLBACKS))
    speech.say(1, "Ready.")
    speech.finish(1)
    settle(speech)

    runs = []
    for run in range(args.runs):
        speaker.done.clear()
        speaker.bytes = speaker.most_held = 0
        before = process.memory_info().rss
        high_water_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.monotonic()
        with PeakSampler(process) as sampler:
            speech.say(100 + run, text)
            speech.finish(100 + run)
            speaker.done.wait(600)
            settle(speech)
        after = process.memory_info().rss
        high_water_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        runs.append(
            {
                "before_mb": round(before / MB, 1),
                "peak_mb": round(sampler.peak / MB, 1),
                "added_peak_mb": round((sampler.peak - before) / MB, 1),
                "after_mb": round(after / MB, 1),
                "process_peak_before_mb": round(high_water_before / MB, 1),
                "process_peak_after_mb": round(high_water_after / MB, 1),
                "process_peak_added_mb": round((high_water_after - high_water_before) / MB, 1),
                "retained_mb": round((after - before) / MB, 1),
                "audio_s": round(speaker.bytes / 2 / tts.sample_rate, 1),
                "most_audio_held_mb": round(speaker.most_held / MB, 2),
                "synthesis_s": round(time.monotonic() - started, 2),
            }
        )
    speech.close()
    print(
        json.dumps(
            {
                "chars": len(text),
                "piece_chars": MAX_PIECE_CHARS,
                "playback_speed": args.speed,
                "goal": {"added_peak_mb": 50, "retained_mb": "about 0"},
                "worst_added_peak_mb": max(r["added_peak_mb"] for r in runs),
                "worst_retained_mb": max(r["retained_mb"] for r in runs),
                "runs": runs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
