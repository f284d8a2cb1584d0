"""One TensorFlow Lite model: its input in, its output out, on one thread.

``tflite-runtime`` has no wheel for Python 3.13 and holds numpy below 2, so the models run
on LiteRT (``ai-edge-litert``, its successor from the same project, wheels for 3.11-3.14 on
aarch64 and x86-64), or, where that is not installed, on the TFLite C library that the
``pyopen-wakeword`` wheel ships, bound here through ctypes. Both give the same scores; the
C library's build has no XNNPACK and runs openWakeWord's embedding model 3-4 times slower
on x86-64 (docs/wake.md), which is why LiteRT comes first. Each model runs on one thread,
as the wake word loop is one of several on a core.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from firmware_app.core.errors import EngineUnavailableError, ModelMissingError

_P = ctypes.c_void_p
_I32 = ctypes.c_int32
_SIZE = ctypes.c_size_t
_OK = 0
_FLOAT32 = 1  # kTfLiteFloat32


def library_path() -> Path:
    """The TFLite C library inside the installed ``pyopen-wakeword`` package."""
    try:
        import pyopen_wakeword
    except ImportError as exc:
        raise EngineUnavailableError(
            f"openWakeWord cannot be loaded ({exc}); reinstall with 'scripts/setup.sh'"
        ) from exc
    found = sorted((Path(pyopen_wakeword.__file__).parent / "lib").glob("*tensorflowlite_c.*"))
    if not found:
        raise EngineUnavailableError(
            "the pyopen-wakeword package has no TensorFlow Lite library for this machine "
            "(64-bit Linux is needed)"
        )
    return found[0]


@functools.cache
def load_library() -> ctypes.CDLL:
    """The C library with the signatures used here (loaded once per process)."""
    path = library_path()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise EngineUnavailableError(f"cannot load {path.name}: {exc}") from exc
    signatures: dict[str, tuple[list[type], type | None]] = {
        "TfLiteModelCreateFromFile": ([ctypes.c_char_p], _P),
        "TfLiteModelDelete": ([_P], None),
        "TfLiteInterpreterOptionsCreate": ([], _P),
        "TfLiteInterpreterOptionsSetNumThreads": ([_P, _I32], None),
        "TfLiteInterpreterOptionsDelete": ([_P], None),
        "TfLiteInterpreterCreate": ([_P, _P], _P),
        "TfLiteInterpreterDelete": ([_P], None),
        "TfLiteInterpreterResizeInputTensor": ([_P, _I32, ctypes.POINTER(_I32), _I32], _I32),
        "TfLiteInterpreterAllocateTensors": ([_P], _I32),
        "TfLiteInterpreterInvoke": ([_P], _I32),
        "TfLiteInterpreterGetInputTensor": ([_P, _I32], _P),
        "TfLiteInterpreterGetOutputTensor": ([_P, _I32], _P),
        "TfLiteTensorType": ([_P], _I32),
        "TfLiteTensorNumDims": ([_P], _I32),
        "TfLiteTensorDim": ([_P, _I32], _I32),
        "TfLiteTensorByteSize": ([_P], _SIZE),
        "TfLiteTensorCopyFromBuffer": ([_P, _P, _SIZE], _I32),
        "TfLiteTensorCopyToBuffer": ([_P, _P, _SIZE], _I32),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = result
    return lib


class TfLiteRunner(Protocol):
    """A float32 model with one input and one output."""

    input_shape: tuple[int, ...]

    def resize(self, shape: Sequence[int]) -> None: ...

    def run(self, x: np.ndarray) -> np.ndarray: ...


def load_tflite(path: Path, input_shape: Sequence[int] | None = None) -> TfLiteRunner:
    """The model on LiteRT when it is installed, else on pyopen-wakeword's C library."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return CLibraryModel(path, input_shape)
    return LiteRtModel(path, input_shape)


