"""The status other threads read is a snapshot the assistant publishes on its own thread;
wake arbitration, the wall clock and the store reach health through it."""

from __future__ import annotations

from pathlib import Path

from fakes import SILENT, SPEECH, WAKE, ManualClock, Rig, ScriptedStt

from firmware_app.core.messages import Command, Tick
from firmware_app.core.parts import Parts
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


class CountingArbiter:
    """An arbiter that turned some claims away."""

    def claim(self, model: str, score: float) -> bool:
        return True

    def status(self) -> dict[str, object] | None:
        return {"claims": {"accepted": 3, "unauthenticated": 7}}


def published(rig: Rig) -> dict[str, object]:
    """The snapshot after one more message (not a frame, so it is published at once)."""
    rig.post(Tick(rig.clock.t()))
    return rig.assistant.board.read()


def test_wake_arbitrations_counts_reach_health_through_the_snapshot(settings) -> None:
    alone = Rig(settings)
    assert published(alone)["arbitration"] is None  # no arbitration: nothing to count
    alone.close()
    rig = Rig(settings, parts=Parts(arbiter=CountingArbiter()))
    assert published(rig)["arbitration"] == {"claims": {"accepted": 3, "unauthenticated": 7}}
    rig.close()


def test_an_untrusted_wall_clock_shows_in_health_until_it_can_be_trusted(settings) -> None:
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a pasta timer for five minutes"), clock=clock)
    rig.feed(WAKE)
    rig.feed(SPEECH, 1.0)
    rig.feed(SILENT, 1.0)
    rig.until_idle()
    assert published(rig)["clock"] == {"trusted": True}
    rig.close()
    stale = ManualClock(clock.epoch() - 86400)  # a day behind: NTP not there yet
    again = Rig(settings, clock=stale)
    shown = published(again)["clock"]
    assert isinstance(shown, dict) and shown["trusted"] is False
    assert "earlier" in str(shown["reason"]) and shown["judged_from"] >= clock.epoch() - 60
    stale.base += 86400  # the clock is set
    again.feed(SILENT, 0.5)
    assert published(again)["clock"] == {"trusted": True}
    again.close()


def test_a_store_found_empty_shows_recovered_in_health(settings, tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"")  # power lost mid-copy
    rig = Rig(settings, store_path=path)
    store = published(rig)["store"]
    assert isinstance(store, dict) and store["status"] == "recovered"
    assert "empty" in str(store["error"])
    rig.close()
