"""Release bundles: signing, verification and safe unpacking against hostile tar files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from ota_support import signed_tar as write_tar

from firmware_app.ota.__main__ import main as ota_main
from firmware_app.ota.bundle import (
    BundleError,
    build_bundle,
    check_name,
    collect_files,
    unpack_bundle,
    verify_bundle,
)
from firmware_app.ota.manifest import (
    SignatureError,
    UpdateError,
    generate_keys,
    load_private_key,
    load_public_key,
    new_manifest,
    sign,
)
from firmware_app.ota.pointer import open_pointer


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "k.key", tmp_path / "k.pub"
    generate_keys(private, public)
    return private, public


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    wheels = tmp_path / "src" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / "ttbt5-1.0.0-py3-none-any.whl").write_bytes(b"app wheel" * 10000)
    (wheels / "dep-2.0-py3-none-any.whl").write_bytes(b"dependency")
    return tmp_path / "src"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info


def test_build_verify_unpack_roundtrip(tmp_path: Path, keys: tuple[Path, Path], wheelhouse: Path):
    private, public = keys
    bundle = tmp_path / "b.tar"
    files = collect_files(wheelhouse)
    made = build_bundle(files, "1.0.0", load_private_key(private), bundle, "0.9")
    manifest = verify_bundle(bundle, load_public_key(public))
    assert manifest == made
    assert manifest.min_from_version == "0.9"
    assert set(manifest.files) == {
        "wheels/ttbt5-1.0.0-py3-none-any.whl",
        "wheels/dep-2.0-py3-none-any.whl",
    }
    dest = tmp_path / "out"
    unpack_bundle(bundle, dest, manifest)
    for name, source in files.items():
        assert (dest / name).read_bytes() == source.read_bytes()
        assert (dest / name).stat().st_mode & 0o777 == 0o644
    assert json.loads((dest / "manifest.json").read_bytes())["version"] == "1.0.0"


def test_tampered_manifest_is_rejected(tmp_path: Path, keys: tuple[Path, Path]):
    private, public = keys
    data = b"original"
    forged = new_manifest("9.9.9", {"wheels/a.whl": _sha(data)}, None).to_json()
    bundle = tmp_path / "b.tar"
    write_tar(bundle, private, [(reg("wheels/a.whl"), data)], manifest_override=forged)
    with pytest.raises(SignatureError):
        verify_bundle(bundle, load_public_key(public))


def test_tampered_file_is_rejected(tmp_path: Path, keys: tuple[Path, Path]):
    private, public = keys
    bundle = tmp_path / "b.tar"
    write_tar(bundle, private, [(reg("wheels/a.whl"), b"evil")], listed={"wheels/a.whl": b"good"})
    with pytest.raises(BundleError, match="does not match its SHA-256"):
        verify_bundle(bundle, load_public_key(public))


def test_wrong_key_is_rejected(tmp_path: Path, keys: tuple[Path, Path], wheelhouse: Path):
    private, _ = keys
    other_private, other_public = tmp_path / "o.key", tmp_path / "o.pub"
    generate_keys(other_private, other_public)
    bundle = tmp_path / "b.tar"
    build_bundle(collect_files(wheelhouse), "1.0.0", load_private_key(private), bundle)
    with pytest.raises(SignatureError, match="not valid for the configured key"):
        verify_bundle(bundle, load_public_key(other_public))


def test_truncated_bundle_is_rejected(tmp_path: Path, keys: tuple[Path, Path], wheelhouse: Path):
    private, public = keys
    bundle = tmp_path / "b.tar"
    build_bundle(collect_files(wheelhouse), "1.0.0", load_private_key(private), bundle)
    bundle.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    with pytest.raises(BundleError):
        verify_bundle(bundle, load_public_key(public))


@pytest.mark.parametrize(
    ("member", "data", "message"),
    [
        (reg("../escape.txt"), b"x", "not a plain relative path"),
        (reg("wheels/../../escape.txt"), b"x", "not a plain relative path"),
        (reg("/tmp/escape.txt"), b"x", "absolute path"),
        (special("wheels/link.whl", tarfile.SYMTYPE, "/etc/passwd"), None, "is a link"),
        (special("wheels/hard.whl", tarfile.LNKTYPE, "manifest.json"), None, "is a link"),
        (special("wheels/null", tarfile.CHRTYPE), None, "device"),
        (special("wheels/fifo", tarfile.FIFOTYPE), None, "device, fifo"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "chardev", "fifo"],
)
def test_hostile_members_are_rejected_even_when_signed(
    tmp_path: Path,
    keys: tuple[Path, Path],
    member: tarfile.TarInfo,
    data: bytes | None,
    message: str,
):
    private, public = keys
    bundle = tmp_path / "sub" / "b.tar"
    bundle.parent.mkdir()
    listed = {"wheels/a.whl": b"ok"} | ({member.name: data} if data is not None else {})
    write_tar(bundle, private, [(reg("wheels/a.whl"), b"ok"), (member, data)], listed=listed)
    with pytest.raises(BundleError, match=message):
        verify_bundle(bundle, load_public_key(public))
    # unpack checks again by itself, and writes nothing outside its directory
    manifest = new_manifest("1.0.0", {k: _sha(v) for k, v in listed.items()}, None)
    with pytest.raises(BundleError):
        unpack_bundle(bundle, tmp_path / "sub" / "out", manifest)
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/escape.txt").exists()


def test_duplicate_extra_and_missing_members(tmp_path: Path, keys: tuple[Path, Path]):
    private, public = keys
    key = load_public_key(public)
    dup = tmp_path / "dup.tar"
    write_tar(dup, private, [(reg("wheels/a.whl"), b"ok"), (reg("wheels/a.whl"), b"ok")])
    with pytest.raises(BundleError, match="appears twice"):
        verify_bundle(dup, key)
    extra = tmp_path / "extra.tar"
    write_tar(
        extra,
        private,
        [(reg("wheels/a.whl"), b"ok"), (reg("wheels/x.whl"), b"?")],
        listed={"wheels/a.whl": b"ok"},
    )
    with pytest.raises(BundleError, match="does not list"):
        verify_bundle(extra, key)
    missing = tmp_path / "missing.tar"
    write_tar(
        missing,
        private,
        [(reg("wheels/a.whl"), b"ok")],
        listed={"wheels/a.whl": b"ok", "wheels/b.whl": b"b"},
    )
    with pytest.raises(BundleError, match="lacks a file"):
        verify_bundle(missing, key)


def test_unsigned_bundle_is_rejected(tmp_path: Path, keys: tuple[Path, Path]):
    _, public = keys
    bundle = tmp_path / "b.tar"
    raw = new_manifest("1.0.0", {"wheels/a.whl": _sha(b"ok")}, None).to_json()
    with tarfile.open(bundle, "w") as tar:
        for name, data in (("manifest.json", raw), ("wheels/a.whl", b"ok")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleError, match=r"no manifest\.sig"):
        verify_bundle(bundle, load_public_key(public))


def test_unpack_rehashes_a_bundle_swapped_after_verification(
    tmp_path: Path, keys: tuple[Path, Path]
):
    private, public = keys
    good, bad = tmp_path / "good.tar", tmp_path / "bad.tar"
    write_tar(good, private, [(reg("wheels/a.whl"), b"good")])
    write_tar(bad, private, [(reg("wheels/a.whl"), b"evil")], listed={"wheels/a.whl": b"good"})
    manifest = verify_bundle(good, load_public_key(public))
    with pytest.raises(BundleError, match="changed after it was verified"):
        unpack_bundle(bad, tmp_path / "out", manifest)


def test_signed_but_malformed_manifest(tmp_path: Path, keys: tuple[Path, Path]):
    private, public = keys
    raw = json.dumps(
        {
            "format": 1,
            "name": "ttbt5",
            "version": "not a version",
            "created": "x",
            "files": {"a": "0" * 64},
        }
    ).encode()
    bundle = tmp_path / "b.tar"
    with tarfile.open(bundle, "w") as tar:
        for name, data in (
            ("manifest.json", raw),
            ("manifest.sig", sign(raw, load_private_key(private))),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(UpdateError, match="not a valid version"):
        verify_bundle(bundle, load_public_key(public))


@pytest.mark.parametrize("name", ["a/./b", "./a", "a\\b", "", "a\0b", "x/" * 9 + "y"])
def test_unsafe_names(name: str):
    with pytest.raises(BundleError):
        check_name(name)


def test_cli_keygen_build_verify(
    tmp_path: Path, wheelhouse: Path, capsys: pytest.CaptureFixture[str]
):
    private, public = tmp_path / "r.key", tmp_path / "r.pub"
    assert ota_main(["keygen", str(private), str(public)]) == 0
    assert private.stat().st_mode & 0o777 == 0o600
    assert ota_main(["keygen", str(private), str(public)]) == 1  # never overwrites a key
    site = tmp_path / "site"
    args = ["build", "--version", "1.0.0", "--wheelhouse", str(wheelhouse / "wheels")]
    assert ota_main([*args, "--key", str(private), "--out", str(site)]) == 0
    key = load_public_key(public)
    raw = (site / "latest.json").read_bytes()
    pointer = open_pointer(raw, key, hardware="linux-aarch64", min_serial=None)
    assert (pointer.version, pointer.bundle) == ("1.0.0", "ttbt5-1.0.0.tar")
    assert pointer.size == (site / "ttbt5-1.0.0.tar").stat().st_size
    assert pointer.hardware == ("any",)  # pure-Python wheels only
    assert 13.9 * 86400 < pointer.expires - time.time() < 14.1 * 86400
    # renewed by the server's cron: a newer serial and a new expiry, same release
    renew = ["renew", str(site / "latest.json"), "--key", str(private), "--expires-days", "2"]
    assert ota_main([*renew, "--serial", str(pointer.serial + 5)]) == 0
    renewed = open_pointer(
        (site / "latest.json").read_bytes(), key, hardware="x", min_serial=pointer.serial
    )
    assert renewed.serial == pointer.serial + 5 and renewed.sha256 == pointer.sha256
    assert 1.9 * 86400 < renewed.expires - time.time() < 2.1 * 86400
    with pytest.raises(UpdateError, match="older than"):  # the replayed original
        open_pointer(raw, key, hardware="x", min_serial=renewed.serial)
    forged = json.loads(raw)
    forged["signed"] = forged["signed"].replace('"1.0.0"', '"1.0.1"')
    with pytest.raises(UpdateError, match="pointer signature is not valid"):
        open_pointer(json.dumps(forged).encode(), key, hardware="x", min_serial=None)
    assert ota_main(["verify", str(site / "ttbt5-1.0.0.tar"), "--public-key", str(public)]) == 0
    other_private, other_public = tmp_path / "o.key", tmp_path / "o.pub"
    generate_keys(other_private, other_public)
    capsys.readouterr()
    assert (
        ota_main(["verify", str(site / "ttbt5-1.0.0.tar"), "--public-key", str(other_public)]) == 1
    )
    assert "signature is not valid" in capsys.readouterr().err
    # a manifest signed with ``sign`` verifies with the public key
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(new_manifest("1.0.0", {"a": "0" * 64}, None).to_json())
    assert ota_main(["sign", str(manifest), "--key", str(private)]) == 0
    from firmware_app.ota.manifest import verify

    verify(manifest.read_bytes(), (tmp_path / "manifest.sig").read_bytes(), load_public_key(public))
    # the private key never appears in output
    out = capsys.readouterr()
    assert "PRIVATE KEY" not in out.out + out.err


def test_a_bundle_serves_bookworm_and_trixie_or_says_which_it_lacks() -> None:
    """One bundle for both Raspberry Pi OS releases: each project needs a file for
    Python 3.11 and for 3.13 (pure and abi3 wheels serve both)."""
    from firmware_app.ota.wheelhouse import check

    both = [
        "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "numpy-2.2.6-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "pymicro_features-2.0.2-cp39-abi3-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
        "hassil-3.4.0-py3-none-any.whl",
        "pyalsaaudio-0.11.0.tar.gz",
    ]
    assert check(both) == []
    one = [*both[:1], *both[2:]]
    assert check(one) == ["numpy: no file for cp313"]
    newer_glibc = "x-1.0-cp313-cp313-manylinux_2_39_aarch64.whl"  # fits Trixie only
    assert check([*both, newer_glibc]) == ["x: no file for cp311"]
    assert "no tag fits" in check(["x-1.0-cp312-cp312-manylinux_2_17_aarch64.whl"])[0]
    # lgpio has wheels up to 3.12: Trixie compiles it from source, Bookworm takes the wheel
    lgpio = ["lgpio-0.2.2.0-cp311-cp311-manylinux_2_34_aarch64.whl", "lgpio-0.2.2.0.tar.gz"]
    assert check([*both, *lgpio]) == []
    assert check([*both, lgpio[1]]) == ["lgpio: no file for cp311"]


def test_the_updater_takes_the_files_for_its_own_python() -> None:
    """A bundle for Bookworm and Trixie holds two numpy builds (and versions) and lgpio as a
    cp311 wheel and as source: each Python installs its own, the other is left alone."""
    from packaging.tags import Tag

    from firmware_app.ota.install import requirements
    from firmware_app.ota.manifest import Manifest

    files = {
        "wheels/ttbt5-0.2.0-py3-none-any.whl": "a" * 64,
        "wheels/numpy-2.4.6-cp311-cp311-manylinux_2_17_aarch64.whl": "b" * 64,
        "wheels/numpy-2.5.5-cp313-cp313-manylinux_2_17_aarch64.whl": "c" * 64,
        "wheels/lgpio-0.2.2.0-cp311-cp311-manylinux_2_34_aarch64.whl": "d" * 64,
        "wheels/lgpio-0.2.2.0.tar.gz": "e" * 64,
        "wheels/setuptools-80.0.0-py3-none-any.whl": "f" * 64,
    }
    manifest = Manifest(version="0.2.0", min_from_version=None, files=files, created="now")

    def on(py: str) -> tuple[list[str], list[str], list[str]]:
        platform = "manylinux_2_17_aarch64"
        tags = {Tag(py, py, platform), Tag("py3", "none", "any")}
        if py == "cp311":
            tags.add(Tag(py, py, "manylinux_2_34_aarch64"))
        return requirements(manifest, "0.2.0", frozenset(tags))

    _, wheels, sources = on("cp311")
    assert any(w.startswith("numpy==2.4.6 ") for w in wheels)
    assert any(w.startswith("lgpio==0.2.2.0 ") for w in wheels) and sources == []
    tools, wheels, sources = on("cp313")
    assert any(w.startswith("numpy==2.5.5 ") for w in wheels)
    assert not any(w.startswith("lgpio") for w in wheels)
    assert [s.split()[0] for s in sources] == ["lgpio==0.2.2.0"]
    assert [t.split()[0] for t in tools] == ["setuptools==80.0.0"]
