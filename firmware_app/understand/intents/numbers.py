"""Spoken numbers and durations: "five minutes", "an hour and a half", "ninety seconds",
"two and a half minutes", "half an hour", "a quarter of an hour", "1 hour 30 min"."""

from __future__ import annotations

ONES = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "a": 1,
    "an": 1,
    "couple": 2,
    "dozen": 12,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
UNITS = {
    "second": 1,
    "seconds": 1,
    "sec": 1,
    "secs": 1,
    "s": 1,
    "minute": 60,
    "minutes": 60,
    "min": 60,
    "mins": 60,
    "m": 60,
    "hour": 3600,
    "hours": 3600,
    "hr": 3600,
    "hrs": 3600,
    "h": 3600,
}
_FILLER = {"a", "an", "of", "and"}


def _is_number_word(word: str) -> bool:
    return (
        word in ONES or word in TENS or word in ("hundred", "thousand") or _digits(word) is not None
    )


def _digits(word: str) -> float | None:
    try:
        value = float(word)
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def parse_number(words: list[str], start: int = 0) -> tuple[float | None, int]:
    """Read a number starting at ``words[start]``; return (value, words consumed)."""
    i = start
    if i < len(words) and (value := _digits(words[i])) is not None:
        return value, 1
    total, current, seen = 0.0, 0.0, False
    while i < len(words):
        word = words[i]
        if word in ("a", "an"):
            # "a" is a number only when a unit or "hundred" follows ("a minute", "a hundred")
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if seen or not (nxt in UNITS or nxt in ("hundred", "thousand", "couple", "dozen")):
                break
            current += 1
        elif word in ("couple", "dozen") and seen and current == 1:
            current = ONES[word]
        elif word in ONES:
            if seen and current % 10 != 0 and current < 20 and word != "oh":
                break  # "five five" is two numbers
            current += ONES[word]
        elif word in TENS:
            if seen and current % 100 != 0:
                break
            current += TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        elif (
            word == "and"
            and seen
            and i + 1 < len(words)
            and words[i + 1] in ONES | TENS
            and words[i + 1] not in ("a", "an")
            and (current >= 100 or total)
        ):
            pass  # "one hundred and five"
        elif word == "of" and seen and words[i - 1] == "couple":
            pass
        else:
            break
        seen = True
        i += 1
    if not seen:
        return None, 0
    return total + current, i - start


def parse_duration(text: str) -> float | None:
    """Seconds in a spoken duration, or None when the text names no unit of time."""
    words = text.lower().replace("-", " ").split()
    total = 0.0
    pending: float | None = None
    last_unit: int | None = None
    found = False
    i = 0
    while i < len(words):
        word = words[i]
        plural_without_number = pending is None and word.endswith("s") and len(word) > 1
        if (
            word in UNITS
            and (word not in ("s", "m", "h") or pending is not None)
            and not plural_without_number
        ):
            total += (1.0 if pending is None else pending) * UNITS[word]
            last_unit, pending, found = UNITS[word], None, True
            i += 1
            continue
        if word in ("half", "quarter", "quarters"):
            fraction = 0.5 if word == "half" else 0.25
            # Is a unit coming ("half an hour", "a quarter of an hour")?
            j = i + 1
            while j < len(words) and words[j] in _FILLER:
                j += 1
            unit_follows = j < len(words) and words[j] in UNITS
            if pending is not None and word == "half":  # "two and a half hours"
                pending += 0.5
            elif pending is not None:  # "three quarters of an hour"
                pending *= fraction
            elif unit_follows:
                pending = fraction
            elif last_unit is not None:  # "an hour and a half"
                total += fraction * last_unit
                found = True
            i += 1
            continue
        if _is_number_word(word) or (word in ("a", "an") and i + 1 < len(words)):
            value, used = parse_number(words, i)
            if value is not None and used:
                if pending is not None and word not in ("a", "an"):
                    pending = value  # a new number replaces an unused one
                elif pending is None:
                    pending = value
                i += used
                continue
        i += 1
    return total if found and total > 0 else None


def spoken_duration(seconds: float) -> str:
    """'1 hour and 30 minutes', '5 minutes', '45 seconds' (Piper reads digits well)."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    for value, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second")):
        if value:
            parts.append(f"{value} {unit}{'' if value == 1 else 's'}")
    if not parts:
        return "0 seconds"
    if hours and len(parts) == 3:  # drop seconds from long durations
        parts = parts[:2]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


DURATION_WORDS = (
    set(ONES) | set(TENS) | set(UNITS) | {"hundred", "and", "of", "half", "quarter", "quarters"}
)


def is_duration(text: str) -> bool:
    """True when ``text`` is a duration and nothing else ("five minutes", "an hour and a
    half"), so a template's wildcard that swallowed more words ("ten minutes called pasta")
    is refused instead of read loosely."""
    words = text.lower().replace("-", " ").split()
    if not words or not all(w in DURATION_WORDS or _digits(w) is not None for w in words):
        return False
    return parse_duration(text) is not None


def number_words(n: int) -> str:
    """0-999 in words, as a speech recognizer's dictionary spells them ("forty two")."""
    if n < 0 or n > 999:
        raise ValueError(f"number_words covers 0-999, not {n}")
    small = {v: k for k, v in ONES.items() if k not in ("a", "an", "oh", "couple", "dozen")}
    tens = {v: k for k, v in TENS.items()}
    if n < 20:
        return small[n]
    if n < 100:
        return tens[n - n % 10] + ("" if n % 10 == 0 else " " + small[n % 10])
    rest = n % 100
    return small[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
