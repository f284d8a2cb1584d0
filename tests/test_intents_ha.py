"""Home Assistant's own English sentences for the intents TTBT5 has (from the
``home-assistant-intents`` package, CC-BY-4.0) are understood, so a Home Assistant user's
habits carry over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin

hai = pytest.importorskip("home_assistant_intents")

# Home Assistant intent → (TTBT5 intent, the sentence blocks that fit: None is all).
# Areas, devices and "do X in 5 minutes" commands have no meaning on a lone speaker.
FITTING = {
    "HassGetCurrentTime": ("time", None),
    "HassGetCurrentDate": ("date", None),
    "HassNevermind": ("stop", None),
    "HassCancelAllTimers": ("timer_cancel", {"default"}),
    "HassCancelTimer": ("timer_cancel", {"default"}),
    "HassTimerStatus": ("timer_remaining", {"default"}),
    "HassStartTimer": (
        "timer_set",
        {"hours_only", "minutes_only", "seconds_only", "hours_minutes", "minutes_seconds"},
    ),
}


@pytest.mark.parametrize("ha_intent", sorted(FITTING))
def test_home_assistant_sentences_are_understood(ha_intent):
    from hassil import Intents
    from hassil.intents import RangeSlotList
    from hassil.sample import sample_intents

    doc = json.loads((Path(hai.__file__).parent / "data" / "en.json").read_text())
    ours, blocks = FITTING[ha_intent]
    data = [
        {"sentences": d["sentences"]}
        for d in doc["intents"][ha_intent]["data"]
        if blocks is None or d.get("metadata", {}).get("slot_combination") in blocks
    ]
    intents = Intents.from_dict({**doc, "intents": {ha_intent: {"data": data}}})
    # one number per range keeps the sample small: numbers are tested on their own
    two = {n: RangeSlotList(name=n, start=2, stop=2) for n in ("timer_hours", "timer_minutes")}
    two["timer_seconds"] = RangeSlotList(name="timer_seconds", start=2, stop=2)
    texts = [text for _, text in sample_intents(intents, slot_lists=two, language="en")]
    assert texts
    texts = texts[:: max(1, len(texts) // 400)]  # an even spread, for a quick test
    missed = [t for t in texts if getattr(recognize_builtin(normalize(t)), "name", None) != ours]
    assert missed == []
