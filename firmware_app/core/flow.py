"""What the assistant does between events: listening, understanding, speaking.

`Flow` holds the handlers and the entry and exit actions the table in ``core/assistant.py``
names, and the state they share. Handlers return the next state and never set it; the
dispatcher (`machine.Machine`) does, so every change goes through the table.
"""

from __future__ import annotations

from loguru import logger

from firmware_app.config.settings import Settings
from firmware_app.core.dispatcher import Machine
from firmware_app.core.engines import SpeechDetector, Transcriber, WakeDetector
from firmware_app.core.events import Event, EventBus, wall_now
from firmware_app.core.messages import (
    Inbox,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    ReplyEnd,
    ReplySentence,
    RequestId,
    WakeLost,
)
from firmware_app.core.parts import Clock, Parts, RealClock, Responder
from firmware_app.core.states import BUSY, ERROR, LISTENING, RESTING, THINKING, State
from firmware_app.edges.gpio.patterns import choose_pattern
from firmware_app.listen.segmenter import (
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Woke,
    save_request_audio,
)
from firmware_app.listen.wake_clips import WakeClips
from firmware_app.recognize.phrases import OUT_OF_GRAMMAR_REPLY
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.utterances import MAX_ANNOUNCEMENTS, Origin
from firmware_app.speak.voice import Voice
from firmware_app.system.metrics import Metrics
from firmware_app.system.store import Store
from firmware_app.understand.actions import (
    NO_HOME,
    NO_MODEL,
    NO_SERVICE,
    NOT_HEARD,
    NOTHING_SAID,
    UNKNOWN,
    Actions,
    Outcome,
    Question,
    strip_wake_words,
)
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.llm.sentences import asks_question
from firmware_app.understand.timers import Timer, Timers


