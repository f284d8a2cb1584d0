"""The speaker as a Home Assistant satellite, all of it real and all of it on one private
loopback: a network namespace of the rig's own holds Home Assistant, Home Assistant's own
Piper (``wyoming-piper``) and the speaker (``ttbt5 run`` on a live-paced ALSA microphone,
with ``[esphome]`` and ``[wyoming]`` enabled). Home Assistant adds the speaker twice, as
it would on a real network: by host and port as an ESPHome device (the satellite) and as
a Wyoming server (its recognizer); its pipeline is the speaker's recognizer, Home
Assistant's own intents, and Piper.

With ``home``, Home Assistant also holds a small home (``ha_home.py``: two lights in two
areas) and starts first, so that the speaker starts with a token and learns the home's
names, as a user sets it up.

Used by tests/test_ha_satellite.py and scripts/bench_ha_satellite.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from audio_helpers import silence, speech
from ha_harness import HomeAssistant, Websocket, WyomingPiper
from ha_home import HOME_YAML, lights_in_areas_and_token
from live_mic import MicFeeder
from netns import Netns

ROOT = Path(__file__).resolve().parents[1]
HA_PORT = 8123
ESPHOME_PORT = 6053
WYOMING_PORT = 10300
PIPER_PORT = 10200
SPEAKER_RATE = 22050  # the speaker plays at its voice's rate
DEVICE_ID = "kitchen"
LEARNED = "of Home Assistant (grammar built in"
"""What the speaker logs once its recognizer holds the home's names."""


@dataclass
class Paths:
    work: Path
    fifo: Path  # the microphone: a FIFO behind the ALSA device ``mic``
    speaker: Path  # what the ALSA device ``speaker`` played, raw 16-bit mono
    mic_device: str
    speaker_device: str


