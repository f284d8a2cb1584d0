"""The assistant's parts on their own: the controls (volume and mute, kept in the store),
the timer bell, and the LED display that chooses patterns from what the assistant shows."""

from __future__ import annotations

from pathlib import Path

from fakes import FakeTts, ManualClock

from firmware_app.audio.sim import SimulatedSpeaker
from firmware_app.core.controls import Controls
from firmware_app.core.events import Emitter, Event, EventBus
from firmware_app.core.messages import Inbox
from firmware_app.core.status import Showing
from firmware_app.core.table import State
from firmware_app.core.timer_bell import TimerBell
from firmware_app.edges.gpio.patterns import LedPatterns
from firmware_app.speak.output import SpeechOutput
from firmware_app.system.store import Store
from firmware_app.understand.timers import Timers


def recorded(clock: ManualClock) -> tuple[Emitter, list[Event]]:
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    return Emitter(bus, clock.t), events


def test_controls_keep_volume_and_mute_in_the_store_and_apply_the_volume(tmp_path: Path) -> None:
    clock, inbox = ManualClock(), Inbox()
    speech = SpeechOutput(FakeTts(), SimulatedSpeaker(16000, inbox.post, clock.t), inbox.post)
    store = Store(tmp_path / "store.db")
    controls = Controls(store, speech, default_volume=70)
    assert (controls.volume, controls.muted, speech.volume) == (70, False, 70)
    controls.set_volume(140)
    assert controls.volume == 100 and speech.volume == 100
    assert controls.set_muted(True) and not controls.set_muted(True)  # changed once
    store.close()
    again = Store(tmp_path / "store.db")
    restored = Controls(again, speech, default_volume=70)
    assert (restored.volume, restored.muted) == (100, True)
    again.close()
    speech.close()


def test_the_bell_rings_a_due_timer_once_and_only_where_timers_ring(tmp_path: Path) -> None:
    clock = ManualClock()
    store = Store(tmp_path / "store.db")
    emit, events = recorded(clock)
    timers = Timers(store, clock)
    silent = TimerBell(timers, emit, rings=False)
    bell = TimerBell(timers, emit, rings=True)
    timers.add(60, "pasta")
    clock.now = 61.0
    assert not silent.came_due() and silent.next_ring() is None
    assert [t.name for t in timers.active()] == ["pasta"] and events == []
    assert bell.next_ring() == "Your pasta timer is done."
    assert bell.next_ring() is None and timers.active() == []
    assert [(e.type, e.fields["action"], e.t) for e in events] == [("timer", "ring", 61.0)]
    store.close()


def test_the_led_display_tells_a_pattern_only_when_it_changes() -> None:
    clock = ManualClock()
    emit, events = recorded(clock)
    leds = LedPatterns(emit)

    def show(state: State, **flags: bool) -> None:
        values = {"muted": False, "ringing": False, "updating": False, "offline": False}
        leds.show(Showing(state, **{**values, **flags}))

    show(State.IDLE)
    show(State.IDLE)
    show(State.MUTED, muted=True)
    show(State.THINKING, muted=True)
    show(State.SPEAKING, ringing=True)
    show(State.SPEAKING, ringing=True)
    patterns = [e.fields["pattern"] for e in events if e.type == "led"]
    assert patterns == ["idle", "muted", "thinking", "timer"]
