"""GPIO: LEDs that show what the assistant is doing, and its button.

``start_gpio(settings, assistant)`` builds what ``[gpio]`` describes and returns a
`GpioBridge` (``close()`` it on shutdown). The bridge watches the assistant's ``led`` events
and shows each pattern; the button only posts `messages.Button` gestures to the assistant.

Off a Pi (no ``/dev/gpiochip*``) gpiozero's mock pins are chosen automatically, so the same
configuration runs on a laptop. A part that cannot start (pin in use, SPI disabled, no
permission) is reported once, as a log line and an ``error`` notice, and the rest goes on.
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from firmware_app.core.events import Event, EventBus
from firmware_app.core.messages import Message, Notice
from firmware_app.edges.gpio.button import ButtonGestures
from firmware_app.edges.gpio.leds import Apa102, LedDriver, Leds, RgbLed, SingleLed
from firmware_app.edges.gpio.patterns import PATTERNS, Pattern

if TYPE_CHECKING:
    from firmware_app.config.settings import GpioSettings, Settings

__all__ = ["GpioBridge", "choose_pin_factory", "set_lg_wd", "start_gpio"]


class AssistantLike(Protocol):
    """What the GPIO bridge needs of the assistant."""

    bus: EventBus

    def post(self, msg: Message) -> None: ...


class GpioBridge:
    """The running LEDs and button; ``close()`` turns the LEDs off and frees the pins."""

    def __init__(
        self, assistant: AssistantLike, leds: Leds | None, button: ButtonGestures | None
    ) -> None:
        self.leds = leds
        self.button = button
        self.pattern = "idle"
        """Name of the pattern last shown."""
        self._bus = assistant.bus
        self._unknown: set[str] = set()
        if leds is not None:
            self.show(initial_pattern(assistant))
            self._bus.subscribe(self._on_event)

    def show(self, name: str) -> None:
        """Show the named pattern (unknown names are reported once and ignored)."""
        pattern: Pattern | None = PATTERNS.get(name)
        if pattern is None:
            if name not in self._unknown:
                self._unknown.add(name)
                logger.warning("LEDs: no pattern named {!r}; keeping {!r}", name, self.pattern)
            return
        self.pattern = name
        if self.leds is not None:
            self.leds.show(pattern)

    def _on_event(self, event: Event) -> None:
        # Runs on the assistant's thread: Leds.show only hands the pattern over.
        if event.type == "led":
            self.show(str(event.fields.get("pattern")))

    def close(self) -> None:
        self._bus.unsubscribe(self._on_event)
        if self.button is not None:
            self.button.close()
            self.button = None
        if self.leds is not None:
            self.leds.close()
            self.leds = None


def start_gpio(settings: Settings, assistant: AssistantLike) -> GpioBridge | None:
    """Start the LEDs and button of ``settings.gpio``.

    None when GPIO is disabled, when neither an LED nor a button is configured, or when
    none of them could start (each failure is logged and posted as an ``error`` notice).
    """
    gpio = settings.gpio
    if not gpio.enabled:
        return None
    if gpio.led == "none" and gpio.button_pin is None:
        logger.debug("GPIO: no LED and no button configured")
        return None
    set_lg_wd()
    try:
        choose_pin_factory()
    except Exception as exc:
        _failed(assistant, "the GPIO pins cannot be used (on a Pi, is lgpio installed?)", exc)
        return None

    leds: Leds | None = None
    if gpio.led != "none":
        try:
            leds = Leds(make_led_driver(gpio))
        except Exception as exc:
            _failed(assistant, f"the {gpio.led} LED cannot start", exc)

    button: ButtonGestures | None = None
    if gpio.button_pin is not None:
        try:
            button = ButtonGestures(
                gpio.button_pin,
                assistant.post,
                hold_s=gpio.hold_s,
                double_press_s=gpio.double_press_s,
                bounce_s=gpio.bounce_s,
            )
        except Exception as exc:
            _failed(assistant, f"the button on GPIO{gpio.button_pin} cannot start", exc)

    if leds is None and button is None:
        return None
    parts = []
    if leds is not None:
        parts.append(f"{gpio.led} LED")
    if button is not None:
        parts.append(f"button on GPIO{gpio.button_pin}")
    logger.info("GPIO: {}", ", ".join(parts))
    return GpioBridge(assistant, leds, button)


def make_led_driver(gpio: GpioSettings) -> LedDriver:
    """The driver for the configured LED kind, on the current pin factory."""
    if gpio.led == "single":
        if gpio.led_pin is None:
            raise ValueError("led_pin is not set")
        return SingleLed(gpio.led_pin)
    if gpio.led == "rgb":
        if gpio.rgb_pins is None:
            raise ValueError("rgb_pins is not set")
        return RgbLed(gpio.rgb_pins, active_high=gpio.rgb_active_high)
    if gpio.led == "apa102":
        return Apa102(
            gpio.apa102_count,
            brightness=gpio.apa102_brightness,
            order=gpio.apa102_order,
            spi_device=gpio.apa102_spi_device,
            power_pin=gpio.apa102_power_pin,
        )
    raise ValueError(f"unknown LED kind {gpio.led!r}")


def initial_pattern(assistant: Any) -> str:
    """What to show before the first ``led`` event: the assistant may already be muted
    (restored from the store) when the LEDs start, and mute must always be visible."""
    if getattr(assistant, "muted", False):
        return "muted"
    state = str(getattr(assistant, "state", "idle"))
    return state if state in PATTERNS else "idle"


def _failed(assistant: AssistantLike, what: str, exc: BaseException) -> None:
    message = f"{what}: {exc}"
    logger.error("GPIO: {}", message)
    try:
        assistant.post(Notice("error", {"where": "gpio", "message": message}))
    except Exception as post_exc:
        logger.debug("GPIO: could not post the error notice: {}", post_exc)


# pin factory --------------------------------------------------------------------------


def choose_pin_factory(dev: Path = Path("/dev")) -> None:
    """Make sure gpiozero has a pin factory: the one already chosen (tests set one), the one
    named by ``GPIOZERO_PIN_FACTORY``, mock pins when there is no GPIO chip, else gpiozero's
    own choice (lgpio on a current Pi OS). Raises what gpiozero raises when none loads."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    if Device.pin_factory is not None:
        return
    named = os.environ.get("GPIOZERO_PIN_FACTORY", "").lower()
    if named == "mock" or (not named and not any(dev.glob("gpiochip*"))):
        why = "GPIOZERO_PIN_FACTORY=mock" if named else f"no GPIO chip in {dev} (not a Pi?)"
        logger.info("GPIO: {}: using mock pins", why)
        # PWM-capable mock pins: the LEDs dim and pulse as they would on a Pi
        Device.pin_factory = MockFactory(pin_class=_short_history_pwm_pin())
        return
    Device.ensure_pin_factory()


