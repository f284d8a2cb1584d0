"""Fetching from the release server: the signed pointer, then the bundle it names.

The bundle is authenticated as it arrives: its SHA-256 is computed while the bytes are
written (a resumed download hashes the part already on disk first), the transfer stops at
the signed size, and a file whose hash differs from the signed one is deleted before
anything opens it. Nothing from the network is unpacked or decompressed before that.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import httpx
from loguru import logger

from firmware_app.config.settings import UpdateSettings
from firmware_app.ota.layout import APP_NAME, MB, Layout, write_atomic
from firmware_app.ota.manifest import UpdateError, load_public_key, parse_version
from firmware_app.ota.pointer import Pointer, open_pointer, this_hardware

POINTER_MAX_BYTES = 64 * 1024
DOWNLOAD_ATTEMPTS = 3
CHUNK = 1 << 16

Progress = Callable[[int, "int | None"], None]


class Fetcher:
    def __init__(
        self,
        settings: UpdateSettings,
        layout: Layout,
        client: httpx.Client | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.layout = layout
        self._client = client
        self._progress = progress
        self.message = ""

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.settings.http_timeout_s), follow_redirects=True
            )
        return self._client

    # -------------------------------------------------------------- pointer

    def pointer(self, version: str | None) -> tuple[Pointer, str]:
        """The verified pointer and the bundle's absolute URL."""
        if not self.settings.url:
            raise UpdateError("no release server configured (update.url)")
        if self.settings.public_key is None:
            raise UpdateError("no public key configured (update.public_key)")
        key = load_public_key(self.settings.public_key)
        base = self.settings.url.rstrip("/") + "/"
        name = "latest.json" if version is None else f"{APP_NAME}-{parse_version(version)}.json"
        url = urljoin(base, name)
        body = bytearray()
        try:
            with self._http().stream("GET", url) as response:
                if response.status_code != 200:
                    raise UpdateError(
                        f"release server answered HTTP {response.status_code} for {name}"
                    )
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > POINTER_MAX_BYTES:
                        raise UpdateError(f"{name} is larger than {POINTER_MAX_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise UpdateError(f"cannot reach the release server: {one_line(exc)}") from None
        pointer = open_pointer(
            bytes(body), key, hardware=this_hardware(), min_serial=self.seen_serial()
        )
        return pointer, urljoin(url, pointer.bundle)

    def seen_serial(self) -> int | None:
        try:
            data = json.loads(self.layout.serial.read_text())
            return int(data["serial"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember_serial(self, pointer: Pointer) -> None:
        """Root only, after a pointer was accepted: older serials are refused from now on."""
        if (self.seen_serial() or 0) < pointer.serial:
            body = {"serial": pointer.serial, "version": pointer.version}
            write_atomic(self.layout.serial, json.dumps(body).encode())

    # --------------------------------------------------------------- bundle

    def bundle(self, pointer: Pointer, url: str) -> Path:
        cap = self.settings.max_bundle_mb * MB
        if pointer.size > cap:
            raise UpdateError(
                f"bundle is {pointer.size / MB:.1f} MB, more than update.max_bundle_mb "
                f"({self.settings.max_bundle_mb})"
            )
        self.ensure_space(pointer.size)
        self.layout.downloads.mkdir(parents=True, exist_ok=True)
        final = self.layout.downloads / f"{APP_NAME}-{pointer.version}.tar"
        if final.exists() and _sha256(final) == pointer.sha256:
            self.message = f"reusing {final.name} downloaded earlier"
            return final
        final.unlink(missing_ok=True)
        part = final.with_name(final.name + ".part")
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                self._fetch_into(part, pointer, url)
                break
            except httpx.TransportError as exc:
                have = part.stat().st_size if part.exists() else 0
                logger.warning(
                    "download interrupted at {} bytes (attempt {}/{}): {}",
                    have,
                    attempt,
                    DOWNLOAD_ATTEMPTS,
                    one_line(exc),
                )
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise UpdateError(
                        f"download interrupted at {have} bytes after {attempt} attempts; "
                        "the next run resumes it"
                    ) from None
                time.sleep(0.5 * attempt)
        os.replace(part, final)
        self.message = f"{pointer.size / MB:.1f} MB from {url}, SHA-256 as signed"
        return final

    def _fetch_into(self, part: Path, pointer: Pointer, url: str) -> None:
        offset = part.stat().st_size if part.exists() else 0
        if offset >= pointer.size:
            part.unlink()  # a stale or oversized partial file: start again
            offset = 0
        digest = hashlib.sha256()
        if offset:
            with part.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self._http().stream("GET", url, headers=headers) as response:
            if response.status_code == 206 and _range_start(response) == offset:
                mode = "ab"
            elif response.status_code == 200:
                offset, mode, digest = 0, "wb", hashlib.sha256()
            elif response.status_code == 416:
                part.unlink(missing_ok=True)
                raise httpx.TransportError("server refused the resume range; starting again")
            else:
                raise UpdateError(
                    f"release server answered HTTP {response.status_code} for the bundle"
                )
            done, shown = offset, -1
            with part.open(mode) as fh:
                for chunk in response.iter_bytes():  # as received: a cut keeps what came
                    if done + len(chunk) > pointer.size:
                        part.unlink()
                        raise UpdateError(
                            f"the server sent more than the signed {pointer.size} bytes"
                        )
                    done += len(chunk)
                    digest.update(chunk)
                    fh.write(chunk)
                    if self._progress:
                        self._progress(done, pointer.size)
                    if (pct := done * 100 // pointer.size // 25 * 25) > shown:
                        shown = pct
                        logger.info(
                            "download {}% ({:.1f}/{:.1f} MB)", pct, done / MB, pointer.size / MB
                        )
                fh.flush()
                os.fsync(fh.fileno())
        if done < pointer.size:
            raise httpx.TransportError(f"the server stopped at {done} of {pointer.size} bytes")
        if digest.hexdigest() != pointer.sha256:
            part.unlink()
            raise UpdateError("the download does not match the signed SHA-256")

    def ensure_space(self, bundle_bytes: int) -> None:
        """Room for the bundle, its unpacked copy and the installed venv, plus the reserve."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.layout.root).free
        need = bundle_bytes * 4 + self.settings.reserve_mb * MB
        if free < need:
            raise UpdateError(
                f"not enough disk space: {free / MB:.0f} MB free, {need / MB:.0f} MB needed "
                f"(update.reserve_mb={self.settings.reserve_mb})"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("content-range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
