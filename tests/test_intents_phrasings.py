"""How people really ask: natural phrasings the README does not list, polite, indirect and
terse. At least 95% must be understood, and none may be understood as the wrong thing."""

from __future__ import annotations

import time

import pytest

from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin, recognize_followup

T = "timer_set"
PHRASINGS: list[tuple[str, str, dict[str, object] | None]] = [
    # time and date
    ("could you tell me what time it is", "time", {}),
    ("do you know what time it is", "time", {}),
    ("what's the time right now", "time", {}),
    ("have you got the time", "time", {}),
    ("time please", "time", {}),
    ("tell me the current time", "time", {}),
    ("what day of the week is it", "date", {}),
    ("what day is it", "date", {}),
    ("which day is it today", "date", {}),
    ("what's today's date", "date", {}),
    ("can you tell me the date", "date", {}),
    ("what is the date today", "date", {}),
    # setting timers
    ("can you set a timer for ten minutes", T, {"seconds": 600, "name": None}),
    ("i need a timer for 3 minutes", T, {"seconds": 180, "name": None}),
    ("please start a timer for twenty seconds", T, {"seconds": 20, "name": None}),
    ("could you set a 15 minute timer", T, {"seconds": 900, "name": None}),
    ("set an egg timer for four minutes", T, {"seconds": 240, "name": "egg"}),
    ("set an egg timer for 3 minutes", T, {"seconds": 180, "name": "egg"}),
    ("start a tea timer for three minutes", T, {"seconds": 180, "name": "tea"}),
    ("put a pizza timer on for twelve minutes", T, None),
    ("timer ninety seconds", T, None),
    ("give me a timer for half an hour", T, {"seconds": 1800, "name": None}),
    ("i'd like a timer for an hour and a half", T, {"seconds": 5400, "name": None}),
    ("make a countdown for two minutes", T, {"seconds": 120, "name": None}),
    ("set a timer for 5 minutes called laundry", T, {"seconds": 300, "name": "laundry"}),
    ("wake me up in twenty minutes", T, None),
    ("remind me in a quarter of an hour", T, {"seconds": 900, "name": None}),
    ("ten minute pizza timer", T, {"seconds": 600, "name": "pizza"}),
    ("could you please create a new timer for forty five seconds", T, None),
    ("set the oven timer to 25 minutes", T, None),
    ("another timer for two and a half minutes", T, {"seconds": 150, "name": None}),
    # how long is left
    ("how much longer on the pasta timer", "timer_remaining", {"name": "pasta"}),
    ("how much time is left on my timer", "timer_remaining", {"name": None}),
    ("how long until the timer goes off", "timer_remaining", {"name": None}),
    ("how much time do i have left", "timer_remaining", {"name": None}),
    ("is the egg timer still running", "timer_remaining", {"name": "egg"}),
    ("check my timers", "timer_remaining", {"name": None}),
    ("any timers running", "timer_remaining", {"name": None}),
    ("how many minutes are left on the laundry timer", "timer_remaining", {"name": "laundry"}),
    ("when will the tea timer go off", "timer_remaining", {"name": "tea"}),
    ("status of my timers", "timer_remaining", {"name": None}),
    # cancelling
    ("please cancel the egg timer", "timer_cancel", {"name": "egg", "all": False}),
    ("stop my timer", "timer_cancel", {"name": None, "all": False}),
    ("delete all my timers", "timer_cancel", {"name": None, "all": True}),
    ("i don't need the pasta timer anymore", "timer_cancel", {"name": "pasta", "all": False}),
    ("turn off the laundry timer", "timer_cancel", {"name": "laundry", "all": False}),
    ("cancel both timers", "timer_cancel", {"name": None, "all": True}),
    # volume
    ("make it louder", "volume_up", {}),
    ("a bit louder please", "volume_up", {}),
    ("turn the volume up", "volume_up", {}),
    ("can you speak up", "volume_up", {}),
    ("i can't hear you", "volume_up", {}),
    ("turn it down", "volume_down", {}),
    ("you're too loud", "volume_down", {}),
    ("lower the volume a little", "volume_down", {}),
    ("softer please", "volume_down", {}),
    ("maximum volume", "volume_set", {"volume": 100}),
    ("turn the volume all the way up", "volume_set", {"volume": 100}),
    ("minimum volume", "volume_set", {"volume": 10}),
    ("change the volume to 30 percent", "volume_set", {"volume": 30}),
    ("volume at fifty percent", "volume_set", {"volume": 50}),
    ("set volume to seven", "volume_set", {"volume": 70}),
    # stop, repeat, help
    ("stop talking", "stop", {}),
    ("that's enough", "stop", {}),
    ("be quiet please", "stop", {}),
    ("forget it", "stop", {}),
    ("can you repeat that", "repeat", {}),
    ("repeat that", "repeat", {}),
    ("what did you say", "repeat", {}),
    ("sorry what was that", "repeat", {}),
    ("could you say that again please", "repeat", {}),
    ("help me", "help", {}),
    ("what can i ask you", "help", {}),
    ("what are you able to do", "help", {}),
    ("i need help", "help", {}),
    ("how does this work", "help", {}),
]


