"""Soak test: the real assistant (``ttbt5 run`` with its real engines) against a real
Mosquitto, the loopback LLM server and a live-paced ALSA microphone, for a given time, with
faults injected on a schedule. Prints JSON: RSS, open files and threads over time, commands
sent vs answered, wakes answered, errors by kind, timers and settings kept.

    sudo .venv/bin/python scripts/soak.py --duration 3600 --output soak.json

Every cycle (``--cycle`` seconds) runs, in order: a spoken wake word and question (while a
peer in the device's group, its wall clock 2 s ahead, makes worse claims and a stranger
without the group's key forges better ones), a burst of hostile payloads, abuse of the
control socket (silent, vanishing, connect-and-leave and slow-loris clients around a real
``ask``), LLM faults (error status, hang, malformed stream) under ``ask``, a retained
command, the data directory filling up (a real small tmpfs; skipped with a note where
mounting is not allowed) while volume and timers change, a microphone stall, and the
broker going away (SIGTERM or SIGKILL, alternately) and coming back. Commands flow all the
time except around the wake and the broker outage. Alongside, a 30 s timer is set and the
device's wall clock stepped an hour forward, two back and forward again to true (through
the test-mode clock file, ``firmware_app/system/test_clock.py``): it must ring on time. At
the end, corrupt rows are written into the store and the device restarted: they must cost
only themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from audio_helpers import conversation  # noqa: E402
from live_mic import MicFeeder  # noqa: E402
from llm_fake_server import FakeLlm, hang, raw, sse, status  # noqa: E402
from mqtt_broker import Broker  # noqa: E402
from small_fs import SmallFs  # noqa: E402
from soak_faults import GROUP, KEY, Claims, ClockSteps, corrupt_row, socket_abuse  # noqa: E402
from soak_rig import Device, Observer, asoundrc, hostile_payloads  # noqa: E402

DEVICE_ID = "soak"
TIMER_NAMES = ["pasta", "tea", "eggs", "rice", "bread", "soup", "pizza", "cake", "beans"]


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.faults: dict[str, int] = {}
        self.notes: list[str] = []
        self.sent: list[str] = []
        self.retained: list[str] = []
        self.hostile = 0
        self.wakes = {"played": 0, "detected": 0, "answered": 0}
        self.last_volume: int | None = None
        self.samples: list[dict[str, float]] = []
        self.quiet = threading.Event()  # set: no commands now
        self.done = threading.Event()
        self.n = 0

        self.broker = Broker(workdir)
        conf = self.broker.conf.read_text().replace("persistence false", "persistence true")
        conf += f"persistence_location {workdir}/\nautosave_interval 2\n"
        self.broker.conf.write_text(conf)  # retained commands survive a restart
        self.broker.start()
        self.llm = FakeLlm(default=sse(["Here is a short answer.", "It has two sentences."]))
        self.fs = SmallFs(workdir / "data", size_kb=args.tmpfs_kb)
        try:
            self.fs.mount()
        except PermissionError as exc:
            self.fs.path.mkdir(exist_ok=True)
            self.notes.append(f"disk-full faults skipped: {exc}")
        fifo = workdir / "mic.fifo"
        self.feeder = MicFeeder(fifo)
        base = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
        env = {
            **base,
            "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{asoundrc(workdir, fifo)}",
            "GPIOZERO_PIN_FACTORY": "mock",
            "TTBT5_DATA_DIR": str(self.fs.path),
            "TTBT5_AUDIO__INPUT_DEVICE": "soakmic",
            "TTBT5_AUDIO__OUTPUT_DEVICE": "soakspeaker",
            "TTBT5_MQTT__HOST": self.broker.host,
            "TTBT5_MQTT__PORT": str(self.broker.port),
            "TTBT5_MQTT__DEVICE_ID": DEVICE_ID,
            "TTBT5_MQTT__HEALTH_INTERVAL_S": "5",
            "TTBT5_MQTT__RECONNECT_MAX_S": "2",
            "TTBT5_LLM__URL": self.llm.url,
            "TTBT5_LOG__EVENTS": str(workdir / "events.jsonl"),
            "TTBT5_ARBITRATION__SECRET": KEY,
            "TTBT5_ARBITRATION__GROUP": GROUP,
            "RUNTIME_DIRECTORY": str(workdir / "run"),
            "TTBT5TEST_WALL_CLOCK_FILE": str(workdir / "wall-offset"),
        }
        self.socket_abuse: list[dict[str, Any]] = []
        self.clock = ClockSteps(workdir / "wall-offset")
        self.corrupt: dict[str, Any] = {}
        self._clock_thread: threading.Thread | None = None
        self.claims_seen: dict[str, Any] = {}
        self.first_process_samples: int | None = None
        self.observer = Observer(self.broker.host, self.broker.port, f"ttbt5/{DEVICE_ID}")
        self.claims = Claims(self.broker.host, self.broker.port)
        self.device = Device(env, workdir)
        self.wake_audio = conversation(0.5, "Hey Jarvis, what time is it?", 2.0)

    # --- the run
    def run(self) -> dict[str, Any]:
        start = time.monotonic()
        self._wait_online(120)
        threading.Thread(target=self._commands, daemon=True).start()
        threading.Thread(target=self._sampler, daemon=True).start()
        cycle = 0
        while time.monotonic() - start < self.args.duration:
            self._cycle(cycle, start)
            cycle += 1
        if self._clock_thread is not None:
            self._clock_thread.join()
        self._corrupt_row()
        self.quiet.set()
        time.sleep(self.args.grace)
        self.done.set()
        health = self.observer.health
        exit_code = self.device.stop()
        return self._report(time.monotonic() - start, cycle, health, exit_code)

    def _cycle(self, cycle: int, start: float) -> None:
        c0 = time.monotonic()
        length = self.args.cycle

        def at(fraction: float) -> None:
            end = start + self.args.duration
            while time.monotonic() < min(c0 + fraction * length, end):
                self.device.check()
                time.sleep(0.1)

        self._send("ask", {"text": "cancel all timers"})
        at(0.05)
        self.claims.during(self._wake)
        self._clock_thread = threading.Thread(
            target=self.clock.run, args=(self._clock_timer, self._rings)
        )
        self._clock_thread.start()
        at(0.2)
        self._hostile(cycle)
        self.quiet.set()  # nothing else interrupts the ask that must get through
        time.sleep(1)
        self.socket_abuse.append(socket_abuse(self.workdir / "run" / "control.sock"))
        self.quiet.clear()
        at(0.25)
        self._llm_faults()
        at(0.32)
        self._retained(cycle)
        at(0.4)
        self._disk_full(cycle, c0 + 0.58 * length)
        at(0.62)
        self.faults["mic_stall"] = self.faults.get("mic_stall", 0) + 1
        self.feeder.stall(6.0)
        at(0.75)
        self._broker_outage(kill=cycle % 2 == 1)
        at(1.0)

    def _send(self, command: str, args: dict[str, Any]) -> None:
        self.n += 1
        rid = f"c-{self.n}"
        if self.observer.publish(command, json.dumps({**args, "id": rid})):
            self.sent.append(rid)
            if command == "volume":
                self.last_volume = int(args["volume"])

    def _commands(self) -> None:
        rotation = [
            ("volume", lambda i: {"volume": 20 + i % 60}),
            ("say", lambda i: {"text": f"Soak message number {i}."}),
            ("mute", lambda i: {"muted": False}),
            ("ask", lambda i: {"text": "what time is it"}),
            ("stop", lambda i: {}),
            ("ask", lambda i: {"text": f"tell me something about the number {i}"}),
        ]
        i = 0
        while not self.done.is_set():
            if not self.quiet.is_set():
                name, make = rotation[i % len(rotation)]
                self._send(name, make(i))
                i += 1
            time.sleep(self.args.command_s)

    def _sampler(self) -> None:
        t0 = time.monotonic()
        while not self.done.is_set():
            sample = self.device.sample()
            heap = self.observer.health.get("memory", {}).get("heap")
            if sample and isinstance(heap, dict):  # the C heap, from the last health report
                sample["heap_in_use_mb"] = heap["in_use_mb"]
                sample["heap_free_mb"] = heap["free_mb"]
            if sample:
                self.samples.append({"t": round(time.monotonic() - t0, 1), **sample})
            self.done.wait(self.args.sample_s)

    # --- faults
    def _wake(self) -> None:
        self.quiet.set()
        time.sleep(2)
        t = time.monotonic()
        self.feeder.speak(self.wake_audio)
        self.wakes["played"] += 1
        deadline = t + 25
        while time.monotonic() < deadline and not self.observer.since(t, "speak_end"):
            time.sleep(0.2)
        if self.observer.since(t, "wake"):
            self.wakes["detected"] += 1
            if self.observer.since(t, "reply"):
                self.wakes["answered"] += 1
        self.quiet.clear()

    def _clock_timer(self) -> None:
        self._send("ask", {"text": "set a timer for thirty seconds"})

    def _rings(self, t0: float) -> list[float]:
        with self.observer.lock:
            timeline = list(self.observer.timeline)
        return [
            at for at, k, d in timeline if at >= t0 and k == "timer" and d.get("action") == "ring"
        ]

    def _corrupt_row(self) -> None:
        """Bad rows written under the running service, read at its next start."""
        path = self.fs.path / "store.sqlite"
        try:
            corrupt_row(path)
        except Exception as exc:
            self.notes.append(f"corrupt row not written: {exc}")
            return
        self.quiet.set()
        time.sleep(3)
        self.claims_seen = self.claims.report(self.observer.health)  # before the restart
        self.first_process_samples = len(self.samples)  # the drift is the first process's
        self.device.stop()
        self.device.start()
        t = time.monotonic()
        self._wait_online(180, 0)
        time.sleep(8)  # a health report from the new process
        errors = [e for e in self.observer.since(t, "error") if e.get("where") == "store"]
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            left = conn.execute(
                "SELECT count(*) FROM timers WHERE key IN ('bad-bytes', 'bad-json')"
            ).fetchone()[0]
        store = self.observer.health.get("store") or {}
        self.corrupt = {
            "store_errors": len(errors),
            "bad_rows_left": left,
            "store": store.get("status"),
        }
        self.faults["corrupt_row"] = 1
        self.quiet.clear()

    def _hostile(self, cycle: int) -> None:
        for command, payload in hostile_payloads(str(cycle)):
            if self.observer.publish(command, payload):
                self.hostile += 1
        self.faults["hostile_burst"] = self.faults.get("hostile_burst", 0) + 1

    def _llm_faults(self) -> None:
        self.llm.then(status(500), hang(), raw([b"data: {not json\n\n"]), status(429))
        for i in range(4):
            self._send("ask", {"text": f"what is the longest river number {i}"})
            time.sleep(3)
        self.faults["llm"] = self.faults.get("llm", 0) + 4

    def _retained(self, cycle: int) -> None:
        rid = f"r-{cycle}"
        if self.observer.publish("volume", json.dumps({"volume": 7, "id": rid}), retain=True):
            self.retained.append(rid)
        self.faults["retained"] = self.faults.get("retained", 0) + 1

    def _disk_full(self, cycle: int, until: float) -> None:
        if not self.fs.mounted:
            return
        self.fs.fill()
        self.faults["disk_full"] = self.faults.get("disk_full", 0) + 1
        names = [TIMER_NAMES[(cycle * 3 + k) % len(TIMER_NAMES)] for k in range(3)]
        for name in names:
            self._send("ask", {"text": f"set a {name} timer for twenty hours"})
            time.sleep(2)
        self._send("ask", {"text": f"cancel the {names[0]} timer"})
        while time.monotonic() < until:
            time.sleep(0.2)
        self.fs.free()

    def _broker_outage(self, kill: bool) -> None:
        self.quiet.set()
        time.sleep(3)
        # The broker keeps the old retained status and health; only a health report made
        # after the outage began shows the device is back (commands sent before are lost).
        fresh = float(self.observer.health.get("uptime_s") or 0) + 6
        if kill:
            self.broker.kill()
        else:
            self.broker.stop()
        self.faults["broker_outage"] = self.faults.get("broker_outage", 0) + 1
        time.sleep(5)
        self.broker.start()
        self._wait_online(60, fresh)
        self.quiet.clear()

    def _wait_online(self, timeout: float, uptime_after: float = 0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.device.check()
            uptime = self.observer.health.get("uptime_s")
            fresh = isinstance(uptime, int | float) and uptime > uptime_after
            if self.observer.connected.is_set() and self.observer.status == "online" and fresh:
                return
            time.sleep(0.2)
        seen = self.observer.status or "nothing"
        state = "connected" if self.observer.connected.is_set() else "not connected"
        self.notes.append(f"device not online within {timeout} s (observer {state}, saw {seen})")

    # --- the report
    def _report(
        self, elapsed: float, cycles: int, health: dict[str, Any], exit_code: int | None
    ) -> dict[str, Any]:
        obs = self.observer
        answered = [rid for rid in self.sent if rid in obs.results]
        duplicates = [rid for rid in self.sent if len(obs.results.get(rid, [])) > 1]
        hostile_answered = obs.anonymous_results + sum(
            len(v) for k, v in obs.results.items() if k.startswith("h-")
        )
        redelivered = [r for rid in self.retained for r in obs.results.get(rid, [])[1:]]
        stored = self._stored()
        return {
            "duration_s": round(elapsed, 1),
            "cycles": cycles,
            "process": _trend(self.samples[: self.first_process_samples]),
            "samples": self.samples,
            "commands": {
                "sent": len(self.sent),
                "answered": len(answered),
                "unanswered": len(self.sent) - len(answered),
                "answered_twice": len(duplicates),
                "ok": sum(1 for rid in answered if obs.results[rid][0].get("ok")),
            },
            "hostile": {"sent": self.hostile, "answered": hostile_answered},
            "retained": {
                "sent": len(self.retained),
                "redelivered": len(redelivered),
                "run_on_redelivery": sum(1 for r in redelivered if r.get("ok")),
            },
            "wakes": self.wakes,
            "errors_by_kind": dict(obs.errors),
            "events": dict(obs.events),
            "store_status_seen": dict(obs.store_statuses),
            "mic_status_seen": dict(obs.mic_statuses),
            "timers": {
                "in_memory": health.get("timers"),
                "in_store": stored.get("timers"),
                "lost": (health.get("timers") or 0) - (stored.get("timers") or 0),
            },
            "volume": {"in_memory": health.get("volume"), "in_store": stored.get("volume")},
            "crashes": len(self.device.crashes),
            "exit_code": exit_code,
            "socket_abuse": {
                "rounds": len(self.socket_abuse),
                "ask_answered": sum(1 for r in self.socket_abuse if r["ask_answered"]),
                "max_ask_s": max((r["ask_s"] for r in self.socket_abuse), default=None),
                "errors": [r["error"] for r in self.socket_abuse if r["error"]],
            },
            "claims": self.claims_seen or self.claims.report(health),
            "clock_steps": self.clock.report(),
            "corrupt_row": self.corrupt,
            "faults": self.faults,
            "notes": self.notes,
        }

    def _stored(self) -> dict[str, Any]:
        path = self.fs.path / "store.sqlite"
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                timers = conn.execute("SELECT COUNT(*) FROM timers").fetchone()[0]
                row = conn.execute("SELECT value FROM settings WHERE key='volume'").fetchone()
        except sqlite3.Error as exc:
            return {"error": str(exc)}
        return {"timers": timers, "volume": json.loads(row[0]) if row else None}

    def close(self) -> None:
        self.done.set()
        if self.device.proc is not None and self.device.proc.poll() is None:
            self.device.stop()
        self.observer.close()
        self.claims.close()
        self.feeder.close()
        self.llm.close()
        self.broker.stop()
        self.fs.unmount()


def _trend(samples: list[dict[str, float]]) -> dict[str, Any]:
    """First/last/max of each figure, and RSS drift per hour after the first fifth (the
    engines' warm-up), by least squares. The C heap's in-use and free figures tell a leak
    (in use grows) from fragmentation (free grows) when RSS drifts; the anonymous part of
    RSS tells both from the kernel paging a mapped model file out and back in."""
    out: dict[str, Any] = {}
    keys = ("rss_mb", "rss_anon_mb", "rss_file_mb", "heap_in_use_mb", "heap_free_mb")
    for key in (*keys, "fds", "threads"):
        values = [s[key] for s in samples if key in s]
        if values:
            out[key] = {"first": values[0], "last": values[-1], "max": max(values)}
    steady = samples[len(samples) // 5 :]
    for key, name in (("rss_mb", "rss_drift_mb_per_h"), ("rss_anon_mb", "anon_drift_mb_per_h")):
        slope = _slope([(s["t"], s[key]) for s in steady if key in s])
        if slope is not None:
            out[name] = round(slope * 3600, 2)
    return out


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(t, y)`` points, per second; None for fewer than three."""
    if len(points) < 3:
        return None
    mt = sum(t for t, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600, help="seconds to run")
    parser.add_argument("--cycle", type=float, default=300, help="seconds per fault cycle")
    parser.add_argument("--command-s", type=float, default=2.0, help="seconds between commands")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to wait for answers")
    parser.add_argument("--tmpfs-kb", type=int, default=4096, help="size of the data tmpfs")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up: unmount, stop all
    with tempfile.TemporaryDirectory(prefix="ttbt5-soak-") as tmp:
        soak = Soak(args, Path(tmp))
        try:
            report = soak.run()
        finally:
            soak.close()
    text = json.dumps(report, indent=1)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
