"""What the tests of devices behind the real ALSA API share: everything a microphone or a
speaker posted to the assistant's inbox, and the notices (lost, back) among it."""

from __future__ import annotations

import contextlib
import queue
import time

from firmware_app.audio.playback import AlsaSpeaker
from firmware_app.core.messages import Inbox, Notice, PlaybackDone


def drain(inbox: Inbox) -> list:
    """Every message waiting in ``inbox``, oldest first, without waiting for more."""
    out = []
    while True:
        try:
            out.append(inbox.get(timeout=0))
        except queue.Empty:
            return out


def notices(msgs: list) -> list[tuple[str, str]]:
    """(kind, where) of each notice among ``msgs``: ("error", "audio.output"), ("back", ...)."""
    return [(m.kind, m.fields["where"]) for m in msgs if isinstance(m, Notice)]


def say(speaker: AlsaSpeaker, inbox: Inbox, utterance: int, pcm: bytes = b"\1\0" * 3200) -> list:
    """Play ``pcm`` (0.2 s at 16 kHz) and wait until its end is posted, as it is whether the
    speaker is there or not; what the speaker posted meanwhile."""
    speaker.play(utterance, pcm)
    speaker.finish(utterance)
    got: list = []
    deadline = time.monotonic() + 10
    while not any(isinstance(m, PlaybackDone) and m.utterance == utterance for m in got):
        assert time.monotonic() < deadline, got
        with contextlib.suppress(queue.Empty):
            got.append(inbox.get(timeout=0.1))
    return got
