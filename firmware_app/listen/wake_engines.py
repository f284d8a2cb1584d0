"""The wake word detector the settings ask for: openWakeWord, microWakeWord, or both when
the models are split between them (each engine loads only if it is used)."""

from __future__ import annotations

from collections.abc import Sequence

from firmware_app.config.settings import WakeEngineName, WakeSettings
from firmware_app.core.engines import Detection
from firmware_app.listen.micro_wake import MicroWake
from firmware_app.listen.wake import Detector, OpenWakeWord


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


def build_wake_detector(settings: WakeSettings) -> Detector | WakeEngines:
    """The detector for the settings: one engine, or both when models are split."""
    by_engine: dict[WakeEngineName, list[str]] = {}
    for model in settings.models:
        by_engine.setdefault(settings.engine_of(model), []).append(model)
    detectors: list[Detector] = []
    if "openwakeword" in by_engine:
        detectors.append(OpenWakeWord(settings, by_engine["openwakeword"]))
    if "microwakeword" in by_engine:
        detectors.append(MicroWake(settings, by_engine["microwakeword"]))
    return detectors[0] if len(detectors) == 1 else WakeEngines(detectors)
