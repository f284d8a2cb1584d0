"""The button and LEDs on mock pins, wired by start_gpio to the real Assistant.

Presses are made the way a finger makes them (the mock pin driven low, then high) and the
LED is judged by its pin history; the state machine is the real one (on fake engines and a
manual clock, see fakes.Rig), and the privacy test runs the real wake word model on speech
synthesized by Piper.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audio_helpers import conversation, write
from fakes import SILENT, SPEECH, WAKE, Rig, ScriptedStt
from gpiozero.pins.mock import MockFactory
from harness import wait_until

from firmware_app.app.simulation import simulate
from firmware_app.config.settings import Settings
from firmware_app.core.events import Event
from firmware_app.core.messages import Button, Command
from firmware_app.edges.gpio import GpioBridge, start_gpio
from firmware_app.edges.gpio.patterns import PATTERNS, level

LED, BUTTON = 12, 17
GPIO = {
    "led": "single",
    "led_pin": LED,
    "button_pin": BUTTON,
    "hold_s": 0.5,
    "double_press_s": 0.25,
    "bounce_s": 0.01,
}


@pytest.fixture
def gpio_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", gpio=GPIO)  # type: ignore[arg-type]


class Speaker:
    """A real Assistant (fakes.Rig) with the GPIO bridge from start_gpio attached."""

    def __init__(
        self,
        settings: Settings,
        factory: MockFactory,
        stt: ScriptedStt | None = None,
        responder: object = None,
    ) -> None:
        self.rig = Rig(settings, stt=stt or ScriptedStt(), responder=responder)
        # count the gestures the button posts, so a test waits for exactly those
        self.buttons = self._delivered = 0
        post = self.rig.inbox.post

        def counting_post(msg: object) -> None:
            if isinstance(msg, Button):
                self.buttons += 1
            post(msg)  # type: ignore[arg-type]

        self.rig.inbox.post = counting_post  # type: ignore[method-assign]
        bridge = start_gpio(settings, self.rig.assistant)
        assert bridge is not None
        self.bridge: GpioBridge = bridge
        self.button = factory.pin(BUTTON)
        self.led = factory.pin(LED)

    @property
    def state(self) -> str:
        return self.rig.assistant.state.value

    def press(self) -> None:
        self._click()
        self._deliver()

    def double(self) -> None:
        self._click()
        time.sleep(0.03)
        self._click()
        self._deliver()

    def hold(self) -> None:
        self.button.drive_low()
        self._deliver()  # the hold acts while the button is still down
        self.button.drive_high()

    def _click(self) -> None:
        self.button.drive_low()
        time.sleep(0.03)
        self.button.drive_high()

    def _deliver(self) -> None:
        """The button posts from gpiozero's threads; the rig's assistant handles its queue
        on this thread, as the real one does on its own."""
        wait_until(lambda: self.buttons > self._delivered)
        self._delivered = self.buttons
        self.rig.settle()

    def shows(self, name: str) -> bool:
        """The LED (judged by its pin) shows the named pattern's brightness now."""
        return self.led.state == pytest.approx(level(PATTERNS[name].colour))

    def close(self) -> None:
        self.bridge.close()
        self.rig.close()


@pytest.fixture
def speaker(gpio_settings: Settings, factory: MockFactory) -> Iterator[Speaker]:
    s = Speaker(gpio_settings, factory, ScriptedStt("set a timer for ten seconds"))
    yield s
    s.close()


def patterns(rig: Rig) -> list[str]:
    return [e.fields["pattern"] for e in rig.of("led")]


# --- a press in each state ---------------------------------------------------------------------


def test_press_when_idle_listens_and_press_again_gives_up(speaker: Speaker) -> None:
    assert speaker.state == "idle" and speaker.led.state == 0
    speaker.press()
    assert speaker.state == "listening" and "listening" in speaker.rig.types()
    wait_until(lambda: speaker.shows("listening"))
    speaker.press()
    assert speaker.state == "idle"
    wait_until(lambda: speaker.led.state == 0)
    assert "reply" not in speaker.rig.types()


