"""The assistant: one state machine, the whole of it in the table (``core/table.py``).

Edges (microphone, button, MQTT, speaker, LLM stream) post messages to its queue; hearing
turns frames into wake and speech events. Each event is looked up in the table by (state,
event); its handler returns the next state, which must be one the row allows. The
handlers of the turn's end and of faults are methods here, as are the entry and exit
actions; the others are functions beside the assistant that take it first and act
through what it makes public: the button's (``core/controls.py``), the commands
(``core/commands.py``), a wake and the request's speech (``core/listening.py``), a
request understood (``core/understanding.py``), what is said and what follows it
(``core/speaking.py``), Home Assistant's side of a turn (``core/home_turns.py``) and the
parts' notices (``core/notices.py``, with the `Conditions` they set: an error shown, the
microphone failed, an update running, the network gone).
The dispatcher (`dispatcher.Machine`) alone changes state, running the exit action of
the old state and the entry action of the new one: leaving LISTENING always finishes the
recognizer, exactly once. An event with no row in the current state is ignored there.

The assistant decides; its parts, each handed to the constructor by the one wiring
function (``app/wiring.py``), do the work and keep their own state: `Hearing` (the
per-frame path), `Voice` (what is being said and what waits to be), `TimerBell` (timers
ringing here), `Actions` (what a request means, carried out), `Controls` (volume and
mute, kept across restarts), `HomeTurns` (Home Assistant's side of a request), `Health`
(the status report), the responder (the online model's answers) and the `Display` that
turns what it shows into LED patterns. Only the table's handlers change the assistant's
own state: the machine's state, the dialogue turn and the last error.

Mute is held once, by `Controls`. Muted is a guard, not a copy of the machine: muted
frames reach no engine and listening is refused; the ``muted`` state is only the name
of the resting state while `Controls.muted` is set (`resting_state`).
"""

from __future__ import annotations

import queue

from loguru import logger

from firmware_app.config.settings import Settings
from firmware_app.core import home_turns
from firmware_app.core.commands import answer
from firmware_app.core.controls import Controls
from firmware_app.core.dispatcher import Machine
from firmware_app.core.errors import FaultCode
from firmware_app.core.events import Emitter, EventBus
from firmware_app.core.health import Health
from firmware_app.core.home_turns import HomeTurns
from firmware_app.core.messages import Button, Command, Fault, Frame, Inbox, Message, Stop, Tick
from firmware_app.core.notices import Conditions
from firmware_app.core.parts import Clock, Parts, Responder
from firmware_app.core.speaking import speak
from firmware_app.core.states import (
    ERROR,
    IDLE,
    LISTENING,
    MUTED,
    SPEAKING,
    THINKING,
    Happening,
    State,
)
from firmware_app.core.status import Display, Showing, StatusBoard, StatusCadence
from firmware_app.core.table import EVENT_OF, GESTURES, Table
from firmware_app.core.timer_bell import TimerBell
from firmware_app.core.turn import Turn
from firmware_app.listen.hearing import Hearing
from firmware_app.speak.output import SpeechOutput
from firmware_app.speak.utterances import Voice
from firmware_app.system.kept_files import KeptFiles
from firmware_app.system.metrics import Metrics
from firmware_app.understand.actions import FIXED_PHRASES, Actions
from firmware_app.understand.timers import Timers


