"""Release bundles: a plain tar holding ``manifest.json``, ``manifest.sig`` and the files the
manifest lists (the app wheel and a wheelhouse of its dependencies under ``wheels/``).

Bundles are never compressed (the wheels inside already are), so reading one never
expands anything; the updater has checked the whole file against the SHA-256 in the
signed pointer before it gets here. Reading is paranoid anyway: every member must be a
regular file (or a directory) with a relative name free of ``..``; links, devices and
fifos are refused outright. The Python on Raspberry Pi OS Bookworm (3.11.2) predates tarfile's
extraction filters, so nothing here uses ``tarfile.extract``: files are written one by one
with ``O_EXCL | O_NOFOLLOW`` into a fresh directory, hashed again as they are written.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware_app.ota.manifest import (
    MANIFEST_MAX_BYTES,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    UpdateError,
    new_manifest,
    sign,
    verify,
)

CHUNK = 1 << 16
_MAX_NAME = 255
_MAX_DEPTH = 8


class BundleError(UpdateError):
    """The bundle is malformed, tampered with or hostile."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def collect_files(root: Path) -> dict[str, Path]:
    """Every regular file under ``root``, keyed by its bundle path (relative, POSIX)."""
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise BundleError(f"{path} is a symbolic link; bundles hold regular files only")
        if path.is_file():
            files[path.relative_to(root).as_posix()] = path
    return files


def build_bundle(
    files: dict[str, Path],
    version: str,
    key: Ed25519PrivateKey,
    out: Path,
    min_from_version: str | None = None,
) -> Manifest:
    """Write a signed bundle; deterministic apart from the manifest's ``created`` time."""
    for name in files:
        check_name(name)
        if name in (MANIFEST_NAME, SIGNATURE_NAME):
            raise BundleError(f"{name} is reserved for the bundle's own manifest")
    manifest = new_manifest(
        version, {name: file_sha256(path) for name, path in files.items()}, min_from_version
    )
    raw = manifest.to_json()
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST_NAME, raw)
        _add_bytes(tar, SIGNATURE_NAME, sign(raw, key))
        for name in sorted(files):
            info = tar.gettarinfo(str(files[name]), arcname=name)
            info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = (
                0o644,
                0,
                0,
                "",
                "",
                0,
            )
            with files[name].open("rb") as fh:
                tar.addfile(info, fh)
    os.replace(tmp, out)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def check_name(name: str) -> str:
    """A member name that stays inside the directory it is unpacked into, or BundleError."""
    shown = repr(name[:80])
    if not name or "\0" in name or "\\" in name or len(name) > _MAX_NAME:
        raise BundleError(f"bundle member {shown} has an unsafe name")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise BundleError(f"bundle member {shown} has an absolute path")
    if ".." in path.parts or "." in path.parts or str(path) != name.rstrip("/"):
        raise BundleError(f"bundle member {shown} is not a plain relative path ('..' or '.')")
    if len(path.parts) > _MAX_DEPTH:
        raise BundleError(f"bundle member {shown} is nested too deeply")
    return str(path)


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar:
        name = check_name(member.name)
        if member.issym() or member.islnk():
            raise BundleError(f"bundle member {name!r} is a link; links are not allowed")
        if not (member.isreg() or member.isdir()):
            raise BundleError(f"bundle member {name!r} is a device, fifo or other special file")
        if name in members:
            raise BundleError(f"bundle member {name!r} appears twice")
        members[name] = member
    return members


def _open(path: Path) -> tarfile.TarFile:
    """Plain tar only: a compressed bundle would be expanded before its manifest's
    signature is checked, and a small gzip can expand to gigabytes."""
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"bundle {path.name} is not a readable tar file: {exc}") from None


def verify_bundle(path: Path, key: Ed25519PublicKey) -> Manifest:
    """Check the signature, then the member list, then every file's hash, without writing
    anything. Raises BundleError/SignatureError with the first problem found."""
    try:
        with _open(path) as tar:
            members = _members(tar)
            raw = _read_small(tar, members, MANIFEST_NAME)
            signature = _read_small(tar, members, SIGNATURE_NAME)
            manifest = verify(raw, signature, key)
            for name in manifest.files:
                check_name(name)
            present = {
                name
                for name, member in members.items()
                if member.isreg() and name not in (MANIFEST_NAME, SIGNATURE_NAME)
            }
            listed = set(manifest.files)
            if extra := sorted(present - listed):
                raise BundleError(f"bundle holds a file the manifest does not list: {extra[0]!r}")
            if missing := sorted(listed - present):
                raise BundleError(f"bundle lacks a file the manifest lists: {missing[0]!r}")
            for name in sorted(listed):
                fh = tar.extractfile(members[name])
                assert fh is not None  # a regular member always has a file object
                digest = hashlib.sha256()
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
                if digest.hexdigest() != manifest.files[name]:
                    raise BundleError(f"bundle file {name!r} does not match its SHA-256")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"bundle {path.name} is damaged: {exc}") from None
    return manifest


def _read_small(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    if member is None or not member.isreg():
        raise BundleError(f"bundle has no {name}")
    if member.size > MANIFEST_MAX_BYTES:
        raise BundleError(f"bundle's {name} is too large ({member.size} bytes)")
    fh = tar.extractfile(member)
    assert fh is not None
    return fh.read()


def unpack_bundle(path: Path, dest: Path, manifest: Manifest) -> None:
    """Write the bundle's files into ``dest``, which must not exist yet. Each file is hashed
    again while written, so a bundle swapped after verification is still caught."""
    dest.mkdir(parents=True)
    root = dest.resolve()
    try:
        with _open(path) as tar:
            for name, member in _members(tar).items():
                if member.isdir():
                    continue
                expected = manifest.files.get(name)
                if expected is None and name not in (MANIFEST_NAME, SIGNATURE_NAME):
                    raise BundleError(f"bundle member {name!r} is not in the manifest")
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.parent.resolve().is_relative_to(root):
                    raise BundleError(f"bundle member {name!r} escapes the release directory")
                source = tar.extractfile(member)
                assert source is not None
                digest = hashlib.sha256()
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                if expected is not None and digest.hexdigest() != expected:
                    raise BundleError(f"bundle file {name!r} changed after it was verified")
    except (tarfile.TarError, EOFError) as exc:
        raise BundleError(f"bundle {path.name} is damaged: {exc}") from None
