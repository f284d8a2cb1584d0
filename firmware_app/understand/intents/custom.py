"""Custom home-automation intents from config, in Home Assistant's sentence format.

``turn (on|off) the {room} light`` is a Home Assistant sentence template: ``(a|b)``
alternatives, ``[optional words]``, ``{list}`` slots whose values come from ``slots``
(Home Assistant's ``lists``), ``<rule>`` for the built-in expansion rules (``<the>``,
``<what_is>``...). It is matched by ``hassil``, like Home Assistant matches custom
sentences, and the topic, payload and reply templates are filled from the slots.

The earlier TTBT5 format, where ``{group1}`` in the topic, payload or reply named the
first ``(a|b)`` group of a sentence, is still read: each numbered group a placeholder
uses becomes a slot of that name with the group's words as values.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from hassil import Intents, recognize_all
from hassil.errors import HassilError
from hassil.expression import Expression, Group, RuleReference
from hassil.parser import ParseError

from firmware_app.config.settings import CustomIntent
from firmware_app.core.errors import ConfigError
from firmware_app.understand.intents import Intent, normalize
from firmware_app.understand.intents.sentences_en import EXPANSION_RULES, SKIP_WORDS

_GROUP = re.compile(r"\(([^()\[\]{}<>;]+)\)")
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_][A-Za-z0-9_]*)?\}")


@dataclass(frozen=True)
class CompiledIntent:
    spec: CustomIntent
    sentences: tuple[str, ...]  # in Home Assistant's format (old groups made slots)
    lists: dict[str, list[str]]


def _placeholders(spec: CustomIntent) -> list[str]:
    names = []
    for tmpl in (spec.topic, spec.payload, spec.reply):
        try:
            names += [f for _, f, _, _ in string.Formatter().parse(tmpl) if f]
        except ValueError as exc:
            raise ConfigError(f"intents.{spec.name}: bad template {tmpl!r}: {exc}") from None
    return names


def _upgrade(spec: CustomIntent) -> CompiledIntent:
    """Turn old-format numbered groups into named slots; check every slot has values."""
    lists = {name: [normalize(v) for v in values] for name, values in spec.slots.items()}
    used = {int(p[5:]) for p in _placeholders(spec) if re.fullmatch(r"group[1-9][0-9]*", p)}
    sentences = []
    for sentence in spec.sentences:
        count = 0

        def numbered(m: re.Match[str]) -> str:
            nonlocal count
            count += 1
            if count not in used:
                return m.group(0)
            values = [normalize(v) for v in m.group(1).split("|")]
            lists.setdefault(f"group{count}", [])
            lists[f"group{count}"] += [v for v in values if v not in lists[f"group{count}"]]
            return "{" + f"group{count}" + "}"

        sentences.append(_GROUP.sub(numbered, " ".join(sentence.lower().split())))
    for sentence in sentences:
        for name in _SLOT.findall(sentence):
            if name not in lists:
                raise ConfigError(
                    f"intents.{spec.name}: template uses {{{name}}} but slots has no {name!r}"
                )
    return CompiledIntent(spec, tuple(sentences), lists)


class CustomIntents:
    """The user's sentences, compiled once; ``recognize`` then ``action`` for MQTT."""

    def __init__(self, specs: list[CustomIntent]) -> None:
        self.compiled = [_upgrade(spec) for spec in specs]
        for item in self.compiled:
            _check_placeholders(item)
        doc: dict[str, Any] = {
            "language": "en",
            "intents": {
                item.spec.name: {"data": [{"sentences": list(item.sentences)}]}
                for item in self.compiled
            },
            "lists": {},
            "expansion_rules": EXPANSION_RULES,
            "skip_words": SKIP_WORDS,
        }
        for item in self.compiled:
            for name, values in item.lists.items():
                known = doc["lists"].setdefault(name, {"values": []})["values"]
                known += [v for v in values if v not in known]
        self._order = {item.spec.name: i for i, item in enumerate(self.compiled)}
        try:
            self.intents = Intents.from_dict(doc)
            for intent in self.intents.intents.values():
                for data in intent.data:
                    for sentence in data.sentences:  # hassil parses on first use
                        _check_rules(sentence.expression, self.intents.expansion_rules)
        except (HassilError, ParseError, ValueError, KeyError) as exc:
            names = ", ".join(i.spec.name for i in self.compiled)
            raise ConfigError(
                f"intents ({names}): cannot read a sentence template: {exc}"
            ) from None

    @property
    def lists(self) -> dict[str, list[str]]:
        """Every slot's values, for the speech recognizer's grammar."""
        merged: dict[str, list[str]] = {}
        for item in self.compiled:
            for name, values in item.lists.items():
                merged.setdefault(name, [])
                merged[name] += [v for v in values if v not in merged[name]]
        return merged

    def recognize(self, text: str) -> Intent | None:
        if not self.compiled or not text:
            return None
        results = sorted(
            recognize_all(text, self.intents, language="en"),
            key=lambda r: self._order.get(r.intent.name, len(self._order)),
        )
        for result in results:
            slots = {name: str(e.value) for name, e in result.entities.items()}
            item = self.compiled[self._order[result.intent.name]]
            lists = item.lists.items()
            if all(slots[name] in values for name, values in lists if name in slots):
                return Intent(result.intent.name, slots)
        return None

    def action(self, intent: Intent) -> tuple[str, str, str] | None:
        """(topic, payload, reply) for a recognized custom intent."""
        for item in self.compiled:
            if item.spec.name == intent.name:
                fill = _Filler(intent.slots)
                fmt = string.Formatter()
                return (
                    fmt.vformat(item.spec.topic, (), fill),
                    fmt.vformat(item.spec.payload, (), fill),
                    fmt.vformat(item.spec.reply, (), fill),
                )
        return None


def _check_rules(exp: Expression, rules: dict[str, Any]) -> None:
    if isinstance(exp, RuleReference) and exp.rule_name not in rules:
        raise ValueError(f"<{exp.rule_name}> is not an expansion rule ({', '.join(sorted(rules))})")
    if isinstance(exp, Group):
        for item in exp.items:
            _check_rules(item, rules)


class _Filler(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _check_placeholders(item: CompiledIntent) -> None:
    allowed = set(item.lists)
    for name in _placeholders(item.spec):
        if name not in allowed:
            raise ConfigError(
                f"intents.{item.spec.name}: {{{name}}} in the topic, payload or reply is not "
                f"a slot (allowed: {', '.join(sorted(allowed)) or 'none'})"
            )
