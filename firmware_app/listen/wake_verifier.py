"""A second look at openWakeWord's near misses, on openWakeWord's own features.

openWakeWord's hey_jarvis needs 0.95 to keep false wakes rare, and voices far from the
ones it was trained on (formant and diphone synthesis, a voice in noise) often peak below
that, between 0.1 and 0.95, where ordinary talk seldom reaches: in about four hours of
household talk, a few dozen peaks. At such a peak a small linear model reads what
openWakeWord's model read, the last 16 embeddings of the shared front end (1.28 s of
speech features), and tells the wake phrase from talk and sound-alikes. It costs one dot
product per 80 ms step and no second front end.

The model ships in the package (``firmware_app/data``); ``scripts/train_wake_verifier.py``
renders its examples from Debian's voices, trains it, and reports it with each voice
family left out in turn (docs/wake.md). ``wake_verify`` decides with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from firmware_app.core.errors import ModelMissingError

DATA = Path(__file__).resolve().parent.parent / "data"
FRAMES = 16  # embeddings read: as many as openWakeWord's own hey_jarvis model reads
VERIFIER_FILES: dict[str, Path] = {"hey_jarvis": DATA / "hey_jarvis_verifier.npz"}


class Embeddings(Protocol):
    """The front end the verifier reads: openWakeWord's latest embeddings."""

    def embeddings(self, frames: int) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class LinearVerifier:
    """Logistic regression on standardized embeddings: ``score`` is a probability."""

    frames: int
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    @classmethod
    def load(cls, path: Path) -> LinearVerifier:
        """The model in ``path`` (numpy arrays, no pickles), its shapes checked."""
        try:
            with np.load(path, allow_pickle=False) as data:  # a lone array: TypeError
                frames = int(data["frames"])
                arrays = [
                    np.asarray(data[k], dtype=np.float32) for k in ("mean", "scale", "weights")
                ]
                bias = float(data["bias"])
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ModelMissingError(f"wake word verifier {path.name}: {exc}") from None
        size = frames * 96
        if frames < 1 or any(a.shape != (size,) for a in arrays) or not np.all(arrays[1] > 0):
            raise ModelMissingError(f"wake word verifier {path.name}: not a {frames}x96 model")
        return cls(frames, arrays[0], arrays[1], arrays[2], bias)

    def score(self, features: np.ndarray) -> float:
        z = (features.reshape(-1) - self.mean) / self.scale
        return float(1.0 / (1.0 + np.exp(-(float(z @ self.weights) + self.bias))))


class VerifierScorer:
    """The verifiers' scores on the front end's embeddings of the step just scored: a
    scoring engine read right after openWakeWord's, on the same frame."""

    def __init__(self, source: Embeddings, verifiers: Mapping[str, LinearVerifier]) -> None:
        self.names = list(verifiers)
        self._source = source
        self._verifiers = dict(verifiers)

    def scores(self, pcm: bytes) -> dict[str, float]:
        return {
            name: verifier.score(self._source.embeddings(verifier.frames))
            for name, verifier in self._verifiers.items()
        }

    def reset(self) -> None:
        """Nothing of its own: it reads the front end, which the detector resets."""


def packaged_verifiers(models: list[str]) -> dict[str, LinearVerifier]:
    """The shipped verifiers for those of ``models`` that have one."""
    return {m: LinearVerifier.load(VERIFIER_FILES[m]) for m in models if m in VERIFIER_FILES}
