"""Files the configuration names, opened so that no file can hang or exhaust the service.

A path in the config (the config file itself, a ``*_file`` secret, a CA certificate, a
voice's JSON, a model) can name anything: a FIFO nobody writes to (``open`` and ``read``
would wait forever), a device (``/dev/zero`` never ends), an 8 GB sparse file (read whole,
it ends in MemoryError). Every such file is opened without blocking, must be a regular
file, and is read only up to a cap that fits what it should hold; anything else is one
``ConfigError`` line naming the key, never its content.
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

from firmware_app.core.errors import ConfigError

KIB = 1024
MIB = 1024 * KIB

CONFIG_MAX = 1 * MIB
"""A config file: a few KB in practice, a long list of custom intents at most some 100 KB."""
SECRET_MAX = 64 * KIB
"""A password or API key file: one line."""
PEM_MAX = 1 * MIB
"""A CA bundle or a public key (the system's whole CA bundle is about 200 KB)."""
JSON_MAX = 4 * MIB
"""A model's JSON description (a Piper voice's config with its phoneme map: ~10 KB)."""
MODEL_MAX = 2048 * MIB
"""A model file handed to its engine (the largest Piper voices are ~120 MB)."""

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class FileRefused(ConfigError):
    """A file the config names cannot be used; ``problem`` is the phrase without the key
    (``ttbt5 config validate`` prefixes its own)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def shown_path(path: Path | str) -> str:
    """A path as error lines quote it: at most ~80 characters."""
    text = str(path)
    return text if len(text) <= 80 else text[:38] + "..." + text[-39:]


def _open(path: Path, key: str) -> int:
    """Opened for reading without waiting for a writer (O_NONBLOCK: a FIFO opens at once)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        raise FileRefused(key, f"{shown_path(path)} does not exist") from None
    except OSError as exc:
        raise FileRefused(key, f"cannot open {shown_path(path)}: {exc.strerror}") from None


def _check(fd: int, path: Path, key: str, limit: int) -> int:
    """The file's size, once it is known to be a regular file no larger than ``limit``."""
    info = os.fstat(fd)
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise FileRefused(key, f"{shown_path(path)} is {kind}, not a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(key, f"{shown_path(path)} is not a regular file")
    if info.st_size > limit:
        raise FileRefused(
            key,
            f"{shown_path(path)} is {_size(info.st_size)}; at most {_size(limit)} "
            "is read from such a file",
        )
    return info.st_size


def read_capped(path: Path, key: str, limit: int) -> bytes:
    """The whole file, if it is a regular file of at most ``limit`` bytes; a ConfigError
    naming ``key`` otherwise (also when it grows past the cap while being read)."""
    fd = _open(path, key)
    try:
        _check(fd, path, key, limit)
        os.set_blocking(fd, True)  # a regular file: reads never wait on a writer
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(256 * KIB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise FileRefused(key, f"cannot read {shown_path(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if total > limit:
        raise FileRefused(
            key, f"{shown_path(path)} is larger than {_size(limit)}, the most read from it"
        )
    return b"".join(chunks)


def read_capped_text(path: Path, key: str, limit: int) -> str:
    """``read_capped`` as UTF-8 text; binary content is one line naming the key."""
    data = read_capped(path, key, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRefused(key, f"{shown_path(path)} is binary, not UTF-8 text") from None
    if "\0" in text:
        raise FileRefused(key, f"{shown_path(path)} is binary, not UTF-8 text")
    return text


def check_regular(path: Path, key: str, limit: int = MODEL_MAX) -> None:
    """For a file an engine opens itself (a model): it must exist, be a regular file and
    be no larger than ``limit``, so the engine is never handed a FIFO or a device."""
    fd = _open(path, key)
    try:
        _check(fd, path, key, limit)
    finally:
        os.close(fd)


def ca_context(path: Path, key: str) -> ssl.SSLContext:
    """A verifying TLS client context that also trusts the CA certificates in ``path``,
    read with a size cap and never blocking (not handed to OpenSSL by name, which would
    read a FIFO or a device forever)."""
    pem = read_capped_text(path, key, PEM_MAX)
    try:
        context = ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise FileRefused(key, f"{shown_path(path)} holds no PEM certificate") from None
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _size(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:,.0f} MiB"
    if n >= KIB:
        return f"{n / KIB:,.0f} KiB"
    return f"{n} bytes"
