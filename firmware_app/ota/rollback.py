"""After the install: switch, restart, health gate, then commit or roll back; the journal
every step is written to; which releases are kept.

A restart the updater makes first clears the service's start limit (``systemctl
reset-failed``): two failed updates in ten minutes must not leave the third attempt, or
its rollback, refused by systemd with ``start-limit-hit``. A rollback whose release does not
come up healthy either is reported as failed and the next kept release is tried, newest
first; ``KEEP_RELEASES`` releases are kept for that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.config.settings import UpdateSettings
from firmware_app.ota.download import one_line
from firmware_app.ota.health import wait_healthy
from firmware_app.ota.layout import Layout, write_atomic
from firmware_app.ota.manifest import UpdateError

KEEP_RELEASES = 3
"""``current``, ``previous`` and one older release to fall back on."""
JOURNAL_KEEP_LINES = 500


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


class StepFailed(UpdateError):
    """Internal: a step failed and has been reported; the run ends. ``stale_since`` is
    the expiry of a correctly signed but expired pointer (a stale or frozen server)."""

    def __init__(self, message: str, stale_since: float | None = None) -> None:
        super().__init__(message)
        self.stale_since = stale_since


def reset_command(restart: list[str]) -> list[str] | None:
    """``systemctl reset-failed UNIT…`` for a ``systemctl restart UNIT…`` command."""
    if len(restart) >= 3 and Path(restart[0]).name == "systemctl" and "restart" in restart:
        units = restart[restart.index("restart") + 1 :]
        options = [arg for arg in restart[1 : restart.index("restart")] if arg.startswith("-")]
        return [restart[0], *options, "reset-failed", *units]
    return None


class Gate:
    """The second half of the pipeline, shared by updates, resumed runs and rollbacks."""

    run_id: str

    def __init__(
        self,
        settings: UpdateSettings,
        layout: Layout,
        record: bool,
        report: Callable[[StepResult], None] | None,
        before_step: Callable[[str], None] | None,
    ) -> None:
        self.settings = settings
        self.layout = layout
        self.record = record
        self._report_cb = report
        self._before_step = before_step

    # ------------------------------------------------------ switch and gate

    def switch(self, release: Path, version: str) -> None:
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
        self.message = f"current -> releases/{version}" + (
            f", previous -> {old.name}" if old else ""
        )

    message = ""

    def restart(self) -> None:
        """The configured restart, after clearing systemd's start limit for the unit."""
        reset = reset_command(list(self.settings.restart_command))
        if reset is not None:
            done = subprocess.run(reset, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                logger.warning("{} failed: {}", " ".join(reset), done.stderr.strip()[:200])
        done = subprocess.run(
            list(self.settings.restart_command),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UpdateError(f"exit {done.returncode}: {tail[0][:200]}")

    def restart_and_gate(self, version: str) -> tuple[bool, str]:
        self._step("restart")
        since = time.time()
        try:
            self.restart()
        except (UpdateError, OSError, subprocess.SubprocessError) as exc:
            message = f"restart failed: {one_line(exc)}"
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

    def finish_pending(self) -> bool | None:
        """After a crash or power cut between switch and commit: gate the current release
        again and commit or roll back, exactly as the interrupted run would have."""
        pending = self.read_pending()
        if pending is None:
            return None
        version = pending.get("version")
        if not isinstance(version, str) or self.layout.version_of(self.layout.current) != version:
            # the switch itself never happened: undo a half-moved ``previous``, nothing to gate
            older = self.inside_root(pending.get("previous_link"))
            if older is not None and self.layout.is_complete(older):
                self.layout.point(self.layout.previous, older)
            self.layout.unlink(self.layout.pending)
            return None
        logger.info("finishing the interrupted update to {}", version)
        healthy, why = self.restart_and_gate(version)
        if healthy:
            self.commit(version)
            return True
        self.roll_back_pending(why)
        return False

    def read_pending(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.layout.pending.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            logger.warning("pending.json is unreadable; ignoring it")
            self.layout.unlink(self.layout.pending)
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------- rollback

    def roll_back_pending(self, why: str) -> None:
        pending = self.read_pending() or {}
        failed = pending.get("version")
        self._step("rollback")
        self.remember_failed(failed)
        back = self.inside_root(pending.get("previous"))
        if back is None or not self.layout.is_complete(back):
            self.layout.unlink(self.layout.pending)
            message = f"{failed} is unhealthy ({why}) and there is no previous release"
            self._report("rollback", False, message, failed, active=False)
            raise StepFailed(message)
        failed_release = self.layout.target(self.layout.current)
        self.layout.point(self.layout.current, back)
        older = self.inside_root(pending.get("previous_link"))
        if older is not None and self.layout.is_complete(older) and older != back:
            self.layout.point(self.layout.previous, older)
        else:
            self.layout.unlink(self.layout.previous)
        self.layout.unlink(self.layout.pending)
        others = [p for p in self.layout.kept() if p not in (back, failed_release)]
        self._fall_back([back, *others], f"{failed} failed ({why})")

    def manual_rollback(self) -> bool:
        current = self.layout.target(self.layout.current)
        back = self.layout.target(self.layout.previous)
        if not self.layout.is_complete(back) or back is None:
            message = "there is no previous release to go back to"
            self._report("rollback", False, message, None, active=False)
            return False
        self._step("rollback")
        if current is not None and self.layout.is_complete(current):
            self.layout.point(self.layout.previous, current)
        self.layout.point(self.layout.current, back)
        return self._fall_back([back], "by hand")

    def _fall_back(self, candidates: list[Path], reason: str) -> bool:
        """Try each release in turn until one passes the gate; the first stays ``current``
        when none does. Every attempt is reported; the last report ends the run."""
        tried = []
        for release in candidates:
            version = self.layout.version_of_release(release)
            if release != self.layout.target(self.layout.current):
                self.layout.point(self.layout.current, release)
            healthy, after = self.restart_and_gate(version)
            if healthy:
                self.prune()
                message = f"{reason}; rolled back to {version} and it is healthy"
                self._report("rollback", True, message, version, active=False)
                return True
            tried.append(f"{version}: {after}")
            self._report("rollback", False, f"rollback to {version} failed: {after}", version)
        first = candidates[0]
        self.layout.point(self.layout.current, first)
        version = self.layout.version_of_release(first)
        try:
            self.restart()  # keep the service being started; systemd retries it
        except (UpdateError, OSError, subprocess.SubprocessError) as exc:
            logger.warning("restart of {} failed: {}", version, one_line(exc))
        message = (
            f"{reason}; no kept release came up healthy ({'; '.join(tried)}); "
            f"current stays at {version}"
        )
        self._report("rollback", False, message, version, active=False)
        return False

    # --------------------------------------------------------------- commit

    def commit(self, version: str) -> None:
        self._step("commit")
        self.layout.unlink(self.layout.pending)
        if version in self.failed_versions():
            kept = [v for v in self.failed_versions() if v != version]
            write_atomic(self.layout.failed, json.dumps(kept).encode())
        self.prune()
        self._report("commit", True, f"{version} is installed and healthy", version, active=False)

    def failed_versions(self) -> list[str]:
        try:
            data = json.loads(self.layout.failed.read_text())
        except (OSError, ValueError):
            return []
        return [v for v in data if isinstance(v, str)] if isinstance(data, list) else []

    def remember_failed(self, version: object) -> None:
        """A release that failed its gate is not retried by the daily timer (a boot loop
        of install, fail, roll back); ``--force`` tries it again."""
        if isinstance(version, str):
            failed = [*[v for v in self.failed_versions() if v != version][-19:], version]
            write_atomic(self.layout.failed, json.dumps(failed).encode())

    def inside_root(self, relative: object) -> Path | None:
        if not isinstance(relative, str) or not relative.startswith("releases/"):
            return None
        path = self.layout.root / relative
        return path if path.parent == self.layout.releases else None

    # ----------------------------------------------------------- cleaning up

    def remove_incomplete(self) -> None:
        """Half-installed releases and staging directories from an interrupted run."""
        if not self.layout.releases.is_dir():
            return
        keep = {self.layout.target(self.layout.current), self.layout.target(self.layout.previous)}
        for path in self.layout.releases.iterdir():
            if path not in keep and not self.layout.is_complete(path):
                logger.info("removing incomplete release directory {}", path.name)
                shutil.rmtree(path, ignore_errors=True)

    def prune(self) -> None:
        """Keep ``current``, ``previous``, the newest others up to ``KEEP_RELEASES`` in
        all, and the release this process runs from."""
        keep = {self.layout.target(self.layout.current), self.layout.target(self.layout.previous)}
        failed = set(self.failed_versions())
        for path in self.layout.kept():
            if len(keep - {None}) >= KEEP_RELEASES:
                break
            if self.layout.version_of_release(path) not in failed:
                keep.add(path)
        running = Path(sys.prefix).resolve()
        for path in self.layout.releases.iterdir() if self.layout.releases.is_dir() else ():
            if path in keep or running.is_relative_to(path.resolve()):
                continue
            logger.info("removing old release {}", path.name)
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(self.layout.downloads, ignore_errors=True)

    # ------------------------------------------------------------ reporting

    def _step(self, name: str) -> None:
        self.message = ""
        self._hook(name)

    def _hook(self, name: str) -> None:
        if self._before_step is not None:
            self._before_step(name)

    def start_journal(self) -> None:
        if not self.record:
            return
        try:
            journal = self.layout.journal
            lines = journal.read_text().splitlines() if journal.exists() else []
            if len(lines) > JOURNAL_KEEP_LINES:
                text = "\n".join(lines[-JOURNAL_KEEP_LINES:]) + "\n"
                write_atomic(journal, text.encode())
        except OSError as exc:
            logger.warning("update journal unusable: {}", exc)

    def _report(
        self, step: str, ok: bool, message: str, version: str | None, active: bool = True
    ) -> None:
        result = StepResult(step, ok, message, version, active)
        (logger.info if ok else logger.warning)(
            "update {} {}: {}", step, "ok" if ok else "FAILED", message
        )
        if self.record:
            line = json.dumps({"run": self.run_id, "time": time.time(), **result.fields()})
            try:
                self.layout.make_state()
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(self.layout.journal, flags, 0o644)
                with os.fdopen(fd, "a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError as exc:
                logger.warning("cannot append to the update journal: {}", exc)
        if self._report_cb is not None:
            try:
                self._report_cb(result)
            except Exception as exc:  # a broken observer must not break the update
                logger.opt(exception=exc).error("update report callback failed: {}", exc)
