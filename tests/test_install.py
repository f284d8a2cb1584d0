"""scripts/install.sh staged with --root: the layout, a config the app accepts, models
copied, units installed (the update timer not enabled), nothing changed by a rerun, and
--uninstall keeping config and data unless --purge."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ota_support import make_app_wheel

from firmware_app.config.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install.sh"
UNITS = ["ttbt5.service", "ttbt5-update.service", "ttbt5-update.timer", "ttbt5-update.path"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), "--python", sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a rerun could change: type, mode, mtime, content, link target."""
    state: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                state[str(path)] = ("dir", st.st_mode, st.st_mtime_ns)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[str(path)] = ("file", st.st_mode, st.st_mtime_ns, digest)
    return state


def validate(config: Path) -> None:
    """``ttbt5 config validate`` when the CLI is there, else the loader it uses. The config
    is staged under a root, so the files it names (``/etc/ttbt5/update.pub``) are under that
    root rather than on this machine: validate's "does not exist" for those is expected,
    any other problem is not."""
    root = config.parents[2]
    if importlib.util.find_spec("firmware_app.cli") is not None:
        done = subprocess.run(
            [sys.executable, "-m", "firmware_app", "config", "validate", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for line in done.stderr.splitlines():
            found = re.match(r"ttbt5: error: [\w.\[\]]+: (/\S+) does not exist", line)
            staged = root / found.group(1).lstrip("/") if found else None
            assert staged is not None and staged.parent.is_dir(), done.stderr
        assert done.returncode in (0, 2), done.stdout + done.stderr
    load_settings(config)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    wheels = tmp_path / "wheels"
    models = tmp_path / "models"
    (models / "vosk-model-small-en-us-0.15" / "am").mkdir(parents=True)
    (models / "vosk-model-small-en-us-0.15" / "am" / "final.mdl").write_bytes(b"model")
    key = tmp_path / "release.pub"
    key.write_text("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n")
    return {
        "wheel": make_app_wheel(wheels, "0.1.0"),
        "wheels": wheels,
        "models": models,
        "key": key,
    }


def test_staged_install_layout_rerun_and_uninstall(tmp_path: Path, inputs: dict[str, Path]):
    root = tmp_path / "root"
    args = [
        "--app",
        str(inputs["wheel"]),
        "--wheelhouse",
        str(inputs["wheels"]),
        "--models-from",
        str(inputs["models"]),
        "--public-key",
        str(inputs["key"]),
        "--update-url",
        "http://127.0.0.1:9/releases/",
    ]
    user_existed = subprocess.run(["getent", "passwd", "ttbt5"], capture_output=True).returncode
    first = install(root, *args)

    app = root / "opt" / "ttbt5"
    assert os.readlink(app / "current") == "releases/0.1.0"
    assert (app / "current" / "release.json").is_file()
    done = subprocess.run(
        [str(app / "current" / "venv" / "bin" / "ttbt5")],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # its own code
    )
    assert done.stdout.strip() == "0.1.0"  # the release's own venv runs
    # the command on PATH runs whatever release is current (through the link, so an update
    # or a rollback that moves `current` moves it too)
    command = root / "usr" / "local" / "bin" / "ttbt5"
    assert os.readlink(command) == "/opt/ttbt5/current/venv/bin/ttbt5"

    config = root / "etc" / "ttbt5" / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    validate(config)
    settings = load_settings(config)
    assert settings.data_dir == Path("/var/lib/ttbt5")  # data never inside a release
    assert settings.update.root == Path("/opt/ttbt5")
    assert settings.update.url == "http://127.0.0.1:9/releases/"
    assert settings.update.public_key == Path("/etc/ttbt5/update.pub")
    assert (root / "etc" / "ttbt5" / "update.pub").read_bytes() == inputs["key"].read_bytes()
    for cred in ("mqtt_password", "llm_api_key"):
        path = root / "etc" / "ttbt5" / "credentials" / cred
        assert path.stat().st_mode & 0o777 == 0o600

    model = root / "var/lib/ttbt5/models/vosk-model-small-en-us-0.15/am/final.mdl"
    assert model.read_bytes() == b"model"
    for unit in UNITS:
        assert (root / "etc/systemd/system" / unit).read_bytes() == (
            REPO / "systemd" / unit
        ).read_bytes()

    # nothing outside the root was touched: system commands were only printed
    out = first.stdout
    assert "would run: systemctl enable ttbt5.service" in out
    assert "would run: systemctl enable --now ttbt5-update.path" in out  # works before a reboot
    assert not any("enable" in line and "timer" in line for line in out.splitlines())
    assert "would run: systemctl restart ttbt5.service" in out
    if user_existed != 0:
        assert "would run: useradd --system" in out
        assert subprocess.run(["getent", "passwd", "ttbt5"], capture_output=True).returncode != 0

    # running it again changes nothing at all
    before = snapshot(root)
    again = install(root, *args)
    assert snapshot(root) == before
    assert "nothing to do" in again.stdout
    assert "restart" not in again.stdout

    # data written by the service survives an uninstall; --purge removes it
    store = root / "var/lib/ttbt5/store.sqlite"
    store.write_bytes(b"timers")
    install(root, "--uninstall")
    assert not app.exists()
    assert not command.is_symlink()
    assert not any((root / "etc/systemd/system" / unit).exists() for unit in UNITS)
    assert store.read_bytes() == b"timers" and config.is_file()
    install(root, "--uninstall", "--purge")
    assert not store.exists() and not config.exists()


def test_installing_a_newer_release_keeps_the_old_one_and_the_config(
    tmp_path: Path, inputs: dict[str, Path]
):
    root = tmp_path / "root"
    install(
        root, "--app", str(inputs["wheel"]), "--wheelhouse", str(inputs["wheels"]), "--skip-models"
    )
    config = root / "etc" / "ttbt5" / "config.toml"
    config.write_text(config.read_text() + "\n[vad]\nsilence_ms = 700\n")
    edited = config.read_bytes()
    newer = make_app_wheel(tmp_path / "new", "0.2.0")
    install(root, "--app", str(newer), "--wheelhouse", str(newer.parent), "--skip-models")
    app = root / "opt" / "ttbt5"
    assert os.readlink(app / "current") == "releases/0.2.0"
    assert os.readlink(app / "previous") == "releases/0.1.0"
    assert config.read_bytes() == edited  # the user's config is never overwritten
    validate(config)


def test_bad_option_fails_with_one_line(tmp_path: Path):
    done = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(tmp_path), "--frobnicate"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "install.sh: unknown option --frobnicate (see --help)"


def test_a_rerun_never_replaces_a_newer_release(tmp_path: Path, inputs: dict[str, Path]):
    """After an OTA update to 0.5.0, running the 0.1.0 installer again leaves 0.5.0."""
    root = tmp_path / "root"
    args = ["--wheelhouse", str(inputs["wheels"]), "--skip-models"]
    install(root, "--app", str(inputs["wheel"]), *args)
    newer = make_app_wheel(tmp_path / "new", "0.5.0")
    install(root, "--app", str(newer), "--wheelhouse", str(newer.parent), "--skip-models")
    app = root / "opt" / "ttbt5"
    again = install(root, "--app", str(inputs["wheel"]), *args)
    assert "release 0.5.0 (newer than this installer's 0.1.0) is installed: left in place" in (
        again.stdout
    )
    assert os.readlink(app / "current") == "releases/0.5.0"
    assert os.readlink(app / "previous") == "releases/0.1.0"


SHIM = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
if [ -e "{fail}/$(basename "$0")" ] && [ "$*" = "$(cat "{fail}/$(basename "$0")")" ]; then
    echo "$(basename "$0"): failing as told" >&2
    exit 1
fi
exit 0
"""


def test_progress_is_recorded_only_after_each_step_succeeds(
    tmp_path: Path, inputs: dict[str, Path]
):
    """System commands really run, by stand-ins on PATH that fail when told: a failed
    daemon-reload is redone by the next run, and offline (no models) everything else is
    installed and the one command to fetch the models is printed."""
    shims, fail, log = tmp_path / "shims", tmp_path / "fail", tmp_path / "commands.log"
    shims.mkdir()
    fail.mkdir()
    for name in ("systemctl", "runuser", "chown", "useradd", "groupadd", "usermod", "apt-get"):
        (shims / name).write_text(SHIM.format(log=log, fail=fail))
        (shims / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the release's code
    env.update(PATH=f"{shims}:{os.environ['PATH']}", INSTALL_SH_RUN_STAGED="1")
    root = tmp_path / "root"
    cmd = ["bash", str(SCRIPT), "--root", str(root), "--python", sys.executable]
    cmd += ["--app", str(inputs["wheel"]), "--wheelhouse", str(inputs["wheels"])]

    def run() -> subprocess.CompletedProcess[str]:
        log.write_text("")
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)

    (fail / "systemctl").write_text("daemon-reload")
    first = run()
    assert first.returncode != 0 and "failing as told" in first.stderr
    (fail / "systemctl").unlink()
    (fail / "runuser").write_text(
        f"-u ttbt5 -- {root}/opt/ttbt5/releases/0.1.0/venv/bin/ttbt5 models pull "
        "--config /etc/ttbt5/config.toml"
    )
    second = run()  # offline: the model download fails
    assert second.returncode == 0, second.stderr
    ran = log.read_text().splitlines()
    assert "systemctl daemon-reload" in ran  # redone: the first run's reload failed
    assert "systemctl enable --now ttbt5-update.path" in ran
    assert "systemctl restart ttbt5.service" in ran
    assert "could not be fetched (offline?)" in second.stdout
    assert (
        "once online, run:  sudo runuser -u ttbt5 -- /opt/ttbt5/current/venv/bin/ttbt5 "
        "models pull --config /etc/ttbt5/config.toml"
    ) in second.stdout
    assert "nothing to do" not in second.stdout
    (fail / "runuser").unlink()
    third = run()  # online again: only the models are fetched
    assert third.returncode == 0, third.stderr
    ran = log.read_text().splitlines()
    assert any("models pull" in line for line in ran)
    assert "systemctl daemon-reload" not in ran
    fourth = run()
    assert "nothing to do" in fourth.stdout
    assert not any("models pull" in line for line in log.read_text().splitlines())
