"""microWakeWord through ``pymicro-wakeword``: the low-CPU wake word engine.

Its streaming models are small (tens of kB) and run on TFLite's C library, shipped in the
wheel, on 10 ms feature windows; one feature front end is shared by every model. On the
wake corpus it costs about a tenth of openWakeWord's CPU (docs/wake.md), which is what a
Pi Zero 2 W needs. Its scores are the library's own: the mean of the last few
probabilities, as its ``probability_cutoff`` is compared against.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from firmware_app.config.settings import WakeSettings
from firmware_app.core.errors import EngineUnavailableError, ModelMissingError
from firmware_app.listen.wake import Detector, model_name, picker_for

# Chosen on the wake corpus by scripts/bench_wake.py's rule, as for openWakeWord
# (docs/wake.md). The models' own cutoffs were alexa 0.9, hey_jarvis 0.97, hey_mycroft
# 0.95 (3.9 false accepts per hour here), okay_nabu 0.85.
MICROWAKEWORD_THRESHOLDS: dict[str, float] = {
    "hey_jarvis": 0.5,
    "alexa": 0.97,
    "hey_mycroft": 0.99,
    "okay_nabu": 0.9,
}


def _library() -> Any:
    try:
        import pymicro_wakeword
    except ImportError as exc:
        raise EngineUnavailableError(
            f"microWakeWord cannot be loaded ({exc}); install pymicro-wakeword "
            "(scripts/setup.sh) or set the model's engine to openwakeword"
        ) from exc
    return pymicro_wakeword


def load_model(name: str) -> Any:
    """A built-in microWakeWord model by name, or one described by a .json file."""
    lib = _library()
    if name.endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelMissingError(f"microWakeWord model {path} does not exist")
        return lib.MicroWakeWord.from_config(path)
    return lib.MicroWakeWord.from_builtin(lib.Model(name))


class MicroWakeScorer:
    """The models' probabilities for one frame (the highest of its 10 ms steps)."""

    def __init__(self, models: Sequence[str]) -> None:
        lib = _library()
        self._features = lib.MicroWakeWordFeatures()
        self._models = [load_model(name) for name in models]
        self.names = [model_name(name) for name in models]

    def scores(self, pcm: bytes) -> dict[str, float]:
        best = dict.fromkeys(self.names, 0.0)
        for features in self._features.process_streaming(pcm):
            for name, model in zip(self.names, self._models, strict=True):
                prob = model.process_streaming_prob(features)
                if prob is not None and prob > best[name]:
                    best[name] = float(prob)
        return best

    def reset(self) -> None:
        """Forget the features and the models' internal state (the library reloads them)."""
        self._features.reset()
        for model in self._models:
            model.reset()


class MicroWake(Detector):
    """microWakeWord on the settings' models (those the settings give to microwakeword)."""

    def __init__(self, settings: WakeSettings, models: Sequence[str] | None = None) -> None:
        chosen = list(models if models is not None else settings.models)
        scorer = MicroWakeScorer(chosen)
        super().__init__(scorer, picker_for(settings, scorer, chosen, MICROWAKEWORD_THRESHOLDS))
