#!/usr/bin/env python3
"""Wake word figures on the wake corpus, printed as JSON.

Run: .venv/bin/python scripts/bench_wake.py [--size full|ci] > wake.json

For each engine (openWakeWord, microWakeWord) and each of its built-in models, as if that
model alone were configured:
- at its configured (default) threshold: false-reject rate on the positives (by voice and
  condition), false accepts per hour of negative audio (ordinary speech, noise and other
  models' sound-alikes), and accepts of its own sound-alikes ("Hey Jarvie");
- a threshold sweep with the same figures, and the threshold the rule below picks;
- CPU seconds per second of audio for one model through the product's detector, next to
  the bare library doing the same work on the same audio (the ratio is the adapter's
  overhead), and for all the engine's models at once.

Threshold rule: the fewest false rejects plus sound-alike accepts (as fractions), among
thresholds from 0.5 up (below that a two-hour corpus of synthetic speech cannot vouch for
a home's false wakes) with at most 0.5 false accepts per hour; ties go higher.
Both engines together (``[wake] verify = "both"``): for each model with a two-engine rule,
openWakeWord's near misses confirmed by microWakeWord, with the same figures at the rule
in the product, a sweep of rules (openWakeWord's threshold, the two floors, the span)
with the one the same threshold rule picks, the woken count on the speech corpus's
requests (tests/speech_corpus.py, the CI set) and the CPU of both engines at once.
The verifier's second look (``[wake] second_look``) is part of the product's figures;
they are also given without it, and for a sweep of its threshold at the rule.

``--only cpu`` repeats just the CPU figures (cheap, but still run it alone).
The full corpus has over an hour of negative audio; it is cached after the first run
(``$TTBT5_WAKE_CORPUS_CACHE``). It is CPU-heavy: run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the corpus builder and its scoring

import wake_corpus  # noqa: E402
import wake_eval  # noqa: E402

from firmware_app.config.settings import BUILTIN_WAKE_MODELS, MICRO_WAKE_MODELS, WakeSettings  # noqa: E402
from firmware_app.core.messages import FRAME_SECONDS  # noqa: E402
from firmware_app.listen.micro_wake import MICROWAKEWORD_THRESHOLDS, MicroWakeScorer  # noqa: E402
from firmware_app.listen.wake import (  # noqa: E402
    OPENWAKEWORD_THRESHOLDS,
    OpenWakeWordScorer,
    packaged_models_dir,
)
from firmware_app.listen.wake_engines import build_wake_detector  # noqa: E402
from firmware_app.listen.wake_verifier import VerifierScorer, packaged_verifiers  # noqa: E402
from firmware_app.listen.wake_verify import (  # noqa: E402
    VERIFY_RULES,
    VerifyRule,
)

ENGINES = {
    "openwakeword": (OpenWakeWordScorer, list(BUILTIN_WAKE_MODELS), OPENWAKEWORD_THRESHOLDS),
    "microwakeword": (MicroWakeScorer, list(MICRO_WAKE_MODELS), MICROWAKEWORD_THRESHOLDS),
}
SWEEP = {
    "openwakeword": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
    "microwakeword": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99],
}
VERIFY_SWEEP = {
    "threshold": [0.9, 0.95],
    "open_floor": [0.3, 0.4, 0.5, 0.6, 0.7],
    "micro_floor": [0.2, 0.3, 0.5, 0.7, 0.9],
    "span_frames": [3, 5, 8],
}
SECOND_LOOK_SWEEP = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
LOOK = "/second_look"  # a trace's name for the verifier's scores of a model
MAX_FA_PER_HOUR = 0.5
MIN_THRESHOLD = 0.5
CPU_SLICE_S = 600


def _alike_rate(figures: dict) -> float:
    hits, clips = figures["sound_alike_accepts"].split("/")
    return int(hits) / int(clips)


def pick(sweep: dict[float, dict]) -> float | None:
    allowed = [
        (f["frr"] + _alike_rate(f), -t)
        for t, f in sweep.items()
        if f["fa_per_hour"] <= MAX_FA_PER_HOUR and t >= MIN_THRESHOLD
    ]
    return -min(allowed)[1] if allowed else None


def model_figures(
    corpus: wake_corpus.Corpus, traces: list, model: str, threshold: float, refractory: int
) -> dict:
    """One model alone at one threshold, decided by the product's PeakPicker."""
    found = [
        wake_eval.replay({model: trace[model]}, {model: threshold}, refractory) for trace in traces
    ]
    return wake_eval.tally(corpus, found[0], found[1], [model])[model].figures(corpus)


