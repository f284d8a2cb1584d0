"""The engines, loaded once from settings: wake word, voice detector, recognizer and voice
(``load_engines``), and the microphone's path built from them (``build_hearing``).

Loading is apart from wiring because more than the assistant needs it: the Wyoming server
loads the same recognizer and voice for engines of its own, and the benchmarks load them
without an assistant. The Protocols these engines fill are in ``core/engines.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from loguru import logger

from firmware_app.audio.echo import PlaybackReference
from firmware_app.config.settings import Settings
from firmware_app.core.engines import (
    Detection,
    EchoCanceller,
    SpeechDetector,
    StopSpotter,
    Synthesizer,
    Transcriber,
    WakeDetector,
)
from firmware_app.core.errors import EngineUnavailableError
from firmware_app.listen.hearing import Hearing


@dataclass
class Engines:
    wake: WakeDetector
    vad: SpeechDetector
    stt: Transcriber | None
    stt_problem: str | None
    tts: Synthesizer


class NoWake:
    """For ``ask``/``say``: no microphone, so nothing to detect."""

    def detect(self, pcm: bytes) -> Detection | None:
        return None

    def reset(self) -> None:
        pass


class NoVad:
    def speech_probability(self, pcm: bytes) -> float:
        return 0.0

    def reset(self) -> None:
        pass


def load_tts(settings: Settings, steady: bool = False) -> Synthesizer:
    from firmware_app.config.profiles import ZERO_PIPER_PHONEMES
    from firmware_app.speak.piper import MAX_PHONEMES, PiperSynthesizer

    zero = settings.profile == "zero"
    tts = PiperSynthesizer(
        settings.tts,
        steady=steady,
        max_phonemes=ZERO_PIPER_PHONEMES if zero else MAX_PHONEMES,
        spin_threads=not zero,
    )
    for _ in tts.synthesize("Ready."):  # first inference is slow: pay it before anyone waits
        pass
    return tts


def load_stt(settings: Settings) -> tuple[Transcriber | None, str | None]:
    from firmware_app.recognize.stt import load_transcriber

    stt, problem, active = load_transcriber(settings)
    if stt is None:
        logger.warning("speech recognition is off: {}", problem)
    else:
        logger.info("speech recognition: {}", active)
    return stt, problem


def load_engines(
    settings: Settings,
    microphone: bool = True,
    stt: Transcriber | None = None,
    steady: bool = False,
) -> Engines:
    """Load every model once, timing each (start-up time matters on a Pi)."""
    from firmware_app.listen.vad import SileroVad
    from firmware_app.listen.wake_engines import build_wake_detector
    from firmware_app.system.heap import HEAP_BLOCK_MAX, SEPARATE_BLOCK, fix_heap_thresholds

    # On the Zero profile 6 MB less held, for about 8% more CPU per synthesis.
    fix_heap_thresholds(SEPARATE_BLOCK if settings.profile == "zero" else HEAP_BLOCK_MAX)
    started = time.monotonic()
    wake: WakeDetector = build_wake_detector(settings.wake) if microphone else NoWake()
    vad: SpeechDetector = SileroVad() if microphone else NoVad()
    problem = None
    if stt is None and microphone:
        stt, problem = load_stt(settings)
    tts = load_tts(settings, steady)
    if settings.profile == "zero":  # about 20 MB less held over a conversation
        from firmware_app.system.code_pages import release_loading_code

        released = release_loading_code()
        logger.debug("code that only loading ran: {:.0f} MB let go of", released / 2**20)
    logger.info("models loaded in {:.1f} s", time.monotonic() - started)
    return Engines(wake, vad, stt, problem, tts)


def whisper_look(stt: Transcriber | None) -> Callable[[np.ndarray], str] | None:
    """Whisper's transcription of 16 kHz float samples, when the recognizer holds a
    Whisper model (alone, or beside speech-to-phrase)."""
    from firmware_app.recognize.hybrid import HybridTranscriber
    from firmware_app.recognize.whisper import WhisperTranscriber

    inner = stt.vosk if isinstance(stt, HybridTranscriber) else stt
    return inner.transcribe if isinstance(inner, WhisperTranscriber) else None


def build_hearing(
    settings: Settings, engines: Engines, reference: PlaybackReference | None = None
) -> Hearing:
    """The microphone's path: the echo canceller and the stop word as configured (a part
    that cannot be loaded is left out with a warning: the assistant still works without
    it), with ``reference`` (what the speaker played) for frames that arrive without one."""
    echo: EchoCanceller | None = None
    stop: StopSpotter | None = None
    cfg = settings.echo
    if not isinstance(engines.wake, NoWake):  # with no microphone there is nothing to hear
        if cfg.engine != "off":
            from firmware_app.listen.echo_canceller import make_echo_canceller

            try:
                echo = make_echo_canceller(cfg.engine, cfg.tail_ms)
            except EngineUnavailableError as exc:
                logger.warning("echo cancellation is off: {}", exc)
        if cfg.stop_word:
            from firmware_app.listen.stop_word import PocketsphinxStopSpotter

            try:
                look = whisper_look(engines.stt) if cfg.stop_whisper else None
                stop = PocketsphinxStopSpotter(threshold=cfg.stop_threshold, second_look=look)
            except EngineUnavailableError as exc:
                logger.warning("the stop word is off: {}", exc)
    return Hearing.from_settings(
        settings,
        engines.wake,
        engines.vad,
        engines.stt,
        echo=echo,
        reference=reference if echo is not None else None,
        stop=stop,
    )
