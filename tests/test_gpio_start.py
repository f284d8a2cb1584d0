"""start_gpio: pin factory choice, LG_WD, wiring LEDs to led events and the button to post."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import LED, BadPinFactory, Device
from gpiozero.pins.mock import MockFactory
from harness import wait_until
from loguru import logger

from firmware_app.config.settings import Settings
from firmware_app.core.events import Event, EventBus
from firmware_app.core.messages import Button, Message, Notice
from firmware_app.edges.gpio import choose_pin_factory, set_lg_wd, start_gpio
from firmware_app.edges.gpio.leds import Apa102


@pytest.fixture
def no_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gpiozero as in a fresh process: no pin factory chosen yet, none named."""
    saved = Device.pin_factory
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    Device.pin_factory = None
    yield
    if Device.pin_factory is not None and Device.pin_factory is not saved:
        if isinstance(Device.pin_factory, MockFactory):
            Device.pin_factory.reset()
        Device.pin_factory.close()
    Device.pin_factory = saved


@pytest.fixture
def logs() -> Iterator[list[tuple[str, str]]]:
    records: list[tuple[str, str]] = []
    handler = logger.add(
        lambda m: records.append((m.record["level"].name, m.record["message"])), level="DEBUG"
    )
    yield records
    logger.remove(handler)


class FakeAssistant:
    """Only the door and the bus: the state machine is not what these tests are about."""

    def __init__(self, muted: bool = False, state: str = "idle") -> None:
        self.bus = EventBus()
        self.muted = muted
        self.state = state
        self.posted: queue.Queue[Message] = queue.Queue()

    def post(self, msg: Message) -> None:
        self.posted.put(msg)

    def led(self, pattern: str) -> None:
        self.bus.publish(Event("led", 1.0, 1.0, {"pattern": pattern}))


def settings(**gpio: object) -> Settings:
    return Settings(gpio=gpio)  # type: ignore[arg-type]


# --- choosing the pins ------------------------------------------------------------------------


def test_mock_pins_are_chosen_when_there_is_no_gpio_chip(
    no_factory: None, tmp_path: Path, logs: list[tuple[str, str]]
) -> None:
    choose_pin_factory(dev=tmp_path)
    assert isinstance(Device.pin_factory, MockFactory)
    choose_pin_factory(dev=tmp_path)  # later starts keep it, and say nothing more
    infos = [m for level, m in logs if level == "INFO"]
    assert len(infos) == 1 and "mock pins" in infos[0] and str(tmp_path) in infos[0]
    # PWM-capable: an LED can dim and pulse as on a Pi
    bridge = start_gpio(settings(led="single", led_pin=12), FakeAssistant())
    assert bridge is not None and bridge.leds is not None
    bridge.show("muted")
    pin = Device.pin_factory.pin(12)
    wait_until(lambda: pin.state == pytest.approx(110 / 255))
    bridge.close()


def test_mock_pins_keep_a_bounded_history(no_factory: None, tmp_path: Path) -> None:
    choose_pin_factory(dev=tmp_path)
    led = LED(4)
    for _ in range(3000):
        led.toggle()
    assert len(Device.pin_factory.pin(4).states) <= 1000
    led.close()


def test_a_factory_already_chosen_is_kept(factory: MockFactory, tmp_path: Path) -> None:
    choose_pin_factory(dev=tmp_path)
    assert Device.pin_factory is factory


@pytest.mark.filterwarnings("ignore::gpiozero.PinFactoryFallback")
def test_with_a_gpio_chip_real_pins_are_required_never_mock_ones(
    no_factory: None, tmp_path: Path
) -> None:
    (tmp_path / "gpiochip0").touch()  # looks like a Pi, but no GPIO library can drive it here
    with pytest.raises(BadPinFactory):
        choose_pin_factory(dev=tmp_path)
    assert Device.pin_factory is None  # a Pi whose LEDs silently did nothing would be worse


