"""The signed pointer a device polls (``latest.json``, ``ttbt5-<version>.json``): which
release, for which product and hardware, where its bundle is, its exact size and SHA-256,
a serial that only grows and an expiry (the role TUF's timestamp metadata plays).

Signed, so a server or network in the middle cannot point a device at another release;
the size and hash bind the bundle before a byte of it is opened; the serial refuses an
older pointer once a newer one was seen (rollback of metadata); the expiry exposes a server
that keeps serving an old pointer (a freeze attack) instead of letting it go unnoticed.

File format: ``{"signed": "<JSON text>", "signature": "<base64 Ed25519 over that text>"}``.
The signature is checked over the exact text before the text is parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
import platform
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware_app.ota.manifest import SignatureError, UpdateError, parse_version

POINTER_TYPE = "ttbt5-pointer"
PRODUCT = "ttbt5"
ANY_HARDWARE = "any"
DEFAULT_EXPIRES_DAYS = 14.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PointerExpired(UpdateError):
    """Correctly signed, but past its expiry: the server is stale or frozen."""

    def __init__(self, expires: float) -> None:
        self.expires = expires
        super().__init__(f"update server stale since {when(expires)} (latest.json expired)")


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def this_hardware() -> str:
    """The device's hardware class as pointers name it, e.g. ``linux-aarch64``."""
    return f"linux-{platform.machine().lower()}"


@dataclass(frozen=True)
class Pointer:
    version: str
    bundle: str
    """Bundle location, relative to the pointer's URL."""
    size: int
    sha256: str
    serial: int
    expires: float
    hardware: tuple[str, ...]
    product: str = PRODUCT

    def signed_text(self) -> str:
        data = {"type": POINTER_TYPE, **asdict(self), "hardware": list(self.hardware)}
        return json.dumps(data, indent=2, sort_keys=True)


def make_pointer(pointer: Pointer, key: Ed25519PrivateKey) -> bytes:
    text = pointer.signed_text()
    signature = base64.b64encode(key.sign(text.encode())).decode()
    return (json.dumps({"signed": text, "signature": signature}, indent=2) + "\n").encode()


def new_pointer(
    version: str,
    bundle: str,
    size: int,
    sha256: str,
    *,
    hardware: tuple[str, ...],
    serial: int | None = None,
    expires_days: float = DEFAULT_EXPIRES_DAYS,
    now: float | None = None,
) -> Pointer:
    now = time.time() if now is None else now
    return Pointer(
        version=str(parse_version(version)),
        bundle=bundle,
        size=size,
        sha256=sha256,
        serial=int(now) if serial is None else serial,
        expires=now + expires_days * 86400,
        hardware=hardware,
    )


def read_signed(raw: bytes, key: Ed25519PublicKey) -> dict[str, object]:
    """The signed body as a dict, after the signature over its exact text holds."""
    try:
        envelope = json.loads(raw)
        text, signature = envelope["signed"], envelope["signature"]
        if not isinstance(text, str) or not isinstance(signature, str):
            raise TypeError("signed and signature must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"pointer is not a signed pointer ({exc})") from None
    try:
        key.verify(base64.b64decode(signature, validate=True), text.encode())
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("pointer signature is not valid for the configured key") from None
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("type") != POINTER_TYPE:
        raise UpdateError("signed pointer is of an unknown type")
    return data


def open_pointer(
    raw: bytes,
    key: Ed25519PublicKey,
    *,
    hardware: str,
    min_serial: int | None,
    now: float | None = None,
) -> Pointer:
    """The pointer, if it is signed by ``key``, meant for this product and hardware, not
    older than one already accepted and not expired; UpdateError says which check failed."""
    data = read_signed(raw, key)
    try:
        size, serial, expires = data["size"], data["serial"], data["expires"]
        if not isinstance(size, int) or not isinstance(serial, int) or size <= 0:
            raise TypeError("size and serial must be positive integers")
        hardware_list = data["hardware"]
        if not isinstance(hardware_list, list) or not all(
            isinstance(h, str) for h in hardware_list
        ):
            raise TypeError("hardware must be a list of names")
        pointer = Pointer(
            version=str(parse_version(str(data["version"]))),
            bundle=str(data["bundle"]),
            size=size,
            sha256=str(data["sha256"]).lower(),
            serial=serial,
            expires=float(expires),  # type: ignore[arg-type]
            hardware=tuple(hardware_list),
            product=str(data["product"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UpdateError(f"signed pointer is malformed: {exc}") from None
    if not _SHA256.match(pointer.sha256):
        raise UpdateError("signed pointer has a bad SHA-256")
    if pointer.product != PRODUCT:
        raise UpdateError(f"pointer is for {pointer.product!r}, not {PRODUCT}")
    if hardware not in pointer.hardware and ANY_HARDWARE not in pointer.hardware:
        shown = ", ".join(pointer.hardware)
        raise UpdateError(f"{pointer.version} is built for {shown}, not this {hardware}")
    if min_serial is not None and pointer.serial < min_serial:
        raise UpdateError(
            f"pointer serial {pointer.serial} is older than {min_serial} seen before "
            "(a replayed or rolled-back latest.json)"
        )
    if pointer.expires <= (time.time() if now is None else now):
        raise PointerExpired(pointer.expires)
    return pointer
