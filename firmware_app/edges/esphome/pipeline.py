"""Home Assistant's pipeline runs, as the speaker sees them: one at a time, on the
satellite's loop. Every stage of a run has a deadline, so no run hangs:

| waiting for | deadline | then |
|---|---|---|
| ``VoiceAssistantResponse`` after the start | ``pipeline_answer_s`` | ``unanswered``: local brain |
| a ping sent with the end of speech | ``ALIVE_S`` (1 s) | ``lost``: local brain (hung) |
| any pipeline event by the end of speech + ``ALIVE_S`` | | ``lost``: its pipeline never started |
| the next event after the end of speech | ``stage_timeout_s`` | ``lost``: local brain |
| the answer after ``INTENT_START`` | ``answer_timeout_s`` | ``lost`` |
| the reply after ``TTS_START``/``TTS_END`` | ``fetch_timeout_s`` + ``stage_timeout_s`` | ``lost`` |

The audio after the wake word is held (at most ``MAX_HELD_FRAMES``) until Home Assistant
accepts the run, then streamed frame by frame; the wake word itself is never sent. The
reply (the ``TTS_END`` URL, fetched) is posted to the assistant once the run has ended.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message as Proto
from loguru import logger

from firmware_app.config.settings import EsphomeSettings
from firmware_app.core.messages import HomeAudio, HomeStage, Message
from firmware_app.edges.esphome.fetch import FetchError, fetch_wav
from firmware_app.edges.esphome.proto import pb
from firmware_app.edges.esphome.server import Connection

MAX_HELD_FRAMES = 50  # 4 s of audio waiting for Home Assistant to accept the run
ALIVE_S = 1.0
"""After the end of speech, Home Assistant must answer a ping within this."""
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
    waiting: tuple[float, str] | None = None
    started: bool = False
    """Home Assistant's pipeline said something (its RUN_START comes at once)."""
    """The current stage's deadline (seconds, and the stage reported when it passes)."""
    fetch: asyncio.Task[tuple[bytes, int]] | None = None
    fetch_from: float = 0.0
    listen_after: bool = False


