"""Wake word detection: openWakeWord here, microWakeWord in ``micro_wake``, chosen per model.

The default models ship in the ``pyopen-wakeword`` and ``pymicro-wakeword`` wheels, so
nothing is downloaded. A detector runs on every idle frame, so it does little else: one
inference per 80 ms frame and a :class:`PeakPicker` per model. Refractory time lives here
too, because only the detector knows when the score that caused a detection has decayed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from firmware_app.config.files import FileRefused, check_regular
from firmware_app.config.settings import BUILTIN_WAKE_MODELS, WakeSettings
from firmware_app.core.engines import Detection
from firmware_app.core.errors import EngineUnavailableError, ModelMissingError
from firmware_app.core.messages import FRAME_SECONDS

# Chosen on the wake corpus by scripts/bench_wake.py's rule (docs/wake.md has the figures):
# the fewest false rejects plus sound-alike accepts, at most 0.5 false accepts per hour,
# never below 0.5 (openWakeWord's own recommendation).
OPENWAKEWORD_THRESHOLDS: dict[str, float] = {
    "hey_jarvis": 0.95,
    "alexa": 0.8,
    "hey_mycroft": 0.8,
    "okay_nabu": 0.5,
    "hey_rhasspy": 0.9,
}
CUSTOM_MODEL_THRESHOLD = 0.5
# A detection is reported once its score stops rising, at most this many frames after it
# first crossed the threshold, so the event carries the peak (240 ms later at worst; the
# assistant's pre-roll still holds the audio of that wait).
PEAK_HOLD_FRAMES = 3


class ScoringEngine(Protocol):
    """What the benchmark and the detectors share: raw per-model scores for one frame."""

    names: list[str]

    def scores(self, pcm: bytes) -> dict[str, float]: ...

    def reset(self) -> None: ...


def threshold_for(settings: WakeSettings, model: str, defaults: Mapping[str, float]) -> float:
    """Per-model setting, else the global setting, else the measured default."""
    if model in settings.thresholds:
        return settings.thresholds[model]
    if settings.threshold is not None:
        return settings.threshold
    return defaults.get(model_name(model), CUSTOM_MODEL_THRESHOLD)


def model_name(model: str) -> str:
    """The name a detection carries: a built-in name, or a model file's stem."""
    return model if model in BUILTIN_WAKE_MODELS else Path(model).stem


class PeakPicker:
    """Turns per-frame scores into detections that carry their peak score.

    A score over its model's threshold opens a detection; it is reported on the first frame
    whose best score no longer rises (or after ``hold_frames``) with the highest score seen.
    After a report every model is quiet for ``refractory_frames``: one utterance wakes once.
    """

    def __init__(
        self,
        thresholds: Mapping[str, float],
        refractory_frames: int,
        hold_frames: int = PEAK_HOLD_FRAMES,
    ) -> None:
        self.thresholds = dict(thresholds)
        self._refractory = refractory_frames
        self._hold = hold_frames
        self._quiet = 0
        self._open: Detection | None = None
        self._held = 0

    def update(self, scores: Mapping[str, float]) -> Detection | None:
        if self._quiet > 0:
            self._quiet -= 1
            return None
        over = [
            Detection(name, float(score))
            for name, score in scores.items()
            if score >= self.thresholds.get(name, CUSTOM_MODEL_THRESHOLD)
        ]
        best = max(over, key=lambda d: d.score, default=None)
        if self._open is None:
            if best is None:
                return None
            self._open, self._held = best, 0
            return self._fire() if self._hold == 0 else None
        if best is not None and best.score > self._open.score:
            self._open = best
            self._held += 1
            return self._fire() if self._held >= self._hold else None
        return self._fire()

    def _fire(self) -> Detection:
        assert self._open is not None
        found = Detection(self._open.model, round(self._open.score, 4))
        self._open = None
        self._quiet = self._refractory
        return found

    def reset(self) -> None:
        """Drop a detection still waiting for its peak (the audio it came from is gone)."""
        self._open = None


def packaged_models_dir() -> Path:
    try:
        import pyopen_wakeword
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EngineUnavailableError(
            "the wake word models are missing: install the pyopen-wakeword package"
        ) from exc
    return Path(pyopen_wakeword.__file__).parent / "models"


def model_path(name: str) -> Path:
    """A built-in model name or a path to a model file."""
    if name in BUILTIN_WAKE_MODELS:
        return packaged_models_dir() / f"{name}.tflite"
    path = Path(name).expanduser()
    try:
        check_regular(path, "wake.models")
    except FileRefused as exc:
        raise ModelMissingError(f"wake word model: {exc.problem}") from None
    return path


class OpenWakeWordScorer:
    """openWakeWord over one or more models: the scores of each frame, nothing decided."""

    def __init__(self, models: Sequence[str]) -> None:
        from firmware_app.listen.open_wake import OpenWakeWordStream, load_head

        paths = [model_path(name) for name in models]
        self._stream = OpenWakeWordStream(
            [load_head(p) for p in paths], [p.stem for p in paths], packaged_models_dir()
        )
        self.names = self._stream.names

    def scores(self, pcm: bytes) -> dict[str, float]:
        return self._stream.scores(pcm)

    def embeddings(self, frames: int) -> np.ndarray:
        """The front end's last ``frames`` embeddings (``wake_verifier`` reads them)."""
        return self._stream.embeddings(frames)

    def reset(self) -> None:
        """Clear the rolling buffers so the phrase that just fired cannot fire again."""
        self._stream.reset()


class Detector:
    """A scoring engine and a peak picker: the ``WakeDetector`` the assistant uses."""

    def __init__(self, scorer: ScoringEngine, picker: PeakPicker) -> None:
        self.scorer = scorer
        self.picker = picker
        self.names = scorer.names

    def detect(self, pcm: bytes) -> Detection | None:
        return self.picker.update(self.scorer.scores(pcm))

    def reset(self) -> None:
        self.scorer.reset()
        self.picker.reset()


class OpenWakeWord(Detector):
    """openWakeWord on the settings' models (those the settings give to openwakeword)."""

    def __init__(self, settings: WakeSettings, models: Sequence[str] | None = None) -> None:
        chosen = list(models if models is not None else settings.models)
        scorer = OpenWakeWordScorer(chosen)
        super().__init__(scorer, picker_for(settings, scorer, chosen, OPENWAKEWORD_THRESHOLDS))


def picker_for(
    settings: WakeSettings, scorer: ScoringEngine, chosen: list[str], defaults: dict[str, float]
) -> PeakPicker:
    """The peak picker for ``scorer``'s models: each at its threshold (the setting for the
    model, the global one, else the engine's measured default)."""
    thresholds = {
        name: threshold_for(settings, model, defaults)
        for name, model in zip(scorer.names, chosen, strict=True)
    }
    return PeakPicker(thresholds, round(settings.refractory_s / FRAME_SECONDS))