def bare_openwakeword_predictor() -> tuple[str, Callable[[bytes], object]]:
    """The bare library's loop on hey_jarvis: openwakeword's ``predict`` where that package
    is installed and loads (Python 3.11 with numpy 1), else pyopen-wakeword's own streaming
    classes on its bundled TFLite library. Returns (which, predict one frame)."""
    shared = packaged_models_dir()
    try:
        from openwakeword.model import Model

        model = Model(
            wakeword_models=[str(shared / "hey_jarvis.tflite")],
            inference_framework="tflite",
            melspec_model_path=str(shared / "melspectrogram.tflite"),
            embedding_model_path=str(shared / "embedding_model.tflite"),
        )
    except (ImportError, AttributeError, SystemError):  # absent, or tflite-runtime for numpy 1
        from pyopen_wakeword import Model as Builtin
        from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures

        features = OpenWakeWordFeatures.from_builtin()
        wake = OpenWakeWord.from_builtin(Builtin.HEY_JARVIS)

        def streaming(pcm: bytes) -> object:
            return [list(wake.process_streaming(e)) for e in features.process_streaming(pcm)]

        return "pyopen-wakeword (its bundled TFLite library)", streaming
    return "openwakeword", lambda pcm: model.predict(np.frombuffer(pcm, dtype=np.int16))


def bare_openwakeword(audio: np.ndarray) -> float:
    _, predict = bare_openwakeword_predictor()
    start = time.process_time()
    for pcm in wake_eval.frames(audio):
        predict(pcm)
    return time.process_time() - start


def bare_microwakeword(audio: np.ndarray) -> float:
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

    model, features = MicroWakeWord.from_builtin(Model.HEY_JARVIS), MicroWakeWordFeatures()
    start = time.process_time()
    for pcm in wake_eval.frames(audio):
        for window in features.process_streaming(pcm):
            model.process_streaming(window)
    return time.process_time() - start


def product(engine: str, audio: np.ndarray, verify: str = "off") -> float:
    """The product's detector for hey_jarvis on one engine; with ``verify = "both"`` the
    default's second looks too (microWakeWord and the verifier), else the engine alone."""
    settings = WakeSettings(
        models=["hey_jarvis"],
        engines={"hey_jarvis": engine},  # type: ignore[dict-item]
        verify=verify,  # type: ignore[arg-type]
        second_look=verify == "both",
    )
    detector = build_wake_detector(settings)
    start = time.process_time()
    for pcm in wake_eval.frames(audio):
        detector.detect(pcm)
    return time.process_time() - start


def cpu(engine: str, audio: np.ndarray, rounds: int = 2) -> dict:
    """Best of ``rounds`` (the machine is shared): product and bare library, interleaved."""
    bare = bare_openwakeword if engine == "openwakeword" else bare_microwakeword
    ours, lib = [], []
    for _ in range(rounds):
        lib.append(bare(audio))
        ours.append(product(engine, audio))
    seconds = len(audio) / wake_corpus.RATE
    return {
        "audio_s": round(seconds, 1),
        "cpu_s_per_audio_s": round(min(ours) / seconds, 5),
        "bare_library_cpu_s_per_audio_s": round(min(lib) / seconds, 5),
        "ratio_to_bare_library": round(min(ours) / min(lib), 3),
    }


