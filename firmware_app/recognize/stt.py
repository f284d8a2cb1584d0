"""Speech to text: Vosk streamed frame by frame, and the choice of recognizer.

Frames go to the recognizer as they arrive, so when the speaker stops only the last few
hundred milliseconds are left to decode and the final result is ready at once.
``load_transcriber`` picks speech-to-phrase (``recognize/phrases.py``), Vosk, or both, from
``stt.engine`` and what is installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from firmware_app.core.errors import EngineUnavailableError, ModelMissingError
from firmware_app.core.messages import SAMPLE_RATE

if TYPE_CHECKING:
    from firmware_app.config.settings import Settings
    from firmware_app.core.engines import Transcriber
    from firmware_app.recognize.grammar import Grammar

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


def phrase_grammar_sources(settings: Settings) -> Callable[[Iterable[str]], Grammar]:
    """What the speech-to-phrase grammar is built from: the built-in sentences, the
    answers to "Which one?", the custom sentences in config, and timer names."""
    from firmware_app.recognize.grammar import build_grammar
    from firmware_app.recognize.pronunciations import pronunciations
    from firmware_app.understand.intents.builtin import BUILTIN, FOLLOWUP
    from firmware_app.understand.intents.custom import CustomIntents

    custom = CustomIntents(settings.intents).intents

    def sources(names: Iterable[str]) -> Grammar:
        known = pronunciations().__contains__
        return build_grammar([BUILTIN, FOLLOWUP, custom], known, {"name": list(names)})

    return sources


def load_transcriber(settings: Settings) -> tuple[Transcriber | None, str | None, str]:
    """The recognizer ``stt.engine`` asks for: (transcriber, problem, what is active).

    ``auto`` never fails for want of a Vosk model: speech-to-phrase ships with the
    package. A missing model only matters when ``vosk`` is asked for by name.
    """
    from firmware_app.recognize.phrases import HybridTranscriber, PhraseTranscriber

    engine = settings.stt.engine
    vosk: VoskTranscriber | None = None
    problem = None
    if engine in ("auto", "vosk"):
        try:
            vosk = VoskTranscriber(settings.stt_model_path)
        except (ModelMissingError, EngineUnavailableError) as exc:
            problem = str(exc)
            if engine == "vosk":
                return None, problem, f"none ({problem})"
    if engine == "vosk":
        assert vosk is not None
        return vosk, None, f"vosk ({settings.stt_model_path})"
    try:
        phrases = PhraseTranscriber(phrase_grammar_sources(settings))
    except EngineUnavailableError as exc:
        if vosk is not None:
            return vosk, None, f"vosk ({settings.stt_model_path}); speech-to-phrase off: {exc}"
        return None, str(exc), f"none ({exc})"
    if vosk is None:
        return phrases, None, "speech-to-phrase (commands only: no Vosk model for open speech)"
    return HybridTranscriber(phrases, vosk), None, f"speech-to-phrase + vosk ({vosk.model_dir})"
