"""Spoken numbers, the built-in English intents and custom home-automation templates."""

from __future__ import annotations

import pytest

from firmware_app.config.settings import CustomIntent
from firmware_app.core.errors import ConfigError
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.intents.numbers import parse_duration, parse_number, spoken_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("five minutes", 300),
        ("an hour and a half", 5400),
        ("ninety seconds", 90),
        ("two and a half minutes", 150),
        ("half an hour", 1800),
        ("a quarter of an hour", 900),
        ("three quarters of an hour", 2700),
        ("1 hour 30 minutes", 5400),
        ("twenty five minutes", 1500),
        ("one hour and thirty minutes", 5400),
        ("a minute", 60),
        ("10 min", 600),
        ("one hundred and twenty seconds", 120),
        ("a couple of minutes", 120),
        ("1.5 hours", 5400),
        ("a minute and a half", 90),
        ("forty five seconds", 45),
        ("two hours fifteen minutes and ten seconds", 8110),
        ("seventy two hours", 259200),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["set a timer", "", "minutes", "the time", "five"])
def test_no_duration(text):
    assert parse_duration(text) is None


def test_numbers():
    assert parse_number(["twenty", "one"]) == (21, 2)
    assert parse_number(["two", "thousand", "and", "five"]) == (2005, 4)
    assert parse_number(["five", "five"]) == (5, 1)
    assert parse_number(["hello"]) == (None, 0)


def test_spoken_duration():
    assert spoken_duration(5400) == "1 hour and 30 minutes"
    assert spoken_duration(61) == "1 minute and 1 second"
    assert spoken_duration(3725) == "1 hour and 2 minutes"
    assert spoken_duration(0.4) == "0 seconds"


@pytest.mark.parametrize(
    ("text", "name", "slots"),
    [
        ("What time is it?", "time", {}),
        ("what's the time", "time", {}),
        ("hey tell me the time please", "time", {}),
        ("what's the date", "date", {}),
        ("what day is it today", "date", {}),
        ("set a timer for five minutes", "timer_set", {"seconds": 300, "name": None}),
        ("set a pasta timer for ten minutes", "timer_set", {"seconds": 600, "name": "pasta"}),
        (
            "set a timer for an hour and a half called laundry",
            "timer_set",
            {"seconds": 5400, "name": "laundry"},
        ),
        ("five minute timer", "timer_set", {"seconds": 300, "name": None}),
        # what is said after a request is no part of the duration, nor a name
        ("set the timer for an hour and a half now", "timer_set", {"seconds": 5400, "name": None}),
        ("set a timer for ten minutes please", "timer_set", {"seconds": 600, "name": None}),
        (
            "set a timer for ten minutes called pasta please",
            "timer_set",
            {"seconds": 600, "name": "pasta"},
        ),
        ("what time is it right now", "time", {}),
        ("set a timer for five minutes thank you", "timer_set", {"seconds": 300, "name": None}),
        (
            "set a pasta timer for ten minutes for me",
            "timer_set",
            {"seconds": 600, "name": "pasta"},
        ),
        ("an egg timer for three minutes", "timer_set", {"seconds": 180, "name": "egg"}),
        ("set the volume at fifty percent", "volume_set", {"volume": 50}),
        ("timer for ninety seconds", "timer_set", {"seconds": 90, "name": None}),
        ("remind me in twenty minutes", "timer_set", {"seconds": 1200, "name": None}),
        ("cancel the pasta timer", "timer_cancel", {"name": "pasta", "all": False}),
        ("cancel the timer", "timer_cancel", {"name": None, "all": False}),
        ("cancel all timers", "timer_cancel", {"name": None, "all": True}),
        ("how much time is left", "timer_remaining", {"name": None}),
        ("how long is left on the pasta timer", "timer_remaining", {"name": "pasta"}),
        ("how long left on the timer", "timer_remaining", {"name": None}),
        ("what timers do i have", "timer_remaining", {"name": None}),
        ("volume up", "volume_up", {}),
        ("turn it down a bit", "volume_down", {}),
        ("louder", "volume_up", {}),
        ("set the volume to eighty percent", "volume_set", {"volume": 80}),
        ("volume five", "volume_set", {"volume": 50}),
        ("stop", "stop", {}),
        ("never mind", "stop", {}),
        ("what can you do", "help", {}),
        ("say that again", "repeat", {}),
    ],
)
def test_builtin_intents(text, name, slots):
    intent = recognize_builtin(normalize(text))
    assert intent is not None and intent.name == name
    assert intent.slots == slots


