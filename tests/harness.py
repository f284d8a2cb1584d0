"""What every test of a running assistant shares: waiting for a condition, the order of
events in one spoken turn, and the appliance itself (``ttbt5 run``) started as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parent.parent

TURN_ORDER = (
    "wake",
    "listening",
    "speech_start",
    "speech_end",
    "transcript",
    "intent",
    "reply",
    "speak_start",
    "speak_end",
)
"""The events of one spoken request answered by a local intent, in the order they happen."""


def wait_until(check: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.01)


def turn_events(types: Iterable[str]) -> list[str]:
    """The turn's events among ``types``, in the order they came."""
    return [t for t in types if t in TURN_ORDER]


@dataclass
class RunningService:
    """A ``ttbt5 run`` process on the ALSA file devices, its control socket in
    ``runtime_dir``; ``env`` is its environment, for the command lines that talk to it."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    runtime_dir: Path

    @property
    def socket(self) -> Path:
        from firmware_app.app import control

        return self.runtime_dir / control.SOCKET_NAME

    def wait_serving(self, what: str = "the service's socket") -> None:
        """Until the control socket is there (the models are loaded first)."""
        wait_until(self.socket.exists, timeout=90, what=what)

    def ttbt5(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Another ``ttbt5`` command line, as a user on the device runs it."""
        return subprocess.run(
            [sys.executable, "-m", "firmware_app", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> str:
        """SIGTERM, as systemd stops it; waits for the exit and returns its stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return err


def start_service(tmp_path: Path, env: Mapping[str, str] | None = None) -> RunningService:
    """``ttbt5 run`` with its runtime directory (``tmp_path/run``) and data under
    ``tmp_path``, the microphone ``testmic`` and the speaker ``testspeaker`` (the
    ``alsa_files`` fixture), plus ``env``; no ``TTBT5_`` setting of the caller's leaks in."""
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    environ |= {
        "RUNTIME_DIRECTORY": str(runtime_dir),
        "TTBT5_DATA_DIR": str(tmp_path / "data"),
        "TTBT5_AUDIO__INPUT_DEVICE": "testmic",
        "TTBT5_AUDIO__OUTPUT_DEVICE": "testspeaker",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_app", "run"],
        env=environ,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return RunningService(proc, environ, runtime_dir)
