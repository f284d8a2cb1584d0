"""The assistant: the one state machine.

    IDLE ─wake─► LISTENING ─end of speech─► THINKING ─reply─► SPEAKING ─done─► IDLE
    MUTED: microphone frames are dropped before the wake word stage (nothing is analysed)
    ERROR: an engine or device failed; shown for a moment (or while the microphone is gone)

Only this class changes assistant state, and only on its own thread: edges (microphone,
button, MQTT, speaker, LLM stream) post messages to its queue. Engines never call each
other; the state machine moves data between them. Every change is published on the event
bus, where the event log, MQTT, LEDs and metrics observe it.
"""

from __future__ import annotations

import queue
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Protocol

from loguru import logger

from firmware_app import __version__
from firmware_app.config import Settings
from firmware_app.engines import SpeechDetector, Transcriber, WakeDetector
from firmware_app.events import Event, EventBus, wall_now
from firmware_app.intents import Intent, normalize
from firmware_app.intents.builtin import recognize_builtin
from firmware_app.intents.custom import CustomIntents
from firmware_app.intents.numbers import spoken_duration
from firmware_app.llm.sentences import asks_question
from firmware_app.messages import (
    FRAME_SECONDS,
    Button,
    Command,
    Frame,
    Inbox,
    Message,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    Stop,
    Tick,
)
from firmware_app.speech import SpeechOutput
from firmware_app.store import Store
from firmware_app.timers import Timer, Timers


