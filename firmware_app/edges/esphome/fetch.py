"""Fetching what Home Assistant wants played: WAV over HTTP, bounded in size and time.

Home Assistant hands the speaker URLs (the reply's ``TTS_END`` URL, announcements,
``media_player.play_media``); the speaker advertises WAV, so no decoder beyond the
standard library's is needed on either side. Anything else (another format, a redirect
loop, a file over the size limit, a server that trickles) is one clear error.
"""

from __future__ import annotations

import asyncio
import io
import wave

import httpx
import numpy as np
from loguru import logger

from firmware_app.core.errors import BadInputError


class FetchError(BadInputError):
    """The URL could not be played (one line saying why)."""


async def fetch_wav(url: str, max_bytes: int, timeout_s: float) -> tuple[bytes, int]:
    """Mono S16_LE PCM and its rate. Raises FetchError."""
    if not url.lower().startswith(("http://", "https://")):
        raise FetchError(f"not an http(s) URL: {url[:80]!r}")
    try:
        data = await asyncio.wait_for(_download(url, max_bytes, timeout_s), timeout_s)
    except TimeoutError:
        raise FetchError(f"took over {timeout_s:.0f} s: {url[:80]}") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {url[:80]}") from None
    return decode_wav(data)


async def fetch_announcement(
    preannounce: str, media: str, max_bytes: int, timeout_s: float
) -> tuple[bytes, int]:
    """An announcement: its chime (``preannounce``, skipped when it cannot be played),
    then ``media``, as one PCM at the media's rate. Raises FetchError when ``media``
    cannot be played."""
    pcm, rate = await fetch_wav(media, max_bytes, timeout_s)
    if not preannounce:
        return pcm, rate
    try:
        chime, got = await fetch_wav(preannounce, max_bytes, timeout_s)
    except FetchError as exc:
        logger.warning("esphome: announcement chime not played: {}", exc)
        return pcm, rate
    if got != rate:  # keep one rate: the chime is short, it is the one resampled
        import soxr

        chime = soxr.resample(np.frombuffer(chime, "<i2"), got, rate).astype("<i2").tobytes()
    return chime + pcm, rate


async def _download(url: str, max_bytes: int, timeout_s: float) -> bytes:
    async with (
        httpx.AsyncClient(timeout=timeout_s, follow_redirects=True, max_redirects=3) as client,
        client.stream("GET", url) as response,
    ):
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code}: {url[:80]}")
        size = int(response.headers.get("content-length") or 0)
        if size > max_bytes:
            raise FetchError(f"{size} bytes is over the {max_bytes}-byte limit")
        out = bytearray()
        async for chunk in response.aiter_bytes():
            out += chunk
            if len(out) > max_bytes:
                raise FetchError(f"over the {max_bytes}-byte limit")
        return bytes(out)


def decode_wav(data: bytes) -> tuple[bytes, int]:
    """16-bit PCM WAV (any rate, mono or more channels, mixed down) → mono PCM, rate."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise FetchError(f"not a WAV file: {exc}") from None
    if width != 2 or not 1 <= channels <= 8 or not 4000 <= rate <= 192000:
        raise FetchError(f"unsupported WAV: {width * 8}-bit, {channels} channels, {rate} Hz")
    if channels > 1:
        samples = np.frombuffer(frames[: len(frames) // (2 * channels) * 2 * channels], "<i2")
        mixed = samples.reshape(-1, channels).mean(axis=1)
        frames = mixed.astype("<i2").tobytes()
    return frames, rate
