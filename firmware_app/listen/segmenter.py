"""The segmenter: microphone frames in, requests cut out of them.

It owns the wake word detector, the voice activity detector and the pre-roll, and turns
frames into a handful of domain events: `Woke`, `SpeechStarted`, `SpeechEnded`,
`NoSpeech` and `TooLong`. The assistant never looks at probabilities or counts frames; it
only reacts to these. Time is the assistant clock carried by each frame, so the segmenter
behaves the same under ``simulate`` as live.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from firmware_app.config.settings import Settings
from firmware_app.core.engines import Detection, SpeechDetector, WakeDetector
from firmware_app.core.messages import FRAME_SECONDS
from firmware_app.system.kept_files import KeptFiles


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
class Transcript:
    """What the recognizer made of a request."""

    text: str | None
    """The words heard ("" for none); None when there is no speech model to hear them."""
    out_of_grammar: bool = False
    """Speech was heard but it is none of the sentences the recognizer knows."""
    near_command: str | None = None
    """The command sentence an open transcript is one slip away from: what the request
    is taken for when its own words are no command."""


NO_TRANSCRIPT = Transcript(None)


@dataclass(frozen=True)
class SpeechEnded:
    """Silence lasted the hangover after speech. ``last_speech_t``: when the voice was last
    heard, so the end-of-speech delay can be measured. `Hearing` attaches the transcript
    (and, with ``log.save_audio``, the request's audio)."""

    last_speech_t: float
    transcript: Transcript = NO_TRANSCRIPT
    audio: tuple[bytes, ...] = ()
    ended_wall: float | None = None
    """When the end was decided (``wall_now``), before the recognizer's last pass: the
    event log's ``speech_end`` is stamped with it, so the recognizer's time is counted."""


@dataclass(frozen=True)
class TooLong:
    """The request reached its maximum length; it is handled as if speech had ended."""

    last_speech_t: float
    transcript: Transcript = NO_TRANSCRIPT
    audio: tuple[bytes, ...] = ()
    ended_wall: float | None = None
    """When the end was decided (``wall_now``), before the recognizer's last pass: the
    event log's ``speech_end`` is stamped with it, so the recognizer's time is counted."""


@dataclass(frozen=True)
class NoSpeech:
    """Nobody spoke before the start timeout."""


Heard = Woke | SpeechStarted | SpeechEnded | TooLong | NoSpeech

Progress = Literal["complete", "done", "unfinished", "unknown"]
"""What the recognizer makes of the request so far: a command nothing more could change
(complete), a whole command that could still grow (done), the start of one, or neither
(other speech, or no recognizer that can tell)."""


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
        progress: Callable[[], Progress] | None = None,
        done_s: float = 0.0,
        unfinished_s: float | None = None,
        complete_s: float | None = None,
    ) -> None:
        """``progress``, asked once the speaker has paused ``complete_s`` (or ``done_s``,
        whichever is shorter), lets the request end after ``complete_s`` when a complete
        command was heard and after ``done_s`` when a whole one was, and lets it run to
        ``unfinished_s`` of silence when only the start of one was."""
        self.wake = wake
        self.vad = vad
        self.threshold = threshold
        # End of speech is decided on frame boundaries: the hangover is rounded to the
        # nearest frame instead of always up, so the delay is silence_s on average.
        self.hangover = silence_s - FRAME_SECONDS / 2
        self.progress = progress
        self.done_hangover = done_s - FRAME_SECONDS / 2 if done_s > 0 else None
        self.complete_hangover = self.done_hangover
        if self.done_hangover is not None and complete_s is not None and complete_s > 0:
            self.complete_hangover = min(self.done_hangover, complete_s - FRAME_SECONDS / 2)
        self.unfinished_hangover = max(self.hangover, (unfinished_s or 0) - FRAME_SECONDS / 2)
        self._limits: tuple[float, float] | None = None
        """This request's caps on the hangovers (`limit`), None for the configured ones."""
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
        self._limits = None
        self.listening = True
        self._speech = False
        self._last_speech = t
        self._start_deadline = t + start_timeout_s
        self._end_deadline = t + self.max_request_s
        preroll = tuple(self.preroll)
        self.preroll.clear()
        return preroll

    def limit(self, silence_s: float, unfinished_s: float) -> None:
        """For the open request only: the request ends after at most ``silence_s`` of
        silence (``unfinished_s`` when the recognizer hears the start of a command). Home
        Assistant's pipeline waits on this end of speech, so a request it answers is cut
        sooner than one the speaker answers itself (whose wait hides in its own work)."""
        half = FRAME_SECONDS / 2
        self._limits = (silence_s - half, max(silence_s, unfinished_s) - half)

    def end(self) -> None:
        self.listening = False

    def reset(self) -> None:
        """Forget what the wake detector buffered (it heard nothing for a while)."""
        self.wake.reset()
        self.preroll.clear()

    def segment(self, pcm: bytes, t: float) -> list[Heard]:
        """One frame ending at ``t``. The wake detector hears every frame, even while
        listening, so its buffers never hold stale audio (resetting them costs ~175 ms,
        right when the user is talking); a wake word while listening is not reported."""
        detection = self.wake.detect(pcm)
        if not self.listening:
            self.preroll.append(pcm)
            if detection is None:
                return []
            return [Woke(detection, tuple(self.preroll))]
        heard: list[Heard] = []
        if self.vad.speech_probability(pcm) >= self.threshold:
            if not self._speech:
                self._speech = True
                heard.append(SpeechStarted(t))
            self._last_speech = t
            if self.progress is not None and self.done_hangover is not None:
                # judged as the words come (the answer is kept per text), so the pause
                # that follows finds it ready instead of waiting for it
                self.progress()
        ending = self._ending(t)
        if ending is not None:
            heard.append(ending)
            self.listening = False  # the request is over: back to waiting for the wake word
        return heard

    def _ending(self, t: float) -> SpeechEnded | NoSpeech | TooLong | None:
        quiet = t - self._last_speech
        if self._speech and quiet > 0 and self._may_end(quiet):
            return SpeechEnded(self._last_speech)
        if not self._speech and t >= self._start_deadline:
            return NoSpeech()
        if t >= self._end_deadline:
            return TooLong(self._last_speech)
        return None

    def _may_end(self, quiet: float) -> bool:
        """Whether ``quiet`` seconds of silence end the request, given what was heard."""
        hangover, unfinished = self.hangover, self.unfinished_hangover
        if self._limits is not None:
            hangover = min(hangover, self._limits[0])
            unfinished = min(unfinished, self._limits[1])
        if self.progress is None or self.done_hangover is None or self.complete_hangover is None:
            return quiet >= hangover
        if quiet < min(self.complete_hangover, hangover):
            return False
        heard = self.progress()
        if heard == "complete":
            return True
        if heard == "done":
            return quiet >= min(self.done_hangover, hangover)
        return quiet >= (unfinished if heard == "unfinished" else hangover)


