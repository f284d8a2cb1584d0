"""The wake word detector the settings ask for: openWakeWord, microWakeWord, or both when
the models are split between them (each engine loads only if it is used), with
openWakeWord's near misses confirmed by microWakeWord (``verify = "both"``) and by the
verifier on its own features (``second_look``) where a rule for the model was measured
(``wake_verify``)."""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger

from firmware_app.config.settings import MICRO_WAKE_MODELS, WakeEngineName, WakeSettings
from firmware_app.core.engines import Detection
from firmware_app.core.errors import ModelMissingError
from firmware_app.core.messages import FRAME_SECONDS
from firmware_app.listen.micro_wake import MicroWake, MicroWakeScorer
from firmware_app.listen.wake import (
    OPENWAKEWORD_THRESHOLDS,
    Detector,
    OpenWakeWord,
    OpenWakeWordScorer,
    PeakPicker,
    threshold_for,
)
from firmware_app.listen.wake_verifier import (
    VERIFIER_FILES,
    LinearVerifier,
    VerifierScorer,
    packaged_verifiers,
)
from firmware_app.listen.wake_verify import VERIFY_RULES, VerifiedScorer


class WakeEngines:
    """Several detectors heard together (models split between engines): the best wins."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = list(detectors)
        self.names = [name for d in self.detectors for name in d.names]

    def detect(self, pcm: bytes) -> Detection | None:
        found = [d for d in (det.detect(pcm) for det in self.detectors) if d is not None]
        return max(found, key=lambda d: d.score, default=None)

    def reset(self) -> None:
        for detector in self.detectors:
            detector.reset()


def verified_models(settings: WakeSettings, models: Sequence[str]) -> list[str]:
    """The openWakeWord models microWakeWord confirms: with ``verify = "both"``, those it
    has and a measured rule exists for."""
    if settings.verify != "both":
        return []
    return [m for m in models if m in VERIFY_RULES and m in MICRO_WAKE_MODELS]


def second_looked_models(settings: WakeSettings, models: Sequence[str]) -> list[str]:
    """The openWakeWord models the verifier looks at again: with ``second_look``, those
    it has a model and a measured rule for."""
    if not settings.second_look:
        return []
    return [m for m in models if m in VERIFY_RULES and m in VERIFIER_FILES]


def loaded_verifiers(models: list[str]) -> dict[str, LinearVerifier]:
    """The shipped verifiers of ``models``; none, with one warning, when a file is broken
    or missing: the second look only adds wakes, so the wake word works without it."""
    try:
        return packaged_verifiers(models)
    except ModelMissingError as exc:
        logger.warning("wake word: no second look ({}); reinstall to restore it", exc)
        return {}


def verified_open_wake_word(settings: WakeSettings, models: Sequence[str]) -> Detector:
    """openWakeWord on ``models``, its near misses confirmed by microWakeWord and by the
    verifier, each for the models it looks at."""
    chosen = list(models)
    checked = verified_models(settings, chosen)
    verifiers = loaded_verifiers(second_looked_models(settings, chosen))
    looked = list(verifiers)
    open_scorer = OpenWakeWordScorer(chosen)
    thresholds = {  # by the names detections carry (a custom model's file stem)
        name: threshold_for(settings, model, OPENWAKEWORD_THRESHOLDS)
        for name, model in zip(open_scorer.names, chosen, strict=True)
    }
    scorer = VerifiedScorer(
        open_scorer,
        MicroWakeScorer(checked) if checked else None,
        {m: VERIFY_RULES[m] for m in dict.fromkeys([*checked, *looked])},
        thresholds,
        VerifierScorer(open_scorer, verifiers) if verifiers else None,
    )
    picker = PeakPicker(thresholds, round(settings.refractory_s / FRAME_SECONDS))
    return Detector(scorer, picker)


def build_wake_detector(settings: WakeSettings) -> Detector | WakeEngines:
    """The detector for the settings: one engine, or both when models are split or
    verified."""
    by_engine: dict[WakeEngineName, list[str]] = {}
    for model in settings.models:
        by_engine.setdefault(settings.engine_of(model), []).append(model)
    detectors: list[Detector] = []
    if "openwakeword" in by_engine:
        models = by_engine["openwakeword"]
        if verified_models(settings, models) or second_looked_models(settings, models):
            detectors.append(verified_open_wake_word(settings, models))
        else:
            detectors.append(OpenWakeWord(settings, models))
    if "microwakeword" in by_engine:
        detectors.append(MicroWake(settings, by_engine["microwakeword"]))
    return detectors[0] if len(detectors) == 1 else WakeEngines(detectors)
