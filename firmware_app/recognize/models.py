"""Speech models: what is installed, fetching the English Vosk and Whisper models,
checking them.

A pull downloads to a ``.part`` file (resumed with an HTTP Range request when a previous
attempt was cut), checks the pinned SHA-256, unpacks into a temporary directory next to the
destination, records every file's hash, and renames into place: a model directory is
either complete or absent, never half there. A model published as separate files (the
CTranslate2 Whisper models) has each file pinned; they are fetched into a staging
directory that survives a failed pull, so the next pull resumes where it stopped.
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
    """The archive's URL; for a model of separate ``files``, the URL they are under."""
    sha256: str
    size_mb: int
    files: tuple[tuple[str, str], ...] = ()
    """(file name, SHA-256) of each file, for a model published as separate files."""


KNOWN_MODELS = {
    "vosk-model-small-en-us-0.15": KnownModel(
        "vosk-model-small-en-us-0.15",
        "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
        "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
        40,
    ),
    # Whisper tiny.en converted for CTranslate2 (float16 weights, quantized to int8 when
    # loaded), pinned to one revision of the published files.
    "faster-whisper-tiny.en": KnownModel(
        "faster-whisper-tiny.en",
        "https://huggingface.co/Systran/faster-whisper-tiny.en/resolve/"
        "0d3d19a32d3338f10357c0889762bd8d64bbdeba/",
        "",
        78,
        files=(
            ("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
            ("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
            ("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
            ("vocabulary.txt", "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
        ),
    ),
}
DEFAULT_MODEL = "vosk-model-small-en-us-0.15"
DEFAULT_WHISPER_MODEL = "faster-whisper-tiny.en"


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


def _is_model(path: Path) -> bool:
    """A Vosk model (``am/``) or a CTranslate2 Whisper model (``model.bin``, ``config.json``)."""
    vosk = (path / "am").is_dir() or (path / "final.mdl").is_file()
    return vosk or ((path / "model.bin").is_file() and (path / "config.json").is_file())


def _model_root(unpacked: Path) -> Path:
    """The directory holding the model (archives usually wrap it in one folder)."""
    for candidate in [unpacked, *sorted(p for p in unpacked.rglob("*") if p.is_dir())]:
        if _is_model(candidate):
            return candidate
    raise BadInputError(
        "the archive holds no Vosk model (no am/ directory) nor a Whisper model (no model.bin)"
    )


def install_archive(archive: Path, dest_root: Path, name: str | None = None) -> Path:
    """Unpack ``archive`` into ``dest_root/<name>`` atomically; return the model dir."""
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=".unpack-") as tmp:
        unpack(archive, Path(tmp))
        root = _model_root(Path(tmp))
        name = name or (root.name if root != Path(tmp) else archive.name.split(".")[0])
        return install_dir(root, dest_root, name)


def install_dir(root: Path, dest_root: Path, name: str) -> Path:
    """Record every file's hash in ``root`` and rename it to ``dest_root/<name>`` (on the
    same filesystem), replacing an older copy in one step."""
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


def pull_files(
    base_url: str, files: tuple[tuple[str, str], ...], dest_root: Path, name: str
) -> Path:
    """Fetch a model published as separate files, each checked against its pinned hash,
    and install them together. The staging directory is kept when a file fails, so a
    later pull resumes the cut file and skips the finished ones."""
    staging = dest_root / f".{name}.download"
    staging.mkdir(parents=True, exist_ok=True)
    base = base_url if base_url.endswith("/") else base_url + "/"
    for file_name, digest in files:
        target = staging / file_name
        if target.is_file() and sha256_file(target) == digest:
            continue  # fetched by an earlier pull
        target.unlink(missing_ok=True)
        logger.info("fetching {}", file_name)
        download(base + file_name, target, digest)
    return install_dir(staging, dest_root, name)


def _install_copy(source: Path, dest_root: Path, name: str | None) -> Path:
    """Install a copy of a model directory (its plain files only: no links)."""
    if not _is_model(source):
        raise BadInputError(f"{source} is neither a Vosk nor a Whisper model directory")
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=".copy-") as tmp:
        root = Path(tmp) / "model"
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if path.is_symlink() or rel.parts[0] == MANIFEST:
                continue
            if path.is_dir():
                (root / rel).mkdir(parents=True, exist_ok=True)
            elif path.is_file():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, root / rel)
        return install_dir(root, dest_root, name or source.name)


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
    if archive is not None and archive.is_dir():  # a model directory carried over
        return _install_copy(archive, dest_root, None if name == DEFAULT_MODEL else name)
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
    if known is not None and known.files:  # pinned file by file; --url: a mirror of them
        return pull_files(url or known.url, known.files, dest_root, name)
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
