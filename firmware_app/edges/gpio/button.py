"""The button: turns presses into gestures and posts them to the assistant.

Gestures (what the assistant does with them is its business, not this module's):
- ``press``: one short press;
- ``hold``: kept down for ``hold_s`` (posted while still held, so the user feels it work);
- ``double``: two short presses, the second starting within ``double_press_s`` of the end
  of the first.

A single press is posted ``double_press_s`` after release, once it is clear no second press
follows: that small delay is the price of the double press, and ``double_press_s`` tunes it.
Bounces are filtered twice: by gpiozero's ``bounce_time`` (in the GPIO driver where the
backend supports it) and here, so contact chatter never turns one press into two.

Callbacks arrive on gpiozero's threads (edges, the hold timer) and on our own timer; this
class only posts messages and never touches the assistant otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from loguru import logger

from firmware_app.core.messages import Button

Gesture = Literal["press", "hold", "double"]


class ButtonGestures:
    """Reads one push button (to ground, internal pull-up) and posts `Button` messages."""

    def __init__(
        self,
        pin: int,
        post: Callable[[Button], None],
        *,
        hold_s: float = 2.0,
        double_press_s: float = 0.4,
        bounce_s: float = 0.05,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import Button as GpioButton

        self._post = post
        self._hold_s = hold_s
        self._double_s = double_press_s
        self._bounce_s = bounce_s
        self._lock = threading.Lock()
        self._down = False
        self._pressed_at = 0.0
        self._released_at = -1e9
        self._hold_posted = False
        self._second = False  # this press is the second of a double press
        self._pending: threading.Timer | None = None  # a single press waiting for a second
        self.button = GpioButton(
            pin,
            pull_up=True,
            bounce_time=bounce_s or None,
            hold_time=hold_s,
            pin_factory=pin_factory,
        )
        self.button.when_pressed = self._pressed
        self.button.when_released = self._released
        self.button.when_held = self._held

    def close(self) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
        self.button.close()

    # gpiozero's threads -------------------------------------------------------------

    def _pressed(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._down:
                return  # a release was ignored as a bounce: still the same press
            if now - self._released_at < self._bounce_s:
                return  # the release bounced
            self._down = True
            self._pressed_at = now
            self._hold_posted = False
            self._second = self._pending is not None
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None

    def _held(self) -> None:
        with self._lock:
            if not self._down or self._hold_posted:
                return
            self._hold_posted = True
        self._send("hold")

    def _released(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._down or now - self._pressed_at < self._bounce_s:
                return  # not a press we counted, or the press bounced
            self._down = False
            self._released_at = now
            if self._hold_posted:
                return
            gesture: Gesture
            if now - self._pressed_at >= self._hold_s:
                # released just as the hold timer was due: still a hold, posted once
                self._hold_posted = True
                gesture = "hold"
            elif self._second:
                gesture = "double"
            else:
                timer = threading.Timer(self._double_s, self._single)
                timer.daemon = True
                self._pending = timer
                timer.start()
                return
        self._send(gesture)

    def _single(self) -> None:
        with self._lock:
            if self._pending is None or self._pending is not threading.current_thread():
                return  # cancelled by a second press that raced this timer
            self._pending = None
        self._send("press")

    def _send(self, gesture: Gesture) -> None:
        logger.debug("button: {}", gesture)
        try:
            self._post(Button(gesture))
        except Exception as exc:  # never let the assistant's problem kill gpiozero's thread
            logger.error("button: posting {} failed: {}", gesture, exc)