@pytest.mark.parametrize(
    "text",
    [
        "why is the sky blue",
        "turn on the kitchen light",
        "set an alarm",
        "stop the war in my head tonight",
        "",
        # a misheard article or preposition is no timer name (Whisper in noise)
        "set on that timer for three minutes",
        "shout out to them timer for 3 minutes",
        "set a timer for 45 seconds, drop D.",
        # a new timer's name follows an article: "set a timer" was heard "set soup timer"
        "set soup timer for an hour and a half",
        "pasta timer for twenty seconds",
    ],
)
def test_not_builtin(text):
    assert recognize_builtin(normalize(text)) is None


def light_intent(**kw) -> CustomIntent:
    spec = dict(
        name="light",
        sentences=["turn (on|off) the {room} light", "[please] switch the {room} light (on|off)"],
        slots={"room": ["kitchen", "bedroom", "living room"]},
        topic="home/{room}/light/set",
        payload='{{"state": "{group1}"}}',
        reply="Turning {group1} the {room} light.",
    )
    spec.update(kw)
    return CustomIntent(**spec)


def test_custom_template_matches_and_fills_topic_payload_reply():
    intents = CustomIntents([light_intent()])
    intent = intents.recognize(normalize("Turn on the living room light."))
    assert intent is not None and intent.slots == {"group1": "on", "room": "living room"}
    assert intents.action(intent) == (
        "home/living room/light/set",
        '{"state": "on"}',
        "Turning on the living room light.",
    )
    assert intents.recognize("please switch the kitchen light off").slots == {
        "room": "kitchen",
        "group1": "off",
    }
    assert intents.recognize("switch the kitchen light off") is not None
    assert intents.recognize("turn on the garage light") is None


def test_custom_template_errors_name_the_intent():
    with pytest.raises(ConfigError, match=r"intents\.light.*room"):
        CustomIntents([light_intent(slots={})])
    with pytest.raises(ConfigError, match=r"intents.light: \{floor\}"):
        CustomIntents([light_intent(reply="on {floor}")])


def test_custom_sentences_in_home_assistant_format():
    """The docs/mqtt.md example: named slots, an expansion rule, skip words."""
    intents = CustomIntents(
        [
            CustomIntent(
                name="lights",
                sentences=[
                    "turn {state} [<the>] {room} light",
                    "switch [<the>] {room} light {state}",
                ],
                slots={"room": ["kitchen", "bedroom", "living room"], "state": ["on", "off"]},
                topic="zigbee2mqtt/{room} light/set",
                payload='{{"state": "{state}"}}',
                reply="Okay, {room} light {state}.",
            )
        ]
    )
    intent = intents.recognize(normalize("Could you turn off my bedroom light, please?"))
    assert intent is not None and intent.slots == {"state": "off", "room": "bedroom"}
    assert intents.action(intent) == (
        "zigbee2mqtt/bedroom light/set",
        '{"state": "off"}',
        "Okay, bedroom light off.",
    )
    assert intents.recognize("switch the living room light on").slots["room"] == "living room"
    assert intents.recognize("turn off the garage light") is None


def test_a_broken_custom_template_is_one_config_error():
    with pytest.raises(ConfigError, match=r"intents \(light\): cannot read a sentence template"):
        CustomIntents(
            [light_intent(sentences=["turn (on|off the {room} light"], payload="", reply="Ok.")]
        )
    with pytest.raises(ConfigError, match=r"<nope> is not an expansion rule"):
        CustomIntents([light_intent(sentences=["turn <nope> {room}"], payload="", reply="Ok.")])