def set_lg_wd() -> str | None:
    """Point lgpio's working directory (``LG_WD``), where it creates its notification
    pipes, at a writable runtime directory: a service's working directory is often ``/``,
    and there lgpio fails to open the GPIO chip. Must run before lgpio is first loaded."""
    current = os.environ.get("LG_WD")
    if current and _writable_dir(current):
        return current
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    for candidate in (runtime, xdg, tempfile.gettempdir()):
        if candidate and _writable_dir(candidate):
            if "lgpio" in sys.modules:
                logger.warning(
                    "GPIO: lgpio was loaded before LG_WD was set; it may use {}", os.getcwd()
                )
            os.environ["LG_WD"] = candidate
            return candidate
    logger.warning("GPIO: no writable runtime directory for LG_WD")
    return None


def _writable_dir(path: str) -> bool:
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _short_history_pwm_pin() -> type:
    from gpiozero.pins.mock import MockPWMPin, PinState

    class ShortHistoryPWMPin(MockPWMPin):
        """A mock PWM pin that keeps only its latest states, so a long run off a Pi (an
        animation changes a pin 25 times a second) does not slowly fill the memory."""

        def clear_states(self) -> None:
            super().clear_states()
            self.states = collections.deque([PinState(0.0, self._state)], maxlen=1000)

    return ShortHistoryPWMPin