class Assistant:
    """The entry/exit actions and the handlers the table names here (the functions
    beside it aside), and the state the table's handlers change."""

    def __init__(
        self,
        settings: Settings,
        *,
        hearing: Hearing,
        voice: Voice,
        bell: TimerBell,
        actions: Actions,
        controls: Controls,
        display: Display,
        home: HomeTurns,
        health: Health,
        emit: Emitter,
        inbox: Inbox,
        clock: Clock,
        board: StatusBoard,
        parts: Parts,
        responder: Responder | None = None,
        open_speech: bool = False,
        kept_requests: KeptFiles | None = None,
    ) -> None:
        self.settings = settings
        self.hearing = hearing
        self.voice = voice
        self.bell = bell
        self.actions = actions
        self.controls = controls
        self.display = display
        self.home = home
        self.emit = emit
        self.bus: EventBus = emit.bus
        self.inbox = inbox
        self.clock = clock
        self.health = health
        self.board = board
        self.parts = parts
        self.responder = responder
        self.open_speech = open_speech
        """Whether a request that is no command has words for the online model: what the
        reply to one says is missing depends on it."""
        self.kept_requests = kept_requests
        """Where each request's audio is kept (``log.save_audio``, bounded); None: not."""
        self.conditions = Conditions(settings.assistant.error_hold_s)
        self.turn = Turn()
        self._listen_with: tuple[tuple[bytes, ...], bool, str] = ((), False, "")
        """How the next request opens: pre-roll, follow-up, the wake word's phrase."""
        self._running = False
        self.table = Table.of(type(self))
        self.machine = Machine(
            self,
            self.resting_state(),
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

    @property
    def muted(self) -> bool:
        return self.controls.muted

    @property
    def volume(self) -> int:
        return self.controls.volume

    @property
    def timers(self) -> Timers:
        return self.bell.timers

    @property
    def metrics(self) -> Metrics:
        return self.health.metrics

    @property
    def speech(self) -> SpeechOutput:
        return self.voice.speech

    @property
    def _t(self) -> float:
        """The assistant's time: the latest the frames and ticks have reached."""
        return self.emit.t

    def fire(self, event: Happening, payload: object = None) -> None:
        """The one door to the table (see `dispatcher.Machine.fire`)."""
        self.machine.fire(event, payload)

    # --- the edges' door and the loops
    def post(self, msg: Message) -> None:
        """Thread-safe: the only way anything outside acts on the assistant."""
        self.inbox.post(msg)

    def start(self) -> None:
        """Announce the initial state, deal with timers that expired while we were off."""
        self.hearing.reset()
        self.emit("state", state=self.state.value)
        self.settled()
        for missed in self.bell.resume():
            self.voice.queue(missed, force=True)
        self.fire(Happening.STARTED)
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
        """Nothing queued, nothing being synthesized, no answer on its way. Announcements
        waiting for their turn do not count: their turn comes when what plays now has
        played, and under ``simulate`` that takes the clock to move on."""
        return not self.speech.busy() and self.turn.request == 0 and self.inbox.empty()

    def idle(self, queue: bool = True) -> bool:
        """Nothing being synthesized or announced, no answer on its way (and, with
        ``queue``, no message waiting)."""
        busy = self.voice.busy() or self.awaiting_answer()
        return not busy and (not queue or self.inbox.empty())

    def awaiting_answer(self) -> bool:
        """An answer is on its way (the LLM's stream, Home Assistant's pipeline): it
        arrives over real time."""
        return self.turn.request != 0 or self.turn.handed

    def handle(self, msg: Message) -> None:
        try:
            self._route(msg)
            self._publish_status(frame=isinstance(msg, Frame))
        except Exception as exc:  # one bad message must not end the assistant
            logger.opt(exception=exc).error(
                "assistant: {} while handling {}", exc, type(msg).__name__
            )
            if isinstance(msg, Command):
                answer(msg, False, f"{msg.name} failed: {type(exc).__name__}")
            self.fire(Happening.FAULT, Fault(FaultCode.ASSISTANT, f"{type(exc).__name__}: {exc}"))

    def _route(self, msg: Message) -> None:
        """Messages become table events (frames through hearing)."""
        if isinstance(msg, Frame):
            self._on_frame(msg)
        elif isinstance(msg, Tick):
            if msg.recovering and self.parts.heartbeat is not None:
                self.parts.heartbeat(False)
            self._advance(msg.t)
        elif isinstance(msg, Stop):
            self._running = False
        elif isinstance(msg, Button):
            self.fire(GESTURES[msg.gesture], msg)
        else:
            self.fire(EVENT_OF[type(msg)], msg)

    # --- what the dispatcher calls back
    def changed(self, before: State, after: State) -> None:
        logger.info("state {} → {}", before.value, after.value)
        self.emit("state", state=after.value)

    def settled(self) -> None:
        """After each event: what it shows now, for the display (the LEDs)."""
        showing = Showing(
            self.state,
            muted=self.muted,
            ringing=self.voice.ringing,
            updating=self.conditions.updating,
            offline=self.conditions.offline,
            timing=self.parts.satellite.timing(),
        )
        self.display.show(showing)

    def resting_state(self) -> State:
        """Where the machine rests now: an error still shown, else muted or idle. Public for
        the controls' handlers: a mute changed at rest renames the state it rests in."""
        if self.conditions.erring(self._t):
            return ERROR
        return MUTED if self.muted else IDLE

    # --- audio
    def _on_frame(self, frame: Frame) -> None:
        if self.conditions.mic_fault:
            self.conditions.mic_fault = False
            self.fire(Happening.ERROR_OVER)
        self._advance(frame.t)
        if self.parts.heartbeat is not None:
            self.parts.heartbeat(True)
        if self.muted:
            return  # privacy: muted audio reaches no engine
        stop_armed = self.state == SPEAKING or self.voice.ringing
        for event in self.hearing.hear(frame, self._t, stop_armed=stop_armed):
            self.fire(EVENT_OF[type(event)], event)

    def _advance(self, t: float) -> None:
        self.emit.advance(t)
        if self.state == ERROR and not self.conditions.erring(self._t):
            self.fire(Happening.ERROR_OVER)
        if self.bell.came_due():
            self.fire(Happening.TIMER_DUE)

    # --- listening
    def listen(
        self, preroll: tuple[bytes, ...] = (), followup: bool = False, phrase: str = ""
    ) -> State:
        """Go to LISTENING (its entry action starts the transcriber); refused while muted.
        ``phrase``: the wake word that opened the request, as Home Assistant is told it."""
        if self.muted:
            return self.resting_state()
        self._listen_with = (preroll, followup, phrase)
        return LISTENING

    def enter_listening(self) -> None:
        preroll, followup, phrase = self._listen_with
        self._listen_with = ((), False, "")
        vad = self.settings.vad
        timeout = (self.settings.llm.followup_s or vad.start_timeout_s) if followup else None
        # the request's audio after the pre-roll also goes to Home Assistant, if it takes it
        self.hearing.begin(self._t, timeout or vad.start_timeout_s, preroll, relay=self.relay)
        self.emit("listening")
        if self.settings.audio.chimes and not followup:
            self.voice.chime("wake")
        self.turn.release()
        self.turn.run = self.home.offer(phrase, followup)
        if self.turn.run:  # Home Assistant listens: it should hear the end sooner
            cfg = self.settings.esphome
            self.hearing.limit_silence(cfg.silence_ms / 1000, cfg.unfinished_ms / 1000)

    def exit_listening(self) -> None:
        self.hearing.end()  # the recognizer is finished once, however listening ends
        if not self.turn.handed:  # Home Assistant was not given the request: withdrawn
            self._withdraw_run()

    def relay(self, pcm: bytes) -> None:
        """One frame of the open request, for Home Assistant while it listens to it."""
        if self.turn.run and not self.turn.handed:
            self.home.relay(self.turn.run, pcm)

    def _withdraw_run(self) -> None:
        """Home Assistant stops working on this turn's request (if it had it)."""
        if self.turn.run:
            self.home.withdraw(self.turn.run)
        self.turn.release()

    def exit_speaking(self) -> None:
        self.hearing.disarm_stop()

    # --- the end of a turn
    def rest(self, _: object = None) -> State:
        """Back to idle (or muted/error), after any announcement or timer that waited."""
        self._withdraw_run()
        self.turn = Turn(request=self.turn.request)  # the turn is over; an answer may end it
        held = self.home.take_held()
        if held is not None:  # the announcement that waited now plays
            return home_turns.play(self, held)
        pending = self.voice.next_waiting()
        if pending is not None:
            return speak(self, pending.origin, pending.text, pending.request_id)
        ring = self.bell.next_ring()
        if ring is not None:
            self.voice.ring(ring, self.settings.assistant.ring_repeats)
            return THINKING
        return self.resting_state()

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
        self.emit("stop_word")
        return self.stop_everything()

    def stop_everything(self, _: object = None) -> State:
        self.voice.drop_waiting("stopped")
        self.home.stop_media()
        self.interrupt()
        return self.rest()

    def on_fault(self, fault: Fault) -> State:
        """Something failed mid-request: say so, show the error for a moment, recover."""
        where, message = fault.where, fault.message
        self.conditions.failed(where, message, self._t)
        self.emit("error", where=where, message=message)
        self.interrupt()
        if self.settings.audio.chimes:
            self.voice.chime("error")
        return ERROR

    # --- health
    def _publish_status(self, frame: bool = False) -> None:
        """Publish the status for other threads (`StatusBoard`), as often as
        `StatusCadence` says."""
        self._cadence.publish(self.status, self.state, frame)

    def status(self) -> dict[str, object]:
        """The status now (this thread only; other threads read `board`)."""
        return self.health.report(self.state.value, self.conditions.last_error)


__all__ = ["Assistant", "State"]
