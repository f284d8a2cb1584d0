"""End-to-end echo scenarios for ``simulate --echo``: the whole assistant (real
openWakeWord, Silero, Piper, the echo canceller and the stop word) on a recording, with
what it plays fed back into its microphone. Used by the tests and by
``scripts/bench_echo.py --e2e``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from audio_helpers import conversation, write
from fakes import ScriptedStt
from llm_fake_server import FakeLlm, sse
from pydantic import SecretStr

from firmware_app.app import simulation
from firmware_app.audio.echo import EchoPath
from firmware_app.config.settings import LlmSettings, Settings
from firmware_app.core.events import read_events

# A long answer to talk over: about 12 s of speech.
ANSWER = (
    "The Moon is about three hundred and eighty four thousand kilometres away. "
    "It takes a little over twenty seven days to go around the Earth, "
    "and it always shows us the same face. "
    "Its gravity is about one sixth of ours, which is why astronauts bounce when they walk."
)


def long_answers() -> FakeLlm:
    """A real OpenAI-compatible server on loopback that answers everything at length."""
    return FakeLlm(default=sse([word + " " for word in ANSWER.split(" ")]))


def with_llm(settings: Settings, url: str) -> Settings:
    llm = LlmSettings(url=url, model="test-model", api_key=SecretStr("sk-test"), retries=0)
    return settings.model_copy(update={"llm": llm})


def simulate(
    settings: Settings,
    engines: Any,
    tmp: Path,
    name: str,
    stt: ScriptedStt,
    *parts: Any,
    echo: EchoPath | None,
) -> list[dict[str, Any]]:
    wav = write(tmp / f"{name}.wav", conversation(*parts))
    events = tmp / f"{name}.jsonl"
    events.unlink(missing_ok=True)
    engines.wake.reset()
    simulation.simulate(
        settings,
        wav,
        None,
        events,
        engines=replace(engines, stt=stt),
        echo=echo,
        start_epoch=1_800_000_000.0,
    )
    return read_events(events)


def barge_in(
    settings: Settings, engines: Any, tmp: Path, gain_db: float, gap_s: float
) -> dict[str, Any]:
    """Ask a question with a long answer; ``gap_s`` after the question, while the answer
    plays, say the wake word and a second request. Success: the answer is cut by a second
    wake and the second request is heard; nothing else wakes it."""
    stt = ScriptedStt("tell me about the moon", "what time is it")
    events = simulate(
        settings,
        engines,
        tmp,
        f"barge-{gain_db}-{gap_s}",
        stt,
        1.0,
        "Hey Jarvis, tell me about the moon.",
        gap_s,
        "Hey Jarvis.",
        0.4,
        "What time is it?",
        3.0,
        echo=EchoPath(gain_db, 20.0),
    )
    wakes = [e for e in events if e["type"] == "wake"]
    first_speak = next((e for e in events if e["type"] == "speak_start"), None)
    cut = [e for e in events if e["type"] == "speak_end" and e.get("cut")]
    transcripts = [e["text"] for e in events if e["type"] == "transcript"]
    barged = (
        len(wakes) == 2
        and first_speak is not None
        and wakes[1]["t"] > first_speak["t"]
        and bool(cut)
        and transcripts == ["tell me about the moon", "what time is it"]
    )
    return {"barged": barged, "wakes": len(wakes), "transcripts": transcripts, "events": events}


def own_audio(settings: Settings, engines: Any, tmp: Path, gain_db: float) -> dict[str, Any]:
    """A long answer, chimes and a timer that rings, with nobody talking over them: every
    wake and every request must be the user's own."""
    stt = ScriptedStt("tell me about the moon", "set a timer for two seconds")
    events = simulate(
        settings,
        engines,
        tmp,
        f"own-{gain_db}",
        stt,
        1.0,
        "Hey Jarvis, tell me about the moon.",
        16.0,
        "Hey Jarvis, set a timer for two seconds.",
        12.0,
        echo=EchoPath(gain_db, 20.0),
    )
    types = [e["type"] for e in events]
    return {
        "wakes": types.count("wake"),
        "requests": types.count("transcript"),
        "rang": any(e["type"] == "timer" or "ring" in e["type"] for e in events),
        "stops": sum(1 for e in events if e["type"] == "stop_word"),
        "events": events,
    }


def stop_alone(
    settings: Settings, engines: Any, tmp: Path, gain_db: float, gap_s: float, ring: bool
) -> dict[str, Any]:
    """While the long answer plays (or, ``ring``, while a timer rings), "Stop." said
    alone, ``gap_s`` after the request: it must stop, with no wake word and no request."""
    request = "set a timer for two seconds" if ring else "tell me about the moon"
    stt = ScriptedStt(request)
    events = simulate(
        settings,
        engines,
        tmp,
        f"stop-{ring}-{gain_db}-{gap_s}",
        stt,
        1.0,
        f"Hey Jarvis, {request}.",
        gap_s,
        "Stop.",
        3.0,
        echo=EchoPath(gain_db, 20.0),
    )
    origin = "timer" if ring else "llm"
    ends = [e for e in events if e["type"] == "speak_end" and e["origin"] == origin]
    stops = [e for e in events if e["type"] == "stop_word"]
    types = [e["type"] for e in events]
    return {
        "stopped": len(stops) == 1 and bool(ends) and ends[0]["cut"] is True,
        "wakes": types.count("wake"),
        "requests": types.count("transcript"),
        "events": events,
    }


STOP_LOOKALIKES = [
    "The bus stops at the corner, and the shop is on top of the hill.",
    "Don't stop the music, it is my favourite song.",
    "He stopped by to say hello, then went to the store.",
    "A stopwatch is on the table next to the stock report.",
    "Please stay, the show starts soon.",
    "Stephen stepped onto the stage at the top of the hour.",
    "Turn off the kitchen lights and set a timer for ten minutes.",
    "What is the weather like in Stockholm tomorrow?",
]
"""Ordinary sentences full of "stop"-like sounds: none of them may count as "stop"."""
