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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_app.config import MqttSettings, Settings
from firmware_app.engines import Detection
from firmware_app.events import Event, EventBus, wall_now
from firmware_app.messages import FRAME_SAMPLES, FRAME_SECONDS, Command, Frame, Message
from firmware_app.metrics import percentile
from firmware_app.mqtt import start_mqtt


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    def __init__(self, workdir: Path, nodelay: bool) -> None:
        self.port = free_port()
        conf = workdir / f"mosquitto-{self.port}.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"set_tcp_nodelay {'true' if nodelay else 'false'}\nuser root\n"
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


class StandIn:
    """The assistant's side as the bridge sees it: a bus, post() and status()."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.state = "idle"

    def post(self, msg: Message) -> None:
        if isinstance(msg, Command) and msg.reply is not None:
            msg.reply(True, None)

    def status(self) -> dict[str, Any]:
        return {"state": "idle", "muted": False, "volume": 50, "wake_count": 0, "errors": 0}


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
    broker = Mosquitto(workdir, nodelay)
    stand_in = StandIn()
    bridge = start_mqtt(settings_for(broker.port, workdir, f"bench{int(nodelay)}"), stand_in)
    assert bridge is not None
    try:
        while not bridge.connected:
            time.sleep(0.01)
        events = Receiver(broker.port, bridge.topics.event("wake"))
        event_ms = []
        for _ in range(n):
            events.got.clear()
            start = time.perf_counter()
            stand_in.bus.publish(Event("wake", 0.0, wall_now(), {"model": "x", "score": 1.0}))
            if events.got.wait(5):
                event_ms.append((events.at - start) * 1000)
        events.close()
        results = Receiver(broker.port, bridge.topics.cmd_result)
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
        broker.stop()


def observer_cost(workdir: Path, n: int) -> dict[str, Any]:
    """Median over batches of the time one bus.publish takes on the calling thread."""
    out: dict[str, Any] = {}
    broker = Mosquitto(workdir, nodelay=False)
    try:
        for mode in ("off", "on", "broker_down"):
            stand_in = StandIn()
            bridge = None
            if mode != "off":
                port = broker.port if mode == "on" else free_port()
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
        broker.stop()
    return out


# -- the assistant's per-frame time ---------------------------------------------------------

LOUD, SPEECH = 20000, 8000


class Wake:
    """Detects the scripted loud frame; with ``model`` it also runs the real openWakeWord
    on every frame, so a frame costs what it costs on a device."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def process(self, pcm: bytes) -> Detection | None:
        if self.model is not None:
            self.model.process(pcm)
        return Detection("hey_jarvis", 0.9) if pcm[:2] == _frame(LOUD)[:2] else None

    def reset(self) -> None:
        if self.model is not None:
            self.model.reset()


class Vad:
    def process(self, pcm: bytes) -> float:
        return 1.0 if abs(int(np.frombuffer(pcm[:2], dtype=np.int16)[0])) >= SPEECH else 0.0

    def reset(self) -> None: ...


class Stt:
    def start(self) -> None: ...

    def feed(self, pcm: bytes) -> None: ...

    def finish(self) -> str:
        return "what time is it"


class Tts:
    sample_rate = 16000

    def synthesize(self, text: str) -> Iterator[bytes]:
        yield np.full(6400 * len(text.split()), 3000, dtype=np.int16).tobytes()


def _frame(level: int) -> bytes:
    return np.full(FRAME_SAMPLES, level, dtype=np.int16).tobytes()


def frame_cost(
    workdir: Path, conversations: int, rounds: int = 3, model: Any = None
) -> dict[str, Any]:
    """Modes interleaved over several rounds, so a noisy moment hits them alike."""
    modes = ("off", "on", "broker_down")
    times: dict[str, list[float]] = {m: [] for m in modes}
    means: dict[str, list[float]] = {m: [] for m in modes}
    counts: dict[str, int] = dict.fromkeys(modes, 0)
    broker = Mosquitto(workdir, nodelay=False)
    try:
        for r in range(rounds):
            for mode in modes:
                port = broker.port if mode == "on" else free_port()
                got, events = _frames_once(
                    workdir / f"f-{mode}-{r}", mode, port, conversations, model
                )
                times[mode] += got
                means[mode].append(round(statistics.fmean(got), 2))
                counts[mode] += events
    finally:
        broker.stop()
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
    from firmware_app import runtime, simulation

    script = [0] * 10 + [LOUD] + [SPEECH] * 10 + [0] * 40
    settings = settings_for(port, data, f"frames-{mode}")
    if mode == "off":
        settings = Settings(data_dir=data)
    settings = settings.model_copy(
        update={"audio": settings.audio.model_copy(update={"chimes": False})}
    )
    engines = runtime.Engines(Wake(model), Vad(), Stt(), None, Tts())
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
                assistant.post(Frame(_frame(level), t))
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
            from firmware_app.config import WakeSettings
            from firmware_app.engines.wake import OpenWakeWord

            model = OpenWakeWord(WakeSettings())
            report["frame_us_with_openwakeword"] = frame_cost(
                workdir, args.conversations, model=model
            )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
