"""``cmd/update`` from MQTT (or Home Assistant's update button), as the assistant's
``updater`` hook.

The voice service cannot update itself: it runs unprivileged with a read-only /opt, and
it would not survive its own restart to watch the health gate. So the hook only checks
what is available (in process) and then *asks* for an update by dropping
``<data_dir>/update/request.json``; ``ttbt5-update.path`` starts ``ttbt5-update.service``
(root), which runs the update and writes each step to ``<update.root>/state/journal.jsonl``
(root's own directory: the service can read it, never write or replace it).
The hook follows that journal and posts each line as an ``update`` notice. When the service
is restarted mid-update, the new process picks the journal up where the old one stopped,
so the health, commit and rollback results are still reported.

The request carries only ``force`` and ``version``: the release server and the key come
from root's configuration, so a compromised service cannot point the updater elsewhere.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app.config.settings import Settings
from firmware_app.core.messages import Command, Message, Notice
from firmware_app.ota.layout import Layout, read_untrusted
from firmware_app.ota.manifest import UpdateError, parse_version
from firmware_app.ota.update import StepFailed, StepResult, Updater

POLL_S = 0.25
REQUEST_MAX_BYTES = 4096
CATCH_UP_WINDOW_S = 3600.0
"""At start, journal lines older than this are history, not news."""


def update_dir(settings: Settings) -> Path:
    return settings.data_dir / "update"


def make_updater(
    settings: Settings, post: Callable[[Message], None]
) -> Callable[[Command], None] | None:
    """The assistant's ``updater`` hook, or None when no release server is configured."""
    if not settings.update.url:
        return None
    return RemoteUpdater(settings, post).handle


