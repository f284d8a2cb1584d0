#!/usr/bin/env python3
"""What Home Assistant's names cost the Wyoming recognizer, printed as JSON.

For each ``--entities`` count, in a fresh process: the speech-to-phrase recognizer is
built as ``ttbt5 wyoming`` builds it (the speaker's own sentences), rebuilt once with
an empty home (the baseline: a rebuild's own allocations), then rebuilt with a made-up
home of that many entities (names of two or three ordinary words, "upstairs bathroom
ceiling light", in 20 areas and 3 floors, lights, switches, covers, sensors, a
thermostat per area). Reported: the grammar build times, the search graph's size and
the process RSS the home's names add over the baseline. ``--distinct``: the worst case,
names whose words all differ (nothing shared in the search graph).

    .venv/bin/python scripts/bench_home_grammar.py [--entities 50 200 1000] [--distinct]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware_app.edges.wyoming.home_names import Entity, Home  # noqa: E402

ROOMS = [
    "kitchen", "living room", "bedroom", "bathroom", "office", "hall", "garage", "garden",
    "dining room", "guest room", "attic", "basement", "laundry", "nursery", "porch", "study",
    "pantry", "library", "den", "cellar",
]  # fmt: skip
THINGS = [
    ("light", "light"), ("light", "lamp"), ("light", "ceiling light"), ("light", "spotlight"),
    ("light", "strip"), ("switch", "fan"), ("switch", "heater"), ("switch", "kettle"),
    ("switch", "speaker"), ("cover", "blinds"), ("cover", "curtains"), ("sensor", "humidity"),
    ("sensor", "temperature"), ("climate", "thermostat"), ("media_player", "radio"),
]  # fmt: skip
MODIFIERS = ["", "upper", "lower", "left", "right", "big", "small", "old", "new", "main",
             "front", "back", "corner", "desk", "wall", "floor", "window", "door"]  # fmt: skip


def made_up_home(n: int) -> Home:
    entities = []
    for i in range(n):
        room = ROOMS[i % len(ROOMS)]
        domain, thing = THINGS[(i // len(ROOMS)) % len(THINGS)]
        modifier = MODIFIERS[(i // (len(ROOMS) * len(THINGS))) % len(MODIFIERS)]
        name = " ".join(w for w in (room, modifier, thing) if w)
        entities.append(Entity(domain, (name,)))
    return Home(tuple(entities), tuple(ROOMS), ("upstairs", "downstairs", "ground floor"))


def distinct_home(n: int) -> Home:
    """The worst case: every name three different words of the dictionary, and an area
    per five entities (two words each): nothing for the grammar to share."""
    import random

    from firmware_app.recognize.pronunciations import model_dir

    lines = (model_dir() / "cmudict-en-us.dict").read_text().splitlines()
    words = [w for w in (line.split(" ", 1)[0] for line in lines) if w.isalpha()]
    pick = random.Random(1).sample(words, 3 * n + 2 * (n // 5))
    domains = [d for d, _ in THINGS]
    entities = tuple(
        Entity(domains[i % len(domains)], (" ".join(pick[3 * i : 3 * i + 3]),)) for i in range(n)
    )
    rest = pick[3 * n :]
    areas = tuple(" ".join(rest[2 * i : 2 * i + 2]) for i in range(n // 5))
    return Home(entities, areas, ())


def one(n: int, distinct: bool) -> dict[str, object]:
    import psutil
    from loguru import logger

    from firmware_app.config.settings import Settings
    from firmware_app.edges.wyoming.home_sentences import HomeSentences
    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources

    logger.remove()
    process = psutil.Process()
    sentences = HomeSentences()
    stt = PhraseTranscriber(phrase_grammar_sources(Settings(), sentences.intents))
    first_ms = stt.build_ms
    stt.rebuild()  # the baseline: the same work with no names
    base_graph = stt.graph_size
    base_rss = process.memory_info().rss
    home = distinct_home(n) if distinct else made_up_home(n)
    sentences.update(home)
    stt.rebuild()
    return {
        "entities": n,
        "distinct_words": distinct,
        "names": home.size,
        "speaker_grammar_build_ms": round(first_ms),
        "home_grammar_build_ms": round(stt.build_ms),
        "graph_states_arcs": [base_graph, stt.graph_size],
        "rss_added_mb": round((process.memory_info().rss - base_rss) / 2**20, 1),
        "words_left_out": sorted(stt.grammar.missing)[:10],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument(
        "--distinct", action="store_true", help="names of words that all differ (worst case)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.distinct)))
        return 0
    runs = []
    for n in args.entities:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), *(["--distinct"] if args.distinct else [])],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps({"loadavg": load, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
