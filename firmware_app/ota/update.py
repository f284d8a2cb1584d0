"""The update itself: check → download → verify → install → switch → restart → health gate
→ commit, or roll back. Runs as root from ``ttbt5-update.service`` (or ``scripts/
ota-update.sh``); the voice service itself only asks for an update (see ``remote.py``).

Crash safety comes from ordering, not from cleanup handlers (a power cut runs none):
``current`` only ever points at a release whose ``release.json`` was written last, after
its venv was complete; the link is replaced atomically (symlink + rename + fsync of the
directory); ``pending.json`` is written before the switch and removed after commit or
rollback, so the next run finishes a gate that a power cut interrupted. Every step's
outcome is a log line, a line of the update journal and a call of the ``report`` callback.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from loguru import logger

from firmware_app.config import UpdateSettings
from firmware_app.ota.bundle import BundleError, unpack_bundle, verify_bundle
from firmware_app.ota.health import wait_healthy
from firmware_app.ota.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    UpdateError,
    load_public_key,
    parse_version,
)

MB = 1 << 20
POINTER_MAX_BYTES = 64 * 1024
DOWNLOAD_ATTEMPTS = 3
JOURNAL_KEEP_LINES = 500
APP_NAME = "ttbt5"


@dataclass(frozen=True)
class StepResult:
    """One step's outcome; ``fields()`` is what an ``update`` event/notice carries."""

    step: str
    ok: bool
    message: str
    version: str | None = None
    active: bool = True
    """True while the update is still going; the last result of a run has it False."""

    def fields(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "ok": self.ok,
            "message": self.message,
            "version": self.version,
            "active": self.active,
        }


@dataclass(frozen=True)
class Latest:
    """What the release server offers (``latest.json`` or ``<version>.json``). Unsigned:
    only a pointer; the signed manifest inside the bundle is what is trusted."""

    version: str
    url: str
    size: int | None
    sha256: str | None


Report = Callable[[StepResult], None]
Progress = Callable[[int, "int | None"], None]


class StepFailed(UpdateError):
    """Internal: a step failed and has been reported; the run ends."""


