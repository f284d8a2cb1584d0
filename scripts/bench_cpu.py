#!/usr/bin/env python3
"""CPU figures that decide whether the assistant fits a Pi Zero 2 W, each beside the bare
library doing the same work, with an estimate for a Pi Zero 2 W and a Pi 4, printed as
JSON.

- ``recognition``: speech-to-phrase's CPU seconds per second of request audio while
  listening (the product's recognizer with its word graph), beside bare pocketsphinx
  decoding the same audio with the same grammar as JSGF (as its documentation loads one)
  and with a one-sentence grammar (what the library costs with almost no search). Goal
  <= 0.05.
- ``simulate``: the three-request conversation of ``bench_profile.py`` through ``ttbt5
  simulate`` on the Zero profile: wake -> listening (wall, per wake; goal <= 50 ms) and
  how much faster than real time the conversation ran after start-up, to the end of the
  process (goal >= 20x): the fastest of ``--simulate-runs``, the median beside it; beside
  it the bare libraries doing the same conversation's work in one thread
  (``bare_conversation.py``): the fastest ``simulate`` could run it here.
  ``simulate_household`` is the same over a household's requests instead: two commands
  by each voice family of the speech corpus (tests/speech_corpus.py: Piper, espeak-ng,
  flite and festival voices, clean, in household noise and in a reverberant room, the
  wake word then a pause or in one breath), each followed by a pause of
  ``HOUSEHOLD_GAP_S``; no timer among them rings before the recording ends (the bare
  libraries are not told what a ring says).
- ``idle``: CPU seconds per second of household talk on the assistant's idle path (frames
  into ``Assistant.handle``: the echo canceller with the playback reference as ``ttbt5
  run`` wires it, wake word, levels, the state machine) for each wake engine, beside the
  bare wake library's own streaming loop on the same audio. Goal <= 1.2x.
  ``frame_path_cpu_s_per_audio_s`` is the same path with a wake detector that costs
  nothing: the assistant's own share (levels, echo canceller, state machine).
- ``estimates``: the figures scaled by how much slower one core of a Pi is than one here
  (``CORE_FACTORS``): an estimate, not a measurement on a Pi.

CPU times are process CPU time, the steadier figure on a shared machine; wall times
(wake -> listening, simulate speed) rise with the machine's load, so ``load`` is printed.

    PYTHONPATH=. .venv/bin/python scripts/bench_cpu.py [--idle-seconds 30] [--simulate-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from audio_helpers import speech  # noqa: E402

from firmware_app.config.settings import Settings  # noqa: E402
from firmware_app.core.messages import FRAME_SAMPLES  # noqa: E402

CORE_FACTORS = {"pi_zero_2w": (6.0, 10.0), "pi_4": (3.0, 5.0)}
"""How many times slower one core is than one of the development machine's (x86-64),
low and high: Cortex-A53 at 1 GHz, Cortex-A72 at 1.5-1.8 GHz. From the cores' published
clock and per-clock figures, not measured here."""
REQUESTS = ["What time is it?", "Set a timer for five minutes.", "What's the date?"]
HOUSEHOLD_PER_FAMILY = 2
HOUSEHOLD_GAP_S = 2.5
"""Silence after each household request: its reply plays, then the kitchen is quiet."""


def household_wav(path: Path) -> None:
    """The household conversation (see the module's docstring) as a 16 kHz WAV file."""
    import wave

    import speech_corpus

    taken: dict[str, int] = {}
    parts: list[np.ndarray] = []
    for item in speech_corpus.items("ci"):
        seconds = (item.slots or {}).get("seconds")
        if item.kind != "command" or (isinstance(seconds, int) and seconds < 300):
            continue  # a timer under five minutes would ring inside the recording
        if taken.get(item.family, 0) >= HOUSEHOLD_PER_FAMILY:
            continue
        taken[item.family] = taken.get(item.family, 0) + 1
        parts += [item.audio.astype(np.int16), np.zeros(int(HOUSEHOLD_GAP_S * 16000), np.int16)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.concatenate(parts).astype("<i2").tobytes())


def frames(samples: np.ndarray) -> list[bytes]:
    n = len(samples) // FRAME_SAMPLES
    return [samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes() for i in range(n)]


def requests_audio() -> list[np.ndarray]:
    """Each request as the recognizer gets it: the end of the wake phrase, the request."""
    pause = np.zeros(8000, dtype=np.int16)
    return [np.concatenate([speech(f"Jarvis. {r}"), pause]) for r in REQUESTS]


def cpu_per_audio_s(decode: Any, audios: list[np.ndarray], rounds: int = 3) -> float:
    """Best of ``rounds`` of CPU seconds per second of audio (the machine is shared)."""
    seconds = sum(len(a) for a in audios) / 16000
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for audio in audios:
            decode(frames(audio))
        best = min(best, time.process_time() - t0)
    return best / seconds


def recognition() -> dict[str, Any]:
    from bench_profile import grammar_files
    from loguru import logger
    from pocketsphinx import Decoder

    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources

    logger.remove()
    audios = requests_audio()
    stt = PhraseTranscriber(phrase_grammar_sources(Settings()))
    heard: list[str] = []

    def ours(pcm: list[bytes]) -> None:
        stt.start()
        for frame in pcm:
            stt.feed(frame)
        heard.append(stt.finish())

    def bare_with(decoder: Any) -> Any:
        def decode(pcm: list[bytes]) -> None:
            decoder.start_utt()
            for frame in pcm:
                decoder.process_raw(frame, False, False)
            decoder.end_utt()

        return decode

    with tempfile.TemporaryDirectory() as tmp:
        jsgf, dic = grammar_files(Path(tmp))
        one = Path(tmp) / "one.jsgf"
        one.write_text("#JSGF V1.0;\ngrammar one;\npublic <one> = what time is it;\n")
        options = {"samprate": 16000, "dict": str(dic), "bestpath": False, "loglevel": "FATAL"}
        same = Decoder(jsgf=str(jsgf), **options)
        small = Decoder(jsgf=str(one), **options)
        figures = {
            "ours_cpu_s_per_audio_s": cpu_per_audio_s(ours, audios),
            "bare_same_grammar_cpu_s_per_audio_s": cpu_per_audio_s(bare_with(same), audios),
            "bare_one_sentence_cpu_s_per_audio_s": cpu_per_audio_s(bare_with(small), audios),
        }
    out: dict[str, Any] = {k: round(v, 4) for k, v in figures.items()}
    out["audio_s"] = round(sum(len(a) for a in audios) / 16000, 1)
    out["heard"] = heard[: len(REQUESTS)]
    out["goal_cpu_s_per_audio_s"] = 0.05
    return out


def simulate(runs: int, household: bool = False) -> dict[str, Any]:
    """Wake -> listening and the speed of a conversation on the Zero profile, over
    ``runs`` runs: wall time varies with the machine's load far more than CPU time, so the
    fastest run is the figure (as the best round is for the CPU figures) and the median
    is printed beside it. ``process_cpu_s``: the CPU time of the whole ``simulate``
    process (start-up included), the steadier figure on a shared machine. Every run starts
    from a data directory of its own, as the first does: one left by an earlier run would
    hand the next its store and the timer the conversation sets, so later runs would not
    repeat the first."""
    import resource

    from bare_conversation import bare_conversation
    from bench_profile import conversation_wav, ours

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    run_s: list[float] = []
    cpu_s: list[float] = []
    bare: list[dict[str, Any]] = []
    delays = []
    preroll_s = Settings().wake.preroll_ms / 1000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wav = work / "conversation.wav"
        if household:
            household_wav(wav)
        else:
            conversation_wav(wav)
        import wave

        with wave.open(str(wav)) as w:
            audio_s = w.getnframes() / w.getframerate()
        for _ in range(runs):
            # ours() keeps the data directory and the events file in the folder it is given
            with tempfile.TemporaryDirectory(dir=work) as run_tmp:
                run_work = Path(run_tmp)
                cpu_before = children_cpu()
                result = ours("zero", wav, run_work)
                cpu_s.append(children_cpu() - cpu_before)
                run_s.append(result["wall_s"] - (result["ready_s"] or 0.0))
                lines = (run_work / "events-zero.jsonl").read_text().splitlines()
                events = [json.loads(line) for line in lines]
                delays += wake_delays(events)
                bare.append(bare_conversation(wav, events, preroll_s))  # alternating
    best = min(run_s)
    limit = min(bare, key=lambda b: float(b["wall_s"]))
    return {
        "wakes": len(delays),
        "wake_to_listening_ms": round(statistics.median(delays), 1) if delays else None,
        "wake_to_listening_max_ms": round(max(delays), 1) if delays else None,
        "goal_wake_to_listening_ms": 50,
        "audio_s": round(audio_s, 1),
        "runs": runs,
        "run_after_ready_s": round(best, 2),
        "times_real_time": round(audio_s / best, 1),
        "times_real_time_median": round(audio_s / statistics.median(run_s), 1),
        "process_cpu_s": round(min(cpu_s), 2),
        "goal_times_real_time": 20,
        "bare_times_real_time": limit["times_real_time"],
        "bare_cpu_s": limit["cpu_s"],
        "ratio": round(best / limit["wall_s"], 2),
        "replies": len(result["replies"]),
        "requests": limit["requests"],
    }


def wake_delays(events: list[dict[str, Any]]) -> list[float]:
    """Milliseconds from each wake to the listening state it opened (wall)."""
    delays = []
    for i, event in enumerate(events):
        if event["type"] == "wake":
            listening = next(
                (e for e in events[i:] if e["type"] == "state" and e["state"] == "listening"),
                None,
            )
            if listening is not None:
                delays.append(1000 * (listening["wall"] - event["wall"]))
    return delays


def bare_wake_loop(engine: str) -> Any:
    """The wake library's own streaming loop on hey_jarvis, as its documentation shows
    it: pyopen-wakeword (openWakeWord's models on its bundled TFLite) or pymicro-wakeword.
    Returns a function: CPU seconds to run it over some audio."""
    if engine == "openwakeword":
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

        oww_features = OpenWakeWordFeatures.from_builtin()
        oww = OpenWakeWord.from_builtin(Model.HEY_JARVIS)

        def hear(pcm: bytes) -> None:
            for embedding in oww_features.process_streaming(pcm):
                list(oww.process_streaming(embedding))
    else:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures
        from pymicro_wakeword import Model as MicroModel

        micro_features = MicroWakeWordFeatures()
        micro = MicroWakeWord.from_builtin(MicroModel.HEY_JARVIS)

        def hear(pcm: bytes) -> None:
            for window in micro_features.process_streaming(pcm):
                micro.process_streaming(window)

    def run(pcm: list[bytes]) -> float:
        t0 = time.process_time()
        for frame in pcm:
            hear(frame)
        return time.process_time() - t0

    return run


class HearsNothing:
    """A wake detector that never detects, at no cost: with it the idle path's figure is
    the assistant's own frame handling, the wake library's share taken out."""

    def detect(self, pcm: bytes) -> None:
        return None

    def reset(self) -> None:
        pass


def idle(engine: str, seconds: float) -> dict[str, Any]:
    """The assistant's idle path beside the bare wake library, same audio, alternating;
    and the same path with a wake detector that costs nothing (``frame_path``)."""
    from dataclasses import replace

    from bench import IDLE_TALK
    from fakes import ScriptedStt

    from firmware_app.app import loading, simulation
    from firmware_app.audio.echo import REFERENCE_KEEP_S, PlaybackReference
    from firmware_app.core.messages import Frame

    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < seconds * 16000:
        for sentence in IDLE_TALK:
            parts += [speech(sentence), np.zeros(8000, dtype=np.int16)]
    audio = np.concatenate(parts)[: int(seconds * 16000)]
    pcm = frames(audio)
    bare = bare_wake_loop(engine)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), wake={"engines": {"hey_jarvis": engine}}, tts={"cache_entries": 0}
        )
        engines = loading.load_engines(settings, stt=ScriptedStt(), steady=True)
        deaf = replace(engines, wake=HearsNothing())

        def assistant_on(engines: loading.Engines) -> Any:
            # as under `ttbt5 run`: frames come without their reference, the canceller
            # takes it from what the speaker played (nothing, while idle)
            reference = PlaybackReference(keep_s=REFERENCE_KEEP_S)
            return simulation.simulated(settings, engines, extras=False, reference=reference)

        def run(assistant: Any, clock: Any) -> float:
            assistant.hearing.reset()
            t0 = time.process_time()
            for i, frame in enumerate(pcm):
                clock.set((i + 1) * 0.08)
                assistant.handle(Frame(frame, (i + 1) * 0.08))
            return time.process_time() - t0

        with assistant_on(engines) as (assistant, _, clock):
            assistant.start()
            simulation.settle(assistant)
            ours_cpu, bare_cpu = [], []
            for _ in range(3):  # alternate to share the machine's noise fairly
                bare_cpu.append(bare(pcm))
                ours_cpu.append(run(assistant, clock))
            woke = assistant.metrics.snapshot()["wake_count"]
        with assistant_on(deaf) as (assistant, _, clock):
            assistant.start()
            simulation.settle(assistant)
            path_cpu = min(run(assistant, clock) for _ in range(3))
    audio_s = len(pcm) * 0.08
    return {
        "audio_s": round(audio_s, 1),
        "ours_cpu_s_per_audio_s": round(min(ours_cpu) / audio_s, 4),
        "bare_cpu_s_per_audio_s": round(min(bare_cpu) / audio_s, 4),
        "ratio": round(min(ours_cpu) / min(bare_cpu), 3),
        "goal_ratio": 1.2,
        "frame_path_cpu_s_per_audio_s": round(path_cpu / audio_s, 5),
        "false_wakes": woke,
    }


