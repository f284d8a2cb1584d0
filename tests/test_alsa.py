"""Real pyalsaaudio capture and playback through ALSA's file plugin."""

from __future__ import annotations

import queue
import time

import numpy as np
from audio_helpers import speech

from firmware_app.audio.alsa import AlsaSpeaker, Microphone
from firmware_app.core.messages import (
    FRAME_SAMPLES,
    Frame,
    Inbox,
    Notice,
    PlaybackDone,
    PlaybackStarted,
)


def collect(inbox: Inbox, kinds, timeout=10.0, count=None):
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end and (count is None or len(got) < count):
        try:
            msg = inbox.get(timeout=0.05)
        except queue.Empty:
            continue
        if isinstance(msg, kinds):
            got.append(msg)
    return got


def test_microphone_reads_16khz_frames_from_the_device(alsa_files):
    mic_file, _ = alsa_files
    audio = speech("Testing the microphone.")
    audio = audio[: len(audio) - len(audio) % FRAME_SAMPLES]
    mic_file.write_bytes(audio.tobytes())
    inbox = Inbox()
    mic = Microphone("testmic", inbox.post, inbox.has_room)
    mic.start()
    n = len(audio) // FRAME_SAMPLES
    frames = collect(inbox, Frame, count=n + 3)
    mic.close()
    assert len(frames) >= n
    got = np.frombuffer(b"".join(f.pcm for f in frames[:n]), dtype=np.int16)
    assert np.array_equal(got, audio)  # bit-exact through the real ALSA API
    assert all(len(f.pcm) == FRAME_SAMPLES * 2 for f in frames)
    assert mic.stats()["status"] in ("running", "stopped") and mic.xruns == 0


def test_microphone_back_pressure_waits_for_the_consumer(alsa_files):
    mic_file, _ = alsa_files
    mic_file.write_bytes(b"\1\0" * FRAME_SAMPLES * 100)
    inbox = Inbox()
    mic = Microphone("testmic", inbox.post, lambda: inbox.has_room(5))
    mic.start()
    time.sleep(0.5)
    assert inbox.queue.qsize() <= 6  # the reader waited instead of piling up audio
    mic.close()


def test_missing_microphone_is_reported_once_and_retried(alsa_files):
    inbox = Inbox()
    mic = Microphone("no_such_device_xyz", inbox.post, inbox.has_room, reopen_max_s=0.2)
    mic.start()
    time.sleep(1.5)
    mic.close()
    msgs = []
    while not inbox.empty():
        msgs.append(inbox.get())
    errors = [m for m in msgs if isinstance(m, Notice)]
    assert len(errors) == 1 and errors[0].fields["where"] == "audio.input"
    assert "no_such_device_xyz" in errors[0].fields["message"]
    assert mic.stats()["status"] in ("missing", "stopped")


def test_speaker_plays_an_utterance_into_the_device(alsa_files):
    _, speaker_file = alsa_files
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", 22050, inbox.post)
    pcm = (np.sin(np.arange(22050) / 10) * 8000).astype(np.int16).tobytes()
    speaker.play(7, pcm)
    speaker.finish(7)
    msgs = collect(inbox, (PlaybackStarted, PlaybackDone), count=2)
    speaker.close()
    assert [type(m) for m in msgs] == [PlaybackStarted, PlaybackDone]
    assert all(m.utterance == 7 for m in msgs)
    written = speaker_file.read_bytes()
    assert written[: len(pcm)] == pcm


def test_speaker_stop_cuts_playback(alsa_files):
    inbox = Inbox()
    speaker = AlsaSpeaker("testspeaker", 22050, inbox.post)
    speaker.play(3, b"\1\0" * 22050 * 5)
    time.sleep(0.1)
    speaker.stop()
    done = collect(inbox, PlaybackDone, count=1, timeout=3)
    speaker.close()
    assert done and done[0].utterance == 3


def test_missing_speaker_reports_and_does_not_hang(alsa_files):
    inbox = Inbox()
    speaker = AlsaSpeaker("no_such_speaker_xyz", 22050, inbox.post)
    speaker.play(1, b"\0\0" * 100)
    speaker.finish(1)
    msgs = collect(inbox, (Notice, PlaybackDone), count=2)
    speaker.close()
    assert any(isinstance(m, Notice) and m.fields["where"] == "audio.output" for m in msgs)
    assert any(isinstance(m, PlaybackDone) for m in msgs)