class State(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    MUTED = "muted"
    ERROR = "error"


class Clock(Protocol):
    def t(self) -> float:
        """Assistant clock (seconds)."""
        ...

    def epoch(self) -> float:
        """Wall-clock time (Unix seconds) for timers and the time of day."""
        ...


class RealClock:
    def t(self) -> float:
        return wall_now()

    def epoch(self) -> float:
        return time.time()


class Responder(Protocol):
    """Answers what the local intents cannot (the LLM). Posts ReplySentence* then ReplyEnd."""

    def respond(self, request: int, text: str, post: Callable[[Any], None]) -> None: ...

    def cancel(self, request: int) -> None: ...

    def available(self) -> bool: ...


# What the speaker says. Fixed phrases are cached as audio.
NO_MODEL = "I can't understand speech yet. Install a speech model with: ttbt5 models pull."
NOT_HEARD = "Sorry, I didn't catch that."
UNKNOWN = "Sorry, I can't help with that yet."
HELP = (
    "I can tell you the time and the date, set, check and cancel timers, and change my "
    "volume. Try: set a timer for five minutes."
)
NO_TIMERS = "There's no timer running."
MUTED_REPLY = "My microphone is off."
FIXED_PHRASES = [NO_MODEL, NOT_HEARD, UNKNOWN, NO_TIMERS]

WAKE_WORDS = {"hey", "hi", "ok", "okay", "jarvis", "alexa", "mycroft", "nabu", "rhasspy"}


class Assistant:
    def __init__(
        self,
        settings: Settings,
        *,
        wake: WakeDetector,
        vad: SpeechDetector,
        stt: Transcriber | None,
        speech: SpeechOutput,
        store: Store,
        inbox: Inbox | None = None,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        responder: Responder | None = None,
        stt_problem: str | None = None,
    ) -> None:
        self.settings = settings
        self.wake = wake
        self.vad = vad
        self.stt = stt
        self.stt_problem = stt_problem
        self.store = store
        self.clock: Clock = clock or RealClock()
        self.bus = bus or EventBus()
        self.responder = responder
        self.inbox = inbox or Inbox()
        self.speech = speech
        self.timers = Timers(store)
        self.custom = CustomIntents(settings.intents)

        # hooks set by the runtime when those parts exist
        self.updater: Callable[[Command], None] | None = None
        self.home_publish: Callable[[str, str], None] | None = None
        self.heartbeat: Callable[[bool], None] | None = None
        """Called with True for every frame consumed, False for each tick of a microphone
        that is being reopened (the systemd watchdog is fed from here, nowhere else)."""
        self.audio_status: Callable[[], dict[str, Any]] | None = None

        self.state = State.IDLE
        self.muted = bool(store.get("settings", "muted", False))
        self.volume = int(store.get("settings", "volume", settings.audio.volume))
        self.speech.volume = self.volume
        self.wake_count = 0
        self.error_count = 0
        self.last_error = ""
        self.last_reply = ""
        self.breaker_state = "closed" if responder else None
        # End of speech is decided on frame boundaries: round the hangover to the nearest
        # frame instead of always up, so the delay is silence_ms on average, not more.
        self._hangover = settings.vad.silence_ms / 1000 - FRAME_SECONDS / 2

        self._t = 0.0
        self._preroll: deque[bytes] = deque(maxlen=max(1, int(settings.wake.preroll_ms / 80)))
        self._utterance = 0  # the utterance the state machine waits for (0: none)
        self._next_id = 0
        self._request = 0  # open LLM request (0: none)
        self._streamed: list[str] = []
        self._speaking_started = False
        self._after_speech: str | None = None  # "followup" | "ring" | None
        self._ringing: Timer | None = None
        self._announcements: deque[str] = deque(maxlen=10)
        self._listen: dict[str, Any] = {}
        self._error_until = 0.0
        self._mic_fault = False
        self._offline = False
        self._updating = False
        self._pattern = ""
        self._running = False

    # --- the edges' door
    def post(self, msg: Message) -> None:
        """Thread-safe: the only way anything outside acts on the assistant."""
        self.inbox.post(msg)

    # --- loops
    def start(self) -> None:
        """Announce the initial state and deal with timers that expired while we were off."""
        self.wake.reset()
        self._emit("state", state=self._resting_state().value)
        self.state = self._resting_state()
        self._update_pattern()
        self._check_missed_timers()
        phrases = list(FIXED_PHRASES)
        if self.responder is not None:
            from firmware_app.llm.responder import FALLBACKS

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
        busy = self.speech.busy() or self._request != 0 or bool(self._announcements)
        return not busy and (not queue or self.inbox.empty())

    def handle(self, msg: Message) -> None:
        try:
            self._dispatch(msg)
        except Exception as exc:  # one bad message must not end the assistant
            logger.opt(exception=exc).error(
                "assistant: {} while handling {}", exc, type(msg).__name__
            )
            if isinstance(msg, Command) and msg.reply is not None:
                # the sender is owed an answer and its in-flight slot must be freed
                try:
                    msg.reply(False, f"{msg.name} failed: {type(exc).__name__}")
                except Exception as reply_exc:
                    logger.error("command reply for {} failed: {}", msg.name, reply_exc)
            self._fail("assistant", f"{type(exc).__name__}: {exc}")

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, Frame):
            self._on_frame(msg)
        elif isinstance(msg, Tick):
            if msg.recovering and self.heartbeat is not None:
                self.heartbeat(False)
            self._advance(msg.t)
        elif isinstance(msg, PlaybackStarted):
            self._on_playback_started(msg)
        elif isinstance(msg, PlaybackDone):
            self._on_playback_done(msg)
        elif isinstance(msg, ReplySentence):
            self._on_reply_sentence(msg)
        elif isinstance(msg, ReplyEnd):
            self._on_reply_end(msg)
        elif isinstance(msg, Button):
            self._on_button(msg)
        elif isinstance(msg, Command):
            self._on_command(msg)
        elif isinstance(msg, Notice):
            self._on_notice(msg)
        elif isinstance(msg, Stop):
            self._running = False

    # --- events
    def _emit(self, type_: str, **fields: Any) -> None:
        self.bus.publish(Event(type_, self._now(), wall_now(), fields))

    def _now(self) -> float:
        return max(self._t, self.clock.t())

    def _set_state(self, state: State) -> None:
        if state != self.state:
            logger.info("state {} → {}", self.state.value, state.value)
            self.state = state
            self._emit("state", state=state.value)
        self._update_pattern()

    def _update_pattern(self) -> None:
        if self._updating:
            pattern = "updating"
        elif self._ringing is not None:
            pattern = "timer"
        elif self.muted and self.state in (State.MUTED, State.IDLE):
            pattern = "muted"
        elif self.state == State.ERROR:
            pattern = "error"
        elif self.state in (State.LISTENING, State.THINKING, State.SPEAKING):
            pattern = self.state.value
        elif self.muted:
            pattern = "muted"
        elif self._offline:
            pattern = "offline"
        else:
            pattern = "idle"
        if pattern != self._pattern:
            self._pattern = pattern
            self._emit("led", pattern=pattern)

    def _resting_state(self) -> State:
        if self._mic_fault or self._t < self._error_until:
            return State.ERROR
        return State.MUTED if self.muted else State.IDLE

    def _rest(self) -> None:
        """Back to idle (or muted/error), speaking any announcement that waited its turn."""
        self._utterance = 0
        self._after_speech = None
        if self._announcements:
            self._speak(self._announcements.popleft())
            return
        due = self.timers.due(self.clock.epoch())
        if due:
            self._ring(due[0])
            return
        self._set_state(self._resting_state())

    # --- audio
    def _on_frame(self, frame: Frame) -> None:
        if self._mic_fault:
            self._mic_fault = False
            if self.state == State.ERROR:
                self._set_state(self._resting_state())
        self._advance(frame.t)
        if self.heartbeat is not None:
            self.heartbeat(True)
        if self.muted:
            return  # privacy: muted audio reaches no engine
        # The detector hears every unmuted frame, even while listening, so its buffers never
        # hold stale audio (resetting them costs ~175 ms, right when the user is talking).
        detection = self.wake.process(frame.pcm)
        if self.state == State.LISTENING:
            self._listen_frame(frame.pcm)
            return
        self._preroll.append(frame.pcm)
        if detection is not None:
            self.wake_count += 1
            self._emit("wake", model=detection.model, score=detection.score)
            self._interrupt()
            self._start_listening(preroll=list(self._preroll))

    def _advance(self, t: float) -> None:
        self._t = max(self._t, t)
        if self.state == State.ERROR and not self._mic_fault and self._t >= self._error_until:
            self._set_state(self._resting_state())
        if self.timers.next_due <= self.clock.epoch() and self.state in (
            State.IDLE,
            State.MUTED,
            State.ERROR,
        ):
            due = self.timers.due(self.clock.epoch())
            if due:
                self._ring(due[0])

    def _start_listening(self, preroll: list[bytes] | None = None, followup: bool = False) -> None:
        if self.muted:
            return
        self.vad.reset()
        if self.stt is not None:
            self.stt.start()
            for pcm in preroll or []:
                self.stt.feed(pcm)
        vad = self.settings.vad
        timeout = self.settings.llm.followup_s if followup else vad.start_timeout_s
        self._listen = {
            "speech": False,
            "last_speech": self._t,
            "start_deadline": self._t + timeout,
            "end_deadline": self._t + vad.max_request_s,
            "audio": list(preroll or []) if self.settings.log.save_audio else None,
            "followup": followup,
        }
        self._preroll.clear()
        self._set_state(State.LISTENING)
        self._emit("listening")
        if self.settings.audio.chimes and not followup:
            self.speech.chime(0, "wake")

    def _listen_frame(self, pcm: bytes) -> None:
        ctx = self._listen
        if self.stt is not None:
            self.stt.feed(pcm)
        if ctx["audio"] is not None:
            ctx["audio"].append(pcm)
        prob = self.vad.process(pcm)
        if prob >= self.settings.vad.threshold:
            if not ctx["speech"]:
                ctx["speech"] = True
                self._emit("speech_start")
            ctx["last_speech"] = self._t
        elif ctx["speech"] and self._t - ctx["last_speech"] >= self._hangover:
            self._end_of_speech()
            return
        if not ctx["speech"] and self._t >= ctx["start_deadline"]:
            logger.info("no speech after the wake word; back to idle")
            if self.stt is not None:
                self.stt.finish()
            self._rest()
        elif self._t >= ctx["end_deadline"]:
            self._end_of_speech()

    def _end_of_speech(self) -> None:
        # last_speech_t: when the voice was last heard, so the end-of-speech delay shows
        self._emit("speech_end", last_speech_t=round(self._listen.get("last_speech", self._t), 3))
        if self._listen.get("audio"):
            self._save_audio(self._listen["audio"])
        self._set_state(State.THINKING)
        if self.stt is None:
            self._emit("transcript", text="")
            self._reply(NO_MODEL, "fallback", cache=True)
            return
        text = strip_wake_words(self.stt.finish())
        self._emit("transcript", text=text)
        self._think(text)

    def _save_audio(self, frames: list[bytes]) -> None:
        from firmware_app.audio.wavio import write_wav

        folder = self.settings.log.save_audio
        assert folder is not None
        path = folder / f"request-{int(self.clock.epoch())}.wav"
        try:
            write_wav(path, b"".join(frames), 16000)
        except OSError as exc:
            logger.error("cannot save request audio to {}: {}", path, exc)

    # --- understanding
    def _think(self, text: str) -> None:
        self._set_state(State.THINKING)
        if not text:
            self._reply(NOT_HEARD, "fallback", cache=True)
            return
        words = normalize(text)
        intent = recognize_builtin(words) or self.custom.recognize(words)
        if intent is not None:
            self._emit("intent", name=intent.name, slots=intent.slots)
            reply = self._act(intent)
            if reply is not None:
                self._reply(reply, "local", cache=intent.name in ("help", "timer_cancel"))
            return
        if self.responder is not None:
            if self.settings.audio.chimes:  # the answer takes a moment: say we heard
                self.speech.chime(0, "done")
            self._next_id += 1
            self._request = self._next_id
            self._streamed = []
            self._utterance = 0
            self.responder.respond(self._request, text, self.post)
            return
        self._reply(UNKNOWN, "fallback", cache=True)

    def _act(self, intent: Intent) -> str | None:
        """Carry out a local intent; return what to say (None: say nothing)."""
        name, slots = intent.name, intent.slots
        now = self.clock.epoch()
        if name == "time":
            return f"It's {clock_time(now)}."
        if name == "date":
            return (
                "Today is "
                + time.strftime("%A, %B ", time.localtime(now))
                + str(time.localtime(now).tm_mday)
                + "."
            )
        if name == "timer_set":
            return self._set_timer(float(slots["seconds"]), slots.get("name"), now)
        if name == "timer_cancel":
            return self._cancel_timers(slots.get("name"), bool(slots.get("all")))
        if name == "timer_remaining":
            return self._timers_left(slots.get("name"), now)
        if name in ("volume_up", "volume_down", "volume_set"):
            if name == "volume_set":
                level = int(slots["volume"])
            else:
                level = self.volume + (10 if name == "volume_up" else -10)
            self._set_volume(level)
            return f"Volume {self.volume} percent."
        if name == "stop":
            self._stop_everything()
            return None
        if name == "repeat":
            return self.last_reply or "I haven't said anything yet."
        if name == "help":
            return HELP
        action = self.custom.action(intent)
        if action is not None:
            topic, payload, reply = action
            if self.home_publish is None:
                return "I can't reach your home right now: MQTT is not set up."
            try:
                self.home_publish(topic, payload)
            except Exception as exc:
                self._emit("error", where="intents", message=f"{intent.name}: {exc}")
                return "Sorry, I couldn't send that to your home."
            return reply
        return UNKNOWN

    def _set_timer(self, seconds: float, name: str | None, now: float) -> str:
        from firmware_app.timers import MAX_SECONDS, MAX_TIMERS

        if seconds < 1 or seconds > MAX_SECONDS:
            return "I can set timers from one second to twenty four hours."
        if len(self.timers.active()) >= MAX_TIMERS:
            return "You have too many timers. Cancel one first."
        timer = self.timers.add(seconds, name, now)
        self._emit("timer", action="set", name=name, seconds=seconds, id=timer.id)
        what = f"{name.capitalize()} timer" if name else "Timer"
        return f"{what} set for {spoken_duration(seconds)}."

    def _cancel_timers(self, name: str | None, everything: bool) -> str:
        timers = self.timers.find(None if everything else name)
        if not timers:
            return f"There's no {name} timer." if name else NO_TIMERS
        if len(timers) > 1 and not everything and name is None:
            names = ", ".join(t.label() for t in timers)
            return f"You have {len(timers)} timers: {names}. Which one?"
        for timer in timers:
            self.timers.remove(timer)
            self._emit(
                "timer", action="cancel", name=timer.name, seconds=timer.seconds, id=timer.id
            )
        if len(timers) == 1:
            return f"{timers[0].label().capitalize()} cancelled."
        return f"{len(timers)} timers cancelled."

    def _timers_left(self, name: str | None, now: float) -> str:
        timers = self.timers.find(name)
        if not timers:
            return f"There's no {name} timer." if name else NO_TIMERS
        parts = [
            f"{spoken_duration(max(1, t.due - now))} left on your {t.label()}" for t in timers[:4]
        ]
        text = "; ".join(parts) + "."
        return text[0].upper() + text[1:]

    # --- speaking
    def _reply(self, text: str, source: str, cache: bool = False) -> None:
        self._emit("reply", text=text, source=source)
        self.last_reply = text
        self._speak(text, cache=cache)

    def _speak(self, text: str, cache: bool = False) -> None:
        self._next_id += 1
        self._utterance = self._next_id
        self._speaking_started = False
        if self.state not in (State.SPEAKING, State.THINKING):
            self._set_state(State.THINKING)
        self.speech.say(self._utterance, text, cache=cache)
        self.speech.finish(self._utterance)

    def _on_playback_started(self, msg: PlaybackStarted) -> None:
        if msg.utterance == 0 or msg.utterance != self._utterance or self._speaking_started:
            return  # utterance 0: a chime, not something the state machine waits for
        self._speaking_started = True
        self._set_state(State.SPEAKING)
        self._emit("speak_start")

    def _on_playback_done(self, msg: PlaybackDone) -> None:
        if msg.utterance != self._utterance or self._utterance == 0:
            return
        if self._speaking_started:
            self._emit("speak_end")
        self._speaking_started = False
        if self._ringing is not None:
            self._ringing = None
        after = self._after_speech
        self._utterance = 0
        self._after_speech = None
        if after == "followup" and not self.muted:
            self._start_listening(followup=True)
        else:
            self._rest()

    def _interrupt(self) -> None:
        """Barge-in: cut speech, a ringing timer and any answer on its way."""
        if self._utterance and self._speaking_started:
            self._emit("speak_end")
        self._utterance = 0
        self._speaking_started = False
        self._ringing = None
        self._after_speech = None
        if self._request and self.responder is not None:
            self.responder.cancel(self._request)
        self._request = 0
        self.speech.cancel()

    def _stop_everything(self) -> None:
        self._announcements.clear()
        self._interrupt()
        if self.state == State.LISTENING and self.stt is not None:
            self.stt.finish()
        self._rest()

    # --- streamed replies (LLM)
    def _on_reply_sentence(self, msg: ReplySentence) -> None:
        if msg.request != self._request:
            return
        if not self._utterance:
            self._next_id += 1
            self._utterance = self._next_id
            self._speaking_started = False
        self._streamed.append(msg.text)
        self.speech.say(self._utterance, msg.text)

    def _on_reply_end(self, msg: ReplyEnd) -> None:
        if msg.request != self._request:
            return
        self._request = 0
        if msg.error:
            self._emit("error", where="llm", message=msg.error)
            self.error_count += 1
        text = " ".join(self._streamed).strip()
        if text:
            self._emit("reply", text=text, source="llm")
            self.last_reply = text
            if self.settings.llm.followup_s > 0 and asks_question(text):
                self._after_speech = "followup"
            self.speech.finish(self._utterance)
            return
        fallback = msg.fallback or UNKNOWN
        self._reply(fallback, "fallback", cache=True)

    # --- timers
    def _ring(self, timer: Timer) -> None:
        self.timers.remove(timer)
        self._emit("timer", action="ring", name=timer.name, seconds=timer.seconds, id=timer.id)
        self._ringing = timer
        self._next_id += 1
        self._utterance = self._next_id
        self._speaking_started = False
        self._set_state(State.THINKING)
        text = f"Your {timer.label()} is done."
        for i in range(self.settings.assistant.ring_repeats):
            self.speech.chime(self._utterance, "timer")
            self.speech.say(self._utterance, text, cache=True)
            if i + 1 < self.settings.assistant.ring_repeats:
                self.speech.pause(self._utterance, 1.5)
        self.speech.finish(self._utterance)
        self._update_pattern()

    def _check_missed_timers(self) -> None:
        now = self.clock.epoch()
        for timer in self.timers.due(now):
            if now - timer.due < 10:
                continue  # only just due: it rings normally
            self.timers.remove(timer)
            self._emit(
                "timer", action="missed", name=timer.name, seconds=timer.seconds, id=timer.id
            )
            self._announcements.append(
                f"While I was off, your {timer.label()} went off at {clock_time(timer.due)}."
            )
        if self._announcements and self.state in (State.IDLE, State.MUTED):
            self._speak(self._announcements.popleft())

    # --- settings
    def _set_volume(self, level: int) -> None:
        level = max(0, min(100, int(level)))
        if level != self.volume:
            self.volume = level
            self.speech.volume = level
            self.store.put("settings", "volume", level)
        self._emit("volume", volume=self.volume)

    def _set_muted(self, muted: bool) -> None:
        if muted != self.muted:
            self.muted = muted
            self.store.put("settings", "muted", muted)
            if not muted:
                self.wake.reset()  # it heard nothing while muted: drop what it held before
            logger.info("microphone {}", "muted" if muted else "unmuted")
        self._emit("mute", muted=self.muted)
        if muted and self.state == State.LISTENING:
            if self.stt is not None:
                self.stt.finish()
            self._rest()
        elif self.state in (State.IDLE, State.MUTED):
            self._set_state(self._resting_state())
        self._update_pattern()

    # --- the button
    def _on_button(self, msg: Button) -> None:
        if msg.gesture == "hold":
            self._set_muted(not self.muted)
        elif msg.gesture == "double":
            if self.last_reply and self.state in (
                State.IDLE,
                State.MUTED,
                State.ERROR,
                State.SPEAKING,
            ):
                self._interrupt()
                self._speak(self.last_reply)
        elif self._ringing is not None or self.state in (State.SPEAKING, State.THINKING):
            self._stop_everything()
        elif self.state == State.LISTENING:
            if self.stt is not None:
                self.stt.finish()
            self._rest()
        elif self.muted:
            if self.settings.audio.chimes:
                self.speech.chime(0, "error")
        else:
            self._start_listening()

    # --- commands (MQTT)
    def _on_command(self, cmd: Command) -> None:
        def reply(ok: bool, error: str | None = None) -> None:
            if cmd.reply is not None:
                try:
                    cmd.reply(ok, error)
                except Exception as exc:
                    logger.error("command reply for {} failed: {}", cmd.name, exc)

        name, args = cmd.name, cmd.args
        if name == "say":
            text = str(args.get("text", "")).strip()
            if not text:
                reply(False, "say needs a non-empty text")
            elif self.state in (State.LISTENING, State.THINKING, State.SPEAKING):
                self._announcements.append(text)
                reply(True)
            else:
                self._speak(text)
                reply(True)
        elif name == "ask":
            text = str(args.get("text", "")).strip()
            if not text:
                reply(False, "ask needs a non-empty text")
                return
            self._interrupt()
            self._emit("transcript", text=text)
            self._think(text)
            reply(True)
        elif name == "listen":
            if self.muted:
                reply(False, "the microphone is muted")
                return
            self._interrupt()
            self._start_listening()
            reply(True)
        elif name == "stop":
            self._stop_everything()
            reply(True)
        elif name == "mute":
            self._set_muted(bool(args.get("muted")))
            reply(True)
        elif name == "volume":
            self._set_volume(int(args.get("volume", self.volume)))
            reply(True)
        elif name == "update":
            if self.updater is None:
                reply(False, "updates are not available on this installation")
            else:
                self.updater(cmd)
        else:
            reply(False, f"unknown command {name!r}")

    # --- notices
    def _on_notice(self, notice: Notice) -> None:
        fields = dict(notice.fields)
        if notice.kind == "error":
            where = str(fields.get("where", "unknown"))
            message = str(fields.get("message", ""))
            self.error_count += 1
            self.last_error = f"{where}: {message}"
            self._emit("error", where=where, message=message)
            if where == "audio.input":
                self._mic_fault = True
                if self.state in (State.IDLE, State.MUTED):
                    self._set_state(State.ERROR)
            elif where == "tts" and self._utterance:
                pass  # the speech worker finishes the utterance; playback-done follows
        elif notice.kind == "breaker":
            self.breaker_state = str(fields.get("state", ""))
            self._emit("breaker", **fields)
        elif notice.kind == "update":
            self._updating = bool(fields.get("active"))
            self._emit("update", **fields)
            self._update_pattern()
        elif notice.kind in ("offline", "online"):
            self._offline = notice.kind == "offline"
            self._update_pattern()

    def _fail(self, where: str, message: str) -> None:
        """An engine failed mid-request: say so, show the error, recover."""
        self.error_count += 1
        self.last_error = f"{where}: {message}"
        self._emit("error", where=where, message=message)
        self._interrupt()
        self._error_until = self._t + self.settings.assistant.error_hold_s
        self._set_state(State.ERROR)
        if self.settings.audio.chimes:
            self.speech.chime(0, "error")

    # --- health
    def status(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "state": self.state.value,
            "muted": self.muted,
            "volume": self.volume,
            "wake_count": self.wake_count,
            "errors": self.error_count,
            "last_error": self.last_error,
            "timers": len(self.timers.active()),
            "store": self.store.status(),
            "stt": "ready" if self.stt is not None else (self.stt_problem or "missing"),
            "audio": self.audio_status() if self.audio_status else {},
            "tts_cache": self.speech.cache_stats(),
            "llm": None
            if self.responder is None
            else {"available": self.responder.available(), "breaker": self.breaker_state},
        }


def clock_time(epoch: float) -> str:
    """'3:05 PM': how people say the time (Piper reads it naturally)."""
    local = time.localtime(epoch)
    hour = local.tm_hour % 12 or 12
    suffix = "AM" if local.tm_hour < 12 else "PM"
    if local.tm_min == 0:
        return f"{hour} {suffix}"
    return f"{hour}:{local.tm_min:02d} {suffix}"


def strip_wake_words(text: str) -> str:
    """Drop the wake phrase from the start of a transcript (the pre-roll includes its end)."""
    words = text.split()
    while words and words[0].lower() in WAKE_WORDS:
        words.pop(0)
    return " ".join(words)


__all__ = ["Assistant", "Clock", "RealClock", "Responder", "State"]
