"""The updater (root) against a compromised voice service (an unprivileged uid): links and
FIFOs planted everywhere that uid can write, then a real update through the update
service's own command line. Nothing may be written outside the release tree, nothing run as
root from what the service planted, and a hostile request file is refused unread.

Also: pip installs exactly what the bundle holds, whatever ``pip.conf`` files and ``PIP_*``
variables the machine has."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from ota_support import Device, ReleaseServer, make_keys, make_wheel, publish, run_update

REPO = Path(__file__).resolve().parent.parent
SERVICE_UID = 4242

SYSTEM_PYTHON = "/usr/bin/python3"
"""Release venvs the service user can run (as on the device: Debian's own Python)."""

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK),
    reason="plays root and an unprivileged service user: needs root, setpriv and /usr/bin/python3",
)

PAYLOAD = """
import os
if os.getuid() == 0:
    open({marker!r}, "w").write("root ran code the service planted")
"""


def as_service(script: str, *args: str) -> None:
    """Run Python as the service user, as a compromised service would."""
    subprocess.run(
        [
            "setpriv",
            f"--reuid={SERVICE_UID}",
            f"--regid={SERVICE_UID}",
            "--clear-groups",
            SYSTEM_PYTHON,  # the script needs nothing of ours; the service user can run it
            "-I",
            "-c",
            textwrap.dedent(script),
            *args,
        ],
        check=True,
        timeout=30,
    )


def root_update(
    device: Device, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``ttbt5-update.service``'s command line, ``python -I``, run from ``cwd``."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); "
        "from firmware_app.ota.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    request = device.data / "update" / "request.json"
    return subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            code,
            "--config",
            str(device.config),
            "update",
            "--request",
            str(request),
            "--python",
            SYSTEM_PYTHON,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=env if env is not None else {"PATH": os.environ["PATH"]},
    )


