"""WAV files in any common shape, converted to what the assistant hears (16 kHz mono S16).

Resampling uses soxr (a proper band-limited resampler: 22050 → 16000 is 320/441, and naive
decimation aliases enough to hurt wake word scores).
"""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_app.core.errors import BadInputError
from firmware_app.core.messages import SAMPLE_RATE


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


PCM = 0x0001
IEEE_FLOAT = 0x0003
EXTENSIBLE = 0xFFFE
"""WAVE format tags. sox, ffmpeg and most DAWs write WAVE_FORMAT_EXTENSIBLE for anything
beyond 16-bit stereo, and float32 for processed audio, so all three must be read."""


@dataclass(frozen=True)
class WavFormat:
    tag: int
    """PCM or IEEE_FLOAT (an EXTENSIBLE header is resolved to its sub-format)."""
    channels: int
    rate: int
    width: int
    """Bytes per sample of one channel."""


def _chunks(data: bytes, path: Path | str) -> dict[bytes, bytes]:
    """The RIFF chunks of a WAVE file (the first of each id); a truncated last chunk keeps
    what is there, as players do with recordings cut off by a full disk or a pulled plug."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise BadInputError(f"{path} is not a WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        chunks.setdefault(cid, data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    return chunks


def _format(fmt: bytes, path: Path | str) -> WavFormat:
    if len(fmt) < 16:
        raise BadInputError(f"{path} has no valid fmt chunk")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE:
        if len(fmt) < 26:
            raise BadInputError(f"{path} has a truncated WAVE_FORMAT_EXTENSIBLE header")
        tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the sub-format GUID
    if tag not in (PCM, IEEE_FLOAT):
        raise BadInputError(f"{path}: unsupported WAV encoding {tag:#06x} (PCM or float only)")
    if channels <= 0 or rate <= 0 or bits <= 0 or bits % 8:
        raise BadInputError(
            f"{path} has an invalid header ({channels} channels, {rate} Hz, {bits} bits)"
        )
    width = bits // 8
    if (tag == IEEE_FLOAT and width not in (4, 8)) or (tag == PCM and width > 4):
        raise BadInputError(f"{path}: unsupported sample width {bits} bits")
    return WavFormat(tag, channels, rate, width)


def to_int16_float(raw: bytes, width: int) -> np.ndarray:
    floats = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8")
    floats = np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.round(floats * 32768.0), -32768, 32767).astype(np.int16)


def read_wav(path: Path | str, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a WAV file (PCM 8/16/24/32-bit, float 32/64-bit, plain or EXTENSIBLE header,
    any channel count and rate) as mono int16 at ``rate`` (channels averaged)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInputError(f"{path} is a directory, not a WAV file") from None
    chunks = _chunks(data, path)
    if b"fmt " not in chunks or b"data" not in chunks:
        raise BadInputError(f"{path} is not a WAV file (no fmt or data chunk)")
    fmt = _format(chunks[b"fmt "], path)
    raw = chunks[b"data"]
    raw = raw[: len(raw) - len(raw) % (fmt.width * fmt.channels)]
    convert = to_int16_float if fmt.tag == IEEE_FLOAT else to_int16
    samples = convert(raw, fmt.width)
    if fmt.channels > 1:
        samples = samples.reshape(-1, fmt.channels).astype(np.int32).mean(axis=1)
        samples = samples.astype(np.int16)
    return resample(samples, fmt.rate, rate)


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
