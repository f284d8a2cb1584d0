"""The built-in English intents: time, date, timers, volume, stop, repeat, help, and the
answers to "Which one?".

The sentences are Home Assistant templates (``sentences_en.py``) matched by ``hassil``,
compiled once at import. ``hassil`` may find several readings of a sentence; each is
checked (a wildcard duration must be a duration, a timer name must not be one) and the
first intent in template order with a valid reading wins, the reading with the fewest
wildcard words first ("set a pasta timer for ten minutes" names it "pasta", not "a pasta").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from hassil import Intents, recognize_all
from hassil.recognize import RecognizeResult

from firmware_app.understand.intents import Intent
from firmware_app.understand.intents.numbers import DURATION_WORDS, is_duration, parse_duration
from firmware_app.understand.intents.sentences_en import (
    FOLLOWUP_INTENTS,
    INTENTS,
    TRAILING_WORDS,
    intents_dict,
)

BUILTIN = Intents.from_dict(intents_dict(INTENTS))
FOLLOWUP = Intents.from_dict(intents_dict(FOLLOWUP_INTENTS))
_ORDER = {name: i for i, name in enumerate([*INTENTS, *FOLLOWUP_INTENTS])}
for _intents in (BUILTIN, FOLLOWUP):  # hassil parses on first use: pay it at start-up
    for _intent in _intents.intents.values():
        for _data in _intent.data:
            _ = _data.sentences

_NAME_DROP_FRONT = {
    "the", "my", "a", "an", "new", "another", "that", "this", "our", "called", "named",
}  # fmt: skip
_NAME_DROP_BACK = {"timer", "timers", "countdown", "one"}
_NOT_NAMES = {"timer", "timers", "countdown", "time", "left", "is", "it", "for", "please"}
# Words a timer's name is not made of: what an open recognizer makes of a misheard
# article or preposition ("set on that timer", "set our past our timer", "... for 45
# seconds, drop D"). A name with one is no name, and the reading no command.
_NAME_NEVER = {
    "a", "an", "the", "our", "your", "their", "his", "her", "its", "them", "they", "we",
    "you", "me", "us", "him", "she", "he", "i", "on", "to", "at", "of", "off", "out",
    "that", "this", "these", "those", "with", "from", "by",
}  # fmt: skip


def clean_timer_name(raw: str | None) -> str | None:
    """'an egg timer' → 'egg'; None when nothing that names a timer is left."""
    words = (raw or "").lower().split()
    while words and words[0] in _NAME_DROP_FRONT:
        words.pop(0)
    while words and words[-1] in _NAME_DROP_BACK:
        words.pop()
    return " ".join(words) or None


def _valid_name(name: str | None) -> bool:
    if name is None:
        return True
    words = name.split()
    return (
        len(words) <= 4
        and not any(ch.isdigit() for ch in name)
        and not any(w in _NOT_NAMES or w in DURATION_WORDS or w in _NAME_NEVER for w in words)
        and not any(len(w) == 1 for w in words)  # a letter: "drop d"
    )


_TRAILING_END = re.compile("(?: (?:" + "|".join(TRAILING_WORDS) + "))+$")


def _without_trailing(text: str) -> str:
    """'set a timer for ten minutes please' → 'set a timer for ten minutes': what is said
    after a request is part of no wildcard (a duration, a timer's name) that ends it."""
    return _TRAILING_END.sub("", text)


def _split_duration(text: str) -> tuple[str, str | None]:
    """'ten minute pizza' → ('ten minute', 'pizza'): a duration, then a timer's name."""
    words = text.split()
    for end in range(len(words) - 1, 0, -1):
        if is_duration(" ".join(words[:end])):
            return " ".join(words[:end]), clean_timer_name(" ".join(words[end:]))
    return text, None


def _slots(result: RecognizeResult) -> dict[str, Any]:
    return {name: entity.value for name, entity in result.entities.items()}


def _wildcard_words(result: RecognizeResult) -> int:
    return sum(len(str(e.text).split()) for e in result.entities.values() if e.is_wildcard)


def _build(name: str, slots: dict[str, Any], text: str) -> Intent | None:
    """The Intent the assistant acts on, or None when this reading does not hold up."""
    timer = clean_timer_name(slots.get("name")) if "name" in slots else None
    if not _valid_name(timer):
        return None
    if name == "timer_set":
        duration = str(slots.get("duration", ""))
        if not is_duration(duration) and timer is None:
            duration, timer = _split_duration(duration)  # "ten minute pizza" timer
        if not is_duration(duration) or not _valid_name(timer):
            return None
        return Intent("timer_set", {"seconds": parse_duration(duration), "name": timer})
    if name in ("timer_cancel", "timer_cancel_all"):
        every = name == "timer_cancel_all"
        return Intent("timer_cancel", {"name": None if every else timer, "all": every})
    if name == "timer_remaining":
        return Intent("timer_remaining", {"name": timer})
    if name in ("volume_max", "volume_min"):
        return Intent("volume_set", {"volume": 100 if name == "volume_max" else 10})
    if name == "volume_set":
        level = int(slots["volume"])
        if level <= 10 and "percent" not in text and "%" not in text:
            level *= 10  # "volume five" means 50 %, like a 1-10 dial
        return Intent("volume_set", {"volume": max(0, min(100, level))})
    if name == "timer_choice":
        return None if timer is None else Intent("timer_choice", {"name": timer, "all": False})
    if name == "timer_choice_all":
        return Intent("timer_choice", {"name": None, "all": True})
    if name == "timer_choice_none":
        return Intent("stop")
    return Intent(name)


def best_reading(results: Iterable[RecognizeResult], text: str) -> Intent | None:
    """The first valid reading, by template order then fewest wildcard words."""
    ranked = sorted(
        results, key=lambda r: (_ORDER.get(r.intent.name, len(_ORDER)), _wildcard_words(r))
    )
    for result in ranked:
        intent = _build(result.intent.name, _slots(result), text)
        if intent is not None:
            return intent
    return None


def recognize_builtin(text: str) -> Intent | None:
    """The built-in intent said in ``text`` (normalized words), or None."""
    if not text:
        return None
    # Without the words said after it first ("... ten minutes please"), as they are: they
    # may belong to the sentence ("what time is it right now").
    for said in dict.fromkeys((_without_trailing(text), text)):
        found = best_reading(recognize_all(said, BUILTIN, language="en"), said)
        if found is not None:
            return found
    return None


def recognize_followup(text: str, names: Sequence[str] = ()) -> Intent | None:
    """The answer to "Which one?" after the assistant listed timers ``names``.

    Returns ``timer_choice`` {name, all} (``name`` is one of ``names`` when given: "the
    pasta one", "pasta", "cancel the pasta timer" → "pasta"), ``stop`` for "neither", or
    None when the words answer nothing (then treat them as a new request).
    """
    if not text:
        return None
    bare = clean_timer_name(text)
    if bare and any(bare == n.lower() for n in names):
        return Intent(
            "timer_choice", {"name": next(n for n in names if n.lower() == bare), "all": False}
        )
    intent = best_reading(recognize_all(text, FOLLOWUP, language="en"), text)
    if intent is None or intent.name != "timer_choice" or intent.slots["name"] is None:
        return intent
    if names:
        said = intent.slots["name"]
        known = [n for n in names if n and (n.lower() == said or said in n.lower().split())]
        if not known:
            return None
        return Intent("timer_choice", {"name": known[0], "all": False})
    return intent