def test_start_gpio_reports_a_gpio_library_failure_and_goes_on(
    no_factory: None, logs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    assistant = FakeAssistant()
    assert start_gpio(settings(led="single", led_pin=12), assistant) is None
    notice = assistant.posted.get(timeout=1)
    assert isinstance(notice, Notice) and notice.kind == "error"
    assert notice.fields["where"] == "gpio" and "no-such-factory" in notice.fields["message"]
    assert [m for level, m in logs if level == "ERROR"] == [f"GPIO: {notice.fields['message']}"]


def test_lg_wd_points_at_a_writable_runtime_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LG_WD", raising=False)
    monkeypatch.setenv("RUNTIME_DIRECTORY", f"{tmp_path}:/elsewhere")
    assert set_lg_wd() == str(tmp_path) == os.environ["LG_WD"]
    # a stale value (directory gone) is replaced; a good one is respected
    monkeypatch.setenv("LG_WD", str(tmp_path / "gone"))
    assert set_lg_wd() == str(tmp_path)
    keep = tmp_path / "mine"
    keep.mkdir()
    monkeypatch.setenv("LG_WD", str(keep))
    assert set_lg_wd() == str(keep)
    # no runtime directory at all: the temporary directory will do
    monkeypatch.delenv("LG_WD")
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert set_lg_wd() is not None and os.access(os.environ["LG_WD"], os.W_OK)


def test_start_gpio_sets_lg_wd_before_any_pin_is_touched(
    factory: MockFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LG_WD", raising=False)
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    bridge = start_gpio(settings(button_pin=17), FakeAssistant())
    assert os.environ["LG_WD"] == str(tmp_path)
    assert bridge is not None
    bridge.close()


# --- what start_gpio builds -------------------------------------------------------------------


def test_disabled_or_empty_gpio_starts_nothing(factory: MockFactory) -> None:
    assert start_gpio(settings(enabled=False, led="single", led_pin=12), FakeAssistant()) is None
    assert start_gpio(settings(), FakeAssistant()) is None
    assert not factory.pins  # not a single pin claimed


def test_led_events_drive_the_led_and_the_button_posts(factory: MockFactory) -> None:
    assistant = FakeAssistant()
    bridge = start_gpio(
        settings(led="rgb", rgb_pins=[22, 23, 24], button_pin=17, double_press_s=0.2),
        assistant,
    )
    assert bridge is not None
    red, green, blue = (factory.pin(p) for p in (22, 23, 24))
    try:
        assistant.led("listening")
        wait_until(lambda: (red.state, blue.state) == (0, 1.0))
        assert green.state == pytest.approx(90 / 255)
        assistant.led("muted")
        wait_until(lambda: red.state == pytest.approx(110 / 255) and blue.state == 0)
        # the LED history shows exactly those two looks, in order
        looks = [s.state for s in red.states]
        assert looks[0] == 0 and looks[-1] == pytest.approx(110 / 255)
        # unknown pattern names are ignored: the LED keeps what it shows
        assistant.led("disco")
        assistant.bus.publish(Event("state", 2.0, 2.0, {"state": "thinking"}))
        time.sleep(0.1)
        assert bridge.pattern == "muted" and red.state == pytest.approx(110 / 255)
        button = factory.pin(17)
        button.drive_low()
        time.sleep(0.05)
        button.drive_high()
        assert assistant.posted.get(timeout=5) == Button("press")
    finally:
        bridge.close()
    assert (red.state, green.state, blue.state) == (0, 0, 0)
    assistant.led("listening")  # after close the bridge no longer listens
    time.sleep(0.1)
    assert blue.state == 0


def test_a_muted_assistant_shows_muted_from_the_start(factory: MockFactory) -> None:
    bridge = start_gpio(settings(led="single", led_pin=12), FakeAssistant(muted=True))
    assert bridge is not None
    try:
        wait_until(lambda: factory.pin(12).state == pytest.approx(110 / 255))
        assert bridge.pattern == "muted"
    finally:
        bridge.close()


def test_apa102_from_config_lights_the_pixels(factory: MockFactory) -> None:
    assistant = FakeAssistant()
    bridge = start_gpio(
        settings(led="apa102", apa102_count=3, apa102_power_pin=5, button_pin=17), assistant
    )
    assert bridge is not None and bridge.leds is not None
    driver = bridge.leds.driver
    assert isinstance(driver, Apa102) and driver.pixels == 3
    assert factory.pin(5).state  # the 4-Mic HAT's pixel power
    mosi = factory.pin(10)
    mosi.clear_states()
    assistant.led("error")
    wait_until(lambda: len(mosi.states) > 20)  # bits are going out
    bridge.close()
    assert not factory.pin(5).state


def test_a_part_that_cannot_start_is_reported_and_the_rest_runs(factory: MockFactory) -> None:
    taken = LED(12)  # something else already drives the LED's pin
    assistant = FakeAssistant()
    try:
        bridge = start_gpio(settings(led="single", led_pin=12, button_pin=17), assistant)
        assert bridge is not None and bridge.leds is None and bridge.button is not None
        notice = assistant.posted.get(timeout=1)
        assert isinstance(notice, Notice) and notice.fields["where"] == "gpio"
        assert "single LED" in notice.fields["message"]
        assistant.led("listening")  # no LED: nothing to do, nothing breaks
        bridge.close()
    finally:
        taken.close()