def tree(base: Path, skip: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry outside ``skip``: owner, type, size, link target or content hash."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == skip.parent:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                what = str(hash(path.read_bytes()))
            else:
                what = ""
            found[str(path)] = (st.st_uid, stat.S_IFMT(st.st_mode), st.st_size, what)
    return found


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory the service user can reach (pytest's own tmp is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="ttbt5-boundary-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def device(base: Path) -> Iterator[tuple[Device, Path, Path]]:
    site = base / "site"
    site.mkdir()
    private, public = make_keys(base)
    server = ReleaseServer(site)
    dev = Device(base / "device", server.url, public, service_uid=SERVICE_UID)
    for path in (dev.base, dev.base / "var", dev.base / "var" / "lib", dev.config.parent):
        path.chmod(0o755)
    for path in (dev.data, dev.data / "update", dev.run):
        os.chown(path, SERVICE_UID, SERVICE_UID)
    os.chown(dev.data / "store.sqlite", SERVICE_UID, SERVICE_UID)
    publish(site, "0.1.0", private, base)
    assert run_update(dev, python=SYSTEM_PYTHON)[0]
    yield dev, site, private
    dev.stop()
    server.close()


@needs_root
def test_compromised_service_user_gains_nothing_from_a_real_update(
    device: tuple[Device, Path, Path], base: Path
):
    dev, site, private = device
    site_packages = next((dev.root / "releases" / "0.1.0" / "venv" / "lib").glob("*/site-packages"))
    marker = dev.config.parent / "ROOT_RAN_PLANTED_CODE"
    victims = {
        # names root wrote in the service's directory before, pointing where it hurts
        "journal.jsonl": site_packages / "zz_planted.pth",
        ".journal.jsonl.tmp": site_packages / "zz_rotated.pth",
        "failed.json": dev.config.parent / "from-failed.json",
        "pending.json": dev.config.parent / "from-pending.json",
        ".update.lock": dev.config.parent / "from-lock",
        "posted": dev.config.parent / "from-posted",
        ".request.tmp": dev.config.parent / "from-request-tmp",
        "downloads": dev.config.parent,
    }
    update_dir = dev.data / "update"
    as_service(
        """
        import json, os, sys
        update, run, marker, payload = sys.argv[1:5]
        links = json.loads(sys.argv[5])
        for name, target in links.items():
            os.symlink(target, os.path.join(update, name))
        for fifo in ("notify.fifo", "lgpio.fifo"):
            os.mkfifo(os.path.join(run, fifo))
        os.mkfifo(os.path.join(update, "journal.fifo"))
        # code root would run if it imported from the service's directories
        for folder in (update, os.path.dirname(update)):
            for name in ("sitecustomize.py", "usercustomize.py", "firmware_app.py"):
                open(os.path.join(folder, name), "w").write(payload)
            os.makedirs(os.path.join(folder, "firmware_app", "ota"), exist_ok=True)
            for name in ("firmware_app/__init__.py", "firmware_app/ota/__init__.py",
                         "firmware_app/ota/__main__.py"):
                open(os.path.join(folder, name), "w").write(payload)
        with open(os.path.join(update, "request.json"), "w") as fh:
            json.dump({"id": "attack1", "force": False, "version": None}, fh)
        """,
        str(update_dir),
        str(dev.run),
        str(marker),
        PAYLOAD.format(marker=str(marker)),
        json.dumps({name: str(target) for name, target in victims.items()}),
    )
    publish(site, "0.2.0", private, base)
    before = tree(dev.base, dev.root)

    done = root_update(dev, cwd=update_dir)  # even from the service's own directory

    assert done.returncode == 0, done.stderr
    assert dev.current() == "releases/0.2.0" and dev.bootable()
    assert not marker.exists()
    for target in victims.values():
        assert not target.exists() or target == dev.config.parent, target
    assert sorted(p.name for p in dev.config.parent.iterdir()) == ["config.toml"]
    assert not list((dev.root / "releases").rglob("zz_*.pth"))
    after = tree(dev.base, dev.root)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    by_root = {path for path in changed if (after.get(path) or before[path])[0] == 0}
    by_root.discard(str(dev.pidfile))  # the stand-in for systemctl keeps its pid there
    assert by_root == set(), by_root  # the service's own writes (health file) aside
    assert str(update_dir / "request.json") not in after  # consumed
    for name, target in victims.items():  # root neither followed nor replaced the links
        assert os.readlink(update_dir / name) == str(target)
    journal = [json.loads(line) for line in dev.journal.read_text().splitlines()]
    assert journal[-1]["step"] == "commit" and journal[-1]["run"] == "attack1"
    owner = dev.journal.stat()
    assert owner.st_uid == 0 and not owner.st_mode & 0o022


@needs_root
@pytest.mark.parametrize("plant", ["link-to-dev-zero", "fifo", "oversized", "linked-directory"])
def test_a_hostile_request_file_is_refused_unread(
    device: tuple[Device, Path, Path], base: Path, plant: str
):
    dev, site, private = device
    update_dir = dev.data / "update"
    elsewhere = dev.config.parent / "request.json"  # a root-owned file the link aims at
    elsewhere.write_text(json.dumps({"id": "root1", "force": True}))
    as_service(
        """
        import os, shutil, sys
        plant, update, elsewhere = sys.argv[1:4]
        request = os.path.join(update, "request.json")
        if plant == "link-to-dev-zero":
            os.symlink("/dev/zero", request)
        elif plant == "fifo":
            os.mkfifo(request)
        elif plant == "oversized":
            with open(request, "wb") as fh:
                fh.write(b'{"id": "big1", "force": false, "pad": "' + b"x" * 10_000_000 + b'"}')
        else:
            shutil.rmtree(update)
            os.symlink(os.path.dirname(elsewhere), update)
        """,
        plant,
        str(update_dir),
        str(elsewhere),
    )
    publish(site, "0.2.0", private, base)
    done = root_update(dev, cwd=Path("/"))
    assert done.returncode == 1
    expected = {
        "link-to-dev-zero": "is a symbolic link",
        "fifo": "is not a regular file",
        "oversized": "is larger than 4096 bytes",
        "linked-directory": "is not a plain directory",
    }[plant]
    assert expected in done.stderr
    assert dev.current() == "releases/0.1.0"
    assert json.loads(elsewhere.read_text())["id"] == "root1"  # neither used nor removed
    if plant != "linked-directory":
        assert not os.path.lexists(update_dir / "request.json")  # cleared for the next one


def test_pip_installs_exactly_the_bundle_whatever_the_machine_says(tmp_path: Path):
    """pip.conf files (global, user, PIP_CONFIG_FILE) and PIP_* variables all offer
    ``somedep 9.9``; the release gets the bundle's 1.0 and nothing else."""
    site, evil = tmp_path / "site", tmp_path / "evil"
    site.mkdir()
    private, public = make_keys(tmp_path)
    make_wheel(evil, "somedep", "9.9", {"somedep.py": "VERSION = '9.9'\n"})
    make_wheel(evil, "extra", "1.0", {"extra.py": ""})
    conf = f"[global]\nfind-links = {evil}\nno-index = false\n[install]\nno-deps = false\n"
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text(conf)
    (tmp_path / "home" / ".config" / "pip").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "pip" / "pip.conf").write_text(conf)
    (tmp_path / "pip.conf").write_text(conf)
    (tmp_path / "constraints.txt").write_text("somedep==9.9\n")
    (tmp_path / "extra.txt").write_text("extra\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "PIP_CONFIG_FILE": str(tmp_path / "pip.conf"),
        "PIP_FIND_LINKS": str(evil),
        "PIP_CONSTRAINT": str(tmp_path / "constraints.txt"),
        "PIP_REQUIREMENT": str(tmp_path / "extra.txt"),
        "PIP_NO_INDEX": "false",
        "PIP_REQUIRE_HASHES": "false",
        "PYTHONPATH": str(REPO),
    }
    # the control: a pip that listens to the machine takes 9.9, and ``extra`` besides
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-d",
            str(tmp_path / "dl"),
            "--no-index",
            "somedep>=1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert got.returncode == 0, got.stderr
    fetched = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert fetched == ["extra-1.0-py3-none-any.whl", "somedep-9.9-py3-none-any.whl"]

    bundle_dep = make_wheel(tmp_path / "dep", "somedep", "1.0", {"somedep.py": "VERSION = '1.0'\n"})
    publish(
        site,
        "0.2.0",
        private,
        tmp_path,
        requires=["somedep>=1"],
        wheels={bundle_dep.name: bundle_dep.read_bytes()},
    )
    server = ReleaseServer(site)
    dev = Device(tmp_path / "device", server.url, public)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "firmware_app.ota", "--config", str(dev.config), "update"],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        venv = dev.root / "releases" / "0.2.0" / "venv"
        listed = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-I",
                "-c",
                "import importlib.metadata as m; print(sorted((d.metadata['Name'], d.version) "
                "for d in m.distributions()))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert listed.strip() == "[('somedep', '1.0'), ('ttbt5', '0.2.0')]"
    finally:
        dev.stop()
        server.close()
