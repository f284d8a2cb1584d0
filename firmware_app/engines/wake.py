"""Wake word detection with openWakeWord on its tflite models.

The default models ship in the ``pyopen-wakeword`` wheel, so nothing is downloaded. The
detector runs on every idle frame, so it does nothing else: one ``predict`` per 80 ms frame
and a comparison. Refractory time lives here too, because only the detector knows when the
score that caused a detection has decayed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_app.config import BUILTIN_WAKE_MODELS, WakeSettings
from firmware_app.engines import Detection
from firmware_app.errors import EngineUnavailableError, ModelMissingError
from firmware_app.messages import FRAME_SECONDS


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
    if not path.is_file():
        raise ModelMissingError(f"wake word model {path} does not exist")
    return path


class OpenWakeWord:
    """openWakeWord over one or more models; each detection names the model that fired."""

    def __init__(self, settings: WakeSettings) -> None:
        try:
            from openwakeword.model import Model
        except ImportError as exc:
            raise EngineUnavailableError(
                f"openWakeWord cannot be loaded ({exc}); reinstall with 'scripts/setup.sh'"
            ) from exc
        paths = [model_path(name) for name in settings.models]
        framework = "onnx" if all(p.suffix == ".onnx" for p in paths) else "tflite"
        shared = packaged_models_dir()
        self._model = Model(
            wakeword_models=[str(p) for p in paths],
            inference_framework=framework,
            melspec_model_path=str(shared / f"melspectrogram.{framework}"),
            embedding_model_path=str(shared / f"embedding_model.{framework}"),
        )
        self.names = list(self._model.models.keys())
        self._threshold = settings.threshold
        self._refractory_frames = round(settings.refractory_s / FRAME_SECONDS)
        self._quiet_frames = 0

    def process(self, pcm: bytes) -> Detection | None:
        scores = self._model.predict(np.frombuffer(pcm, dtype=np.int16))
        if self._quiet_frames > 0:
            self._quiet_frames -= 1
            return None
        best_name, best_score = max(scores.items(), key=lambda item: item[1])
        if best_score < self._threshold:
            return None
        self._quiet_frames = self._refractory_frames
        return Detection(model=best_name, score=round(float(best_score), 4))

    def reset(self) -> None:
        """Clear the model's rolling buffers so the phrase that just fired cannot fire again."""
        self._model.reset()
