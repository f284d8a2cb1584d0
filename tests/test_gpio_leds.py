"""LED patterns and drivers on gpiozero's mock pins: pin histories and SPI bytes on the wire."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from harness import wait_until

from firmware_app.edges.gpio.leds import Apa102, Leds, RgbLed, SingleLed, apa102_stream
from firmware_app.edges.gpio.patterns import BLACK, PATTERNS, Colour, Pattern, frame, level

LED_PIN = 17
RGB_PINS = (22, 23, 24)


# --- recording what goes over SPI -----------------------------------------------------------


class SpiRecorder:
    """Listens on the mock SPI0 pins like a pixel chain would: on each rising clock edge
    while chip select (CE0, active low) is asserted, it samples MOSI. Each assertion of
    chip select starts a new transfer."""

    CLOCK, MOSI, SELECT = 11, 10, 8

    def __init__(self, factory: MockFactory) -> None:
        self.factory = factory
        self.transfers: list[list[int]] = []
        factory.pin(self.SELECT, pin_class=_SelectPin, recorder=self)
        factory.pin(self.CLOCK, pin_class=_ClockPin, recorder=self)

    def frames(self) -> list[bytes]:
        out = []
        for bits in self.transfers:
            assert len(bits) % 8 == 0, "a transfer ended mid-byte"
            out.append(
                bytes(
                    int("".join(str(b) for b in bits[i : i + 8]), 2) for i in range(0, len(bits), 8)
                )
            )
        return out


class _SelectPin(MockPWMPin):
    def __init__(self, factory, info, recorder: SpiRecorder) -> None:  # type: ignore[no-untyped-def]
        super().__init__(factory, info)
        self.recorder = recorder

    def _set_state(self, value) -> None:  # type: ignore[no-untyped-def]
        was = self._state
        super()._set_state(value)
        if was and not value:
            self.recorder.transfers.append([])


class _ClockPin(MockPWMPin):
    def __init__(self, factory, info, recorder: SpiRecorder) -> None:  # type: ignore[no-untyped-def]
        super().__init__(factory, info)
        self.recorder = recorder

    def _set_state(self, value) -> None:  # type: ignore[no-untyped-def]
        was = self._state
        super()._set_state(value)
        rec = self.recorder
        if value and not was and not rec.factory.pin(rec.SELECT).state:
            rec.transfers[-1].append(1 if rec.factory.pin(rec.MOSI).state else 0)


def decode_pixels(stream: bytes, count: int, order: str = "bgr") -> list[tuple[int, Colour]]:
    """(brightness, colour) of each pixel in an APA102 stream, checking its framing."""
    assert stream[:4] == bytes(4), "start frame must be 32 zero bits"
    pixels = []
    for i in range(count):
        header, *channels = stream[4 + 4 * i : 8 + 4 * i]
        assert header & 0xE0 == 0xE0, "each pixel starts with 0b111"
        by_name = dict(zip(order, channels, strict=True))
        pixels.append((header & 0x1F, (by_name["r"], by_name["g"], by_name["b"])))
    end = stream[4 + 4 * count :]
    assert end == bytes(len(end)) and len(end) * 8 >= max(32, count / 2)
    return pixels


# --- the pattern table ----------------------------------------------------------------------


def test_table_has_every_pattern_the_assistant_names() -> None:
    names = {"idle", "listening", "thinking", "speaking", "muted", "error", "timer"}
    assert names | {"updating", "offline"} <= set(PATTERNS)


def test_patterns_look_different_from_each_other() -> None:
    looks = {(p.effect, p.colour, p.period_s, p.duty) for p in PATTERNS.values()}
    assert len(looks) == len(PATTERNS)
    # on a single colourless LED too: effect, brightness and timing tell them apart
    mono = {
        (p.effect if p.effect != "spin" else "pulse", level(p.colour), p.period_s, p.duty)
        for p in PATTERNS.values()
    }
    assert len(mono) == len(PATTERNS)


def test_frame_arithmetic() -> None:
    red = (200, 0, 0)
    assert frame(Pattern("solid", red), 12.3, 3) == [red] * 3
    blink = Pattern("blink", red, period_s=1.0, duty=0.25)
    assert frame(blink, 0.1, 1) == [red]
    assert frame(blink, 0.3, 1) == [BLACK]
    assert frame(blink, 1.1, 1) == [red]  # repeats
    pulse = Pattern("pulse", red, period_s=2.0)
    assert frame(pulse, 0.0, 1) == [BLACK]
    assert frame(pulse, 1.0, 1) == [red]  # full at half period
    assert 0 < frame(pulse, 0.5, 1)[0][0] < 100  # eased: dimmer than linear at a quarter
    spin = Pattern("spin", red, period_s=3.0)
    first, second = frame(spin, 0.1, 3), frame(spin, 1.1, 3)
    assert first[0] == red and second[1] == red  # the head moves on
    assert first[2][0] > first[1][0] > 0  # the tail fades behind it
    assert frame(spin, 0.0, 1) == [BLACK] and frame(spin, 1.5, 1) == [red]  # one pixel pulses
    with pytest.raises(ValueError):
        Pattern("blink", red, duty=1.5)
    with pytest.raises(ValueError):
        Pattern("solid", (300, 0, 0))


def one_period(pattern: Pattern, steps: int = 40) -> list[float]:
    return [pattern.period_s * i / steps for i in range(steps + 1)]


def check_effect(pattern: Pattern, seen: Sequence[Colour], full: Colour) -> None:
    """What a device showed over one period (sampled evenly) matches the pattern's effect.
    ``full`` is the pattern's colour as the device can show it."""
    if pattern.effect == "off":
        assert set(seen) == {BLACK}
    elif pattern.effect == "solid":
        assert set(seen) == {full}
    elif pattern.effect == "blink":
        assert set(seen) == {full, BLACK}
        on = sum(1 for c in seen[:-1] if c == full) / (len(seen) - 1)
        assert on == pytest.approx(pattern.duty, abs=1.01 / (len(seen) - 1))
        assert seen[0] == full  # starts on: the change is seen at once
    else:  # pulse, or a spin on one pixel: dark, up to full, back down
        brightness = [max(c) for c in seen]
        peak = brightness.index(max(brightness))
        assert brightness[0] == 0 and seen[peak] == full
        assert brightness[: peak + 1] == sorted(brightness[: peak + 1])
        assert brightness[peak:] == sorted(brightness[peak:], reverse=True)


