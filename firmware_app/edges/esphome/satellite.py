"""The satellite edge: Home Assistant's side of a request, on the API's asyncio loop.

The assistant calls `Satellite.start/feed/end/abort` (the `parts.Satellite` part) from its
own thread; they only schedule work on the loop. What Home Assistant says becomes
HomeStage/HomeAudio/HomeTimer messages and commands in the assistant's inbox: only the
state machine acts on them. Every stage of a run has a deadline, so no run hangs:

| waiting for | deadline | then |
|---|---|---|
| ``VoiceAssistantResponse`` after the start | ``pipeline_answer_s`` | ``unanswered``: local brain |
| the next event after the end of speech | ``stage_timeout_s`` | ``lost``: local brain |
| the answer after ``INTENT_START`` | ``answer_timeout_s`` | ``lost`` |
| the reply after ``TTS_START``/``TTS_END`` | ``fetch_timeout_s`` + ``stage_timeout_s`` | ``lost`` |

The audio after the wake word is held (at most ``MAX_HELD_FRAMES``) until Home Assistant
accepts the run, then streamed frame by frame; the wake word itself is never sent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf.message import Message as Proto
from loguru import logger

from firmware_app import __version__
from firmware_app.config.settings import EsphomeSettings
from firmware_app.core.events import Event
from firmware_app.core.messages import Command, HomeAudio, HomeStage, HomeTimer, Message
from firmware_app.edges.esphome import entities, proto
from firmware_app.edges.esphome.fetch import FetchError, fetch_wav
from firmware_app.edges.esphome.proto import pb
from firmware_app.edges.esphome.server import ApiServer, Connection, LoopThread

MAX_HELD_FRAMES = 50  # 4 s of audio waiting for Home Assistant to accept the run
SENSOR_EVERY_S = 60.0
TIMER_EVENTS: dict[int, Literal["started", "updated", "cancelled", "finished"]] = {
    0: "started",
    1: "updated",
    2: "cancelled",
    3: "finished",
}
FEATURES = proto.VOICE_ASSISTANT | proto.API_AUDIO | proto.TIMERS | proto.ANNOUNCE
FEATURES |= proto.START_CONVERSATION
# VoiceAssistantEvent numbers
ERROR, RUN_START, RUN_END, STT_START, STT_END, INTENT_START, INTENT_END = range(7)
TTS_START, TTS_END, STT_VAD_END = 7, 8, 12


@dataclass
class Run:
    id: int
    conn: Connection
    answered: bool = False
    ended: bool = False
    held: deque[bytes] = field(default_factory=lambda: deque(maxlen=MAX_HELD_FRAMES))
    deadline: asyncio.TimerHandle | None = None
    fetch: asyncio.Task[tuple[bytes, int]] | None = None
    listen_after: bool = False


class Satellite:
    """The `parts.Satellite` part, the API server's `Handler` and an event-bus observer."""

    def __init__(
        self,
        cfg: EsphomeSettings,
        *,
        post: Callable[[Message], None],
        status: Callable[[], dict[str, object]],
        name: str,
        mac: str,
        psk: bytes | None,
        wake_words: list[str],
        volume: int = 100,
        muted: bool = False,
    ) -> None:
        self.cfg = cfg
        self._post = post
        self._status = status
        self.name = name
        self.mac = mac
        self.wake_words = wake_words
        self.volume = volume
        self.muted = muted
        self.playing = False
        self.loop = LoopThread()
        self.server = ApiServer(
            self,
            name=name,
            mac=mac,
            server_info=f"ttbt5 {__version__}",
            psk=psk,
            max_connections=cfg.max_connections,
        )
        self.home: Connection | None = None
        """The connection subscribed to the voice assistant (Home Assistant)."""
        self.run: Run | None = None
        self._ids = itertools.count(1)
        self._announcing: dict[int, Connection] = {}
        self._conversation = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    # --- lifecycle (any thread) ----------------------------------------------------------
    def serve(self, host: str | None = None, port: int | None = None) -> int:
        """Listen (raises OSError when the port is taken); returns the port."""
        host = self.cfg.host if host is None else host
        port = self.cfg.port if port is None else port
        self.port = int(self.loop.run(self.server.start(host, port)))
        self.loop.call(self._sensors_soon)
        logger.info("esphome: API on {}:{} as {} ({})", host, self.port, self.name, self.mac)
        return self.port

    def close(self) -> None:
        if self.loop.loop.is_closed():
            return
        try:
            self.loop.run(self.server.close(), timeout=5)
        except Exception as exc:
            logger.warning("esphome: closing: {}", exc)
        self.loop.stop()

    @property
    def connected(self) -> bool:
        home = self.home
        return home is not None and not home.closed

    # --- the part (assistant thread) -----------------------------------------------------
    def start(self, wake_phrase: str, followup: bool) -> int:
        home = self.home
        if home is None or home.closed:
            return 0
        run = next(self._ids)
        self.loop.call(self._begin, run, home, wake_phrase, followup)
        return run

    def feed(self, run: int, pcm: bytes) -> None:
        self.loop.call(self._feed, run, pcm)

    def end(self, run: int) -> None:
        self.loop.call(self._end, run)

    def abort(self, run: int) -> None:
        self.loop.call(self._abort, run)

    # --- bus observer (assistant thread) -------------------------------------------------
    def __call__(self, event: Event) -> None:
        if event.type in ("volume", "mute", "speak_start", "speak_end", "speak_dropped"):
            self.loop.call(self._on_event, event)

    # --- runs (loop thread) ------------------------------------------------------------
    def _begin(self, run_id: int, conn: Connection, phrase: str, followup: bool) -> None:
        if self.run is not None:
            self._finish(self.run, stop=True)
        run = self.run = Run(run_id, conn)
        conn.send(
            pb.VoiceAssistantRequest(
                start=True,
                conversation_id=self._conversation if followup else "",
                flags=0,
                audio_settings=pb.VoiceAssistantAudioSettings(volume_multiplier=1.0),
                wake_word_phrase=phrase,
            )
        )
        self._deadline(run, self.cfg.pipeline_answer_s, "unanswered")

    def _feed(self, run_id: int, pcm: bytes) -> None:
        run = self.run
        if run is None or run.id != run_id or run.ended:
            return
        if run.answered:
            run.conn.send(pb.VoiceAssistantAudio(data=pcm))
        else:
            run.held.append(pcm)

    def _end(self, run_id: int) -> None:
        run = self.run
        if run is None or run.id != run_id or run.ended:
            return
        run.ended = True
        if run.answered:
            run.conn.send(pb.VoiceAssistantAudio(end=True))
            self._deadline(run, self.cfg.stage_timeout_s, "lost")

    def _abort(self, run_id: int) -> None:
        run = self.run
        if run is not None and run.id == run_id:
            self._finish(run, stop=True)

    def _finish(self, run: Run, stop: bool = False) -> None:
        if run.deadline is not None:
            run.deadline.cancel()
        if run.fetch is not None and not run.fetch.done():
            run.fetch.cancel()
        if stop:
            run.conn.send(pb.VoiceAssistantRequest(start=False))
        if self.run is run:
            self.run = None

    def _deadline(self, run: Run, seconds: float, stage: str) -> None:
        if run.deadline is not None:
            run.deadline.cancel()
        run.deadline = self.loop.loop.call_later(seconds, self._expired, run, stage, seconds)

    def _expired(self, run: Run, stage: str, seconds: float) -> None:
        if self.run is not run:
            return
        logger.warning("esphome: Home Assistant did not answer within {} s: {}", seconds, stage)
        self._finish(run, stop=True)
        reason = f"no answer within {seconds:g} s"
        self._post(HomeStage(run.id, stage, {"reason": reason}))  # type: ignore[arg-type]

    # --- the handler (loop thread) -------------------------------------------------------
    def device_info(self) -> Proto:
        return pb.DeviceInfoResponse(
            uses_password=False,
            name=self.name,
            friendly_name=f"TTBT5 {self.name.removeprefix('ttbt5-')}",
            mac_address=self.mac,
            esphome_version=f"{__version__} (ttbt5)",
            model="TTBT5 voice assistant",
            manufacturer="TTBT5",
            project_name="ttbt5.voice-assistant",
            project_version=__version__,
            voice_assistant_feature_flags=FEATURES,
        )

    def entities(self) -> list[Proto]:
        return entities.entity_list(self.mac, self.wake_words)

    def states(self) -> list[Proto]:
        out = [
            entities.media_state(self.playing, self.volume, self.muted),
            pb.SelectStateResponse(key=entities.WAKE_WORD, state=self.wake_words[0]),
            pb.SwitchStateResponse(key=entities.MUTE, state=self.muted),
        ]
        return out + entities.sensor_states(self._safe_status())

    def on_closed(self, conn: Connection) -> None:
        if conn is self.home:
            self.home = None
            logger.info("esphome: Home Assistant went away ({})", conn.peer)
        run = self.run
        if run is not None and run.conn is conn:
            self._finish(run)
            self._post(HomeStage(run.id, "lost", {"reason": "disconnected"}))
        for key in [k for k, c in self._announcing.items() if c is conn]:
            del self._announcing[key]

    def on_message(self, conn: Connection, msg: Proto) -> None:
        if isinstance(msg, pb.SubscribeVoiceAssistantRequest):
            if msg.subscribe:
                self.home = conn
                logger.info("esphome: Home Assistant subscribed ({})", conn.peer)
            elif conn is self.home:
                self.home = None
        elif isinstance(msg, pb.VoiceAssistantConfigurationRequest):
            conn.send(self._configuration())
        elif isinstance(msg, pb.VoiceAssistantSetConfiguration):
            logger.info("esphome: wake words are chosen in [wake] models on the speaker")
        elif isinstance(msg, pb.VoiceAssistantResponse):
            self._on_response(conn, msg)
        elif isinstance(msg, pb.VoiceAssistantEventResponse):
            self._on_pipeline_event(conn, msg)
        elif isinstance(msg, pb.VoiceAssistantAnnounceRequest):
            self._spawn(self._announce(conn, msg))
        elif isinstance(msg, pb.VoiceAssistantTimerEventResponse):
            event = TIMER_EVENTS.get(msg.event_type)
            if event is not None:
                self._post(
                    HomeTimer(
                        event,
                        str(msg.timer_id)[:64],
                        str(msg.name)[:64],
                        int(msg.total_seconds),
                        int(msg.seconds_left),
                    )
                )
        elif isinstance(msg, pb.MediaPlayerCommandRequest):
            self._on_media_command(conn, msg)
        elif isinstance(msg, pb.SwitchCommandRequest) and msg.key == entities.MUTE:
            self._post(Command("mute", {"muted": bool(msg.state)}, source="esphome"))
        elif isinstance(msg, pb.SelectCommandRequest) and msg.key == entities.WAKE_WORD:
            conn.send(pb.SelectStateResponse(key=entities.WAKE_WORD, state=self.wake_words[0]))

    def _configuration(self) -> Proto:
        words = [
            pb.VoiceAssistantWakeWord(id=w, wake_word=w.replace("_", " "), trained_languages=["en"])
            for w in self.wake_words
        ]
        return pb.VoiceAssistantConfigurationResponse(
            available_wake_words=words,
            active_wake_words=self.wake_words,
            max_active_wake_words=len(self.wake_words),
        )

    def _on_response(self, conn: Connection, msg: Proto) -> None:
        run = self.run
        if run is None or run.conn is not conn or run.answered:
            return
        if msg.error or msg.port != 0:
            self._finish(run)
            reason = "refused" if msg.error else "wants UDP audio"
            self._post(HomeStage(run.id, "unanswered", {"reason": reason}))
            return
        run.answered = True
        if run.deadline is not None:
            run.deadline.cancel()
        for pcm in run.held:
            conn.send(pb.VoiceAssistantAudio(data=pcm))
        run.held.clear()
        if run.ended:
            conn.send(pb.VoiceAssistantAudio(end=True))
            self._deadline(run, self.cfg.stage_timeout_s, "lost")

    def _on_pipeline_event(self, conn: Connection, msg: Proto) -> None:
        run = self.run
        if run is None or run.conn is not conn:
            return
        data = {d.name: d.value for d in msg.data}
        kind = msg.event_type
        cfg = self.cfg
        if kind in (STT_VAD_END, STT_END):
            text = data.get("text", "")[:500]
            self._post(HomeStage(run.id, "stt_end", {"text": text} if kind == STT_END else {}))
            self._deadline(run, cfg.stage_timeout_s, "lost")
        elif kind == INTENT_START:
            self._deadline(run, cfg.answer_timeout_s, "lost")
        elif kind == INTENT_END:
            run.listen_after = data.get("continue_conversation") == "1"
            self._conversation = data.get("conversation_id", "")[:128]
            self._post(HomeStage(run.id, "intent", {"continue_conversation": run.listen_after}))
            self._deadline(run, cfg.stage_timeout_s, "lost")
        elif kind == TTS_START:
            self._deadline(run, cfg.fetch_timeout_s + cfg.stage_timeout_s, "lost")
        elif kind == TTS_END:
            url = data.get("url", "")
            if url:
                run.fetch = self._spawn(fetch_wav(url, self._max_bytes, cfg.fetch_timeout_s))
            self._deadline(run, cfg.fetch_timeout_s + cfg.stage_timeout_s, "lost")
        elif kind == ERROR:
            self._finish(run)
            fields = {"code": data.get("code", "")[:64], "message": data.get("message", "")[:200]}
            self._post(HomeStage(run.id, "error", fields))
        elif kind == RUN_END:
            self._spawn(self._run_end(run))
        elif run.answered and run.ended and kind != RUN_START:
            self._deadline(run, cfg.stage_timeout_s, "lost")

    async def _run_end(self, run: Run) -> None:
        """The reply, once fetched, then the run is over."""
        if self.run is not run:
            return
        fetch = run.fetch
        if fetch is None:
            self._finish(run)
            self._post(HomeStage(run.id, "end"))
            return
        try:
            pcm, rate = await fetch
        except (FetchError, asyncio.CancelledError) as exc:
            if self.run is run:
                self._finish(run)
                message = str(exc) or "cancelled"
                self._post(HomeStage(run.id, "error", {"code": "fetch", "message": message}))
            return
        if self.run is run:
            self._finish(run)
            self._post(HomeAudio("reply", run.id, pcm, rate, listen_after=run.listen_after))

    @property
    def _max_bytes(self) -> int:
        return int(self.cfg.max_audio_mb * 1024 * 1024)

    async def _announce(self, conn: Connection, msg: Proto) -> None:
        key = 1_000_000 + next(self._ids)
        parts: list[bytes] = []
        rate = 0
        for url in (msg.preannounce_media_id, msg.media_id):
            if not url:
                continue
            try:
                pcm, got = await fetch_wav(url, self._max_bytes, self.cfg.fetch_timeout_s)
            except FetchError as exc:
                logger.warning("esphome: announcement not played: {}", exc)
                if url == msg.media_id:
                    conn.send(pb.VoiceAssistantAnnounceFinished(success=False))
                    return
                continue
            if rate and got != rate:  # keep one rate: the chime is short, resample it
                import numpy as np
                import soxr

                pcm = soxr.resample(np.frombuffer(pcm, "<i2"), got, rate).astype("<i2").tobytes()
            parts.append(pcm)
            rate = rate or got
        if not parts:
            conn.send(pb.VoiceAssistantAnnounceFinished(success=False))
            return
        self._announcing[key] = conn
        text = str(msg.text)[:500]
        listen = bool(msg.start_conversation)
        self._post(HomeAudio("announce", key, b"".join(parts), rate, text, listen))

    def _on_media_command(self, conn: Connection, msg: Proto) -> None:
        if msg.has_volume:
            volume = max(0, min(100, round(float(msg.volume) * 100)))
            self._post(Command("volume", {"volume": volume}, source="esphome"))
        if msg.has_command:
            if msg.command in (1, 2):  # pause, stop
                self._post(Command("stop", source="esphome"))
            elif msg.command in (3, 4):  # mute, unmute
                self._post(Command("mute", {"muted": msg.command == 3}, source="esphome"))
        if msg.has_media_url:
            announce = bool(msg.has_announcement and msg.announcement)
            self._spawn(self._media(conn, str(msg.media_url), announce))

    async def _media(self, conn: Connection, url: str, announce: bool) -> None:
        try:
            pcm, rate = await fetch_wav(url, self._max_bytes, self.cfg.fetch_timeout_s)
        except FetchError as exc:
            logger.warning("esphome: media not played: {}", exc)
            return
        key = 1_000_000 + next(self._ids)
        self._post(HomeAudio("announce" if announce else "media", key, pcm, rate))

    # --- what the assistant did (loop thread) --------------------------------------------
    def _on_event(self, event: Event) -> None:
        f = event.fields
        if event.type == "volume":
            self.volume = int(f.get("volume", self.volume))
        elif event.type == "mute":
            self.muted = bool(f.get("muted"))
            self._broadcast(pb.SwitchStateResponse(key=entities.MUTE, state=self.muted))
        elif f.get("origin") == "home":
            self.playing = event.type == "speak_start"
            key = int(f.get("request_id") or 0)
            conn = None if self.playing else self._announcing.pop(key, None)
            if conn is not None:
                conn.send(pb.VoiceAssistantAnnounceFinished(success=event.type == "speak_end"))
        self._broadcast(entities.media_state(self.playing, self.volume, self.muted))

    def _broadcast(self, msg: Proto) -> None:
        for conn in self.server.connections:
            if conn.connected:
                conn.send(msg)

    def _sensors_soon(self) -> None:
        for conn in self.server.connections:
            if conn.connected:
                conn.send(*entities.sensor_states(self._safe_status()))
        self.loop.loop.call_later(SENSOR_EVERY_S, self._sensors_soon)

    def _safe_status(self) -> dict[str, object]:
        try:
            return self._status()
        except Exception as exc:  # health must never take the API down
            logger.warning("esphome: status unavailable: {}", exc)
            return {}

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = self.loop.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
