#!/usr/bin/env python3
"""MQTT figures, printed as JSON.

- ``latency_ms``: an event emitted on the assistant's bus until a subscriber on loopback
  receives it (``event``), and a command published until its ``cmd/result`` arrives
  (``command``); p50/p95 over N messages, against Mosquitto with its default socket
  settings and with ``set_tcp_nodelay true``.
- ``observer_us``: what one event costs the assistant's thread (``EventBus.publish``) with
  MQTT off, on, and on with the broker down.
- ``frame_us``: the assistant's per-frame time (handling one 80 ms frame and everything it
  caused) over scripted conversations, MQTT off / on / broker down.

Needs ``/usr/sbin/mosquitto``. Usage: ``python scripts/bench_mqtt.py [-n 300]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # shared harness

from fakes import SILENT, SPEECH, WAKE, FakeTts, FakeVad, FakeWake, ScriptedStt, frame_of
from mqtt_broker import Broker, FakeAssistant, free_port

from firmware_app.config.settings import MqttSettings, Settings
from firmware_app.core.engines import Detection
from firmware_app.core.events import Event, wall_now
from firmware_app.core.messages import FRAME_SECONDS, Frame
from firmware_app.edges.mqtt import start_mqtt
from firmware_app.system.metrics import percentile


def broker(workdir: Path, name: str, nodelay: bool) -> Broker:
    """A running Mosquitto of the tests' own kind, in a directory of its own."""
    (workdir / name).mkdir()
    started = Broker(workdir / name, nodelay=nodelay)
    started.start()
    return started


class Receiver:
    def __init__(self, port: int, topic: str) -> None:
        self.got = threading.Event()
        self.at = 0.0
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{port}")
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.on_socket_open = _no_delay
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, *args: Any) -> None:
        self.at = time.perf_counter()
        self.got.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def settings_for(port: int, data: Path, device: str) -> Settings:
    return Settings(
        data_dir=data,
        mqtt=MqttSettings(host="127.0.0.1", port=port, device_id=device, reconnect_max_s=1),
    )


def stats_ms(samples: list[float]) -> dict[str, Any]:
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50) or 0.0, 3),
        "p95": round(percentile(samples, 95) or 0.0, 3),
    }


def latency(workdir: Path, n: int, nodelay: bool) -> dict[str, Any]:
    mosquitto = broker(workdir, f"latency-{int(nodelay)}", nodelay)
    stand_in = FakeAssistant()
    bridge = start_mqtt(settings_for(mosquitto.port, workdir, f"bench{int(nodelay)}"), stand_in)
    assert bridge is not None
    try:
        while not bridge.connected:
            time.sleep(0.01)
        events = Receiver(mosquitto.port, bridge.topics.event("wake"))
        event_ms = []
        for _ in range(n):
            events.got.clear()
            start = time.perf_counter()
            stand_in.bus.publish(Event("wake", 0.0, wall_now(), {"model": "x", "score": 1.0}))
            if events.got.wait(5):
                event_ms.append((events.at - start) * 1000)
        events.close()
        results = Receiver(mosquitto.port, bridge.topics.cmd_result)
        command_ms = []
        for _ in range(n):
            results.got.clear()
            start = time.perf_counter()
            results.client.publish(bridge.topics.cmd("stop"), "", qos=1)
            if results.got.wait(5):
                command_ms.append((results.at - start) * 1000)
        results.close()
        return {"event": stats_ms(event_ms), "command": stats_ms(command_ms)}
    finally:
        bridge.close()
        mosquitto.stop()


def observer_cost(workdir: Path, n: int) -> dict[str, Any]:
    """Median over batches of the time one bus.publish takes on the calling thread."""
    out: dict[str, Any] = {}
    mosquitto = broker(workdir, "observer", nodelay=False)
    try:
        for mode in ("off", "on", "broker_down"):
            stand_in = FakeAssistant()
            bridge = None
            if mode != "off":
                port = mosquitto.port if mode == "on" else free_port()
                bridge = start_mqtt(settings_for(port, workdir, f"obs-{mode}"), stand_in)
                if mode == "on":
                    while bridge is not None and not bridge.connected:
                        time.sleep(0.01)
            event = Event("led", 0.0, 0.0, {"pattern": "idle"})
            single = []
            for _ in range(n):  # spaced like real events: the worker is idle in between
                start = time.perf_counter_ns()
                stand_in.bus.publish(event)
                single.append((time.perf_counter_ns() - start) / 1000)
                time.sleep(0.001)
            burst = []
            for _ in range(10):  # back to back: the worker competes for the GIL
                start = time.perf_counter_ns()
                for _ in range(n):
                    stand_in.bus.publish(event)
                burst.append((time.perf_counter_ns() - start) / n / 1000)
                time.sleep(0.1)
            out[mode] = {
                "spaced_p50": round(percentile(single, 50) or 0.0, 3),
                "spaced_p95": round(percentile(single, 95) or 0.0, 3),
                "burst_median": round(statistics.median(burst), 3),
            }
            if bridge is not None:
                bridge.close(flush_s=0.5)
    finally:
        mosquitto.stop()
    return out


