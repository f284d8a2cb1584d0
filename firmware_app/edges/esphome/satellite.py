"""The satellite edge: Home Assistant's side of a request, on the API's asyncio loop.

The assistant calls `Satellite.start/feed/end/abort` (the `parts.Satellite` part) from its
own thread; they only schedule work on the loop. What Home Assistant says becomes
HomeStage/HomeAudio/HomeTimer messages and commands in the assistant's inbox: only the
state machine acts on them. The runs of Home Assistant's pipeline, with their deadlines,
are `pipeline.Pipeline`'s; announcements, media, timers, volume and mute are here. When
the reply or an announcement has played (or was cut), ``VoiceAssistantAnnounceFinished``
tells Home Assistant, which keeps its satellite "responding" until then.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from google.protobuf.message import Message as Proto
from loguru import logger

from firmware_app import __version__
from firmware_app.config.settings import EsphomeSettings
from firmware_app.core.events import Event
from firmware_app.core.messages import Command, HomeAudio, HomeTimer, Message
from firmware_app.edges.esphome import entities, proto
from firmware_app.edges.esphome.advertise import ESPHOME_VERSION
from firmware_app.edges.esphome.fetch import FetchError, fetch_announcement, fetch_wav
from firmware_app.edges.esphome.pipeline import Pipeline
from firmware_app.edges.esphome.proto import pb
from firmware_app.edges.esphome.server import ApiServer, Connection, LoopThread
from firmware_app.edges.esphome.timers import HomeTimers

MAX_AWAITED = 32  # replies and announcements whose end Home Assistant waits to hear of
MAX_FETCHES = 4  # announcements and media being fetched at once
SENSOR_EVERY_S = 60.0
TIMER_EVENTS: dict[int, Literal["started", "updated", "cancelled", "finished"]] = {
    0: "started",
    1: "updated",
    2: "cancelled",
    3: "finished",
}
FEATURES = proto.VOICE_ASSISTANT | proto.API_AUDIO | proto.TIMERS | proto.ANNOUNCE
FEATURES |= proto.START_CONVERSATION


def wake_id(model: str) -> str:
    """A wake model as the API names it: ``hey_jarvis`` (a path's stem for a file)."""
    return model.rsplit("/", 1)[-1].split(".", 1)[0]


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
        chosen: list[str] | None = None,
        remember: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``chosen``: the wake words Home Assistant chose before a restart (None: all);
        ``remember`` keeps a new choice (the device's store) so it outlives a restart."""
        self.cfg = cfg
        self._post = post
        self._status = status
        self.name = name
        self.mac = mac
        self.wake_words = wake_words
        known = [w for w in wake_words if chosen is not None and w in chosen]
        self.active = known if chosen is not None and (known or not chosen) else list(wake_words)
        """The wake words the speaker answers; Home Assistant's wake word select (or ours)
        chooses among the configured ones (a choice of none left: all of them again)."""
        self._remember = remember
        self.volume = volume
        self.muted = muted
        self.speaking = False
        """Audio from Home Assistant plays as speech (a reply, an announcement)."""
        self.media = 0
        """The media item playing under speech (its key), 0 for none."""
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
        self._ids = itertools.count(1)
        self._announcing: dict[int, Connection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fetches = 0
        self.timers = HomeTimers()
        """Home Assistant's running timers, shown on the LEDs (`timing`)."""
        self.pipeline = Pipeline(
            cfg,
            post=post,
            loop=self.loop.loop,
            spawn=self._spawn,
            await_played=self._await_played,
        )
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
    def playing(self) -> bool:
        """What Home Assistant's media player shows: playing or idle."""
        return self.speaking or self.media != 0

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
        self.loop.call(self.pipeline.begin, run, home, wake_phrase, followup)
        return run

    def feed(self, run: int, pcm: bytes) -> None:
        self.loop.call(self.pipeline.feed, run, pcm)

    def end(self, run: int) -> None:
        self.loop.call(self.pipeline.end, run)

    def abort(self, run: int) -> None:
        self.loop.call(self.pipeline.abort, run)

    def hears(self, model: str) -> bool:
        return wake_id(model) in self.active

    def timing(self) -> bool:
        return self.timers.running()

    def _activate(self, words: list[str]) -> None:
        """Home Assistant chose the wake words to answer (unknown ones are ignored; an
        empty choice leaves the speaker waking only by the button and commands)."""
        known = [w for w in self.wake_words if w in words]
        if words and not known:
            logger.info("esphome: unknown wake words {} ignored", words[:4])
        else:
            self.active = known
            if self._remember is not None:
                self._remember(known)
        logger.info("esphome: wake words now {}", self.active or "none")
        self._broadcast(self._select_state())

    def _select_state(self) -> Proto:
        state = self.active[0] if self.active else self.wake_words[0]
        return pb.SelectStateResponse(key=entities.WAKE_WORD, state=state)

    def status(self) -> dict[str, object] | None:
        home = self.home
        connected = home is not None and not home.closed
        return {
            "connected": connected,
            "peer": home.peer if home is not None and connected else None,
            "clients": len(self.server.connections),
            "encrypted": self.server.psk is not None,
        }

    # --- bus observer (assistant thread) -------------------------------------------------
    def __call__(self, event: Event) -> None:
        if event.type in ("volume", "mute", "speak_start", "speak_end", "speak_dropped"):
            self.loop.call(self._on_event, event)
        elif event.type == "satellite" and event.fields.get("stage") in ("play", "media_stopped"):
            self.loop.call(self._on_media, event)

    # --- the handler (loop thread) -------------------------------------------------------
    def device_info(self) -> Proto:
        return pb.DeviceInfoResponse(
            uses_password=False,
            name=self.name,
            friendly_name=f"TTBT5 {self.name.removeprefix('ttbt5-')}",
            mac_address=self.mac,
            esphome_version=ESPHOME_VERSION,  # the API it speaks; ours is project_version
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
            self._select_state(),
            pb.SwitchStateResponse(key=entities.MUTE, state=self.muted),
        ]
        return out + entities.sensor_states(self._safe_status())

    def on_closed(self, conn: Connection) -> None:
        if conn is self.home:
            self.home = None
            logger.info("esphome: Home Assistant went away ({})", conn.peer)
        self.pipeline.on_closed(conn)
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
            conn.send(entities.voice_configuration(self.wake_words, self.active))
        elif isinstance(msg, pb.VoiceAssistantSetConfiguration):
            self._activate([str(w) for w in msg.active_wake_words])
        elif isinstance(msg, pb.VoiceAssistantResponse):
            self.pipeline.on_response(conn, msg)
        elif isinstance(msg, pb.VoiceAssistantEventResponse):
            self.pipeline.on_event(conn, msg)
        elif isinstance(msg, pb.VoiceAssistantAnnounceRequest):
            if self._fetches >= MAX_FETCHES:
                logger.warning("esphome: announcement refused: {} fetches already", MAX_FETCHES)
                conn.send(pb.VoiceAssistantAnnounceFinished(success=False))
            else:
                self._fetch(self._announce(conn, msg))
        elif isinstance(msg, pb.VoiceAssistantTimerEventResponse):
            event = TIMER_EVENTS.get(msg.event_type)
            if event is not None:
                timer_id = str(msg.timer_id)[:64]
                self.timers.update(event, timer_id, float(msg.seconds_left), bool(msg.is_active))
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
            self._activate([str(msg.state)])

    @property
    def _max_bytes(self) -> int:
        return int(self.cfg.max_audio_mb * 1024 * 1024)

    async def _announce(self, conn: Connection, msg: Proto) -> None:
        key = 1_000_000 + next(self._ids)
        try:
            pcm, rate = await fetch_announcement(
                str(msg.preannounce_media_id),
                str(msg.media_id),
                self._max_bytes,
                self.cfg.fetch_timeout_s,
            )
        except FetchError as exc:
            logger.warning("esphome: announcement not played: {}", exc)
            conn.send(pb.VoiceAssistantAnnounceFinished(success=False))
            return
        self._await_played(key, conn)
        text = str(msg.text)[:500]
        listen = bool(msg.start_conversation)
        self._post(HomeAudio("announce", key, pcm, rate, text, listen))

    def _fetch(self, job: Coroutine[Any, Any, None]) -> None:
        """Runs a fetch, counted from now until it ends, so a flood of URLs costs at most
        ``MAX_FETCHES`` at once."""
        self._fetches += 1
        self._spawn(job).add_done_callback(self._fetched)

    def _fetched(self, _: asyncio.Task[Any]) -> None:
        self._fetches -= 1

    def _await_played(self, key: int, conn: Connection) -> None:
        """Home Assistant is told when ``key`` has played; the oldest are forgotten (the
        assistant dropped them unplayed) once ``MAX_AWAITED`` wait."""
        while len(self._announcing) >= MAX_AWAITED:
            self._announcing.pop(next(iter(self._announcing)))
        self._announcing[key] = conn

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
            if self._fetches >= MAX_FETCHES:
                logger.warning("esphome: media refused: {} fetches already", MAX_FETCHES)
            else:
                self._fetch(self._media(conn, str(msg.media_url), announce))

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
            self.speaking = event.type == "speak_start"
            key = int(f.get("request_id") or 0)
            conn = None if self.speaking else self._announcing.pop(key, None)
            if conn is not None:
                conn.send(pb.VoiceAssistantAnnounceFinished(success=event.type == "speak_end"))
        self._broadcast(entities.media_state(self.playing, self.volume, self.muted))

    def _on_media(self, event: Event) -> None:
        """Media under speech started (it is idle again when it has played through) or was
        stopped."""
        f = event.fields
        if f.get("stage") == "media_stopped":
            self.media = 0
        elif f.get("kind") == "media" and f.get("mixed"):
            key = self.media = int(f.get("key") or 0)
            seconds = float(f.get("seconds") or 0)
            self.loop.loop.call_later(seconds + 0.5, self._media_over, key)
        else:
            return
        self._broadcast(entities.media_state(self.playing, self.volume, self.muted))

    def _media_over(self, key: int) -> None:
        if self.media == key:
            self.media = 0
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
