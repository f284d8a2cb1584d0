"""Timers against a wall clock that steps: the whole assistant on a clock whose wall-clock
part (``epoch``) is stepped an hour either way while it runs, and restarted with a clock
known to be wrong. Timers run on the running clock; the wall clock only carries them
across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import SILENT, SPEECH, WAKE, ManualClock, Rig, ScriptedStt

from firmware_app.understand.timers import SEEN_KEY, judge_wall_clock


def request(rig: Rig) -> None:
    rig.feed(WAKE)
    rig.feed(SPEECH, 1.0)
    rig.feed(SILENT, 1.0)
    rig.until_idle()


def rang(rig: Rig) -> list[str | None]:
    return [e.fields["name"] for e in rig.of("timer") if e.fields["action"] == "ring"]  # type: ignore[misc]


@pytest.mark.parametrize("step_s", [3600.0, -3600.0])
def test_a_wall_clock_step_while_running_changes_no_timer(settings, step_s: float) -> None:
    clock = ManualClock()
    rig = Rig(
        settings,
        stt=ScriptedStt("set a pasta timer for ten minutes", "how long is left on the pasta timer"),
        clock=clock,
    )
    request(rig)
    (set_at,) = [e.t for e in rig.of("timer") if e.fields["action"] == "set"]
    rig.feed(SILENT, 60)
    clock.base += step_s  # NTP arrives, or someone sets the clock
    rig.feed(SILENT, 5)
    assert rang(rig) == []  # a step forward used to ring it at once
    request(rig)
    left = rig.of("reply")[-1].fields["text"]
    assert left.startswith("8 minutes and ") and left.endswith(" left on your pasta timer."), left
    rig.feed(SILENT, set_at + 600 - clock.now - 0.5)
    assert rang(rig) == []
    rig.feed(SILENT, 1.0)
    assert rang(rig) == ["pasta"]  # ten minutes after it was set, by the running clock
    rig.close()


def test_a_restart_after_a_step_keeps_the_time_left(settings) -> None:
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a pasta timer for ten minutes"), clock=clock)
    request(rig)
    clock.base -= 3600
    rig.feed(SILENT, 60)
    rig.close()
    later = ManualClock(clock.epoch() + 30)  # restarted 30 s later, on the stepped clock
    again = Rig(settings, clock=later)
    (timer,) = again.assistant.timers.active()
    assert 600 - 60 - 30 - 5 < again.assistant.timers.remaining(timer) < 600 - 60 - 30 + 1
    assert not [e for e in again.of("timer") if e.fields["action"] == "missed"]
    again.close()


def test_a_clock_earlier_than_last_seen_judges_timers_from_the_last_time_seen(settings) -> None:
    """A Pi boots with a stale clock (no real-time clock, NTP not there yet): the timers are
    neither announced as missed nor left for a day; the service says why."""
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a pasta timer for five minutes"), clock=clock)
    request(rig)
    rig.feed(SILENT, 30)
    seen = rig.store.get("settings", SEEN_KEY)
    assert seen is not None and abs(seen - clock.epoch()) < 60
    rig.close()
    stale = ManualClock(clock.epoch() - 86400)  # a day behind
    again = Rig(settings, clock=stale)
    (notice,) = again.of("clock")
    assert notice.fields["synchronized"] is False and "earlier" in str(notice.fields["reason"])
    assert not [e for e in again.of("timer") if e.fields["action"] == "missed"]
    (timer,) = again.assistant.timers.active()
    assert 200 < again.assistant.timers.remaining(timer) <= 300.5
    again.feed(SILENT, again.assistant.timers.remaining(timer) + 1)
    assert rang(again) == ["pasta"]
    again.close()


def test_timers_judged_from_the_last_time_seen_are_judged_again_once_the_clock_is_set(
    settings,
) -> None:
    """Off for an hour, back with a stale clock: the five-minute timer waits; when the
    clock is set (NTP arrives) it is seen to be long due and rings at once."""
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a pasta timer for five minutes"), clock=clock)
    request(rig)
    rig.close()
    stale = ManualClock(clock.epoch() - 86400)
    again = Rig(settings, clock=stale)
    assert again.of("clock")
    again.feed(SILENT, 20)
    assert rang(again) == []
    stale.base += 86400 + 3600  # the true time: an hour after the timer was set
    again.feed(SILENT, 1)
    assert rang(again) == ["pasta"]
    again.close()


def test_a_trusted_clock_still_announces_timers_missed_while_off(settings) -> None:
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a pasta timer for five minutes"), clock=clock)
    request(rig)
    rig.close()
    again = Rig(settings, clock=ManualClock(clock.epoch() + 3600))
    assert not again.of("clock")
    assert [e.fields["name"] for e in again.of("timer") if e.fields["action"] == "missed"] == [
        "pasta"
    ]
    again.close()


def test_systemd_timesyncd_not_synchronized_is_not_trusted(tmp_path: Path) -> None:
    flag = tmp_path / "timesync" / "synchronized"
    assert judge_wall_clock(1000.0, 900.0, flag) == (1000.0, None)  # no timesyncd here
    flag.parent.mkdir()
    now, why = judge_wall_clock(1000.0, 1200.0, flag)
    assert now == 1200.0 and why is not None and "earlier" in why
    now, why = judge_wall_clock(1000.0, 900.0, flag)
    assert now == 1000.0 and why is not None and "synchronized" in why
    flag.touch()
    assert judge_wall_clock(1000.0, 900.0, flag) == (1000.0, None)


def test_a_second_timer_with_a_name_in_use_is_refused_with_a_reason(settings) -> None:
    rig = Rig(
        settings,
        stt=ScriptedStt("set a pasta timer for ten minutes", "set a pasta timer for five minutes"),
    )
    request(rig)
    request(rig)
    reply = rig.of("reply")[-1].fields["text"]
    assert reply.startswith("You already have a pasta timer, with 9 minutes")
    assert "another name" in reply
    assert [(t.name, t.seconds) for t in rig.assistant.timers.active()] == [("pasta", 600.0)]
    rig.close()
