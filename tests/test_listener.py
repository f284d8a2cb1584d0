"""The listener on its own: frames in, wake / speech started / speech ended / no speech /
too long out, on the frame clock."""

from __future__ import annotations

import pytest
from fakes import SILENT, SPEECH, WAKE, FakeVad, FakeWake, frame_of

from firmware_app.core.messages import FRAME_SECONDS
from firmware_app.listen.segmenter import (
    NoSpeech,
    Segmenter,
    SpeechEnded,
    SpeechStarted,
    TooLong,
    Woke,
    preroll_frames,
)


def segmenter(preroll_ms: int = 500, max_request_s: float = 15.0) -> Segmenter:
    return Segmenter(
        FakeWake(),
        FakeVad(),
        threshold=0.5,
        silence_s=0.6,
        max_request_s=max_request_s,
        preroll_ms=preroll_ms,
    )


class Clock:
    def __init__(self, seg: Segmenter) -> None:
        self.seg = seg
        self.n = 0
        self.heard: list[tuple[float, object]] = []

    def feed(self, level: int, seconds: float = FRAME_SECONDS) -> list[object]:
        out = []
        for _ in range(max(1, round(seconds / FRAME_SECONDS))):
            self.n += 1
            t = round(self.n * FRAME_SECONDS, 6)
            for event in self.seg.segment(frame_of(level), t):
                self.heard.append((t, event))
                out.append(event)
        return out


@pytest.mark.parametrize(("ms", "frames"), [(0, 1), (80, 1), (300, 4), (480, 6), (500, 7)])
def test_preroll_is_rounded_up_to_whole_frames(ms: int, frames: int) -> None:
    assert preroll_frames(ms) == frames


def test_wake_carries_the_preroll_ending_with_the_wake_frame() -> None:
    c = Clock(segmenter())
    c.feed(SILENT, 2.0)
    (woke,) = c.feed(WAKE)
    assert isinstance(woke, Woke) and woke.detection.model == "hey_jarvis"
    assert len(woke.preroll) == 7 and woke.preroll[-1] == frame_of(WAKE)
    assert c.seg.begin(0.0, 5.0) == woke.preroll  # begin hands it over once
    assert c.seg.begin(0.0, 5.0) == ()


def test_a_request_from_start_to_end_of_speech() -> None:
    c = Clock(segmenter())
    c.feed(WAKE)
    c.seg.begin(c.n * FRAME_SECONDS, 5.0)
    assert [type(e) for e in c.feed(SPEECH)] == [SpeechStarted]
    assert c.feed(SPEECH, 1.0) == []
    assert c.feed(WAKE) == []  # a wake word while listening is not reported
    events = c.feed(SILENT, 1.0)
    assert len(events) == 1 and isinstance(events[0], SpeechEnded)
    end_t = next(t for t, e in c.heard if isinstance(e, SpeechEnded))
    last = events[0].last_speech_t
    assert 0.56 - 1e-6 <= end_t - last <= 0.64 + 1e-6  # the hangover, to the nearest frame


def test_no_speech_after_the_start_timeout() -> None:
    c = Clock(segmenter())
    c.seg.begin(0.0, 2.0)
    assert c.feed(SILENT, 1.9) == []
    assert [type(e) for e in c.feed(SILENT, 0.2)] == [NoSpeech]


def test_a_request_is_capped_at_its_maximum_length() -> None:
    c = Clock(segmenter(max_request_s=3.0))
    c.seg.begin(0.0, 5.0)
    c.feed(SPEECH, 2.9)
    events = c.feed(SPEECH, 0.3)
    assert [type(e) for e in events] == [TooLong]


def test_idle_frames_only_feed_the_wake_detector_and_the_preroll() -> None:
    seg = segmenter(preroll_ms=160)
    c = Clock(seg)
    assert c.feed(SPEECH, 3.0) == []  # speech without the wake word is nobody's business
    assert len(seg.preroll) == 2
    seg.reset()
    assert len(seg.preroll) == 0 and seg.wake.resets == 1


def hangover_with(progress: str, limit: tuple[float, float] | None = None) -> float:
    """Silence after speech until the request ends, when the recognizer says ``progress``
    (and the request's hangovers are capped at ``limit``, as while Home Assistant listens)."""
    seg = Segmenter(
        FakeWake(),
        FakeVad(),
        threshold=0.5,
        silence_s=0.6,
        max_request_s=15.0,
        preroll_ms=500,
        progress=lambda: progress,  # type: ignore[arg-type,return-value]
        done_s=0.16,
        unfinished_s=1.6,
        complete_s=0.08,
    )
    c = Clock(seg)
    seg.begin(0.0, 5.0)
    if limit is not None:
        seg.limit(*limit)
    c.feed(SPEECH, 1.0)
    c.feed(SILENT, 3.0)
    ended = [(t, e) for t, e in c.heard if isinstance(e, SpeechEnded)]
    assert len(ended) == 1
    return ended[0][0] - ended[0][1].last_speech_t


def test_a_whole_command_ends_the_request_after_a_short_pause() -> None:
    assert 0.16 - 0.04 - 1e-6 <= hangover_with("done") <= 0.16 + 0.04 + 1e-6


def test_a_complete_command_ends_the_request_after_one_quiet_frame() -> None:
    assert hangover_with("complete") == pytest.approx(0.08)


def test_the_start_of_a_command_may_pause_longer() -> None:
    assert 1.6 - 0.04 - 1e-6 <= hangover_with("unfinished") <= 1.6 + 0.04 + 1e-6


def test_other_speech_waits_the_usual_silence() -> None:
    assert 0.6 - 0.04 - 1e-6 <= hangover_with("unknown") <= 0.6 + 0.04 + 1e-6


@pytest.mark.parametrize(
    ("progress", "expected"),
    [("complete", 0.08), ("done", 0.16), ("unknown", 0.32), ("unfinished", 0.64)],
)
def test_a_request_home_assistant_listens_to_ends_sooner(progress: str, expected: float) -> None:
    assert abs(hangover_with(progress, (0.32, 0.64)) - expected) <= 0.04 + 1e-6


def test_the_cap_lasts_one_request() -> None:
    seg = segmenter()
    c = Clock(seg)
    seg.begin(0.0, 5.0)
    seg.limit(0.24, 0.24)
    seg.begin(0.0, 5.0)  # the next request, which the speaker answers itself
    c.feed(SPEECH, 1.0)
    (ended,) = c.feed(SILENT, 1.0)
    end_t = next(t for t, e in c.heard if isinstance(e, SpeechEnded))
    assert isinstance(ended, SpeechEnded)
    assert 0.56 - 1e-6 <= end_t - ended.last_speech_t <= 0.64 + 1e-6
