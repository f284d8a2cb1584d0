"""Speech to text: Vosk streamed frame by frame, and the choice of recognizer.

Frames go to the recognizer as they arrive, so when the speaker stops only the last few
hundred milliseconds are left to decode and the final result is ready at once.
``load_transcriber`` picks speech-to-phrase (``recognize/phrases.py``), an
open-vocabulary recognizer (Vosk, or Whisper in ``recognize/whisper.py``), or both, from
``stt.engine`` and what is installed.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from firmware_app.core.errors import EngineUnavailableError, ModelMissingError
from firmware_app.core.messages import SAMPLE_RATE

if TYPE_CHECKING:
    from hassil import Intents

    from firmware_app.config.settings import Settings
    from firmware_app.core.engines import Transcriber
    from firmware_app.recognize.grammar import Grammar
    from firmware_app.recognize.whisper import WhisperTranscriber

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
    name = "vosk"
    open_speech = True

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


def phrase_grammar_sources(
    settings: Settings, more: Callable[[], Iterable[Intents]] | None = None
) -> Callable[[Iterable[str]], Grammar]:
    """What the speech-to-phrase grammar is built from: the built-in sentences, the
    answers to "Which one?", the custom sentences in config, timer names, and what
    ``more`` gives at each build (the Wyoming server's: Home Assistant's sentences for
    the home's names)."""
    from firmware_app.recognize.grammar import build_grammar
    from firmware_app.recognize.pronunciations import pronunciations
    from firmware_app.understand.intents.builtin import BUILTIN, FOLLOWUP
    from firmware_app.understand.intents.custom import CustomIntents

    custom = CustomIntents(settings.intents).intents

    def sources(names: Iterable[str]) -> Grammar:
        known = pronunciations().__contains__
        extra = list(more()) if more is not None else []
        return build_grammar([BUILTIN, FOLLOWUP, custom, *extra], known, {"name": list(names)})

    return sources


def open_model_dir(settings: Settings) -> Path:
    """Where the open-vocabulary model is: ``stt.model``, else the default directory of
    the engine asked for; ``auto`` takes the Vosk model, or the Whisper one when only it
    is installed."""
    from firmware_app.config.settings import DEFAULT_STT_MODEL
    from firmware_app.recognize.models import DEFAULT_WHISPER_MODEL

    if settings.stt.model is not None:
        return settings.stt.model
    root = settings.data_dir / "models"
    vosk, whisper = root / DEFAULT_STT_MODEL, root / DEFAULT_WHISPER_MODEL
    if settings.stt.engine == "whisper":
        return whisper
    if settings.stt.engine == "auto" and not vosk.is_dir() and whisper.is_dir():
        return whisper
    return vosk


def open_speech_installed(settings: Settings) -> bool:
    """Whether the configured open-speech recognizer would load: its model directory is
    there (and for Whisper, faster-whisper too). Nothing is loaded: this is cheap."""
    from firmware_app.recognize.whisper import is_whisper_dir

    engine = settings.stt.engine
    if engine == "phrases":
        return False
    path = open_model_dir(settings)
    if engine == "whisper" or (engine == "auto" and is_whisper_dir(path)):
        return is_whisper_dir(path) and importlib.util.find_spec("faster_whisper") is not None
    try:
        check_model_dir(path)
    except ModelMissingError:
        return False
    return True


def hears_open_speech(settings: Settings, recognizer: Transcriber | None) -> bool:
    """Whether speech beyond the commands is transcribed: the recognizer says so (only
    speech-to-phrase alone does not); with none loaded (typed requests), whether the
    configured one would, so a typed request is answered as the same words spoken."""
    from firmware_app.core.engines import ScopedTranscriber

    if recognizer is None:
        return open_speech_installed(settings)
    return recognizer.open_speech if isinstance(recognizer, ScopedTranscriber) else True


def load_open(settings: Settings) -> VoskTranscriber | WhisperTranscriber:
    """The open-vocabulary recognizer: Whisper when ``stt.engine`` says so or the model
    directory holds a Whisper model, Vosk otherwise."""
    from firmware_app.recognize.whisper import WhisperTranscriber, is_whisper_dir, request_prompt

    path = open_model_dir(settings)
    if settings.stt.engine == "whisper" or (settings.stt.engine == "auto" and is_whisper_dir(path)):
        longest = settings.vad.max_request_s + settings.wake.preroll_ms / 1000
        return WhisperTranscriber(path, longest, prompt=request_prompt(settings.wake.models))
    return VoskTranscriber(path)


def load_transcriber(
    settings: Settings, more: Callable[[], Iterable[Intents]] | None = None
) -> tuple[Transcriber | None, str | None, str]:
    """The recognizer ``stt.engine`` asks for: (transcriber, problem, what is active);
    ``more`` adds sentences to speech-to-phrase's grammar (``phrase_grammar_sources``).

    ``auto`` never fails for want of an open-vocabulary model: speech-to-phrase ships with
    the package. A missing model only matters when ``vosk`` or ``whisper`` is asked for by
    name.
    """
    from firmware_app.recognize.hybrid import HybridTranscriber
    from firmware_app.recognize.phrases import PhraseTranscriber

    engine = settings.stt.engine
    open_: VoskTranscriber | WhisperTranscriber | None = None
    problem = None
    if engine != "phrases":
        try:
            open_ = load_open(settings)
        except (ModelMissingError, EngineUnavailableError) as exc:
            problem = str(exc)
            if engine != "auto":
                return None, problem, f"none ({problem})"
    if engine in ("vosk", "whisper"):
        assert open_ is not None
        return open_, None, f"{open_.name} ({open_.model_dir})"
    try:
        phrases = PhraseTranscriber(phrase_grammar_sources(settings, more))
    except EngineUnavailableError as exc:
        if open_ is not None:
            off = f"speech-to-phrase off: {exc}"
            return open_, None, f"{open_.name} ({open_.model_dir}); {off}"
        return None, str(exc), f"none ({exc})"
    if open_ is None:
        return phrases, None, "speech-to-phrase (commands only: no model for open speech)"
    described = f"speech-to-phrase + {open_.name} ({open_.model_dir})"
    hybrid = HybridTranscriber(phrases, open_, check_commands=settings.stt.check_commands)
    if hybrid.check_commands:
        described += ", checking commands"
    return hybrid, None, described