class Flow(Machine[State]):
    """The handlers and actions the table names, and the state they share."""

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
        parts: Parts | None = None,
    ) -> None:
        self.settings = settings
        self.stt = stt
        self.stt_problem = stt_problem
        self.store = store
        self.clock: Clock = clock or RealClock()
        self.bus = bus or EventBus()
        self.responder = responder
        self.inbox = inbox or Inbox()
        self.parts = parts or Parts()
        self.voice = Voice(speech, self._emit, MAX_ANNOUNCEMENTS)
        self.timers = Timers(store)
        # MQTT set up but no publisher: a one-off process (``ttbt5 ask --local``)
        no_home = NO_HOME if settings.mqtt.host is None else NO_SERVICE
        custom = CustomIntents(settings.intents)
        self.actions = Actions(self.timers, custom, self._emit, self.parts.home_publish, no_home)
        self.listener = Segmenter(
            wake,
            vad,
            threshold=settings.vad.threshold,
            silence_s=settings.vad.silence_ms / 1000,
            max_request_s=settings.vad.max_request_s,
            preroll_ms=settings.wake.preroll_ms,
        )
        self.muted = bool(store.get("settings", "muted", False))
        self.volume = int(store.get("settings", "volume", settings.audio.volume))
        speech.volume = self.volume
        self.metrics = Metrics()  # the counters, derived from the events like everywhere
        self.bus.subscribe(self.metrics)
        self.clips = WakeClips(settings.wake.clips_kept, save_dir=settings.wake.false_wake_dir)
        self.last_error = ""
        self.last_reply = ""
        self._t = 0.0
        self._request = 0  # the LLM request being answered (0: none)
        self._followup = False  # listen again without the wake word after this reply
        self._question: Question | None = None  # a local question waiting for its answer
        self._asker: RequestId = None  # who typed the request being answered (cmd/ask id)
        self._listen_with: tuple[tuple[bytes, ...], bool] = ((), False)  # preroll, followup
        self._stt_open = False
        self._audio: list[bytes] | None = None
        self._error_until = 0.0
        self._mic_fault = self._offline = self._updating = False
        self._pattern = ""
        self._running = False
        super().__init__(self._resting_state())

    @property
    def speech(self) -> SpeechOutput:
        return self.voice.speech

    # --- the dispatcher's hooks
    def changed(self, before: State, after: State) -> None:
        logger.info("state {} → {}", before.value, after.value)
        self._emit("state", state=after.value)

    def settled(self) -> None:
        pattern = choose_pattern(
            self.state.value,
            muted=self.muted,
            ringing=self.voice.ringing,
            updating=self._updating,
            offline=self._offline,
        )
        if pattern != self._pattern:
            self._pattern = pattern
            self._emit("led", pattern=pattern)

    def _emit(self, type_: str, /, **fields: object) -> None:
        self.bus.publish(Event(type_, max(self._t, self.clock.t()), wall_now(), dict(fields)))

    def _resting_state(self) -> State:
        if self._mic_fault or self._t < self._error_until:
            return ERROR
        return State.MUTED if self.muted else State.IDLE

    # --- listening
    def listen(self, preroll: tuple[bytes, ...] = (), followup: bool = False) -> State:
        """Go to LISTENING (its entry action starts the transcriber); refused while muted."""
        if self.muted:
            return self._resting_state()
        self._listen_with = (preroll, followup)
        return LISTENING

    def enter_listening(self) -> None:
        preroll, followup = self._listen_with
        self._listen_with = ((), False)
        vad = self.settings.vad
        timeout = (self.settings.llm.followup_s or vad.start_timeout_s) if followup else None
        self.listener.begin(self._t, timeout or vad.start_timeout_s)
        if self.stt is not None:
            self.stt.start()
            self._stt_open = True
            for pcm in preroll:
                self.stt.feed(pcm)
        self._audio = list(preroll) if self.settings.log.save_audio else None
        self._emit("listening")
        if self.settings.audio.chimes and not followup:
            self.voice.chime("wake")

    def exit_listening(self) -> None:
        self.listener.end()
        self._finish_stt()

    def exit_speaking(self) -> None:
        self.parts.stop_spotter.reset()

    def _finish_stt(self) -> str:
        """The transcript; the transcriber is finished once per request, however it ends."""
        if self.stt is None or not self._stt_open:
            return ""
        self._stt_open = False
        return self.stt.finish()

    def on_wake(self, woke: Woke) -> State:
        model, score = woke.detection.model, woke.detection.score
        self._emit("wake", model=model, score=score)
        self.clips.wake(model, score, self._t)
        if not self.parts.arbiter.claim(model, score):
            self._emit("wake_lost", model=model, score=score, reason="arbitration")
            return self.state
        self.interrupt()
        return self.listen(woke.preroll)

    def on_wake_lost(self, lost: WakeLost) -> State:
        self._emit("wake_lost", model=None, score=None, reason=lost.reason)
        return self.rest()

    def on_speech_started(self, _: SpeechStarted) -> State:
        self._emit("speech_start")
        return LISTENING

    def on_speech_ended(self, ended: SpeechEnded | TooLong) -> State:
        # last_speech_t: when the voice was last heard, so the end-of-speech delay shows
        self._emit("speech_end", last_speech_t=round(ended.last_speech_t, 3))
        if self._audio:
            save_request_audio(self.settings, self._audio, self.clock.epoch())
        self.fire("heard", None if self.stt is None else strip_wake_words(self._finish_stt()))
        return THINKING

    # --- understanding
    def think(self, text: str | None) -> State:
        """A request, heard or typed (None: heard, but there is no speech model)."""
        self._emit("transcript", text=text or "")
        question, self._question = self._question, None
        if text is None:
            return self.reply(NO_MODEL, Origin.FALLBACK, cache=True)
        if not text:
            if getattr(self.stt, "out_of_grammar", False):  # speech, but no command in it
                return self.reply(OUT_OF_GRAMMAR_REPLY, Origin.FALLBACK, cache=True)
            return self.reply(NOT_HEARD, Origin.FALLBACK, cache=True)
        outcome = self.actions.answer(question, text) if question is not None else None
        if outcome is not None:
            self._emit("intent", name="answer", slots={"text": text})
            return self._carry_out(outcome)
        words = normalize(text)
        intent = recognize_builtin(words) or self.actions.custom.recognize(words)
        if intent is not None:
            self._emit("intent", name=intent.name, slots=intent.slots)
            return self._carry_out(self.actions.act(intent, self.clock.epoch(), self.volume))
        if self.responder is None:
            return self.reply(UNKNOWN, Origin.FALLBACK, cache=True)
        if self.settings.audio.chimes:  # the answer takes a moment: say we heard
            self.voice.chime("done")
        self._request = self.voice.utterances.new_id()
        self.responder.respond(self._request, text, self._from_responder)
        return THINKING

    def _carry_out(self, outcome: Outcome) -> State:
        if outcome.volume is not None:
            self.set_volume(outcome.volume)
        if outcome.stop:
            return self.stop_everything()
        text = outcome.text
        if outcome.repeat:
            text = self.last_reply or NOTHING_SAID
        if text is None:
            return self.rest()
        if outcome.question is not None and not self.muted:
            self._question, self._followup = outcome.question, True
        return self.reply(text, Origin.LOCAL, cache=outcome.cache)

    # --- speaking
    def reply(self, text: str, origin: Origin, cache: bool = False) -> State:
        """Answer the request: a ``reply`` event, remembered for "repeat that", spoken."""
        self._emit_reply(text, origin.value)
        self.last_reply = text
        return self.speak(origin, text, self._asker, cache=cache)

    def _emit_reply(self, text: str, source: str) -> None:
        """A ``reply`` event; one answering a typed request names it (``request_id``)."""
        if self._asker is None:
            self._emit("reply", text=text, source=source)
        else:
            self._emit("reply", text=text, source=source, request_id=self._asker)

    def speak(
        self, origin: Origin, text: str, request_id: RequestId = None, cache: bool = False
    ) -> State:
        self.voice.say(origin, text, request_id, cache)
        return self.state if self.state in BUSY else THINKING

    def on_playback_started(self, msg: PlaybackStarted) -> State:
        return State.SPEAKING if self.voice.started(msg.utterance) else self.state

    def on_playback_done(self, msg: PlaybackDone) -> State:
        if self.voice.done(msg.utterance) is None:
            return self.state  # a chime, or speech that was already cut
        self._asker = None
        if self._followup and not self.muted:
            self._followup = False
            return self.listen(followup=True)
        return self.rest()

    def on_reply_sentence(self, msg: ReplySentence) -> State:
        if msg.request == self._request:
            self.voice.stream(msg.text, self._asker)
        return self.state

    def on_reply_end(self, msg: ReplyEnd) -> State:
        if msg.request != self._request:
            return self.state
        self._request = 0
        if msg.error:
            self._emit("error", where="llm", message=msg.error)
        current = self.voice.current
        if current is None or current.origin != Origin.LLM or not current.text:
            return self.reply(msg.fallback or UNKNOWN, Origin.FALLBACK, cache=True)
        self._emit_reply(current.text, "llm")
        self.last_reply = current.text
        if self.settings.llm.followup_s > 0 and asks_question(current.text):
            self._followup = True
        self.voice.end_stream()
        return self.state

    def rest(self, _: object = None) -> State:
        """Back to idle (or muted/error), after any announcement or timer that waited."""
        self._followup, self._question, self._asker = False, None, None
        pending = self.voice.next_waiting()
        if pending is not None:
            return self.speak(pending.origin, pending.text, pending.request_id)
        due = self.timers.due(self.clock.epoch())
        if due:
            return self._ring(due[0])
        return self._resting_state()

    def _ring(self, timer: Timer) -> State:
        self.timers.remove(timer)
        self._emit("timer", action="ring", name=timer.name, seconds=timer.seconds, id=timer.id)
        self.voice.ring(f"Your {timer.label()} is done.", self.settings.assistant.ring_repeats)
        return THINKING

    def interrupt(self) -> None:
        """Barge-in: cut speech, a ringing timer and any answer on its way."""
        self.voice.cut("interrupted")
        self._followup, self._question, self._asker = False, None, None
        if self._request and self.responder is not None:
            self.responder.cancel(self._request)
        self._request = 0
        self.speech.cancel()

    def on_stop_word(self, _: object = None) -> State:
        """ "Stop" said alone while it spoke or rang: the same as the stop button."""
        self._emit("stop_word")
        return self.stop_everything()

    def stop_everything(self, _: object = None) -> State:
        self.voice.drop_waiting("stopped")
        self.interrupt()
        return self.rest()

    def on_fault(self, fault: tuple[str, str]) -> State:
        """Something failed mid-request: say so, show the error for a moment, recover."""
        where, message = fault
        self.last_error = f"{where}: {message}"
        self._emit("error", where=where, message=message)
        self.interrupt()
        self._error_until = self._t + self.settings.assistant.error_hold_s
        if self.settings.audio.chimes:
            self.voice.chime("error")
        return ERROR

    def _from_responder(self, msg: object) -> None:
        """The responder's door (its thread): only its own kinds of message pass."""
        if isinstance(msg, ReplySentence | ReplyEnd | Notice):
            self.inbox.post(msg)
        else:
            logger.error("responder posted a {}; ignored", type(msg).__name__)

    def awaiting_answer(self) -> bool:
        """An answer is streaming in (the LLM): it arrives over real time."""
        return self._request != 0

    # --- settings
    def set_volume(self, level: int) -> None:
        level = max(0, min(100, int(level)))
        if level != self.volume:
            self.volume = level
            self.speech.volume = level
            self.store.put("settings", "volume", level)
        self._emit("volume", volume=self.volume)

    def set_muted(self, muted: bool) -> State:
        if muted != self.muted:
            self.muted = muted
            self.store.put("settings", "muted", muted)
            if not muted:
                self.listener.reset()  # it heard nothing while muted: drop what it held
            logger.info("microphone {}", "muted" if muted else "unmuted")
        self._emit("mute", muted=self.muted)
        if muted and self.state == LISTENING:
            return self.rest()
        return self._resting_state() if self.state in RESTING else self.state
