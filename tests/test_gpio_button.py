"""The button on a mock pin: gestures become Button messages, and nothing else happens."""

from __future__ import annotations

import queue
import time

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_app.core.messages import Button
from firmware_app.edges.gpio.button import ButtonGestures

PIN = 17
QUIET = 0.6  # longer than any window used here: nothing more is coming


class Posted:
    """Stands in for ``assistant.post``: records what the button sent, from any thread."""

    def __init__(self) -> None:
        self.messages: queue.Queue[Button] = queue.Queue()

    def __call__(self, msg: Button) -> None:
        self.messages.put(msg)

    def next(self, timeout: float = 5.0) -> Button:
        return self.messages.get(timeout=timeout)

    def nothing_more(self, wait: float = QUIET) -> bool:
        try:
            extra = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected {extra}")


def make(factory: MockFactory, posted: Posted, **kw: float) -> ButtonGestures:
    settings = {"hold_s": 1.5, "double_press_s": 0.3, "bounce_s": 0.02} | kw
    return ButtonGestures(PIN, posted, **settings)


def click(pin: object, down: float = 0.08) -> None:
    pin.drive_low()  # type: ignore[attr-defined]
    time.sleep(down)
    pin.drive_high()  # type: ignore[attr-defined]


def test_button_uses_pull_up_and_debounce(factory: MockFactory) -> None:
    button = make(factory, Posted())
    pin = factory.pin(PIN)
    try:
        assert pin.function == "input" and pin.pull == "up" and pin.state  # idle high
        assert pin.bounce == pytest.approx(0.02)
    finally:
        button.close()


def test_short_press_posts_press_once_the_double_window_closed(factory: MockFactory) -> None:
    posted = Posted()
    button = make(factory, posted)
    pin = factory.pin(PIN)
    try:
        click(pin)
        released = time.monotonic()
        assert posted.next() == Button("press")
        assert time.monotonic() - released >= 0.25  # waited for a possible second press
        assert posted.nothing_more()
        click(pin)
        assert posted.next() == Button("press")  # every press counts, not only the first
    finally:
        button.close()


def test_long_hold_posts_hold_while_held_and_nothing_on_release(factory: MockFactory) -> None:
    posted = Posted()
    button = make(factory, posted, hold_s=0.4)
    pin = factory.pin(PIN)
    try:
        pin.drive_low()
        assert posted.next() == Button("hold")  # felt while the finger is still down
        time.sleep(0.6)  # no repeats while held
        pin.drive_high()
        assert posted.nothing_more()
    finally:
        button.close()


def test_double_press_posts_double_only(factory: MockFactory) -> None:
    posted = Posted()
    button = make(factory, posted, double_press_s=0.5)
    pin = factory.pin(PIN)
    try:
        click(pin)
        time.sleep(0.08)
        click(pin)
        assert posted.next() == Button("double")
        assert posted.nothing_more()
    finally:
        button.close()


def test_presses_further_apart_than_the_window_are_two_presses(factory: MockFactory) -> None:
    posted = Posted()
    button = make(factory, posted, double_press_s=0.2)
    pin = factory.pin(PIN)
    try:
        click(pin)
        assert posted.next() == Button("press")
        time.sleep(0.1)
        click(pin)
        assert posted.next() == Button("press")
        assert posted.nothing_more()
    finally:
        button.close()


def test_contact_chatter_is_one_press(factory: MockFactory) -> None:
    posted = Posted()
    button = make(factory, posted, bounce_s=0.05)
    pin = factory.pin(PIN)
    try:
        for _ in range(4):  # the contacts bounce as they close...
            pin.drive_low()
            pin.drive_high()
        pin.drive_low()
        time.sleep(0.1)
        for _ in range(3):  # ...and as they open
            pin.drive_high()
            pin.drive_low()
        pin.drive_high()
        assert posted.next() == Button("press")
        assert posted.nothing_more()
    finally:
        button.close()


def test_a_failing_post_does_not_break_the_button(factory: MockFactory) -> None:
    posted = Posted()
    calls = []

    def flaky(msg: Button) -> None:
        calls.append(msg)
        if len(calls) == 1:
            raise RuntimeError("queue closed")
        posted(msg)

    button = ButtonGestures(PIN, flaky, hold_s=0.3, double_press_s=0.2, bounce_s=0.01)
    pin = factory.pin(PIN)
    try:
        pin.drive_low()
        time.sleep(0.5)
        pin.drive_high()  # the hold's post failed...
        time.sleep(0.1)
        click(pin)  # ...and the next gesture still arrives
        assert posted.next() == Button("press")
        assert calls == [Button("hold"), Button("press")]
    finally:
        button.close()


def test_close_cancels_a_pending_press_and_frees_the_pin(factory: MockFactory) -> None:
    posted = Posted()
    button = make(factory, posted, double_press_s=0.3)
    pin = factory.pin(PIN)
    click(pin)
    button.close()
    assert posted.nothing_more()
    again = make(factory, posted)  # the pin can be claimed again
    again.close()
