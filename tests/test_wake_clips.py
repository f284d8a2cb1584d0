"""Recent wake clips: bounded, pre-roll plus two seconds, marked false, saved on request."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from firmware_app.audio.wavio import read_wav
from firmware_app.core.messages import FRAME_SAMPLES
from firmware_app.listen.wake_clips import FALSE_WAKE_PREFIX, FALSE_WAKE_SUFFIXES, WakeClips
from firmware_app.system.kept_files import KeptFiles


def frame(i: int) -> bytes:
    """A frame whose every sample is its index, so clips show which frames they hold."""
    return np.full(FRAME_SAMPLES, i, dtype=np.int16).tobytes()


def frame_ids(pcm: bytes | bytearray) -> list[int]:
    samples = np.frombuffer(bytes(pcm), dtype=np.int16)
    return [int(v) for v in samples[::FRAME_SAMPLES]]


def kept(folder: Path, max_mb: float = 20.0, keep: int = 100) -> KeptFiles:
    return KeptFiles(
        folder, FALSE_WAKE_PREFIX, FALSE_WAKE_SUFFIXES, max_mb, keep, "false wake clips"
    )


def feed(clips: WakeClips, start: int, stop: int) -> None:
    for i in range(start, stop):
        clips.hear(frame(i))


def test_clip_is_preroll_then_two_seconds():
    clips = WakeClips(kept=3, preroll_s=0.4, after_s=2.0)
    feed(clips, 0, 20)  # frame 19 is the one that woke
    clip = clips.wake("hey_jarvis", 0.97, t=1.6)
    assert not clip.complete
    feed(clips, 20, 60)
    assert clip.complete
    assert frame_ids(clip.pcm) == list(range(15, 20)) + list(range(20, 45))
    assert len(clip.pcm) == (5 + 25) * FRAME_SAMPLES * 2


def test_only_the_last_few_are_kept():
    clips = WakeClips(kept=2, preroll_s=0.16, after_s=0.16)
    for n, score in enumerate([0.6, 0.7, 0.8, 0.9]):
        feed(clips, n * 10, n * 10 + 5)
        clips.wake("alexa", score, t=n)
    assert [c.id for c in clips.clips()] == [3, 4]
    assert clips.last() is not None and clips.last().score == 0.9


def test_mark_false_counts_per_model_once():
    clips = WakeClips()
    assert clips.mark_false() is None  # nothing heard yet
    feed(clips, 0, 5)
    clips.wake("alexa", 0.8, t=0.4)
    marked = clips.mark_false()
    assert marked is not None and marked.false and marked.model == "alexa"
    assert clips.mark_false() is None  # the same wake is not counted twice
    clips.wake("hey_jarvis", 0.9, t=5.0)
    clips.mark_false()
    clips.wake("alexa", 0.7, t=9.0)
    clips.mark_false()
    assert clips.false_wakes == {"alexa": 2, "hey_jarvis": 1}


def test_nothing_is_written_unless_asked(tmp_path):
    clips = WakeClips(after_s=0.16)
    feed(clips, 0, 5)
    clips.wake("alexa", 0.8, t=0.4)
    feed(clips, 5, 10)
    assert clips.mark_false().saved is None
    assert list(tmp_path.iterdir()) == []


def test_false_clip_is_saved_when_complete(tmp_path):
    clips = WakeClips(preroll_s=0.24, after_s=0.4, saved=kept(tmp_path / "false"))
    feed(clips, 0, 10)
    clip = clips.wake("okay_nabu", 0.91, t=0.8)
    clips.mark_false()  # marked before its two seconds are in: saved once they are
    assert clip.saved is None
    feed(clips, 10, 20)
    assert clip.saved is not None and clip.saved.exists()
    assert frame_ids(read_wav(clip.saved).tobytes()) == list(range(7, 15))
    note = json.loads(clip.saved.with_suffix(".json").read_text())
    assert note["model"] == "okay_nabu" and note["score"] == 0.91 and note["false"] is True


def test_a_failed_save_does_not_raise(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    clips = WakeClips(after_s=0.08, saved=kept(blocker / "clips"))
    feed(clips, 0, 3)
    clips.wake("alexa", 0.8, t=0.2)
    feed(clips, 3, 5)
    marked = clips.mark_false()
    assert marked is not None and marked.saved is None
    assert clips.false_wakes == {"alexa": 1}


def test_saved_clips_are_held_to_their_count_and_size_oldest_first(tmp_path):
    """Five false wakes into a folder that keeps three: the newest three stay, each a WAV
    with its note; at a size cap of two clips, two."""
    folder = tmp_path / "false"
    folder.mkdir()
    (folder / "mine.txt").write_text("the user's own file, not a clip")
    (folder / "false-wake-notes.txt").write_text("named alike, but not a clip either")
    clips = WakeClips(kept=2, preroll_s=0.16, after_s=0.08, saved=kept(folder, keep=3))
    marked = []
    for n in range(5):
        feed(clips, 10 * n, 10 * n + 3)
        clips.wake("alexa", 0.8, t=float(n))
        feed(clips, 10 * n + 3, 10 * n + 5)
        clip = clips.mark_false()
        assert clip is not None and clip.saved is not None
        marked.append(clip)
    left = sorted(p.name for p in folder.iterdir())
    newest = [c.saved.name for c in marked[2:]]  # type: ignore[union-attr]
    notes = [n.replace(".wav", ".json") for n in newest]
    assert left == sorted([*newest, *notes, "mine.txt", "false-wake-notes.txt"])
    assert [json.loads(p.read_text())["id"] for p in sorted(folder.glob("*.json"))] == [3, 4, 5]

    one_clip = marked[-1].saved.stat().st_size + 1024  # type: ignore[union-attr]
    small = tmp_path / "small"
    clips = WakeClips(
        kept=2, preroll_s=0.16, after_s=0.08, saved=kept(small, max_mb=2.5 * one_clip / 2**20)
    )
    for n in range(5):
        feed(clips, 10 * n, 10 * n + 3)
        clips.wake("alexa", 0.8, t=float(n))
        feed(clips, 10 * n + 3, 10 * n + 5)
        clips.mark_false()
    assert len(list(small.glob("*.wav"))) == 2
    assert sum(p.stat().st_size for p in small.iterdir()) <= 2.5 * one_clip