class Layout:
    """The update root on disk and the few operations that must be atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.current = root / "current"
        self.previous = root / "previous"
        self.pending = root / "pending.json"
        self.downloads = root / "downloads"

    def release(self, version: str) -> Path:
        return self.releases / version

    @staticmethod
    def is_complete(release: Path | None) -> bool:
        return release is not None and (release / "release.json").is_file()

    def target(self, link: Path) -> Path | None:
        try:
            return self.root / os.readlink(link)
        except OSError:
            return None

    def version_of(self, link: Path) -> str | None:
        release = self.target(link)
        try:
            data = json.loads((release / "release.json").read_text()) if release else None
        except (OSError, ValueError):
            return None
        version = data.get("version") if isinstance(data, dict) else None
        return version if isinstance(version, str) else None

    def point(self, link: Path, release: Path) -> None:
        """Atomically make ``link`` point at ``release`` (relative, so a staged root can be
        moved), then fsync the directory so the rename survives a power cut."""
        tmp = link.with_name(f".{link.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(release, self.root), tmp)
        os.replace(tmp, link)
        fsync_dir(self.root)

    def unlink(self, link: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        fsync_dir(self.root)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Updater:
    """One update root, driven by the CLI, the update service or tests.

    ``before_step(name)`` runs at the start of each step, and at two points inside steps
    (``install.venv`` after unpacking, ``switch.current`` between the two links); it exists
    for progress displays and for fault-injection tests that kill the process there."""

    def __init__(
        self,
        settings: UpdateSettings,
        *,
        journal: Path | None = None,
        report: Report | None = None,
        progress: Progress | None = None,
        before_step: Callable[[str], None] | None = None,
        python: str = sys.executable,
        run_id: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.layout = Layout(settings.root)
        self.journal = journal
        self._report_cb = report
        self._progress = progress
        self._before_step = before_step
        self._python = python
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._client = client

    # ---------------------------------------------------------------- public

    def installed_version(self) -> str | None:
        return self.layout.version_of(self.layout.current)

    def check(self, version: str | None = None) -> Latest:
        """What the server offers; reported as step ``check`` with the latest version."""
        self._step("check")
        try:
            latest = self._fetch_pointer(version)
        except UpdateError as exc:
            self._report("check", False, str(exc), None, active=False)
            raise StepFailed(str(exc)) from None
        installed = self.installed_version()
        newer = installed is None or parse_version(latest.version) > parse_version(installed)
        state = "available" if newer else "is the latest"
        self._report(
            "check",
            True,
            f"{latest.version} {state} (installed {installed or 'nothing'})",
            latest.version,
            active=True,
        )
        return latest

    def update(self, *, force: bool = False, version: str | None = None) -> bool:
        """The whole pipeline; True when the wanted release is installed and healthy."""
        try:
            with self._locked():
                self._start_journal()
                finished = self._finish_pending()
                if finished is not None:
                    return finished  # that run's outcome; the next run may start another
                self._remove_incomplete()
                return self._update(force=force, version=version)
        except StepFailed:
            return False

    def rollback(self) -> bool:
        """Switch back to ``previous`` by hand (the current release stays as ``previous``)."""
        try:
            with self._locked():
                self._start_journal()
                self._finish_pending()
                current = self.layout.target(self.layout.current)
                back = self.layout.target(self.layout.previous)
                version = self.layout.version_of(self.layout.previous)
                if not self.layout.is_complete(back) or back is None or version is None:
                    self._report(
                        "rollback",
                        False,
                        "there is no previous release to go back to",
                        None,
                        active=False,
                    )
                    return False
                self._step("rollback")
                if current is not None and self.layout.is_complete(current):
                    self.layout.point(self.layout.previous, current)
                self.layout.point(self.layout.current, back)
                healthy, why = self._restart_and_gate(version)
                self._report(
                    "rollback", healthy, f"rolled back to {version}: {why}", version, active=False
                )
                return healthy
        except StepFailed:
            return False

    def status(self) -> dict[str, Any]:
        releases = (
            sorted(p.name for p in self.layout.releases.glob("*") if self.layout.is_complete(p))
            if self.layout.releases.is_dir()
            else []
        )
        return {
            "installed": self.installed_version(),
            "previous": self.layout.version_of(self.layout.previous),
            "pending": self.layout.pending.exists(),
            "releases": releases,
            "root": str(self.layout.root),
        }

    # ------------------------------------------------------------- pipeline

    def _update(self, *, force: bool, version: str | None) -> bool:
        latest = self.check(version)
        installed = self.installed_version()
        self._decide(latest.version, None, installed, force)
        same = installed is not None and parse_version(latest.version) == parse_version(installed)
        if same and not force:
            self._report(
                "check", True, f"{installed} is already installed", installed, active=False
            )
            return True
        if latest.version in self._failed_versions() and not force:
            message = (
                f"{latest.version} failed its health check here before; use --force to try it again"
            )
            self._report("check", False, message, latest.version, active=False)
            return False
        bundle = self._run("download", latest.version, lambda: self._download(latest))
        manifest = self._run("verify", latest.version, lambda: self._verify(bundle, latest))
        self._decide(manifest.version, manifest.min_from_version, installed, force, "verify")
        release = self._run("install", manifest.version, lambda: self._install(bundle, manifest))
        self._run("switch", manifest.version, lambda: self._switch(release, manifest.version))
        healthy, why = self._restart_and_gate(manifest.version)
        if healthy:
            self._commit(manifest.version)
            return True
        self._roll_back_pending(why)
        return False

    def _decide(
        self,
        version: str,
        min_from: str | None,
        installed: str | None,
        force: bool,
        step: str = "check",
    ) -> None:
        """Refuse downgrades and unsupported jumps unless forced."""
        if installed is None or force:
            return
        new, have = parse_version(version), parse_version(installed)
        problem = None
        if new < have:
            problem = f"{version} is older than the installed {installed}; use --force to downgrade"
        elif min_from and have < parse_version(min_from):
            problem = f"{version} can only update {min_from} or later (installed {installed})"
        if problem:
            self._report(step, False, problem, version, active=False)
            raise StepFailed(problem)

    def _run(self, step: str, version: str, action: Callable[[], Any]) -> Any:
        self._step(step)
        try:
            result = action()
        except (UpdateError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
            message = _one_line(exc)
            self._report(step, False, message, version, active=False)
            raise StepFailed(message) from None
        self._report(step, True, self._last_message, version, active=True)
        return result

    _last_message = ""

    # ---------------------------------------------------------------- check

    def _fetch_pointer(self, version: str | None) -> Latest:
        if not self.settings.url:
            raise UpdateError("no release server configured (update.url)")
        base = self.settings.url.rstrip("/") + "/"
        name = "latest.json" if version is None else f"{APP_NAME}-{parse_version(version)}.json"
        url = urljoin(base, name)
        try:
            with self._http().stream("GET", url) as response:
                if response.status_code != 200:
                    raise UpdateError(
                        f"release server answered HTTP {response.status_code} for {name}"
                    )
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > POINTER_MAX_BYTES:
                        raise UpdateError(f"{name} is larger than {POINTER_MAX_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise UpdateError(f"cannot reach the release server: {_one_line(exc)}") from None
        try:
            data = json.loads(body)
            latest = Latest(
                version=str(parse_version(data["version"])),
                url=urljoin(url, str(data["bundle"])),
                size=None if data.get("size") is None else int(data["size"]),
                sha256=None if data.get("sha256") is None else str(data["sha256"]).lower(),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UpdateError(f"{name} is malformed: {_one_line(exc)}") from None
        if not latest.url.startswith(("http://", "https://")):
            raise UpdateError(f"{name} points at an unsupported URL")
        if version is not None and latest.version != str(parse_version(version)):
            raise UpdateError(f"{name} describes {latest.version}, not {version}")
        return latest

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.settings.http_timeout_s), follow_redirects=True
            )
        return self._client

    # ------------------------------------------------------------- download

    def _download(self, latest: Latest) -> Path:
        cap = self.settings.max_bundle_mb * MB
        if latest.size is not None and latest.size > cap:
            raise UpdateError(
                f"bundle is {latest.size / MB:.1f} MB, more than update.max_bundle_mb "
                f"({self.settings.max_bundle_mb})"
            )
        if latest.size is not None:
            self._ensure_space(latest.size)
        self.layout.downloads.mkdir(parents=True, exist_ok=True)
        final = self.layout.downloads / f"{APP_NAME}-{latest.version}.tar"
        if final.exists():
            self._last_message = f"reusing {final.name} downloaded earlier"
            return final
        part = final.with_name(final.name + ".part")
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                self._fetch_into(part, latest, cap)
                break
            except httpx.TransportError as exc:
                have = part.stat().st_size if part.exists() else 0
                logger.warning(
                    "download interrupted at {} bytes (attempt {}/{}): {}",
                    have,
                    attempt,
                    DOWNLOAD_ATTEMPTS,
                    _one_line(exc),
                )
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise UpdateError(
                        f"download interrupted at {have} bytes after {attempt} attempts; "
                        "the next run resumes it"
                    ) from None
                time.sleep(0.5 * attempt)
        size = part.stat().st_size
        if latest.size is not None and size != latest.size:
            part.unlink()
            raise UpdateError(f"downloaded {size} bytes, latest.json promised {latest.size}")
        if latest.sha256 is not None:
            from firmware_app.ota.bundle import file_sha256

            if file_sha256(part) != latest.sha256:
                part.unlink()
                raise UpdateError("the download does not match the SHA-256 in latest.json")
        os.replace(part, final)
        self._last_message = f"{size / MB:.1f} MB from {latest.url}"
        return final

    def _fetch_into(self, part: Path, latest: Latest, cap: int) -> None:
        offset = part.stat().st_size if part.exists() else 0
        if latest.size is not None and offset >= latest.size:
            part.unlink()  # a stale or oversized partial file: start again
            offset = 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self._http().stream("GET", latest.url, headers=headers) as response:
            if response.status_code == 206 and _range_start(response) == offset:
                mode = "ab"
            elif response.status_code == 200:
                offset, mode = 0, "wb"
            elif response.status_code == 416:
                part.unlink(missing_ok=True)
                raise httpx.TransportError("server refused the resume range; starting again")
            else:
                raise UpdateError(
                    f"release server answered HTTP {response.status_code} for the bundle"
                )
            length = response.headers.get("content-length")
            total = offset + int(length) if length and length.isdigit() else latest.size
            if total is not None and total > cap:
                raise UpdateError(
                    f"bundle is {total / MB:.1f} MB, more than update.max_bundle_mb "
                    f"({self.settings.max_bundle_mb})"
                )
            if total is not None and latest.size is None:
                self._ensure_space(total)
            done = offset
            shown = -1
            with part.open(mode) as fh:
                for chunk in response.iter_bytes():  # as received: a cut keeps what came
                    done += len(chunk)
                    if done > cap:
                        raise UpdateError(
                            f"bundle exceeds update.max_bundle_mb ({self.settings.max_bundle_mb})"
                        )
                    fh.write(chunk)
                    if self._progress:
                        self._progress(done, total)
                    if total and (pct := done * 100 // total // 25 * 25) > shown:
                        shown = pct
                        logger.info("download {}% ({:.1f}/{:.1f} MB)", pct, done / MB, total / MB)
                fh.flush()
                os.fsync(fh.fileno())

    def _ensure_space(self, bundle_bytes: int) -> None:
        """Room for the bundle, its unpacked copy and the installed venv, plus the reserve."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.layout.root).free
        need = bundle_bytes * 4 + self.settings.reserve_mb * MB
        if free < need:
            raise UpdateError(
                f"not enough disk space: {free / MB:.0f} MB free, {need / MB:.0f} MB needed "
                f"(update.reserve_mb={self.settings.reserve_mb})"
            )

    # --------------------------------------------------------------- verify

    def _verify(self, bundle: Path, latest: Latest) -> Manifest:
        if self.settings.public_key is None:
            raise UpdateError("no public key configured (update.public_key)")
        key = load_public_key(self.settings.public_key)
        try:
            manifest = verify_bundle(bundle, key)
            if manifest.name != APP_NAME:
                raise BundleError(f"bundle is for {manifest.name!r}, not {APP_NAME}")
            if parse_version(manifest.version) != parse_version(latest.version):
                raise BundleError(
                    f"bundle holds {manifest.version}, the server announced {latest.version}"
                )
        except UpdateError:
            bundle.unlink(missing_ok=True)  # never retry a bad bundle: fetch it afresh
            raise
        self._last_message = f"signature and {len(manifest.files)} file hashes verified"
        return manifest

    # -------------------------------------------------------------- install

    def _install(self, bundle: Path, manifest: Manifest) -> Path:
        release = self.layout.release(manifest.version)
        if release == self.layout.target(self.layout.current):
            raise UpdateError(f"{manifest.version} is the running release; nothing to reinstall")
        if self.layout.is_complete(release):
            self._last_message = f"{manifest.version} was already installed"
            return release
        if release.exists():
            shutil.rmtree(release)
        staging = self.layout.releases / f".incoming-{manifest.version}"
        if staging.exists():
            shutil.rmtree(staging)
        self.layout.releases.mkdir(parents=True, exist_ok=True)
        unpack_bundle(bundle, staging, manifest)
        wheels = staging / "wheels"
        if not any(wheels.glob(f"{APP_NAME}-*.whl")):
            raise UpdateError("bundle has no app wheel under wheels/")
        unpacked = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        self._ensure_space(unpacked // 2)
        self._hook("install.venv")
        release.mkdir()
        venv = release / "venv"
        self._make_venv(venv, wheels, manifest.version)
        if not (venv / "bin" / APP_NAME).exists():
            raise UpdateError(f"the app wheel did not install a {APP_NAME} command")
        for name in (MANIFEST_NAME, SIGNATURE_NAME):
            shutil.copy2(staging / name, release / name)
        digest = hashlib.sha256((release / MANIFEST_NAME).read_bytes()).hexdigest()
        info = {"version": manifest.version, "installed": time.time(), "manifest_sha256": digest}
        write_atomic(release / "release.json", json.dumps(info, indent=2).encode())
        shutil.rmtree(staging)
        self._last_message = f"{manifest.version} installed in {release}"
        return release

    def _make_venv(self, venv: Path, wheels: Path, version: str) -> None:
        """A venv from the bundle's wheelhouse only (``--no-index``): an update never
        reaches PyPI. The bundle's own pip wheel, when present, is installed too, so the
        new release can run the next update by itself."""
        wants = [f"{APP_NAME}=={version}"]
        if any(wheels.glob("pip-*.whl")):
            wants.append("pip")
        has_pip = importlib.util.find_spec("pip") is not None
        venv_cmd = [self._python, "-m", "venv", str(venv)]
        self._call(venv_cmd if not has_pip else [*venv_cmd[:3], "--without-pip", str(venv)])
        python = str(venv / "bin" / "python")
        pip = [self._python, "-m", "pip", "--python", python] if has_pip else [python, "-m", "pip"]
        self._call(
            [
                *pip,
                "install",
                "--no-index",
                "--find-links",
                str(wheels),
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--no-input",
                *wants,
            ]
        )

    def _call(self, cmd: list[str]) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            what = " ".join([Path(cmd[0]).name, *cmd[1:3]])
            raise UpdateError(f"{what} failed (exit {done.returncode}): {tail[0][:200]}")

    # ------------------------------------------------------ switch and gate

    def _switch(self, release: Path, version: str) -> None:
        old = self.layout.target(self.layout.current)
        old_previous = self.layout.target(self.layout.previous)
        pending = {
            "version": version,
            "previous": os.path.relpath(old, self.layout.root) if old else None,
            "previous_link": (
                os.path.relpath(old_previous, self.layout.root) if old_previous else None
            ),
            "run": self.run_id,
            "switched": time.time(),
        }
        write_atomic(self.layout.pending, json.dumps(pending).encode())
        if old is not None and self.layout.is_complete(old):
            self.layout.point(self.layout.previous, old)
        self._hook("switch.current")
        self.layout.point(self.layout.current, release)
        self._last_message = f"current -> releases/{version}" + (
            f", previous -> {old.name}" if old else ""
        )

    def _restart_and_gate(self, version: str) -> tuple[bool, str]:
        self._step("restart")
        since = time.time()
        try:
            self._call(list(self.settings.restart_command))
        except (UpdateError, OSError, subprocess.SubprocessError) as exc:
            message = f"restart failed: {_one_line(exc)}"
            self._report("restart", False, message, version)
            return False, message
        self._report("restart", True, " ".join(self.settings.restart_command), version)
        self._step("health")
        s = self.settings
        healthy, why = wait_healthy(
            s.health_file, version, since, s.health_timeout_s, s.health_audio_s, s.health_stale_s
        )
        self._report("health", healthy, why, version)
        return healthy, why

    def _finish_pending(self) -> bool | None:
        """After a crash or power cut between switch and commit: gate the current release
        again and commit or roll back, exactly as the interrupted run would have."""
        pending = self._read_pending()
        if pending is None:
            return None
        version = pending.get("version")
        if not isinstance(version, str) or self.installed_version() != version:
            # the switch itself never happened: undo a half-moved ``previous``, nothing to gate
            older = self._inside_root(pending.get("previous_link"))
            if older is not None and self.layout.is_complete(older):
                self.layout.point(self.layout.previous, older)
            self.layout.unlink(self.layout.pending)
            return None
        logger.info("finishing the interrupted update to {}", version)
        healthy, why = self._restart_and_gate(version)
        if healthy:
            self._commit(version)
            return True
        self._roll_back_pending(why)
        return False

    def _read_pending(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.layout.pending.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            logger.warning("pending.json is unreadable; ignoring it")
            self.layout.unlink(self.layout.pending)
            return None
        return data if isinstance(data, dict) else None

    def _roll_back_pending(self, why: str) -> None:
        pending = self._read_pending() or {}
        failed = pending.get("version")
        self._step("rollback")
        self._remember_failed(failed)
        back = self._inside_root(pending.get("previous"))
        if back is None or not self.layout.is_complete(back):
            self.layout.unlink(self.layout.pending)
            message = f"{failed} is unhealthy ({why}) and there is no previous release"
            self._report("rollback", False, message, failed, active=False)
            raise StepFailed(message)
        self.layout.point(self.layout.current, back)
        older = self._inside_root(pending.get("previous_link"))
        if older is not None and self.layout.is_complete(older) and older != back:
            self.layout.point(self.layout.previous, older)
        else:
            self.layout.unlink(self.layout.previous)
        self.layout.unlink(self.layout.pending)
        version = self.layout.version_of(self.layout.current) or back.name
        healthy, after = self._restart_and_gate(version)
        self._prune()
        state = "and it is healthy" if healthy else f"but it is not healthy either ({after})"
        self._report(
            "rollback",
            True,
            f"{failed} failed ({why}); rolled back to {version} {state}",
            version,
            active=False,
        )

    def _commit(self, version: str) -> None:
        self._step("commit")
        self.layout.unlink(self.layout.pending)
        if version in self._failed_versions():
            kept = [v for v in self._failed_versions() if v != version]
            write_atomic(self.layout.root / "failed.json", json.dumps(kept).encode())
        self._prune()
        self._report("commit", True, f"{version} is installed and healthy", version, active=False)

    def _failed_versions(self) -> list[str]:
        try:
            data = json.loads((self.layout.root / "failed.json").read_text())
        except (OSError, ValueError):
            return []
        return [v for v in data if isinstance(v, str)] if isinstance(data, list) else []

    def _remember_failed(self, version: object) -> None:
        """A release that failed its gate is not retried by the daily timer (a boot loop
        of install, fail, roll back); ``--force`` tries it again."""
        if isinstance(version, str):
            failed = [*[v for v in self._failed_versions() if v != version][-19:], version]
            write_atomic(self.layout.root / "failed.json", json.dumps(failed).encode())

    def _inside_root(self, relative: object) -> Path | None:
        if not isinstance(relative, str) or not relative.startswith("releases/"):
            return None
        path = self.layout.root / relative
        return path if path.parent == self.layout.releases else None

    # ----------------------------------------------------------- cleaning up

    def _remove_incomplete(self) -> None:
        """Half-installed releases and staging directories from an interrupted run."""
        if not self.layout.releases.is_dir():
            return
        keep = {self.layout.target(self.layout.current), self.layout.target(self.layout.previous)}
        for path in self.layout.releases.iterdir():
            if path not in keep and not self.layout.is_complete(path):
                logger.info("removing incomplete release directory {}", path.name)
                shutil.rmtree(path, ignore_errors=True)

    def _prune(self) -> None:
        """Keep ``current``, ``previous`` and the release this process runs from."""
        keep = {self.layout.target(self.layout.current), self.layout.target(self.layout.previous)}
        running = Path(sys.prefix).resolve()
        for path in self.layout.releases.iterdir() if self.layout.releases.is_dir() else ():
            if path in keep or running.is_relative_to(path.resolve()):
                continue
            logger.info("removing old release {}", path.name)
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(self.layout.downloads, ignore_errors=True)

    # ------------------------------------------------------------ reporting

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with (self.layout.root / ".update.lock").open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                message = "another update is already running"
                self._report("check", False, message, None, active=False)
                raise StepFailed(message) from None
            yield

    def _step(self, name: str) -> None:
        self._last_message = ""
        self._hook(name)

    def _hook(self, name: str) -> None:
        if self._before_step is not None:
            self._before_step(name)

    def _start_journal(self) -> None:
        if self.journal is None:
            return
        try:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            lines = self.journal.read_text().splitlines() if self.journal.exists() else []
            if len(lines) > JOURNAL_KEEP_LINES:
                write_atomic(self.journal, ("\n".join(lines[-JOURNAL_KEEP_LINES:]) + "\n").encode())
        except OSError as exc:
            logger.warning("update journal {} unusable: {}", self.journal, exc)

    def _report(
        self, step: str, ok: bool, message: str, version: str | None, active: bool = True
    ) -> None:
        result = StepResult(step, ok, message, version, active)
        (logger.info if ok else logger.warning)(
            "update {} {}: {}", step, "ok" if ok else "FAILED", message
        )
        if self.journal is not None:
            line = json.dumps({"run": self.run_id, "time": time.time(), **result.fields()})
            try:
                with self.journal.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError as exc:
                logger.warning("cannot append to update journal {}: {}", self.journal, exc)
        if self._report_cb is not None:
            try:
                self._report_cb(result)
            except Exception as exc:  # a broken observer must not break the update
                logger.opt(exception=exc).error("update report callback failed: {}", exc)


def _range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("content-range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
