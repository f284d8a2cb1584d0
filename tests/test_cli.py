"""The ``ttbt5`` command as a user runs it (a subprocess per call), and model installs."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from audio_helpers import conversation, write

from firmware_app.audio.wavio import read_wav
from firmware_app.config.reference import reference_markdown
from firmware_app.core.events import read_events

ROOT = Path(__file__).resolve().parent.parent


def ttbt5(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "firmware_app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


@pytest.fixture
def env(tmp_path):
    return {"TTBT5_DATA_DIR": str(tmp_path / "data"), "XDG_DATA_HOME": str(tmp_path / "xdg")}


def test_config_validate_accepts_the_defaults_and_a_good_file(tmp_path, env):
    assert ttbt5("config", "validate", env=env).returncode == 0
    good = tmp_path / "good.toml"
    good.write_text("[vad]\nsilence_ms = 700\n[wake]\nmodels = ['alexa']\n")
    result = ttbt5("config", "validate", "--config", str(good), env=env)
    assert result.returncode == 0 and "config ok" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[vad]\nsilence_ms = 'soon'\n", "vad.silence_ms"),
        ("[wake]\nthreshold = 2\n", "wake.threshold"),
        ("[audoi]\nvolume = 3\n", "audoi"),
        ("[vad\n", "not valid TOML"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path, env, text, expected):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    for command in (["config", "validate"], ["run"], ["simulate", "x.wav"]):
        result = ttbt5(*command, "--config", str(bad), env=env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("ttbt5: error:")


def test_bad_environment_override_exits_2(env):
    result = ttbt5("config", "validate", env={**env, "TTBT5_AUDIO__VOLUME": "loud"})
    assert result.returncode == 2 and "audio.volume" in result.stderr


def test_config_show_masks_secrets(tmp_path, env):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[mqtt]\nhost = 'broker.lan'\npassword = 'hunter2'\n[llm]\napi_key = 'sk-42'\n")
    result = ttbt5("config", "show", "--config", str(cfg), env=env)
    assert result.returncode == 0
    assert "hunter2" not in result.stdout and "sk-42" not in result.stdout
    assert 'host = "broker.lan"' in result.stdout


def test_configuration_reference_is_up_to_date():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == reference_markdown(), "run: python scripts/config_doc.py"


def test_ask_replies_prints_speaks_and_timers_persist_between_runs(tmp_path, env):
    out, events = tmp_path / "reply.wav", tmp_path / "ev.jsonl"
    result = ttbt5(
        "ask",
        "set a pasta timer for ten minutes",
        "--output",
        str(out),
        "--events",
        str(events),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Pasta timer set for 10 minutes."
    audio = read_wav(out, 22050)
    assert len(audio) > 22050 * 1.0 and np.abs(audio).max() > 1000
    types = [e["type"] for e in read_events(events)]
    assert [
        t for t in types if t in ("transcript", "intent", "reply", "speak_start", "speak_end")
    ] == ["transcript", "intent", "reply", "speak_start", "speak_end"]
    again = ttbt5("ask", "how long is left on the pasta timer", "--quiet", env=env)
    assert again.returncode == 0
    assert "left on your pasta timer" in again.stdout


def test_say_writes_a_wav(tmp_path, env):
    out = tmp_path / "say.wav"
    result = ttbt5("say", "Dinner", "is", "ready.", "--output", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert len(read_wav(out, 22050)) > 22050 * 0.5


def test_simulate_command_end_to_end_without_a_speech_model(tmp_path, env):
    """No Vosk model: the bundled speech-to-phrase recognizer answers the command; with
    ``stt.engine = vosk`` and no model, the reply says how to install one."""
    wav = write(tmp_path / "in.wav", conversation(1.0, "Hey Jarvis, what time is it?", 2.0))
    out, events = tmp_path / "out.wav", tmp_path / "ev.jsonl"
    result = ttbt5("simulate", str(wav), "--output", str(out), "--events", str(events), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("It's ")  # the reply, also printed
    got = read_events(events)
    assert [e["name"] for e in got if e["type"] == "intent"] == ["time"]
    assert "speak_end" in [e["type"] for e in got]
    assert out.exists()
    vosk = ttbt5("simulate", str(wav), env={**env, "TTBT5_STT__ENGINE": "vosk"})
    assert vosk.returncode == 0 and "ttbt5 models pull" in vosk.stdout


def test_simulate_missing_input_is_one_line(tmp_path, env):
    result = ttbt5("simulate", str(tmp_path / "nope.wav"), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"ttbt5: error: {tmp_path / 'nope.wav'}: no such file"
    ]


def test_transcribe_with_the_real_vosk_adapter(tmp_path, env, ko_model_dir):
    wav = write(tmp_path / "t.wav", conversation(0.3, "Hello there, how are you?", 0.5))
    result = ttbt5("transcribe", str(wav), env={**env, "TTBT5_STT__MODEL": str(ko_model_dir)})
    assert result.returncode == 0 and result.stdout.strip() != ""
    missing = ttbt5("transcribe", str(wav), env=env)
    assert missing.returncode == 1 and "ttbt5 models pull" in missing.stderr


def test_check_reports_the_missing_speech_model(env):
    result = ttbt5("check", env=env)
    lines = result.stdout.splitlines()
    # one line about recognition: commands work, `models pull` adds open speech
    speech = [line for line in lines if "speech" in line.split(":")[0]]
    assert len(speech) == 1, lines
    assert speech[0].startswith("ok   speech recognition") and "models pull" in speech[0]
    assert any(line.startswith("ok   wake word models") for line in lines)
    assert any(line.startswith("ok   voice (TTS)") for line in lines)
    assert result.returncode == 0


def test_check_fails_without_a_speech_recognizer(env):
    result = ttbt5("check", env={**env, "TTBT5_STT__ENGINE": "vosk"})  # and no Vosk model
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("FAIL speech recognition") and "models pull" in line for line in lines
    )
    assert result.returncode == 1


def test_config_validate_and_run_name_the_key_of_a_missing_file(tmp_path, env):
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[llm]\nurl = "https://h/v1"\ntls_ca = "{tmp_path}/ca.pem"\n')
    result = ttbt5("config", "validate", "--config", str(bad), env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ttbt5: error: llm.tls_ca: {tmp_path}/ca.pem does not exist"
    run = ttbt5("run", "--config", str(bad), env=env)
    assert run.returncode == 2
    assert run.stderr.strip() == f"ttbt5: error: llm.tls_ca: {tmp_path}/ca.pem does not exist"


def fake_model_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("vosk-model-small-en-us-0.15/am/final.mdl", b"acoustic model" * 1000)
        zf.writestr("vosk-model-small-en-us-0.15/conf/model.conf", b"--sample-frequency=16000\n")
        zf.writestr("vosk-model-small-en-us-0.15/graph/HCLr.fst", os.urandom(50_000))
    return path


def test_models_pull_from_archive_list_and_verify(tmp_path, env):
    archive = fake_model_zip(tmp_path / "model.zip")
    result = ttbt5("models", "pull", "--from", str(archive), env=env)
    assert result.returncode == 0, result.stderr
    model = tmp_path / "data" / "models" / "vosk-model-small-en-us-0.15"
    assert (model / "am" / "final.mdl").is_file()
    listing = ttbt5("models", "list", env=env)
    assert "vosk-model-small-en-us-0.15 (active)" in listing.stdout
    assert ttbt5("models", "verify", env=env).returncode == 0
    (model / "am" / "final.mdl").write_bytes(b"tampered")
    bad = ttbt5("models", "verify", env=env)
    assert bad.returncode == 1 and "am/final.mdl: changed" in bad.stdout


def test_models_pull_refuses_hostile_archives(tmp_path, env):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", b"x")
    result = ttbt5("models", "pull", "--from", str(evil), env=env)
    assert result.returncode == 1 and "escape" in result.stderr
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "data" / "models" / "vosk-model-small-en-us-0.15").exists()


class _FlakyModelServer(http.server.BaseHTTPRequestHandler):
    """Serves one file; the first request is cut halfway, later ones honour Range."""

    body = b""
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        cls = type(self)
        cls.requests.append(self.headers.get("Range", ""))
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
        data = cls.body[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if len(cls.requests) == 1:
            self.wfile.write(data[: len(data) // 2])  # then drop the connection
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_download_resumes_after_a_cut_and_checks_the_hash(tmp_path):
    from firmware_app.recognize.models import DownloadError, download

    body = os.urandom(300_000)
    _FlakyModelServer.body, _FlakyModelServer.requests = body, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyModelServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/model.zip"
    try:
        got = download(url, tmp_path / "m.zip", hashlib.sha256(body).hexdigest(), progress=False)
        assert got.read_bytes() == body
        assert _FlakyModelServer.requests[0] == "" and _FlakyModelServer.requests[1].startswith(
            "bytes="
        )
        with pytest.raises(DownloadError, match="checksum"):
            download(url, tmp_path / "m2.zip", "0" * 64, attempts=2, progress=False)
        assert not (tmp_path / "m2.zip").exists() and not (tmp_path / "m2.zip.part").exists()
    finally:
        server.shutdown()


def test_pull_installs_atomically_from_a_url(tmp_path, env):
    archive = fake_model_zip(tmp_path / "model.zip")
    body = archive.read_bytes()
    _FlakyModelServer.body, _FlakyModelServer.requests = body, ["primed"]  # no cut
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyModelServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/model.zip"
    try:
        result = ttbt5(
            "models",
            "pull",
            "my-model",
            "--url",
            url,
            "--sha256",
            hashlib.sha256(body).hexdigest(),
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "data" / "models" / "my-model" / "am" / "final.mdl").is_file()
        leftovers = [
            p.name for p in (tmp_path / "data" / "models").iterdir() if p.name.startswith(".")
        ]
        assert leftovers == []
    finally:
        server.shutdown()


def test_run_on_alsa_file_devices_speaks_and_stops_on_sigterm(tmp_path, env, alsa_files):
    """The appliance itself, on real ALSA (file plugin): no speech model installed, so the
    bundled speech-to-phrase recognizer answers; SIGTERM ends it cleanly."""
    mic, speaker = alsa_files
    audio = conversation(1.0, "Hey Jarvis, what time is it?", 3.0)
    mic.write_bytes(audio.tobytes())
    events = tmp_path / "run.jsonl"
    run_env = {
        **env,
        "ALSA_CONFIG_PATH": os.environ["ALSA_CONFIG_PATH"],
        "TTBT5_AUDIO__INPUT_DEVICE": "testmic",
        "TTBT5_AUDIO__OUTPUT_DEVICE": "testspeaker",
        "TTBT5_LOG__EVENTS": str(events),
    }
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_app", "run"],
        env={**full_env, **run_env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if events.exists() and any(e["type"] == "speak_end" for e in read_events(events)):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    got = read_events(events)
    types = [e["type"] for e in got]
    assert "wake" in types and "speak_end" in types, err
    reply = next(e for e in got if e["type"] == "reply")
    assert reply["text"].startswith("It's ") and reply["source"] == "local"
    played = np.frombuffer(speaker.read_bytes(), dtype=np.int16)
    assert len(played) > 22050 and np.abs(played).max() > 1000
    json.dumps(got)
