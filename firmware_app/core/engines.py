"""The engines the assistant moves data between. Each is a plain synchronous object behind
a Protocol of two or three methods, so tests pass fakes to the Assistant's constructor.
The real adapters live in the sibling modules and import their heavy libraries lazily."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Detection:
    model: str
    score: float


class WakeDetector(Protocol):
    def process(self, pcm: bytes) -> Detection | None:
        """Feed one 80 ms frame; return a detection when a wake word ends in it."""
        ...

    def reset(self) -> None:
        """Forget buffered audio (after a detection, or when listening resumes)."""
        ...


class SpeechDetector(Protocol):
    def process(self, pcm: bytes) -> float:
        """Feed one frame; return the speech probability (0-1) at its end."""
        ...

    def reset(self) -> None: ...


class Transcriber(Protocol):
    def start(self) -> None:
        """Begin a new utterance."""
        ...

    def feed(self, pcm: bytes) -> None:
        """Stream one frame as it arrives."""
        ...

    def finish(self) -> str:
        """End the utterance and return its text (empty for silence)."""
        ...


class Synthesizer(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield S16_LE mono PCM at ``sample_rate``, one chunk per sentence."""
        ...


class Speaker(Protocol):
    """Where replies are heard. Posts PlaybackStarted/PlaybackDone to the assistant."""

    sample_rate: int

    def play(self, utterance: int, pcm: bytes) -> None:
        """Queue audio for an utterance; playback starts as soon as there is some."""
        ...

    def finish(self, utterance: int) -> None:
        """No more audio comes for this utterance; PlaybackDone follows when it is played."""
        ...

    def stop(self) -> None:
        """Cut whatever is playing or queued now."""
        ...
