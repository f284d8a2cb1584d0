"""Acoustic echo cancellation: the playback is the reference, so what the device itself
plays (replies, chimes, timer rings) is taken out of the microphone signal before the wake
word, VAD, stop word and recognizer hear it. Without it a speaker beside the mic wakes the
assistant with its own voice and buries the user's wake word under the reply.

Two engines behind one Protocol (``cancel(mic, ref) -> bytes``, ``reset()``):

- ``SpeexEchoCanceller``: speexdsp's MDF adaptive filter plus its preprocessor's residual
  echo suppressor, from the distribution's ``libspeexdsp1`` through ctypes (no build, a few
  hundred KB, cheap on a Pi Zero 2 W). The default.
- ``WebRtcEchoCanceller``: WebRTC's AEC3 through the ``pywebrtc-audio`` wheel, when that is
  installed; kept for comparison (``scripts/bench_echo.py`` measures both).

Both take 16 kHz mono S16_LE frames of any multiple of 10 ms; the reference must be the
playback that reaches the microphone during the same frame (see ``docs/echo.md`` for how
the device aligns it by the output latency).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

import numpy as np

from firmware_app.core.engines import EchoCanceller, NoEcho
from firmware_app.core.errors import EngineUnavailableError

RATE = 16000
BLOCK = 160  # 10 ms: both engines work in 10 ms blocks

_ECHO_SET_SAMPLING_RATE = 24
_PRE_SET_DENOISE = 0
_PRE_SET_AGC = 2
_PRE_SET_DEREVERB = 8
_PRE_SET_NOISE_SUPPRESS = 18
_PRE_SET_ECHO_SUPPRESS = 20
_PRE_SET_ECHO_SUPPRESS_ACTIVE = 22
_PRE_SET_ECHO_STATE = 24


@cache
def _speexdsp() -> Any:
    """The shared library, its functions typed once (a wrong signature would corrupt
    memory silently, so every one is declared)."""
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise EngineUnavailableError(
            "the echo canceller needs libspeexdsp: apt-get install libspeexdsp1"
        ) from exc
    vp, i16p, c_int = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_int
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "speex_echo_state_init": (vp, [c_int, c_int]),
        "speex_echo_state_destroy": (None, [vp]),
        "speex_echo_state_reset": (None, [vp]),
        "speex_echo_cancellation": (None, [vp, i16p, i16p, i16p]),
        "speex_echo_ctl": (c_int, [vp, c_int, vp]),
        "speex_preprocess_state_init": (vp, [c_int, c_int]),
        "speex_preprocess_state_destroy": (None, [vp]),
        "speex_preprocess_run": (c_int, [vp, i16p]),
        "speex_preprocess_ctl": (c_int, [vp, c_int, vp]),
    }
    for fn, (restype, argtypes) in signatures.items():
        func = getattr(lib, fn)
        func.restype = restype
        func.argtypes = argtypes
    return lib


def speex_available() -> bool:
    try:
        _speexdsp()
    except EngineUnavailableError:
        return False
    return True


class SpeexEchoCanceller:
    """speexdsp's echo canceller with residual echo suppression.

    ``tail_ms`` is how long an echo the filter models: the speaker-to-mic delay plus the
    room's reverberation that matters (200 ms covers a speaker beside the mic in a living
    room, plus any delay the reference alignment leaves). ``suppress_db`` is the residual
    echo attenuation while only the device talks; ``suppress_active_db`` while someone
    talks over it (milder, so a barge-in wake word survives). The suppressor's overlap
    delays the output by ``delay_samples`` (10 ms).

    It works only while something plays and for ``idle_after_ms`` after the reference
    falls silent (the echo's tail and the room's reverberation). Otherwise there is no echo
    to take out, and the microphone passes through delayed by the same 10 ms, so the rest
    of the pipeline sees one timeline: an idle speaker listening for its wake word spends
    no CPU here. When sound plays again, the block held back is fed to the filter first, so
    the output stays continuous.
    """

    delay_samples = BLOCK

    def __init__(
        self,
        tail_ms: int = 200,
        suppress_db: int = -40,
        suppress_active_db: int = -15,
        noise_suppress_db: int = 0,
        idle_after_ms: int = 1000,
    ) -> None:
        lib = _speexdsp()
        self._lib = lib
        self.tail_ms = tail_ms
        self._echo = lib.speex_echo_state_init(BLOCK, RATE * tail_ms // 1000)
        self._pre = lib.speex_preprocess_state_init(BLOCK, RATE)
        if not self._echo or not self._pre:
            raise EngineUnavailableError("speexdsp could not allocate its echo canceller")
        self._ctl(lib.speex_echo_ctl, self._echo, _ECHO_SET_SAMPLING_RATE, RATE)
        lib.speex_preprocess_ctl(self._pre, _PRE_SET_ECHO_STATE, self._echo)
        # speexdsp applies residual echo suppression through its denoiser's gains, so the
        # denoiser is on, but its noise attenuation is off by default (0 dB): denoising and
        # gain control would change what the wake word model and the recognizer expect.
        for request, value in (
            (_PRE_SET_DENOISE, 1),
            (_PRE_SET_NOISE_SUPPRESS, noise_suppress_db),
            (_PRE_SET_AGC, 0),
            (_PRE_SET_DEREVERB, 0),
            (_PRE_SET_ECHO_SUPPRESS, suppress_db),
            (_PRE_SET_ECHO_SUPPRESS_ACTIVE, suppress_active_db),
        ):
            self._ctl(lib.speex_preprocess_ctl, self._pre, request, value)
        self._out = (ctypes.c_int16 * BLOCK)()
        self._mic_buf = (ctypes.c_int16 * BLOCK)()
        self._ref_buf = (ctypes.c_int16 * BLOCK)()
        self._idle_after = RATE * idle_after_ms // 1000
        self._quiet = self._idle_after  # samples since the reference last had sound
        self._held = bytes(BLOCK * 2)  # the last 10 ms passed through, not yet output
        self.active = False

    @staticmethod
    def _ctl(fn: Any, state: Any, request: int, value: int) -> None:
        arg = ctypes.c_int(value)
        fn(state, request, ctypes.byref(arg))

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        """Return ``mic`` without the echo of ``ref`` (same length, a multiple of 10 ms;
        a shorter reference is padded with silence)."""
        if len(mic) % (BLOCK * 2):
            raise ValueError(f"frames must be a multiple of {BLOCK} samples")
        if not mic:
            return b""
        step = BLOCK * 2
        silent = not ref[: len(mic)].strip(b"\0")
        self._quiet = self._quiet + len(mic) // 2 if silent else 0
        if self._quiet >= self._idle_after:
            self.active = False
            result = self._held + mic[:-step]
            self._held = mic[-step:]
            return result
        if not self.active:
            self.active = True
            self._run(self._held, bytes(step))  # the filter continues where output is
        if len(ref) < len(mic):
            ref = ref + b"\0" * (len(mic) - len(ref))
        return self._run(mic, ref[: len(mic)])

    def _run(self, mic: bytes, ref: bytes) -> bytes:
        lib, out = self._lib, self._out
        result = bytearray()
        step = BLOCK * 2
        self._held = mic[-step:]
        for start in range(0, len(mic), step):
            ctypes.memmove(self._mic_buf, mic[start : start + step], step)
            ctypes.memmove(self._ref_buf, ref[start : start + step], step)
            lib.speex_echo_cancellation(self._echo, self._mic_buf, self._ref_buf, out)
            lib.speex_preprocess_run(self._pre, out)
            result += bytes(out)
        return bytes(result)

    def reset(self) -> None:
        """Forget the learned echo path (the output device or volume curve changed)."""
        self._lib.speex_echo_state_reset(self._echo)

    def close(self) -> None:
        if self._pre:
            self._lib.speex_preprocess_state_destroy(self._pre)
            self._pre = None
        if self._echo:
            self._lib.speex_echo_state_destroy(self._echo)
            self._echo = None

    def __del__(self) -> None:
        self.close()


class WebRtcEchoCanceller:
    """WebRTC AEC3 (``pywebrtc-audio``). It estimates the remaining delay itself;
    ``delay_ms`` is the part the caller knows and has not already aligned."""

    def __init__(self, delay_ms: int = 0) -> None:
        try:
            from pywebrtc_audio import EchoCanceller
        except ImportError as exc:
            raise EngineUnavailableError(
                "the WebRTC echo canceller needs the pywebrtc-audio package"
            ) from exc
        self._delay_ms = delay_ms
        self._make = lambda: EchoCanceller(sample_rate=RATE, stream_delay_ms=delay_ms)
        self._aec = self._make()

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        if len(ref) < len(mic):
            ref = ref + b"\0" * (len(mic) - len(ref))
        near = np.frombuffer(mic, dtype=np.int16)
        far = np.frombuffer(ref[: len(mic)], dtype=np.int16)
        out = self._aec.process(near, far)
        return np.asarray(out, dtype="<i2").tobytes()

    def reset(self) -> None:
        self._aec.reset()


def make_echo_canceller(engine: str, tail_ms: int = 200) -> EchoCanceller:
    """``speex`` | ``webrtc`` | ``off`` (the microphone as it is)."""
    if engine == "speex":
        return SpeexEchoCanceller(tail_ms=tail_ms)
    if engine == "webrtc":
        return WebRtcEchoCanceller()
    if engine == "off":
        return NoEcho()
    raise ValueError(f"unknown echo canceller {engine!r}: use speex, webrtc or off")


def erle_db(mic: np.ndarray, cleaned: np.ndarray, skip: int = 0) -> float:
    """Echo return loss enhancement: how much quieter the echo-only signal is after the
    canceller, in dB (``skip`` samples of convergence left out)."""
    a = mic[skip:].astype(np.float64)
    b = cleaned[skip:].astype(np.float64)
    power_in = float(np.mean(a * a)) + 1e-9
    power_out = float(np.mean(b * b)) + 1e-9
    return 10.0 * float(np.log10(power_in / power_out))
