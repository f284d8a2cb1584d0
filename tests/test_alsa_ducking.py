"""Media under speech on real pyalsaaudio playback through ALSA's file plugin: Home
Assistant's media keeps playing while the speaker talks, ducked, and comes back up after;
a stop of speech leaves it playing, ``stop_media`` ends it.

The media is a 440 Hz tone and the speech a 1 kHz tone, so the level of each can be read
from the device's output in every 50 ms window (both have whole cycles in a window)."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest
from harness import wait_until

from firmware_app.audio.ducking import RAMP_S, MediaTrack, duck_gain, mix
from firmware_app.audio.playback import AlsaSpeaker
from firmware_app.core.messages import Inbox, PlaybackDone

RATE = 16000
WINDOW = RATE // 20
MEDIA_HZ, SPEECH_HZ = 440, 1000
LEVEL = 8000


def tone(hz: int, seconds: float, rate: int = RATE) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * LEVEL).astype("<i2").tobytes()


def levels(samples: np.ndarray, hz: int) -> np.ndarray:
    """The amplitude of ``hz`` in each whole 50 ms window."""
    n = len(samples) // WINDOW
    windows = samples[: n * WINDOW].reshape(n, WINDOW).astype(np.float64)
    probe = np.exp(-2j * np.pi * hz * np.arange(WINDOW) / RATE)
    return np.abs(windows @ probe) * 2 / WINDOW


def wait_done(inbox: Inbox, timeout: float = 10.0) -> PlaybackDone:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            msg = inbox.get(timeout=0.05)
        except queue.Empty:
            continue
        if isinstance(msg, PlaybackDone):
            return msg
    raise AssertionError("no PlaybackDone")


def test_media_is_ducked_under_speech_and_restored_after(alsa_files):
    _, speaker_file = alsa_files
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", RATE, inbox.post, duck_gain=0.25)
    try:
        speaker.play_media(tone(MEDIA_HZ, 3.0), RATE)
        assert speaker.media_playing()
        time.sleep(0.6)
        speaker.play(1, tone(SPEECH_HZ, 0.8))
        speaker.finish(1)
        wait_done(inbox)
        wait_until(lambda: not speaker.media_playing(), timeout=10, what="the media's end")
    finally:
        speaker.close()
    out = np.frombuffer(speaker_file.read_bytes(), dtype="<i2")
    assert len(out) == 3 * RATE  # the media whole, the speech over it: nothing added
    media, speech = levels(out, MEDIA_HZ), levels(out, SPEECH_HZ)
    talking = np.flatnonzero(speech > LEVEL * 0.9)
    assert len(talking) == 16  # the speech, whole and at its own level
    first, last = int(talking[0]), int(talking[-1])
    assert first >= 8  # the media played alone first (it started 0.6 s earlier)
    ramp = int(np.ceil(RAMP_S * 20))
    assert media[:first] == pytest.approx(LEVEL, rel=0.02)
    assert media[first + ramp : last + 1] == pytest.approx(LEVEL * 0.25, rel=0.05)
    assert np.all(np.diff(media[first : first + ramp + 1]) <= 1)  # a fade down, no jump
    assert media[last + 1 + ramp :] == pytest.approx(LEVEL, rel=0.02)  # back up after


def test_a_stop_of_speech_leaves_the_media_playing_and_stop_media_ends_it(alsa_files):
    _, speaker_file = alsa_files
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", RATE, inbox.post)
    try:
        speaker.play_media(tone(MEDIA_HZ, 5.0), RATE)
        speaker.play(2, tone(SPEECH_HZ, 3.0))
        time.sleep(0.3)
        speaker.stop()
        assert wait_done(inbox).utterance == 2
        time.sleep(0.3)
        assert speaker.media_playing()
        speaker.stop_media()
        assert not speaker.media_playing()
        time.sleep(0.3)
        size = speaker_file.stat().st_size
        time.sleep(0.4)
        assert speaker_file.stat().st_size == size  # nothing more written
    finally:
        speaker.close()
    assert size < 5 * RATE * 2


def test_media_at_another_rate_is_resampled_to_the_speakers(alsa_files):
    _, speaker_file = alsa_files
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", RATE, inbox.post)
    try:
        speaker.play_media(tone(MEDIA_HZ, 1.0, rate=44100), 44100)
        wait_until(lambda: not speaker.media_playing(), timeout=10, what="the media's end")
    finally:
        speaker.close()
    out = np.frombuffer(speaker_file.read_bytes(), dtype="<i2")
    assert abs(len(out) - RATE) <= 2
    assert levels(out, MEDIA_HZ)[2:-2] == pytest.approx(LEVEL, rel=0.05)


def test_the_gain_glides_and_the_mix_clips() -> None:
    assert duck_gain(0) == 1.0 and duck_gain(-20) == pytest.approx(0.1)
    track = MediaTrack(np.full(RATE, 1000, dtype=np.int16), RATE, 0.5)
    down = track.take(RATE // 2, ducked=True)
    assert down[0] < 1000 and down[-1] == pytest.approx(500) and np.all(np.diff(down) <= 0)
    up = track.take(RATE // 2, ducked=False)
    assert up[-1] == pytest.approx(1000) and track.done
    loud = np.full(4, 30000, dtype="<i2").tobytes()
    assert np.frombuffer(mix(loud, np.full(2, 10000.0, np.float32)), "<i2").tolist() == [
        32767,
        32767,
        30000,
        30000,
    ]


def test_media_held_ducked_without_speech(alsa_files):
    _, speaker_file = alsa_files
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", RATE, inbox.post, duck_gain=0.5)
    try:
        speaker.play_media(tone(MEDIA_HZ, 2.0), RATE)
        time.sleep(0.5)
        speaker.duck(True)
        time.sleep(0.8)
        speaker.duck(False)
        wait_until(lambda: not speaker.media_playing(), timeout=10, what="the media's end")
    finally:
        speaker.close()
    media = levels(np.frombuffer(speaker_file.read_bytes(), dtype="<i2"), MEDIA_HZ)
    assert len(media) == 40
    low = np.flatnonzero(media < LEVEL * 0.51)
    assert len(low) >= 8  # held down for a while
    assert media[: low[0] - 5] == pytest.approx(LEVEL, rel=0.02)
    assert media[-5:] == pytest.approx(LEVEL, rel=0.02)  # and back up
