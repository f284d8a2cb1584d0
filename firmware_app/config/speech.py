"""Settings of speech in and out: the recognizer (``[stt]``, ``recognize/``) and the voice
that speaks the replies (``[tts]``, ``speak/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from firmware_app.config.section import Section

DEFAULT_STT_MODEL = "vosk-model-small-en-us-0.15"
"""The open-speech model looked for under ``<data_dir>/models`` when ``stt.model`` is unset."""


class SttSettings(Section):
    engine: Literal["auto", "phrases", "vosk", "whisper"] = "auto"
    """Speech recognition: ``phrases`` is the built-in speech-to-phrase recognizer (the
    command sentences only, no download); ``vosk`` and ``whisper`` are that open-speech
    model alone (Whisper needs the ``whisper`` extra: faster-whisper); ``auto`` runs
    speech-to-phrase and, when an open-speech model is installed, that model beside it
    (commands from speech-to-phrase, everything else from the model)."""
    model: Path | None = None
    """Open-speech model directory: a Vosk model, or a CTranslate2 Whisper model
    (``model.bin``, ``config.json``, ``tokenizer.json``). Default:
    ``<data_dir>/models/vosk-model-small-en-us-0.15``, or
    ``<data_dir>/models/faster-whisper-tiny.en`` for ``whisper`` (and for ``auto`` when
    only that one is installed); ``ttbt5 models pull`` installs both."""
    check_commands: bool = True
    """With Whisper beside speech-to-phrase (``auto``), Whisper hears the commands too, and
    its reading wins where it is sure of it: fewer commands carried out wrongly, and fewer
    questions or chatter taken for one. Each command then waits for Whisper (about half a
    second on a desktop, a second or more on a Pi 4). ``false``: commands from
    speech-to-phrase alone, in tens of milliseconds; Whisper hears only what is no
    command. (Vosk is never asked about commands.)"""


class TtsSettings(Section):
    voice: Path | None = None
    """Piper voice (.onnx with its .onnx.json beside it); default: the packaged
    en_US-joe-medium voice."""
    length_scale: float = Field(1.0, gt=0.3, le=3.0)
    """Speaking rate: below 1 is faster, above 1 slower."""
    cache_entries: int = Field(64, ge=0, le=10000)
    """Synthesized phrases kept in memory for instant replay (0 turns the cache off)."""
