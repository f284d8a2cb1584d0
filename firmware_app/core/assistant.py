"""The assistant: one state machine, the whole of it in the table below.

Edges (microphone, button, MQTT, speaker, LLM stream) post messages to its queue; the
listener turns frames into wake and speech events. Each event is looked up in
`TRANSITIONS` by (state, event); its handler (here or in `flow.Flow`) does the work and
returns the next state, which must be one the row allows. The dispatcher
(`machine.Machine`) alone changes state, running the `EXIT` action of the old state and
the `ENTRY` action of the new one: leaving LISTENING always finishes the transcriber,
exactly once. An event with no row in the current state is ignored there. Muted is a
guard, not a copy of the machine: muted frames reach no engine and listening is refused;
``muted`` only names the resting state then.
"""

from __future__ import annotations

import queue

from loguru import logger
from pydantic import ValidationError

from firmware_app import __version__
from firmware_app.core.dispatcher import Row, table
from firmware_app.core.flow import Flow
from firmware_app.core.messages import (
    Button,
    Command,
    CommandArgs,
    Frame,
    Message,
    MuteArgs,
    NoArgs,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    Stop,
    TextArgs,
    Tick,
    VolumeArgs,
    WakeLost,
)
from firmware_app.core.states import (
    ALL,
    BUSY,
    ERROR,
    IDLE,
    LISTENING,
    MUTED,
    RESTING,
    SPEAKING,
    THINKING,
    State,
)
from firmware_app.listen.segmenter import NoSpeech, SpeechEnded, SpeechStarted, TooLong, Woke
from firmware_app.speak.utterances import Origin, Pending
from firmware_app.understand.actions import FIXED_PHRASES, clock_time, strip_wake_words

# fmt: off
TRANSITIONS: dict[tuple[State, str], Row[State]] = table([
    # in states            event               handler                may go to
    (ALL - {MUTED, LISTENING}, "wake",         "on_wake",             ALL - {MUTED}),
    ({LISTENING},          "speech_started",   "on_speech_started",   {LISTENING}),
    ({LISTENING},          "speech_ended",     "on_speech_ended",     {THINKING}),
    ({LISTENING},          "too_long",         "on_speech_ended",     {THINKING}),
    ({LISTENING},          "no_speech",        "rest",                RESTING | {THINKING}),
    ({LISTENING},          "wake_lost",        "on_wake_lost",        RESTING | {THINKING}),
    ({THINKING},           "heard",            "think",               RESTING | {THINKING}),
    (BUSY,                 "reply_sentence",   "on_reply_sentence",   BUSY),
    (BUSY,                 "reply_end",        "on_reply_end",        BUSY),
    (BUSY,                 "playback_started", "on_playback_started", BUSY),
    (BUSY,                 "playback_done",    "on_playback_done",    ALL),
    (BUSY,                 "stop_word",        "on_stop_word",        RESTING | {THINKING}),
    (RESTING,              "started",          "rest",                RESTING | {THINKING}),
    (RESTING,              "timer_due",        "rest",                RESTING | {THINKING}),
    ({ERROR},              "error_over",       "rest",                RESTING | {THINKING}),
    (ALL,                  "press",            "on_press",            ALL),
    (ALL,                  "hold",             "on_hold",             ALL),
    (RESTING | {SPEAKING}, "double",           "on_double",           ALL),
    (ALL,                  "command",          "on_command",          ALL),
    (ALL,                  "notice",           "on_notice",           ALL),
    (ALL,                  "fault",            "on_fault",            {ERROR}),
])
ENTRY = {LISTENING: "enter_listening"}
EXIT = {LISTENING: "exit_listening", SPEAKING: "exit_speaking"}

COMMANDS: dict[str, tuple[type[CommandArgs], str]] = {
    # name      payload model  handler
    "say":     (TextArgs,      "cmd_say"),
    "ask":     (TextArgs,      "cmd_ask"),
    "listen":  (NoArgs,        "cmd_listen"),
    "stop":    (NoArgs,        "cmd_stop"),
    "mute":    (MuteArgs,      "cmd_mute"),
    "volume":  (VolumeArgs,    "cmd_volume"),
    "update":  (NoArgs,        "cmd_update"),
    "false_wake": (NoArgs,     "cmd_false_wake"),
}
# fmt: on


