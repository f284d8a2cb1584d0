"""The playback timeline and the echo path that ``simulate --echo`` uses."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_app.audio.echo import EchoPath, PlaybackReference, PlaybackTap, parse_echo

RATE = 16000


def tone(n: int, value: int = 1000) -> bytes:
    return (np.full(n, value, dtype="<i2")).tobytes()


def test_window_returns_what_played_and_silence_around_it() -> None:
    ref = PlaybackReference()
    ref.place(1.0, tone(1600, 1000), RATE)  # 1.0 s to 1.1 s
    before = ref.window(1.0, 160)
    assert not before.any()
    inside = ref.window(1.05, 800)
    assert (inside == 1000).all()
    straddle = ref.window(1.11, 320)  # 1.09..1.11: half played, half after the end
    assert (straddle[:160] == 1000).all() and not straddle[160:].any()


def test_played_says_whether_a_window_holds_placed_audio() -> None:
    ref = PlaybackReference()
    assert not ref.played(1.0, 160)  # nothing placed yet
    ref.place(1.0, tone(1600, 1000), RATE)  # 1.0 s to 1.1 s
    assert ref.played(1.05, 160) and ref.played(1.11, 320)
    assert not ref.played(1.2, 1280)  # after the end: the idle speaker's question
    assert ref.played(0.5, 160)  # the silence before it was placed too (window: zeros)


def test_later_audio_replaces_what_was_scheduled_from_its_start() -> None:
    ref = PlaybackReference()
    ref.place(0.0, tone(3200, 1000), RATE)
    ref.place(0.1, tone(160, 2000), RATE)
    got = ref.window(0.2, 3200)
    assert (got[:1600] == 1000).all()
    assert (got[1600:1760] == 2000).all()
    assert not got[1760:].any()


def test_cut_drops_what_was_not_yet_heard() -> None:
    ref = PlaybackReference()
    ref.place(0.0, tone(16000), RATE)
    ref.cut(0.5)
    assert (ref.window(0.5, 8000) == 1000).all()
    assert not ref.window(1.0, 8000).any()


def test_audio_at_another_rate_is_resampled_to_16k() -> None:
    ref = PlaybackReference()
    t = np.arange(22050) / 22050
    ref.place(0.0, (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes(), 22050)
    samples = ref.samples()
    assert abs(len(samples) - RATE) <= 2
    spectrum = np.abs(np.fft.rfft(samples[:RATE]))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1  # 1 Hz bins: the pitch is kept


def test_keep_bounds_memory_but_recent_audio_stays() -> None:
    ref = PlaybackReference(keep_s=1.0)
    for second in range(10):
        ref.place(float(second), tone(RATE, second + 1), RATE)
    assert len(ref.samples()) <= 2 * RATE
    assert (ref.window(9.5, 800) == 10).all()
    assert not ref.window(2.0, 800).any()  # long gone


def test_echo_is_delayed_and_scaled() -> None:
    ref = PlaybackReference()
    ref.place(0.0, tone(RATE, 10000), RATE)
    path = EchoPath(gain_db=-6.0, delay_ms=50)
    mic = np.zeros(1280, dtype="<i2").tobytes()
    first = np.frombuffer(path.mix(mic, ref, 0.08), dtype="<i2")
    # 80 ms frame, 50 ms delay: the first 50 ms are silent, then the echo at -6 dB
    assert not first[:800].any()
    assert np.allclose(first[800:], 10000 * 10 ** (-6 / 20), atol=1)


def test_mix_adds_to_the_microphone_and_clips_like_an_adc() -> None:
    ref = PlaybackReference()
    ref.place(0.0, tone(RATE, 30000), RATE)
    path = EchoPath(gain_db=0.0, delay_ms=0)
    mic = tone(1280, 10000)
    mixed = np.frombuffer(path.mix(mic, ref, 0.5), dtype="<i2")
    assert (mixed == 32767).all()


@pytest.mark.parametrize(
    ("spec", "gain", "delay"),
    [("-12", -12.0, 20.0), ("-6,40", -6.0, 40.0), ("\u22126, 10", -6.0, 10.0), ("0,0", 0.0, 0.0)],
)
def test_parse_echo(spec: str, gain: float, delay: float) -> None:
    path = parse_echo(spec)
    assert (path.gain_db, path.delay_ms) == (gain, delay)


@pytest.mark.parametrize("spec", ["", "loud", "-6,", "-6,40,1", "-80", "20", "-6,-1", "-6,900"])
def test_parse_echo_rejects_nonsense_with_one_clear_line(spec: str) -> None:
    with pytest.raises(ValueError, match="--echo") as info:
        parse_echo(spec)
    assert "\n" not in str(info.value)


def test_tap_places_writes_back_to_back_from_the_time_they_are_made() -> None:
    now = [1.0]
    ref = PlaybackReference()
    tap = PlaybackTap(ref, RATE, lambda: now[0])
    tap.written(tone(800, 1000))  # 1.00-1.05
    tap.written(tone(800, 2000))  # queued behind it: 1.05-1.10
    assert (ref.window(1.05, 800) == 1000).all()
    assert (ref.window(1.10, 800) == 2000).all()
    now[0] = 2.0  # a pause: the next write starts when it is made
    tap.written(tone(160, 3000))
    assert not ref.window(2.0, 1600).any()
    assert (ref.window(2.01, 160) == 3000).all()


def test_tap_stop_cuts_what_was_queued() -> None:
    now = [0.0]
    ref = PlaybackReference()
    tap = PlaybackTap(ref, RATE, lambda: now[0])
    tap.written(tone(RATE, 1000))  # one second queued
    now[0] = 0.25
    tap.stopped()
    assert (ref.window(0.25, 4000) == 1000).all()
    assert not ref.window(1.0, 4000).any()


def test_tap_resamples_as_one_stream() -> None:
    """50 ms chunks at 22050 Hz come out as one continuous 16 kHz tone."""
    ref = PlaybackReference()
    tap = PlaybackTap(ref, 22050, lambda: 0.0)
    t = np.arange(22050) / 22050
    wave = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")
    for start in range(0, 22050, 1102):
        tap.written(wave[start : start + 1102].tobytes())
    got = ref.samples()[2000:14000].astype(np.float64)
    n = np.arange(2000, 14000) / RATE
    basis = np.stack([np.sin(2 * np.pi * 300 * n), np.cos(2 * np.pi * 300 * n)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, got, rcond=None)
    residual = got - basis @ coef
    # one continuous 300 Hz sine (any phase): a gap or a doubled chunk would leave a lot
    assert np.sqrt(np.mean(residual**2)) < 0.01 * 8000
    assert abs(np.hypot(*coef) - 8000) < 200


def test_the_simulated_speaker_keeps_the_reference_of_what_it_plays() -> None:
    from firmware_app.audio.sim import SimulatedSpeaker

    now = [0.5]
    posted: list[object] = []
    ref = PlaybackReference()
    speaker = SimulatedSpeaker(RATE, posted.append, lambda: now[0], reference=ref)
    speaker.play(1, tone(RATE, 1000))  # 0.5-1.5 s
    speaker.play(1, tone(RATE // 2, 2000))  # queued: 1.5-2.0 s
    assert not ref.window(0.5, 800).any()
    assert (ref.window(1.5, RATE) == 1000).all()
    assert (ref.window(2.0, RATE // 2) == 2000).all()
    assert np.array_equal(ref.samples(), speaker.samples())
    now[0] = 1.0
    speaker.stop()  # cut at 1.0 s: the rest is never heard
    assert (ref.window(1.0, 8000) == 1000).all()
    assert not ref.window(2.0, RATE).any()


def test_a_real_alsa_speaker_fills_the_reference_as_it_writes(alsa_files) -> None:
    """Through the real ALSA API (the file plugin): what the speaker thread writes lands on
    the reference at 16 kHz; a stop cuts what was still to come."""
    import time

    from firmware_app.audio.playback import AlsaSpeaker
    from firmware_app.core.events import wall_now
    from firmware_app.core.messages import Inbox, PlaybackDone

    ref = PlaybackReference()
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", 22050, inbox.post, tap=PlaybackTap(ref, 22050, wall_now))
    t = np.arange(22050) / 22050
    tone22 = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
    began = wall_now()
    speaker.play(1, tone22)
    speaker.finish(1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(isinstance(m, PlaybackDone) for m in list(inbox.queue.queue)):
            break
        time.sleep(0.02)
    heard = ref.window(wall_now() + 2.0, 4 * RATE)
    loud = np.flatnonzero(np.abs(heard) > 1000)
    # one second of tone at 16 kHz: a chunk written late (a loaded machine delays the
    # speaker thread by tens, at worst a hundred or more, milliseconds) is placed late, so
    # allow 0.2 s; a wrong rate (22,050 taken for 16,000 or the reverse) would be off by
    # 0.27 s or more
    assert abs(len(heard[loud[0] : loud[-1] + 1]) - RATE) < RATE // 5
    first = wall_now() + 2.0 - 4 + loud[0] / RATE
    assert began - 0.05 <= first <= began + 0.5  # placed when it was written
    spectrum = np.abs(np.fft.rfft(heard[loud[0] : loud[0] + RATE]))
    assert abs(int(np.argmax(spectrum)) - 440) <= 2

    speaker.play(2, tone22 * 5)
    time.sleep(0.2)
    speaker.stop()
    time.sleep(0.3)
    speaker.close()
    assert not ref.window(wall_now() + 5.0, 4 * RATE).any()  # nothing left after the stop
