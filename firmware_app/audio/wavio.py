"""WAV files in any common shape, converted to what the assistant hears (16 kHz mono S16).

Resampling uses soxr (a proper band-limited resampler: 22050 → 16000 is 320/441, and naive
decimation aliases enough to hurt wake word scores).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from firmware_app.errors import BadInputError
from firmware_app.messages import SAMPLE_RATE


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono int16 → mono int16 at another rate."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    import soxr

    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate_in, rate_out, quality="HQ")
    return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)


def to_int16(raw: bytes, width: int) -> np.ndarray:
    if width == 2:
        return np.frombuffer(raw, dtype="<i2")
    if width == 1:  # unsigned 8-bit
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        as32 = (
            b[:, 0].astype(np.int32)
            | (b[:, 1].astype(np.int32) << 8)
            | (b[:, 2].astype(np.int32) << 16)
        )
        as32 = np.where(as32 & 0x800000, as32 - 0x1000000, as32)
        return (as32 >> 8).astype(np.int16)
    if width == 4:
        return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    raise BadInputError(f"unsupported sample width {width * 8} bits")


def read_wav(path: Path | str, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a PCM WAV file as mono int16 at ``rate`` (channels averaged)."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate_in = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise BadInputError(f"{path} is not a PCM WAV file ({exc})") from None
    if rate_in <= 0 or channels <= 0:
        raise BadInputError(f"{path} has an invalid header ({channels} channels, {rate_in} Hz)")
    samples = to_int16(raw[: len(raw) - len(raw) % (width * channels)], width)
    if channels > 1:
        samples = samples.reshape(-1, channels).astype(np.int32).mean(axis=1).astype(np.int16)
    return resample(samples, rate_in, rate)


def write_wav(path: Path | str, samples: np.ndarray | bytes, rate: int) -> None:
    data = samples if isinstance(samples, bytes) else samples.astype("<i2").tobytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data)


def scale(pcm: bytes, volume: int) -> bytes:
    """Software volume: 0-100 mapped on a squared curve, which sounds even across the range."""
    if volume >= 100:
        return pcm
    gain = (max(volume, 0) / 100.0) ** 2
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) * gain
    return samples.astype(np.int16).tobytes()
