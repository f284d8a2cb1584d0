"""Real parts for the OTA tests: tiny app wheels that behave like the service (they write
the health file), a release server on 127.0.0.1 with HTTP Range and injectable faults, a
stand-in restart command, and config files for a temporary update root."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from firmware_app.ota.__main__ import main as ota_main
from firmware_app.ota.manifest import generate_keys, load_private_key, new_manifest, sign
from firmware_app.ota.pointer import make_pointer, new_pointer

APP_SOURCE = """
import json, os, signal, sys, time

VERSION = {version!r}
BEHAVIOUR = {behaviour!r}


def main():
    args = sys.argv[1:]
    if "--health" not in args:
        print(VERSION)
        return 0
    health = args[args.index("--health") + 1]
    if BEHAVIOUR == "crash":
        return 3
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    state = {{"version": VERSION, "pid": os.getpid(), "started": time.time(), "ready": True,
              "stopping": False, "frames": 0, "last_frame": None}}
    end = time.time() + 120
    while time.time() < end:
        if BEHAVIOUR != "stall" or state["frames"] < 3:
            state["frames"] += 1
            state["last_frame"] = time.time()
            with open(health + ".tmp", "w") as fh:
                fh.write(json.dumps(state))
            os.replace(health + ".tmp", health)
        time.sleep(0.05)
    return 0
