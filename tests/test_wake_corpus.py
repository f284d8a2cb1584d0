"""The wake word regression set: the short corpus through both real engines, at the
configured thresholds, with every built-in model listening at once (the refractory time is
shared, as on a device): each engine alone, and openWakeWord with its near misses
confirmed by microWakeWord (``verify = "both"``) and by the verifier (``second_look``), the
default.

The counts are the ones measured: a change to an engine, a model, a threshold or the peak
picking that makes any of them worse fails here (a count that gets better passes, so a
machine whose floating point differs in the last bit can only pass by doing as well).
When a change improves them, replace EXPECTED with the new counts and say why in the
commit (docs/wake.md has the full figures from scripts/bench_wake.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import wake_corpus
from wake_eval import run, tally

from firmware_app.config.settings import BUILTIN_WAKE_MODELS, MICRO_WAKE_MODELS, WakeSettings
from firmware_app.listen.wake_engines import build_wake_detector

KEYS = ("rejected", "false_accepts", "sound_alike_accepts", "confusions")
EXPECTED: dict[str, dict[str, tuple]] = {
    # model: (false rejects of 15, false accepts, own sound-alikes accepted, confusions)
    "openwakeword": {
        "hey_jarvis": (4, 0, "19/60", 0),
        "alexa": (3, 0, "32/60", 0),
        "hey_mycroft": (9, 1, "21/60", 0),
        "okay_nabu": (3, 0, "6/60", 0),
        "hey_rhasspy": (11, 0, "25/60", 0),
    },
    # openWakeWord with hey_jarvis's near misses confirmed by microWakeWord and by the
    # verifier (the default)
    "both": {
        "hey_jarvis": (0, 0, "32/60", 0),  # microWakeWord alone: (2, 0, "24/60", 0)
        "alexa": (3, 0, "32/60", 0),
        "hey_mycroft": (9, 1, "21/60", 0),
        "okay_nabu": (3, 0, "6/60", 0),
        "hey_rhasspy": (11, 0, "25/60", 0),
    },
    "microwakeword": {
        "hey_jarvis": (5, 0, "13/60", 0),
        "alexa": (0, 0, "12/60", 0),
        "hey_mycroft": (6, 0, "15/60", 0),
        "okay_nabu": (4, 0, "27/60", 0),
    },
}


@pytest.fixture(scope="module")
def corpus() -> wake_corpus.Corpus:
    return wake_corpus.build(list(BUILTIN_WAKE_MODELS), "ci")


@pytest.mark.parametrize(
    ("engine", "models"),
    [
        ("openwakeword", BUILTIN_WAKE_MODELS),
        ("both", BUILTIN_WAKE_MODELS),
        ("microwakeword", MICRO_WAKE_MODELS),
    ],
)
def test_counts_on_the_regression_set(corpus, engine, models):
    settings = WakeSettings(
        models=list(models),
        engines=dict.fromkeys(
            models, "microwakeword" if engine == "microwakeword" else "openwakeword"
        ),
        verify="both" if engine == "both" else "off",
        second_look=engine == "both",
    )
    detector = build_wake_detector(settings)
    found = tally(
        corpus, run(detector, corpus.positives), run(detector, corpus.negatives), list(models)
    )
    counts = {m: tuple(t.figures(corpus)[k] for k in KEYS) for m, t in found.items()}
    assert counts.keys() == EXPECTED[engine].keys()
    worse = {
        m: (counts[m], EXPECTED[engine][m])
        for m in counts
        if any(
            _errors(got) > _errors(want)
            for got, want in zip(counts[m], EXPECTED[engine][m], strict=True)
        )
    }
    assert not worse, f"more errors than measured (got, expected): {worse}"
    if counts != EXPECTED[engine]:
        print(f"fewer errors than EXPECTED for {engine}: {counts}")  # update EXPECTED


def _errors(figure: int | str) -> int:
    """A count, or the numerator of a "k/n" figure."""
    return int(str(figure).split("/")[0])


def test_corpus_holds_what_it_says(corpus):
    pos, neg = corpus.positives.spans, corpus.negatives.spans
    assert {s.model for s in pos} == set(BUILTIN_WAKE_MODELS)
    per_model = len(wake_corpus.voices("ci")) * len(wake_corpus.CONDITIONS_CI)
    assert all(sum(s.model == m for s in pos) == per_model for m in BUILTIN_WAKE_MODELS)
    assert {s.tag.split("/")[1] for s in pos} == set(wake_corpus.CONDITIONS_CI)
    assert {s.tag for s in neg} == {"sound-alike", "ordinary", "noise"}
    assert all(s.model is None for s in neg)
    assert {s.imitates for s in neg if s.tag == "sound-alike"} == set(BUILTIN_WAKE_MODELS)
    assert corpus.negatives.seconds > 600


def test_noise_is_mixed_at_the_stated_snr():
    clip = wake_corpus._pad(wake_corpus.render("Alexa.", ("espeak", "en-us", 175, 50)), 0.5, 1)
    noise = wake_corpus.Noise()
    for snr in wake_corpus.SNRS:
        noisy = wake_corpus.condition(clip, f"snr{snr}", noise, "test|snr")
        added = noisy.astype(np.float64) - clip
        measured = 20 * np.log10(wake_corpus.rms(clip) / np.sqrt(np.mean(added**2)))
        assert measured == pytest.approx(snr, abs=0.5)


def test_reverb_keeps_length_and_smears_the_end():
    clip = wake_corpus._pad(wake_corpus.render("Alexa.", ("piper", 1.0)), 0.2, 1.0)
    wet = wake_corpus.condition(clip, "reverb", wake_corpus.Noise(), "test|reverb")
    assert len(wet) == len(clip)
    tail = slice(len(clip) - 16000, len(clip) - 12000)  # just after the word ends
    assert np.abs(wet[tail]).mean() > np.abs(clip[tail]).mean()
