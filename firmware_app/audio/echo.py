"""What the speaker played, on the assistant clock, at the microphone's rate; and the echo
path that ``simulate --echo`` puts between the speaker and the microphone.

The echo canceller needs, for every microphone frame, the playback heard during that same
frame (its reference). ``PlaybackReference`` keeps that timeline: the simulated speaker
places audio on it when it schedules it; a real speaker places each chunk at the time it
will leave the loudspeaker (written now, heard after the output latency ALSA reports).

``EchoPath`` is the acoustic coupling of a speaker beside the microphone, a delay and a
gain, so echo handling can be measured end to end from a WAV file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware_app.audio.wavio import resample
from firmware_app.core.messages import SAMPLE_RATE

CAPTURE_LEAD_S = 0.04
"""A live microphone frame is stamped when it is read, a little after its last sample was
captured (up to a period when the reading thread is late). Its reference is taken this
much earlier, so the reference leads the echo (which a canceller handles, up to its tail)
rather than trailing it (which it cannot)."""


REFERENCE_KEEP_S = 10.0
"""Playback a running speaker keeps for the echo canceller (``ttbt5 run``, and ``simulate``
when its speaker hands its audio on): far more than an echo's delay and the filter's
tail."""


class PlaybackReference:
    """A timeline of played audio at 16 kHz. Later audio placed at a time replaces
    whatever was scheduled from that time on (a speaker plays one stream); ``keep_s``
    bounds the memory on a device that runs for months."""

    def __init__(self, keep_s: float | None = None) -> None:
        self._lock = threading.Lock()
        self._buf = np.zeros(0, dtype=np.int16)
        self._base = 0  # absolute sample index of _buf[0]
        self._keep = None if keep_s is None else int(keep_s * SAMPLE_RATE)

    def place(self, start_t: float, pcm: bytes, rate: int) -> None:
        """Audio (S16_LE mono at ``rate``) that starts playing at ``start_t`` seconds."""
        samples = np.frombuffer(pcm, dtype="<i2")
        if rate != SAMPLE_RATE and len(samples):
            samples = resample(samples, rate, SAMPLE_RATE)
        with self._lock:
            at = max(round(start_t * SAMPLE_RATE) - self._base, 0)
            head = self._buf[:at]
            if len(head) < at:
                head = np.concatenate([head, np.zeros(at - len(head), dtype=np.int16)])
            self._buf = np.concatenate([head, samples.astype(np.int16)])
            if self._keep is not None and len(self._buf) > 2 * self._keep:
                drop = len(self._buf) - self._keep
                self._buf = self._buf[drop:]
                self._base += drop

    def cut(self, t: float) -> None:
        """Playback stopped at ``t``: nothing scheduled after it is heard."""
        with self._lock:
            at = max(round(t * SAMPLE_RATE) - self._base, 0)
            self._buf = self._buf[:at]

    def played(self, end_t: float, n: int) -> bool:
        """Whether anything was placed in the ``n`` samples up to ``end_t`` (the cheap
        question an idle speaker's microphone asks every frame, before any window is
        made)."""
        end = round(end_t * SAMPLE_RATE) - self._base
        with self._lock:
            return max(end - n, 0) < min(end, len(self._buf))

    def window(self, end_t: float, n: int) -> np.ndarray:
        """The ``n`` samples played up to ``end_t`` (silence where nothing played)."""
        end = round(end_t * SAMPLE_RATE) - self._base
        start = end - n
        out = np.zeros(n, dtype=np.int16)
        with self._lock:
            lo, hi = max(start, 0), min(end, len(self._buf))
            if hi > lo:
                out[lo - start : hi - start] = self._buf[lo:hi]
        return out

    def samples(self) -> np.ndarray:
        with self._lock:
            return self._buf.copy()


class PlaybackTap:
    """A real speaker's writes, placed on the reference at the time they will be heard.

    ALSA blocks a write while its buffer is full, so a chunk written now starts playing
    when what was written before it has played: ``max(now, end of the last chunk)``. That
    errs early, never late, which is the side an echo canceller can handle (an echo that
    arrives before its reference cannot be cancelled; one that arrives up to the filter's
    tail after it can). Resampling is streamed, so chunk edges leave no artifacts in the
    reference that are not in the echo.
    """

    def __init__(self, reference: PlaybackReference, rate: int, clock: Callable[[], float]) -> None:
        self.reference = reference
        self.rate = rate
        self._clock = clock
        self._cursor = 0  # end of what was written, in 16 kHz samples
        self._lock = threading.Lock()
        self._stream: Any = None

    def written(self, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2")
        if self.rate != SAMPLE_RATE:
            if self._stream is None:
                import soxr

                self._stream = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="int16")
            samples = self._stream.resample_chunk(samples)
        with self._lock:
            # The cursor counts output samples, so the streamed chunks stay back to back.
            start = max(round(self._clock() * SAMPLE_RATE), self._cursor)
            self._cursor = start + len(samples)
        self.reference.place(start / SAMPLE_RATE, samples.astype("<i2").tobytes(), SAMPLE_RATE)

    def stopped(self, cut: bool = True) -> None:
        """Playback ended: dropped (``cut``: what was queued is never heard) or drained
        (all of it plays). Either way the next write starts a new stream."""
        with self._lock:
            now = round(self._clock() * SAMPLE_RATE)
            if cut and self._cursor > now:
                self.reference.cut(now / SAMPLE_RATE)
                self._cursor = now
            self._stream = None


@dataclass(frozen=True)
class EchoPath:
    """The speaker heard by the microphone: ``gain_db`` (0 = as loud as played, −6 = a
    speaker right beside the mic) after ``delay_ms`` (sound travel plus the output and
    input buffering the reference alignment does not know about)."""

    gain_db: float
    delay_ms: float = 20.0

    @property
    def gain(self) -> float:
        return float(10.0 ** (self.gain_db / 20.0))

    def echo(self, playback: PlaybackReference, end_t: float, n: int) -> np.ndarray:
        """The echo that reaches the microphone in the ``n`` samples ending at ``end_t``."""
        heard = playback.window(end_t - self.delay_ms / 1000.0, n)
        return (heard.astype(np.float32) * self.gain).astype(np.float32)

    def mix(self, mic: bytes, playback: PlaybackReference, end_t: float) -> bytes:
        """The microphone frame with the echo added (clipped as a real ADC clips)."""
        samples = np.frombuffer(mic, dtype="<i2")
        mixed = samples.astype(np.float32) + self.echo(playback, end_t, len(samples))
        return np.clip(np.round(mixed), -32768, 32767).astype("<i2").tobytes()


def parse_echo(spec: str) -> EchoPath:
    """``GAIN_DB[,DELAY_MS]`` as given to ``simulate --echo`` (e.g. ``-12`` or ``-6,40``)."""
    parts = [p.strip() for p in spec.replace("\u2212", "-").split(",")]
    try:
        if len(parts) == 1:
            path = EchoPath(float(parts[0]))
        elif len(parts) == 2:
            path = EchoPath(float(parts[0]), float(parts[1]))
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--echo {spec!r}: expected GAIN_DB[,DELAY_MS], e.g. -12 or -6,40"
        ) from None
    if not -60.0 <= path.gain_db <= 12.0:
        raise ValueError(f"--echo gain {path.gain_db} dB: allowed -60 to 12")
    if not 0.0 <= path.delay_ms <= 500.0:
        raise ValueError(f"--echo delay {path.delay_ms} ms: allowed 0 to 500")
    return path
