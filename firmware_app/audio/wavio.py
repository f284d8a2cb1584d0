"""WAV files in any common shape, converted to what the assistant hears (16 kHz mono S16).

Resampling uses soxr (a proper band-limited resampler: 22050 → 16000 is 320/441, and naive
decimation aliases enough to hurt wake word scores).
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from firmware_app.core.errors import BadInputError
from firmware_app.core.messages import FRAME_SAMPLES, SAMPLE_RATE


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono int16 → mono int16 at another rate."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    import soxr

    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate_in, rate_out, quality="HQ")
    return _from_float(out)


def _from_float(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


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


FMT_MAX = 4096
"""Most of a fmt chunk read (40 bytes in the largest common header): its size field is the
file's word, not a promise."""

READ_BLOCK_S = 1.0
"""Audio read, converted and resampled at a time: a recording of any length costs the
memory of one block."""
READ_BLOCK_MAX = 4 << 20
"""Most bytes read at once, whatever the header claims (a second of 8 channels of 64-bit
float at 48 kHz is 3 MB)."""
RATES = (4000, 768000)
"""Sample rates read (Hz). A header can claim any rate: 1 Hz would make each sample 16,000
after resampling, so rates outside what recorders write are refused."""


def _layout(wav: BinaryIO, path: Path | str) -> tuple[bytes, int | None, int | None]:
    """The fmt chunk, and where the data chunk starts and how many bytes it holds (the first
    of each id). A truncated data chunk keeps what is there, as players do with recordings
    cut off by a full disk or a pulled plug. From a pipe (``sox ... -t wav - | ttbt5
    simulate /dev/stdin``) the chunks are read in order up to the data, which starts where
    the pipe now stands (None), and whose length is None when the writer could not know it
    (0 or the largest size): to the end."""
    head = wav.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise BadInputError(f"{path} is not a WAV file (no RIFF/WAVE header)")
    seekable = wav.seekable()
    end = wav.seek(0, 2) if seekable else None
    fmt: bytes | None = None
    data: tuple[int, int] | None = None
    pos = 12
    while (end is None or pos + 8 <= end) and (fmt is None or data is None):
        if end is not None:
            wav.seek(pos)
        header = wav.read(8)
        if len(header) < 8:
            break
        cid, size = header[:4], struct.unpack_from("<I", header, 4)[0]
        padded = size + (size & 1)  # a chunk of odd size is followed by a pad byte
        skipped = padded
        if cid == b"data" and data is None:
            if end is not None:
                data = (pos + 8, max(0, min(size, end - pos - 8)))
            elif fmt is not None:  # a pipe: the data is where it stands now
                return fmt, None, None if size in (0, 0xFFFFFFFF) else size
            else:
                raise BadInputError(f"{path}: its fmt chunk follows the data (read it from a file)")
        elif cid == b"fmt " and fmt is None:
            fmt = wav.read(min(size, FMT_MAX))
            skipped -= len(fmt)
        if end is None:
            _skip(wav, skipped)
        pos += 8 + padded
    if fmt is None or data is None:
        raise BadInputError(f"{path} is not a WAV file (no fmt or data chunk)")
    return fmt, data[0], data[1]


def _skip(wav: BinaryIO, count: int) -> None:
    """Read past ``count`` bytes of a pipe, a block at a time."""
    while count > 0:
        got = wav.read(min(count, READ_BLOCK_MAX))
        if not got:
            return
        count -= len(got)


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
    if not RATES[0] <= rate <= RATES[1]:
        raise BadInputError(
            f"{path}: unsupported sample rate {rate} Hz ({RATES[0]}-{RATES[1]} Hz are read)"
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
    blocks = list(WavReader(path, rate).blocks())
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)