class Assistant(Flow):
    transitions = TRANSITIONS
    entry = ENTRY
    exit = EXIT

    # --- the edges' door and the loops
    def post(self, msg: Message) -> None:
        """Thread-safe: the only way anything outside acts on the assistant."""
        self.inbox.post(msg)

    def start(self) -> None:
        """Announce the initial state, deal with timers that expired while we were off."""
        self.listener.reset()
        self._emit("state", state=self.state.value)
        self.settled()
        now = self.clock.epoch()
        for timer in self.timers.due(now):
            if now - timer.due < 10:
                continue  # only just due: it rings normally
            self.timers.remove(timer)
            fields = {"name": timer.name, "seconds": timer.seconds, "id": timer.id}
            self._emit("timer", action="missed", **fields)
            text = f"While I was off, your {timer.label()} went off at {clock_time(timer.due)}."
            self.voice.queue(Pending(Origin.ANNOUNCEMENT, text), force=True)
        self.fire("started")
        phrases = list(FIXED_PHRASES)
        if self.responder is not None:
            from firmware_app.understand.llm.responder import FALLBACKS

            phrases += FALLBACKS
        self.speech.prewarm(phrases)

    def run(self) -> None:
        """Handle messages until Stop. Quiet periods become Ticks so timers still ring."""
        self._running = True
        while self._running:
            try:
                msg = self.inbox.get(timeout=0.25)
            except queue.Empty:
                msg = Tick(self.clock.t())
            self.handle(msg)

    def drain(self) -> None:
        """Handle everything queued now (simulation and tests)."""
        while True:
            try:
                msg = self.inbox.get()
            except queue.Empty:
                return
            self.handle(msg)

    def quiescent(self) -> bool:
        """Nothing queued, nothing being synthesized, no answer on its way."""
        return self.idle(queue=True)

    def idle(self, queue: bool = True) -> bool:
        """Nothing being synthesized or announced, no answer on its way (and, with
        ``queue``, no message waiting)."""
        busy = self.voice.busy() or self._request != 0
        return not busy and (not queue or self.inbox.empty())

    def handle(self, msg: Message) -> None:
        try:
            self._route(msg)
        except Exception as exc:  # one bad message must not end the assistant
            logger.opt(exception=exc).error(
                "assistant: {} while handling {}", exc, type(msg).__name__
            )
            if isinstance(msg, Command):
                self._answer(msg, False, f"{msg.name} failed: {type(exc).__name__}")
            self.fire("fault", ("assistant", f"{type(exc).__name__}: {exc}"))

    def _route(self, msg: Message) -> None:
        """Messages become table events (frames through the listener)."""
        if isinstance(msg, Frame):
            self._on_frame(msg)
        elif isinstance(msg, Tick):
            if msg.recovering and self.parts.heartbeat is not None:
                self.parts.heartbeat(False)
            self._advance(msg.t)
        elif isinstance(msg, Stop):
            self._running = False
        elif isinstance(msg, Button):
            self.fire(msg.gesture)
        else:
            self.fire(_EVENT_OF[type(msg)], msg)

    # --- audio
    def _on_frame(self, frame: Frame) -> None:
        if self._mic_fault:
            self._mic_fault = False
            self.fire("error_over")
        self._advance(frame.t)
        if self.parts.heartbeat is not None:
            self.parts.heartbeat(True)
        if self.muted:
            return  # privacy: muted audio reaches no engine
        pcm = frame.pcm if frame.ref is None else self.parts.echo.process(frame.pcm, frame.ref)
        if (self.state == SPEAKING or self.voice.ringing) and self.parts.stop_spotter.process(pcm):
            self.fire("stop_word")
        self.clips.hear(pcm)  # before the listener: a clip starts with the frame that woke
        heard = self.listener.process(pcm, self._t)
        if self.state == LISTENING:
            if self.stt is not None:
                self.stt.feed(pcm)
            if self._audio is not None:
                self._audio.append(pcm)
        for event in heard:
            self.fire(_EVENT_OF[type(event)], event)

    def _advance(self, t: float) -> None:
        self._t = max(self._t, t)
        if self.state == ERROR and not self._mic_fault and self._t >= self._error_until:
            self.fire("error_over")
        if self.timers.next_due <= self.clock.epoch():
            self.fire("timer_due")

    # --- commands (MQTT, Hermes, the control socket, the command line)
    def on_command(self, cmd: Command) -> State:
        spec = COMMANDS.get(cmd.name)
        if spec is None:
            self._answer(cmd, False, f"unknown command {cmd.name!r}")
            return self.state
        model, handler = spec
        if "text" in model.model_fields and not str(cmd.args.get("text", "")).strip():
            self._answer(cmd, False, f"{cmd.name} needs a non-empty text")
            return self.state
        try:
            args = model.model_validate(cmd.args)
        except ValidationError as exc:  # a bug in the sender: answered and reported
            raise ValueError(str(exc).splitlines()[0]) from None
        after: State = getattr(self, handler)(cmd, args)
        return after

    def _answer(self, cmd: Command, ok: bool, error: str | None = None) -> None:
        if cmd.reply is not None:
            try:
                cmd.reply(ok, error)
            except Exception as exc:
                logger.error("command reply for {} failed: {}", cmd.name, exc)

    def cmd_say(self, cmd: Command, args: TextArgs) -> State:
        origin = Origin.HERMES if cmd.source == "hermes" else Origin.COMMAND
        output = (self.parts.audio_status() if self.parts.audio_status else {}).get("output")
        if isinstance(output, dict) and output.get("status") == "missing":
            self._answer(cmd, False, f"no speaker: {output.get('error') or 'missing'}")
            return self.state
        if self.state in RESTING:
            self._answer(cmd, True)
            return self.speak(origin, args.text.strip(), cmd.request_id)
        if not self.voice.queue(Pending(origin, args.text.strip(), cmd.request_id)):
            self._answer(cmd, False, "busy: too many announcements waiting")
            return self.state
        self._answer(cmd, True)
        return self.state

    def cmd_ask(self, cmd: Command, args: TextArgs) -> State:
        """Typed text handled as if it had been heard (wake words and all)."""
        self.interrupt()
        self._asker = cmd.request_id  # its reply and speech carry the request's id
        self.fire("heard", strip_wake_words(args.text.strip()))
        self._answer(cmd, True)
        return THINKING

    def cmd_listen(self, cmd: Command, _: NoArgs) -> State:
        if self.muted:
            self._answer(cmd, False, "the microphone is muted")
            return self.state
        self._answer(cmd, True)
        if self.state == LISTENING:
            return LISTENING
        self.interrupt()
        return self.listen()

    def cmd_stop(self, cmd: Command, _: NoArgs) -> State:
        self._answer(cmd, True)
        return self.stop_everything()

    def cmd_mute(self, cmd: Command, args: MuteArgs) -> State:
        after = self.set_muted(args.muted)
        self._answer(cmd, True)
        return after

    def cmd_volume(self, cmd: Command, args: VolumeArgs) -> State:
        self.set_volume(args.volume)
        self._answer(cmd, True)
        return self.state

    def cmd_update(self, cmd: Command, _: NoArgs) -> State:
        if self.parts.updater is None:
            self._answer(cmd, False, "updates are not available on this installation")
        else:
            self.parts.updater(cmd)  # it answers when the update step is done
        return self.state

    def cmd_false_wake(self, cmd: Command, _: NoArgs) -> State:
        """ "That wasn't for me": the last wake is counted false (and saved, if configured);
        a request it opened is dropped."""
        clip = self.clips.mark_false()
        if clip is None:
            self._answer(cmd, False, "no wake to mark: none heard yet, or marked already")
            return self.state
        self._emit("false_wake", model=clip.model, score=clip.score, wake_t=round(clip.t, 3))
        self._answer(cmd, True)
        return self.rest() if self.state == LISTENING else self.state

    # --- the button
    def on_press(self, _: object) -> State:
        if self.voice.ringing or self.state in BUSY:
            return self.stop_everything()
        if self.state == LISTENING:
            return self.rest()
        if self.muted:
            if self.settings.audio.chimes:
                self.voice.chime("error")
            return self.state
        return self.listen()

    def on_hold(self, _: object) -> State:
        return self.set_muted(not self.muted)

    def on_double(self, _: object) -> State:
        """Say the last reply again."""
        if not self.last_reply:
            return self.state
        self.interrupt()
        return self.speak(Origin.REPEAT, self.last_reply)

    # --- notices
    def on_notice(self, notice: Notice) -> State:
        fields = dict(notice.fields)
        if notice.kind == "error":
            where, message = str(fields.get("where", "unknown")), str(fields.get("message", ""))
            self.last_error = f"{where}: {message}"
            self._emit("error", where=where, message=message)
            if where == "audio.input":
                self._mic_fault = True
                return ERROR if self.state in (IDLE, MUTED) else self.state
            if where == "store":  # the LED shows it for a moment; health goes on saying it
                self._error_until = self._t + self.settings.assistant.error_hold_s
                return ERROR if self.state in (IDLE, MUTED) else self.state
        elif notice.kind in ("breaker", "update"):
            if notice.kind == "update":
                self._updating = bool(fields.get("active"))
            self._emit(notice.kind, **fields)
        elif notice.kind in ("offline", "online"):
            self._offline = notice.kind == "offline"
        return self.state

    # --- health
    def status(self) -> dict[str, object]:
        audio = self.parts.audio_status() if self.parts.audio_status else {}
        counts = self.metrics.snapshot()
        llm: dict[str, object] | None = None
        if self.responder is not None:
            breaker = self.responder.status().get("state")
            llm = {"available": self.responder.available(), "breaker": breaker}
        return {
            "version": __version__,
            "state": self.state.value,
            "muted": self.muted,
            "volume": self.volume,
            "wake_count": counts["wake_count"],
            "errors": counts["errors"],
            "last_error": self.last_error,
            "timers": len(self.timers.active()),
            "store": self.store.status(),
            "stt": "ready" if self.stt is not None else (self.stt_problem or "missing"),
            "audio": audio,
            "tts_cache": self.speech.cache_stats(),
            "llm": llm,
        }


_EVENT_OF: dict[type, str] = {
    Woke: "wake",
    SpeechStarted: "speech_started",
    SpeechEnded: "speech_ended",
    TooLong: "too_long",
    NoSpeech: "no_speech",
    WakeLost: "wake_lost",
    Command: "command",
    Notice: "notice",
    PlaybackStarted: "playback_started",
    PlaybackDone: "playback_done",
    ReplySentence: "reply_sentence",
    ReplyEnd: "reply_end",
}
"""The table event each message or listener event is."""


__all__ = ["COMMANDS", "TRANSITIONS", "Assistant", "State"]
