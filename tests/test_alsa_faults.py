"""Devices that tell the truth, through the real ALSA API: a capture device fed from a FIFO
stalls for real when nothing is written (its read blocks in the driver), and a playback
device that does not exist."""

from __future__ import annotations

import time

import pytest
from alsa_support import drain, say
from conftest import ALSA_FIFO
from harness import wait_until
from live_mic import MicFeeder

from firmware_app.audio.capture import Microphone
from firmware_app.audio.playback import AlsaSpeaker
from firmware_app.core.messages import (
    FRAME_SAMPLES,
    Frame,
    Inbox,
    Notice,
    PlaybackDone,
    PlaybackStarted,
)


@pytest.fixture
def feeder():
    f = MicFeeder(ALSA_FIFO)
    yield f
    f.close()


def test_a_stalled_microphone_is_reported_and_reopened(feeder):
    inbox = Inbox()
    mic = Microphone("testfifo", inbox.post, inbox.has_room, reopen_max_s=0.2, stall_s=0.6)
    mic.start()
    try:
        wait_until(lambda: mic.frames >= 5 and mic.stats()["status"] == "running", 10.0)
        feeder.stall(3600)  # the device stops delivering
        wait_until(lambda: mic.stats()["status"] == "stalled", 10.0)
        time.sleep(1.0)  # still stalled: reopened with backoff, reported once
        stats = mic.stats()
        assert stats["status"] == "stalled" and stats["reopens"] >= 1
        assert "delivered no audio" in stats["error"]
        before = mic.frames
        feeder.stall(0)
        wait_until(lambda: mic.stats()["status"] == "running" and mic.frames > before + 5, 10.0)
    finally:
        mic.close()
    msgs = drain(inbox)
    errors = [m for m in msgs if isinstance(m, Notice)]
    assert len(errors) == 1 and errors[0].fields["where"] == "audio.input"
    assert mic.stats()["stalls"] >= 1
    frames = [m for m in msgs if isinstance(m, Frame)]
    assert all(len(f.pcm) == FRAME_SAMPLES * 2 for f in frames)


def test_a_second_stall_after_recovery_is_reported_again(feeder):
    inbox = Inbox()
    mic = Microphone("testfifo", inbox.post, inbox.has_room, reopen_max_s=0.2, stall_s=0.5)
    mic.start()
    try:
        for _ in range(2):
            wait_until(lambda: mic.stats()["status"] == "running", 10.0)
            feeder.stall(3600)
            wait_until(lambda: mic.stats()["status"] == "stalled", 10.0)
            feeder.stall(0)
        wait_until(lambda: mic.stats()["status"] == "running", 10.0)
    finally:
        mic.close()
    errors = [m for m in drain(inbox) if isinstance(m, Notice)]
    assert len(errors) == 2  # one per episode, not one per retry


def test_a_missing_speaker_is_known_before_anything_is_said(alsa_files):
    inbox = Inbox()
    speaker = AlsaSpeaker("no_such_speaker_xyz", 22050, inbox.post, probe_s=0.1)
    try:
        wait_until(lambda: not speaker.available(), 10.0)
        assert speaker.stats()["status"] == "missing"
        msgs = say(speaker, inbox, 4, b"\0\0" * 2205)
        time.sleep(0.3)  # probes go on while missing; they must not repeat the notice
    finally:
        speaker.close()
    msgs += drain(inbox)
    assert not [m for m in msgs if isinstance(m, PlaybackStarted)]  # never "started"
    assert [m.utterance for m in msgs if isinstance(m, PlaybackDone)] == [4]
    assert len([m for m in msgs if isinstance(m, Notice)]) == 1


def test_a_present_speaker_is_available(alsa_files):
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", 22050, inbox.post)
    try:
        wait_until(lambda: speaker.stats()["status"] == "idle", 10.0)
        assert speaker.available()
    finally:
        speaker.close()
    assert not [m for m in drain(inbox) if isinstance(m, Notice)]


class EndingPcm:
    """A capture that delivers ``frames`` periods, then either fails (``error``) or returns
    nothing forever (a capture that has ended)."""

    def __init__(self, frames: int, error: bool) -> None:
        self.left, self.error, self.closed = frames, error, False

    def read(self) -> tuple[int, bytes]:
        if self.left > 0:
            self.left -= 1
            return FRAME_SAMPLES, b"\0\0" * FRAME_SAMPLES
        if self.error:
            raise OSError("No such device")
        time.sleep(0.01)
        return 0, b""

    def close(self) -> None:
        self.closed = True


class ScriptedMicrophone(Microphone):
    """The real supervisor over scripted captures (unit test: no device needed)."""

    def __init__(self, inbox: Inbox, error: bool) -> None:
        super().__init__("scripted", inbox.post, inbox.has_room, reopen_max_s=0.1, stall_s=0.3)
        self.opened: list[EndingPcm] = []
        self.error = error

    def _open(self) -> EndingPcm:
        pcm = EndingPcm(5, self.error)
        self.opened.append(pcm)
        return pcm


@pytest.mark.parametrize(("error", "status"), [(True, "lost"), (False, "stalled")])
def test_a_capture_that_fails_or_ends_is_reported_and_reopened(error, status):
    inbox = Inbox()
    mic = ScriptedMicrophone(inbox, error)
    mic.start()
    try:
        wait_until(lambda: len(mic.opened) >= 3, 10.0)
        assert mic.stats()["status"] == status
    finally:
        mic.close()
    msgs = drain(inbox)
    notices = [m for m in msgs if isinstance(m, Notice)]
    # audio flowed between faults, so each is a new episode: one notice each (the last
    # capture may not have failed yet when the microphone was closed)
    assert len(mic.opened) - 1 <= len(notices) <= len(mic.opened)
    assert all(n.fields["where"] == "audio.input" for n in notices)
    assert sum(isinstance(m, Frame) for m in msgs) >= 5 * 3
    wait_until(lambda: all(pcm.closed for pcm in mic.opened[:-1]), 10.0)
