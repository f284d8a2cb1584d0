"""Sentence templates → a JSGF grammar for the speech-to-phrase recognizer.

The recognizer may only hear what the intent matcher understands, so its grammar is
compiled from the same ``hassil`` templates: alternatives, optionals, permutations,
expansion rules and slot lists become JSGF rules; number ranges become number words;
wildcards, which a closed vocabulary cannot hold, become closed lists (spoken durations,
timer names). Words the pronunciation dictionary lacks are not guessed: the parts of a
template that need them are left out (``Grammar.missing`` names them), so the recognizer
never hears a sentence it cannot pronounce while the text matcher still understands it
from typed or open-vocabulary input.

Next to the commands sits a loop of common words (``GARBAGE_WORDS``) that other speech
falls into, so a question outside the grammar is heard as such instead of being forced
into the nearest command. Its words are spelt with a ``_`` prefix in the dictionary, so
a result that used them is recognizable. Wake words and one short word that sounds like
the end of one may come before a command: the pre-roll handed to the recognizer starts
inside the wake phrase.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    ListReference,
    Permutation,
    RuleReference,
    Sequence,
    TextChunk,
)
from hassil.intents import RangeSlotList, TextSlotList, WildcardSlotList

from firmware_app.recognize.vocabulary_en import (
    COMMON_TIMER_NAMES,
    GARBAGE_WORDS,
    WAKE_TAILS,
)
from firmware_app.understand.intents.numbers import number_words
from firmware_app.understand.intents.sentences_en import LEADING, TRAILING, WAKE_WORDS

GARBAGE_PREFIX = "_"
GARBAGE_WEIGHT = 0.1  # the command side's prior is 1; lower favors commands on doubt

NAMING_INTENTS = frozenset({"timer_set"})
"""Intents whose ``{name}`` gives a new timer its name. An expansion rule holds no
``{name}`` (it would be compiled for one kind of sentence only)."""

DURATION_UNITS = "(second|seconds|minute|minutes|hour|hours)"


@dataclass(frozen=True)
class Grammar:
    jsgf: str
    words: frozenset[str]  # every command word the recognizer can output
    missing: frozenset[str] = field(default_factory=frozenset)  # left out: not in dictionary


def _rule_name(kind: str, name: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def _under_100() -> str:
    small = "|".join(number_words(n) for n in range(1, 20))
    tens = "|".join(number_words(n) for n in range(20, 100, 10))
    units = "|".join(number_words(n) for n in range(1, 10))
    return f"({small}|({tens}) [{units}])"


def duration_rule() -> str:
    """Spoken durations the timer sentences take ("an hour and a half", "ninety seconds")."""
    # Only what English says ("a minute", "an hour", "four hours"): noise heard as "a
    # hours" or "four hour" would otherwise make a made-up part of a duration. Two parts
    # go from the larger unit to the smaller ("an hour and ten minutes"): other speech
    # was heard as "twelve hours three hours" and "five hours twelve hours".
    hours = "(<number> hours | an hour | one hour)"
    minutes = "(<number> minutes | a minute | one minute)"
    seconds = "(<number> seconds | a second | one second)"
    return (
        f"({hours} | {minutes} | {seconds}) [and a half]"
        f" | {hours} [and] ({minutes} | {seconds})"
        f" | {minutes} [and] {seconds}"
        f" | <number> and a half {DURATION_UNITS}"
        f" | half (an hour|a minute)"
        f" | (a|one|three) (quarter|quarters) of (an hour|a minute)"
        f" | a couple [of] {DURATION_UNITS}"
    )


def _words(body: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", re.sub(r"<[^>]*>", " ", body))


class _Compiler:
    def __init__(self, has_word: Callable[[str], bool], wildcards: dict[str, list[str]]) -> None:
        self.has_word = has_word
        self.wildcards = wildcards
        self.rules: dict[str, str | None] = {"number": _under_100(), "duration": duration_rule()}
        # every word the grammar holds, the fixed rules' included: the decoder's dictionary
        self.words: set[str] = {w for body in self.rules.values() for w in _words(body or "")}
        self.missing: set[str] = set()
        self.intents: list[Intents] = []
        # whether the sentence compiled now names a new timer: its {name} may then be any
        # common timer name, not only one in use (a separate rule, "<list_name_new>")
        self.naming = False

    def words_of(self, text: str) -> str | None:
        words = re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))
        for word in words:
            if not self.has_word(word):
                self.missing.add(word)
                return None
        self.words.update(words)
        return " ".join(words)

    def expr(self, exp: Expression) -> str | None:
        """JSGF for one expression; "" is nothing, None is something unpronounceable."""
        if isinstance(exp, TextChunk):
            return self.words_of(exp.text)
        if isinstance(exp, Alternative):
            options = [self.expr(item) for item in exp.items]
            kept = sorted({o for o in options if o})
            optional = exp.is_optional or "" in options
            if not kept:
                return "" if optional else None
            body = "|".join(kept)
            return f"[{body}]" if optional else f"({body})"
        if isinstance(exp, Permutation):
            orders = itertools.permutations(exp.items)
            return self.expr(Alternative(items=[Sequence(items=list(o)) for o in orders]))
        if isinstance(exp, Sequence):
            parts = [self.expr(item) for item in exp.items]
            if any(p is None for p in parts):
                return None
            return " ".join(p for p in parts if p)
        if isinstance(exp, RuleReference):
            return self.reference("rule", exp.rule_name)
        if isinstance(exp, ListReference):
            return self.reference("list", exp.list_name)
        return None

    def reference(self, kind: str, name: str) -> str | None:
        key = _rule_name(kind, name)
        if kind == "list" and name == "name" and self.naming:
            key = f"{key}_new"
        if key not in self.rules:
            self.rules[key] = None  # guards against a rule that refers to itself
            self.rules[key] = self.rule_body(kind, name)
        return None if not self.rules[key] else f"<{key}>"

    def rule_body(self, kind: str, name: str) -> str | None:
        for intents in self.intents:
            if kind == "rule" and name in intents.expansion_rules:
                return self.expr(intents.expansion_rules[name].expression) or None
            if kind == "list" and name in intents.slot_lists:
                return self.slot_list(name, intents.slot_lists[name])
        return None

    def slot_list(self, name: str, slots: object) -> str | None:
        if isinstance(slots, WildcardSlotList):
            if name == "duration":
                return "<duration>"
            fresh = COMMON_TIMER_NAMES if self.naming and name == "name" else ()
            values = [self.words_of(v) for v in {*self.wildcards.get(name, []), *fresh}]
        elif isinstance(slots, RangeSlotList):
            step = max(1, slots.step)
            values = [
                self.words_of(number_words(n)) for n in range(slots.start, slots.stop + 1, step)
            ]
        elif isinstance(slots, TextSlotList):
            values = [self.expr(v.text_in) for v in slots.values]
        else:
            return None
        kept = sorted({v for v in values if v})
        return "(" + "|".join(kept) + ")" if kept else None


def build_grammar(
    intents: Iterable[Intents],
    has_word: Callable[[str], bool],
    wildcards: dict[str, list[str]] | None = None,
) -> Grammar:
    """One JSGF grammar holding every sentence of ``intents`` plus the garbage loop.

    ``wildcards`` gives the words a wildcard list stands for (``name``: the names of the
    timers there are). A sentence that names a new timer (``NAMING_INTENTS``) may also
    name it one of the common timer names; every other sentence with a name refers to a
    timer that exists, so it holds only the names in use, and none when no timer has a
    name: "when does the soup timer go off" with no soup timer is no command to hear
    ("when does the supermarket close" was heard so, in five voices of the corpus).
    """
    compiler = _Compiler(has_word, dict(wildcards or {}))
    sentences: set[str] = set()
    for group in intents:
        compiler.intents = [group, *compiler.intents]
        for intent_name, intent in group.intents.items():
            compiler.naming = intent_name in NAMING_INTENTS
            for data in intent.data:
                for sentence in data.sentences:
                    body = compiler.expr(sentence.expression)
                    if body:
                        sentences.add(body)
    compiler.naming = False
    # The names of timers in use, alone: the answer to "Which one?" ("pasta"). Only
    # those, not every common name, or any single word could pass for a command.
    in_use = [compiler.words_of(n) for n in (wildcards or {}).get("name", [])]
    sentences.update(f"{n} [one|timer]" for n in in_use if n)
    from hassil.parse_expression import parse_sentence

    lead = compiler.expr(parse_sentence(LEADING).expression) or ""
    trail = compiler.expr(parse_sentence(TRAILING).expression) or ""
    garbage = [w for w in GARBAGE_WORDS if has_word(w)]
    # The pre-roll starts inside the wake phrase: its end ("...vis") comes before the
    # command, heard as wake words or one short word (which the result then drops).
    wake = [w for w in WAKE_WORDS if has_word(w)]
    tails = [w for w in WAKE_TAILS if w in garbage]
    lines = [
        "#JSGF V1.0;",
        "grammar commands;",
        "public <utterance> = [<wake>] [<wake>] [<tail>] <said>;",
        f"<said> = /1/ <command> | /{GARBAGE_WEIGHT}/ <garbage>;",
        "<wake> = (" + " | ".join(wake) + ");",
        "<tail> = (" + " | ".join(GARBAGE_PREFIX + w for w in tails) + ");",
        f"<command> = {lead} (" + " | ".join(sorted(sentences)) + f") {trail};",
        "<garbage> = (" + " | ".join(GARBAGE_PREFIX + w for w in garbage) + ")+;",
    ]
    lines += [f"<{key}> = {body};" for key, body in sorted(compiler.rules.items()) if body]
    return Grammar("\n".join(lines) + "\n", frozenset(compiler.words), frozenset(compiler.missing))
