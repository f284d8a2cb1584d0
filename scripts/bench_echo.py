"""Echo handling, measured on the engines: for each echo gain and each canceller (none,
speexdsp, WebRTC AEC3) it prints, as JSON,

- ``erle_db``: how much quieter the device's own replies are after the canceller;
- ``cpu_per_s``: canceller CPU seconds per second of audio;
- ``barge_in``: wake words detected out of N said over the device's own reply;
- ``self_wakes``: wakes caused by its replies, chimes and timer rings alone;
- ``stop``: "stop" said alone over a reply, spotted out of N; ``false_stops`` on the
  device's own audio and on ordinary speech with no "stop" in it.

All audio is made here: the packaged Piper voice speaks both the user and the device.

    PYTHONPATH=. .venv/bin/python scripts/bench_echo.py [--trials 10] [--gains -12,-6]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from audio_helpers import silence, speech
from echo_support import STOP_LOOKALIKES

from firmware_app.audio.chimes import chime
from firmware_app.audio.echo import EchoPath, PlaybackReference
from firmware_app.config.settings import WakeSettings
from firmware_app.core.messages import FRAME_SAMPLES, SAMPLE_RATE
from firmware_app.listen.echo_canceller import erle_db, make_echo_canceller
from firmware_app.listen.stop_word import PocketsphinxStopSpotter
from firmware_app.listen.wake import OpenWakeWord

REPLIES = [
    "The weather today is sunny with a high of twenty two degrees and a light breeze.",
    "Your timer for ten minutes is done. Would you like me to set another one?",
    "I added milk, eggs and bread to your shopping list for the weekend.",
    "It is a quarter past seven in the evening, and the kitchen lights are on.",
    "Tomorrow brings rain in the afternoon, so take an umbrella when you go out.",
    "The capital of Australia is Canberra, not Sydney as many people think.",
    "I turned off the living room lamp and set the heating to twenty degrees.",
    "Here is a fun fact: octopuses have three hearts and blue blood.",
    "Your next meeting is at nine thirty with the design team, in room four.",
    "The song playing now is called Blue in Green, from the album Kind of Blue.",
]
ORDINARY = STOP_LOOKALIKES
ESPEAK_VOICES = [
    (v, s) for v in ("en-us", "en", "en-us+f3", "en-us+m3", "en+f2") for s in (130, 175, 220)
]


def device_audio() -> tuple[list[np.ndarray], np.ndarray]:
    """The device's replies, and its chimes plus a timer ringing, all at 16 kHz."""
    replies = [speech(text) for text in REPLIES]
    sounds = []
    for name in ("wake", "done", "error", *["timer"] * 6):
        ref = PlaybackReference()
        ref.place(0.0, chime(name, 22050), 22050)
        sounds += [ref.samples(), silence(0.3)]
    return replies, np.concatenate(sounds)


def run_stream(
    mic: np.ndarray, ref: np.ndarray, aec: Any, wake: Any, stop: Any
) -> tuple[np.ndarray, list[float], list[float], float]:
    """Feed 80 ms frames through canceller, wake word and stop spotter as the device does;
    return the cleaned audio, wake and stop times, and the canceller's CPU seconds."""
    n = len(mic) // FRAME_SAMPLES * FRAME_SAMPLES
    out = bytearray()
    wakes: list[float] = []
    stops: list[float] = []
    cpu = 0.0
    for start in range(0, n, FRAME_SAMPLES):
        frame = mic[start : start + FRAME_SAMPLES].astype("<i2").tobytes()
        reference = ref[start : start + FRAME_SAMPLES].astype("<i2").tobytes()
        c0 = time.process_time()
        clean = aec.cancel(frame, reference)
        cpu += time.process_time() - c0
        out += clean
        t = (start + FRAME_SAMPLES) / SAMPLE_RATE
        if wake is not None and wake.detect(clean) is not None:
            wakes.append(t)
        if stop is not None and stop.spot(clean):
            stops.append(t)
    return np.frombuffer(bytes(out), dtype=np.int16), wakes, stops, cpu


def scenario(
    playback: np.ndarray, user: np.ndarray | None, at_s: float, path: EchoPath
) -> tuple[np.ndarray, np.ndarray]:
    """Mic and reference for the device playing ``playback`` while ``user`` speaks at
    ``at_s``: the reference is the playback, the mic its echo plus the user."""
    total = max(len(playback), int(at_s * SAMPLE_RATE) + (0 if user is None else len(user)))
    total += SAMPLE_RATE  # a second after, for late detections
    timeline = PlaybackReference()
    timeline.place(0.0, playback.astype("<i2").tobytes(), SAMPLE_RATE)
    ref = timeline.window(total / SAMPLE_RATE, total)
    echo = path.echo(timeline, total / SAMPLE_RATE, total)
    mic = echo.copy()
    if user is not None:
        at = int(at_s * SAMPLE_RATE)
        mic[at : at + len(user)] += user.astype(np.float32)
    return np.clip(np.round(mic), -32768, 32767).astype(np.int16), ref


