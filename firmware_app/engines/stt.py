"""Speech to text with Vosk, streamed frame by frame.

Frames go to the recognizer as they arrive, so when the speaker stops only the last few
hundred milliseconds are left to decode and the final result is ready at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.errors import EngineUnavailableError, ModelMissingError
from firmware_app.messages import SAMPLE_RATE

MISSING_MODEL_HELP = "no speech model is installed: run 'ttbt5 models pull'"


def check_model_dir(path: Path) -> None:
    """Raise ModelMissingError unless ``path`` looks like a Vosk model directory."""
    if not path.is_dir():
        raise ModelMissingError(f"{MISSING_MODEL_HELP} (looked in {path})")
    if not (path / "am").is_dir() and not (path / "final.mdl").exists():
        raise ModelMissingError(
            f"{path} is not a Vosk model directory (no am/); {MISSING_MODEL_HELP}"
        )


class VoskTranscriber:
    def __init__(self, model_dir: Path) -> None:
        check_model_dir(model_dir)
        try:
            import vosk
        except ImportError as exc:
            raise EngineUnavailableError(f"Vosk cannot be loaded ({exc})") from exc
        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self.model_dir = model_dir
        try:
            self._model = vosk.Model(str(model_dir))
        except Exception as exc:  # vosk raises a bare Exception on a broken model
            raise ModelMissingError(f"Vosk could not load {model_dir}: {exc}") from exc
        self._rec = self._new_recognizer()
        self._fed = False
        self._segments: list[str] = []  # text Vosk already finalized at internal pauses

    def _new_recognizer(self) -> Any:
        rec = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        rec.SetWords(False)
        return rec

    def start(self) -> None:
        if self._fed:
            self._rec.Reset()
        self._fed = False
        self._segments = []

    def feed(self, pcm: bytes) -> None:
        self._fed = True
        if self._rec.AcceptWaveform(pcm):  # Vosk found a pause and finalized a segment
            self._segments.append(self._text(self._rec.Result(), "text"))

    def partial(self) -> str:
        return self._join([*self._segments, self._text(self._rec.PartialResult(), "partial")])

    def finish(self) -> str:
        try:
            last = self._text(self._rec.FinalResult(), "text")
        finally:
            self._fed = False
        text = self._join([*self._segments, last])
        self._segments = []
        return text

    @staticmethod
    def _text(raw: str, key: str) -> str:
        try:
            return str(json.loads(raw).get(key, ""))
        except (ValueError, TypeError, AttributeError) as exc:
            logger.error("stt: unreadable result from Vosk: {}", exc)
            return ""

    @staticmethod
    def _join(parts: list[str]) -> str:
        return " ".join(" ".join(parts).split())