# --- each pattern on each kind of LED ---------------------------------------------------------


@pytest.mark.parametrize("name", list(PATTERNS))
def test_single_led_shows_every_pattern(factory: MockFactory, name: str) -> None:
    pattern = PATTERNS[name]
    led = SingleLed(LED_PIN)
    pin = factory.pin(LED_PIN)
    try:
        assert pin.function == "output" and pin.frequency  # PWM
        seen = []
        for t in one_period(pattern):
            led.write(frame(pattern, t, led.pixels))
            seen.append(pin.state)
        history = [s.state for s in pin.states]
        # only changes are recorded, and every value the pin took is one we asked for
        assert set(history[1:]) <= set(seen)
        lit = level(pattern.colour)
        grey = [(round(v * 255),) * 3 for v in seen]
        check_effect(pattern, grey, (round(lit * 255),) * 3)
    finally:
        led.close()
    assert pin.state == 0


@pytest.mark.parametrize("name", list(PATTERNS))
def test_rgb_led_shows_every_pattern(factory: MockFactory, name: str) -> None:
    pattern = PATTERNS[name]
    led = RgbLed(RGB_PINS)
    pins = [factory.pin(p) for p in RGB_PINS]
    try:
        seen = []
        for t in one_period(pattern):
            led.write(frame(pattern, t, led.pixels))
            r, g, b = (round(p.state * 255) for p in pins)
            seen.append((r, g, b))
        check_effect(pattern, seen, pattern.colour)
        # the pin histories carry the colour: each channel only ever took its own share
        for pin, channel in zip(pins, pattern.colour, strict=True):
            values = {round(s.state * 255) for s in pin.states}
            assert max(values) == channel
    finally:
        led.close()


def test_common_anode_rgb_led_inverts_its_pins(factory: MockFactory) -> None:
    led = RgbLed(RGB_PINS, active_high=False)
    try:
        led.write([PATTERNS["muted"].colour])
        assert [round(factory.pin(p).state * 255) for p in RGB_PINS] == [255 - 110, 255, 255]
    finally:
        led.close()


@pytest.mark.parametrize("name", list(PATTERNS))
def test_apa102_pixels_show_every_pattern(factory: MockFactory, name: str) -> None:
    pattern = PATTERNS[name]
    spi = SpiRecorder(factory)
    pixels = Apa102(3, brightness=8)
    try:
        times = one_period(pattern, steps=12)
        for t in times:
            pixels.write(frame(pattern, t, pixels.pixels))
        frames = spi.frames()
        assert len(frames) == len(times)
        shown = [decode_pixels(f, 3) for f in frames]
        assert all(bright == 8 for f in shown for bright, _ in f)
        per_pixel = [[colour for _, colour in f] for f in shown]
        if pattern.effect == "spin":
            heads = [f.index(max(f, key=max)) for f in per_pixel]
            assert heads[0] == 0 and set(heads) == {0, 1, 2}  # goes round all three
            assert heads == sorted(heads[:-1]) + heads[-1:]  # in order, then starts again
            assert all(pattern.colour in f for f in per_pixel)
        else:
            for i in range(3):
                check_effect(pattern, [f[i] for f in per_pixel], pattern.colour)
    finally:
        pixels.close()


