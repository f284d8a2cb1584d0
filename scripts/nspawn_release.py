"""Releases for the systemd test (``scripts/nspawn-test.sh``): the real updater, a stand-in
voice service, and a release server's directory.

Each release is a ``ttbt5`` wheel holding the real ``firmware_app`` package (so the update
service runs the real updater) plus ``ttbt5_standin``, whose ``ttbt5 run`` behaves like the
service towards systemd: ``READY=1`` once started, ``WATCHDOG=1`` and the health file only
while its "audio loop" runs (it stops while ``/run/ttbt5/stall`` exists). A ``crash``
release exits at once. Its dependencies are only the updater's, downloaded for this machine.

``python scripts/nspawn_release.py OUT`` writes OUT/wheels (install.sh's wheelhouse),
OUT/site (bundles and a signed pointer per version), OUT/release.key and OUT/release.pub.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from ota_support import make_keys, make_wheel  # noqa: E402

from firmware_app.ota.__main__ import main as ota_main  # noqa: E402

UPDATER_DEPS = ["httpx", "loguru", "pydantic", "pydantic-settings", "cryptography", "packaging"]
RELEASES = {
    "0.1.0": "healthy",  # installed by install.sh
    "0.2.0": "healthy",  # the OTA update that commits
    "0.3.0": "crash",  # three failing updates, each rolled back
    "0.3.1": "crash",
    "0.3.2": "crash",
    "0.4.0": "healthy",  # the update run while the service user is hostile
}

STANDIN = """
import json, os, socket, sys, time

VERSION = {version!r}
BEHAVIOUR = {behaviour!r}
RUN = "/run/ttbt5"


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def main():
    args = sys.argv[1:]
    if args[:1] != ["run"]:
        print(VERSION)  # config validate, models pull, --version: nothing to do here
        return 0
    if BEHAVIOUR == "crash":
        print("crashing as built", file=sys.stderr)
        return 3
    health = os.path.join(RUN, "health.json")
    state = {{"version": VERSION, "pid": os.getpid(), "started": time.time(), "ready": True,
              "stopping": False, "frames": 0, "last_frame": None}}
    notify("READY=1")
    while True:
        if not os.path.exists(os.path.join(RUN, "stall")):
            state["frames"] += 1
            state["last_frame"] = time.time()
            with open(health + ".tmp", "w") as fh:
                fh.write(json.dumps(state))
            os.replace(health + ".tmp", health)
            notify("WATCHDOG=1")
        time.sleep(0.2)
"""


def app_wheel(out: Path, version: str, behaviour: str) -> Path:
    modules = {
        str(path.relative_to(REPO)): path.read_text()
        for path in sorted((REPO / "firmware_app").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".typed")
    }
    modules["ttbt5_standin.py"] = STANDIN.format(version=version, behaviour=behaviour)
    entry = "[console_scripts]\nttbt5 = ttbt5_standin:main\n"
    return make_wheel(out, "ttbt5", version, modules, UPDATER_DEPS, entry)


def build(out: Path) -> None:
    deps = out / "wheels"
    deps.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    subprocess.run(
        [*pip, "--dest", str(deps), *UPDATER_DEPS],
        check=True,
        timeout=900,
    )
    private, _ = make_keys(out)
    site = out / "site"
    for version, behaviour in RELEASES.items():
        house = out / f"house-{version}"
        house.mkdir()
        for dep in deps.glob("*.whl"):
            if dep.name.startswith("ttbt5-"):
                continue  # install.sh's copy of 0.1.0
            (house / dep.name).write_bytes(dep.read_bytes())
        app = app_wheel(house, version, behaviour)
        if version == "0.1.0":
            (deps / app.name).write_bytes(app.read_bytes())
        args = ["build", "--version", version, "--wheelhouse", str(house), "--key", str(private)]
        assert ota_main([*args, "--out", str(site), "--no-latest"]) == 0


if __name__ == "__main__":
    build(Path(sys.argv[1]))
