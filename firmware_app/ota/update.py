"""The update itself: check → download → verify → install → switch → restart → health gate
→ commit, or roll back. Runs as root from ``ttbt5-update.service`` (or ``scripts/
ota-update.sh``); the voice service itself only asks for an update (see ``remote.py``).

Crash safety comes from ordering, not from cleanup handlers (a power cut runs none):
``current`` only ever points at a release whose ``release.json`` was written last, after
its venv was complete; the link is replaced atomically (symlink + rename + fsync of the
directory); ``pending.json`` is written before the switch and removed after commit or
rollback, so the next run finishes a gate that a power cut interrupted. Every step's
outcome is a log line, a line of the update journal (``<root>/state/journal.jsonl``, which
only root writes) and a call of the ``report`` callback.

The pieces live beside it: ``layout.py`` (the root on disk, untrusted reads), ``download.py``
(signed pointer and bundle), ``install.py`` (the isolated venv), ``rollback.py`` (gates,
commit, rollback and pruning).
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx

from firmware_app.config.settings import UpdateSettings
from firmware_app.ota.bundle import BundleError, verify_bundle
from firmware_app.ota.download import Fetcher, Progress, one_line
from firmware_app.ota.install import Installer
from firmware_app.ota.layout import APP_NAME, MB, Layout
from firmware_app.ota.manifest import Manifest, UpdateError, load_public_key, parse_version
from firmware_app.ota.pointer import Pointer, PointerExpired
from firmware_app.ota.rollback import Gate, StepFailed, StepResult

__all__ = ["APP_NAME", "MB", "Progress", "StepFailed", "StepResult", "Updater"]


class Reporting(Protocol):
    message: str
    """What the step reports when it succeeds."""


class Updater(Gate):
    """One update root, driven by the CLI, the update service or tests.

    ``record`` (root only) keeps the journal and the updater's state under
    ``<root>/state``; without it (the voice service's own checks) nothing is written.
    ``before_step(name)`` runs at the start of each step, and at two points inside steps
    (``install.venv`` after unpacking, ``switch.current`` between the two links); it exists
    for progress displays and for fault-injection tests that kill the process there."""

    def __init__(
        self,
        settings: UpdateSettings,
        *,
        record: bool = False,
        report: Callable[[StepResult], None] | None = None,
        progress: Progress | None = None,
        before_step: Callable[[str], None] | None = None,
        python: str = sys.executable,
        run_id: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        layout = Layout(settings.root)
        super().__init__(settings, layout, record, report, before_step)
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.fetcher = Fetcher(settings, layout, client, progress)
        self.installer = Installer(layout, python, self.fetcher.ensure_space)

    # ---------------------------------------------------------------- public

    def installed_version(self) -> str | None:
        return self.layout.version_of(self.layout.current)

    def check(self, version: str | None = None) -> Pointer:
        """What the server offers; reported as step ``check`` with the latest version."""
        self._step("check")
        try:
            pointer, self._bundle_url = self.fetcher.pointer(version)
            if version is not None and parse_version(pointer.version) != parse_version(version):
                raise UpdateError(f"the pointer describes {pointer.version}, not {version}")
            if self.record:
                self.fetcher.remember_serial(pointer)
        except (UpdateError, OSError) as exc:
            self._report("check", False, one_line(exc), None, active=False)
            stale = exc.expires if isinstance(exc, PointerExpired) else None
            raise StepFailed(str(exc), stale) from None
        installed = self.installed_version()
        newer = installed is None or parse_version(pointer.version) > parse_version(installed)
        state = "available" if newer else "is the latest"
        message = f"{pointer.version} {state} (installed {installed or 'nothing'})"
        self._report("check", True, message, pointer.version, active=True)
        return pointer

    def update(self, *, force: bool = False, version: str | None = None) -> bool:
        """The whole pipeline; True when the wanted release is installed and healthy."""
        try:
            with self._locked():
                self.start_journal()
                finished = self.finish_pending()
                if finished is not None:
                    return finished  # that run's outcome; the next run may start another
                self.remove_incomplete()
                return self._update(force=force, version=version)
        except StepFailed:
            return False

    def rollback(self) -> bool:
        """Switch back to ``previous`` by hand (the current release stays as ``previous``)."""
        try:
            with self._locked():
                self.start_journal()
                self.finish_pending()
                return self.manual_rollback()
        except StepFailed:
            return False

    def status(self) -> dict[str, Any]:
        return {
            "installed": self.installed_version(),
            "previous": self.layout.version_of(self.layout.previous),
            "pending": self.layout.pending.exists(),
            "releases": sorted(p.name for p in self.layout.kept()),
            "pointer_serial": self.fetcher.seen_serial(),
            "root": str(self.layout.root),
        }

    # ------------------------------------------------------------- pipeline

    _bundle_url = ""

    def _update(self, *, force: bool, version: str | None) -> bool:
        pointer = self.check(version)
        installed = self.installed_version()
        self._decide(pointer.version, None, installed, force)
        same = installed is not None and parse_version(pointer.version) == parse_version(installed)
        if same and not force:
            self._report(
                "check", True, f"{installed} is already installed", installed, active=False
            )
            return True
        if pointer.version in self.failed_versions() and not force:
            message = (
                f"{pointer.version} failed its health check here before; "
                "use --force to try it again"
            )
            self._report("check", False, message, pointer.version, active=False)
            return False
        url = self._bundle_url
        bundle = self._run(
            "download", pointer.version, self.fetcher, lambda: self.fetcher.bundle(pointer, url)
        )
        manifest = self._run("verify", pointer.version, self, lambda: self._verify(bundle, pointer))
        self._decide(manifest.version, manifest.min_from_version, installed, force, "verify")
        release = self._run(
            "install",
            manifest.version,
            self.installer,
            lambda: self.installer.install(bundle, manifest, self._hook),
        )
        self._run("switch", manifest.version, self, lambda: self.switch(release, manifest.version))
        healthy, why = self.restart_and_gate(manifest.version)
        if healthy:
            self.commit(manifest.version)
            return True
        self.roll_back_pending(why)
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

    def _run(self, step: str, version: str, source: Reporting, action: Callable[[], Any]) -> Any:
        """One step; ``source.message`` is what it reports on success."""
        self._step(step)
        source.message = ""
        try:
            result = action()
        except (UpdateError, OSError, httpx.HTTPError, subprocess.SubprocessError) as exc:
            message = one_line(exc)
            self._report(step, False, message, version, active=False)
            raise StepFailed(message) from None
        self._report(step, True, source.message, version, active=True)
        return result

    def _verify(self, bundle: Path, pointer: Pointer) -> Manifest:
        if self.settings.public_key is None:
            raise UpdateError("no public key configured (update.public_key)")
        key = load_public_key(self.settings.public_key)
        try:
            manifest = verify_bundle(bundle, key)
            if manifest.name != APP_NAME:
                raise BundleError(f"bundle is for {manifest.name!r}, not {APP_NAME}")
            if parse_version(manifest.version) != parse_version(pointer.version):
                raise BundleError(
                    f"bundle holds {manifest.version}, the server announced {pointer.version}"
                )
        except UpdateError:
            bundle.unlink(missing_ok=True)  # never retry a bad bundle: fetch it afresh
            raise
        self.message = f"signature and {len(manifest.files)} file hashes verified"
        return manifest

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.layout.make_state()
        with self.layout.lock.open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                message = "another update is already running"
                self._report("check", False, message, None, active=False)
                raise StepFailed(message) from None
            yield
