"""Home Assistant's side for the satellite tests: aioesphomeapi's own client (the one
Home Assistant uses) on its own loop thread, recording what the speaker sends; and a
loopback HTTP server that serves WAV files as Home Assistant's TTS proxy would."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import wave
from collections.abc import Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from aioesphomeapi import APIClient
from aioesphomeapi.model import VoiceAssistantEventType as Ev

TEST_KEY = "px7tsbK3C7bpXHr2OevEV2ZMg/FrNBw2+O2pNPbedtA="


def tone_wav(seconds: float = 0.5, rate: int = 22050, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")
    samples = np.repeat(mono, channels)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return out.getvalue()


class WavServer:
    """``url(name)`` serves ``files[name]``; anything else is a 404."""

    def __init__(self) -> None:
        files: dict[str, bytes] = {}
        self.files = files
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply_events(
    url: str, text: str, continue_conversation: bool
) -> list[tuple[Ev, dict[str, str] | None]]:
    cont = "1" if continue_conversation else "0"
    return [
        (Ev.VOICE_ASSISTANT_STT_VAD_END, None),
        (Ev.VOICE_ASSISTANT_STT_END, {"text": text}),
        (Ev.VOICE_ASSISTANT_INTENT_START, None),
        (Ev.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "c1", "continue_conversation": cont}),
        (Ev.VOICE_ASSISTANT_TTS_START, {"text": text}),
        (Ev.VOICE_ASSISTANT_TTS_END, {"url": url}),
        (Ev.VOICE_ASSISTANT_RUN_END, None),
    ]


class FakeHome:
    """Home Assistant as far as the API goes: connects, subscribes to the voice
    assistant, answers pipeline starts (``answer``: the port, None to refuse, or
    ``"never"``) and records the audio and stops it gets."""

    def __init__(self, port: int, psk: str | None = None, answer: Any = 0) -> None:
        self.port = port
        self.psk = psk
        self.answer = answer
        self.starts: list[dict[str, Any]] = []
        self.audio: list[bytes] = []
        self.stops: list[bool] = []
        self.finished: list[bool] = []
        self.states: list[Any] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client: APIClient | None = None
        self.runs_pipeline = True
        """False: it accepts runs but its pipeline never starts (none set up)."""
        self.auto_reply: str | None = None
        """A TTS URL: the pipeline's events up to the run's end are sent by themselves
        as soon as the stream ends (``end=True``), as Home Assistant would."""

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def connect(self, subscribe: bool = True) -> None:
        self.run(self._connect(subscribe))

    async def _connect(self, subscribe: bool) -> None:
        self.client = APIClient("127.0.0.1", self.port, "", noise_psk=self.psk)
        await self.client.connect(login=True)
        if subscribe:
            self.client.subscribe_voice_assistant(
                handle_start=self._start,
                handle_stop=self._stop,
                handle_audio=self._audio,
                handle_announcement_finished=self._finished,
            )
            self.client.subscribe_states(self.states.append)
            await self.client.device_info()  # a round trip: the subscription is in place

    async def _start(
        self, conversation_id: str, flags: int, settings: Any, phrase: str | None
    ) -> int | None:
        self.starts.append({"conversation_id": conversation_id, "phrase": phrase})
        if self.answer == "never":
            await asyncio.sleep(3600)
        if self.answer == 0 and self.runs_pipeline and self.client is not None:
            client = self.client  # its pipeline starts as soon as the run is accepted
            self.loop.call_soon(
                client.send_voice_assistant_event, Ev.VOICE_ASSISTANT_RUN_START, None
            )
        return self.answer  # type: ignore[no-any-return]

    async def _stop(self, abort: bool) -> None:
        self.stops.append(abort)
        if not abort and self.auto_reply and self.client is not None:
            for kind, data in reply_events(self.auto_reply, "", False):
                self.client.send_voice_assistant_event(kind, data)

    async def _audio(self, data: bytes) -> None:
        self.audio.append(data)

    async def _finished(self, finished: Any) -> None:
        self.finished.append(finished.success)

    def event(self, kind: Ev, data: dict[str, str] | None = None) -> None:
        async def send() -> None:
            assert self.client is not None
            self.client.send_voice_assistant_event(kind, data)

        self.run(send())

    def pipeline_reply(self, url: str, text: str = "", continue_conversation: bool = False) -> None:
        """What Home Assistant sends after the end of speech, up to the run's end."""
        for kind, data in reply_events(url, text, continue_conversation):
            self.event(kind, data)

    def close(self) -> None:
        if self.loop.is_closed() or not self.loop.is_running():
            return
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.run(self.client.disconnect(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
