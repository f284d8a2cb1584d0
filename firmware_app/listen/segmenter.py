"""The listener: microphone frames in, what the state machine cares about out.

It owns the wake word detector, the voice activity detector and the pre-roll, and turns
frames into a handful of domain events: `Woke`, `SpeechStarted`, `SpeechEnded`,
`NoSpeech` and `TooLong`. The assistant never looks at probabilities or counts frames; it
only reacts to these. Time is the assistant clock carried by each frame, so the listener
behaves the same under ``simulate`` as live.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from loguru import logger

from firmware_app.config.settings import Settings
from firmware_app.core.engines import Detection, SpeechDetector, WakeDetector
from firmware_app.core.messages import FRAME_SECONDS


@dataclass(frozen=True)
class Woke:
    """A wake word ended in this frame; ``preroll`` is the audio just before it (its tail
    is in there, and often the start of the request for people who do not pause)."""

    detection: Detection
    preroll: tuple[bytes, ...]


@dataclass(frozen=True)
class SpeechStarted:
    t: float


@dataclass(frozen=True)
class SpeechEnded:
    """Silence lasted the hangover after speech. ``last_speech_t``: when the voice was last
    heard, so the end-of-speech delay can be measured."""

    last_speech_t: float


@dataclass(frozen=True)
class TooLong:
    """The request reached its maximum length; it is handled as if speech had ended."""

    last_speech_t: float


@dataclass(frozen=True)
class NoSpeech:
    """Nobody spoke before the start timeout."""


Heard = Woke | SpeechStarted | SpeechEnded | TooLong | NoSpeech


def preroll_frames(preroll_ms: int) -> int:
    """Whole frames that hold at least ``preroll_ms`` (rounded up: never less pre-roll
    than configured)."""
    return max(1, math.ceil(preroll_ms / (FRAME_SECONDS * 1000) - 1e-9))


class Segmenter:
    """Cuts the frame stream into requests.

    Idle: every frame goes to the wake detector and into the pre-roll ring. Listening
    (from `begin` until the request ends or `end`): frames also go to the voice detector,
    and the request ends after ``silence_s`` without speech, after ``start_timeout_s``
    with no speech at all, or at ``max_request_s``.
    """

    def __init__(
        self,
        wake: WakeDetector,
        vad: SpeechDetector,
        *,
        threshold: float,
        silence_s: float,
        max_request_s: float,
        preroll_ms: int,
    ) -> None:
        self.wake = wake
        self.vad = vad
        self.threshold = threshold
        # End of speech is decided on frame boundaries: the hangover is rounded to the
        # nearest frame instead of always up, so the delay is silence_s on average.
        self.hangover = silence_s - FRAME_SECONDS / 2
        self.max_request_s = max_request_s
        self.preroll: deque[bytes] = deque(maxlen=preroll_frames(preroll_ms))
        self.listening = False
        self._speech = False
        self._last_speech = 0.0
        self._start_deadline = 0.0
        self._end_deadline = 0.0

    def begin(self, t: float, start_timeout_s: float) -> tuple[bytes, ...]:
        """Start a request at ``t``; returns (and forgets) the pre-roll."""
        self.vad.reset()
        self.listening = True
        self._speech = False
        self._last_speech = t
        self._start_deadline = t + start_timeout_s
        self._end_deadline = t + self.max_request_s
        preroll = tuple(self.preroll)
        self.preroll.clear()
        return preroll

    def end(self) -> None:
        self.listening = False

    def reset(self) -> None:
        """Forget what the wake detector buffered (it heard nothing for a while)."""
        self.wake.reset()
        self.preroll.clear()

    def process(self, pcm: bytes, t: float) -> list[Heard]:
        """One frame ending at ``t``. The wake detector hears every frame, even while
        listening, so its buffers never hold stale audio (resetting them costs ~175 ms,
        right when the user is talking); a wake word while listening is not reported."""
        detection = self.wake.process(pcm)
        if not self.listening:
            self.preroll.append(pcm)
            if detection is None:
                return []
            return [Woke(detection, tuple(self.preroll))]
        heard: list[Heard] = []
        if self.vad.process(pcm) >= self.threshold:
            if not self._speech:
                self._speech = True
                heard.append(SpeechStarted(t))
            self._last_speech = t
        ending = self._ending(t)
        if ending is not None:
            heard.append(ending)
            self.listening = False  # the request is over: back to waiting for the wake word
        return heard

    def _ending(self, t: float) -> SpeechEnded | NoSpeech | TooLong | None:
        if self._speech and t - self._last_speech >= self.hangover:
            return SpeechEnded(self._last_speech)
        if not self._speech and t >= self._start_deadline:
            return NoSpeech()
        if t >= self._end_deadline:
            return TooLong(self._last_speech)
        return None


def save_request_audio(settings: Settings, frames: list[bytes], epoch: float) -> None:
    """Keep what was heard for a request (``log.save_audio``), for tuning and bug reports."""
    from firmware_app.audio.wavio import write_wav

    folder = settings.log.save_audio
    if folder is None:
        return
    path = folder / f"request-{int(epoch)}.wav"
    try:
        write_wav(path, b"".join(frames), 16000)
    except OSError as exc:
        logger.error("cannot save request audio to {}: {}", path, exc)


__all__ = [
    "Heard",
    "NoSpeech",
    "Segmenter",
    "SpeechEnded",
    "SpeechStarted",
    "TooLong",
    "Woke",
    "preroll_frames",
    "save_request_audio",
]
