"""WAV input as real tools write it: sox and ffmpeg use WAVE_FORMAT_EXTENSIBLE beyond 16-bit
stereo, and float32 for processed audio. Headers are built byte by byte here, so each test
states exactly which layout it reads."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from firmware_app.audio.wavio import EXTENSIBLE, IEEE_FLOAT, PCM, read_wav
from firmware_app.core.errors import BadInputError

RATE = 16000
TONE = (np.sin(2 * np.pi * 440 * np.arange(RATE // 4) / RATE) * 0.5).astype(np.float64)
"""A quarter second of 440 Hz at half scale: the reference every layout must read back as."""

EXPECTED = np.round(TONE * 32768).astype(np.int16)
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def _wav(path: Path, tag: int, channels: int, bits: int, frames: bytes, extensible: bool) -> Path:
    width = bits // 8
    block = width * channels
    fmt = struct.pack(
        "<HHIIHH", EXTENSIBLE if extensible else tag, channels, RATE, RATE * block, block, bits
    )
    if extensible:
        mask = (1 << channels) - 1
        fmt += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", tag) + GUID_TAIL
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # an extra chunk before the data
    body += b"data" + struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def _interleave(mono: np.ndarray, channels: int) -> np.ndarray:
    return np.repeat(mono[:, None], channels, axis=1).reshape(-1)


def _pcm24(samples: np.ndarray) -> bytes:
    as32 = samples.astype("<i4")
    return np.stack([(as32 >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("layout", ["pcm16", "pcm24", "pcm32", "float32", "float64"])
def test_reads_every_common_layout(
    tmp_path: Path, layout: str, channels: int, extensible: bool
) -> None:
    mono24 = np.round(TONE * (1 << 23)).astype(np.int64)
    if layout == "pcm16":
        tag, bits, frames = PCM, 16, _interleave(EXPECTED, channels).astype("<i2").tobytes()
    elif layout == "pcm24":
        tag, bits, frames = PCM, 24, _pcm24(_interleave(mono24, channels))
    elif layout == "pcm32":
        tag, bits = PCM, 32
        frames = _interleave(mono24 << 8, channels).astype("<i4").tobytes()
    else:
        tag, bits = IEEE_FLOAT, int(layout[-2:])
        dtype = "<f4" if bits == 32 else "<f8"
        frames = _interleave(TONE, channels).astype(dtype).tobytes()
    path = _wav(tmp_path / "in.wav", tag, channels, bits, frames, extensible)
    got = read_wav(path)
    assert got.dtype == np.int16
    assert len(got) == len(EXPECTED)
    assert np.max(np.abs(got.astype(np.int32) - EXPECTED)) <= 1


def test_resamples_a_float_file(tmp_path: Path) -> None:
    path = _wav(
        tmp_path / "in.wav",
        IEEE_FLOAT,
        2,
        32,
        _interleave(TONE, 2).astype("<f4").tobytes(),
        extensible=True,
    )
    assert abs(len(read_wav(path, 8000)) - len(EXPECTED) // 2) <= 1


def test_float_out_of_range_and_nan_are_clipped_not_wrapped(tmp_path: Path) -> None:
    values = np.array([2.0, -2.0, np.nan, np.inf, -np.inf, 0.25], dtype="<f4")
    path = _wav(tmp_path / "in.wav", IEEE_FLOAT, 1, 32, values.tobytes(), extensible=False)
    assert read_wav(path).tolist() == [32767, -32768, 0, 32767, -32768, 8192]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a WAV file"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt or data chunk"),
        (b"OggS" + b"\x00" * 40, "not a WAV file"),
    ],
)
def test_refuses_what_is_not_a_wav_with_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        read_wav(path)


def test_refuses_compressed_encodings_by_name(tmp_path: Path) -> None:
    path = _wav(tmp_path / "alaw.wav", 0x0006, 1, 8, b"\x00" * 100, extensible=True)
    with pytest.raises(BadInputError, match="unsupported WAV encoding 0x0006"):
        read_wav(path)


def test_a_recording_cut_short_keeps_what_is_there(tmp_path: Path) -> None:
    path = _wav(tmp_path / "in.wav", PCM, 1, 16, EXPECTED.astype("<i2").tobytes(), False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1001])  # the data chunk claims more than it holds
    got = read_wav(path)
    assert len(got) == len(EXPECTED) - 501
    assert np.array_equal(got, EXPECTED[: len(got)])


def test_a_long_file_is_read_a_block_at_a_time_and_joins_as_read_whole(tmp_path: Path) -> None:
    import wave

    from firmware_app.audio.wavio import WavReader, resample

    noise = np.random.default_rng(3).normal(0, 3000, (int(3.3 * 22050), 2)).astype("<i2")
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(noise.tobytes())
    reader = WavReader(path)
    blocks = list(reader.blocks())
    assert len(blocks) >= 3 and max(len(b) for b in blocks) < 1.1 * RATE
    whole = resample(noise.astype(np.int32).mean(axis=1).astype(np.int16), 22050, RATE)
    joined = np.concatenate(blocks)
    assert np.array_equal(joined, whole)  # the resampler streamed, not restarted per block
    frames = list(reader.frames())
    assert {len(f) for f in frames} == {2560} and len(frames) == -(-len(joined) // 1280)
    assert np.array_equal(np.frombuffer(b"".join(frames), "<i2")[: len(joined)], joined)
    assert reader.seconds == pytest.approx(3.3, abs=1e-4)


@pytest.mark.parametrize("rate", [1, 3999, 768001, 4_000_000_000])
def test_a_rate_no_recorder_writes_is_refused_before_anything_is_read(
    tmp_path: Path, rate: int
) -> None:
    """A header is the file's word: 1 Hz resampled to 16 kHz would make every sample of a
    small file 16,000."""
    path = _wav(tmp_path / "in.wav", PCM, 1, 16, b"\x00\x01" * 5000, False)
    data = bytearray(path.read_bytes())
    data[24:28] = rate.to_bytes(4, "little")  # the fmt chunk's sample rate
    path.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match=f"unsupported sample rate {rate} Hz"):
        read_wav(path)


def test_a_huge_frame_is_still_read_in_bounded_blocks(tmp_path: Path) -> None:
    """65,535 channels of 64-bit float claim 0.5 MB a sample frame: a block is a few
    frames (``READ_BLOCK_MAX``), not a second of them (2 GB at 4 kHz)."""
    from firmware_app.audio.wavio import READ_BLOCK_MAX, WavReader

    channels, rate = 65535, 4000
    frame = np.zeros(channels, "<f8")
    frame[::2] = 0.5  # the mean of the channels: a quarter scale
    frames = frame.tobytes() * 20
    fmt = struct.pack("<HHIIHH", IEEE_FLOAT, channels, rate, 0, 0, 64)  # no valid block size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(frames)) + frames
    path = tmp_path / "in.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    blocks = list(WavReader(path, rate).blocks())
    per_block = READ_BLOCK_MAX // (8 * channels)
    assert len(blocks) == -(-20 // per_block)  # read a few frames at a time
    assert all(len(b) <= per_block for b in blocks)
    samples = np.concatenate(blocks).astype(np.int32)
    assert len(samples) == 20 and (np.abs(samples - 8192) <= 1).all()


def test_an_output_that_cannot_be_written_fails_with_its_one_error(tmp_path: Path) -> None:
    """``simulate --output`` naming a folder: the error, and nothing more when the half-made
    writer is collected."""
    import gc
    import sys

    from firmware_app.audio.wavio import wav_writer

    unraisable: list[object] = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with pytest.raises(IsADirectoryError), wav_writer(tmp_path, 16000):
            pass
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == []


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF, RATE // 4])
def test_a_pipe_is_read_in_order_to_its_end_once(declared: int) -> None:
    """``sox in.flac -t wav - | ttbt5 simulate /dev/stdin``: a writer into a pipe cannot go
    back to fill in the data's length (it writes 0 or the largest size), so the data runs
    to the end of the pipe; a length it did give is kept."""
    import os
    import threading

    from firmware_app.audio.wavio import WavReader

    fmt = struct.pack("<HHIIHH", PCM, 1, RATE, RATE * 2, 2, 16)
    data = EXPECTED.astype("<i2").tobytes()
    blob = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    blob += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    blob += b"LIST" + struct.pack("<I", 5) + b"INFO\x00\x00"  # odd: padded to even
    blob += b"data" + struct.pack("<I", declared) + data
    r, w = os.pipe()

    def write() -> None:
        with os.fdopen(w, "wb") as pipe:
            pipe.write(blob)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        reader = WavReader(f"/dev/fd/{r}")
        got = np.concatenate(list(reader.blocks()))
        expected = EXPECTED[: declared // 2] if declared == RATE // 4 else EXPECTED
        assert np.array_equal(got, expected)
        assert reader.seconds == len(expected) / RATE
        with pytest.raises(BadInputError, match="read already"):
            list(reader.blocks())
    finally:
        writer.join(timeout=5)
        os.close(r)
