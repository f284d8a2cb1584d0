"""One Wyoming client: its events in order, at most one request at a time.

- ``describe`` → ``info``
- ``transcribe``, ``audio-start``, ``audio-chunk``…, ``audio-stop`` → ``transcript``
- ``synthesize`` → ``audio-start``, ``audio-chunk``…, ``audio-stop``
- ``ping`` → ``pong``; any other event is ignored, as the protocol asks of servers.

A request the speaker cannot serve (audio too long or in a format it cannot take, text too
long, no recognizer) is answered with an ``error`` event and the connection is closed;
something that is not a Wyoming event closes it at once. Every wait on the client has a
deadline (``idle_s``), and so has the whole transcription (``max_audio_s`` and a margin).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from loguru import logger
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Info
from wyoming.ping import Pong

from firmware_app.core.messages import SAMPLE_RATE
from firmware_app.edges.wyoming.complaints import Complaints
from firmware_app.edges.wyoming.engines import SharedRecognizer, SharedVoice, Utterance
from firmware_app.edges.wyoming.framing import FramingError, Limits, read_event
from firmware_app.edges.wyoming.home_refresh import HomeRefresh

RATES = range(8000, 48001)
WIDTHS = (1, 2, 4)
CHANNELS = (1, 2)
REQUEST_MARGIN_S = 10.0
"""A transcription may take this much longer (in wall time) than its longest audio."""


class Refused(Exception):
    """A request the speaker will not serve: answered with an ``error`` event."""

    def __init__(self, text: str, code: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True)
class Bounds:
    idle_s: float
    max_audio_s: float
    max_text_chars: int
    limits: Limits = field(default_factory=Limits)

    @property
    def max_audio_bytes(self) -> int:
        return int(self.max_audio_s * SAMPLE_RATE) * 2


@dataclass(frozen=True)
class Service:
    """What every connection shares."""

    recognizer: SharedRecognizer | None
    voice: SharedVoice | None
    info: Info
    bounds: Bounds
    complaints: Complaints = field(default_factory=Complaints)
    home: HomeRefresh | None = None
    """Home Assistant's names kept in the recognizer's grammar, when configured."""


class _Transcription:
    """The audio of one ``transcribe`` request, converted to 16 kHz mono as it arrives."""

    def __init__(self, utterance: Utterance, started: float) -> None:
        self.utterance = utterance
        self.started = started
        self.format: tuple[int, int, int] | None = None
        self.converter = AudioChunkConverter(rate=SAMPLE_RATE, width=2, channels=1)
        self.bytes = 0


class Connection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service: Service
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._service = service
        self._bounds = service.bounds
        self.peer = _peer(writer)
        self.last_active = time.monotonic()
        self._asr: _Transcription | None = None
        self._synthesizing = False

    @property
    def busy(self) -> bool:
        """Mid-request: a transcription or a synthesis under way."""
        return self._asr is not None or self._synthesizing

    async def serve(self) -> None:
        try:
            while True:
                event = await asyncio.wait_for(
                    read_event(self._reader, self._bounds.limits), self._wait_s()
                )
                if event is None:
                    break
                self.last_active = time.monotonic()
                try:
                    await self._handle(event)
                except Refused as exc:
                    self._service.complaints.warn("wyoming: {} refused: {}", self.peer, exc)
                    await self._send(Error(text=str(exc), code=exc.code).event())
                    break
        except FramingError as exc:
            self._service.complaints.warn(
                "wyoming: {} sent garbage ({}): disconnected", self.peer, exc
            )
        except TimeoutError:
            what = "in the middle of a request" if self.busy else "between requests"
            logger.info("wyoming: {} silent {}: disconnected", self.peer, what)
        except (asyncio.IncompleteReadError, ConnectionError):
            logger.debug("wyoming: {} went away", self.peer)
        except Exception as exc:  # an engine failing on one request must not stop the server
            logger.error("wyoming: {} request failed: {}: {}", self.peer, type(exc).__name__, exc)
        finally:
            await self._end_transcription()
            self.close()

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()

    def _wait_s(self) -> float:
        """How long to wait for the client's next event."""
        wait = self._bounds.idle_s
        if self._asr is not None:  # the whole request has a deadline too
            deadline = self._asr.started + self._bounds.max_audio_s + REQUEST_MARGIN_S
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        return wait

    async def _send(self, event: Event) -> None:
        await asyncio.wait_for(async_write_event(event, self._writer), self._bounds.idle_s)

    async def _handle(self, event: Event) -> None:
        kind = event.type
        if kind == "describe":
            await self._send(self._service.info.event())
        elif kind == "transcribe":
            await self._start_transcription()
        elif kind == "audio-start":
            if self._asr is None:  # "transcribe" is optional before the audio
                await self._start_transcription()
            assert self._asr is not None
            start = AudioStart.from_event(_checked_format(event))
            self._asr.format = (start.rate, start.width, start.channels)
        elif kind == "audio-chunk":
            await self._audio(event)
        elif kind == "audio-stop":
            await self._finish_transcription()
        elif kind == "synthesize":
            await self._synthesize(event)
        elif kind == "ping":
            await self._send(Pong(text=(_text_field(event, "text") or "")[:256]).event())
        else:
            logger.debug("wyoming: {} sent {!r}, ignored", self.peer, kind)

    async def _start_transcription(self) -> None:
        recognizer = self._service.recognizer
        if recognizer is None:
            raise Refused("this speaker serves no speech recognition", "no-asr")
        await self._end_transcription()  # a new request replaces an unfinished one
        utterance = recognizer.utterance()
        await utterance.begin()
        self._asr = _Transcription(utterance, time.monotonic())

    async def _audio(self, event: Event) -> None:
        asr = self._asr
        if asr is None:
            return  # audio outside a request: nothing listens to it
        chunk = AudioChunk.from_event(_checked_format(event))
        if asr.format is not None and asr.format != (chunk.rate, chunk.width, chunk.channels):
            raise Refused("audio format changed within a request", "bad-audio")
        asr.format = (chunk.rate, chunk.width, chunk.channels)
        if len(chunk.audio) % (chunk.width * chunk.channels):
            raise Refused("audio chunk is not a whole number of samples", "bad-audio")
        pcm = asr.converter.convert(chunk).audio
        asr.bytes += len(pcm)
        if asr.bytes > self._bounds.max_audio_bytes:
            raise Refused(
                f"audio longer than {self._bounds.max_audio_s:g} s in one request", "too-long"
            )
        await asr.utterance.feed(pcm)

    async def _finish_transcription(self) -> None:
        asr, self._asr = self._asr, None
        if asr is None:
            return
        deadline = asr.started + self._bounds.max_audio_s + REQUEST_MARGIN_S
        wait = max(1.0, deadline - time.monotonic())
        try:
            text = await asr.utterance.finish(wait)
        except TimeoutError:
            raise Refused("the recognizer stayed busy with other requests", "busy") from None
        seconds = asr.bytes / (2 * SAMPLE_RATE)
        logger.info("wyoming: {} {:.1f} s of audio → {!r}", self.peer, seconds, text)
        await self._send(Transcript(text=text).event())

    async def _end_transcription(self) -> None:
        asr, self._asr = self._asr, None
        if asr is not None:
            await asr.utterance.abort()

    async def _synthesize(self, event: Event) -> None:
        voice = self._service.voice
        if voice is None:
            raise Refused("this speaker serves no voice", "no-tts")
        text = _text_field(event, "text")
        if not text:
            raise Refused("synthesize needs a text", "bad-request")
        if len(text) > self._bounds.max_text_chars:
            raise Refused(f"text longer than {self._bounds.max_text_chars} characters", "too-long")
        from firmware_app.speak.output import speakable_pieces

        pieces = speakable_pieces(text, first_chars=None)
        rate = voice.sample_rate
        self._synthesizing = True
        try:
            await self._send(AudioStart(rate=rate, width=2, channels=1).event())
            async for pcm in voice.speak(pieces):
                await self._send(AudioChunk(rate=rate, width=2, channels=1, audio=pcm).event())
                self.last_active = time.monotonic()
            await self._send(AudioStop().event())
        finally:
            self._synthesizing = False
        logger.info("wyoming: {} synthesized {} characters", self.peer, len(text))


def _checked_format(event: Event) -> Event:
    """The event, if its audio format is one the converter can take."""
    data = event.data
    rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
    if not (
        isinstance(rate, int)
        and rate in RATES
        and width in WIDTHS
        and channels in CHANNELS
        and not any(isinstance(v, bool) for v in (rate, width, channels))
    ):
        raise Refused(
            f"audio format rate={rate!r} width={width!r} channels={channels!r} "
            f"is not one this speaker takes (8-48 kHz, 1/2/4 bytes, 1-2 channels)",
            "bad-audio",
        )
    return event


def _text_field(event: Event, key: str) -> str | None:
    value = event.data.get(key)
    if value is not None and not isinstance(value, str):
        raise Refused(f"{key} is not text", "bad-request")
    return value


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "client")