def cpu_verified(audio: np.ndarray, rounds: int = 2) -> dict:
    """hey_jarvis heard by both engines (``verify = "both"``) against openWakeWord alone."""
    both, alone = [], []
    for _ in range(rounds):
        alone.append(product("openwakeword", audio))
        both.append(product("openwakeword", audio, verify="both"))
    seconds = len(audio) / wake_corpus.RATE
    return {
        "audio_s": round(seconds, 1),
        "cpu_s_per_audio_s": round(min(both) / seconds, 5),
        "openwakeword_alone_cpu_s_per_audio_s": round(min(alone) / seconds, 5),
        "ratio_to_openwakeword_alone": round(min(both) / min(alone), 3),
    }


def cpu_slice(corpus: wake_corpus.Corpus) -> np.ndarray:
    """Ordinary talk, sound-alikes and noise: what an idle detector hears all day."""
    return corpus.negatives.audio[: CPU_SLICE_S * wake_corpus.RATE]


def engine_figures(name: str, corpus: wake_corpus.Corpus, traces: list) -> dict:
    """The engine's figures; its traces (positives, negatives) are appended to ``traces``."""
    make, models, defaults = ENGINES[name]
    scorer = make(models)
    cpu_all = 0.0
    for stream in (corpus.positives, corpus.negatives):
        trace, spent = wake_eval.trace(scorer, stream)
        traces.append(trace)
        cpu_all += spent
    refractory = round(WakeSettings().refractory_s / FRAME_SECONDS)
    audio_s = corpus.positives.seconds + corpus.negatives.seconds
    out: dict = {"models": {}, "sweep": {}, "suggested_threshold": {}}
    for model in models:
        threshold = defaults[model]
        out["models"][model] = {
            "threshold": threshold,
            **model_figures(corpus, traces, model, threshold, refractory),
        }
        sweep = {t: model_figures(corpus, traces, model, t, refractory) for t in SWEEP[name]}
        out["sweep"][model] = {
            str(t): {k: f[k] for k in ("frr", "fa_per_hour", "sound_alike_accepts")}
            for t, f in sweep.items()
        }
        out["suggested_threshold"][model] = pick(sweep)
    out["cpu_one_model"] = cpu(name, cpu_slice(corpus))
    out["cpu_all_models"] = {
        "models": len(models),
        "cpu_s_per_audio_s": round(cpu_all / audio_s, 5),
    }
    return out


class WithSecondLook:
    """openWakeWord's scores and, under ``model + LOOK``, its verifier's on the same step."""

    def __init__(self, models: list[str]) -> None:
        self._open = OpenWakeWordScorer(models)
        self._look = VerifierScorer(self._open, packaged_verifiers(models))
        self.names = [*self._open.names, *(m + LOOK for m in self._look.names)]

    def scores(self, pcm: bytes) -> dict[str, float]:
        scores = self._open.scores(pcm)
        scores.update({m + LOOK: v for m, v in self._look.scores(pcm).items()})
        return scores

    def reset(self) -> None:
        self._open.reset()


def verify_traces(name: str, corpus: wake_corpus.Corpus) -> list:
    """Just the two-engine models' traces (positives, negatives) on one engine, with
    the verifier's beside openWakeWord's."""
    make = WithSecondLook if name == "openwakeword" else ENGINES[name][0]
    scorer = make(list(VERIFY_RULES))
    return [wake_eval.trace(scorer, stream)[0] for stream in (corpus.positives, corpus.negatives)]


def speech_traces(models: list[str]) -> list[tuple[str, dict, dict]]:
    """The speech corpus's requests (the CI set, as scripts/bench_speech.py runs by
    default), each through both engines from a reset: (voice family, open, micro)."""
    import speech_corpus

    items = [i for i in speech_corpus.items("ci") if i.kind == "command"]
    open_scorer, micro_scorer = WithSecondLook(models), MicroWakeScorer(models)
    out = []
    for item in items:
        stream = wake_corpus.Stream(item.audio)
        out.append(
            (item.family, wake_eval.trace(open_scorer, stream)[0],
             wake_eval.trace(micro_scorer, stream)[0])
        )  # fmt: skip
    return out


