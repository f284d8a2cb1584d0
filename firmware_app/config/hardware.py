"""Settings of the device's own hardware: the sound card (``[audio]``) and the LEDs and
button on the GPIO header (``[gpio]``). Their checks are about the board: pins that exist
and are not claimed twice."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from firmware_app.config.section import Section


class AudioSettings(Section):
    input_device: str = "default"
    """ALSA capture device (e.g. ``plughw:CARD=Device,DEV=0``; ``arecord -L`` lists them)."""
    output_device: str = "default"
    """ALSA playback device (``aplay -L`` lists them)."""
    volume: int = Field(70, ge=0, le=100)
    """Initial speaker volume in percent, used until the user changes it by voice or MQTT."""
    chimes: bool = True
    """Play a short chime on wake, at the end of a request and on errors."""
    reopen_max_s: float = Field(30.0, gt=0, le=600)
    """Longest wait between attempts to reopen a missing or unplugged device."""


class GpioSettings(Section):
    enabled: bool = True
    """Drive LEDs and read the button (mock pins are used automatically off a Pi)."""
    led: Literal["none", "single", "rgb", "apa102"] = "none"
    """LED kind: one PWM LED, an RGB LED, or APA102 pixels (ReSpeaker HATs)."""
    led_pin: int | None = Field(None, ge=0, le=27)
    """BCM pin of a single LED."""
    rgb_pins: tuple[int, int, int] | None = None
    """BCM pins of an RGB LED (red, green, blue)."""
    rgb_active_high: bool = True
    """False for a common-anode RGB LED."""
    apa102_count: int = Field(3, ge=1, le=255)
    """Number of APA102 pixels (3 on the ReSpeaker 2-Mic HAT, 12 on the 4-Mic)."""
    apa102_brightness: int = Field(8, ge=0, le=31)
    """APA102 global brightness (0-31)."""
    button_pin: int | None = Field(None, ge=0, le=27)
    """BCM pin of the button (17 on the ReSpeaker 2-Mic HAT); none: no button."""
    hold_s: float = Field(2.0, ge=0.5, le=10)
    """Holding the button this long toggles mute."""
    double_press_s: float = Field(0.4, ge=0.1, le=2)
    """Two presses within this time are a double press (a single press is acted on this
    long after release, once no second press follows)."""
    bounce_s: float = Field(0.05, ge=0, le=0.5)
    """Button debounce: edges closer together than this are contact chatter."""
    apa102_order: Literal["bgr", "brg", "gbr", "grb", "rbg", "rgb"] = "bgr"
    """Colour byte order of the APA102 pixels (bgr on genuine APA102 and the ReSpeaker HATs)."""
    apa102_spi_device: int = Field(0, ge=0, le=1)
    """SPI0 chip select claimed for the pixels (0: GPIO8/CE0, 1: GPIO7/CE1); the pixels
    ignore it, so pick the one no other SPI device uses."""
    apa102_power_pin: int | None = Field(None, ge=0, le=27)
    """BCM pin driven high to power the pixels (5 on the ReSpeaker 4-Mic HAT); none: not needed."""

    @model_validator(mode="after")
    def _pins_make_sense(self) -> GpioSettings:
        if not self.enabled:
            return self
        used: dict[int, str] = {}
        if self.led == "single":
            if self.led_pin is None:
                raise ValueError('led = "single" needs led_pin (the BCM pin of the LED)')
            used[self.led_pin] = "led_pin"
        elif self.led == "rgb":
            if self.rgb_pins is None:
                raise ValueError('led = "rgb" needs rgb_pins = [red, green, blue] (BCM pins)')
            for pin in self.rgb_pins:
                if not 0 <= pin <= 27:
                    raise ValueError(f"rgb_pins: {pin} is not a BCM GPIO pin (0-27)")
                if pin in used:
                    raise ValueError(f"rgb_pins: GPIO{pin} is listed twice")
                used[pin] = "rgb_pins"
        elif self.led == "apa102":
            spi_pins = (9, 10, 11, 7 if self.apa102_spi_device else 8)
            used.update({pin: "the APA102 pixels (SPI0)" for pin in spi_pins})
            if self.apa102_power_pin is not None:
                _claim(used, self.apa102_power_pin, "apa102_power_pin")
        if self.button_pin is not None:
            _claim(used, self.button_pin, "button_pin")
        return self


def _claim(used: dict[int, str], pin: int, key: str) -> None:
    if pin in used:
        raise ValueError(f"{key}: GPIO{pin} is already used by {used[pin]}")
    used[pin] = key