def estimates(report: dict[str, Any]) -> dict[str, Any]:
    """This machine's figures times each Pi's core factor (low-high): estimates."""
    out: dict[str, Any] = {}
    for board, (low, high) in CORE_FACTORS.items():
        rec = report["recognition"]["ours_cpu_s_per_audio_s"]
        sim = report["simulate"]
        board_figures: dict[str, Any] = {
            "core_factor": [low, high],
            "recognition_cpu_s_per_audio_s": [round(rec * low, 3), round(rec * high, 3)],
            "simulate_times_real_time": [
                round(sim["times_real_time"] / high, 1),
                round(sim["times_real_time"] / low, 1),
            ],
        }
        if sim["wake_to_listening_ms"] is not None:
            ms = sim["wake_to_listening_ms"]
            board_figures["wake_to_listening_ms"] = [round(ms * low), round(ms * high)]
        for engine, figures in report.get("idle", {}).items():
            cpu = figures["ours_cpu_s_per_audio_s"]
            board_figures[f"idle_{engine}_cpu_s_per_audio_s"] = [
                round(cpu * low, 3),
                round(cpu * high, 3),
            ]
        out[board] = board_figures
    out["note"] = "estimates from the ratio of the cores, not measured on a Pi"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--simulate-runs", type=int, default=3)
    parser.add_argument(
        "--only", choices=["recognition", "simulate", "idle"], action="append", default=None
    )
    args = parser.parse_args()
    wanted = set(args.only or ["recognition", "simulate", "idle"])
    report: dict[str, Any] = {
        "load": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
        "note": "measured on a shared machine: CPU figures depend on its load, memory not",
    }
    if "recognition" in wanted:
        report["recognition"] = recognition()
    if "simulate" in wanted:
        report["simulate"] = simulate(args.simulate_runs)
        report["simulate_household"] = simulate(args.simulate_runs, household=True)
    if "idle" in wanted:
        report["idle"] = {
            engine: idle(engine, args.idle_seconds) for engine in ("microwakeword", "openwakeword")
        }
    if "recognition" in wanted and "simulate" in wanted:
        report["estimates"] = estimates(report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