def read_request(path: Path) -> dict[str, Any]:
    """Read, remove and validate a request file. The less privileged service writes it
    and root reads it: a link, a FIFO or anything over 4 kB is refused without being
    followed or read (UntrustedFileError), and it is removed even when malformed."""
    raw = read_untrusted(path, REQUEST_MAX_BYTES, consume=True)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UpdateError(f"update request {path} is unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise UpdateError("update request is not a JSON object")
    run = data.get("id")
    force = data.get("force", False)
    version = data.get("version")
    if not isinstance(run, str) or not run.isalnum() or len(run) > 32:
        raise UpdateError("update request has a bad id")
    if not isinstance(force, bool):
        raise UpdateError("update request has a bad 'force'")
    if version is not None:
        if not isinstance(version, str):
            raise UpdateError("update request has a bad 'version'")
        version = str(parse_version(version))
    return {"id": run, "force": force, "version": version}


class RemoteUpdater:
    def __init__(self, settings: Settings, post: Callable[[Message], None]) -> None:
        self.settings = settings
        self._post = post
        self._dir = update_dir(settings)
        self.request_file = self._dir / "request.json"
        self.journal = Layout(settings.update.root).journal
        self._posted_file = self._dir / "posted"
        self._lock = threading.Lock()
        self._busy = False
        self._catch_up()
        if settings.update.check_interval_h > 0:
            threading.Thread(
                target=self._watch_releases, name="ttbt5-release-check", daemon=True
            ).start()

    def handle(self, cmd: Command) -> None:
        """Called on the assistant's thread; replies at once, works in the background."""
        args = dict(cmd.args)
        force, version = args.pop("force", False), args.pop("version", None)
        error = None
        if args:
            error = f"unknown argument {sorted(args)[0]!r} (allowed: force, version)"
        elif not isinstance(force, bool):
            error = "'force' must be true or false"
        elif version is not None and not isinstance(version, str):
            error = "'version' must be a string"
        else:
            with self._lock:
                if self._busy or self.request_file.exists():
                    error = "an update is already in progress"
                else:
                    self._busy = True
        if cmd.reply is not None:
            cmd.reply(error is None, error)
        if error is None:
            threading.Thread(
                target=self._run, args=(force, version), name="ttbt5-update", daemon=True
            ).start()

    # ---------------------------------------------------------------- runs

    def _run(self, force: bool, version: str | None) -> None:
        try:
            self._request(force, version)
        except Exception as exc:  # the assistant must hear about it, whatever it was
            logger.opt(exception=exc).error("update request failed: {}", exc)
            self._notice(StepResult("request", False, str(exc)[:300], version, active=False))
        finally:
            with self._lock:
                self._busy = False

    def _request(self, force: bool, version: str | None) -> None:
        checker = Updater(self.settings.update)
        try:
            latest = checker.check(version)
        except StepFailed as exc:
            self._notice(StepResult("check", False, str(exc), None, active=False))
            return
        installed = checker.installed_version()
        newer = installed is None or parse_version(latest.version) > parse_version(installed)
        if not newer and not force:
            self._notice(
                StepResult(
                    "check", True, f"{installed} is up to date", latest.version, active=False
                )
            )
            return
        self._notice(
            StepResult(
                "check", True, f"{latest.version} available (installed {installed})", latest.version
            )
        )
        run = uuid.uuid4().hex[:12]
        self._dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"id": run, "force": force, "version": version}).encode()
        tmp = self._dir / ".request.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, self.request_file)  # the path unit fires on the final name only
        self._notice(
            StepResult("request", True, f"update to {latest.version} requested", latest.version)
        )
        self._follow(run, 0, self.settings.update.request_timeout_s)

    def _follow(self, run: str, start: int, first_line_timeout: float) -> None:
        """Post the journal lines of ``run`` from line ``start`` on, until the run ends."""
        posted = start
        deadline = time.monotonic() + first_line_timeout
        while True:
            lines = self._journal_lines(run)
            for line in lines[posted:]:
                self._notice(
                    StepResult(
                        str(line.get("step")),
                        bool(line.get("ok")),
                        str(line.get("message", "")),
                        line.get("version"),
                        bool(line.get("active")),
                    )
                )
                posted += 1
                self._remember(run, posted)
                if not line.get("active"):
                    return
            if posted == 0 and time.monotonic() > deadline:
                self.request_file.unlink(missing_ok=True)
                self._notice(
                    StepResult(
                        "request",
                        False,
                        f"the update service did not start within {first_line_timeout:g} s "
                        "(is ttbt5-update.path enabled?)",
                        None,
                        active=False,
                    )
                )
                return
            time.sleep(POLL_S)

    def _catch_up(self) -> None:
        """After a restart mid-update: report what the update service did meanwhile."""
        lines = self._all_lines()
        if not lines:
            return
        run = lines[-1].get("run")
        if not isinstance(run, str):
            return
        mine = [line for line in lines if line.get("run") == run]
        done_run, done_count = self._posted()
        start = done_count if done_run == run else 0
        fresh = time.time() - float(mine[-1].get("time") or 0) < CATCH_UP_WINDOW_S
        if start >= len(mine) and not mine[-1].get("active"):
            return
        if not fresh:
            return
        running = bool(mine[-1].get("active"))
        if running:  # the update service is still at it: no second request meanwhile
            with self._lock:
                self._busy = True

        def follow() -> None:
            try:
                self._follow(
                    run,
                    start,
                    self.settings.update.health_timeout_s
                    + self.settings.update.health_audio_s
                    + 600,
                )
            finally:
                if running:
                    with self._lock:
                        self._busy = False

        threading.Thread(target=follow, name="ttbt5-update-follow", daemon=True).start()

    def _watch_releases(self) -> None:
        """Look up the latest release now and then, so the update entity can offer it.
        Quiet on failure (logged only): an unreachable server is not an assistant error."""
        while True:
            with self._lock:
                busy = self._busy
            if not busy:
                checker = Updater(self.settings.update)
                try:
                    latest = checker.check()
                except StepFailed as exc:
                    logger.info("release check failed: {}", exc)
                    if exc.stale_since is not None:  # a frozen server is news, not noise
                        self._notice(StepResult("check", False, str(exc), None, active=False))
                else:
                    installed = checker.installed_version()
                    newer = installed is None or (
                        parse_version(latest.version) > parse_version(installed)
                    )
                    state = f"available (installed {installed})" if newer else "is the latest"
                    self._notice(
                        StepResult(
                            "check", True, f"{latest.version} {state}", latest.version, active=False
                        )
                    )
            time.sleep(self.settings.update.check_interval_h * 3600)

    # ------------------------------------------------------------- helpers

    def _notice(self, result: StepResult) -> None:
        self._post(Notice("update", result.fields()))

    def _all_lines(self) -> list[dict[str, Any]]:
        try:
            text = self.journal.read_text(encoding="utf-8")
        except OSError:
            return []
        lines = []
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a line cut by a power failure
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def _journal_lines(self, run: str) -> list[dict[str, Any]]:
        return [line for line in self._all_lines() if line.get("run") == run]

    def _posted(self) -> tuple[str | None, int]:
        try:
            run, count = self._posted_file.read_text().split()
            return run, int(count)
        except (OSError, ValueError):
            return None, 0

    def _remember(self, run: str, count: int) -> None:
        tmp = self._posted_file.with_name(".posted.tmp")
        try:
            tmp.write_text(f"{run} {count}\n")
            os.replace(tmp, self._posted_file)
        except OSError as exc:
            logger.warning("cannot record update progress in {}: {}", self._posted_file, exc)
