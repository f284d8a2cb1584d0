"""The home's names as Home Assistant gives them: exposed entities (their names and
aliases, by domain), areas and floors, checked and bounded.

Everything here comes from another machine and is read as untrusted: a field of the
wrong type is skipped, a name is kept only when it is a few plain English words the
recognizer can say (letters, apostrophes, spaces), and the whole is capped at
``max_names`` names, so a home with 50,000 entities, or a reply made up to hurt, costs a
bounded grammar.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_NAME_CHARS = 48
"""Longest name kept, in characters after cleaning ("living room ceiling light" is 25)."""
MAX_NAME_WORDS = 6
MAX_RAW_CHARS = 200
"""A name longer than this as sent is not looked at."""
MAX_ALIASES = 8
"""Aliases kept per entity, area or floor."""

_ID = re.compile(r"^[a-z0-9_]{1,64}\.[a-z0-9_]{1,200}$")


@dataclass(frozen=True)
class Entity:
    domain: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Home:
    """What the recognizer learns from Home Assistant; equal homes need no new grammar."""

    entities: tuple[Entity, ...] = ()
    areas: tuple[str, ...] = ()
    floors: tuple[str, ...] = ()
    left_out: int = field(default=0, compare=False)
    """Names beyond ``max_names`` (or unsayable), for the log."""

    @property
    def size(self) -> int:
        return sum(len(e.names) for e in self.entities) + len(self.areas) + len(self.floors)

    def domains(self) -> set[str]:
        return {e.domain for e in self.entities}

    def names_of(self, domains: Iterable[str] | None = None) -> list[str]:
        """Every entity name (of ``domains``, when given), once each, sorted."""
        wanted = None if domains is None else set(domains)
        return sorted(
            {n for e in self.entities if wanted is None or e.domain in wanted for n in e.names}
        )


def spoken_name(raw: object) -> str | None:
    """A name as the recognizer says it and Home Assistant matches it back (its matching
    ignores case and punctuation): lower-case words of letters and apostrophes. Accents
    are dropped ("Café" → "cafe"); a name with digits or other scripts is None (the
    English dictionary has no words for it)."""
    if not isinstance(raw, str) or len(raw) > MAX_RAW_CHARS:
        return None
    text = unicodedata.normalize("NFKD", raw)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[_\-./,:;!?&+()\[\]\"]", " ", text).replace("’", "'")
    words = text.split()
    if not words or len(words) > MAX_NAME_WORDS:
        return None
    if not all(re.fullmatch(r"[a-z]+(?:'[a-z]+)?", w) for w in words):
        return None
    name = " ".join(words)
    return name if len(name) <= MAX_NAME_CHARS else None


def _names(primary: object, aliases: object) -> list[str]:
    """The primary name, then the aliases in a stable order (Home Assistant keeps them as
    a set: the same aliases must make the same home, or every look-up would rebuild)."""
    raw = [primary]
    if isinstance(aliases, list):
        raw += sorted(a for a in aliases if isinstance(a, str) and len(a) <= MAX_RAW_CHARS)
        raw = raw[: 1 + MAX_ALIASES]
    kept: list[str] = []
    for value in raw:
        name = spoken_name(value)
        if name is not None and name not in kept:
            kept.append(name)
    return kept


def exposed_ids(result: object, assistant: str = "conversation") -> list[str]:
    """Entity ids exposed to ``assistant`` in ``homeassistant/expose_entity/list``'s
    result, sorted (so the cap always keeps the same ones)."""
    exposed = result.get("exposed_entities") if isinstance(result, dict) else None
    if not isinstance(exposed, dict):
        return []
    return sorted(
        entity_id
        for entity_id, to in exposed.items()
        if isinstance(entity_id, str)
        and _ID.match(entity_id)
        and isinstance(to, dict)
        and to.get(assistant) is True
    )


DISABLED = None
"""In ``registry_names``: the entity is disabled, and left out."""


def registry_names(result: object) -> dict[str, tuple[str | None, list[str]] | None]:
    """{entity id: (its registry name, its aliases)} from
    ``config/entity_registry/get_entries``; ``DISABLED`` for a disabled entity. An entity
    the registry does not hold is absent."""
    names: dict[str, tuple[str | None, list[str]] | None] = {}
    if not isinstance(result, dict):
        return names
    for entity_id, entry in result.items():
        if not isinstance(entity_id, str) or not isinstance(entry, dict):
            continue
        if entry.get("disabled_by") is not None:
            names[entity_id] = DISABLED
            continue
        primary = spoken_name(entry.get("name") or entry.get("original_name"))
        said = _names(None, entry.get("aliases"))
        names[entity_id] = (primary, said)
    return names


def state_names(event: object) -> dict[str, str]:
    """{entity id: friendly name} from ``subscribe_entities``' first event (compressed
    states: ``{"a": {id: {"s": state, "a": attributes}}}``)."""
    added = event.get("a") if isinstance(event, dict) else None
    names: dict[str, str] = {}
    if not isinstance(added, dict):
        return names
    for entity_id, state in added.items():
        attributes = state.get("a") if isinstance(state, dict) else None
        if isinstance(entity_id, str) and isinstance(attributes, dict):
            name = spoken_name(attributes.get("friendly_name"))
            if name is not None:
                names[entity_id] = name
    return names


def place_names(result: object, key_name: str = "name") -> list[str]:
    """Names and aliases from ``config/area_registry/list`` or ``floor_registry/list``."""
    found: list[str] = []
    if not isinstance(result, list):
        return found
    for item in result:
        if isinstance(item, dict):
            found += [n for n in _names(item.get(key_name), item.get("aliases")) if n not in found]
    return found


def build_home(
    ids: list[str],
    registry: Mapping[str, tuple[str | None, list[str]] | None],
    friendly: Mapping[str, str],
    areas: list[str],
    floors: list[str],
    max_names: int,
) -> Home:
    """The home, capped at ``max_names`` names: areas and floors first (few, and each
    stands for many devices), then entities in id order. An entity's names are what Home
    Assistant's own agent matches: its state's name (friendly name) and its aliases; the
    registry's name when the state has none."""
    budget = max_names
    kept_areas, kept_floors = areas[:budget], floors[: max(0, budget - len(areas))]
    budget -= len(kept_areas) + len(kept_floors)
    left_out = len(areas) - len(kept_areas) + len(floors) - len(kept_floors)
    entities: list[Entity] = []
    for entity_id in ids:
        if entity_id in registry and registry[entity_id] is DISABLED:
            continue
        primary, aliases = registry.get(entity_id) or (None, [])
        own = friendly.get(entity_id) or primary
        names = [n for n in [own, *aliases] if n]
        names = [n for i, n in enumerate(names) if n not in names[:i]]
        if not names:
            left_out += 1
            continue
        if len(names) > budget:
            left_out += len(names)
            continue
        budget -= len(names)
        entities.append(Entity(entity_id.split(".", 1)[0], tuple(names)))
    return Home(tuple(entities), tuple(kept_areas), tuple(kept_floors), left_out)
