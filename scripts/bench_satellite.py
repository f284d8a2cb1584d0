#!/usr/bin/env python3
"""The satellite's own share of the wait, printed as JSON: from the end of speech to the
first reply audio, on the real engines under ``simulate``, with a Home Assistant that
answers at once (aioesphomeapi's client; its TTS reply a WAV served on 127.0.0.1), so
what is measured is the speaker's part only (end=True, fetching, decoding, playing).

- ``home_reply_s``: ``speech_end`` → ``speak_start`` of Home Assistant's reply;
- ``home_hung_local_s``: Home Assistant accepts the run, then hangs (its process stops,
  its connection stays up): the local brain's reply, once the ping sent with the end of
  speech went unanswered;
- ``no_home_local_s``: no Home Assistant at all (the local brain, as without the
  satellite).

    .venv/bin/python scripts/bench_satellite.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from loguru import logger  # noqa: E402

from firmware_app.app import simulation  # noqa: E402
from firmware_app.app.loading import load_engines  # noqa: E402
from firmware_app.config.settings import Settings  # noqa: E402
from firmware_app.core.events import Event, read_events  # noqa: E402


def tone(seconds: float = 1.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return out.getvalue()


def serve(body: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/tts.wav"


class Home:
    """Home Assistant's client: accepts every run; with ``url``, answers at once, else
    hangs for a few seconds at the first audio."""

    def __init__(self, port: int, url: str | None) -> None:
        self.port, self.url = port, url
        self.hung = False
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client: Any = None

    def connect(self) -> None:
        asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(10)

    async def _connect(self) -> None:
        from aioesphomeapi import APIClient

        self.client = APIClient("127.0.0.1", self.port, "")
        await self.client.connect(login=True)
        self.client.subscribe_voice_assistant(
            handle_start=self._start, handle_stop=self._stop, handle_audio=self._audio
        )
        await self.client.device_info()

    async def _start(self, *args: Any) -> int:
        return 0

    async def _audio(self, data: bytes) -> None:
        if self.url is None and not self.hung:
            self.hung = True
            time.sleep(4.0)  # the whole client stops, as a hung process would

    async def _stop(self, abort: bool) -> None:
        from aioesphomeapi.model import VoiceAssistantEventType as Ev

        if abort or self.url is None:
            return
        for kind, data in (
            (Ev.VOICE_ASSISTANT_STT_END, {"text": "what time is it"}),
            (Ev.VOICE_ASSISTANT_INTENT_START, None),
            (Ev.VOICE_ASSISTANT_INTENT_END, {"conversation_id": "c", "continue_conversation": "0"}),
            (Ev.VOICE_ASSISTANT_TTS_START, {"text": "It is noon"}),
            (Ev.VOICE_ASSISTANT_TTS_END, {"url": self.url}),
            (Ev.VOICE_ASSISTANT_RUN_END, None),
        ):
            self.client.send_voice_assistant_event(kind, data)

    def close(self) -> None:
        if self.client is not None:
            asyncio.run_coroutine_threadsafe(self.client.disconnect(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(engines: Any, wav: Path, mode: str, url: str) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            esphome={"enabled": True, "host": "127.0.0.1", "port": port},
        )
        home = None if mode == "no_home" else Home(port, url if mode == "home" else None)

        def connect_first(event: Event) -> None:
            if home is not None and home.client is None:
                home.connect()

        log = Path(tmp) / "events.jsonl"
        try:
            simulation.simulate(
                settings, wav, None, log, engines=engines, observers=[connect_first]
            )
        finally:
            if home is not None:
                home.close()
        events = read_events(log)
    end = next(e["wall"] for e in events if e["type"] == "speech_end")
    start = next(e["wall"] for e in events if e["type"] == "speak_start" and e["wall"] > end)
    return round(start - end, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logger.remove()
    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    engines = load_engines(settings, steady=True)
    import soxr

    said = np.concatenate(
        [np.frombuffer(c, "<i2") for c in engines.tts.synthesize("Hey Jarvis, what time is it?")]
    )
    speech = soxr.resample(said, engines.tts.sample_rate, 16000).astype("<i2")
    audio = np.concatenate([np.zeros(16000, "<i2"), speech, np.zeros(48000, "<i2")])
    wav = Path(tempfile.mkdtemp()) / "in.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(audio.tobytes())
    httpd, url = serve(tone())
    results: dict[str, object] = {}
    try:
        for mode in ("home", "home_hung", "no_home"):
            figures = [measure(engines, wav, mode, url) for _ in range(args.runs)]
            key = {"home": "home_reply_s", "home_hung": "home_hung_local_s"}.get(
                mode, "no_home_local_s"
            )
            results[key] = statistics.median(figures)
            results[key + "_runs"] = figures
    finally:
        httpd.shutdown()
    results["note"] = (
        "simulate on the real engines; one loaded machine; Home Assistant answers at once"
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
