"""The engines the assistant moves data between. Each is a plain synchronous object behind
a Protocol of two or three methods, so tests pass fakes to the constructors (`Hearing`,
`SpeechOutput`, the `Assistant`). The real adapters live in the stage packages (``listen/``,
``recognize/``, ``speak/``) and import their heavy libraries lazily. The echo canceller and
the stop spotter are optional: their defaults do nothing, so hearing never asks whether
one exists."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from firmware_app.core.events import Event


@dataclass(frozen=True)
class Detection:
    model: str
    score: float


class WakeDetector(Protocol):
    def detect(self, pcm: bytes) -> Detection | None:
        """Feed one 80 ms frame; return a detection when a wake word ends in it."""
        ...

    def reset(self) -> None:
        """Forget buffered audio (after a detection, or when listening resumes)."""
        ...


class SpeechDetector(Protocol):
    def speech_probability(self, pcm: bytes) -> float:
        """Feed one frame; return the speech probability (0-1) at its end."""
        ...

    def reset(self) -> None: ...


class EchoCanceller(Protocol):
    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        """The microphone frame with the speaker's sound (``ref``) taken out."""
        ...

    def reset(self) -> None:
        """Forget adaptation state (the audio path was restarted)."""
        ...


class StopSpotter(Protocol):
    def spot(self, pcm: bytes) -> bool:
        """Feed one frame; True when "stop" ends in it."""
        ...

    def reset(self) -> None: ...


class NoEcho:
    """No echo canceller: the microphone frame passes unchanged."""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        return mic

    def reset(self) -> None:
        pass


class NoStopSpotter:
    """No stop word: only the wake word, the button or a command stop speech."""

    def spot(self, pcm: bytes) -> bool:
        return False

    def reset(self) -> None:
        pass


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


@runtime_checkable
class GrammarTranscriber(Transcriber, Protocol):
    """A transcriber that hears only the sentences it was given (speech-to-phrase)."""

    out_of_grammar: bool
    """After ``finish``: speech was heard, but none of the sentences it knows."""
    near_command: str | None
    """After ``finish``: the command sentence an open transcript (Whisper's or Vosk's
    beside it) is one slip away from (``recognize/nearest.py``), or None."""

    def observe(self, event: Event) -> None:
        """Every event of the assistant: names it should now hear (timers) come from them."""
        ...

    def hold_timers(self, timers: dict[str, str | None]) -> None:
        """The timers there are at start, id -> name: a name refers to one of them."""
        ...


@runtime_checkable
class RebuildableTranscriber(Transcriber, Protocol):
    """A grammar transcriber whose sentences can change while it runs (the Wyoming
    server's, when Home Assistant's names change)."""

    def rebuild(self) -> None:
        """Build its grammar again from its sources; between utterances only."""
        ...


@runtime_checkable
class ScopedTranscriber(Transcriber, Protocol):
    """A transcriber that says whether it hears speech beyond the commands. Speech-to-phrase
    alone does not; beside an open-vocabulary recognizer, or that recognizer alone, it does.
    A transcriber that does not say is taken to hear everything."""

    open_speech: bool
    """Speech that is no command is transcribed too (for the online model)."""


class OpenTranscriber(Transcriber, Protocol):
    """An open-vocabulary recognizer (Vosk, Whisper): any words, from a model directory."""

    name: str
    """Which one it is ("vosk", "whisper"): logs, status and who answered a request."""
    model_dir: Path


@runtime_checkable
class SureTranscriber(OpenTranscriber, Protocol):
    """An open-vocabulary recognizer that says how sure it was of its last transcript:
    beside speech-to-phrase it may then check the commands that one heard."""

    logprob: float | None
    """The mean log-probability of the last transcript's tokens (0 is certain; None: it
    heard nothing)."""


@runtime_checkable
class CommandTranscriber(Transcriber, Protocol):
    """A transcriber that can say, while listening, which command it has heard so far: a
    request then ends soon after a whole command and may pause inside the start of one."""

    def partial_command(self) -> str | None:
        """The command's words heard so far ("" before any), or None for other speech."""
        ...

    def endings(self, command: str) -> Iterator[str] | None:
        """How a command that starts with ``command`` can go on and still be one of the
        sentences it hears, lazily; None when none starts so. A whole command none of
        whose endings changes what it asks is complete: the request ends sooner."""
        ...


@runtime_checkable
class PrerollTranscriber(Transcriber, Protocol):
    """A transcriber that can take the pre-roll now and decode it along with the frames that
    follow, so waking costs no burst of decoding."""

    def feed_later(self, pcm: bytes) -> None:
        """Queue audio from before listening began; it is decoded before the next frames."""
        ...


class Synthesizer(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[bytes]:
        """Yield S16_LE mono PCM at ``sample_rate``, one chunk per sentence."""
        ...


@runtime_checkable
class InterruptibleSynthesizer(Synthesizer, Protocol):
    """A synthesizer whose run can be aborted from another thread (Piper): warming the
    cache gives way at once when live speech arrives."""

    def interrupt(self) -> None:
        """Abort the run under way and every one after it until ``resume``."""
        ...

    def resume(self) -> None: ...


@runtime_checkable
class QuickStartSynthesizer(Synthesizer, Protocol):
    """A synthesizer that can make a text's first chunk short (Piper): the first chunk of
    a reply is what the listener waits for, the rest is made while it plays."""

    def synthesize_soon(self, text: str) -> Iterator[bytes]:
        """The same speech as ``synthesize``, its first chunk short."""
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
