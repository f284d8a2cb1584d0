"""The circuit breaker's states, single probe and thread safety (clock passed in)."""

from __future__ import annotations

import itertools
import threading

from firmware_app.understand.llm.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures: int = 3, reset_s: float = 30.0) -> tuple[CircuitBreaker, Clock, list[str]]:
    clock = Clock()
    changes: list[str] = []
    return CircuitBreaker(failures, reset_s, changes.append, clock), clock, changes


def test_opens_after_consecutive_failures_only() -> None:
    breaker, _, changes = make(failures=3)
    for _ in range(2):
        assert breaker.allow()
        breaker.record("failure")
    breaker.record("success")  # resets the count
    for _ in range(2):
        breaker.record("failure")
    assert breaker.state == "closed" and changes == []
    breaker.record("failure")
    assert breaker.state == "open" and changes == ["open"]
    assert not breaker.allow()


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    breaker, clock, changes = make(failures=1, reset_s=30)
    breaker.record("failure")
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for its outcome
    assert breaker.state == "half_open"
    breaker.record("success")
    assert breaker.state == "closed" and breaker.allow()
    assert changes == ["open", "half_open", "closed"]


def test_failed_probe_opens_again_for_a_full_period() -> None:
    breaker, clock, changes = make(failures=1, reset_s=10)
    breaker.record("failure")
    clock.now += 10
    assert breaker.allow()
    breaker.record("failure")
    assert breaker.state == "open"
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
    assert changes == ["open", "half_open", "open", "half_open"]


def test_an_abandoned_probe_frees_the_slot_without_deciding() -> None:
    breaker, clock, _ = make(failures=1, reset_s=1)
    breaker.record("failure")
    clock.now += 1
    assert breaker.allow()
    breaker.record("abandoned")
    assert breaker.state == "half_open"
    assert breaker.allow()


def test_many_threads_see_one_probe_and_consistent_reports() -> None:
    breaker, clock, changes = make(failures=1, reset_s=5)
    breaker.record("failure")
    clock.now += 5
    allowed: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        ok = breaker.allow()
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1
    assert changes == ["open", "half_open"]

    # Racing outcomes: whatever the interleaving, the last report is the final state.
    breaker, _, changes = make(failures=1)
    barrier = threading.Barrier(8)

    def record(outcome: str) -> None:
        barrier.wait()
        for _ in range(200):
            breaker.record(outcome)  # type: ignore[arg-type]

    threads = [
        threading.Thread(target=record, args=("failure" if i % 2 else "success",)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    breaker.record("success")
    assert changes[-1] == breaker.state == "closed"
    assert all(a != b for a, b in itertools.pairwise(changes))
