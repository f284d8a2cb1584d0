"""The Whisper adapter (faster-whisper, CTranslate2) with a real tiny.en model and real
speech (the Piper test voice): silence, a sentence, the buffer bound, the choice of
recognizer from the config, ``transcribe`` and ``check`` on it, and ``models pull``
fetching the model file by file from a server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from audio_helpers import conversation, silence, speech, write
from test_cli import ttbt5

from firmware_app.config.settings import Settings
from firmware_app.core.messages import FRAME_SAMPLES
from firmware_app.recognize.hybrid import HybridTranscriber
from firmware_app.recognize.models import KNOWN_MODELS, MANIFEST
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.recognize.stt import (
    load_transcriber,
    open_speech_installed,
    phrase_grammar_sources,
)
from firmware_app.recognize.whisper import WhisperTranscriber, request_prompt, wake_phrase
from firmware_app.understand.actions import strip_wake_words
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def whisper(whisper_model_dir: Path) -> WhisperTranscriber:
    return WhisperTranscriber(whisper_model_dir, max_request_s=15.0)


def hear(stt, samples: np.ndarray) -> str:
    """Stream ``samples`` frame by frame, as the assistant does, and finish."""
    stt.start()
    data = samples.astype("<i2").tobytes()
    for start in range(0, len(data), FRAME_SAMPLES * 2):
        stt.feed(data[start : start + FRAME_SAMPLES * 2])
    return str(stt.finish())


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference).split(), normalize(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def test_silence_gives_empty_text(whisper):
    assert hear(whisper, silence(2.0)) == ""
    hiss = np.random.default_rng(3).normal(0, 30, 32000).astype(np.int16)  # a quiet room
    assert hear(whisper, hiss) == ""
    assert whisper.finish() == ""  # finish with nothing fed


@pytest.mark.parametrize(
    "sentence",
    [
        "Why is the sky blue?",
        "Who was the first president of France?",
        "How far away is the moon?",
        "Tell me a joke about penguins.",
    ],
)
def test_a_spoken_sentence_is_transcribed(whisper, sentence):
    text = hear(whisper, conversation(0.3, sentence, 0.5))
    assert word_error_rate(sentence, text) <= 0.2, text


def test_a_request_longer_than_the_bound_keeps_only_its_start(whisper_model_dir):
    short = WhisperTranscriber(whisper_model_dir, max_request_s=2.0)
    text = hear(short, conversation("Why is the sky blue?", 6.0, "Tell me a joke about penguins."))
    assert "sky" in normalize(text) and "penguins" not in normalize(text), text


def test_a_broken_model_is_one_clear_error(tmp_path):
    from firmware_app.core.errors import ModelMissingError

    for name in ("model.bin", "config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(ModelMissingError, match="could not load"):
        WhisperTranscriber(tmp_path, 10.0)
    with pytest.raises(ModelMissingError, match=r"models pull faster-whisper-tiny\.en"):
        WhisperTranscriber(tmp_path / "nowhere", 10.0)


def test_engine_choice(tmp_path, whisper_model_dir):
    alone = Settings(data_dir=tmp_path, stt={"engine": "whisper", "model": whisper_model_dir})
    stt, problem, active = load_transcriber(alone)
    assert isinstance(stt, WhisperTranscriber) and problem is None
    assert active == f"whisper ({whisper_model_dir})"
    missing = Settings(data_dir=tmp_path, stt={"engine": "whisper"})
    stt, problem, active = load_transcriber(missing)
    assert stt is None and "models pull faster-whisper-tiny.en" in (problem or "")
    beside = Settings(data_dir=tmp_path, stt={"model": whisper_model_dir})
    stt, _, active = load_transcriber(beside)
    assert isinstance(stt, HybridTranscriber) and isinstance(stt.vosk, WhisperTranscriber)
    assert active.startswith("speech-to-phrase + whisper")
    assert stt.vosk.prompt == request_prompt(["hey_jarvis"])  # told what requests sound like
    # what typed requests are answered by (nothing loaded)
    assert open_speech_installed(alone) and open_speech_installed(beside)
    assert not open_speech_installed(missing)
    assert not open_speech_installed(Settings(data_dir=tmp_path))
    phrases_only = Settings(
        data_dir=tmp_path, stt={"engine": "phrases", "model": whisper_model_dir}
    )
    assert not open_speech_installed(phrases_only)
    # auto finds a Whisper model where `models pull` installs it
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "faster-whisper-tiny.en").symlink_to(whisper_model_dir)
    stt, _, active = load_transcriber(Settings(data_dir=tmp_path))
    assert isinstance(stt, HybridTranscriber) and active.startswith("speech-to-phrase + whisper")


def test_the_prompt_holds_the_commands_the_timer_names_and_the_wake_phrase():
    prompt = request_prompt(["hey_jarvis"])
    assert prompt.startswith("What time is it? ") and "Cancel the timer." in prompt
    assert "pasta, " in prompt and prompt.endswith(" Hey Jarvis,")
    assert wake_phrase(["okay_nabu", "hey_jarvis"]) == "Okay Nabu"  # the first model's
    assert wake_phrase(["alexa"]) == "Alexa"
    assert wake_phrase(["/models/hey_jarvis_v0.1.onnx"]) == "Hey Jarvis"  # a file of it
    # a custom model's name may say nothing of its phrase: none is made up
    assert wake_phrase(["/models/hey_computer_v2.onnx"]) == ""
    assert request_prompt([]).endswith("workout.")


WAKE_END_S = 0.35
"""How much of the wake phrase the pre-roll may hold before a request said in one breath."""


@pytest.fixture(scope="module")
def told(whisper_model_dir: Path) -> WhisperTranscriber:
    return WhisperTranscriber(whisper_model_dir, 15.0, prompt=request_prompt(["hey_jarvis"]))


@pytest.mark.parametrize(
    ("said", "intent", "slots"),
    [
        ("Set a pasta timer for ten minutes.", "timer_set", {"seconds": 600, "name": "pasta"}),
        ("Set a timer for forty five seconds called tea.", "timer_set", {"name": "tea"}),
        ("Cancel the laundry timer.", "timer_cancel", {"name": "laundry"}),
    ],
)
def test_told_what_came_before_whisper_hears_the_command_after_the_wake_phrase(
    told, said, intent, slots
):
    """The audio begins with the wake phrase's end; Whisper, told the phrase and the kind
    of requests there are, writes the request in the commands' words ("cancel", not
    "cancelled"; "tea", not "T")."""
    audio = np.concatenate([speech("Hey Jarvis.")[-int(WAKE_END_S * 16000) :], silence(0.2)])
    heard = hear(told, np.concatenate([audio, speech(said), silence(0.5)]))
    command = recognize_builtin(normalize(strip_wake_words(heard)))
    assert command is not None and command.name == intent, heard
    assert {key: command.slots.get(key) for key in slots} == slots, heard


@pytest.mark.parametrize("said", ["Why is the sky blue?", "How far away is the moon?"])
def test_told_what_came_before_whisper_still_hears_a_question_as_said(told, said):
    audio = np.concatenate([speech("Hey Jarvis.")[-int(WAKE_END_S * 16000) :], silence(0.2)])
    heard = strip_wake_words(hear(told, np.concatenate([audio, speech(said), silence(0.5)])))
    assert word_error_rate(said, heard) <= 0.2 and recognize_builtin(normalize(heard)) is None


def test_hybrid_takes_commands_from_phrases_and_questions_from_whisper(tmp_path, whisper):
    phrases = PhraseTranscriber(phrase_grammar_sources(Settings(data_dir=tmp_path)))
    both = HybridTranscriber(phrases, whisper)
    whisper.finish_ms = 0.0
    assert hear(both, conversation(0.3, "What time is it?", 0.5)) == "what time is it"
    assert both.source == "phrases" and whisper.finish_ms == 0.0  # Whisper was not asked
    question = hear(both, conversation(0.3, "Why is the sky blue?", 0.5))
    assert both.source == "whisper" and word_error_rate("why is the sky blue", question) == 0


def test_transcribe_and_check_with_whisper(tmp_path, whisper_model_dir):
    env = {
        "TTBT5_DATA_DIR": str(tmp_path / "data"),
        "TTBT5_STT__ENGINE": "whisper",
        "TTBT5_STT__MODEL": str(whisper_model_dir),
    }
    wav = write(tmp_path / "q.wav", conversation(0.3, "Why is the sky blue?", 0.5))
    result = ttbt5("transcribe", str(wav), env=env)
    assert result.returncode == 0, result.stderr
    assert word_error_rate("why is the sky blue", result.stdout) == 0, result.stdout
    check = ttbt5("check", env=env).stdout.splitlines()
    assert f"ok   speech recognition: whisper ({whisper_model_dir}) (stt.engine = whisper)" in check
    assert [line for line in check if "speech" in line][1:] == []  # one line about recognition
    missing = ttbt5("check", env={**env, "TTBT5_STT__MODEL": str(tmp_path / "none")})
    assert missing.returncode == 1
    assert any(
        line.startswith("FAIL speech recognition") and "faster-whisper-tiny.en" in line
        for line in missing.stdout.splitlines()
    )


# --- models pull, from a server on 127.0.0.1 serving the test model's files --------------


class _ModelFiles(http.server.BaseHTTPRequestHandler):
    """Serves the files of ``root`` under /m/; the first request for ``cut`` is cut
    halfway; ``bad`` files are served with their bytes changed. Records each request."""

    root = Path()
    cut = ""
    bad: ClassVar[set[str]] = set()
    requests: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        cls = type(self)
        name = self.path.removeprefix("/m/")
        rng = self.headers.get("Range", "")
        cls.requests.append((name, rng))
        path = cls.root / name
        if "/" in name or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if name in cls.bad:
            body = body[:-1] + bytes([body[-1] ^ 1])
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        data = body[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if name == cls.cut:
            cls.cut = ""
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def model_server(whisper_model_dir) -> Iterator[str]:
    _ModelFiles.root, _ModelFiles.cut = whisper_model_dir, "model.bin"
    _ModelFiles.bad, _ModelFiles.requests = set(), []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ModelFiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/m/"
    server.shutdown()
    server.server_close()


def test_the_pinned_hashes_are_the_test_models(whisper_model_dir):
    """The packaged test model is the official one: the pins describe what tests use."""
    for name, digest in KNOWN_MODELS["faster-whisper-tiny.en"].files:
        assert hashlib.sha256((whisper_model_dir / name).read_bytes()).hexdigest() == digest


def test_models_pull_whisper_resumes_checks_every_file_and_installs_atomically(
    tmp_path, model_server, whisper_model_dir
):
    env = {"TTBT5_DATA_DIR": str(tmp_path / "data"), "TTBT5_STT__ENGINE": "whisper"}
    models = tmp_path / "data" / "models"
    _ModelFiles.bad = {"vocabulary.txt"}  # a mirror with one changed file: refused
    bad = ttbt5("models", "pull", "faster-whisper-tiny.en", "--url", model_server, env=env)
    assert bad.returncode == 1 and "checksum mismatch" in bad.stderr
    assert not (models / "faster-whisper-tiny.en").exists()  # nothing half installed
    assert ("model.bin", "") in _ModelFiles.requests
    assert any(n == "model.bin" and r.startswith("bytes=") for n, r in _ModelFiles.requests)

    _ModelFiles.bad, _ModelFiles.requests = set(), []
    good = ttbt5("models", "pull", "faster-whisper-tiny.en", "--url", model_server, env=env)
    assert good.returncode == 0, good.stderr
    # the files the failed pull had verified are not fetched again
    assert [n for n, _ in _ModelFiles.requests] == ["vocabulary.txt"]
    model = models / "faster-whisper-tiny.en"
    for name, digest in KNOWN_MODELS["faster-whisper-tiny.en"].files:
        assert hashlib.sha256((model / name).read_bytes()).hexdigest() == digest
    assert (model / MANIFEST).is_file()
    assert [p.name for p in models.iterdir() if p.name.startswith(".")] == []
    assert "faster-whisper-tiny.en (active)" in ttbt5("models", "list", env=env).stdout
    assert ttbt5("models", "verify", env=env).returncode == 0
    wav = write(tmp_path / "q.wav", conversation(0.3, "Why is the sky blue?", 0.5))
    heard = ttbt5("transcribe", str(wav), env=env)  # the default directory, found by itself
    assert heard.returncode == 0 and "sky" in heard.stdout.lower(), heard.stderr


def test_models_pull_from_a_copied_directory(tmp_path, whisper_model_dir):
    env = {"TTBT5_DATA_DIR": str(tmp_path / "data")}
    result = ttbt5(
        "models", "pull", "faster-whisper-tiny.en", "--from", str(whisper_model_dir), env=env
    )
    assert result.returncode == 0, result.stderr
    model = tmp_path / "data" / "models" / "faster-whisper-tiny.en"
    assert (model / "model.bin").read_bytes() == (whisper_model_dir / "model.bin").read_bytes()
    assert ttbt5("models", "verify", env=env).returncode == 0
