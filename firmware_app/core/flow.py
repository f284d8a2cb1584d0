"""What the assistant does between events: listening, understanding, speaking.

`Flow` holds the handlers and the entry and exit actions the table in ``core/table.py``
names, and the state they share. Handlers return the next state and never set it; the
dispatcher (`dispatcher.Machine`) does, so every change goes through the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from loguru import logger

from firmware_app import __version__
from firmware_app.config.settings import Settings
from firmware_app.core.dispatcher import Machine
from firmware_app.core.errors import FaultCode
from firmware_app.core.events import Event, EventBus, wall_now
from firmware_app.core.messages import (
    Fault,
    HomeAudio,
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
from firmware_app.core.status import StatusBoard, StatusCadence
from firmware_app.core.table import (
    BUSY,
    ERROR,
    LISTENING,
    RESTING,
    THINKING,
    Happening,
    State,
    Table,
)
from firmware_app.core.turn import Turn
from firmware_app.edges.esphome import turns as home_turns
from firmware_app.edges.gpio.patterns import choose_pattern
from firmware_app.listen.hearing import Hearing
from firmware_app.listen.segmenter import (
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Transcript,
    Woke,
    request_audio,
    save_request_audio,
)
from firmware_app.recognize.stt import hears_open_speech
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.sentences import asks_question
from firmware_app.speak.utterances import MAX_ANNOUNCEMENTS, Origin, Voice
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
    beyond_commands,
    how_to_add,
    without_wake_words,
)
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.timers import Timer, Timers

if TYPE_CHECKING:
    from firmware_app.core.assistant import Assistant


class Flow:
    """The handlers and actions the table names, and the state they share."""

    def __init__(
        self,
        settings: Settings,
        *,
        hearing: Hearing,
        speech: SpeechOutput,
        store: Store,
        inbox: Inbox | None = None,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        responder: Responder | None = None,
        stt_problem: str | None = None,
        parts: Parts | None = None,
        board: StatusBoard | None = None,
        rings_timers: bool = True,
    ) -> None:
        self.settings = settings
        self.hearing = hearing
        self.stt_problem = stt_problem
        self.store = store
        self.clock: Clock = clock or RealClock()
        self.bus = bus or EventBus()
        self.responder = responder
        self.inbox = inbox or Inbox()
        self.parts = parts or Parts()
        self.board = board or StatusBoard()
        # Whether timers ring (and missed ones are announced) here: the service's job. A
        # one-off ``ask``/``say`` leaves them to it, so its fast simulated clock can
        # neither ring a timer early nor take a missed one's announcement away.
        self.rings_timers = rings_timers
        # Whether a request that is no command has words for the online model: what the
        # reply to one says is missing depends on it.
        self.open_speech = hears_open_speech(settings, hearing.recognizer)
        self.voice = Voice(speech, self._emit, MAX_ANNOUNCEMENTS)
        self.timers = Timers(store, self.clock)
        self.kept_requests = request_audio(settings)  # log.save_audio, bounded
        # MQTT set up but no publisher: a one-off process (``ttbt5 ask --local``)
        no_home = NO_HOME if settings.mqtt.host is None else NO_SERVICE
        custom = CustomIntents(settings.intents)
        self.actions = Actions(self.timers, custom, self._emit, self.parts.home_publish, no_home)
        self.muted = bool(store.get("settings", "muted", False))
        self.volume = int(store.get("settings", "volume", settings.audio.volume))
        speech.volume = self.volume
        self.metrics = Metrics()  # the counters, derived from the events like everywhere
        self.bus.subscribe(self.metrics)
        self.last_error = ""
        self.last_reply = ""
        self._t = 0.0
        self.turn = Turn()
        self._listen_with: tuple[tuple[bytes, ...], bool, str] = ((), False, "")
        """How the next request opens: pre-roll, follow-up, the wake word's phrase."""
        self.held: HomeAudio | None = None
        """An announcement or media from Home Assistant that came mid-request: it plays
        when the request is over."""
        self._error_until = 0.0
        self._mic_fault = self._offline = self._updating = False
        self._pattern = ""
        self._running = False
        owner = cast("Assistant", self)  # the table names the assistant's methods
        self.table = Table.of(type(owner))
        self.machine = Machine(
            owner,
            self._resting_state(),
            self.table.transitions,
            self.table.entry,
            self.table.exit,
            self.changed,
            self.settled,
        )
        self._cadence = StatusCadence(self.board, self.state)
        self._publish_status()  # readers see the real status from the start

    @property
    def state(self) -> State:
        return self.machine.state

    def fire(self, event: Happening, payload: object = None) -> None:
        """The one door to the table (see `dispatcher.Machine.fire`)."""
        self.machine.fire(event, payload)

    @property
    def speech(self) -> SpeechOutput:
        return self.voice.speech

    # --- what the dispatcher calls back
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
    def listen(
        self, preroll: tuple[bytes, ...] = (), followup: bool = False, phrase: str = ""
    ) -> State:
        """Go to LISTENING (its entry action starts the transcriber); refused while muted.
        ``phrase``: the wake word that opened the request, as Home Assistant is told it."""
        if self.muted:
            return self._resting_state()
        self._listen_with = (preroll, followup, phrase)
        return LISTENING

    def enter_listening(self) -> None:
        preroll, followup, phrase = self._listen_with
        self._listen_with = ((), False, "")
        vad = self.settings.vad
        timeout = (self.settings.llm.followup_s or vad.start_timeout_s) if followup else None
        # the request's audio after the pre-roll also goes to Home Assistant, if it takes it
        self.hearing.begin(self._t, timeout or vad.start_timeout_s, preroll, relay=self._relay)
        self._emit("listening")
        if self.settings.audio.chimes and not followup:
            self.voice.chime("wake")
        home_turns.offer(self, phrase, followup)

    def exit_listening(self) -> None:
        self.hearing.end()  # the recognizer is finished once, however listening ends
        if not self.turn.handed:  # Home Assistant was not given the request: withdrawn
            self._withdraw_run()

    def _relay(self, pcm: bytes) -> None:
        """One frame of the open request, for Home Assistant while it listens to it."""
        if self.turn.run and not self.turn.handed:
            self.parts.satellite.feed(self.turn.run, pcm)

    def _withdraw_run(self) -> None:
        """Home Assistant stops working on this turn's request (if it had it)."""
        if self.turn.run:
            self.parts.satellite.abort(self.turn.run)
        self.turn.release()

    def exit_speaking(self) -> None:
        self.hearing.disarm_stop()

    def on_wake(self, woke: Woke) -> State:
        model, score = woke.detection.model, woke.detection.score
        self._emit("wake", model=model, score=score)
        if not self.parts.satellite.hears(model):  # turned off from Home Assistant
            self._emit("wake_lost", model=model, score=score, reason="inactive")
            return self.state
        if not self.parts.arbiter.claim(model, score):
            self._emit("wake_lost", model=model, score=score, reason="arbitration")
            return self.state
        self.interrupt()
        self.turn.opened_by = self._t
        return self.listen(woke.preroll, phrase=home_turns.wake_phrase(model))

    def set_wake_word(self, on: bool, reason: str) -> None:
        """Wakes stop while any reason holds them off (Rhasspy's dialogue manager turns
        them off for a session or while it plays audio, and on again with the same
        reason); turning on without a reason clears them all. Hearing holds the switch, so
        a wake heard while it is off never reaches the table."""
        switch = self.hearing.wake_word
        if switch.turn(on, reason):
            self._emit("wake_word", on=switch.on, reasons=switch.reasons)

    def drop_false_wake(self, wake_t: float) -> str | None:
        """ "That wasn't for me": the request the wake at ``wake_t`` opened is dropped,
        whatever it has reached (listening, thinking, its answer playing); returns the state
        it was dropped in, or None when that wake opened nothing still going."""
        if self.turn.opened_by != wake_t or self.state in RESTING:
            return None
        dropped = self.state.value
        self.interrupt("false wake")
        return dropped

    def on_wake_lost(self, lost: WakeLost) -> State:
        self._emit("wake_lost", model=None, score=None, reason=lost.reason)
        return self.rest()

    def on_speech_started(self, _: SpeechStarted) -> State:
        self._emit("speech_start")
        return LISTENING

    def on_speech_ended(self, ended: SpeechEnded | TooLong) -> State:
        # last_speech_t: when the voice was last heard, so the end-of-speech delay shows
        self._emit("speech_end", last_speech_t=round(ended.last_speech_t, 3))
        if ended.audio and self.kept_requests is not None:
            save_request_audio(self.kept_requests, list(ended.audio), self.clock.epoch())
        heard = without_wake_words(ended.transcript)
        if self.turn.run:  # Home Assistant answers this one
            return home_turns.hand_over(self, heard)
        self.fire(Happening.HEARD, heard)
        return THINKING

    # --- understanding
    def think(self, heard: Transcript) -> State:
        """A request, heard or typed (text None: heard, but there is no speech model)."""
        text = heard.text
        self._emit("transcript", text=text or "")
        question, self.turn.question = self.turn.question, None
        if text is None:
            return self.reply(NO_MODEL, Origin.FALLBACK, cache=True)
        if not text:
            if heard.out_of_grammar:  # speech, but no command in it
                return self._beyond_commands()
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
            return self._beyond_commands()
        if self.settings.audio.chimes:  # the answer takes a moment: say we heard
            self.voice.chime("done")
        self.turn.request = self.voice.utterances.new_id()
        self.responder.respond(self.turn.request, text, self._from_responder)
        return THINKING

    def _beyond_commands(self) -> State:
        """No command, and nothing here answers questions: say what would."""
        llm = self.responder is not None
        logger.info("not a command; {}", how_to_add(self.open_speech, llm))
        return self.reply(beyond_commands(self.open_speech, llm), Origin.FALLBACK, cache=True)

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
            self.turn.question, self.turn.followup = outcome.question, True
        return self.reply(text, Origin.LOCAL, cache=outcome.cache)

    # --- speaking
    def reply(self, text: str, origin: Origin, cache: bool = False) -> State:
        """Answer the request: a ``reply`` event, remembered for "repeat that", spoken."""
        self._emit_reply(text, origin.value)
        self.last_reply = text
        return self.speak(origin, text, self.turn.asker, cache=cache)

    def _emit_reply(self, text: str, source: str) -> None:
        """A ``reply`` event; one answering a typed request names it (``request_id``)."""
        if self.turn.asker is None:
            self._emit("reply", text=text, source=source)
        else:
            self._emit("reply", text=text, source=source, request_id=self.turn.asker)

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
        self.turn.asker = None
        if self.turn.followup and not self.muted:
            self.turn.followup = False
            return self.listen(followup=True)
        return self.rest()

    def on_reply_sentence(self, msg: ReplySentence) -> State:
        if msg.request == self.turn.request:
            self.voice.stream(msg.text, self.turn.asker)
        return self.state

    def on_reply_end(self, msg: ReplyEnd) -> State:
        if msg.request != self.turn.request:
            return self.state
        self.turn.request = 0
        if msg.error:
            self._emit("error", where=FaultCode.LLM, message=msg.error)
        current = self.voice.current
        if current is None or current.origin != Origin.LLM or not current.text:
            return self.reply(msg.fallback or UNKNOWN, Origin.FALLBACK, cache=True)
        self._emit_reply(current.text, "llm")
        self.last_reply = current.text
        if self.settings.llm.followup_s > 0 and asks_question(current.text):
            self.turn.followup = True
        self.voice.end_stream()
        return self.state

    def rest(self, _: object = None) -> State:
        """Back to idle (or muted/error), after any announcement or timer that waited."""
        self._withdraw_run()
        self.turn = Turn(request=self.turn.request)  # the turn is over; an answer may end it
        held = home_turns.take_held(self)
        if held is not None:
            return held
        pending = self.voice.next_waiting()
        if pending is not None:
            return self.speak(pending.origin, pending.text, pending.request_id)
        due = self.timers.due() if self.rings_timers else []
        if due:
            return self._ring(due[0])
        return self._resting_state()

    def _ring(self, timer: Timer) -> State:
        self.timers.remove(timer)
        self._emit("timer", action="ring", name=timer.name, seconds=timer.seconds, id=timer.id)
        self.voice.ring(f"Your {timer.label()} is done.", self.settings.assistant.ring_repeats)
        return THINKING

    def interrupt(self, reason: str = "interrupted") -> None:
        """Barge-in: cut speech, a ringing timer and any answer on its way."""
        self.voice.cut(reason)
        if self.turn.request and self.responder is not None:
            self.responder.cancel(self.turn.request)
        self._withdraw_run()
        self.turn = Turn()
        self.speech.cancel()

    def on_stop_word(self, _: object = None) -> State:
        """ "Stop" said alone while it spoke or rang: the same as the stop button."""
        self._emit("stop_word")
        return self.stop_everything()

    def stop_everything(self, _: object = None) -> State:
        self.voice.drop_waiting("stopped")
        self.interrupt()
        return self.rest()

    def on_fault(self, fault: Fault) -> State:
        """Something failed mid-request: say so, show the error for a moment, recover."""
        where, message = fault.where, fault.message
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
        """An answer is on its way (the LLM's stream, Home Assistant's pipeline): it
        arrives over real time."""
        return self.turn.request != 0 or self.turn.handed

    # --- health
    def _publish_status(self, frame: bool = False) -> None:
        """Publish the status for other threads (`StatusBoard`), as often as
        `StatusCadence` says."""
        self._cadence.publish(self.status, self.state, frame)

    def status(self) -> dict[str, object]:
        """The status now (this thread only; other threads read `board`)."""
        audio = self.parts.audio_status() if self.parts.audio_status else {}
        counts = self.metrics.snapshot()
        llm: dict[str, object] | None = None
        if self.responder is not None:
            breaker = self.responder.status().get("state")
            llm = {"available": self.responder.available(), "breaker": breaker}
        ready = self.hearing.recognizer is not None
        stt = "ready" if ready else (self.stt_problem or "missing")
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
            "stt": stt,
            "audio": audio,
            "tts_cache": self.speech.cache_stats(),
            "llm": llm,
            "satellite": self.parts.satellite.status(),
            "arbitration": self.parts.arbiter.status(),
            "clock": self.timers.clock_status(),
        }

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
                self.hearing.reset()  # it heard nothing while muted: drop what it held
            logger.info("microphone {}", "muted" if muted else "unmuted")
        self._emit("mute", muted=self.muted)
        if muted and self.state == LISTENING:
            return self.rest()
        return self._resting_state() if self.state in RESTING else self.state