def test_the_table_is_varied_and_large_enough():
    assert len(PHRASINGS) >= 60
    assert len({p for p, _, _ in PHRASINGS}) == len(PHRASINGS)
    assert len({name for _, name, _ in PHRASINGS}) >= 10


def test_natural_phrasings_are_understood():
    understood, wrong, missed = 0, [], []
    for text, name, slots in PHRASINGS:
        intent = recognize_builtin(normalize(text))
        if intent is None:
            missed.append(text)
        elif intent.name != name or (slots is not None and intent.slots != slots):
            wrong.append((text, intent))
        else:
            understood += 1
    assert not wrong, wrong  # a wrong action is worse than "sorry"
    assert understood / len(PHRASINGS) >= 0.95, missed


@pytest.mark.parametrize(
    "text",
    [
        "what's the weather like tomorrow",
        "who wrote hamlet",
        "tell me a joke",
        "play some jazz",
        "what is the time complexity of quicksort",
        "how long is the great wall of china",
        "set the table for dinner",
        "is it going to rain",
        "remind me to buy milk",
    ],
)
def test_other_questions_are_left_for_the_llm(text):
    assert recognize_builtin(normalize(text)) is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("the pasta one", {"name": "pasta", "all": False}),
        ("pasta", {"name": "pasta", "all": False}),
        ("the pasta timer", {"name": "pasta", "all": False}),
        ("cancel the egg timer", {"name": "egg", "all": False}),
        ("it's the egg one", {"name": "egg", "all": False}),
        ("both of them", {"name": None, "all": True}),
        ("all of them", {"name": None, "all": True}),
    ],
)
def test_answers_to_which_one(answer, expected):
    intent = recognize_followup(normalize(answer), ["pasta", "egg"])
    assert intent is not None and intent.name == "timer_choice"
    assert intent.slots == expected


def test_which_one_answers_that_name_no_timer_listed():
    assert recognize_followup("the tea one", ["pasta", "egg"]) is None
    assert recognize_followup("what time is it", ["pasta", "egg"]) is None
    neither = recognize_followup("neither", ["pasta", "egg"])
    assert neither is not None and neither.name == "stop"


def test_matching_is_fast_once_compiled():
    """Templates are compiled at import; a request costs milliseconds, not a compile."""
    texts = [normalize(t) for t, _, _ in PHRASINGS]
    started = time.perf_counter()
    for text in texts:
        recognize_builtin(text)
    per_request = (time.perf_counter() - started) / len(texts)
    assert per_request < 0.05  # generous: the figure itself is measured in scripts/bench.py
