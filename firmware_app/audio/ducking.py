"""Media under speech: Home Assistant's ``media_player.play_media`` keeps playing while
the speaker talks, lowered ("ducked") and brought back up after.

The speaker has one ALSA device and no mixer in front of it (a Pi's headphone jack, a
HAT's codec), so the mixing is done here, in the playback thread: the media is a track
of samples at the speaker's rate; each piece written to the device takes the track's
next samples, scaled by its gain, and adds the speech over them. The gain glides
(``RAMP_S``) between full and ``duck_gain`` so the change is heard as a fade, never as
a click.
"""

from __future__ import annotations

import numpy as np

RAMP_S = 0.25
"""How long the media takes to go from full to ducked (and back)."""


def duck_gain(db: float) -> float:
    """A level in dB (0 or below) as the factor applied to the samples."""
    return float(10 ** (min(0.0, db) / 20))


class MediaTrack:
    """One media item, mono S16 samples at the speaker's rate, played from start to end."""

    def __init__(self, samples: np.ndarray, rate: int, ducked_gain: float) -> None:
        self._samples = samples.astype(np.int16, copy=False)
        self._cursor = 0
        self._ducked = ducked_gain
        self._gain = 1.0
        self._step = 1.0 / max(1, round(RAMP_S * rate))
        """Gain change per sample while gliding."""

    @property
    def done(self) -> bool:
        return self._cursor >= len(self._samples)

    @property
    def gain(self) -> float:
        """The gain the last sample taken was played at."""
        return self._gain

    def take(self, count: int, ducked: bool) -> np.ndarray:
        """The next ``count`` samples (fewer at the end) as float32, at the gain gliding
        towards ducked (the speaker talks) or full."""
        chunk = self._samples[self._cursor : self._cursor + count].astype(np.float32)
        self._cursor += len(chunk)
        target = self._ducked if ducked else 1.0
        if self._gain == target or not len(chunk):
            return chunk * self._gain
        direction = 1.0 if target > self._gain else -1.0
        ramp = self._gain + direction * self._step * np.arange(1, len(chunk) + 1)
        gains = np.minimum(ramp, target) if direction > 0 else np.maximum(ramp, target)
        self._gain = float(gains[-1])
        return chunk * gains.astype(np.float32)


def mix(speech: bytes, media: np.ndarray) -> bytes:
    """S16 ``speech`` with the ``media`` samples (float32, at most as many) added over its
    start, clipped to 16 bits."""
    out = np.frombuffer(speech, dtype="<i2").astype(np.float32)
    out[: len(media)] += media
    return np.clip(out, -32768, 32767).astype("<i2").tobytes()
