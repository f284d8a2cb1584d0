"""The status other threads read is a snapshot the assistant publishes on its own thread."""

from __future__ import annotations

from fakes import WAKE, Rig

from firmware_app.core.messages import Command
from firmware_app.core.status import StatusBoard


def test_the_assistant_publishes_its_status_after_each_message(settings) -> None:
    rig = Rig(settings)
    board = rig.assistant.board
    assert board.read()["state"] == "idle" and board.read()["muted"] is False
    rig.post(Command("mute", {"muted": True}))
    assert board.read()["muted"] is True and board.read()["state"] == "muted"
    rig.post(Command("mute", {"muted": False}))
    rig.feed(WAKE)
    assert board.read()["state"] == "listening"
    rig.close()


def test_a_snapshot_is_the_readers_own() -> None:
    board = StatusBoard()
    live = {"state": "idle", "audio": {"input": {"frames": 1}}}
    board.publish(live)
    live["audio"]["input"]["frames"] = 2  # type: ignore[index]
    read = board.read()
    assert read["audio"] == {"input": {"frames": 1}}
    read["state"] = "changed"
    assert board.read()["state"] == "idle"
