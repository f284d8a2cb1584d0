"""End of speech → first reply audio, with the speaker as a real Home Assistant's satellite.

The rig of tests/test_ha_satellite.py (Home Assistant Core from scripts/ha-env.sh, its
own Piper, ``ttbt5 run`` on a live-paced ALSA microphone, all in a network namespace of
its own): "Hey Jarvis. What time is it?" (or ``--phrase``) is spoken ``--runs`` times;
each time the end of speech is when the microphone delivered the voice's last sample, and
the reply is the first audible sample the speaker wrote. With ``--home`` Home Assistant
holds a small home (two lights in two areas) whose names the speaker's recognizer learns
with a token, so ``--phrase "turn on the kitchen light"`` is speech the speaker itself does
not take for one of its own commands: its stream then ends after ordinary speech's wait.

Prints JSON: each run and the median, with the device's own view: Home Assistant's share
(the speaker's end of speech, ``end=True``, → the answer's audio fetched from it: its
speech to text, intent and voice) and the device's share (everything else: the voice
detector's hangover, the frames' delivery, fetching overheads, the playback start), which
is the end-to-end figure minus Home Assistant's.

    python scripts/bench_ha_satellite.py [--runs 5] [--home --phrase "turn on the kitchen light"]

Needs root (network namespaces) and the cached Home Assistant; says so otherwise.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def asoundrc(work: Path, fifo: Path, speaker: Path) -> Path:
    path = work / "asoundrc"
    path.write_text(
        f'pcm.benchmic {{ type file slave.pcm "null" file "/dev/null" infile "{fifo}" '
        'format "raw" }\n'
        f'pcm.benchspeaker {{ type file slave.pcm "null" file "{speaker}" format "raw" }}\n'
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--phrase", default="what time is it", help="the request after the wake word"
    )
    parser.add_argument("--home", action="store_true", help="Home Assistant holds two lights")
    args = parser.parse_args()

    from ha_harness import ha_env_problem
    from netns import netns_problem

    problem = ha_env_problem() or netns_problem()
    if problem:
        print(json.dumps({"skipped": problem}))
        return 0
    work = Path(tempfile.mkdtemp(prefix="ttbt5-bench-ha-"))
    fifo, speaker = work / "mic.fifo", work / "speaker.raw"
    os.mkfifo(fifo)
    rc = asoundrc(work, fifo, speaker)
    os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{rc}"
    os.environ["RUNTIME_DIRECTORY"] = str(work)
    for key in [k for k in os.environ if k.startswith("TTBT5_")]:
        del os.environ[key]

    import numpy as np
    from audio_helpers import RATE, silence, speech, speech_spans
    from ha_satellite_rig import Paths, SatelliteRig
    from live_mic import FRAME_BYTES

    rig = SatelliteRig(Paths(work, fifo, speaker, "benchmic", "benchspeaker"), home=args.home)
    runs: list[dict[str, Any]] = []
    try:
        rig.start()
        words = np.concatenate([speech("Hey Jarvis."), silence(0.6), speech(args.phrase)])
        # the voice's last sample, before the clip's own trailing silence and the zeros
        # that pad the last microphone frame
        tail = len(words) - round(speech_spans(words)[-1][1] * RATE)
        pad = -len(words) % (FRAME_BYTES // 2)
        for _ in range(args.runs):
            time.sleep(3.0)  # the room quiet between requests
            index, mark = rig.say(words)
            while rig.feeder.speaking():
                time.sleep(0.005)
            time.sleep(0.1)  # the last frame's write
            ended = rig.feeder.drained_at - (tail + pad) / RATE
            heard = rig.speaker.wait_sound(mark)

            def stage(name: str, at: int = index) -> dict[str, Any]:
                return rig.device.wait_for(
                    lambda e: e["type"] == "satellite" and e.get("stage") == name, at
                )

            play, eos, fetched = stage("play"), stage("end_of_speech"), stage("fetched")
            ended_vad = rig.device.wait_for(lambda e: e["type"] == "speech_end", index)
            rig.device.wait_for(lambda e: e["type"] == "speak_end", index)
            total = heard - ended
            home = fetched["wall"] - eos["wall"]
            runs.append(
                {
                    "end_of_speech_to_reply_audio_s": round(total, 3),
                    "home_assistant_s": round(home, 3),
                    "device_share_s": round(total - home, 3),
                    "device_hangover_s": round(ended_vad["t"] - ended_vad["last_speech_t"], 3),
                    "device_end_of_speech_to_play_s": round(play["wall"] - eos["wall"], 3),
                }
            )
    finally:
        rig.close()

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    print(
        json.dumps(
            {
                "runs": runs,
                "median_end_of_speech_to_reply_audio_s": median("end_of_speech_to_reply_audio_s"),
                "median_home_assistant_s": median("home_assistant_s"),
                "median_device_share_s": median("device_share_s"),
                "max_device_share_s": max(r["device_share_s"] for r in runs),
                "max_device_hangover_s": max(r["device_hangover_s"] for r in runs),
                "home_assistant": "2025.4.4",
                "pipeline": "speaker's Wyoming STT → HA conversation → wyoming-piper",
                "phrase": args.phrase,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
