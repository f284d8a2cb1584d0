"""Open speech with Whisper: faster-whisper (CTranslate2) on the request's whole audio.

Whisper is not a streaming recognizer: it hears a whole request at once. So ``feed`` only
keeps the frames (bounded: the longest request the segmenter lets through, plus the
pre-roll) and ``finish`` transcribes them in one pass. The settings are chosen for a
Raspberry Pi: int8 weights, greedy decoding (beam 1, no temperature fallback, which would
decode the same audio again), no timestamps, English only, and no voice-activity filter of
its own, since the assistant's VAD has already cut the request.

Beside speech-to-phrase (``recognize/hybrid.py``), Whisper hears what speech-to-phrase
rejected, and the commands it heard as a second opinion. It is told beforehand what a
request to the speaker sounds like (``request_prompt``): Whisper takes that as the text
that came before, and spells what it hears in the commands' words where the sound allows.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from firmware_app.core.errors import EngineUnavailableError, ModelMissingError
from firmware_app.core.messages import SAMPLE_RATE

MISSING_MODEL_HELP = "no Whisper model is installed: run 'ttbt5 models pull faster-whisper-tiny.en'"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
QUIET_PEAK = 64
"""A request whose loudest sample stays below this (about -54 dBFS) holds no speech:
Whisper is not asked, because on near-silence it tends to invent a polite sentence."""
MAX_NEW_TOKENS = 160
"""A bound on one transcript's length (a request of a few sentences is 20-60 tokens), so
a decoder caught in a repetition loop cannot hold the assistant for long."""
LOOPING_COMPRESSION = 2.4
"""A transcript that compresses better than this (gzip ratio, Whisper's own test for a
decoder caught in a loop: "roast, roast, roast, ...") is no reading to be sure of."""
EXTRA_SECONDS = 2.0
"""Room for the pre-roll before the request and the frames after its end."""


def is_whisper_dir(path: Path) -> bool:
    """A CTranslate2 Whisper model directory (as ``ttbt5 models pull`` installs it)."""
    return path.is_dir() and all((path / name).is_file() for name in MODEL_FILES)


def check_whisper_dir(path: Path) -> None:
    """Raise ModelMissingError unless ``path`` holds a CTranslate2 Whisper model."""
    if not path.is_dir():
        raise ModelMissingError(f"{MISSING_MODEL_HELP} (looked in {path})")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise ModelMissingError(
            f"{path} is not a Whisper model directory (no {', '.join(missing)}); "
            f"{MISSING_MODEL_HELP}"
        )


def request_prompt(wake_models: Sequence[str] = ()) -> str:
    """What Whisper is told was said before a request: an everyday phrasing of each kind
    of command, the common timer names, then the wake phrase. The audio it hears often
    begins with the wake phrase's end (the pre-roll that catches a request said in one
    breath); told the phrase, Whisper writes that end as the phrase's last word, which the
    assistant drops, instead of a word of the request ("This reminds me in ..."). Measured
    on the speech corpus in docs/speech.md."""
    from firmware_app.recognize.vocabulary_en import COMMON_TIMER_NAMES, REQUEST_EXAMPLES

    names = ", ".join(sorted(COMMON_TIMER_NAMES))
    wake = wake_phrase(wake_models)
    return f"{' '.join(REQUEST_EXAMPLES)} Timers: {names}.{f' {wake},' if wake else ''}"


def wake_phrase(wake_models: Sequence[str]) -> str:
    """The first wake model's phrase as said ("hey_jarvis", "hey_jarvis_v0.1.onnx" ->
    "Hey Jarvis"), when every word of it is one the assistant drops from the start of a
    request; "" otherwise (a custom model's name may say nothing of its phrase)."""
    from firmware_app.understand.actions import strip_wake_words

    if not wake_models:
        return ""
    name = re.sub(r"[_-]v\d[\w.]*$", "", Path(wake_models[0]).stem.lower())  # a version
    phrase = " ".join(word.capitalize() for word in name.replace("-", "_").split("_"))
    return "" if strip_wake_words(phrase) else phrase


def default_threads() -> int:
    """All cores up to four: a Pi 4 and a Pi Zero 2 W have four; more helps little."""
    return max(1, min(4, os.cpu_count() or 1))


class WhisperTranscriber:
    """Buffers a request's frames and transcribes them when it ends."""

    name = "whisper"
    open_speech = True

    def __init__(
        self,
        model_dir: Path,
        max_request_s: float,
        threads: int | None = None,
        prompt: str = "",
    ) -> None:
        """``prompt``: the text Whisper takes as said before each request (``request_prompt``
        for requests; none for a second look at a single word, which it would bend)."""
        check_whisper_dir(model_dir)
        self.prompt = prompt
        # A local directory is all it ever loads: never ask the model hub for anything.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise EngineUnavailableError(
                f"faster-whisper cannot be loaded ({exc}); install it with "
                "pip install 'ttbt5[whisper]'"
            ) from exc
        self.model_dir = model_dir
        try:
            self._model: Any = WhisperModel(
                str(model_dir),
                device="cpu",
                compute_type="int8",
                cpu_threads=threads or default_threads(),
                local_files_only=True,
            )
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError on bad files
            raise ModelMissingError(f"faster-whisper could not load {model_dir}: {exc}") from exc
        self._limit = int((max_request_s + EXTRA_SECONDS) * SAMPLE_RATE) * 2
        self._pcm = bytearray()
        self.finish_ms = 0.0  # time the last ``finish`` took (logs and benchmarks)
        self.logprob: float | None = None
        """How sure Whisper was of its last transcript: the mean log-probability of its
        tokens (0 is certain; None when it heard nothing, or went round in a loop)."""

    def start(self) -> None:
        self._pcm = bytearray()

    def feed(self, pcm: bytes) -> None:
        room = self._limit - len(self._pcm)
        if room > 0:
            self._pcm += pcm[:room]

    def finish(self) -> str:
        started = time.perf_counter()
        pcm, self._pcm = bytes(self._pcm), bytearray()
        audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
        self.logprob = None
        if audio.size == 0 or int(np.abs(audio.astype(np.int32)).max()) < QUIET_PEAK:
            return ""
        text = self.transcribe(audio.astype(np.float32) / 32768.0)
        self.finish_ms = 1000 * (time.perf_counter() - started)
        logger.debug(
            "whisper: {:.1f} s of audio in {:.0f} ms", audio.size / SAMPLE_RATE, self.finish_ms
        )
        return text

    def transcribe(self, samples: np.ndarray) -> str:
        """The text of 16 kHz float samples (empty when Whisper hears no speech); how sure
        Whisper was of it goes to ``logprob``."""
        self.logprob = None
        try:
            found, _ = self._model.transcribe(
                samples,
                language="en",
                beam_size=1,
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
                max_new_tokens=MAX_NEW_TOKENS,
                initial_prompt=self.prompt or None,
            )
            segments = list(found)  # decoded here, as the generator is consumed
        except (RuntimeError, ValueError) as exc:
            logger.error("whisper: transcription failed: {}", exc)
            return ""
        tokens = sum(len(s.tokens) for s in segments)
        if tokens and all(s.compression_ratio <= LOOPING_COMPRESSION for s in segments):
            self.logprob = sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens
        return " ".join(" ".join(s.text for s in segments).split())
