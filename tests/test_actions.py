"""Local intent actions without the assistant: timers (and the question "which one?"),
volume, the time, home sentences, and wake words taken off typed requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_app.config.settings import CustomIntent
from firmware_app.system.store import Store
from firmware_app.understand.actions import (
    HELP,
    NO_HOME,
    NO_SERVICE,
    NO_TIMERS,
    Actions,
    Outcome,
    Question,
    clock_time,
    strip_wake_words,
)
from firmware_app.understand.intents import Intent
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.timers import Timers

NOW = 1_800_000_000.0
LIGHT = CustomIntent(
    name="light",
    sentences=["turn (on|off) the light"],
    topic="home/light/set",
    payload="{group1}",
    reply="Light {group1}.",
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, object]]] = []

    def __call__(self, type_: str, /, **fields: object) -> None:
        self.events.append((type_, fields))


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(tmp_path / "store.sqlite")
    yield s
    s.close()


def actions(store: Store, publish=None) -> tuple[Actions, Recorder]:
    emit = Recorder()
    return Actions(Timers(store), CustomIntents([LIGHT]), emit, publish), emit


def act(a: Actions, intent: str, /, **slots: object) -> Outcome:
    return a.act(Intent(intent, slots), NOW, 50)


def test_timers_set_report_and_cancel(store) -> None:
    a, emit = actions(store)
    assert act(a, "timer_set", seconds=600, name="pasta").text == "Pasta timer set for 10 minutes."
    assert emit.events[-1][0] == "timer" and emit.events[-1][1]["action"] == "set"
    assert act(a, "timer_remaining").text == "10 minutes left on your pasta timer."
    assert act(a, "timer_cancel", name="pasta").text == "Pasta timer cancelled."
    assert act(a, "timer_cancel").text == NO_TIMERS
    assert act(a, "timer_set", seconds=0.5).text.startswith("I can set timers from")


def test_cancel_with_several_timers_asks_which_and_understands_the_answer(store) -> None:
    a, _ = actions(store)
    act(a, "timer_set", seconds=600, name="pasta")
    act(a, "timer_set", seconds=300, name="laundry")
    asked = act(a, "timer_cancel")
    assert asked.text is not None and asked.text.endswith("Which one?")
    assert isinstance(asked.question, Question) and len(asked.question.timer_ids) == 2
    assert a.answer(asked.question, "what time is it") is None  # not an answer: a new request
    done = a.answer(asked.question, "the pasta one")
    assert done is not None and done.text == "Pasta timer cancelled."
    assert [t.name for t in a.timers.active()] == ["laundry"]


@pytest.mark.parametrize(
    ("answer", "left"),
    [
        ("pasta", ["laundry"]),
        ("the laundry timer", ["pasta"]),
        ("both of them", []),
        ("never mind", ["laundry", "pasta"]),
    ],
)
def test_answers_to_which_one(store, answer: str, left: list[str]) -> None:
    a, _ = actions(store)
    act(a, "timer_set", seconds=600, name="pasta")
    act(a, "timer_set", seconds=300, name="laundry")
    question = act(a, "timer_cancel").question
    assert question is not None
    assert a.answer(question, answer) is not None
    assert sorted(t.name or "" for t in a.timers.active()) == left


def test_an_unnamed_timer_is_chosen_by_its_length(store) -> None:
    a, _ = actions(store)
    act(a, "timer_set", seconds=300)
    act(a, "timer_set", seconds=60)
    question = act(a, "timer_cancel").question
    assert question is not None
    done = a.answer(question, "the five minute one")
    assert done is not None and done.text == "5 minutes timer cancelled."
    assert [t.seconds for t in a.timers.active()] == [60]


@pytest.mark.parametrize(
    ("name", "slots", "volume"),
    [("volume_up", {}, 60), ("volume_down", {}, 40), ("volume_set", {"volume": 130}, 100)],
)
def test_volume_is_a_change_for_the_assistant_to_make(store, name, slots, volume) -> None:
    a, _ = actions(store)
    outcome = act(a, name, **slots)
    assert outcome.volume == volume and outcome.text == f"Volume {volume} percent."


def test_time_help_stop_and_repeat(store) -> None:
    a, _ = actions(store)
    assert act(a, "time").text == f"It's {clock_time(NOW)}."
    assert (act(a, "date").text or "").startswith("Today is ")
    assert act(a, "help").text == HELP
    assert act(a, "stop") == Outcome(None, stop=True)
    assert act(a, "repeat") == Outcome(None, repeat=True)


def test_home_sentences_publish_or_say_why_not(store) -> None:
    published: list[tuple[str, str]] = []
    intent = CustomIntents([LIGHT]).recognize("turn on the light")
    assert intent is not None
    a, _ = actions(store, lambda topic, payload: published.append((topic, payload)))
    assert a.act(intent, NOW, 50).text == "Light on."
    assert published == [("home/light/set", "on")]
    offline, _ = actions(store)
    assert offline.act(intent, NOW, 50).text == NO_HOME
    elsewhere = Actions(Timers(store), CustomIntents([LIGHT]), Recorder(), None, NO_SERVICE)
    assert elsewhere.act(intent, NOW, 50).text == NO_SERVICE

    def broken(topic: str, payload: str) -> None:
        raise OSError("queue full")

    failing, emit = actions(store, broken)
    assert failing.act(intent, NOW, 50).text == "Sorry, I couldn't send that to your home."
    assert emit.events[-1] == ("error", {"where": "intents", "message": "light: queue full"})


@pytest.mark.parametrize(
    ("typed", "wanted"),
    [
        ("hey jarvis what time is it", "what time is it"),
        ("Hey Jarvis, what time is it", "what time is it"),
        ("alexa set a timer", "set a timer"),
        ("what time is it", "what time is it"),
        ("hey", ""),
    ],
)
def test_wake_words_are_taken_off_a_request(typed: str, wanted: str) -> None:
    assert strip_wake_words(typed) == wanted