def test_apa102_byte_stream_for_a_known_frame(factory: MockFactory) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (1, 2, 3)]
    expected = b"".join(
        [
            bytes([0, 0, 0, 0]),  # start frame
            bytes([0xE8, 0, 0, 255]),  # 0b111 + brightness 8; blue, green, red
            bytes([0xE8, 0, 255, 0]),
            bytes([0xE8, 3, 2, 1]),
            bytes([0, 0, 0, 0, 0]),  # end frame: 32 bits for SK9822, half a clock per pixel
        ]
    )
    assert apa102_stream(colours, brightness=8) == expected
    # ...and exactly those bits go out on MOSI, clocked on SCLK, within one chip select
    spi = SpiRecorder(factory)
    pixels = Apa102(3, brightness=8)
    try:
        pixels.write(colours)
        assert spi.frames() == [expected]
    finally:
        pixels.close()
    assert apa102_stream([(1, 2, 3)], 31, order="rgb")[4:8] == bytes([0xFF, 1, 2, 3])
    assert len(apa102_stream([BLACK] * 12)) == 4 + 48 + 5


def test_apa102_power_pin_is_on_while_open(factory: MockFactory) -> None:
    SpiRecorder(factory)
    pixels = Apa102(12, power_pin=5)
    assert factory.pin(5).state
    pixels.close()
    assert not factory.pin(5).state


# --- the animation thread ---------------------------------------------------------------------


def test_leds_thread_animates_and_turns_off_on_close(factory: MockFactory) -> None:
    leds = Leds(SingleLed(LED_PIN))
    pin = factory.pin(LED_PIN)
    try:
        leds.show(PATTERNS["listening"])
        wait_until(lambda: pin.state == pytest.approx(level(PATTERNS["listening"].colour)))
        pin.clear_states()
        leds.show(PATTERNS["error"])  # 0.3 s blink
        wait_until(lambda: len([s for s in pin.states if s.state == 0]) >= 2)
        values = {s.state for s in list(pin.states)[1:]}
        assert values == {0.0, 1.0}
        leds.show(PATTERNS["muted"])
        wait_until(lambda: pin.state == pytest.approx(110 / 255))
        settled = len(pin.states)
        time.sleep(0.2)
        assert len(pin.states) == settled  # a steady pattern is drawn once, not every frame
    finally:
        leds.close()
    assert pin.state == 0


class StuckDriver:
    """A driver whose writes hang until released, or fail while ``fail`` is set."""

    pixels = 1

    def __init__(self) -> None:
        self.release = threading.Event()
        self.fail = False
        self.written: list[list[Colour]] = []

    def write(self, colours: Sequence[Colour]) -> None:
        self.release.wait(10)
        if self.fail:
            raise OSError("SPI transfer error -1")
        self.written.append(list(colours))

    def close(self) -> None:
        self.closed = True


def test_show_never_waits_for_a_slow_driver() -> None:
    driver = StuckDriver()
    leds = Leds(driver)
    started = time.monotonic()
    for name in PATTERNS:
        leds.show(PATTERNS[name])
    assert time.monotonic() - started < 1.0  # the driver is hung, the caller is not
    leds.show(PATTERNS["muted"])
    driver.release.set()
    wait_until(lambda: bool(driver.written) and driver.written[-1] == [(110, 0, 0)])
    leds.close()
    assert driver.written[-1] == [BLACK] and driver.closed


def test_a_failing_driver_is_retried_and_logged_once(caplog_loguru: list[str]) -> None:
    driver = StuckDriver()
    driver.release.set()
    driver.fail = True
    leds = Leds(driver, fps=50)
    try:
        leds.show(PATTERNS["error"])
        time.sleep(0.3)
        assert not driver.written
        assert sum("writing to StuckDriver failed" in m for m in caplog_loguru) == 1
        driver.fail = False
        wait_until(lambda: bool(driver.written))
        wait_until(lambda: any("works again" in m for m in caplog_loguru))
    finally:
        leds.close()


@pytest.fixture
def caplog_loguru() -> Iterator[list[str]]:
    from loguru import logger

    messages: list[str] = []
    handler = logger.add(lambda m: messages.append(str(m)), level="DEBUG")
    yield messages
    logger.remove(handler)