REQUEST_PREFIX = "request-"


def request_audio(settings: Settings) -> KeptFiles | None:
    """Where requests are kept (``log.save_audio``), within their limits; None: not kept."""
    log = settings.log
    if log.save_audio is None:
        return None
    return KeptFiles(
        log.save_audio,
        REQUEST_PREFIX,
        (".wav",),
        log.save_audio_max_mb,
        log.save_audio_keep,
        "request audio",
    )


def save_request_audio(kept: KeptFiles, frames: list[bytes], epoch: float) -> Path | None:
    """Keep what was heard for a request, for tuning and bug reports; the WAV written, or
    None when the disk refused it (logged once)."""
    from firmware_app.audio.wavio import write_wav

    pcm = b"".join(frames)

    def write(base: Path) -> None:
        write_wav(base.with_name(base.name + ".wav"), pcm, 16000)

    base = kept.save(f"{REQUEST_PREFIX}{int(epoch)}", len(pcm) + 44, write)
    return None if base is None else base.with_name(base.name + ".wav")


__all__ = [
    "NO_TRANSCRIPT",
    "Heard",
    "NoSpeech",
    "Progress",
    "Segmenter",
    "SpeechEnded",
    "SpeechStarted",
    "TooLong",
    "Transcript",
    "Woke",
    "preroll_frames",
    "request_audio",
    "save_request_audio",
]