def measure(engine: str, gain_db: float, delay_ms: float, trials: int) -> dict[str, Any]:
    replies, sounds = device_audio()
    path = EchoPath(gain_db, delay_ms)
    wake = OpenWakeWord(WakeSettings())
    wake_word, stop_word = speech("Hey Jarvis"), speech("Stop.")
    result: dict[str, Any] = {"engine": engine, "gain_db": gain_db, "delay_ms": delay_ms}

    own = np.concatenate([*[np.concatenate([r, silence(0.4)]) for r in replies], sounds])
    mic, ref = scenario(own, None, 0.0, path)
    aec = make_echo_canceller(engine)
    stop = PocketsphinxStopSpotter()
    wake.reset()
    clean, wakes, stops, cpu = run_stream(mic, ref, aec, wake, stop)
    result["erle_db"] = round(erle_db(mic, clean, skip=SAMPLE_RATE), 1)
    result["cpu_per_s"] = round(cpu / (len(mic) / SAMPLE_RATE), 5)
    result["own_audio_s"] = round(len(mic) / SAMPLE_RATE, 1)
    result["self_wakes"] = len(wakes)
    result["false_stops_own_audio"] = len(stops)

    barge = stops_heard = 0
    # As on a device: one canceller runs from start-up (it has just heard the device's
    # own audio above); the wake and "done" chimes come before each reply.
    lead = np.concatenate([sounds[: int(0.5 * SAMPLE_RATE)], silence(1.0)])
    for i in range(trials):
        playback = np.concatenate([lead, replies[i % len(replies)]])
        at = len(lead) / SAMPLE_RATE + 0.8 + 0.25 * (i % 8)
        for user, kind in ((wake_word, "wake"), (stop_word, "stop")):
            mic, ref = scenario(playback, user, at, path)
            wake.reset()
            spotter = PocketsphinxStopSpotter()
            _, wakes, stops, _ = run_stream(
                mic, ref, aec, wake if kind == "wake" else None, spotter if kind == "stop" else None
            )
            window = (at, at + len(user) / SAMPLE_RATE + 1.0)
            heard = [t for t in (wakes if kind == "wake" else stops) if window[0] < t <= window[1]]
            if kind == "wake":
                barge += bool(heard)
            else:
                stops_heard += bool(heard)
    result["barge_in"] = f"{barge}/{trials}"
    result["stop"] = f"{stops_heard}/{trials}"
    return result


def espeak(text: str, voice: str, speed: int) -> np.ndarray:
    from firmware_app.audio.wavio import read_wav

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True
        )
        return read_wav(path)


def ordinary_false_stops() -> dict[str, Any]:
    """False stops on ordinary speech with no "stop" said alone (Piper, and espeak-ng
    voices when installed); and "stop" alone in those espeak-ng voices."""
    clips = [speech(t) for t in ORDINARY]
    stops_alone: list[np.ndarray] = []
    if shutil.which("espeak-ng"):
        for voice, speed in ESPEAK_VOICES:
            clips += [espeak(t, voice, speed) for t in ORDINARY]
            stops_alone.append(espeak("stop", voice, speed))
    audio = np.concatenate([np.concatenate([c, silence(0.6)]) for c in clips])
    spotter = PocketsphinxStopSpotter()
    off = make_echo_canceller("off")
    c0 = time.process_time()
    _, _, stops, _ = run_stream(audio, np.zeros_like(audio), off, None, spotter)
    cpu = time.process_time() - c0
    heard = 0
    for clip in stops_alone:
        spotter.reset()
        padded = np.concatenate([silence(0.5), clip, silence(0.8)])
        heard += bool(run_stream(padded, np.zeros_like(padded), off, None, spotter)[2])
    seconds = len(audio) / SAMPLE_RATE
    return {
        "ordinary_speech_s": round(seconds, 1),
        "false_stops": len(stops),
        "espeak_stop_alone": f"{heard}/{len(stops_alone)}",
        "stop_cpu_per_s": round(cpu / seconds, 4),
    }


def end_to_end(trials: int, gains: list[float]) -> list[dict[str, Any]]:
    """The whole assistant under ``simulate --echo``: barge-in by wake word over a long
    answer, "stop" alone over the answer and over a timer ring, and a session of its own
    audio (answer, chimes, ring) that must cause no wake and no request."""
    from echo_support import barge_in, long_answers, own_audio, stop_alone, with_llm
    from fakes import ScriptedStt

    from firmware_app.app.loading import load_engines
    from firmware_app.config.settings import Settings

    rows = []
    llm = long_answers()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        settings = with_llm(Settings(data_dir=tmp / "data"), llm.url)
        engines = load_engines(settings, stt=ScriptedStt(), steady=True)
        for gain in gains:
            gaps = [1.2 + 0.35 * i for i in range(trials)]
            barged = sum(barge_in(settings, engines, tmp, gain, g)["barged"] for g in gaps)
            said = sum(stop_alone(settings, engines, tmp, gain, g, False)["stopped"] for g in gaps)
            rung = sum(
                stop_alone(settings, engines, tmp, gain, 3.2 + 0.5 * i, True)["stopped"]
                for i in range(trials)
            )
            own = own_audio(settings, engines, tmp, gain)
            rows.append(
                {
                    "gain_db": gain,
                    "barge_in": f"{barged}/{trials}",
                    "stop_over_answer": f"{said}/{trials}",
                    "stop_over_ring": f"{rung}/{trials}",
                    "own_audio_wakes": own["wakes"] - 2,
                    "own_audio_false_requests": own["requests"] - 2,
                    "own_audio_stops": own["stops"],
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    llm.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--gains", default="-12,-6")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--engines", default="off,speex,webrtc")
    parser.add_argument(
        "--e2e", action="store_true", help="the whole assistant under simulate --echo instead"
    )
    args = parser.parse_args()
    gains = [float(g) for g in args.gains.replace("\u2212", "-").split(",")]
    if args.e2e:
        print(json.dumps({"simulate_echo": end_to_end(args.trials, gains)}, indent=2))
        return
    rows = []
    for gain in gains:
        for engine in args.engines.split(","):
            try:
                rows.append(measure(engine, gain, args.delay_ms, args.trials))
            except Exception as exc:  # an engine not installed: say so, go on
                rows.append({"engine": engine, "gain_db": gain, "error": str(exc)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"echo": rows, "stop_word": ordinary_false_stops()}, indent=2))


if __name__ == "__main__":
    main()
