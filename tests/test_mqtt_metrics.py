"""Metrics from the event stream (no MQTT needed)."""

from __future__ import annotations

from firmware_app.core.events import Event, EventBus
from firmware_app.system.metrics import Metrics, metrics_from_records, percentile


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    data = [float(x) for x in range(1, 101)]
    assert percentile(data, 50) == 50.0
    assert percentile(data, 95) == 95.0
    assert percentile(reversed(data), 100) == 100.0


def request(t0: float, wall0: float, *, last_speech: bool = True) -> list[dict]:
    """One spoken request, times chosen so every stage has a known value."""
    end = {"type": "speech_end", "t": t0 + 2.6, "wall": wall0 + 2.62}
    if last_speech:
        end["last_speech_t"] = t0 + 2.0
    return [
        {"type": "wake", "t": t0, "wall": wall0, "model": "hey_jarvis", "score": 0.9},
        {"type": "listening", "t": t0, "wall": wall0 + 0.05},
        {"type": "speech_start", "t": t0 + 0.4, "wall": wall0 + 0.42},
        end,
        {"type": "transcript", "t": t0 + 2.6, "wall": wall0 + 2.70, "text": "x"},
        {"type": "intent", "t": t0 + 2.6, "wall": wall0 + 2.71, "name": "time", "slots": {}},
        {"type": "reply", "t": t0 + 2.6, "wall": wall0 + 2.72, "text": "y", "source": "local"},
        {"type": "speak_start", "t": t0 + 2.8, "wall": wall0 + 2.82},
        {"type": "speak_end", "t": t0 + 4.0, "wall": wall0 + 4.0},
    ]


def test_stages_from_a_request() -> None:
    snap = metrics_from_records(request(10.0, 100.0))
    lat = snap["latency_ms"]
    assert lat["wake_to_listening"]["p50"] == 50.0
    assert lat["end_of_speech"]["p50"] == 600.0
    assert lat["stt_final"]["p50"] == 80.0
    assert lat["tts_first_audio"]["p50"] == 100.0
    assert lat["response"]["p50"] == 200.0
    assert snap["wake_count"] == 1 and snap["requests"] == 1
    assert snap["replies"] == {"local": 1}
    assert all(stage["count"] == 1 for stage in lat.values())


def test_no_end_of_speech_sample_without_last_speech() -> None:
    snap = metrics_from_records(request(0.0, 0.0, last_speech=False))
    assert snap["latency_ms"]["end_of_speech"]["count"] == 0
    assert snap["latency_ms"]["end_of_speech"]["p50"] is None


def test_speech_without_a_request_is_not_a_response() -> None:
    """A say command or a timer ring speaks without a request: no response sample."""
    records = [
        {"type": "reply", "t": 0, "wall": 1.0, "text": "timer", "source": "local"},
        {"type": "speak_start", "t": 0, "wall": 1.2},
        {"type": "listening", "t": 0, "wall": 2.0},  # button: no wake before it
    ]
    snap = metrics_from_records(records)
    assert snap["latency_ms"]["response"]["count"] == 0
    assert snap["latency_ms"]["wake_to_listening"]["count"] == 0
    assert snap["latency_ms"]["tts_first_audio"]["count"] == 1


def test_percentiles_over_many_requests_and_window() -> None:
    records = []
    for i in range(300):
        records += request(i * 10.0, i * 10.0)
    metrics = Metrics(window=50)
    for r in records:
        metrics.observe_record(r)
    snap = metrics.snapshot()
    assert snap["latency_ms"]["response"]["count"] == 300  # all ever taken
    assert snap["latency_ms"]["response"]["p95"] == 200.0
    assert snap["events"]["wake"] == 300


def test_is_a_bus_observer() -> None:
    bus = EventBus()
    metrics = Metrics()
    bus.subscribe(metrics)
    bus.publish(Event("wake", 0.0, 1.0, {"model": "alexa", "score": 0.8}))
    bus.publish(Event("listening", 0.0, 1.25))
    assert metrics.snapshot()["latency_ms"]["wake_to_listening"]["last"] == 250.0
