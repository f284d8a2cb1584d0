"""Custom home-automation intents from config: sentence templates with slot lists.

``turn (on|off) the {room} light`` with ``room = [kitchen, bedroom, living room]`` matches
"turn on the living room light" with slots ``{"group1": "on", "room": "living room"}``; the
topic, payload and reply templates are filled from those slots. Optional words go in
square brackets: ``[please] turn (on|off) the {room} light``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from firmware_app.config import CustomIntent
from firmware_app.errors import ConfigError
from firmware_app.intents import Intent, normalize


@dataclass(frozen=True)
class CompiledIntent:
    spec: CustomIntent
    patterns: tuple[re.Pattern[str], ...]


def _compile_template(template: str, slots: dict[str, list[str]], owner: str) -> re.Pattern[str]:
    out: list[str] = []
    group = 0
    pos = 0
    text = normalize_template(template)
    token = re.compile(r"\(([^()]+)\)|\[([^\[\]]+)\]|\{([a-z_][a-z0-9_]*)\}|([^()\[\]{}]+)")
    for m in token.finditer(text):
        if m.start() != pos:
            raise ConfigError(f"intents.{owner}: cannot read template {template!r}")
        pos = m.end()
        if m.group(1) is not None:
            group += 1
            options = "|".join(re.escape(normalize(o)) for o in m.group(1).split("|"))
            out.append(f"(?P<group{group}>{options})")
        elif m.group(2) is not None:
            out.append(f"(?:{re.escape(normalize(m.group(2)))} )?")
        elif m.group(3) is not None:
            name = m.group(3)
            if name not in slots:
                raise ConfigError(
                    f"intents.{owner}: template uses {{{name}}} but slots has no {name!r}"
                )
            values = sorted((normalize(v) for v in slots[name]), key=len, reverse=True)
            out.append(f"(?P<{name}>{'|'.join(re.escape(v) for v in values)})")
        else:
            out.append(re.escape(m.group(4)))
    if pos != len(text):
        raise ConfigError(f"intents.{owner}: cannot read template {template!r}")
    pattern = "".join(out).replace(r"\ ", " ")
    pattern = re.sub(r" +", " ", pattern).strip()
    pattern = pattern.replace(")? ", ")?")  # "[please] turn" → "(?:please )?turn"
    return re.compile(r"^(?:please )?" + pattern + r"(?: please)?$")


def normalize_template(template: str) -> str:
    return " ".join(template.lower().split())


class CustomIntents:
    def __init__(self, specs: list[CustomIntent]) -> None:
        self.compiled: list[CompiledIntent] = []
        for spec in specs:
            patterns = tuple(_compile_template(s, spec.slots, spec.name) for s in spec.sentences)
            self.compiled.append(CompiledIntent(spec, patterns))
            for tmpl in (spec.topic, spec.payload, spec.reply):
                _check_placeholders(tmpl, spec)

    def recognize(self, text: str) -> Intent | None:
        for item in self.compiled:
            for pattern in item.patterns:
                m = pattern.match(text)
                if m:
                    slots = {k: v for k, v in m.groupdict().items() if v is not None}
                    return Intent(item.spec.name, slots)
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


class _Filler(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _check_placeholders(template: str, spec: CustomIntent) -> None:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as exc:
        raise ConfigError(f"intents.{spec.name}: bad template {template!r}: {exc}") from None
    groups = max((s.count("(") for s in spec.sentences), default=0)
    allowed = set(spec.slots) | {f"group{i}" for i in range(1, groups + 1)}
    for name in names:
        if name not in allowed:
            raise ConfigError(
                f"intents.{spec.name}: {{{name}}} in {template!r} is not a slot "
                f"(allowed: {', '.join(sorted(allowed)) or 'none'})"
            )