class LiteRtModel:
    """The model on LiteRT's interpreter (``ai-edge-litert``)."""

    def __init__(self, path: Path, input_shape: Sequence[int] | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if not path.is_file():
            raise ModelMissingError(f"wake word model {path} does not exist")
        self.name = path.name
        try:
            self._interpreter: Any = Interpreter(model_path=str(path), num_threads=1)
        except ValueError as exc:
            raise ModelMissingError(f"{path} is not a TensorFlow Lite model ({exc})") from exc
        details = self._interpreter.get_input_details()[0]
        self._in = details["index"]
        self._out = self._interpreter.get_output_details()[0]["index"]
        self.input_shape: tuple[int, ...] = ()
        self.resize(input_shape or tuple(int(n) for n in details["shape"]))

    def resize(self, shape: Sequence[int]) -> None:
        """Give the input this shape (a change reallocates the model's tensors)."""
        shape = tuple(int(n) for n in shape)
        if shape == self.input_shape:
            return
        try:
            self._interpreter.resize_tensor_input(self._in, list(shape), strict=True)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelMissingError(f"{self.name}: cannot take an input of shape {shape}") from exc
        self.input_shape = shape

    def run(self, x: np.ndarray) -> np.ndarray:
        """The output for ``x`` (resized to fit ``x``'s shape when it differs)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.resize(x.shape)
        self._interpreter.set_tensor(self._in, x)
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._out))


class CLibraryModel:
    """The model on the TFLite C library of ``pyopen-wakeword``, through ctypes."""

    def __init__(self, path: Path, input_shape: Sequence[int] | None = None) -> None:
        if not path.is_file():
            raise ModelMissingError(f"wake word model {path} does not exist")
        self._lib = lib = load_library()
        self._model = lib.TfLiteModelCreateFromFile(str(path).encode())
        if not self._model:
            raise ModelMissingError(f"{path} is not a TensorFlow Lite model")
        options = lib.TfLiteInterpreterOptionsCreate()
        lib.TfLiteInterpreterOptionsSetNumThreads(options, 1)
        self._interpreter = lib.TfLiteInterpreterCreate(self._model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        if not self._interpreter:
            lib.TfLiteModelDelete(self._model)
            raise ModelMissingError(f"{path}: TensorFlow Lite cannot run this model")
        self.name = path.name
        self._input = lib.TfLiteInterpreterGetInputTensor(self._interpreter, 0)
        if lib.TfLiteTensorType(self._input) != _FLOAT32:
            self.close()
            raise ModelMissingError(f"{path}: expected a float32 input")
        self.input_shape: tuple[int, ...] = ()
        self.resize(input_shape or self._dims(self._input))

    def _dims(self, tensor: int) -> tuple[int, ...]:
        lib = self._lib
        return tuple(lib.TfLiteTensorDim(tensor, i) for i in range(lib.TfLiteTensorNumDims(tensor)))

    def resize(self, shape: Sequence[int]) -> None:
        """Give the input this shape (a change reallocates the model's tensors)."""
        shape = tuple(int(n) for n in shape)
        if shape == self.input_shape:
            return
        dims = (_I32 * len(shape))(*shape)
        lib = self._lib
        if (
            lib.TfLiteInterpreterResizeInputTensor(self._interpreter, 0, dims, len(shape)) != _OK
            or lib.TfLiteInterpreterAllocateTensors(self._interpreter) != _OK
        ):
            raise ModelMissingError(f"{self.name}: cannot take an input of shape {shape}")
        self._input = lib.TfLiteInterpreterGetInputTensor(self._interpreter, 0)
        self._output = lib.TfLiteInterpreterGetOutputTensor(self._interpreter, 0)
        self.input_shape = shape

    def run(self, x: np.ndarray) -> np.ndarray:
        """The output for ``x`` (resized to fit ``x``'s shape when it differs)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.resize(x.shape)
        lib = self._lib
        lib.TfLiteTensorCopyFromBuffer(self._input, x.ctypes.data, x.nbytes)
        if lib.TfLiteInterpreterInvoke(self._interpreter) != _OK:
            raise ModelMissingError(f"{self.name}: inference failed")
        out = np.empty(self._dims(self._output), dtype=np.float32)
        lib.TfLiteTensorCopyToBuffer(self._output, out.ctypes.data, out.nbytes)
        return out

    def close(self) -> None:
        if self._interpreter:
            self._lib.TfLiteInterpreterDelete(self._interpreter)
            self._interpreter = None
        if self._model:
            self._lib.TfLiteModelDelete(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()