# -- the assistant's per-frame time ---------------------------------------------------------


class ModelWake(FakeWake):
    """The scripted wake word; with ``model`` it also runs the real openWakeWord on every
    frame, so a frame costs what it costs on a device."""

    def __init__(self, model: Any = None) -> None:
        super().__init__()
        self.model = model

    def detect(self, pcm: bytes) -> Detection | None:
        if self.model is not None:
            self.model.detect(pcm)
        return super().detect(pcm)

    def reset(self) -> None:
        super().reset()
        if self.model is not None:
            self.model.reset()


def frame_cost(
    workdir: Path, conversations: int, rounds: int = 3, model: Any = None
) -> dict[str, Any]:
    """Modes interleaved over several rounds, so a noisy moment hits them alike."""
    modes = ("off", "on", "broker_down")
    times: dict[str, list[float]] = {m: [] for m in modes}
    means: dict[str, list[float]] = {m: [] for m in modes}
    counts: dict[str, int] = dict.fromkeys(modes, 0)
    mosquitto = broker(workdir, "frames", nodelay=False)
    try:
        for r in range(rounds):
            for mode in modes:
                port = mosquitto.port if mode == "on" else free_port()
                got, events = _frames_once(
                    workdir / f"f-{mode}-{r}", mode, port, conversations, model
                )
                times[mode] += got
                means[mode].append(round(statistics.fmean(got), 2))
                counts[mode] += events
    finally:
        mosquitto.stop()
    return {
        mode: {
            "frames": len(times[mode]),
            "events": counts[mode],
            "mean": round(statistics.fmean(times[mode]), 2),
            "round_means": means[mode],
            "p50": round(percentile(times[mode], 50) or 0.0, 2),
            "p95": round(percentile(times[mode], 95) or 0.0, 2),
        }
        for mode in modes
    }


def _frames_once(
    data: Path, mode: str, port: int, conversations: int, model: Any
) -> tuple[list[float], int]:
    from firmware_app.app import loading, simulation

    script = [SILENT] * 10 + [WAKE] + [SPEECH] * 10 + [SILENT] * 40
    settings = settings_for(port, data, f"frames-{mode}")
    if mode == "off":
        settings = Settings(data_dir=data)
    settings = settings.model_copy(
        update={"audio": settings.audio.model_copy(update={"chimes": False})}
    )
    stt = ScriptedStt(*["what time is it"] * conversations)
    engines = loading.Engines(ModelWake(model), FakeVad(), stt, None, FakeTts())
    times: list[float] = []
    events: list[str] = []
    with simulation.simulated(
        settings, engines, observers=[lambda event: events.append(event.type)]
    ) as (assistant, speaker, clock):
        assistant.start()
        if mode == "on":
            time.sleep(0.5)  # connected
        n = 0
        for _ in range(conversations):
            for level in script:
                n += 1
                t = n * FRAME_SECONDS
                clock.set(t)
                speaker.advance(t)
                assistant.post(Frame(frame_of(level), t))
                start = time.perf_counter_ns()
                assistant.drain()  # the frame and everything it caused
                times.append((time.perf_counter_ns() - start) / 1000)
                simulation.settle(assistant)  # synthesis finishes off the clock
    return times, len(events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="messages per latency figure")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument(
        "--real-wake", action="store_true", help="also run openWakeWord on every frame"
    )
    args = parser.parse_args()
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        report = {
            "latency_ms": {
                "mosquitto_default": latency(workdir, args.n, nodelay=False),
                "mosquitto_tcp_nodelay": latency(workdir, args.n, nodelay=True),
            },
            "observer_us": observer_cost(workdir, 1000),
            "frame_us": frame_cost(workdir, args.conversations),
        }
        if args.real_wake:
            from firmware_app.config.settings import WakeSettings
            from firmware_app.listen.wake import OpenWakeWord

            model = OpenWakeWord(WakeSettings())
            report["frame_us_with_openwakeword"] = frame_cost(
                workdir, args.conversations, model=model
            )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
