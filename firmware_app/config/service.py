"""Settings of the service itself: where it logs and keeps its event log (``[log]``), and
how it is updated and rolled back (``[update]``, ``ota/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from firmware_app.config.section import Section


class UpdateSettings(Section):
    url: str | None = None
    """Base URL of the release server (serves ``latest.json`` and bundles)."""
    public_key: Path | None = None
    """Ed25519 public key (PEM) that release manifests must be signed with."""
    root: Path = Path("/opt/ttbt5")
    """Directory holding ``releases/``, ``current`` and ``previous``."""
    health_timeout_s: float = Field(60.0, gt=0, le=3600)
    """A new release must report ready within this long."""
    health_audio_s: float = Field(10.0, ge=0, le=3600)
    """... and keep consuming audio for this long, or it is rolled back."""
    max_bundle_mb: int = Field(500, ge=1, le=10000)
    """Largest bundle that is downloaded."""
    reserve_mb: int = Field(100, ge=0, le=1_000_000)
    """Free space that must remain on the update root's disk after an update; an update
    that would leave less is refused before it downloads anything."""
    health_file: Path = Path("/run/ttbt5/health.json")
    """Health file the running service writes (version, ready, last audio frame); the
    health gate reads it to decide whether a new release came up."""
    health_stale_s: float = Field(5.0, gt=0, le=600)
    """During the health gate, audio counts as stalled when no frame was consumed for this
    long."""
    restart_command: list[str] = Field(
        default_factory=lambda: ["systemctl", "restart", "ttbt5.service"], min_length=1
    )
    """Command that restarts the service after the switch (and after a rollback)."""
    http_timeout_s: float = Field(30.0, gt=0, le=600)
    """Connect/read timeout for the release server."""
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    """How long an update asked for over MQTT waits for the update service to start."""
    check_interval_h: float = Field(12.0, ge=0, le=24 * 30)
    """While running, look up the latest release this often (and once at start) so Home
    Assistant's update entity can offer it; 0 turns the periodic check off."""
    allow_remote_force: bool = False
    """Let ``cmd/update`` with ``force`` install an older or the same version (off: a
    remote request can only move forward)."""


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level on stderr (the journal under systemd)."""
    events: Path | None = None
    """Write the event log (JSON Lines) here during ``run``."""
    events_max_mb: float = Field(10.0, ge=0.001, le=10_000)
    """Size at which the event log file is rotated: it becomes ``<name>.1`` and a new
    file starts (also for ``simulate --events``)."""
    events_keep: int = Field(3, ge=0, le=100)
    """Rotated event log files kept (``<name>.1`` is the newest); older ones are deleted.
    At most (1 + ``events_keep``) × ``events_max_mb`` is used (40 MB by default)."""
    save_audio: Path | None = None
    """Directory where each request's audio is saved as WAV (off unless set)."""
    save_audio_max_mb: float = Field(50.0, ge=0.1, le=100_000)
    """Most space the requests in ``save_audio`` take (a 5 s request is about 160 KB):
    before a new one is written, the oldest are deleted to stay under it."""
    save_audio_keep: int = Field(300, ge=1, le=100_000)
    """Most requests kept in ``save_audio``; the oldest are deleted first."""