def verify_figures(corpus: wake_corpus.Corpus, traces: dict[str, list]) -> dict:
    """Each model with a two-engine rule: its figures at the rule, alone on each engine at
    its default on the speech corpus, and a sweep of rules with the one the rule picks."""
    refractory = round(WakeSettings().refractory_s / FRAME_SECONDS)
    models = list(VERIFY_RULES)
    speech = speech_traces(models)
    out: dict = {"speech_requests": len(speech), "models": {}}
    for model in models:
        opened = [t[model] for t in traces["openwakeword"]]
        looked = [t.get(model + LOOK) for t in traces["openwakeword"]]
        micro = [t[model] for t in traces["microwakeword"]]
        default = OPENWAKEWORD_THRESHOLDS[model]
        rule = VERIFY_RULES[model]

        product_fused = [
            wake_eval.fused_trace(model, o, m, default, rule, v)
            for o, m, v in zip(opened, micro, looked, strict=True)
        ]
        fast = [
            wake_eval.fused_fast(o, m, default, rule, v)
            for o, m, v in zip(opened, micro, looked, strict=True)
        ]
        assert all(np.array_equal(a, b) for a, b in zip(product_fused, fast, strict=True)), (
            "sweep differs"
        )
        by_family: dict[str, list[int]] = {}
        said = [
            wake_eval.fused_trace(model, o[model], m[model], default, rule, o.get(model + LOOK))
            for _, o, m in speech
        ]
        for (family, _, _), hit in zip(
            speech, wake_eval.woken(model, default, said, refractory), strict=True
        ):
            cell = by_family.setdefault(family, [0, 0])
            cell[0] += hit
            cell[1] += 1
        alone = {
            "openwakeword": wake_eval.woken(
                model, default, [o[model] for _, o, _ in speech], refractory
            ),
            "microwakeword": wake_eval.woken(
                model, MICROWAKEWORD_THRESHOLDS[model], [m[model] for _, _, m in speech], refractory
            ),
        }
        sweep: dict[str, dict] = {}
        for threshold, open_floor, micro_floor, span in (
            (t, of, mf, sp)
            for t in VERIFY_SWEEP["threshold"]
            for of in VERIFY_SWEEP["open_floor"]
            for mf in VERIFY_SWEEP["micro_floor"]
            for sp in VERIFY_SWEEP["span_frames"]
            if of < t
        ):
            candidate = VerifyRule(open_floor, micro_floor, span)  # without the second look
            fused = [
                wake_eval.fused_fast(o, m, threshold, candidate)
                for o, m in zip(opened, micro, strict=True)
            ]
            said = [
                wake_eval.fused_fast(o[model], m[model], threshold, candidate) for _, o, m in speech
            ]
            f = model_figures(corpus, [{model: x} for x in fused], model, threshold, refractory)
            sweep[f"{threshold}/{open_floor}/{micro_floor}/{span}"] = {
                **{k: f[k] for k in ("frr", "fa_per_hour", "sound_alike_accepts")},
                "speech_woken": sum(wake_eval.woken(model, threshold, said, refractory)),
            }
        chosen = pick_rule(sweep)

        heard = (opened, micro, looked)
        second_look = {
            str(t): rule_figures(
                corpus, model, default, heard, speech, replace(rule, verifier_threshold=t)
            )
            for t in SECOND_LOOK_SWEEP
        }
        out["models"][model] = {
            "threshold": default,
            "rule": asdict(rule),
            **model_figures(
                corpus, [{model: f} for f in product_fused], model, default, refractory
            ),
            "speech_woken": f"{sum(c[0] for c in by_family.values())}/{len(speech)}",
            "speech_woken_by_family": {k: f"{a}/{n}" for k, (a, n) in by_family.items()},
            "speech_woken_alone": {k: f"{sum(v)}/{len(v)}" for k, v in alone.items()},
            "without_second_look": rule_figures(
                corpus, model, default, heard, speech, rule, look=False
            ),
            "second_look_sweep": second_look,
            "sweep": sweep,
            "suggested_rule": chosen,
        }
    out["cpu"] = cpu_verified(cpu_slice(corpus))
    return out


