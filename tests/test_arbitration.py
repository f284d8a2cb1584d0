"""Several speakers, one answer: wake claims over a real Mosquitto."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from harness import wait_until
from mqtt_broker import Broker, Listener, broker_fixture, free_port  # noqa: F401
from pydantic import SecretStr

from firmware_app.config.settings import MqttSettings
from firmware_app.edges.mqtt.arbitration import Claim, MqttWakeArbiter
from firmware_app.edges.mqtt.claim_topics import claims_topic, group_topic
from firmware_app.listen.level import LevelMeter

WINDOW = 0.3
KEY = b"the group's shared key"


def make(
    broker: Broker, device: str, group: str, meter: LevelMeter | None = None, **kwargs: Any
) -> MqttWakeArbiter:
    settings = MqttSettings(host=broker.host, port=broker.port, device_id=device)
    arbiter = MqttWakeArbiter(settings, KEY, group=group, window_s=WINDOW, meter=meter, **kwargs)
    assert arbiter.wait_connected(10.0), "arbiter did not connect"
    return arbiter


@pytest.fixture(name="pair")
def pair_fixture(broker: Broker, request: pytest.FixtureRequest) -> Iterator[list[MqttWakeArbiter]]:
    group = request.node.name.replace("[", "_").replace("]", "")
    arbiters = [make(broker, "kitchen", group), make(broker, "hall", group)]
    assert all(a.wait_peers(1, 10.0) for a in arbiters), "the devices did not see each other"
    time.sleep(0.2)  # each has subscribed to the other's claims
    yield arbiters
    for a in arbiters:
        a.close()


def together(*calls: Callable[[], bool], stagger_s: float = 0.0) -> tuple[list[bool], list[float]]:
    """Run the claims at (nearly) the same moment, as two devices hearing one voice."""
    results: list[bool] = [False] * len(calls)
    took: list[float] = [0.0] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        time.sleep(i * stagger_s)
        t0 = time.monotonic()
        results[i] = calls[i]()
        took[i] = time.monotonic() - t0

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    return results, took


def test_the_better_score_answers_and_the_other_stays_silent(
    pair: list[MqttWakeArbiter],
) -> None:
    kitchen, hall = pair
    (won_k, won_h), took = together(
        lambda: kitchen.claim("hey_jarvis", 0.71), lambda: hall.claim("hey_jarvis", 0.93)
    )
    assert (won_k, won_h) == (False, True)
    assert took[1] >= WINDOW  # the winner waits the window to be sure
    assert kitchen.last["rivals"] == [{"device": "hall", "score": 0.93, "level_db": -120.0}]


def test_a_claim_a_little_later_in_the_window_still_counts(pair: list[MqttWakeArbiter]) -> None:
    kitchen, hall = pair
    (won_k, won_h), _ = together(
        lambda: kitchen.claim("hey_jarvis", 0.99),
        lambda: hall.claim("hey_jarvis", 0.80),
        stagger_s=0.2,
    )
    assert (won_k, won_h) == (True, False)


def test_equal_scores_go_to_the_smaller_device_id(pair: list[MqttWakeArbiter]) -> None:
    kitchen, hall = pair
    results, _ = together(lambda: kitchen.claim("alexa", 0.9), lambda: hall.claim("alexa", 0.9))
    assert results == [False, True]  # "hall" < "kitchen"


def test_wakes_far_apart_are_separate_requests(pair: list[MqttWakeArbiter]) -> None:
    kitchen, hall = pair
    assert kitchen.claim("hey_jarvis", 0.6)
    time.sleep(WINDOW + 0.2)
    assert hall.claim("hey_jarvis", 0.5)  # the kitchen's claim is too old to count


def test_another_group_and_garbage_do_not_count(broker: Broker) -> None:
    kitchen = make(broker, "kitchen", "upstairs")
    hall = make(broker, "hall", "downstairs")
    listener = Listener(broker, (group_topic("upstairs") + "/#",))
    try:
        assert kitchen.wait_peers(0, 1) and hall.wait_peers(0, 1)
        listener.publish(group_topic("upstairs") + "/hall", "not json")
        listener.publish(group_topic("upstairs") + "/hall", json.dumps({"device": "x"}))
        results, _ = together(lambda: kitchen.claim("alexa", 0.5), lambda: hall.claim("alexa", 0.9))
        assert results == [True, True]  # different groups answer each on their own
        claim = listener.wait_for(
            claims_topic("upstairs", "kitchen"), lambda m: b"kitchen" in m.payload
        ).json()
        assert claim["device"] == "kitchen" and claim["score"] == 0.5 and claim["model"] == "alexa"
        assert abs(claim["t"] - time.time()) < 5
    finally:
        listener.close()
        kitchen.close()
        hall.close()


def test_without_a_broker_each_answers_alone_at_once() -> None:
    settings = MqttSettings(host="127.0.0.1", port=free_port(), device_id="lonely")
    arbiter = MqttWakeArbiter(settings, KEY)
    try:
        t0 = time.monotonic()
        assert arbiter.claim("hey_jarvis", 0.2)
        assert time.monotonic() - t0 < 0.05
        assert arbiter.last["alone"] is True
    finally:
        arbiter.close()


def test_a_broker_that_dies_leaves_each_answering_alone(tmp_path: Path) -> None:
    own = Broker(tmp_path)
    own.start()
    kitchen, hall = make(own, "kitchen", "g"), make(own, "hall", "g")
    try:
        own.kill()
        deadline = time.monotonic() + 10
        while (kitchen.connected or hall.connected) and time.monotonic() < deadline:
            time.sleep(0.05)
        results, took = together(
            lambda: kitchen.claim("alexa", 0.4), lambda: hall.claim("alexa", 0.9)
        )
        assert results == [True, True]
        assert max(took) < WINDOW
    finally:
        kitchen.close()
        hall.close()


def test_claim_order_rule() -> None:
    a, b = Claim("a", 0.8), Claim("b", 0.8)
    assert a.beats(b) and not b.beats(a)
    assert Claim("z", 0.9).beats(a)
    assert not a.beats(a)
    # within one 0.1 step of score the louder (nearer) device wins
    near, far = Claim("z", 0.981, level_db=-12.0), Claim("a", 0.99, level_db=-30.0)
    assert near.beats(far) and not far.beats(near)
    # a clearly better score wins however quiet
    assert Claim("z", 0.95, level_db=-40.0).beats(Claim("a", 0.75, level_db=-6.0))


def test_level_meter_reports_the_loudest_recent_frame() -> None:
    meter = LevelMeter(seconds=0.16)
    assert meter.level_db() < -100
    meter.feed(np.full(1280, 16384, dtype="<i2").tobytes())
    assert meter.level_db() == pytest.approx(-6.0, abs=0.1)
    meter.feed(np.zeros(1280, dtype="<i2").tobytes())
    meter.feed(np.zeros(1280, dtype="<i2").tobytes())
    assert meter.level_db() < -100  # older than the window: forgotten


@pytest.mark.slow
@pytest.mark.parametrize("louder", ["kitchen", "hall"])
def test_two_devices_hear_one_wake_word_and_the_nearer_answers(
    broker: Broker, request: pytest.FixtureRequest, louder: str
) -> None:
    """Two devices with real openWakeWord, fed the same recording in real time, one 12 dB
    quieter (further away). Both detect it; only the nearer one answers."""
    from audio_helpers import conversation

    from firmware_app.config.settings import WakeSettings
    from firmware_app.core.messages import FRAME_SAMPLES, FRAME_SECONDS
    from firmware_app.listen.wake import OpenWakeWord

    audio = conversation(0.3, "Hey Jarvis, what time is it?", 0.5)
    group = f"integration-{louder}"
    devices = {}
    for name in ("kitchen", "hall"):
        meter = LevelMeter()
        gain = 1.0 if name == louder else 10 ** (-12 / 20)
        devices[name] = (
            (OpenWakeWord(WakeSettings()), meter),
            make(broker, name, group, meter),
            (audio * gain).astype(np.int16),
        )
    assert all(d[1].wait_peers(1, 10.0) for d in devices.values()), "no peer seen"
    time.sleep(0.2)  # each has subscribed to the other's claims
    outcome: dict[str, list[tuple[float, bool]]] = {name: [] for name in devices}
    begin = threading.Barrier(len(devices))

    def device(name: str) -> None:
        (wake, meter), arbiter, samples = devices[name]
        begin.wait()
        start = time.monotonic()
        for n, at in enumerate(range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES)):
            pcm = samples[at : at + FRAME_SAMPLES].tobytes()
            meter.feed(pcm)  # as hearing does, before the wake word detector
            detection = wake.detect(pcm)
            if detection is not None:
                outcome[name].append(
                    (detection.score, arbiter.claim(detection.model, detection.score))
                )
            delay = start + (n + 1) * FRAME_SECONDS - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # a live microphone delivers one frame every 80 ms

    threads = [threading.Thread(target=device, args=(name,)) for name in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        quieter = "hall" if louder == "kitchen" else "kitchen"
        assert len(outcome[louder]) == 1 and len(outcome[quieter]) == 1, outcome
        assert outcome[louder][0][1] is True
        assert outcome[quieter][0][1] is False
        assert devices[quieter][1].last["rivals"][0]["device"] == louder
    finally:
        for _, arbiter, _ in devices.values():
            arbiter.close()


@pytest.mark.slow
def test_two_assistants_on_one_broker_answer_once(broker: Broker, tmp_path: Path) -> None:
    """Two whole assistants (real openWakeWord and Silero each) run ``simulate`` in real
    time on the same recording, one 12 dB quieter: the nearer answers, the other goes back
    to idle without a sound."""
    from dataclasses import replace

    from audio_helpers import conversation, write
    from fakes import FakeTts, ScriptedStt

    from firmware_app.app import simulation
    from firmware_app.app.loading import Engines
    from firmware_app.config.settings import Settings, WakeSettings
    from firmware_app.core.events import read_events
    from firmware_app.listen.vad import SileroVad
    from firmware_app.listen.wake import OpenWakeWord

    audio = conversation(0.5, "Hey Jarvis, what time is it?", 1.5)
    runs: dict[str, list[dict[str, object]]] = {}

    def device(name: str, gain_db: float) -> None:
        settings = Settings(
            data_dir=tmp_path / name,
            mqtt=MqttSettings(host=broker.host, port=broker.port, device_id=name),
        )
        settings = settings.model_copy(
            update={
                "arbitration": settings.arbitration.model_copy(
                    update={"group": "house", "secret": SecretStr(KEY.decode())}
                )
            }
        )
        engines = Engines(
            OpenWakeWord(WakeSettings()),
            SileroVad(),
            ScriptedStt("what time is it"),
            None,
            FakeTts(),
        )
        wav = write(tmp_path / f"{name}.wav", (audio * 10 ** (gain_db / 20)).astype(np.int16))
        events = tmp_path / f"{name}.jsonl"
        simulation.simulate(
            settings, wav, None, events, realtime=True, engines=replace(engines), max_tail_s=3
        )
        runs[name] = read_events(events)

    threads = [
        threading.Thread(target=device, args=("hall", -12.0)),
        threading.Thread(target=device, args=("kitchen", 0.0)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    near = [e["type"] for e in runs["kitchen"]]
    far = [e["type"] for e in runs["hall"]]
    assert near.count("wake") == 1 and far.count("wake") == 1
    assert "listening" in near and "reply" in near and "wake_lost" not in near
    assert "wake_lost" in far and "listening" not in far and "reply" not in far
    assert "speak_start" not in far  # not even a chime


def test_a_device_alone_in_its_group_answers_without_waiting(broker: Broker) -> None:
    """Arbitration costs nothing until a second speaker joins: peers announce themselves
    (retained, cleared on close or by the last will) and a device with none answers at once."""
    kitchen = make(broker, "kitchen", "alone")
    try:
        assert kitchen.claim("alexa", 0.9) is True
        assert kitchen.last["alone"] is True
        hall = make(broker, "hall", "alone")
        assert kitchen.wait_peers(1, 10.0) and hall.wait_peers(1, 10.0)
        assert set(kitchen.peers) == {"hall"} and set(hall.peers) == {"kitchen"}
        assert kitchen.claim("alexa", 0.9) is True
        assert kitchen.last["alone"] is False
        hall.close()
        wait_until(lambda: not kitchen.peers, 10.0, "the peer that left to be forgotten")
        assert kitchen.claim("alexa", 0.9) is True and kitchen.last["alone"] is True
    finally:
        kitchen.close()