class WavReader:
    """A WAV file as ``read_wav`` reads it, a block at a time (``simulate`` and
    ``transcribe`` stream a recording rather than hold it: an hour of 48 kHz stereo float
    is 1.4 GB). The header is read and checked here, so a bad file fails before anything
    starts. A file can be read again; a pipe once."""

    def __init__(self, path: Path | str, rate: int = SAMPLE_RATE) -> None:
        self.path = path
        self.rate = rate
        self._pipe: BinaryIO | None = None
        """A pipe, open at its data (a file is opened again for each reading)."""
        try:
            wav = open(path, "rb")  # noqa: SIM115 (a pipe stays open for blocks())
        except FileNotFoundError:
            raise BadInputError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise BadInputError(f"{path} is a directory, not a WAV file") from None
        except OSError as exc:
            raise BadInputError(f"{path} cannot be read: {exc.strerror or exc}") from None
        try:
            fmt, self._start, self._length = _layout(wav, path)
            self.format = _format(fmt, path)
        except OSError as exc:
            wav.close()
            raise BadInputError(f"{path} cannot be read: {exc.strerror or exc}") from None
        except BaseException:
            wav.close()
            raise
        if wav.seekable():
            wav.close()
        else:
            self._pipe = wav
        frame = self.format.width * self.format.channels
        if self._length is not None:
            self._length -= self._length % frame
        self.samples = 0 if self._length is None else self._length // frame
        """Samples per channel at the file's own rate: from the header, or for a pipe of
        unknown length, those read so far."""

    @property
    def seconds(self) -> float:
        return self.samples / self.format.rate

    def blocks(self) -> Iterator[np.ndarray]:
        """Mono int16 at ``rate``, about ``READ_BLOCK_S`` at a time (none for an empty
        file); resampled as one stream, so the blocks join as the whole file would."""
        fmt = self.format
        frame = fmt.width * fmt.channels
        block = max(1, min(int(READ_BLOCK_S * fmt.rate), READ_BLOCK_MAX // frame)) * frame
        convert = to_int16_float if fmt.tag == IEEE_FLOAT else to_int16
        stream = None
        if fmt.rate != self.rate:
            import soxr

            stream = soxr.ResampleStream(fmt.rate, self.rate, 1, dtype="float32", quality="HQ")
        counting = self._length is None
        if self._start is None:  # a pipe
            wav, self._pipe = self._pipe, None
            if wav is None:
                raise BadInputError(f"{self.path} is a pipe, and was read already")
        else:
            wav = open(self.path, "rb")  # noqa: SIM115 (closed below)
            wav.seek(self._start)
        with wav:
            left = self._length  # None: to the end
            while left is None or left > 0:
                want = block if left is None else min(block, left)
                raw = wav.read(want)
                ended = len(raw) < want  # the end (or a file that shrank since its header)
                raw = raw[: len(raw) - len(raw) % frame]
                if left is not None:
                    left -= len(raw)
                last = ended or left == 0
                if counting:
                    self.samples += len(raw) // frame
                samples = convert(raw, fmt.width)
                if fmt.channels > 1:
                    samples = samples.reshape(-1, fmt.channels).astype(np.int32).mean(axis=1)
                    samples = samples.astype(np.int16)
                if stream is not None:
                    floats = samples.astype(np.float32) / 32768.0
                    samples = _from_float(stream.resample_chunk(floats, last=last))
                if samples.size:
                    yield samples
                if last:
                    return

    def frames(self) -> Iterator[bytes]:
        """The recording as 80 ms frames of S16_LE (at 16 kHz), the last one padded with
        silence: what a microphone would have delivered."""
        step = FRAME_SAMPLES * self.rate // SAMPLE_RATE * 2
        rest = b""
        for block in self.blocks():
            data = rest + block.astype("<i2").tobytes()
            whole = len(data) - len(data) % step
            for start in range(0, whole, step):
                yield data[start : start + step]
            rest = data[whole:]
        if rest:
            yield rest + bytes(step - len(rest))


def write_wav(path: Path | str, samples: np.ndarray | bytes, rate: int) -> None:
    data = samples if isinstance(samples, bytes) else samples.astype("<i2").tobytes()
    with wav_writer(path, rate) as write:
        write(data)


@contextmanager
def wav_writer(path: Path | str, rate: int) -> Iterator[Callable[[bytes], None]]:
    """A mono 16-bit WAV file written piece by piece (its header is kept true after every
    piece, so a run cut short leaves a file that plays)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # opened here, so a path that cannot be written fails with its one error (wave's own
    # opening leaves a half-made writer that complains again when collected)
    with open(path, "wb") as file, wave.open(file, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        yield wav.writeframes


def scale(pcm: bytes, volume: int) -> bytes:
    """Software volume: 0-100 mapped on a squared curve, which sounds even across the range."""
    if volume >= 100:
        return pcm
    gain = (max(volume, 0) / 100.0) ** 2
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) * gain
    return samples.astype(np.int16).tobytes()
