"""Hearing: one microphone frame in, what the assistant cares about out.

Everything a frame goes through before the state machine sees an event happens here, in
this order: the speaker's echo is taken out (with the playback heard during that frame as
the reference), its loudness is measured (for wake arbitration), the stop spotter hears it
when the caller has armed it (the assistant speaks or a timer rings), the wake clips keep
it, the segmenter runs the wake word, pre-roll and voice detection, and while a request is
open the recognizer is fed (and the request's relay, when the caller gave one: Home
Assistant listening to the same request). The recognizer is opened by `begin` (pre-roll
first) and finished exactly once per request: when the segmenter ends the request (the
transcript rides on the `SpeechEnded`/`TooLong` event), or when the caller calls `end`
first (its transcript is what `end` returns).

The assistant guards what comes in: muted frames never reach `hear`. Nothing here changes
assistant state; it only reports what it heard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from firmware_app.audio.echo import CAPTURE_LEAD_S, PlaybackReference
from firmware_app.config.settings import Settings
from firmware_app.core.engines import (
    EchoCanceller,
    GrammarTranscriber,
    NoEcho,
    NoStopSpotter,
    SpeechDetector,
    StopSpotter,
    Transcriber,
    WakeDetector,
)
from firmware_app.core.messages import Frame
from firmware_app.listen.level import LevelMeter
from firmware_app.listen.segmenter import (
    Heard,
    NoSpeech,
    Segmenter,
    SpeechEnded,
    TooLong,
    Transcript,
    Woke,
)
from firmware_app.listen.wake_clips import WakeClips


@dataclass(frozen=True)
class StopSaid:
    """ "Stop" was said alone while the stop spotter was armed."""


Perceived = Heard | StopSaid
"""Everything `Hearing.hear` reports."""


class Hearing:
    """The per-frame path from the microphone to the events the table names."""

    def __init__(
        self,
        segmenter: Segmenter,
        recognizer: Transcriber | None,
        clips: WakeClips,
        *,
        echo: EchoCanceller | None = None,
        reference: PlaybackReference | None = None,
        stop: StopSpotter | None = None,
        level: LevelMeter | None = None,
        keep_audio: bool = False,
    ) -> None:
        self.segmenter = segmenter
        self.recognizer = recognizer
        self.clips = clips
        self.echo: EchoCanceller = echo or NoEcho()
        self.reference = reference
        """What the speaker played, for frames that arrive without their reference."""
        self.stop: StopSpotter = stop or NoStopSpotter()
        self.level = level or LevelMeter()
        self.keep_audio = keep_audio
        self._open = False
        """A request is open: its frames go to the recognizer (if any) and the audio kept."""
        self._audio: list[bytes] = []
        self._relay: Callable[[bytes], None] | None = None
        """Where else the open request's audio goes (after the pre-roll)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        wake: WakeDetector,
        vad: SpeechDetector,
        recognizer: Transcriber | None,
        *,
        echo: EchoCanceller | None = None,
        reference: PlaybackReference | None = None,
        stop: StopSpotter | None = None,
        level: LevelMeter | None = None,
    ) -> Hearing:
        """Hearing with the segmenter and wake clips the settings describe."""
        segmenter = Segmenter(
            wake,
            vad,
            threshold=settings.vad.threshold,
            silence_s=settings.vad.silence_ms / 1000,
            max_request_s=settings.vad.max_request_s,
            preroll_ms=settings.wake.preroll_ms,
        )
        clips = WakeClips(settings.wake.clips_kept, save_dir=settings.wake.false_wake_dir)
        return cls(
            segmenter,
            recognizer,
            clips,
            echo=echo,
            reference=reference,
            stop=stop,
            level=level,
            keep_audio=settings.log.save_audio is not None,
        )

    @property
    def listening(self) -> bool:
        """A request is open: its frames go to the recognizer."""
        return self.segmenter.listening

    def hear(self, frame: Frame, t: float, *, stop_armed: bool = False) -> list[Perceived]:
        """One frame ending at ``t``; what was heard in it, in the order it happened."""
        pcm = self._cleaned(frame)
        self.level.feed(pcm)
        heard: list[Perceived] = []
        if stop_armed and self.stop.process(pcm):
            heard.append(StopSaid())
        self.clips.hear(pcm)  # before the segmenter: a clip starts with the frame that woke
        events = self.segmenter.process(pcm, t)
        if self._open:
            self._feed(pcm)
        for event in events:
            if isinstance(event, Woke):
                self.clips.wake(event.detection.model, event.detection.score, t)
                heard.append(event)
            elif isinstance(event, SpeechEnded | TooLong):
                audio = tuple(self._audio)
                heard.append(replace(event, transcript=self._finish(), audio=audio))
            elif isinstance(event, NoSpeech):
                self._finish()
                heard.append(event)
            else:
                heard.append(event)
        return heard

    def begin(
        self,
        t: float,
        start_timeout_s: float,
        preroll: tuple[bytes, ...] = (),
        relay: Callable[[bytes], None] | None = None,
    ) -> None:
        """Open a request at ``t``: the recognizer starts and hears ``preroll`` first;
        ``relay`` is given each frame of the request after that (the pre-roll holds the
        wake word, which is not part of what was asked)."""
        self.segmenter.begin(t, start_timeout_s)
        self._audio = []
        self._relay = None
        if self.recognizer is not None:
            self.recognizer.start()
        self._open = True
        for pcm in preroll:
            self._feed(pcm)
        self._relay = relay

    def end(self) -> Transcript:
        """The request is over, however it ended: the recognizer is finished if still open
        (its transcript; empty when it was finished already)."""
        self.segmenter.end()
        heard = self._finish()
        self._audio = []
        return heard

    def reset(self) -> None:
        """Forget what the wake detector buffered (it heard nothing for a while)."""
        self.segmenter.reset()

    def disarm_stop(self) -> None:
        """Speaking is over: the stop spotter forgets what it heard."""
        self.stop.reset()

    def _cleaned(self, frame: Frame) -> bytes:
        ref = frame.ref
        if ref is None and self.reference is not None:
            played = self.reference.window(frame.t - CAPTURE_LEAD_S, len(frame.pcm) // 2)
            ref = played.astype("<i2").tobytes()
        return frame.pcm if ref is None else self.echo.process(frame.pcm, ref)

    def _feed(self, pcm: bytes) -> None:
        if self.recognizer is not None:
            self.recognizer.feed(pcm)
        if self.keep_audio:
            self._audio.append(pcm)
        if self._relay is not None:
            self._relay(pcm)

    def _finish(self) -> Transcript:
        """The transcript; the recognizer is finished once per request."""
        was_open, self._open = self._open, False
        self._relay = None
        if self.recognizer is None:
            return Transcript(None)
        if not was_open:
            return Transcript("")
        recognizer = self.recognizer
        text = recognizer.finish()
        # only a recognizer given its sentences can hear speech that is none of them
        out_of_grammar = isinstance(recognizer, GrammarTranscriber) and recognizer.out_of_grammar
        return Transcript(text, out_of_grammar=not text and out_of_grammar)


__all__ = ["Hearing", "Perceived", "StopSaid"]
