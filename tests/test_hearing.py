"""Hearing alone: the per-frame path from a microphone frame to the events the table names,
with fakes that record what they were sent."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fakes import SILENT, SPEECH, WAKE, FakeVad, FakeWake, Rig, frame_of

from firmware_app.audio.echo import CAPTURE_LEAD_S, PlaybackReference
from firmware_app.config.settings import Settings
from firmware_app.core.messages import FRAME_SECONDS, Command, Frame
from firmware_app.listen.hearing import Hearing, StopSaid
from firmware_app.listen.level import LevelMeter
from firmware_app.listen.segmenter import NoSpeech, SpeechEnded, SpeechStarted, TooLong, Woke


class RecordingStt:
    """Records every frame fed to each utterance, in order, and every start and finish."""

    def __init__(self, text: str = "what time is it", out_of_grammar: bool = False) -> None:
        self.text = text
        self.out_of_grammar = out_of_grammar
        self.calls: list[str] = []
        self.fed: list[bytes] = []

    def start(self) -> None:
        self.calls.append("start")
        self.fed = []

    def feed(self, pcm: bytes) -> None:
        self.fed.append(pcm)

    def finish(self) -> str:
        self.calls.append("finish")
        return self.text

    near_command: str | None = None

    def observe(self, event: object) -> None:  # a grammar recognizer hears the events
        pass

    def hold_timers(self, timers: dict[str, str | None]) -> None:
        pass


class RecordingStop:
    def __init__(self, hears_stop_at: int | None = None) -> None:
        self.fed: list[bytes] = []
        self.resets = 0
        self.hears_stop_at = hears_stop_at

    def spot(self, pcm: bytes) -> bool:
        self.fed.append(pcm)
        return len(self.fed) == self.hears_stop_at

    def reset(self) -> None:
        self.resets += 1


class RecordingEcho:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        self.calls.append((mic, ref))
        return frame_of(SILENT)  # everything it heard was the speaker

    def reset(self) -> None:
        pass


class Feeder:
    def __init__(self, hearing: Hearing) -> None:
        self.hearing = hearing
        self.t = 0.0

    def frame(self, level: int, **kw: bool) -> list[object]:
        self.t = round(self.t + FRAME_SECONDS, 6)
        return list(self.hearing.hear(Frame(frame_of(level), self.t), self.t, **kw))

    def frames(self, level: int, seconds: float, **kw: bool) -> list[object]:
        heard: list[object] = []
        for _ in range(round(seconds / FRAME_SECONDS)):
            heard += self.frame(level, **kw)
        return heard


def hearing_for(settings: Settings, stt: RecordingStt | None, **kw: object) -> Hearing:
    return Hearing.from_settings(settings, FakeWake(), FakeVad(), stt, **kw)  # type: ignore[arg-type]


def test_the_stop_spotter_hears_only_while_armed(settings: Settings) -> None:
    stop = RecordingStop(hears_stop_at=3)
    f = Feeder(hearing_for(settings, RecordingStt(), stop=stop))
    assert f.frames(SILENT, 0.8) == []
    assert stop.fed == []  # not armed: not a frame
    heard = f.frames(SILENT, 0.4, stop_armed=True)
    assert len(stop.fed) == 5 and heard == [StopSaid()]
    f.hearing.disarm_stop()
    assert stop.resets == 1


def test_the_recognizer_hears_the_preroll_first_then_the_request(settings: Settings) -> None:
    stt = RecordingStt()
    f = Feeder(hearing_for(settings, stt))
    f.frames(SILENT, 0.4)
    [woke] = f.frame(WAKE)
    assert isinstance(woke, Woke) and woke.preroll[-1] == frame_of(WAKE)
    f.hearing.begin(f.t, 5.0, woke.preroll)
    assert stt.calls == ["start"] and stt.fed == list(woke.preroll)
    f.frame(SPEECH)
    assert stt.fed[len(woke.preroll) :] == [frame_of(SPEECH)]


def test_the_relay_gets_the_request_after_the_preroll_until_it_ends(settings: Settings) -> None:
    """Home Assistant hears what the recognizer hears of the request, the wake word aside,
    the frame that ended speech included, and nothing after."""
    stt, relayed = RecordingStt(), []
    f = Feeder(hearing_for(settings, stt))
    f.frames(SILENT, 0.4)
    [woke] = f.frame(WAKE)
    f.hearing.begin(f.t, 5.0, woke.preroll, relay=relayed.append)
    assert relayed == []  # the pre-roll holds the wake word
    heard = f.frames(SPEECH, 0.8) + f.frames(SILENT, 2.0)
    assert any(isinstance(e, SpeechEnded) for e in heard)
    assert relayed == stt.fed[len(woke.preroll) :] and frame_of(SPEECH) in relayed
    count = len(relayed)
    f.frames(SPEECH, 0.4)
    f.hearing.begin(f.t, 5.0)  # the next request has no relay unless it is given one
    f.frames(SPEECH, 0.4)
    assert len(relayed) == count


def test_ending_the_request_early_gives_its_transcript_once(settings: Settings) -> None:
    stt = RecordingStt()
    f = Feeder(hearing_for(settings, stt))
    f.hearing.begin(f.t, 5.0)
    f.frames(SPEECH, 0.4)
    assert f.hearing.end().text == "what time is it"
    assert f.hearing.end().text == "" and stt.calls == ["start", "finish"]


@pytest.mark.parametrize("ending", ["speech_ended", "too_long", "no_speech", "ended_early"])
def test_the_recognizer_is_finished_once_however_the_request_ends(
    settings: Settings, ending: str
) -> None:
    stt = RecordingStt()
    f = Feeder(hearing_for(settings, stt))
    f.hearing.begin(f.t, start_timeout_s=1.0)
    heard: list[object] = []
    if ending == "speech_ended":
        heard = f.frames(SPEECH, 0.8) + f.frames(SILENT, 2.0)
    elif ending == "too_long":
        heard = f.frames(SPEECH, settings.vad.max_request_s + 0.5)
    elif ending == "no_speech":
        heard = f.frames(SILENT, 1.5)
    else:
        f.frames(SPEECH, 0.4)
    f.hearing.end()  # what leaving LISTENING does, however it was left
    f.hearing.end()
    assert stt.calls == ["start", "finish"]
    ends = [e for e in heard if isinstance(e, SpeechEnded | TooLong | NoSpeech)]
    assert len(ends) == (0 if ending == "ended_early" else 1)
    if ending in ("speech_ended", "too_long"):
        [end] = ends
        assert isinstance(end, SpeechEnded if ending == "speech_ended" else TooLong)
        assert end.transcript.text == "what time is it"  # type: ignore[union-attr]
        assert isinstance(heard[0], SpeechStarted)
    fed = len(stt.fed)
    f.frames(SPEECH, 0.4)
    assert len(stt.fed) == fed  # nothing reaches a finished recognizer


def test_the_transcript_says_when_speech_was_out_of_grammar(settings: Settings) -> None:
    f = Feeder(hearing_for(settings, RecordingStt("", out_of_grammar=True)))
    f.hearing.begin(f.t, 5.0)
    heard = f.frames(SPEECH, 0.8) + f.frames(SILENT, 2.0)
    [end] = [e for e in heard if isinstance(e, SpeechEnded)]
    assert end.transcript.text == "" and end.transcript.out_of_grammar
    g = Feeder(hearing_for(settings, None))  # no speech model: nothing could be heard
    g.hearing.begin(g.t, 5.0)
    heard = g.frames(SPEECH, 0.8) + g.frames(SILENT, 2.0)
    [end] = [e for e in heard if isinstance(e, SpeechEnded)]
    assert end.transcript.text is None


def test_the_echo_is_taken_out_before_anything_hears_the_frame(settings: Settings) -> None:
    echo, level = RecordingEcho(), LevelMeter()
    reference = PlaybackReference(keep_s=5.0)
    played = np.full(16000, 1234, dtype=np.int16)
    reference.place(0.0, played.tobytes(), 16000)
    hearing = hearing_for(settings, RecordingStt(), echo=echo, reference=reference, level=level)
    t = 0.4
    # the microphone's own reference wins; without one, what the speaker played then
    assert hearing.hear(Frame(frame_of(WAKE), t, ref=frame_of(1)), t) == []
    assert hearing.hear(Frame(frame_of(WAKE), t + FRAME_SECONDS), t + FRAME_SECONDS) == []
    assert echo.calls[0] == (frame_of(WAKE), frame_of(1))
    expected = reference.window(t + FRAME_SECONDS - CAPTURE_LEAD_S, 1280).astype("<i2")
    assert echo.calls[1][1] == expected.tobytes() and expected[0] == 1234
    # once the playback is over the canceller still sees the frame, with an empty reference
    late = 1.0 + CAPTURE_LEAD_S + FRAME_SECONDS
    assert hearing.hear(Frame(frame_of(SILENT), late), late) == []
    assert echo.calls[2] == (frame_of(SILENT), b"")
    assert level.level_db() < -100  # it measured the cleaned frames, not the echo
    assert hearing.clips.clips() == []  # the wake word was the speaker's: no wake


def test_a_wake_starts_a_clip_and_the_level_is_the_wake_words(settings: Settings) -> None:
    level = LevelMeter()
    f = Feeder(hearing_for(settings, RecordingStt(), level=level))
    f.frames(SILENT, 0.4)
    f.frame(WAKE)
    assert level.level_db() == pytest.approx(20 * np.log10(WAKE / 32768), abs=0.1)
    [clip] = f.hearing.clips.clips()
    assert (clip.model, clip.t) == ("hey_jarvis", f.t)


def test_muted_frames_never_reach_hearing(settings: Settings) -> None:
    stt, stop = RecordingStt(), RecordingStop()
    rig = Rig(settings, stt=stt, stop=stop)
    rig.post(Command("mute", {"muted": True}))
    rig.feed(WAKE, 0.4)
    rig.feed(SPEECH, 1.0)
    assert rig.wake.frames == 0 and stt.calls == [] and stop.fed == []
    assert rig.hearing.clips.clips() == [] and rig.hearing.level.level_db() < -100
    rig.post(Command("mute", {"muted": False}))
    rig.feed(WAKE)
    assert rig.wake.frames == 1 and rig.assistant.state.value == "listening"
    rig.close()


class CommandStt(RecordingStt):
    """A recognizer that reports the command heard so far and takes the pre-roll to decode
    later; it notes how many frames it had been fed each time it was asked."""

    def __init__(self, partial: str | None, endings: tuple[str, ...] = ()) -> None:
        super().__init__(partial or "")
        self.partial = partial
        self._endings = endings
        self.later: list[bytes] = []
        self.asked_after: list[int] = []

    def feed_later(self, pcm: bytes) -> None:
        self.later.append(pcm)

    def partial_command(self) -> str | None:
        self.asked_after.append(len(self.fed))
        return self.partial

    def endings(self, command: str) -> Iterator[str] | None:
        return iter(self._endings) if command == self.partial else None


def test_after_a_pause_the_recognizer_waits_for_speech(settings: Settings) -> None:
    """The pre-roll ends in a pause after the wake phrase: the phrase is never heard, and
    the recognizer waits for speech; then it hears the lead-in before it (where a quiet
    first sound would be) and the rest."""
    stt = CommandStt("what time is it")
    f = Feeder(hearing_for(settings, stt))
    pause = (frame_of(SILENT), frame_of(SILENT))
    f.hearing.begin(f.t, 5.0, (frame_of(WAKE), frame_of(WAKE), *pause))
    f.frames(SILENT, 0.8)
    assert stt.later == [] and stt.fed == []
    assert f.frame(SPEECH) == [SpeechStarted(f.t)]
    assert stt.later == [frame_of(SILENT)] * 3 + [frame_of(SPEECH)]  # the lead-in: 0.24 s
    f.frame(SPEECH)
    assert stt.fed == [frame_of(SPEECH)]


def test_without_a_pre_roll_the_recognizer_waits_for_speech(settings: Settings) -> None:
    """A request opened by the button or a follow-up: nothing before it to hear."""
    stt = CommandStt("what time is it")
    f = Feeder(hearing_for(settings, stt))
    f.hearing.begin(f.t, 5.0)
    f.frames(SILENT, 0.4)
    assert stt.later == [] and stt.fed == []
    f.frame(SPEECH)
    assert len(stt.later) == 4 and stt.later[-1] == frame_of(SPEECH)


def silence_until_the_end(f: Feeder) -> float:
    """0.8 s of speech into the open request, then silence until it ends: how long."""
    heard = f.frames(SPEECH, 0.8)
    for _ in range(round(3.0 / FRAME_SECONDS)):
        heard += f.frame(SILENT)
        if any(isinstance(e, SpeechEnded) for e in heard):
            break
    [end] = [e for e in heard if isinstance(e, SpeechEnded)]
    return f.t - end.last_speech_t


def pause_until_the_end(
    settings: Settings,
    partial: str | None,
    endings: tuple[str, ...] = (),
    open_speech: bool | None = None,
) -> tuple[float, CommandStt, int]:
    """Silence after speech until the request ends, when the recognizer holds ``partial``
    (which its grammar lets go on with ``endings``) and says whether it hears open speech
    (None: it does not say); also the recognizer and how many frames were heard since
    listening began."""
    stt = CommandStt(partial, endings)
    if open_speech is not None:
        stt.open_speech = open_speech  # type: ignore[attr-defined]
    f = Feeder(hearing_for(settings, stt))
    f.frames(SILENT, 0.4)
    [woke] = f.frame(WAKE)
    assert isinstance(woke, Woke)
    f.hearing.begin(f.t, 5.0, woke.preroll)
    assert stt.later == list(woke.preroll) and stt.fed == []  # decoded with what follows
    return silence_until_the_end(f), stt, len(stt.fed)


def test_a_whole_command_ends_the_request_after_a_short_pause(settings: Settings) -> None:
    # "stop" may go on as "stop the pasta timer": it waits done_ms
    pause, stt, frames = pause_until_the_end(settings, "stop", ("the pasta timer", "please"))
    done = settings.vad.done_ms / 1000
    assert done - FRAME_SECONDS <= pause <= done + FRAME_SECONDS
    assert stt.calls == ["start", "finish"]
    # asked about a frame only once it was fed the frame: the last ask saw every frame
    assert stt.asked_after and stt.asked_after[-1] == frames


def test_a_complete_command_ends_the_request_sooner(settings: Settings) -> None:
    # nothing that may follow changes what it asks ("not understood" changes nothing)
    pause, stt, frames = pause_until_the_end(
        settings, "what time is it", ("right now", "please", "thank you", "for me now")
    )
    complete, done = settings.vad.complete_ms / 1000, settings.vad.done_ms / 1000
    assert complete - FRAME_SECONDS / 2 <= pause < done - FRAME_SECONDS / 2
    # asked while the words came, so the answer was ready when the pause came
    assert stt.asked_after[0] == 1 and stt.asked_after[-1] == frames


def test_the_start_of_a_command_may_pause_longer(settings: Settings) -> None:
    pause, _, _ = pause_until_the_end(settings, "set a timer for")
    unfinished = settings.vad.unfinished_ms / 1000
    assert unfinished - FRAME_SECONDS <= pause <= unfinished + FRAME_SECONDS


def test_other_speech_may_pause_as_the_start_of_a_command(settings: Settings) -> None:
    """A request the command recognizer does not make out yet may be one whose first
    words it misheard, so a pause does not cut it, whether or not an open-speech
    recognizer is there to take it if it is none."""
    unfinished = settings.vad.unfinished_ms / 1000
    for partial in ("", None):
        for open_speech in (True, False, None):
            pause, _, _ = pause_until_the_end(settings, partial, open_speech=open_speech)
            assert unfinished - FRAME_SECONDS <= pause <= unfinished + FRAME_SECONDS


def test_without_a_command_recognizer_a_request_ends_after_the_usual_silence(
    settings: Settings,
) -> None:
    stt = RecordingStt()
    f = Feeder(hearing_for(settings, stt))
    f.hearing.begin(f.t, 5.0)
    silence = settings.vad.silence_ms / 1000
    assert silence - FRAME_SECONDS <= silence_until_the_end(f) <= silence + FRAME_SECONDS
