#!/usr/bin/env python3
"""Latency of the online-model path, measured through the real assistant, and printed as JSON.

- ``first_word``: time from ``speech_end`` to ``speak_start`` (event ``wall`` times) under
  ``simulate`` with the real wake word, VAD and Piper, against a fake OpenAI-compatible
  server on 127.0.0.1 whose first sentence arrives 300 ms after the request (then one token
  every 40 ms). Goal: 300 ms + Piper's first-chunk time for that sentence + 50 ms.
- ``fallback_closed``: the provider refuses connections (nothing listens), default retry
  settings, breaker closed: time from ``speech_end`` to the fallback ``reply`` event, and
  from ``respond()`` to ``ReplyEnd`` on the responder alone. Goal: 1.5 s.
- ``fallback_open``: the same once the breaker is open. Goal: 50 ms.
- ``rate_limited``: the provider answers every request with HTTP 429 and ``Retry-After: 60``:
  time from ``speech_end`` to the fallback's ``speak_start`` for the request that got the
  429 and for the next one (held by Retry-After, nothing sent). Goal: 1.5 s.

Speech recognition is scripted (the transcript is given), since no English Vosk model ships
with the test dependencies; its time is not part of what is measured here.

    .venv/bin/python scripts/bench_llm.py [--runs 5] [--only rate_limited]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from audio_helpers import conversation, write  # noqa: E402
from fakes import ScriptedStt  # noqa: E402
from llm_fake_server import FakeLlm, refused_url, status, timed  # noqa: E402
from loguru import logger  # noqa: E402

from firmware_app.app.loading import load_engines  # noqa: E402
from firmware_app.app.simulation import simulate  # noqa: E402
from firmware_app.config.settings import LlmSettings, Settings  # noqa: E402
from firmware_app.core.events import PROCESS_START, Event  # noqa: E402
from firmware_app.core.messages import ReplyEnd, ReplySentence  # noqa: E402
from firmware_app.understand.llm.responder import LlmResponder  # noqa: E402

QUESTION = "why is the sky blue"
FIRST = "The sky looks blue because air scatters blue light the most."
REST = " It reaches your eyes from every direction."


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "runs": len(values),
    }


def settings_for(data: Path, url: str, **llm: Any) -> Settings:
    # Without chimes: under simulate the audio clock stands still while the answer
    # streams, so speech queued behind the end-of-request chime would wait for the clock
    # (on a device the 0.2 s chime is over long before the first sentence arrives).
    return Settings(
        data_dir=data,
        audio={"chimes": False},
        llm=LlmSettings(url=url, model="bench", **llm),
    )


def run_simulation(
    engines: Any, settings: Settings, wav: Path, transcripts: list[str]
) -> list[Event]:
    events: list[Event] = []
    simulate(
        settings,
        wav,
        engines=replace(engines, stt=ScriptedStt(*transcripts)),
        observers=[events.append],
        max_tail_s=30,
    )
    return events


def gaps(events: list[Event], end_type: str) -> list[float]:
    """For each speech_end, the wall time until the next event of ``end_type``."""
    out: list[float] = []
    for i, event in enumerate(events):
        if event.type != "speech_end":
            continue
        nxt = next((e for e in events[i + 1 :] if e.type == end_type), None)
        if nxt is not None:
            out.append(nxt.wall - event.wall)
    return out


class TimedTts:
    """Piper, noting when each text was handed to it and when its first audio came out,
    so each run's goal uses that run's own synthesis time (the machine may be busy)."""

    def __init__(self, tts: Any) -> None:
        self.tts = tts
        self.sample_rate = tts.sample_rate
        self.marks: dict[str, tuple[float, float]] = {}

    def synthesize(self, text: str) -> Iterator[bytes]:
        called = time.monotonic() - PROCESS_START
        first = True
        for pcm in self.tts.synthesize(text):
            if first:
                self.marks.setdefault(text, (called, time.monotonic() - PROCESS_START))
                first = False
            yield pcm


def bench_first_word(engines: Any, wav: Path, runs: int) -> dict[str, Any]:
    words = FIRST.split(" ")
    schedule = [(0.3, (" " if i else "") + w) for i, w in enumerate(words)]
    rest = REST.split(" ")[1:]
    schedule += [(0.3 + 0.04 * i, " " + w) for i, w in enumerate(rest)]  # " It" comes at 300 ms
    total: list[float] = []
    to_tts: list[float] = []
    tts_first: list[float] = []
    request_sent: list[float] = []
    first_sentence: list[float] = []
    met: list[bool] = []
    per_run: list[dict[str, float]] = []
    for _ in range(runs):
        server = FakeLlm(default=timed(schedule))
        tts = TimedTts(engines.tts)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                settings = settings_for(Path(tmp), server.url)
                events = run_simulation(replace(engines, tts=tts), settings, wav, [QUESTION])
            # The responder alone: respond() to the first ReplySentence.
            first_sentence.append(time_to_first_sentence(server.url))
        finally:
            server.close()
        replies = [e.fields for e in events if e.type == "reply"]
        if not replies or replies[0]["source"] != "llm":
            raise SystemExit(f"unexpected replies: {replies}")
        speech_end = next(e for e in events if e.type == "speech_end")
        speak_start = next(e for e in events if e.type == "speak_start")
        called, first_audio = tts.marks[FIRST]
        total.append(speak_start.wall - speech_end.wall)
        to_tts.append(called - speech_end.wall)
        tts_first.append(first_audio - called)
        request_sent.append(server.requests[0].t - PROCESS_START - speech_end.wall)
        met.append(total[-1] <= 0.3 + tts_first[-1] + 0.05)
        per_run.append(
            {
                "speech_end_to_speak_start_ms": round(total[-1] * 1000, 1),
                "goal_ms": round((0.3 + tts_first[-1] + 0.05) * 1000, 1),
                "request_sent_ms": round(request_sent[-1] * 1000, 1),
                "first_sentence_at_tts_ms": round(to_tts[-1] * 1000, 1),
                "tts_first_chunk_ms": round(tts_first[-1] * 1000, 1),
            }
        )
    return {
        "speech_end_to_speak_start": summary(total),
        "speech_end_to_request_sent": summary(request_sent),
        "speech_end_to_first_sentence_at_tts": summary(to_tts),
        "tts_first_chunk": summary(tts_first),
        "respond_to_first_sentence": summary(first_sentence),
        "goal": "speech_end_to_speak_start <= 300 ms + tts_first_chunk + 50 ms, per run",
        "runs_meeting_goal": f"{sum(met)}/{len(met)}",
        "per_run": per_run,
    }


def time_to_first_sentence(url: str) -> float:
    responder = LlmResponder(LlmSettings(url=url), None)
    got = threading.Event()
    try:
        start = time.monotonic()
        responder.respond(
            1, QUESTION, lambda m: got.set() if isinstance(m, ReplySentence) else None
        )
        got.wait(10)
        return time.monotonic() - start
    finally:
        responder.close()


def bench_fallback(engines: Any, runs: int) -> dict[str, Any]:
    url = refused_url()
    # Through the assistant: four requests; the breaker (3 failures) is open for the 4th.
    parts: list[str | float] = [0.5]
    for _ in range(4):
        parts += ["Hey Jarvis.", 0.3, "Why is the sky blue?", 2.5]
    with tempfile.TemporaryDirectory() as tmp:
        wav = write(Path(tmp) / "four.wav", conversation(*parts))
        closed_reply: list[float] = []
        closed_speak: list[float] = []
        open_reply: list[float] = []
        open_speak: list[float] = []
        for n in range(max(1, runs // 2)):
            data = Path(tmp) / f"run{n}"
            events = run_simulation(engines, settings_for(data, url), wav, [QUESTION] * 4)
            replies = [e.fields for e in events if e.type == "reply"]
            if len(replies) != 4 or any(r["source"] != "fallback" for r in replies):
                raise SystemExit(f"expected four fallbacks, got {replies}")
            reply_gaps, speak_gaps = gaps(events, "reply"), gaps(events, "speak_start")
            closed_reply += reply_gaps[:3]
            closed_speak += speak_gaps[:3]
            open_reply.append(reply_gaps[3])
            open_speak.append(speak_gaps[3])

    # The responder alone: respond() to ReplyEnd.
    responder_closed: list[float] = []
    responder_open: list[float] = []
    for _ in range(runs):
        responder = LlmResponder(LlmSettings(url=url), None)
        try:
            for request in range(1, 5):
                done = threading.Event()
                ends: list[ReplyEnd] = []

                def post(
                    message: object, ends: list[ReplyEnd] = ends, done: threading.Event = done
                ) -> None:
                    if isinstance(message, ReplyEnd):
                        ends.append(message)
                        done.set()

                start = time.monotonic()
                responder.respond(request, QUESTION, post)
                done.wait(30)
                took = time.monotonic() - start
                (responder_closed if request <= 3 else responder_open).append(took)
                assert ends and ends[0].fallback
        finally:
            responder.close()
    return {
        "fallback_closed": {
            "speech_end_to_reply": summary(closed_reply),
            "speech_end_to_speak_start": summary(closed_speak),
            "respond_to_reply_end": summary(responder_closed),
            "goal_ms": 1500,
            "met": summary(closed_reply)["max_ms"] <= 1500,
        },
        "fallback_open": {
            "speech_end_to_reply": summary(open_reply),
            "speech_end_to_speak_start": summary(open_speak),
            "respond_to_reply_end": summary(responder_open),
            "goal_ms": 50,
            "met": summary(open_reply)["max_ms"] <= 50,
        },
    }


def bench_rate_limited(engines: Any, runs: int) -> dict[str, Any]:
    parts: list[str | float] = [0.5]
    for _ in range(2):
        parts += ["Hey Jarvis.", 0.3, "Why is the sky blue?", 2.5]
    answered: list[float] = []
    held: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = write(Path(tmp) / "two.wav", conversation(*parts))
        for n in range(runs):
            server = FakeLlm(default=status(429, headers={"Retry-After": "60"}))
            try:
                data = Path(tmp) / f"run{n}"
                events = run_simulation(
                    engines, settings_for(data, server.url), wav, [QUESTION] * 2
                )
                sent = len(server.requests)
            finally:
                server.close()
            replies = [e.fields for e in events if e.type == "reply"]
            if len(replies) != 2 or any(r["source"] != "fallback" for r in replies):
                raise SystemExit(f"expected two fallbacks, got {replies}")
            if sent != 1:
                raise SystemExit(f"expected one request to go out, {sent} did")
            first, second = gaps(events, "speak_start")[:2]
            answered.append(first)
            held.append(second)
    return {
        "rate_limited": {
            "speech_end_to_speak_start_429": summary(answered),
            "speech_end_to_speak_start_held": summary(held),
            "goal_ms": 1500,
            "met": max(summary(answered)["max_ms"], summary(held)["max_ms"]) <= 1500,
        }
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["first_word", "fallback", "rate_limited"])
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp))
        engines = load_engines(base, microphone=True, stt=ScriptedStt())
        wav = write(
            Path(tmp) / "ask.wav",
            conversation(0.5, "Hey Jarvis.", 0.3, "Why is the sky blue?", 2.0),
        )
        result: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        }
        if args.only in (None, "first_word"):
            result["first_word"] = bench_first_word(engines, wav, args.runs)
        if args.only in (None, "fallback"):
            result.update(bench_fallback(engines, args.runs))
        if args.only in (None, "rate_limited"):
            result.update(bench_rate_limited(engines, args.runs))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
