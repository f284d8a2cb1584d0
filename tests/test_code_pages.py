"""Code that only start-up ran is let go of on the Zero profile, and nothing is lost: what
runs again is mapped back and computes the same."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from audio_helpers import conversation, write

from firmware_app.system.code_pages import loading_code, mappings

ROOT = Path(__file__).resolve().parent.parent
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")

SMAPS = """\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 11 /usr/bin/python3.13
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw sd
7f0000000000-7f0000400000 r-xp 00010000 08:01 12 /opt/lib/libonnxruntime.so.1.32.0
Rss:                2048 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
7f0000400000-7f0000410000 r--p 00410000 08:01 12 /opt/lib/libonnxruntime.so.1.32.0
Rss:                  64 kB
Anonymous:            64 kB
VmFlags: rd mr mw me ac sd
7f0000410000-7f0000411000 rw-p 00420000 08:01 12 /opt/lib/libonnxruntime.so.1.32.0
Rss:                   4 kB
Anonymous:             4 kB
7f0000500000-7f0000600000 r--p 00000000 08:01 13 /opt/models/voice.onnx
Rss:                1024 kB
Anonymous:             0 kB
7f0000600000-7f0000700000 r-xp 00000000 08:01 14 /opt/my libs/_core.cpython-313-aarch64-linux-gnu.so
Rss:                 512 kB
Anonymous:             0 kB
7f0000700000-7f0000800000 rw-p 00000000 00:00 0
Rss:                1024 kB
Anonymous:          1024 kB
7f0000800000-7f0000801000 ---p 00000000 08:01 15 /opt/lib/libz.so.1
Rss:                   0 kB
Anonymous:             0 kB
"""


def test_only_unwritten_read_only_code_of_libraries_and_the_interpreter_is_chosen() -> None:
    found = mappings(SMAPS)
    assert len(found) == 8
    assert found[2].written_kb == 64  # relocated data: read-only now, written at load
    assert found[5].path == "/opt/my libs/_core.cpython-313-aarch64-linux-gnu.so"
    chosen = [(m.perms, m.path) for m in loading_code(found, "/usr/bin/python3.13")]
    assert chosen == [
        ("r--p", "/usr/bin/python3.13"),
        ("r-xp", "/opt/lib/libonnxruntime.so.1.32.0"),
        ("r-xp", "/opt/my libs/_core.cpython-313-aarch64-linux-gnu.so"),
    ]


CHILD = r"""
import hashlib, json
import numpy as np
import onnxruntime
from firmware_app.speak.piper import default_voice
from firmware_app.system.code_pages import release_loading_code, resident_file_bytes

options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.use_deterministic_compute = True
session = onnxruntime.InferenceSession(str(default_voice()), options)
ids = np.array([[1, 0, 20, 0, 31, 0, 59, 0, 120, 0, 25, 0, 2]], dtype=np.int64)
feed = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
        "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32)}  # no noise: repeatable

def speak():
    return hashlib.sha256(session.run(None, feed)[0].tobytes()).hexdigest()

first = speak()
before = resident_file_bytes()
released = release_loading_code()
after = resident_file_bytes()
print(json.dumps({"before": before, "released": released, "after": after,
                  "same": speak() == first}))
"""


@LINUX
def test_released_code_runs_again_the_same() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    got = json.loads(out.stdout)
    assert got["released"] > 8 * 2**20  # ONNX Runtime's loading code at least
    assert got["after"] < got["before"]
    assert got["same"]  # the voice's code, mapped back, makes the very same samples


VOICE = r"""
import json, sys, tempfile
from pathlib import Path
from firmware_app.app.loading import load_engines
from firmware_app.config.settings import Settings
from firmware_app.system import code_pages

if sys.argv[1] == "keep":  # the control: the same profile with its loading code kept
    code_pages.release_loading_code = lambda: 0
settings = Settings(profile="zero", data_dir=Path(tempfile.mkdtemp()))
engines = load_engines(settings, microphone=False, steady=True)
file_mb = code_pages.resident_file_bytes() / 2**20
audio = b"".join(engines.tts.synthesize("Timer set for five minutes."))
print(json.dumps({"file_mb": file_mb, "seconds": len(audio) / 2 / engines.tts.sample_rate}))
"""


@LINUX
def test_the_zero_profile_lets_go_of_loading_code_and_still_speaks() -> None:
    """Loaded on the Zero profile, the process holds far less library code than with that
    code kept, and the voice still speaks (steady: the same text lasts exactly as long)."""

    def load(how: str) -> dict[str, float]:
        out = subprocess.run(
            [sys.executable, "-c", VOICE, how],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    released, kept = load("release"), load("keep")
    assert released["seconds"] > 1.0
    assert released["seconds"] == kept["seconds"]
    assert released["file_mb"] < kept["file_mb"] - 10


@LINUX
def test_a_whole_conversation_on_the_zero_profile_after_its_loading_code_is_let_go_of(
    tmp_path: Path,
) -> None:
    """Every engine runs on code mapped back after loading: the wake word, the voice
    detector, speech-to-phrase and the voice answer two requests, as ``ttbt5 simulate``."""
    wav = write(
        tmp_path / "in.wav",
        conversation(
            1.0,
            "Hey Jarvis.",
            0.6,
            "What time is it?",
            3.0,
            "Hey Jarvis.",
            0.6,
            "Set a timer for five minutes.",
            3.0,
        ),
    )
    events = tmp_path / "events.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware_app",
            "simulate",
            str(wav),
            "--events",
            str(events),
            "--debug",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TTBT5_PROFILE": "zero",
            "TTBT5_DATA_DIR": str(tmp_path / "data"),
        },
    )
    assert re.search(r"code that only loading ran: [1-9][0-9]* MB let go of", done.stderr)
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    intents = [e["name"] for e in seen if e["type"] == "intent"]
    assert sum(e["type"] == "wake" for e in seen) == 2
    assert intents == ["time", "timer_set"]
    assert sum(e["type"] == "speak_end" for e in seen) == 2
