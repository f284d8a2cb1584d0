"""The Wyoming TCP server: connections capped, the engines loaded once.

At the cap a new client takes the place of the connection idle longest; when every
connection is mid-request the newcomer is refused. So clients that connect and say
nothing can never lock Home Assistant out, and the memory of the server is bounded by
the cap times one request's audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable

from loguru import logger

from firmware_app.config.settings import Settings, WyomingSettings
from firmware_app.core.engines import RebuildableTranscriber
from firmware_app.core.errors import TTBT5Error
from firmware_app.edges.wyoming.connection import Bounds, Connection, Service
from firmware_app.edges.wyoming.describe import build_info
from firmware_app.edges.wyoming.engines import SharedRecognizer, SharedVoice
from firmware_app.edges.wyoming.framing import reader_limit
from firmware_app.edges.wyoming.home_refresh import HomeRefresh, home_link


def load_service(settings: Settings) -> Service:
    """The recognizer and the voice as configured (``[stt]``, ``[tts]``), each loaded
    once; one that cannot load is left out with a warning, not both."""
    from firmware_app.app.loading import load_tts
    from firmware_app.recognize.stt import load_transcriber

    link = home_link(settings)
    stt, problem, active = load_transcriber(settings, link[0].intents if link else None)
    recognizer = None
    home = None
    if stt is None:
        logger.warning("wyoming: no speech recognition to offer: {}", problem)
    else:
        logger.info("wyoming: speech recognition: {}", active)
        recognizer = SharedRecognizer(stt, active)
        if link is not None and isinstance(stt, RebuildableTranscriber):
            sentences, fetch = link
            refresh_s = settings.wyoming.homeassistant_refresh_s
            home = HomeRefresh(fetch, sentences, recognizer, refresh_s)
        elif link is not None:
            logger.info("wyoming: the recognizer hears open speech: Home Assistant's names unused")
    voice = None
    try:
        tts = load_tts(settings)
    except TTBT5Error as exc:
        logger.warning("wyoming: no voice to offer: {}", exc)
    else:
        voice = SharedVoice(tts, *_voice_name(tts))
    if recognizer is None and voice is None:
        raise TTBT5Error("wyoming: neither speech recognition nor a voice could be loaded")
    cfg = settings.wyoming
    bounds = Bounds(cfg.idle_s, cfg.max_audio_s, cfg.max_text_chars)
    return Service(recognizer, voice, build_info(recognizer, voice), bounds, home=home)


def _voice_name(tts: object) -> tuple[str, str]:
    """(voice name, language) from the Piper voice's file and config."""
    import json
    from pathlib import Path

    path = getattr(tts, "voice_path", None)
    if not isinstance(path, Path):
        return "ttbt5", "en_US"
    try:
        config = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
        language = str(config["language"]["code"])
    except (OSError, ValueError, KeyError, TypeError):
        language = "en_US"
    return path.name.removesuffix(".onnx"), language


class WyomingServer:
    def __init__(self, service: Service, host: str, port: int, max_connections: int) -> None:
        self._service = service
        self._host = host
        self._port = port
        self._max = max_connections
        self._connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._home_task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system picked when asked for 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self._host,
            self._port,
            limit=reader_limit(self._service.bounds.limits),
        )
        logger.info("wyoming: serving on {}:{}", self._host, self.port)
        if self._service.home is not None:
            self._home_task = asyncio.create_task(self._service.home.run(), name="wyoming-home")

    async def close(self) -> None:
        if self._home_task is not None:
            self._home_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._home_task
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(reader, writer, self._service)
        if len(self._connections) >= self._max and not self._make_room():
            self._service.complaints.warn(
                "wyoming: {} refused: {} clients are mid-request", connection.peer, self._max
            )
            connection.close()
            return
        self._connections.add(connection)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)

    def _make_room(self) -> bool:
        idle = [c for c in self._connections if not c.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.last_active)
        logger.info(
            "wyoming: {} idle {:.0f} s, closed for a new client",
            oldest.peer,
            time.monotonic() - oldest.last_active,
        )
        oldest.close()
        self._connections.discard(oldest)
        return True


def serve(settings: Settings, ready: Callable[[int], None] | None = None) -> int:
    """``ttbt5 wyoming``: serve until SIGTERM or SIGINT."""
    service = load_service(settings)
    cfg: WyomingSettings = settings.wyoming

    async def main() -> None:
        server = WyomingServer(service, cfg.host, cfg.port, cfg.max_connections)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if ready is not None:
            ready(server.port)
        await stop.wait()
        logger.info("wyoming: stopping")
        await server.close()

    try:
        asyncio.run(main())
    finally:
        _close_engines(service)
    return 0


def _close_engines(service: Service) -> None:
    if service.recognizer is not None:
        service.recognizer.close()
    if service.voice is not None:
        service.voice.close()


class BackgroundWyoming:
    """The server on its own thread and event loop, for ``ttbt5 run`` with
    ``[wyoming] enabled``; its engines are its own (the assistant's are not thread-safe)."""

    def __init__(self, service: Service, cfg: WyomingSettings) -> None:
        self._service = service
        self._server = WyomingServer(service, cfg.host, cfg.port, cfg.max_connections)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wyoming", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            _close_engines(self._service)
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._server.start())
        except OSError as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def close(self) -> None:
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._server.close(), self._loop)
            try:
                future.result(5)
            except (TimeoutError, RuntimeError) as exc:
                logger.warning("wyoming: did not close cleanly: {}", exc)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        _close_engines(self._service)
