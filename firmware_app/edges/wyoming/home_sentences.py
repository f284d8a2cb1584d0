"""Home Assistant's English sentences for a home's own devices, for the Wyoming recognizer.

When Home Assistant uses the speaker's recognizer in its pipeline, what the recognizer
hears goes to Home Assistant's conversation agent, so it must hear what that agent
understands: "turn on the kitchen light", "turn off the lights in the living room", "set
the bedroom light to fifty percent", "what is the temperature in the kitchen", with the
names of the entities, areas and floors of this home. The sentences below are written in
the shapes of Home Assistant's English intents (HassTurnOn, HassTurnOff, HassLightSet,
HassGetState, HassClimateGetTemperature, covers, locks, scenes, scripts: the intents
repository's ``sentences/en``, CC-BY-4.0, credited in NOTICE), so every transcript they
give is a sentence Home Assistant's agent matches (``tests/test_wyoming_home.py`` checks
each shape against its sentence data). Only the common shapes: each one is searched on
every frame, and a smaller grammar is heard more reliably.

The speaker's own assistant does not hear these: its local brain cannot carry them out.
"""

from __future__ import annotations

import threading
from typing import Any

from hassil import Intents

from firmware_app.edges.wyoming.home_names import Home

SWITCHABLE = (
    "light", "switch", "fan", "input_boolean", "media_player", "climate", "humidifier",
    "water_heater", "automation", "siren", "remote",
)  # fmt: skip
"""Domains Home Assistant's agent turns on and off by name."""
ON_OFF = ("light", "switch", "fan", "input_boolean")
"""Domains it says are on or off ("is the kitchen light on")."""
STATELESS = ("scene", "script")
"""Domains that have no state to ask for ("what is the movie night" is no question)."""

EXPANSION_RULES: dict[str, str] = {
    "home_the": "[the|my|our]",
    "home_turn": "(turn|switch)",
    "home_lights": "(light|lights)",
    "home_set": "(set|change)",
    "home_percent": "{home_brightness} [percent]",
    "home_what_is": "(what is|what's)",
}

SENTENCES: dict[str, list[str]] = {
    "turn_on_off": [  # HassTurnOn, HassTurnOff: a device by name, or where it is
        "<home_turn> (on|off) <home_the> {home_device}",
        "<home_turn> <home_the> {home_device} (on|off)",
        "<home_turn> (on|off) <home_the> {home_device} in <home_the> {home_area}",
        "<home_turn> (on|off) <home_the> {home_area} {home_device}",
        "(activate|deactivate) <home_the> {home_device}",
    ],
    "lights_in": [  # HassTurnOn, HassTurnOff: the lights of an area or a floor
        "<home_turn> (on|off) [all] <home_the> {home_area} <home_lights>",
        "<home_turn> <home_the> {home_area} <home_lights> (on|off)",
        "<home_turn> (on|off) [all] <home_the> <home_lights> in <home_the> {home_area}",
        "<home_turn> (on|off) [all] <home_the> <home_lights> on <home_the> {home_floor} [floor]",
    ],
    "brightness": [  # HassLightSet
        "<home_set> <home_the> {home_light} [brightness] to <home_percent>",
        "<home_set> the brightness of <home_the> {home_light} to <home_percent>",
        "<home_set> <home_the> {home_area} [brightness] to <home_percent>",
        "<home_set> the brightness (in|of) <home_the> {home_area} to <home_percent>",
        "<home_set> [all] <home_the> <home_lights> in <home_the> {home_area} to <home_percent>",
    ],
    "state": [  # HassGetState
        "<home_what_is> <home_the> {home_any}",
        "<home_what_is> the (state|value) of <home_the> {home_any}",
        "is <home_the> {home_switch} (on|off)",
    ],
    "temperature": [  # HassClimateGetTemperature
        "<home_what_is> the [current] temperature (in|of) <home_the> {home_area}",
        "<home_what_is> the [current] temperature of <home_the> {home_climate}",
        "how (hot|cold|warm) is it in <home_the> {home_area}",
    ],
    "open_close": [  # HassTurnOn/HassTurnOff of covers, locks; scenes and scripts
        "(open|close) <home_the> {home_cover}",
        "(lock|unlock) <home_the> {home_lock}",
        "activate <home_the> {home_scene} [scene]",
        "(run|start) <home_the> {home_script} [script]",
    ],
}


def home_intents(home: Home) -> Intents:
    """The sentences with this home's names in their lists (names are plain words,
    ``home_names.spoken_name``, so none can read as template syntax)."""
    lists: dict[str, Any] = {
        "home_device": home.names_of(SWITCHABLE),
        "home_light": home.names_of(["light"]),
        "home_climate": home.names_of(["climate"]),
        "home_cover": home.names_of(["cover"]),
        "home_lock": home.names_of(["lock"]),
        "home_scene": home.names_of(["scene"]),
        "home_script": home.names_of(["script"]),
        "home_switch": home.names_of(ON_OFF),
        "home_any": home.names_of(d for d in home.domains() if d not in STATELESS),
        "home_area": list(home.areas),
        "home_floor": list(home.floors),
    }
    doc: dict[str, Any] = {
        "language": "en",
        "intents": {name: {"data": [{"sentences": s}]} for name, s in SENTENCES.items()},
        "lists": {
            **{name: {"values": values} for name, values in lists.items()},
            "home_brightness": {"range": {"from": 0, "to": 100}},
        },
        "expansion_rules": EXPANSION_RULES,
    }
    return Intents.from_dict(doc)


class HomeSentences:
    """The home's sentences the recognizer's grammar is built with, replaced whole when
    Home Assistant's names change (read from the recognizer's thread, replaced from the
    server's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._home = Home()
        self._intents: tuple[Intents, ...] = ()

    @property
    def home(self) -> Home:
        return self._home

    def update(self, home: Home) -> bool:
        """Take ``home``; False when it is the one held already (no rebuild needed)."""
        if home == self._home:
            return False
        intents = (home_intents(home),) if home.size else ()
        with self._lock:
            self._home, self._intents = home, intents
        return True

    def intents(self) -> tuple[Intents, ...]:
        with self._lock:
            return self._intents
