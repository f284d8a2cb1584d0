"""Profiles: one setting that sets every part up for a kind of board.

``profile = "zero"`` (or ``TTBT5_PROFILE=zero``) is for a Raspberry Pi Zero 2 W: 512 MB, of
which about 400 MB are free under Raspberry Pi OS Lite, and a core several times slower than
a Pi 4's. It takes the lighter set-up of each part:

- wake word: microWakeWord for every built-in model it has (a tenth of openWakeWord's CPU,
  a few MB instead of LiteRT and three models);
- speech recognition: speech-to-phrase only, so a Vosk model on the disk is not loaded
  (open questions for an LLM need it: set ``stt.engine = "auto"`` to have both);
- "stop" without the wake word: off, which saves the second pocketsphinx decoder;
- the reply cache: 8 phrases instead of 64;
- Piper: runs of at most ``ZERO_PIPER_PHONEMES`` phonemes (the memory one synthesis adds
  follows the length of the run) and ONNX Runtime's threads sleeping between steps;
- the C heap: large blocks mapped apart, so they go back to the system when freed
  (``system/heap.py``).
- library code that only loading ran (ONNX Runtime's kernel registrations and graph
  optimizers, among others): unmapped once the engines are loaded, what runs again is
  mapped back on use (``system/code_pages.py``).

Anything set in the file or the environment still wins over the profile: the profile only
changes defaults. ``scripts/bench_profile.py`` measures both profiles against a bare process
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

ProfileName = Literal["default", "zero"]

ZERO_PIPER_PHONEMES = 20
"""Longest run of phonemes Piper synthesizes at once on the Zero (a sentence's last run up
to 25, rather than a short run of its own): about 22 MB at the peak of a run instead of
39 MB with the default 32 (``scripts/bench_profile.py``). Runs are cut at a word boundary,
so a long sentence is spoken in more pieces, each with its own melody."""

ZERO_DEFAULTS: dict[str, dict[str, Any]] = {
    "stt": {"engine": "phrases"},
    "echo": {"stop_word": False},
    "tts": {"cache_entries": 8},
}


def apply_profile(data: Any, micro_models: Sequence[str], default_models: Sequence[str]) -> Any:
    """The settings' raw values with the profile's defaults under them (a section given as
    an object rather than a table is taken as it is)."""
    if not isinstance(data, dict) or data.get("profile") != "zero":
        return data
    out = dict(data)
    for section, defaults in ZERO_DEFAULTS.items():
        given = out.get(section, {})
        if isinstance(given, dict):
            out[section] = {**defaults, **given}
    wake = out.get("wake", {})
    if isinstance(wake, dict):
        models = wake.get("models", default_models)
        engines = wake.get("engines", {})
        if isinstance(models, list) and isinstance(engines, dict):
            micro = {m: "microwakeword" for m in models if m in micro_models}
            out["wake"] = {**wake, "engines": {**micro, **engines}}
    return out
