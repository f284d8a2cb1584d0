"""The recognizer and the voice, shared by every Wyoming client.

The engines are synchronous and hold one decoder (or one ONNX session) each, so each runs
on its own worker thread and the event loop only awaits it. The recognizer serves one
utterance at a time: the request that finds it free streams into it as its audio
arrives (the transcript is ready as soon as the audio ends); a request that finds it busy
keeps its audio (bounded by the caller) and is decoded when the recognizer is free.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from firmware_app.core.engines import RebuildableTranscriber, Synthesizer, Transcriber

T = TypeVar("T")

SYNTH_CHUNK_SAMPLES = 1024
"""Samples per audio chunk sent back (as Home Assistant's own Piper server does)."""


class SharedRecognizer:
    def __init__(self, transcriber: Transcriber, description: str) -> None:
        self.description = description  # what recognizes: for the info event and logs
        self.stt = transcriber
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="wyoming-stt")
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on the recognizer's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    async def take_if_free(self) -> bool:
        if self._lock.locked():
            return False
        await self._lock.acquire()  # free: returns at once
        return True

    async def take(self, wait_s: float) -> None:
        await asyncio.wait_for(self._lock.acquire(), wait_s)

    def give_back(self) -> None:
        self._lock.release()

    def utterance(self) -> Utterance:
        return Utterance(self)

    async def rebuild(self, wait_s: float) -> bool:
        """The grammar built again from its sources, between two requests (waits at most
        ``wait_s`` for the recognizer: ``TimeoutError``); False when this recognizer has
        no grammar to rebuild (Vosk or Whisper alone)."""
        if not isinstance(self.stt, RebuildableTranscriber):
            return False
        await self.take(wait_s)
        try:
            await self.run(self.stt.rebuild)
        finally:
            self.give_back()
        return True

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


class Utterance:
    """One request's audio into the shared recognizer. Always end it with ``finish`` or
    ``abort`` (the recognizer stays taken until then)."""

    def __init__(self, recognizer: SharedRecognizer) -> None:
        self._shared = recognizer
        self._owner = False
        self._waiting: list[bytes] = []

    async def begin(self) -> None:
        """Take the recognizer now if it is free (then audio streams into it)."""
        if await self._shared.take_if_free():
            self._owner = True
            try:
                await self._shared.run(self._shared.stt.start)
            except BaseException:
                self._release()
                raise

    async def feed(self, pcm: bytes) -> None:
        """16 kHz mono 16-bit audio."""
        if self._owner:
            await self._shared.run(self._shared.stt.feed, pcm)
        else:
            self._waiting.append(pcm)

    async def finish(self, wait_s: float) -> str:
        """The transcript; waits at most ``wait_s`` for a busy recognizer
        (``TimeoutError`` then)."""
        shared = self._shared
        if not self._owner:
            await shared.take(wait_s)
            self._owner = True
            waiting, self._waiting = b"".join(self._waiting), []
            try:
                await shared.run(_start_and_feed, shared.stt, waiting)
            except BaseException:
                self._release()
                raise
        try:
            return await shared.run(shared.stt.finish)
        finally:
            self._release()

    async def abort(self) -> None:
        """Drop the utterance: the recognizer is reset and free for the next one."""
        self._waiting = []
        if self._owner:
            try:
                await self._shared.run(self._shared.stt.finish)
            finally:
                self._release()

    def _release(self) -> None:
        if self._owner:
            self._owner = False
            self._shared.give_back()


def _start_and_feed(stt: Transcriber, pcm: bytes) -> None:
    stt.start()
    stt.feed(pcm)


class SharedVoice:
    def __init__(self, synthesizer: Synthesizer, name: str, language: str) -> None:
        self.name = name
        self.language = language
        self.sample_rate = synthesizer.sample_rate
        self._tts = synthesizer
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="wyoming-tts")

    async def speak(self, pieces: list[str]) -> AsyncIterator[bytes]:
        """16-bit mono audio at ``sample_rate`` in chunks of ``SYNTH_CHUNK_SAMPLES``, each
        as soon as Piper has made it. Pieces are short (``speakable_pieces``): the memory
        of one synthesis run stays bounded however long the text."""
        loop = asyncio.get_running_loop()
        step = 2 * SYNTH_CHUNK_SAMPLES
        for piece in pieces:
            runs = iter(await loop.run_in_executor(self._worker, self._tts.synthesize, piece))
            while (pcm := await loop.run_in_executor(self._worker, next, runs, None)) is not None:
                for start in range(0, len(pcm), step):
                    yield pcm[start : start + step]

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
