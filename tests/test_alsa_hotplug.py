"""A speaker unplugged and plugged back, through the real ALSA API: the device is defined
in (and removed from) an ALSA configuration file that ALSA rereads when it changes, so it
disappears and comes back as a USB speaker does. Its loss and its return are each reported
once, and it is used again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alsa_support import drain, notices, say
from conftest import ALSA_DIR, ALSA_HOTPLUG
from fakes import Rig
from harness import wait_until

from firmware_app.audio.playback import AlsaSpeaker
from firmware_app.config.settings import Settings
from firmware_app.core.messages import Inbox, Notice, PlaybackStarted

OUT = ALSA_DIR / "hotplug-speaker.raw"
DEVICE = f"""
pcm.hotspeaker {{
    type file
    slave.pcm "null"
    file "{OUT}"
    format "raw"
}}
"""


class Socket:
    """Where the speaker plugs in: ALSA compares modification times in whole seconds, so
    each change moves the file's time on by a few seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._step = 0

    def _write(self, text: str) -> None:
        self.path.write_text(text)
        self._step += 5
        stamp = time.time() + self._step
        os.utime(self.path, (stamp, stamp))

    def plug(self) -> None:
        self._write(DEVICE)

    def unplug(self) -> None:
        self._write("")


@pytest.fixture
def socket_() -> Iterator[Socket]:
    s = Socket(ALSA_HOTPLUG)
    s.unplug()
    yield s
    s.unplug()


def test_a_speaker_unplugged_and_plugged_back(socket_: Socket) -> None:
    OUT.unlink(missing_ok=True)
    inbox = Inbox()
    speaker = AlsaSpeaker("hotspeaker", 16000, inbox.post, probe_s=0.1)
    try:
        wait_until(lambda: speaker.stats()["status"] == "missing", 10.0)
        msgs = say(speaker, inbox, 1)  # not there: never started, its end still comes
        assert not [m for m in msgs if isinstance(m, PlaybackStarted)]

        socket_.plug()
        wait_until(lambda: speaker.stats()["status"] == "idle", 10.0, "the speaker back")
        assert speaker.available() and speaker.stats()["error"] == ""
        msgs += drain(inbox)
        assert notices(msgs) == [("error", "audio.output"), ("back", "audio.output")]

        msgs = say(speaker, inbox, 2)  # used again
        assert [m.utterance for m in msgs if isinstance(m, PlaybackStarted)] == [2]
        wait_until(lambda: OUT.exists() and OUT.stat().st_size == 6400, 10.0, "audio written")

        socket_.unplug()  # gone again while idle: found at the next utterance
        msgs = say(speaker, inbox, 3)
        assert not [m for m in msgs if isinstance(m, PlaybackStarted)]
        time.sleep(0.5)  # probing meanwhile: reported once, not once per probe
        socket_.plug()
        wait_until(lambda: speaker.stats()["status"] == "idle", 10.0, "the speaker back again")
        msgs += drain(inbox)
        assert notices(msgs) == [("error", "audio.output"), ("back", "audio.output")]
        msgs = say(speaker, inbox, 4)
        assert [m.utterance for m in msgs if isinstance(m, PlaybackStarted)] == [4]
    finally:
        speaker.close()


def test_the_assistant_reports_the_speaker_back(settings: Settings) -> None:

    rig = Rig(settings)
    try:
        rig.post(Notice("error", {"where": "audio.output", "message": "cannot open hotspeaker"}))
        rig.post(Notice("back", {"where": "audio.output"}))
        [back] = rig.of("back")
        assert back.fields == {"where": "audio.output"}
        assert rig.types().index("error") < rig.types().index("back")
    finally:
        rig.close()