class Device:
    """``ttbt5 run`` inside the namespace."""

    def __init__(self, netns: Netns, paths: Paths, key: str | None) -> None:
        self.netns = netns
        self.paths = paths
        self.events_path = paths.work / "events.jsonl"
        self.log_path = paths.work / "device.log"
        self.key = key
        self.env: dict[str, str] = {}  # more settings, for the next start
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
        env.update(
            {
                "TTBT5_DATA_DIR": str(self.paths.work / "data"),
                "TTBT5_AUDIO__INPUT_DEVICE": self.paths.mic_device,
                "TTBT5_AUDIO__OUTPUT_DEVICE": self.paths.speaker_device,
                "TTBT5_AUDIO__CHIMES": "false",  # only Home Assistant's answer is heard
                "TTBT5_MQTT__DEVICE_ID": DEVICE_ID,
                "TTBT5_ESPHOME__ENABLED": "true",
                "TTBT5_ESPHOME__HOST": "127.0.0.1",
                "TTBT5_ESPHOME__PORT": str(ESPHOME_PORT),
                "TTBT5_WYOMING__ENABLED": "true",
                "TTBT5_WYOMING__HOST": "127.0.0.1",
                "TTBT5_WYOMING__PORT": str(WYOMING_PORT),
                "TTBT5_LOG__EVENTS": str(self.events_path),
                "PYTHONPATH": str(ROOT),
            }
        )
        if self.key:
            env["TTBT5_ESPHOME__ENCRYPTION_KEY"] = self.key
        env.update(self.env)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.netns.command([sys.executable, "-m", "firmware_app", "run"]),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(lambda e: e["type"] == "state", timeout=120, what="the device's start")

    def stop(self) -> int:
        proc, self._proc = self._proc, None
        if proc is None:
            return 0
        proc.terminate()
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip().endswith("}")]

    def wait_for(
        self,
        match: Callable[[dict[str, Any]], bool],
        after: int = 0,
        timeout: float = 30.0,
        what: str = "",
    ) -> dict[str, Any]:
        """The first event from index ``after`` on that ``match``es."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise AssertionError(f"the device exited:\n{self.log_tail()}")
            for event in self.events()[after:]:
                if match(event):
                    return event
            time.sleep(0.05)
        seen = [(e["type"], e.get("stage")) for e in self.events()[after:]]
        raise AssertionError(f"no {what or 'such event'} within {timeout} s; saw {seen}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class Speaker:
    """What the device played, read from an ALSA file device that only grows (each
    opening of the device appends to it), so a byte offset marks a moment: everything
    after it was played after it, however often the device closed and reopened the
    speaker in between."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        return size - size % 2

    def audio_since(self, mark: int) -> np.ndarray:
        with self.path.open("rb") as f:
            f.seek(mark)
            data = f.read()
        return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")

    def settle(self, quiet_s: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until nothing more is written (the device's buffer reached the file)."""
        deadline = time.monotonic() + timeout
        last = self.mark()
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            if (now := self.mark()) == last:
                return
            last = now

    def wait_sound(self, mark: int, timeout: float = 30.0, level: int = 500) -> float:
        """Monotonic time at which audio louder than ``level`` first appeared after
        ``mark`` (polled every 5 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pcm = self.audio_since(mark)
            if pcm.size and int(np.abs(pcm).max()) > level:
                return time.monotonic()
            mark += 2 * pcm.size  # nothing loud yet: look only at what comes next
            time.sleep(0.005)
        raise AssertionError(f"the speaker played nothing within {timeout} s")


class SatelliteRig:
    """Everything started in order; ``close`` stops it all. ``key`` turns encryption on."""

    def __init__(self, paths: Paths, key: str | None = None, home: bool = False) -> None:
        self.paths = paths
        self.key = key
        self.home = home
        self.netns = Netns()
        self.feeder = MicFeeder(paths.fifo)
        self.speaker = Speaker(paths.speaker)
        self.piper = WyomingPiper(PIPER_PORT, paths.work / "piper.log", self.netns)
        self.device = Device(self.netns, paths, key)
        self.ha = HomeAssistant(
            paths.work / "ha", HA_PORT, netns=self.netns, extra_yaml=HOME_YAML if home else ""
        )
        self.wyoming_port = self.netns.forward(WYOMING_PORT)  # the device's, for the test
        self.ws: Websocket | None = None
        self.satellite = ""
        self.pipeline = ""

    def start(self) -> None:
        if self.home:
            self.ha.start()
            self.ha.onboard()
            self.ws = self.ha.websocket()
            token = self.paths.work / "ha.token"
            token.write_text(lights_in_areas_and_token(self.ha, self.ws) + "\n")
            token.chmod(0o600)
            self.device.env.update(
                {
                    "TTBT5_WYOMING__HOMEASSISTANT_URL": f"http://127.0.0.1:{HA_PORT}",
                    "TTBT5_WYOMING__HOMEASSISTANT_TOKEN_FILE": str(token),
                }
            )
            self.device.start()
            self._wait_learned()
        else:
            self.device.start()
            self.ha.start()
            self.ha.onboard()
            self.ws = self.ha.websocket()
        self.add_integrations()

    def _wait_learned(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while LEARNED not in self.device.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                tail = self.device.log_tail()
                raise AssertionError(f"the speaker did not learn the home's names:\n{tail}")
            time.sleep(0.2)

    def add_integrations(self) -> None:
        steps: list[dict[str, Any]] = [{"host": "127.0.0.1", "port": ESPHOME_PORT}]
        if self.key:
            steps.append({"noise_psk": self.key})
        result = self.ha.config_flow("esphome", *steps)
        assert result["type"] == "create_entry", result
        self.add_integrations_without_esphome()

    def add_integrations_without_esphome(self) -> None:
        """The two Wyoming servers and the pipeline (the satellite already added)."""
        ha, ws = self.ha, self.websocket
        for port in (WYOMING_PORT, PIPER_PORT):
            result = ha.config_flow("wyoming", {"host": "127.0.0.1", "port": port})
            assert result["type"] == "create_entry", result
        wyoming = [e["entity_id"] for e in ha.entities(ws, "wyoming")]
        stt = next(e for e in wyoming if e.startswith("stt."))
        # Home Assistant's own Piper (the speaker offers a voice too: the other tts entity)
        voices = [e for e in wyoming if e.startswith("tts.")]
        tts = next((e for e in voices if "piper" in e), voices[0])
        created = ws.command(
            "assist_pipeline/pipeline/create",
            name="The speaker's ears, Home Assistant's brain, Piper",
            language="en",
            conversation_engine="conversation.home_assistant",
            conversation_language="en",
            stt_engine=stt,
            stt_language="en",
            tts_engine=tts,
            tts_language="en_US",
            tts_voice="en_US-joe-medium",
            wake_word_entity=None,
            wake_word_id=None,
        )
        self.pipeline = str(created["id"])
        ws.command("assist_pipeline/pipeline/set_preferred", pipeline_id=self.pipeline)
        self.satellite = self.wait_satellite()

    def wait_satellite(self, timeout: float = 60.0) -> str:
        """The satellite entity's id, once Home Assistant shows it available."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = [
                e["entity_id"]
                for e in self.ha.entities(self.websocket, "esphome")
                if e["entity_id"].startswith("assist_satellite.")
            ]
            if ids and self.ha.state(ids[0])["state"] not in ("unavailable", "unknown"):
                return ids[0]
            time.sleep(0.5)
        raise AssertionError(f"no available satellite:\n{self.ha.log_tail()}")

    @property
    def websocket(self) -> Websocket:
        assert self.ws is not None
        return self.ws

    def say(self, pcm: np.ndarray) -> tuple[int, int]:
        """Speak into the microphone; returns (event index, speaker mark) before it."""
        at = (len(self.device.events()), self.speaker.mark())
        self.feeder.speak(pcm)
        return at

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        self.ha.stop()
        self.device.stop()
        self.piper.close()
        self.feeder.close()
        self.netns.close()


def request(text: str) -> np.ndarray:
    """The wake word, a breath, the request, and the room's silence after it."""
    return np.concatenate([speech("Hey Jarvis."), silence(0.6), speech(text), silence(2.0)])


def satellite_stage(stage: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == "satellite" and e.get("stage") == stage
