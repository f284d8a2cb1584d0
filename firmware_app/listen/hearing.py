"""Hearing: one microphone frame in, what the assistant cares about out.

Everything a frame goes through before the state machine sees an event happens here, in
this order: the speaker's echo is taken out (with the playback heard during that frame as
the reference), its loudness is measured (for wake arbitration), the stop spotter hears it
when the caller has armed it (the assistant speaks or a timer rings), the wake clips keep
it, while a request is open the recognizer is fed, and then the segmenter runs the wake
word, pre-roll and voice detection. The recognizer hears each frame before the segmenter
decides on it, because the segmenter asks it (the ``progress`` hook) whether the request
already holds a whole command: a request ends a short pause after one (``vad.done_ms``;
one frame of silence, ``vad.complete_ms``, when nothing its grammar lets follow would change
what it asks) and may pause longer inside the start of one (``vad.unfinished_ms``). The
recognizer is opened by `begin` (pre-roll first, handed over to be decoded along with the
frames that follow when the recognizer can) and finished exactly once per request: when
the segmenter ends the request (the transcript rides on the `SpeechEnded`/`TooLong`
event), or when the caller calls `end` first. Each frame of the open request also goes to
the request's relay, when the caller gave one (Home Assistant listening to the same request).

While the wake word is turned off (`wake_word`, Hermes' ``hotword/toggleOff``) a wake is
neither kept as a clip nor reported. The assistant guards what comes in: muted frames never
reach `hear`. Nothing here changes
assistant state; it only reports what it heard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from loguru import logger

from firmware_app.audio.echo import CAPTURE_LEAD_S, PlaybackReference
from firmware_app.config.settings import Settings
from firmware_app.core.engines import (
    CommandTranscriber,
    EchoCanceller,
    GrammarTranscriber,
    NoEcho,
    NoStopSpotter,
    PrerollTranscriber,
    SpeechDetector,
    StopSpotter,
    Transcriber,
    WakeDetector,
)
from firmware_app.core.events import wall_now
from firmware_app.core.messages import Frame
from firmware_app.listen.lead_in import LeadIn
from firmware_app.listen.level import LevelMeter
from firmware_app.listen.segmenter import (
    Heard,
    NoSpeech,
    Progress,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Transcript,
    Woke,
)
from firmware_app.listen.wake_clips import FALSE_WAKE_PREFIX, FALSE_WAKE_SUFFIXES, WakeClips
from firmware_app.system.kept_files import KeptFiles
from firmware_app.understand.intents import Intent
from firmware_app.understand.intents.whole import command_reader

MAX_WAKE_OFF_REASONS = 16
"""Distinct reasons held for the wake word being off (Rhasspy uses a handful)."""


class WakeSwitch:
    """Why the wake word is off. Wakes stop while any reason holds them off (Rhasspy's
    dialogue manager turns them off for a session or while it plays audio, and on again
    with the same reason); turning on without a reason clears them all. At most
    ``MAX_WAKE_OFF_REASONS`` are held: a flood of made-up reasons keeps wakes off without
    growing the set."""

    def __init__(self) -> None:
        self._off: set[str] = set()

    @property
    def on(self) -> bool:
        return not self._off

    @property
    def reasons(self) -> list[str]:
        return sorted(self._off)

    def turn(self, on: bool, reason: str) -> bool:
        """Turn it on or off for ``reason``; False when the reason was refused (too many)."""
        if on and reason:
            self._off.discard(reason)
        elif on:
            self._off.clear()
        elif len(self._off) < MAX_WAKE_OFF_REASONS or reason in self._off:
            self._off.add(reason)
        else:
            return False
        return True


@dataclass(frozen=True)
class StopSaid:
    """ "Stop" was said alone while the stop spotter was armed."""


Perceived = Heard | StopSaid
"""Everything `Hearing.hear` reports."""


ENDINGS_READ = 64
"""Most ways a whole command could go on that are read before it is taken as complete;
one with more (a timer's duration, which a name or more time may follow) is not."""


TEXTS_KEPT = 256
"""Texts whose progress is remembered (then forgotten all at once): bounded memory."""


def command_progress(
    recognizer: CommandTranscriber, read: Callable[[str], Intent | None]
) -> Callable[[], Progress]:
    """The segmenter's ``progress`` hook: what ``recognizer`` has heard of the request so
    far. A command ``read`` understands is complete when no way the grammar lets it go on
    asks anything else ("what time is it [right now] [please]"), whole when some would
    ("stop" may become "stop the pasta timer", "five minutes" "five minutes and thirty
    seconds"); words it does not understand yet are the start of one. A complete command
    counts as complete only when the best path held it on the frame before too: in the
    first quiet frames the decoder may still change its mind ("set the volume to" heard
    as "... to eight" in a pause, and back).

    Other speech heard so far, or only the wake phrase's end, is taken as the start of a
    command too: a command whose first words were misheard is not cut at a pause to
    think, and other speech (a question for the online model, with an open-speech
    recognizer beside) waits a second longer before it goes on."""
    judged: dict[str, Progress] = {}
    """Per text heard (the best path stays the same over the frames of a pause). A new
    timer name never makes a complete command whole: every place a name may go holds
    the common names already."""

    def judge(text: str) -> Progress:
        meant = read(text)
        if meant is None:
            return "unfinished"
        endings = recognizer.endings(text)
        if endings is None:
            return "done"
        for n, ending in enumerate(endings):
            if n >= ENDINGS_READ:
                return "done"
            longer = read(f"{text} {ending}")
            if longer is not None and longer != meant:  # not understood: would change nothing
                return "done"
        return "complete"

    before: list[str | None] = [None]  # the best path when last asked (the frame before)

    def progress() -> Progress:
        text = recognizer.partial_command()
        held, before[0] = before[0], text
        if not text:
            return "unfinished"
        if text not in judged:
            if len(judged) >= TEXTS_KEPT:
                judged.clear()
            judged[text] = judge(text)
        if judged[text] == "complete" and text != held:
            return "done"  # confident only once the decoder holds to it for a frame
        return judged[text]

    return progress


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
        self.wake_word = WakeSwitch()
        """Off (Hermes' ``hotword/toggleOff``): wakes are neither kept as clips nor reported."""
        self._relay: Callable[[bytes], None] | None = None
        """Where else the open request's audio goes (after the pre-roll)."""
        self._lead_in = LeadIn()
        """While the recognizer waits for speech: the frames before it (lead_in.py)."""

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
        """Hearing with the segmenter and wake clips the settings describe; a recognizer
        that can report the command heard so far lets the segmenter end a request sooner
        on a whole command and later on the start of one."""
        progress = None
        if isinstance(recognizer, CommandTranscriber):
            progress = command_progress(recognizer, command_reader(settings.intents))
        segmenter = Segmenter(
            wake,
            vad,
            threshold=settings.vad.threshold,
            silence_s=settings.vad.silence_ms / 1000,
            max_request_s=settings.vad.max_request_s,
            preroll_ms=settings.wake.preroll_ms,
            progress=progress,
            done_s=settings.vad.done_ms / 1000,
            complete_s=settings.vad.complete_ms / 1000,
            unfinished_s=settings.vad.unfinished_ms / 1000,
        )
        wake_cfg = settings.wake
        saved = None
        if wake_cfg.false_wake_dir is not None:
            saved = KeptFiles(
                wake_cfg.false_wake_dir,
                FALSE_WAKE_PREFIX,
                FALSE_WAKE_SUFFIXES,
                wake_cfg.false_wake_max_mb,
                wake_cfg.false_wake_keep,
                "false wake clips",
            )
        clips = WakeClips(wake_cfg.clips_kept, saved=saved)
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
        if stop_armed and self.stop.spot(pcm):
            heard.append(StopSaid())
        self.clips.hear(pcm)  # before the segmenter: a clip starts with the frame that woke
        if self._open:  # before the segmenter, which may end the request on what was heard
            self._feed(pcm)
        events = self.segmenter.segment(pcm, t)
        for event in events:
            if isinstance(event, SpeechStarted) and self._lead_in.waiting:
                for pcm in self._lead_in.release():  # decoded along with what follows
                    self._recognize(pcm, later=True)
            if isinstance(event, Woke):
                if not self.wake_word.on:
                    logger.debug(
                        "wake word {} ignored: turned off ({})",
                        event.detection.model,
                        ", ".join(self.wake_word.reasons),
                    )
                    continue
                self.clips.wake(event.detection.model, event.detection.score, t)
                heard.append(event)
            elif isinstance(event, SpeechEnded | TooLong):
                audio, ended = tuple(self._audio), wall_now()
                transcript = self._finish()
                heard.append(replace(event, transcript=transcript, audio=audio, ended_wall=ended))
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
        """Open a request at ``t``: the recognizer starts and hears ``preroll`` first, from
        the pause after the wake phrase when it ends in one (``listen/lead_in.py``; a
        recognizer that can decodes it a frame at a time along with the frames that follow:
        no burst of decoding between the wake word and listening); ``relay`` is given each
        frame of the request after that (the pre-roll holds the wake word, which is not part
        of what was asked)."""
        self.segmenter.begin(t, start_timeout_s)
        self._audio = []
        self._relay = None
        if self.recognizer is not None:
            self.recognizer.start()
        self._open = True
        for pcm in self._lead_in.begin(preroll):
            self._recognize(pcm, later=True)
        if self.keep_audio:
            self._audio.extend(preroll)
        self._relay = relay

    def limit_silence(self, silence_s: float, unfinished_s: float) -> None:
        """The open request ends sooner (see `Segmenter.limit`): Home Assistant took it."""
        self.segmenter.limit(silence_s, unfinished_s)

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
        """The frame without the speaker's echo. The canceller sees every frame (it keeps
        the timeline continuous), but while nothing was played near it, it is handed an
        empty reference, which it takes as silence, instead of a window of zeros."""
        ref = frame.ref
        if ref is None and self.reference is not None:
            end_t, n = frame.t - CAPTURE_LEAD_S, len(frame.pcm) // 2
            if self.reference.played(end_t, n):
                ref = self.reference.window(end_t, n).astype("<i2").tobytes()
            else:
                ref = b""
        return frame.pcm if ref is None else self.echo.cancel(frame.pcm, ref)

    def _feed(self, pcm: bytes) -> None:
        if not self._lead_in.hold(pcm):
            self._recognize(pcm)
        if self.keep_audio:
            self._audio.append(pcm)
        if self._relay is not None:
            self._relay(pcm)

    def _recognize(self, pcm: bytes, *, later: bool = False) -> None:
        if later and isinstance(self.recognizer, PrerollTranscriber):
            self.recognizer.feed_later(pcm)
        elif self.recognizer is not None:
            self.recognizer.feed(pcm)

    def _finish(self) -> Transcript:
        """The transcript; the recognizer is finished once per request."""
        was_open, self._open = self._open, False
        self._relay = None
        self._lead_in.end()
        if self.recognizer is None:
            return Transcript(None)
        if not was_open:
            return Transcript("")
        recognizer = self.recognizer
        text = recognizer.finish()
        # only a recognizer given its sentences can hear speech that is none of them
        grammar = recognizer if isinstance(recognizer, GrammarTranscriber) else None
        out_of_grammar = grammar is not None and grammar.out_of_grammar
        near = grammar.near_command if grammar is not None else None
        return Transcript(text, out_of_grammar=not text and out_of_grammar, near_command=near)


__all__ = ["Hearing", "Perceived", "StopSaid", "WakeSwitch", "command_progress"]