class SlowLlm:
    """An answer that takes its time: the assistant stays THINKING until it is cancelled."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.cancelled: list[int] = []

    def respond(self, request: int, text: str, post: Callable[[object], None]) -> None:
        self.asked.append(request)

    def cancel(self, request: int) -> None:
        self.cancelled.append(request)

    def available(self) -> bool:
        return True


def test_press_while_thinking_cancels_the_answer(
    gpio_settings: Settings, factory: MockFactory
) -> None:
    llm = SlowLlm()
    speaker = Speaker(gpio_settings, factory, responder=llm)
    try:
        speaker.rig.inbox.post(Command("ask", {"text": "tell me a story about the sea"}))
        speaker.rig.assistant.drain()  # not settle(): the answer never comes by itself
        assert speaker.state == "thinking" and llm.asked
        wait_until(lambda: speaker.led.state > 0)  # the thinking light is going round
        speaker.press()
        assert speaker.state == "idle" and llm.cancelled == llm.asked
        wait_until(lambda: speaker.led.state == 0)
    finally:
        speaker.close()


def test_press_while_speaking_stops_speaking(speaker: Speaker) -> None:
    rig = speaker.rig
    rig.post(Command("say", {"text": "Another long announcement. It goes on and on."}))
    rig.feed(SILENT, 0.3)
    assert speaker.state == "speaking"
    wait_until(lambda: speaker.led.state > 0)  # the speaking pulse is under way
    speaker.press()
    assert speaker.state == "idle" and not rig.speaker.busy()
    assert rig.types().count("speak_start") == rig.types().count("speak_end") == 1
    wait_until(lambda: speaker.led.state == 0)


def test_press_silences_a_ringing_timer(speaker: Speaker) -> None:
    rig = speaker.rig
    rig.feed(WAKE)
    rig.feed(SPEECH, 1.0)
    rig.feed(SILENT, 1.0)
    rig.until_idle()
    assert [e.fields["name"] for e in rig.of("intent")] == ["timer_set"]
    for _ in range(300):  # time passes until it rings
        rig.feed(SILENT)
        if "timer" in patterns(rig):
            break
    assert patterns(rig)[-1] == "timer"
    speaker.led.clear_states()
    wait_until(lambda: {s.state for s in speaker.led.states} >= {0.0, 1.0})  # orange flashes
    speaker.press()
    assert speaker.state == "idle" and patterns(rig)[-1] == "idle"
    rig.feed(SILENT, 8.0)  # the remaining rings never come
    assert speaker.state == "idle" and rig.types().count("speak_start") <= 2
    wait_until(lambda: speaker.led.state == 0)


def test_double_press_repeats_the_last_reply(speaker: Speaker) -> None:
    rig = speaker.rig
    rig.post(Command("ask", {"text": "what time is it"}))
    rig.until_idle()
    answer = rig.of("reply")[0].fields["text"]
    speaker.double()
    assert speaker.state in ("thinking", "speaking")
    rig.until_idle()
    assert rig.tts.said.count(answer) == 2
    assert "listening" not in rig.types()  # a double press is not also a press


# --- mute ---------------------------------------------------------------------------------------


def test_hold_mutes_shows_it_and_press_does_not_listen_while_muted(speaker: Speaker) -> None:
    rig = speaker.rig
    speaker.hold()
    assert rig.assistant.muted and speaker.state == "muted"
    assert [e.fields for e in rig.of("mute")] == [{"muted": True}]
    wait_until(lambda: speaker.shows("muted"))
    speaker.press()
    assert speaker.state == "muted" and "listening" not in rig.types()
    frames_before = rig.wake.frames
    rig.feed(WAKE)  # the wake word, muted: the detector never even sees it
    rig.feed(SILENT, 0.5)
    assert rig.wake.frames == frames_before and "wake" not in rig.types()
    speaker.hold()
    assert not rig.assistant.muted and speaker.state == "idle"
    wait_until(lambda: speaker.led.state == 0)
    rig.feed(WAKE)
    assert rig.wake.frames > frames_before and "wake" in rig.types()


def test_mute_survives_a_restart(gpio_settings: Settings, factory: MockFactory) -> None:
    first = Speaker(gpio_settings, factory)
    first.hold()
    assert first.rig.assistant.muted
    first.close()

    again = Speaker(gpio_settings, factory)  # a new Assistant on the same store
    try:
        assert again.rig.assistant.muted and again.state == "muted"
        wait_until(lambda: again.shows("muted"))  # visible from the first moment
        assert again.bridge.pattern == "muted"
        again.hold()
        assert not again.rig.assistant.muted
    finally:
        again.close()
    third = Speaker(gpio_settings, factory)
    try:
        assert not third.rig.assistant.muted and third.state == "idle"
    finally:
        third.close()


class CountingWake:
    """The real wake word detector, counting the frames that reach it."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.frames = 0

    def detect(self, pcm: bytes):  # type: ignore[no-untyped-def]
        self.frames += 1
        return self.real.detect(pcm)  # type: ignore[attr-defined]

    def reset(self) -> None:
        self.real.reset()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_wake_phrase_while_muted_is_never_analysed(
    gpio_settings: Settings, factory: MockFactory, engines_with, tmp_path: Path
) -> None:
    wav = write(tmp_path / "in.wav", conversation(0.5, "Hey Jarvis.", 1.5))

    def run() -> tuple[list[Event], CountingWake]:
        engines = engines_with(ScriptedStt())
        engines.wake = wake = CountingWake(engines.wake)
        seen: list[Event] = []
        simulate(gpio_settings, wav, engines=engines, observers=[seen.append], max_tail_s=5)
        return seen, wake

    # unmuted, the phrase wakes it: the recording is a fair test
    events, wake = run()
    assert [e.type for e in events].count("wake") == 1 and wake.frames > 0

    # a long hold mutes it (the store keeps that), then the same phrase again
    rig = Speaker(gpio_settings, factory)
    rig.hold()
    rig.close()
    led = factory.pin(LED)
    led.clear_states()
    events, wake = run()
    types = [e.type for e in events]
    assert "wake" not in types and "listening" not in types
    assert wake.frames == 0  # not one frame reached the detector
    assert [e.fields["pattern"] for e in events if e.type == "led"] == ["muted"]
    # the simulate run started its own GPIO bridge: the LED said "muted" throughout
    assert {round(s.state, 3) for s in list(led.states)[1:]} <= {round(110 / 255, 3), 0.0}
