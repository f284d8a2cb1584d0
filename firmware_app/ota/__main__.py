"""``python -m firmware_app.ota check|update|rollback|status|keygen|sign|build|renew|verify``.

Exit codes: 0 done, 1 refused or failed (one line on stderr says why), 2 bad usage or
configuration. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from loguru import logger

from firmware_app.config.settings import Settings, load_settings
from firmware_app.core.errors import ConfigError, TTBT5Error
from firmware_app.ota.bundle import build_bundle, collect_files, file_sha256, verify_bundle
from firmware_app.ota.layout import UntrustedFileError, remove_untrusted
from firmware_app.ota.manifest import (
    SIGNATURE_NAME,
    UpdateError,
    generate_keys,
    load_private_key,
    load_public_key,
    parse_version,
    sign,
)
from firmware_app.ota.pointer import (
    DEFAULT_EXPIRES_DAYS,
    make_pointer,
    new_pointer,
    read_signed,
    when,
)
from firmware_app.ota.remote import read_request
from firmware_app.ota.update import APP_NAME, MB, StepFailed, Updater
from firmware_app.ota.wheelhouse import bundle_hardware


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logger.remove()
    logger.add(
        sys.stderr,
        level="DEBUG" if args.debug else "INFO",
        format="{level: <7} {message}",
        backtrace=False,
        diagnose=False,
    )
    try:
        return args.func(args)
    except ConfigError as exc:
        _fail(args, exc)
        return 2
    except (TTBT5Error, OSError) as exc:
        _fail(args, exc)
        return 1


def _fail(args: argparse.Namespace, exc: BaseException) -> None:
    if args.debug:
        logger.opt(exception=exc).error("failed")
    print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    overrides = {
        key: value
        for key, value in (("root", args.root), ("url", args.url), ("public_key", args.public_key))
        if value is not None
    }
    if overrides:
        update = settings.update.model_copy(update=overrides)
        settings = settings.model_copy(update={"update": update})
    return settings


def _updater(
    args: argparse.Namespace,
    settings: Settings,
    run_id: str | None = None,
    python: str | None = None,
) -> Updater:
    shown = {"pct": -1}

    def progress(done: int, total: int | None) -> None:
        if not sys.stderr.isatty():
            return  # the log already has one line per quarter
        if total:
            pct = done * 100 // total
            if pct != shown["pct"]:
                shown["pct"] = pct
                print(
                    f"\rdownload {pct:3d}% ({done / MB:.1f}/{total / MB:.1f} MB)",
                    end="" if pct < 100 else "\n",
                    file=sys.stderr,
                    flush=True,
                )

    return Updater(
        settings.update,
        record=True,
        progress=progress,
        run_id=run_id,
        python=python or sys.executable,
    )


def _check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    updater = Updater(settings.update)
    try:
        latest = updater.check(args.version)
    except StepFailed:
        return 1
    installed = updater.installed_version()
    newer = installed is None or parse_version(latest.version) > parse_version(installed)
    print(
        f"installed {installed or 'none'}, latest {latest.version}: "
        f"{'update available' if newer else 'up to date'}"
    )
    return 0


def _update(args: argparse.Namespace) -> int:
    settings = _settings(args)
    force, version, run_id = args.force, args.version, None
    if args.request is not None:
        try:
            request = read_request(args.request)  # consumed, even when malformed
        except FileNotFoundError:
            request = None  # started by the timer or by hand: a plain update
        except UntrustedFileError:
            remove_untrusted(args.request)
            raise
    if args.request is not None and request is not None:
        run_id, version = request["id"], request["version"]
        force = request["force"] and settings.update.allow_remote_force
        if request["force"] and not force:
            logger.warning("remote 'force' ignored: update.allow_remote_force is off")
    updater = _updater(args, settings, run_id, args.python)
    return 0 if updater.update(force=force, version=version) else 1


def _rollback(args: argparse.Namespace) -> int:
    return 0 if _updater(args, _settings(args)).rollback() else 1


def _status(args: argparse.Namespace) -> int:
    print(json.dumps(Updater(_settings(args).update).status(), indent=2))
    return 0


def _keygen(args: argparse.Namespace) -> int:
    generate_keys(args.private, args.public)
    print(f"private key {args.private} (keep it off the devices), public key {args.public}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    out = args.out or args.manifest.with_name(SIGNATURE_NAME)
    out.write_bytes(sign(args.manifest.read_bytes(), load_private_key(args.key)))
    print(out)
    return 0


def _build(args: argparse.Namespace) -> int:
    """Bundle a wheelhouse (app wheel + dependencies) and write the server's pointers."""
    key = load_private_key(args.key)
    version = str(parse_version(args.version))
    wheels = collect_files(args.wheelhouse)
    if not any(Path(n).name.startswith(f"{APP_NAME}-{version}-") for n in wheels):
        raise UpdateError(f"{args.wheelhouse} has no {APP_NAME}-{version}-*.whl")
    files = {f"wheels/{name}": path for name, path in wheels.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    bundle = args.out / f"{APP_NAME}-{version}.tar"
    manifest = build_bundle(files, version, key, bundle, args.min_from)
    hardware = tuple(args.hardware) if args.hardware else bundle_hardware(list(wheels))
    pointer = new_pointer(
        version,
        bundle.name,
        bundle.stat().st_size,
        file_sha256(bundle),
        hardware=hardware,
        serial=args.serial,
        expires_days=args.expires_days,
    )
    text = make_pointer(pointer, key)
    _write_new(args.out / f"{APP_NAME}-{version}.json", text)
    if not args.no_latest:
        _write_new(args.out / "latest.json", text)
    print(
        f"{bundle} ({len(manifest.files)} files, {pointer.size / MB:.1f} MB, "
        f"sha256 {pointer.sha256[:12]}..., for {', '.join(hardware)}, serial {pointer.serial}, "
        f"expires {when(pointer.expires)})"
    )
    return 0


def _renew(args: argparse.Namespace) -> int:
    """Re-sign a pointer with a new serial and expiry: what a release server runs before
    the old expiry, so devices can tell a live server from a frozen one."""
    key = load_private_key(args.key)
    data = read_signed(args.pointer.read_bytes(), key.public_key())
    pointer = new_pointer(
        str(data["version"]),
        str(data["bundle"]),
        int(str(data["size"])),
        str(data["sha256"]),
        hardware=tuple(str(h) for h in data["hardware"]),  # type: ignore[attr-defined]
        serial=args.serial,
        expires_days=args.expires_days,
    )
    _write_new(args.pointer, make_pointer(pointer, key))
    expires = when(pointer.expires)
    print(f"{args.pointer}: {pointer.version}, serial {pointer.serial}, expires {expires}")
    return 0


def _write_new(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _verify(args: argparse.Namespace) -> int:
    manifest = verify_bundle(args.bundle, load_public_key(args.public_key))
    digest = hashlib.sha256(args.bundle.read_bytes()).hexdigest()
    print(
        f"{args.bundle}: version {manifest.version}, {len(manifest.files)} files verified, "
        f"sha256 {digest}"
    )
    return 0


def _pointer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--serial", type=int, help="pointer serial (default: the time in seconds)")
    p.add_argument(
        "--expires-days",
        type=float,
        default=DEFAULT_EXPIRES_DAYS,
        help=f"the pointer expires after this many days (default {DEFAULT_EXPIRES_DAYS:g})",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_app.ota", description="TTBT5 release bundles and updates"
    )
    parser.add_argument("--config", help="config file (default: /etc/ttbt5/config.toml)")
    parser.add_argument("--root", type=Path, help="update root (overrides update.root)")
    parser.add_argument("--url", help="release server (overrides update.url)")
    parser.add_argument("--public-key", type=Path, help="overrides update.public_key")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="show the installed and the latest version")
    p.add_argument("--version", help="ask about this version instead of the latest")
    p.set_defaults(func=_check)
    p = sub.add_parser("update", help="install the latest (or --version) release")
    p.add_argument("--force", action="store_true", help="allow a downgrade or reinstall")
    p.add_argument("--version", help="install this version instead of the latest")
    p.add_argument(
        "--request",
        type=Path,
        help="request file left by the service (consumed; absent: plain update)",
    )
    p.add_argument("--python", help="interpreter for the new release's venv (default: this one)")
    p.set_defaults(func=_update)
    p = sub.add_parser("rollback", help="switch back to the previous release")
    p.set_defaults(func=_rollback)
    p = sub.add_parser("status", help="installed, previous and kept releases as JSON")
    p.set_defaults(func=_status)
    p = sub.add_parser("keygen", help="make an Ed25519 signing key pair")
    p.add_argument("private", type=Path)
    p.add_argument("public", type=Path)
    p.set_defaults(func=_keygen)
    p = sub.add_parser("sign", help="sign a manifest.json")
    p.add_argument("manifest", type=Path)
    p.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    p.add_argument("--out", type=Path, help="signature file (default: manifest.sig beside it)")
    p.set_defaults(func=_sign)
    p = sub.add_parser("build", help="build a signed bundle from a wheelhouse")
    p.add_argument("--version", required=True)
    p.add_argument("--wheelhouse", type=Path, required=True)
    p.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    p.add_argument("--out", type=Path, required=True, help="directory to publish")
    p.add_argument("--min-from", help="oldest version this release may update")
    p.add_argument(
        "--no-latest",
        action="store_true",
        help="do not (re)write latest.json (stage without announcing)",
    )
    _pointer_options(p)
    p.add_argument(
        "--hardware",
        action="append",
        help="hardware the release is for, e.g. linux-aarch64 (default: from the wheels)",
    )
    p.set_defaults(func=_build)
    p = sub.add_parser("renew", help="re-sign a pointer with a new serial and expiry")
    p.add_argument("pointer", type=Path, help="latest.json (rewritten in place)")
    p.add_argument("--key", type=Path, required=True, help="private key (PEM)")
    _pointer_options(p)
    p.set_defaults(func=_renew)
    p = sub.add_parser("verify", help="verify a bundle against a public key")
    p.add_argument("bundle", type=Path)
    p.add_argument("--public-key", dest="public_key", type=Path, required=True)
    p.set_defaults(func=_verify)
    return parser


if __name__ == "__main__":
    sys.exit(main())