def rule_figures(
    corpus: wake_corpus.Corpus,
    model: str,
    threshold: float,
    heard: tuple[list, list, list],
    speech: list[tuple[str, dict, dict]],
    rule: VerifyRule,
    look: bool = True,
) -> dict:
    """The corpus figures and the speech requests woken at one rule, from the traces
    ``heard`` (openWakeWord, microWakeWord, the verifier), with or without the verifier."""
    refractory = round(WakeSettings().refractory_s / FRAME_SECONDS)
    fused = [
        wake_eval.fused_fast(o, m, threshold, rule, v if look else None)
        for o, m, v in zip(*heard, strict=True)
    ]
    said = [
        wake_eval.fused_fast(
            o[model], m[model], threshold, rule, o.get(model + LOOK) if look else None
        )
        for _, o, m in speech
    ]
    f = model_figures(corpus, [{model: x} for x in fused], model, threshold, refractory)
    return {
        **{k: f[k] for k in ("frr", "fa_per_hour", "sound_alike_accepts")},
        "speech_woken": sum(wake_eval.woken(model, threshold, said, refractory)),
    }


def pick_rule(sweep: dict[str, dict]) -> str | None:
    """The threshold rule, over rules: fewest false rejects plus sound-alike accepts at
    most 0.5 false accepts per hour; ties (to 0.001: the FRR is rounded) go to more
    speech requests woken, then to the stricter rule (higher threshold and floors,
    shorter span)."""

    def strictness(key: str) -> tuple[float, ...]:
        threshold, open_floor, micro_floor, span = (float(x) for x in key.split("/"))
        return (threshold, open_floor, micro_floor, -span)

    allowed = [
        (
            round(f["frr"] + _alike_rate(f), 3),
            -f["speech_woken"],
            tuple(-x for x in strictness(k)),
            k,
        )
        for k, f in sweep.items()
        if f["fa_per_hour"] <= MAX_FA_PER_HOUR
    ]
    return min(allowed)[-1] if allowed else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["ci", "full"], default="full")
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--only", choices=["all", "cpu", "verify"], default="all")
    args = parser.parse_args()
    started = time.monotonic()
    corpus = wake_corpus.build(list(BUILTIN_WAKE_MODELS), args.size)
    spans = corpus.negatives.spans
    report: dict = {
        "corpus": {
            "size": args.size,
            "positive_clips": len(corpus.positives.spans),
            "positive_s": round(corpus.positives.seconds, 1),
            "negative_s": round(corpus.negatives.seconds, 1),
            "ordinary_speech_s": round(
                sum(s.end - s.start for s in spans if s.tag == "ordinary"), 1
            ),
            "noise_s": round(sum(s.end - s.start for s in spans if s.tag == "noise"), 1),
            "sound_alike_clips": sum(s.tag == "sound-alike" for s in spans),
            "build_s": round(time.monotonic() - started, 1),
        },
        "engines": {},
    }
    traces: dict[str, list] = {}
    for name in ENGINES if args.engine == "both" else [args.engine]:
        if args.only == "cpu":
            report["engines"][name] = {"cpu_one_model": cpu(name, cpu_slice(corpus))}
        elif args.only == "verify":
            traces[name] = verify_traces(name, corpus)
        else:
            traces[name] = []
            report["engines"][name] = engine_figures(name, corpus, traces[name])
    if args.only == "cpu":
        report["verify"] = {"cpu": cpu_verified(cpu_slice(corpus))}
    elif len(traces) == len(ENGINES):
        report["verify"] = verify_figures(corpus, traces)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
