"""The signed description of a release: its version, the oldest version it may update,
and the SHA-256 of every file in the bundle.

The signature (Ed25519) covers the exact bytes of ``manifest.json``; it is checked before
the JSON is even parsed, so nothing unsigned is ever interpreted. Devices hold only the
public key; the private key stays with whoever builds releases.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from packaging.version import InvalidVersion, Version

from firmware_app.core.errors import TTBT5Error

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
MANIFEST_MAX_BYTES = 1 << 20
FORMAT = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UpdateError(TTBT5Error, RuntimeError):
    """An update was refused or failed; the message is one line for the user."""


class SignatureError(UpdateError):
    """The manifest is not signed by the configured key (or not signed at all)."""


@dataclass(frozen=True)
class Manifest:
    version: str
    min_from_version: str | None
    files: dict[str, str]
    """Bundle path -> SHA-256 (hex) of its content."""
    created: str
    name: str = "ttbt5"

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "min_from_version": self.min_from_version,
            "created": self.created,
            "files": dict(sorted(self.files.items())),
        }
        return (json.dumps(data, indent=2) + "\n").encode()


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        raise UpdateError(f"{str(text)[:40]!r} is not a valid version") from None


def new_manifest(version: str, files: dict[str, str], min_from_version: str | None) -> Manifest:
    parse_version(version)
    if min_from_version:
        parse_version(min_from_version)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Manifest(version, min_from_version or None, files, created)


def parse_manifest(raw: bytes) -> Manifest:
    """Strictly: a signed manifest from a buggy builder is still refused, with the reason."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UpdateError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UpdateError("manifest is not a JSON object")
    if data.get("format") != FORMAT:
        raise UpdateError(f"manifest format {data.get('format')!r} is not supported")
    # normalized, because the version names a directory and a pip requirement
    version = str(parse_version(_text(data, "version")))
    min_from = data.get("min_from_version")
    if min_from is not None:
        min_from = str(parse_version(_text(data, "min_from_version")))
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise UpdateError("manifest lists no files")
    for path, digest in files.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise UpdateError(f"manifest has a bad SHA-256 for {path[:80]!r}")
    return Manifest(version, min_from, dict(files), _text(data, "created"), _text(data, "name"))


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UpdateError(f"manifest field {key!r} is missing or not a string")
    return value


def sign(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    """The content of ``manifest.sig``: the base64 signature and a newline."""
    return base64.b64encode(key.sign(manifest_bytes)) + b"\n"


def verify(manifest_bytes: bytes, signature: bytes, key: Ed25519PublicKey) -> Manifest:
    try:
        raw_sig = base64.b64decode(signature.strip(), validate=True)
        key.verify(raw_sig, manifest_bytes)
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("manifest signature is not valid for the configured key") from None
    return parse_manifest(manifest_bytes)


def generate_keys(private_path: Path, public_path: Path) -> None:
    """A new key pair: the private key readable by its owner only, never overwritten."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for path in (private_path, public_path):
        if path.exists():
            raise UpdateError(f"{path} already exists; refusing to overwrite a key")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(public_pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UpdateError(f"cannot load private key {path}: {_reason(exc)}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UpdateError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UpdateError(f"cannot load public key {path}: {_reason(exc)}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UpdateError(f"{path} is not an Ed25519 public key")
    return key


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0][:120]
