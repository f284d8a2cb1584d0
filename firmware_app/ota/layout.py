"""The update root on disk, the few operations that must be atomic, and the one way root
reads a file the service user could have planted.

Who may write where is the privilege boundary of the updater (root) against the voice
service (user ``ttbt5``):

- ``<root>/`` (``/opt/ttbt5``, root 0755): releases, ``current``/``previous``, downloads and
  ``state/`` with the updater's own files (journal, lock, failed versions, the last pointer
  serial). The service can read them and write none of them.
- ``<data_dir>/update/`` (owned by the service): the only file root takes from there is
  ``request.json``, read with :func:`read_untrusted` and removed through the same directory
  handle. Root never writes, rotates or follows anything in a directory the service owns.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path

from firmware_app.ota.manifest import UpdateError, parse_version

APP_NAME = "ttbt5"
MB = 1 << 20


class UntrustedFileError(OSError):
    """A file the service could have planted is a link, a FIFO, a device or too large."""


class Layout:
    """The update root: ``releases/<version>``, the ``current`` and ``previous`` links,
    ``pending.json``, ``downloads/`` and the updater's ``state/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.releases = root / "releases"
        self.current = root / "current"
        self.previous = root / "previous"
        self.pending = root / "pending.json"
        self.downloads = root / "downloads"
        self.state = root / "state"
        self.journal = self.state / "journal.jsonl"
        self.failed = self.state / "failed.json"
        self.serial = self.state / "pointer.json"
        self.lock = self.state / "update.lock"

    def release(self, version: str) -> Path:
        return self.releases / version

    def make_state(self) -> None:
        """Root-owned and readable by all: the service follows the journal from here."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o755)

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
        return release_version(release) if release else None

    @staticmethod
    def version_of_release(release: Path) -> str:
        return release_version(release) or release.name

    def kept(self) -> list[Path]:
        """Complete releases, newest version first."""
        found = []
        for path in self.releases.iterdir() if self.releases.is_dir() else ():
            version = release_version(path) if self.is_complete(path) else None
            if version is None:
                continue
            with contextlib.suppress(UpdateError):
                found.append((parse_version(version), path))
        return [path for _, path in sorted(found, reverse=True)]

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


def release_version(release: Path) -> str | None:
    try:
        data = json.loads((release / "release.json").read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` whole (temp file + fsync + rename): readers see old or new, never
    half. Only ever used in directories root owns."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _trusted_dir(fd: int) -> bool:
    """A directory only root can change: following a link inside it is safe."""
    st = os.fstat(fd)
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _open_dir(directory: Path) -> int:
    """A handle on ``directory`` reached from ``/`` one step at a time, following a link
    only inside a directory root alone can change."""
    fd = os.open("/", os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
    try:
        for part in directory.parts[1:]:
            follow = 0 if _trusted_dir(fd) else os.O_NOFOLLOW
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY | follow, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    why = f"{directory}: {part} is not a plain directory"
                    raise UntrustedFileError(why) from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_untrusted(path: Path, limit: int, *, consume: bool = False) -> bytes:
    """The content of a file that the service user may have written, as root can safely
    read it: the path is walked one directory at a time from ``/`` (see ``_open_dir``),
    the file itself is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO cannot stall the
    updater), must be a regular file of at most ``limit`` bytes, and with ``consume`` it is
    removed through the same directory handle (a directory swapped meanwhile cannot
    redirect the unlink).

    Raises FileNotFoundError when it is absent and UntrustedFileError when it is anything
    but a small regular file."""
    path = Path(os.path.abspath(path))
    fd = _open_dir(path.parent)
    try:
        try:
            flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
            file_fd = os.open(path.name, flags, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UntrustedFileError(f"{path} is a symbolic link") from None
            raise
        with os.fdopen(file_fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise UntrustedFileError(f"{path} is not a regular file")
            data = fh.read(limit + 1)
            if st.st_size > limit or len(data) > limit:
                raise UntrustedFileError(f"{path} is larger than {limit} bytes")
        if consume:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.name, dir_fd=fd)
        return data
    finally:
        os.close(fd)


def remove_untrusted(path: Path) -> None:
    """Remove whatever sits at ``path`` (a file, a link, a FIFO) without following it."""
    path = Path(os.path.abspath(path))
    try:
        fd = _open_dir(path.parent)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.unlink(path.name, dir_fd=fd)
    finally:
        os.close(fd)