"""


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_app_wheel(
    out: Path, version: str, behaviour: str = "healthy", requires: list[str] | None = None
) -> Path:
    """A real, pip-installable ``ttbt5`` wheel with a ``ttbt5`` console script."""
    source = APP_SOURCE.format(version=version, behaviour=behaviour)
    return make_wheel(
        out,
        "ttbt5",
        version,
        {"firmware_app/__init__.py": source},
        requires,
        "[console_scripts]\nttbt5 = firmware_app:main\n",
    )


def make_wheel(
    out: Path,
    name: str,
    version: str,
    modules: dict[str, str],
    requires: list[str] | None = None,
    entry_points: str | None = None,
) -> Path:
    """A real, pip-installable pure-Python wheel."""
    out.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {req}\n" for req in requires or [])
    files = {
        **modules,
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points
    path = out / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        record = []
        for name, text in files.items():
            data = text.encode()
            zf.writestr(name, data)
            record.append(f"{name},{_record_hash(data)},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


def make_keys(directory: Path, name: str = "release") -> tuple[Path, Path]:
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    generate_keys(private, public)
    return private, public


def publish(
    site: Path,
    version: str,
    key: Path,
    work: Path,
    behaviour: str = "healthy",
    min_from: str | None = None,
    extra: dict[str, bytes] | None = None,
    latest: bool = True,
    serial: int | None = None,
    requires: list[str] | None = None,
    wheels: dict[str, bytes] | None = None,
) -> Path:
    """Build and publish a release with the real ``build`` command; returns the bundle."""
    wheelhouse = work / f"wheelhouse-{version}-{behaviour}"
    make_app_wheel(wheelhouse, version, behaviour, requires)
    for name, data in {**(extra or {}), **(wheels or {})}.items():
        (wheelhouse / name).write_bytes(data)
    args = ["build", "--version", version, "--wheelhouse", str(wheelhouse), "--key", str(key)]
    args += ["--out", str(site)]
    if min_from:
        args += ["--min-from", min_from]
    if not latest:
        args.append("--no-latest")
    if serial is not None:
        args += ["--serial", str(serial)]
    assert ota_main(args) == 0
    return site / f"ttbt5-{version}.tar"


def point_latest(
    site: Path,
    bundle: Path,
    key: Path,
    version: str | None = None,
    *,
    serial: int | None = None,
    expires_days: float = 14.0,
    hardware: tuple[str, ...] = ("any",),
    **fields: Any,
) -> None:
    """Sign latest.json by hand for ``bundle`` as it is now: what a compromised build
    machine holding the key could publish (so the bundle's own checks must still hold)."""
    data = bundle.read_bytes()
    pointer = new_pointer(
        version or bundle.stem.split("-", 1)[1],
        bundle.name,
        len(data),
        hashlib.sha256(data).hexdigest(),
        hardware=hardware,
        serial=serial,
        expires_days=expires_days,
    )
    if fields:
        pointer = dataclasses.replace(pointer, **fields)
    (site / "latest.json").write_bytes(make_pointer(pointer, load_private_key(key)))


class ReleaseServer:
    """A static file server with byte ranges. ``cut[name] = n`` makes responses for that
    file stop after n body bytes and drop the connection (``cut_times`` limits how often)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}
        self.cut_times: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut.get(path.name)
                if cut is not None and server.cut_times.get(path.name, 1) > 0:
                    server.cut_times[path.name] = server.cut_times.get(path.name, 1) - 1
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


RESTART_SCRIPT = """
import os, signal, subprocess, sys, time
pidfile, root, health = sys.argv[1:4]
uid = int(sys.argv[4]) if len(sys.argv) > 4 else None  # the service's own user
try:
    old = int(open(pidfile).read())
    os.kill(old, signal.SIGKILL)
    for _ in range(100):
        os.kill(old, 0)
        time.sleep(0.01)
except (OSError, ValueError):
    pass
app = os.path.join(root, "current", "venv", "bin", "ttbt5")
env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as under systemd
ids = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
proc = subprocess.Popen([app, "--health", health], start_new_session=True, env=env,
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, **ids)
with open(pidfile, "w") as fh:
    fh.write(str(proc.pid))
"""


class Device:
    """A temporary device: update root, config file, data dir, health file and a stand-in
    for ``systemctl restart ttbt5`` that (re)starts ``current/venv/bin/ttbt5``."""

    def __init__(
        self, base: Path, url: str, public_key: Path, service_uid: int | None = None, **update: Any
    ) -> None:
        self.base = base
        self.root = base / "opt" / "ttbt5"
        self.data = base / "var" / "lib" / "ttbt5"
        self.run = base / "run"
        self.config = base / "etc" / "ttbt5" / "config.toml"
        self.health = self.run / "health.json"
        self.pidfile = base / "service.pid"
        for path in (self.root, self.data / "update", self.run, self.config.parent):
            path.mkdir(parents=True, exist_ok=True)
        script = base / "restart.py"
        script.write_text(textwrap.dedent(RESTART_SCRIPT))
        settings: dict[str, Any] = {
            "root": str(self.root),
            "url": url,
            "public_key": str(public_key),
            "health_file": str(self.health),
            "restart_command": [
                sys.executable,
                str(script),
                str(self.pidfile),
                str(self.root),
                str(self.health),
                *([str(service_uid)] if service_uid is not None else []),
            ],
            "health_timeout_s": 20.0,
            # longer than the gap a stall must leave, so a release that stops after its
            # first frames is caught however soon the gate first reads it
            "health_audio_s": 1.5,
            "health_stale_s": 1.0,
            "http_timeout_s": 10.0,
            "reserve_mb": 1,
            "check_interval_h": 0,
        }
        settings.update(update)
        lines = [f'data_dir = "{self.data}"', "", "[update]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
        self.config.write_text("\n".join(lines) + "\n")
        (self.data / "store.sqlite").write_bytes(b"timers and settings")

    @property
    def journal(self) -> Path:
        return self.root / "state" / "journal.jsonl"

    def current(self) -> str | None:
        try:
            return os.readlink(self.root / "current")
        except OSError:
            return None

    def previous(self) -> str | None:
        try:
            return os.readlink(self.root / "previous")
        except OSError:
            return None

    def bootable(self) -> bool:
        """``current`` resolves to a complete release whose command runs."""
        target = self.root / "current"
        if not (target / "release.json").is_file():
            return False
        app = target / "venv" / "bin" / "ttbt5"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the release's own
        done = subprocess.run([str(app)], capture_output=True, text=True, timeout=30, env=env)
        return done.returncode == 0 and done.stdout.strip() == self.current_version()

    def current_version(self) -> str | None:
        try:
            return json.loads((self.root / "current" / "release.json").read_text())["version"]
        except OSError:
            return None

    def snapshot(self) -> dict[str, bytes]:
        """Config and data, to prove an update or rollback never touched them."""
        files = [
            self.config,
            *sorted(
                p
                for p in self.data.rglob("*")
                if p.is_file() and "update" not in p.relative_to(self.data).parts
            ),
        ]
        return {str(p): p.read_bytes() for p in files}

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(self.pidfile.read_text()), signal.SIGKILL)


def ota(
    device: Device, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m firmware_app.ota --config <device> ...`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "firmware_app.ota", "--config", str(device.config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


KILL_DRIVER = """
import os, signal, sys
from firmware_app.config.settings import load_settings
from firmware_app.ota.update import Updater

config, kill_at = sys.argv[1:3]

def hook(name):
    if name == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

settings = load_settings(config)
ok = Updater(settings.update, record=True, before_step=hook).update()
sys.exit(0 if ok else 1)
"""


def update_killed_at(device: Device, step: str) -> int:
    """Run an update in a subprocess that SIGKILLs itself when ``step`` begins."""
    done = subprocess.run(
        [sys.executable, "-c", KILL_DRIVER, str(device.config), step],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def signed_tar(
    path: Path,
    private_key: Path,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
    listed: dict[str, bytes] | None = None,
    version: str = "1.0.0",
    manifest_override: bytes | None = None,
) -> None:
    """A bundle whose manifest over ``listed`` is correctly signed, holding arbitrary
    members: what a compromised or buggy build machine could produce."""
    if listed is None:
        listed = {info.name: data for info, data in members if data is not None and info.isreg()}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in listed.items()}
    raw = new_manifest(version, digests, None).to_json()
    sig = sign(raw, load_private_key(private_key))
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest_override or raw), ("manifest.sig", sig)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def run_update(device: Device, **overrides: Any) -> tuple[bool, list[Any]]:
    """An update in this process (the CLI costs a second of imports per run); returns
    whether it succeeded and every step result reported."""
    from firmware_app.config.settings import load_settings
    from firmware_app.ota.update import Updater

    force = bool(overrides.pop("force", False))
    python = str(overrides.pop("python", sys.executable))
    settings = load_settings(device.config)
    results: list[Any] = []
    updater = Updater(
        settings.update.model_copy(update=overrides),
        record=True,
        report=results.append,
        python=python,
    )
    return updater.update(force=force), results
