"""Home Assistant's timers on the speaker's LEDs: shown while they run, rung when they
finish, dark again once they are gone. Home Assistant's side is aioesphomeapi's own client;
the LED is a PWM LED on gpiozero's mock pins, judged by its pin; the assistant is the
real one on fakes (fakes.Rig)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from esphome_support import FakeHome
from fakes import SILENT, Rig, ScriptedStt
from gpiozero.pins.mock import MockFactory
from harness import wait_until

from firmware_app.config.settings import Settings
from firmware_app.core.messages import Command
from firmware_app.core.parts import Parts
from firmware_app.edges.esphome.timers import GRACE_S, HomeTimers
from firmware_app.edges.esphome.wiring import build_satellite
from firmware_app.edges.gpio import start_gpio
from firmware_app.edges.gpio.patterns import PATTERNS, level

LED = 12
STARTED, UPDATED, CANCELLED, FINISHED = range(4)


class Speaker:
    def __init__(self, tmp_path: Path, factory: MockFactory) -> None:
        self.settings = Settings(
            data_dir=tmp_path / "data",
            esphome={"enabled": True, "host": "127.0.0.1", "port": 0},  # type: ignore[arg-type]
            gpio={"led": "single", "led_pin": LED},  # type: ignore[arg-type]
        )
        self.stack = ExitStack()
        box: list[Rig] = []
        sat = build_satellite(
            self.settings, lambda m: box[0].inbox.post(m), dict, self.stack, advertise=False
        )
        assert sat is not None
        self.rig = Rig(self.settings, stt=ScriptedStt(), parts=Parts(satellite=sat))
        box.append(self.rig)
        self.rig.assistant.bus.subscribe(sat)
        bridge = start_gpio(self.settings, self.rig.assistant)
        assert bridge is not None
        self.stack.callback(bridge.close)
        self.led = factory.pin(LED)
        self.ha = FakeHome(sat.port)
        self.ha.connect()
        wait_until(lambda: sat.connected, what="Home Assistant subscribed")

    def timer(self, event: int, left: int, name: str = "pasta") -> None:
        async def send() -> None:
            assert self.ha.client is not None
            self.ha.client.send_voice_assistant_timer_event(event, "t1", name, 60, left, True)

        self.ha.run(send())

    def pump_until_pattern(self, name: str, timeout: float = 5.0) -> None:
        """Frames keep coming while Home Assistant's message arrives."""
        deadline = time.monotonic() + timeout
        while self.patterns()[-1:] != [name]:
            assert time.monotonic() < deadline, f"no {name!r}: {self.patterns()}"
            self.rig.feed(SILENT)
            time.sleep(0.01)

    def patterns(self) -> list[str]:
        return [str(e.fields["pattern"]) for e in self.rig.of("led")]

    def brightness_over(self, seconds: float) -> list[float]:
        """The LED's brightness, sampled every 20 ms for ``seconds``."""
        out = []
        for _ in range(round(seconds / 0.02)):
            out.append(float(self.led.state))
            time.sleep(0.02)
        return out

    def close(self) -> None:
        self.ha.close()
        self.stack.close()
        self.rig.close()


@pytest.fixture
def speaker(tmp_path: Path, factory: MockFactory):
    s = Speaker(tmp_path, factory)
    yield s
    s.close()


def test_a_running_home_assistant_timer_glows_until_it_is_cancelled(speaker: Speaker) -> None:
    assert speaker.led.state == 0
    speaker.timer(STARTED, 60)
    speaker.pump_until_pattern("timer_running")
    seen = speaker.brightness_over(1.5)
    peak = level(PATTERNS["timer_running"].colour)
    assert max(seen) > 0.1 * peak and max(seen) <= peak + 1e-6  # a dim glow, breathing
    assert len(set(seen)) > 5
    speaker.timer(UPDATED, 30)  # paused or extended: still shown
    speaker.rig.feed(SILENT)
    assert speaker.patterns()[-1] == "timer_running"
    speaker.timer(CANCELLED, 30)
    speaker.pump_until_pattern("idle")
    wait_until(lambda: speaker.led.state == 0, what="the LED dark")


def test_a_finished_home_assistant_timer_rings_then_the_led_goes_dark(speaker: Speaker) -> None:
    speaker.timer(STARTED, 60)
    speaker.pump_until_pattern("timer_running")
    speaker.timer(FINISHED, 0)
    speaker.pump_until_pattern("timer")  # ringing: the brightest orange flashes
    speaker.rig.post(Command("stop"))
    speaker.rig.settle()
    assert speaker.patterns()[-1] == "idle"
    wait_until(lambda: speaker.led.state == 0, what="the LED dark")


def test_the_speaker_listening_shows_over_a_running_timer(speaker: Speaker) -> None:
    from fakes import WAKE

    speaker.timer(STARTED, 60)
    speaker.pump_until_pattern("timer_running")
    speaker.rig.feed(WAKE)
    assert speaker.patterns()[-1] == "listening"
    wait_until(
        lambda: speaker.led.state == pytest.approx(level(PATTERNS["listening"].colour)),
        what="the listening light",
    )


def test_timers_home_assistant_never_ended_are_forgotten_when_due() -> None:
    now = [100.0]
    timers = HomeTimers(clock=lambda: now[0])
    timers.update("started", "a", 10)
    timers.update("started", "b", 60)
    assert timers.running()
    timers.update("cancelled", "b", 0)
    now[0] += 10 + GRACE_S - 0.1
    assert timers.running()  # due, waiting for Home Assistant's "finished"
    now[0] += 0.2
    assert not timers.running()  # Home Assistant went away without a word
    timers.update("updated", "c", 10, active=False)  # paused: not due while it waits
    now[0] += 3600
    assert timers.running()


def test_a_flood_of_timers_is_bounded() -> None:
    from firmware_app.edges.esphome.timers import MAX_TIMERS

    timers = HomeTimers()
    for i in range(MAX_TIMERS * 10):
        timers.update("started", f"t{i}", 60 + i)
    assert len(timers._due) == MAX_TIMERS
    assert "t0" not in timers._due and f"t{MAX_TIMERS * 10 - 1}" in timers._due
