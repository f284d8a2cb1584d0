"""What the LEDs show for each display pattern: the one table to edit to restyle them.

`LedPatterns` is the assistant's display: from what the assistant shows (its state and
flags, `core.status.Showing`) it chooses a pattern (`choose_pattern`) and names it in a
``led`` event when it changes, which the LED drivers, MQTT and the event log follow. The
state machine itself knows nothing of patterns. This module says what each pattern
looks like (an effect, a colour and a period) and computes the colour of every pixel at a
moment of the animation. The drivers in ``leds.py`` only write those colours, so a single
LED, an RGB LED and a ring of APA102 pixels all follow this same table:

- a single LED has no colour: it shows the brightest channel of the colour as its
  brightness, so a dim colour (muted) is a dim glow;
- on a device with one pixel (single or RGB LED), ``spin`` cannot go round: it pulses
  instead, at its own (short) period, so thinking still looks different from speaking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from firmware_app.core.events import Emitter
from firmware_app.core.status import Showing

Effect = Literal["off", "solid", "pulse", "blink", "spin"]
Colour = tuple[int, int, int]
"""Red, green, blue, 0-255 each."""

BLACK: Colour = (0, 0, 0)


@dataclass(frozen=True)
class Pattern:
    """How one display pattern looks."""

    effect: Effect
    colour: Colour = BLACK
    period_s: float = 1.0
    """One full cycle: a pulse's fade in and out, a blink's on and off, a spin's turn."""
    duty: float = 0.5
    """Blink only: the part of each period the light is on."""

    def __post_init__(self) -> None:
        if self.period_s <= 0:
            raise ValueError(f"period_s must be above 0, not {self.period_s}")
        if not 0.0 < self.duty < 1.0:
            raise ValueError(f"duty must be between 0 and 1, not {self.duty}")
        if len(self.colour) != 3 or any(not 0 <= c <= 255 for c in self.colour):
            raise ValueError(f"colour must be three values 0-255, not {self.colour}")

    @property
    def animated(self) -> bool:
        """False for patterns that never change once drawn (nothing to redraw)."""
        return self.effect in ("pulse", "blink", "spin") and self.colour != BLACK


OFF = Pattern("off")

# The table. Names are fixed by the ``led`` event; everything else is free to change.
PATTERNS: dict[str, Pattern] = {
    # Dark when nothing happens: a speaker in a bedroom must not glow all night.
    "idle": OFF,
    # The wake word was heard: steady and bright, "I am all ears".
    "listening": Pattern("solid", (0, 90, 255)),
    # Working on the answer: a light going round (a quick pulse on one LED).
    "thinking": Pattern("spin", (0, 200, 200), period_s=0.8),
    # Talking: a slow breath.
    "speaking": Pattern("pulse", (0, 90, 255), period_s=2.0),
    # Microphone off: a steady dim red, visible at a glance, never distracting.
    "muted": Pattern("solid", (110, 0, 0)),
    # Something failed: quick red flashes.
    "error": Pattern("blink", (255, 0, 0), period_s=0.3),
    # A timer is ringing: orange flashes, once a second.
    "timer": Pattern("blink", (255, 110, 0), period_s=1.0),
    # A timer is running (Home Assistant's): a dim, slow orange breath while at rest.
    "timer_running": Pattern("pulse", (90, 40, 0), period_s=4.0),
    # Installing an update: a slow purple breath; do not unplug.
    "updating": Pattern("pulse", (150, 0, 255), period_s=3.0),
    # No network or broker: a short yellow flash every three seconds.
    "offline": Pattern("blink", (255, 180, 0), period_s=3.0, duty=0.1),
}


def frame(pattern: Pattern, t: float, count: int) -> list[Colour]:
    """The colour of each of ``count`` pixels ``t`` seconds after the pattern started.

    Pure arithmetic, so what every pattern looks like can be checked without hardware.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    effect, colour, period = pattern.effect, pattern.colour, pattern.period_s
    phase = (t % period) / period
    if effect == "off":
        return [BLACK] * count
    if effect == "solid":
        return [colour] * count
    if effect == "blink":
        return [colour if phase < pattern.duty else BLACK] * count
    if effect == "pulse" or (effect == "spin" and count == 1):
        return [scale(colour, _breath(phase))] * count
    # spin: a bright head going round with a fading tail behind it
    head = int(phase * count) % count
    return [scale(colour, _TAIL ** ((head - i) % count)) for i in range(count)]


_TAIL = 0.25
"""Each pixel behind the spinning head is this much as bright as the one before it."""


def _breath(phase: float) -> float:
    """0 → 1 → 0 over one period; squared so the fade looks even to the eye (LED brightness
    is perceived roughly as the square root of the duty cycle)."""
    level = (1.0 - math.cos(2.0 * math.pi * phase)) / 2.0
    return level * level


def scale(colour: Colour, k: float) -> Colour:
    r, g, b = colour
    return (round(r * k), round(g * k), round(b * k))


def level(colour: Colour) -> float:
    """Brightness of a colour on a single, colourless LED (0.0-1.0)."""
    return max(colour) / 255.0


def choose_pattern(
    state: str,
    *,
    muted: bool,
    ringing: bool,
    updating: bool,
    offline: bool,
    timing: bool = False,
) -> str:
    """The pattern to show for an assistant state and its flags, most important first: an
    update in progress (do not unplug), a ringing timer, muted while resting, an error,
    the work in progress, muted, the network gone, a timer running, else dark."""
    if updating:
        return "updating"
    if ringing:
        return "timer"
    if muted and state in ("muted", "idle"):
        return "muted"
    if state == "error":
        return "error"
    if state in ("listening", "thinking", "speaking"):
        return state
    if muted:
        return "muted"
    if offline:
        return "offline"
    if timing:
        return "timer_running"
    return "idle"


class LedPatterns:
    """The assistant's display: the pattern for what it shows, told as a ``led`` event
    each time it changes (on the assistant's thread, through its emitter)."""

    def __init__(self, emit: Emitter) -> None:
        self._emit = emit
        self.pattern = ""
        """The pattern last told ("" before the first)."""

    def show(self, showing: Showing) -> None:
        pattern = choose_pattern(
            showing.state.value,
            muted=showing.muted,
            ringing=showing.ringing,
            updating=showing.updating,
            offline=showing.offline,
            timing=showing.timing,
        )
        if pattern != self.pattern:
            self.pattern = pattern
            self._emit("led", pattern=pattern)
