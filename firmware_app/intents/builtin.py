"""The built-in English intents: time, date, timers, volume, stop, repeat, help.

Rules are regular expressions over normalized words; the first that matches wins, so the
narrow ones (cancel a timer) come before the broad ones (anything with "timer").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from firmware_app.intents import Intent
from firmware_app.intents.numbers import parse_duration, parse_number

_NAME = r"(?:(?:the|my|a|an)\s+)?(?P<name>[a-z' ]{2,30}?)\s+"
_PLEASE = r"(?:\s*(?:please|now|for me|thanks|thank you))*"


def _timer_name(raw: str | None) -> str | None:
    if not raw:
        return None
    words = [
        w
        for w in raw.split()
        if w not in ("the", "my", "a", "an", "new", "one", "all", "timer", "timers")
    ]
    name = " ".join(words).strip()
    if not name or parse_duration(name) is not None or re.search(r"\d", name):
        return None
    return name


def _set_timer(m: re.Match[str]) -> Intent | None:
    seconds = parse_duration(m.group("duration"))
    if seconds is None:
        return None
    name = _timer_name(m.groupdict().get("name") or m.groupdict().get("name2"))
    return Intent("timer_set", {"seconds": seconds, "name": name})


def _cancel_timer(m: re.Match[str]) -> Intent:
    if m.groupdict().get("all"):
        return Intent("timer_cancel", {"name": None, "all": True})
    return Intent("timer_cancel", {"name": _timer_name(m.groupdict().get("name")), "all": False})


def _remaining(m: re.Match[str]) -> Intent:
    return Intent("timer_remaining", {"name": _timer_name(m.groupdict().get("name"))})


def _volume_set(m: re.Match[str]) -> Intent | None:
    value, used = parse_number(m.group("level").split())
    if value is None or not used:
        return None
    if (
        m.group("level").split()[0:used]
        and value <= 10
        and "percent" not in m.group(0)
        and "%" not in m.group(0)
    ):
        value *= 10  # "volume five" means 50 %, like a 1-10 dial
    return Intent("volume_set", {"volume": int(max(0, min(100, round(value))))})


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], Intent | None]]


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(r"^(?:(?:hey|ok|okay|please|so|um|uh)\s+)*" + pattern + _PLEASE + r"$")


RULES: list[Rule] = [
    (
        _r(
            r"(?:stop|cancel|never ?mind|be quiet|quiet|shut up|silence|enough|that's enough)"
            r"(?:\s+(?:it|that|talking|speaking))?"
        ),
        lambda m: Intent("stop"),
    ),
    (
        _r(
            r"(?:cancel|stop|delete|remove|clear)\s+(?P<all>all\s+(?:the\s+|my\s+)?timers|"
            r"(?:the\s+|my\s+)?timers)"
        ),
        _cancel_timer,
    ),
    (
        _r(
            r"(?:cancel|stop|delete|remove|turn off|silence)\s+(?:the\s+|my\s+)?(?:(?P<name>[a-z' ]{2,30}?)\s+)?"
            r"timer"
        ),
        _cancel_timer,
    ),
    (
        _r(
            r"(?:how (?:much|long)(?: time)?(?: is| has| do i have)?(?: it)? (?:left|remaining|to go)"
            r"(?: on| for| in)?(?:\s+(?:the|my))?(?:\s+(?P<name>[a-z' ]{2,30}?))?(?:\s+timer)?"
            r"|(?:what(?:'s| is| are)?|check|list)(?: on)? (?:the |my |all )?(?:(?P<name2>[a-z' ]{2,30}?) )?"
            r"timers?(?: status)?|time left|(?:any|do i have any) timers(?: running| set)?|"
            r"(?:what|which) timers(?: do i have| are (?:running|set|on))?)"
        ),
        lambda m: Intent(
            "timer_remaining", {"name": _timer_name(m.group("name") or m.group("name2"))}
        ),
    ),
    (
        _r(
            r"(?:set|start|create|make)\s+(?:a|an|the|my)?\s*(?:new\s+)?(?:(?P<name2>[a-z' ]{2,30}?)\s+)?"
            r"(?:timer|countdown)\s+(?:for|of|to)?\s*(?P<duration>.+?)"
            r"(?:\s+(?:called|named|for the|for my|for)\s+(?P<name>[a-z' ]{2,30}))?"
        ),
        _set_timer,
    ),
    (
        _r(
            r"(?:set|start|give me|make)?\s*(?:a|an)?\s*(?P<duration>[a-z0-9. ]+?\s+"
            r"(?:seconds?|minutes?|hours?|mins?|secs?|hrs?)(?:\s+and\s+a\s+half)?)\s+"
            r"(?:(?P<name>[a-z' ]{2,30}?)\s+)?(?:timer|countdown)"
        ),
        _set_timer,
    ),
    (
        _r(
            r"(?:timer|countdown|remind me in|wake me in|tell me in)\s+(?:for\s+)?(?P<duration>.+?)"
            r"(?:\s+(?:called|named|for)\s+(?P<name>[a-z' ]{2,30}))?"
        ),
        _set_timer,
    ),
    (
        _r(
            r"(?:what(?:'s| is)? the time|what time is it|what time it is|tell me the time|"
            r"do you (?:know|have) the time|the time|time|current time|what's time)(?: now| right now)?"
        ),
        lambda m: Intent("time"),
    ),
    (
        _r(
            r"(?:what(?:'s| is)?(?: the| today's| todays)? date|what day is (?:it|today)|"
            r"what's today|what is today|today's date|todays date|the date|date|what date is it)"
            r"(?: today)?"
        ),
        lambda m: Intent("date"),
    ),
    (
        _r(
            r"(?:(?:turn|crank|pump)\s+(?:it|the volume|the sound|the music)?\s*up|louder|volume up|"
            r"(?:increase|raise)\s+(?:the\s+)?volume|speak up|be louder)(?:\s+(?:a bit|a little))?"
        ),
        lambda m: Intent("volume_up"),
    ),
    (
        _r(
            r"(?:(?:turn)\s+(?:it|the volume|the sound|the music)?\s*down|quieter|softer|volume down|"
            r"(?:decrease|lower|reduce)\s+(?:the\s+)?volume|be quieter)(?:\s+(?:a bit|a little))?"
        ),
        lambda m: Intent("volume_down"),
    ),
    (
        _r(
            r"(?:set\s+|change\s+|turn\s+)?(?:the\s+)?volume\s+(?:to\s+|at\s+)?(?P<level>[a-z0-9 ]+?)"
            r"(?:\s*(?:percent|%))?"
        ),
        _volume_set,
    ),
    (
        _r(r"(?:repeat(?: that| it)?|say (?:that|it) again|what did you say|come again|pardon)"),
        lambda m: Intent("repeat"),
    ),
    (
        _r(
            r"(?:what can you do|help|what do you do|what are you able to do|what can i say|"
            r"what can i ask you)"
        ),
        lambda m: Intent("help"),
    ),
]


def recognize_builtin(text: str) -> Intent | None:
    for pattern, build in RULES:
        match = pattern.match(text)
        if match:
            intent = build(match)
            if intent is not None:
                return intent
    return None
