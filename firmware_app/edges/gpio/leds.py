"""LEDs: one interface (`Leds.show(pattern)`), three drivers, one animation thread.

`Leds` owns a single thread that turns the current pattern into pixel colours
(``patterns.frame``) and hands them to a driver. ``show`` only records the wanted pattern
and wakes that thread, so the assistant's thread never waits on a pin, a PWM thread or
an SPI transfer, and a driver that hangs or fails cannot stall it. A driver only has to
write a list of colours; it knows nothing of patterns or time.

Drivers:
- `SingleLed`: one LED on a PWM pin (gpiozero ``PWMLED``), brightness only;
- `RgbLed`: a three-pin RGB LED (gpiozero ``RGBLED``), common cathode or anode;
- `Apa102`: a chain of APA102 pixels (ReSpeaker HATs) through gpiozero's SPI interface:
  hardware SPI through lgpio on a Pi, bit-banged mock pins in tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from loguru import logger

from firmware_app.edges.gpio.patterns import BLACK, OFF, Colour, Pattern, frame, level

FPS = 25.0
"""Redraws per second while a pattern animates (static patterns are drawn once)."""

PIXEL_ORDERS = ("bgr", "brg", "gbr", "grb", "rbg", "rgb")


class LedDriver(Protocol):
    pixels: int
    """How many separately coloured pixels the device has."""

    def write(self, colours: Sequence[Colour]) -> None:
        """Show these colours now (one per pixel)."""

    def close(self) -> None: ...


class Leds:
    """Shows display patterns on one LED device without ever blocking the caller."""

    def __init__(
        self,
        driver: LedDriver,
        *,
        fps: float = FPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self._interval = 1.0 / fps
        self._clock = clock
        self._wanted: Pattern = OFF
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="leds", daemon=True)
        self._thread.start()

    def show(self, pattern: Pattern) -> None:
        """Switch to ``pattern``; returns at once (the LED thread draws it)."""
        self._wanted = pattern
        self._wake.set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop animating, turn the LEDs off and release their pins."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("LEDs: the LED thread did not stop within {} s; left as is", timeout)
            return
        try:
            self.driver.write([BLACK] * self.driver.pixels)
        except Exception as exc:
            logger.debug("LEDs: could not turn off on close: {}", exc)
        try:
            self.driver.close()
        except Exception as exc:
            logger.warning("LEDs: closing the driver failed: {}", exc)

    def _run(self) -> None:
        pattern: Pattern | None = None
        started = 0.0
        drawn: list[Colour] | None = None
        failing = False
        while True:
            self._wake.clear()
            if self._closing:
                return
            wanted, now = self._wanted, self._clock()
            if wanted != pattern:
                pattern, started = wanted, now
            colours = frame(pattern, now - started, self.driver.pixels)
            if colours != drawn:
                try:
                    self.driver.write(colours)
                except Exception as exc:
                    if not failing:
                        logger.error("LEDs: writing to {} failed: {}", _name(self.driver), exc)
                    failing = True
                else:
                    if failing:
                        logger.info("LEDs: {} works again", _name(self.driver))
                    failing = False
                    drawn = colours
            if pattern.animated:
                timeout: float | None = self._interval
            else:
                timeout = 1.0 if failing else None  # retry a failed write now and then
            self._wake.wait(timeout)


def _name(driver: LedDriver) -> str:
    return type(driver).__name__


class SingleLed:
    """One LED on a PWM-capable pin: patterns show as brightness, colour is ignored."""

    pixels = 1

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        from gpiozero import PWMLED

        self.led = PWMLED(pin, pin_factory=pin_factory)

    def write(self, colours: Sequence[Colour]) -> None:
        self.led.value = level(colours[0])

    def close(self) -> None:
        self.led.close()


class RgbLed:
    """A red/green/blue LED on three PWM pins (``active_high=False`` for common anode)."""

    pixels = 1

    def __init__(
        self, pins: tuple[int, int, int], *, active_high: bool = True, pin_factory: Any = None
    ) -> None:
        from gpiozero import RGBLED

        red, green, blue = pins
        self.led = RGBLED(
            red, green, blue, active_high=active_high, pwm=True, pin_factory=pin_factory
        )

    def write(self, colours: Sequence[Colour]) -> None:
        r, g, b = colours[0]
        self.led.value = (r / 255.0, g / 255.0, b / 255.0)

    def close(self) -> None:
        self.led.close()


class Apa102:
    """A chain of APA102 (or SK9822) pixels on SPI0: MOSI (GPIO10) to data in, SCLK
    (GPIO11) to clock in. The chip-select line is unused by the pixels but is still
    claimed by the SPI driver, so pick the one nothing else needs."""

    def __init__(
        self,
        count: int,
        *,
        brightness: int = 31,
        order: str = "bgr",
        spi_device: int = 0,
        power_pin: int | None = None,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import Device, DigitalOutputDevice

        if order not in PIXEL_ORDERS:
            raise ValueError(f"pixel order must be one of {', '.join(PIXEL_ORDERS)}")
        self.pixels = count
        self._brightness = brightness
        self._order = order
        self._power = None
        if pin_factory is None:
            Device.ensure_pin_factory()
            pin_factory = Device.pin_factory
        if power_pin is not None:
            # The ReSpeaker 4-Mic HAT only powers its pixels while GPIO5 is high.
            self._power = DigitalOutputDevice(
                power_pin, initial_value=True, pin_factory=pin_factory
            )
        try:
            self.spi = pin_factory.spi(port=0, device=spi_device)
        except Exception:
            if self._power is not None:
                self._power.close()
            raise

    def write(self, colours: Sequence[Colour]) -> None:
        self.spi.write(list(apa102_stream(colours, self._brightness, self._order)))

    def close(self) -> None:
        self.spi.close()
        if self._power is not None:
            self._power.close()


def apa102_stream(colours: Sequence[Colour], brightness: int = 31, order: str = "bgr") -> bytes:
    """The bytes that set a chain of APA102 pixels to ``colours``.

    A start frame of 32 zero bits; per pixel ``0b111`` + 5-bit global brightness, then the
    three colour bytes in the chain's order (blue, green, red on genuine APA102); then an
    end frame of zeros: at least half a clock per pixel so the data reaches the last pixel,
    and at least 32 bits, which SK9822 clones need to latch the new colours.
    """
    if not 0 <= brightness <= 31:
        raise ValueError("brightness must be 0-31")
    out = bytearray(4)
    header = 0xE0 | brightness
    for r, g, b in colours:
        channel = {"r": r, "g": g, "b": b}
        out.append(header)
        out.extend(channel[c] for c in order)
    out.extend(bytes(4 + (len(colours) + 15) // 16))
    return bytes(out)
