"""Speech models: what is installed, fetching the English Vosk model, checking them.

A pull downloads to a ``.part`` file (resumed with an HTTP Range request when a previous
attempt was cut), checks the pinned SHA-256, unpacks into a temporary directory next to the
destination, records every file's hash, and renames into place: a model directory is
either complete or absent, never half there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from loguru import logger

from firmware_app.config.settings import Settings
from firmware_app.core.errors import BadInputError, ModelMissingError, TTBT5Error

MANIFEST = ".ttbt5-files.json"


@dataclass(frozen=True)
class KnownModel:
    name: str
    url: str
    sha256: str
    size_mb: int


KNOWN_MODELS = {
    "vosk-model-small-en-us-0.15": KnownModel(
        "vosk-model-small-en-us-0.15",
        "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
        "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
        40,
    ),
}
DEFAULT_MODEL = "vosk-model-small-en-us-0.15"


class DownloadError(TTBT5Error, OSError):
    """The model could not be fetched or did not match its checksum."""


def models_dir(settings: Settings) -> Path:
    return settings.data_dir / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    expected_sha256: str | None,
    attempts: int = 4,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Fetch ``url`` to ``dest`` (resuming a ``.part`` file) and verify its hash."""
    import httpx

    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for attempt in range(1, attempts + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with httpx.stream(
                "GET", url, headers=headers, timeout=timeout, follow_redirects=True
            ) as resp:
                if resp.status_code == 416:  # already complete
                    pass
                elif resp.status_code not in (200, 206):
                    raise DownloadError(f"{url}: HTTP {resp.status_code}")
                else:
                    if resp.status_code == 200:
                        have = 0  # the server ignored the Range: start over
                    total = int(resp.headers.get("content-length", 0)) + have
                    with part.open("ab" if have else "wb") as out:
                        done = have
                        shown = 0.0
                        for block in resp.iter_bytes(1 << 16):
                            out.write(block)
                            done += len(block)
                            if progress and time.monotonic() - shown > 0.5:
                                _progress(done, total)
                                shown = time.monotonic()
                    if progress:
                        _progress(done, total, end=True)
        except (httpx.HTTPError, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("download attempt {} of {} failed: {}", attempt, attempts, last_error)
            time.sleep(min(2**attempt, 10) * 0.25)
            continue
        if expected_sha256:
            actual = sha256_file(part)
            if actual != expected_sha256:
                part.unlink(missing_ok=True)  # a bad file is not resumed: start clean
                last_error = f"checksum mismatch (got {actual[:12]}…, want {expected_sha256[:12]}…)"
                logger.warning("download attempt {}: {}", attempt, last_error)
                continue
        os.replace(part, dest)
        return dest
    raise DownloadError(f"could not download {url}: {last_error}")


def _progress(done: int, total: int, end: bool = False) -> None:
    if total:
        pct = 100 * done / total
        bar = "#" * int(pct / 4)
        sys.stderr.write(f"\r  [{bar:<25}] {pct:5.1f}%  {done / 1e6:6.1f} of {total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r  {done / 1e6:6.1f} MB")
    if end:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BadInputError(f"archive member {name!r} would escape the model directory")
    return path


def unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive refusing absolute paths, '..', links and devices."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _safe_member(info.filename)
                mode = (info.external_attr >> 16) & 0o170000
                if mode and mode not in (0o100000, 0o040000):
                    raise BadInputError(f"archive member {info.filename!r} is not a plain file")
                target = into.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        return
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 - closed by the with-block below
    except tarfile.TarError as exc:
        raise BadInputError(f"{archive} is neither a zip nor a tar archive ({exc})") from None
    with tf:
        for member in tf.getmembers():
            rel = _safe_member(member.name)
            target = into.joinpath(*rel.parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                member_file = tf.extractfile(member)
                if member_file is None:
                    raise BadInputError(f"archive member {member.name!r} cannot be read")
                with member_file as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                raise BadInputError(f"archive member {member.name!r} is a link or device")


def _model_root(unpacked: Path) -> Path:
    """The directory holding am/ (archives usually wrap the model in one folder)."""
    for candidate in [unpacked, *sorted(p for p in unpacked.rglob("*") if p.is_dir())]:
        if (candidate / "am").is_dir() or (candidate / "final.mdl").is_file():
            return candidate
    raise BadInputError("the archive holds no Vosk model (no am/ directory)")


def install_archive(archive: Path, dest_root: Path, name: str | None = None) -> Path:
    """Unpack ``archive`` into ``dest_root/<name>`` atomically; return the model dir."""
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=".unpack-") as tmp:
        unpack(archive, Path(tmp))
        root = _model_root(Path(tmp))
        name = name or (root.name if root != Path(tmp) else archive.name.split(".")[0])
        files = {
            str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
        }
        (root / MANIFEST).write_text(json.dumps(files, indent=1))
        final = dest_root / name
        staged = dest_root / f".{name}.new"
        shutil.rmtree(staged, ignore_errors=True)
        os.replace(root, staged)
        if final.exists():
            old = dest_root / f".{name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(staged, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staged, final)
        _fsync_dir(dest_root)
    return final


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pull(
    settings: Settings,
    name: str = DEFAULT_MODEL,
    archive: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Install a model from a local archive or its official download."""
    dest_root = models_dir(settings)
    if archive is not None:
        if not archive.is_file():
            raise BadInputError(f"{archive}: no such file")
        if sha256 and sha256_file(archive) != sha256:
            raise DownloadError(f"{archive} does not match the given SHA-256")
        return install_archive(archive, dest_root, None if name == DEFAULT_MODEL else name)
    known = KNOWN_MODELS.get(name)
    if known is None and url is None:
        raise BadInputError(
            f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)} "
            "(or give --url and --sha256, or --from ARCHIVE)"
        )
    source = url or (known.url if known else "")
    digest = sha256 or (known.sha256 if known else None)
    if digest is None:
        raise BadInputError("a download needs --sha256 so the file can be verified")
    downloaded = download(source, dest_root / f".{name}.download", digest)
    try:
        return install_archive(downloaded, dest_root, name)
    finally:
        downloaded.unlink(missing_ok=True)


def installed(settings: Settings) -> list[Path]:
    root = models_dir(settings)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def verify(model: Path) -> list[str]:
    """Problems with an installed model (empty when every file matches its record)."""
    if not model.is_dir():
        raise ModelMissingError(f"{model} does not exist")
    record = model / MANIFEST
    if not record.is_file():
        return [f"{model}: no file record (installed by hand?); cannot verify"]
    try:
        files: dict[str, str] = json.loads(record.read_text())
    except (OSError, ValueError) as exc:
        return [f"{record}: unreadable ({exc})"]
    problems = []
    for rel, digest in files.items():
        path = model / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{rel}: changed")
    return problems