class Pipeline:
    """The current run; every method runs on the satellite's loop."""

    def __init__(
        self,
        cfg: EsphomeSettings,
        *,
        post: Callable[[Message], None],
        loop: asyncio.AbstractEventLoop,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        await_played: Callable[[int, Connection], None],
    ) -> None:
        self.cfg = cfg
        self._post = post
        self._loop = loop
        self._spawn = spawn
        self._await_played = await_played
        self.run: Run | None = None
        self.conversation = ""
        """The last conversation id, carried into a follow-up run."""

    @property
    def _max_bytes(self) -> int:
        return int(self.cfg.max_audio_mb * 1024 * 1024)

    def on_closed(self, conn: Connection) -> None:
        run = self.run
        if run is not None and run.conn is conn:
            self._finish(run)
            self._post(HomeStage(run.id, "lost", {"reason": "disconnected"}))

    def begin(self, run_id: int, conn: Connection, phrase: str, followup: bool) -> None:
        if self.run is not None:
            self._finish(self.run, stop=True)
        if conn.closed:  # it went away since the assistant asked
            self._post(HomeStage(run_id, "unanswered", {"reason": "disconnected"}))
            return
        run = self.run = Run(run_id, conn)
        conn.send(
            pb.VoiceAssistantRequest(
                start=True,
                conversation_id=self.conversation if followup else "",
                flags=0,
                audio_settings=pb.VoiceAssistantAudioSettings(volume_multiplier=1.0),
                wake_word_phrase=phrase,
            )
        )
        self._deadline(run, self.cfg.pipeline_answer_s, "unanswered")

    def feed(self, run_id: int, pcm: bytes) -> None:
        run = self.run
        if run is None or run.id != run_id or run.ended:
            return
        if run.answered:
            run.conn.send(pb.VoiceAssistantAudio(data=pcm))
        else:
            run.held.append(pcm)

    def end(self, run_id: int) -> None:
        run = self.run
        if run is None or run.id != run_id or run.ended:
            return
        run.ended = True
        if run.answered:
            self._end_stream(run)

    def abort(self, run_id: int) -> None:
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
        run.waiting = (seconds, stage)
        run.deadline = self._loop.call_later(seconds, self._expired, run, stage, seconds)

    def _expired(self, run: Run, stage: str, seconds: float) -> None:
        if self.run is not run:
            return
        logger.warning("esphome: Home Assistant did not answer within {} s: {}", seconds, stage)
        self._finish(run, stop=True)
        reason = f"no answer within {seconds:g} s"
        self._post(HomeStage(run.id, stage, {"reason": reason}))  # type: ignore[arg-type]

    def on_response(self, conn: Connection, msg: Proto) -> None:
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
            self._end_stream(run)

    def _end_stream(self, run: Run) -> None:
        """``end=True``, then make sure Home Assistant is still there: a ping it must
        answer within ``ALIVE_S`` (its client answers pings at once, however long its
        pipeline takes), so a hung Home Assistant is given up long before a stage's
        deadline."""
        run.conn.send(pb.VoiceAssistantAudio(end=True), pb.PingRequest())
        # a pipeline that never started (Home Assistant accepted the run, but its pipeline
        # cannot run: no speech-to-text set up, say) has said nothing by now
        self._deadline(run, self.cfg.stage_timeout_s if run.started else ALIVE_S, "lost")
        self._loop.call_later(ALIVE_S, self._alive, run, time.monotonic())

    def _alive(self, run: Run, since: float) -> None:
        if self.run is run and run.conn.last_heard < since:
            self._expired(run, "lost", ALIVE_S)

    def on_event(self, conn: Connection, msg: Proto) -> None:
        run = self.run
        if run is None or run.conn is not conn:
            return
        data = {d.name: d.value for d in msg.data}
        kind = msg.event_type
        cfg = self.cfg
        if not run.started:
            run.started = True  # its pipeline runs (RUN_START comes first)
            if run.ended and kind not in (ERROR, RUN_END):
                self._deadline(run, cfg.stage_timeout_s, "lost")
        if kind in (STT_VAD_END, STT_END):
            text = data.get("text", "")[:500]
            self._post(HomeStage(run.id, "stt_end", {"text": text} if kind == STT_END else {}))
            self._deadline(run, cfg.stage_timeout_s, "lost")
        elif kind == INTENT_START:
            self._deadline(run, cfg.answer_timeout_s, "lost")
        elif kind == INTENT_END:
            run.listen_after = data.get("continue_conversation") == "1"
            self.conversation = data.get("conversation_id", "")[:128]
            self._post(HomeStage(run.id, "intent", {"continue_conversation": run.listen_after}))
            self._deadline(run, cfg.stage_timeout_s, "lost")
        elif kind == TTS_START:
            self._deadline(run, cfg.fetch_timeout_s + cfg.stage_timeout_s, "lost")
        elif kind == TTS_END:
            url = data.get("url", "")
            if url:
                run.fetch = self._spawn(fetch_wav(url, self._max_bytes, cfg.fetch_timeout_s))
                run.fetch_from = time.monotonic()
                self._post(HomeStage(run.id, "tts_end"))
            self._deadline(run, cfg.fetch_timeout_s + cfg.stage_timeout_s, "lost")
        elif kind == ERROR:
            self._finish(run)
            fields = {"code": data.get("code", "")[:64], "message": data.get("message", "")[:200]}
            self._post(HomeStage(run.id, "error", fields))
        elif kind == RUN_END:
            self._spawn(self._run_end(run))
        elif run.answered and run.ended and kind != RUN_START and run.waiting is not None:
            self._deadline(run, *run.waiting)  # progress within the stage: its clock restarts

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
            seconds = round(time.monotonic() - run.fetch_from, 3)
            self._post(HomeStage(run.id, "fetched", {"seconds": seconds}))
            self._await_played(run.id, run.conn)
            self._post(HomeAudio("reply", run.id, pcm, rate, listen_after=run.listen_after))
