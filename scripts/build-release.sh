#!/usr/bin/env bash
# Build a signed TTBT5 release: the app wheel plus a wheelhouse of every dependency for
# the target (so devices install offline), bundled with a manifest signed by KEY.
# The output directory is what the release server publishes. See docs/updates.md.
#
#   scripts/build-release.sh --key release.key --out public/            # for 64-bit Pi OS
#   scripts/build-release.sh --key release.key --out public/ --native   # on the Pi itself
set -euo pipefail

usage() {
    cat <<'EOF_USAGE'
usage: build-release.sh --key PRIVATE_KEY --out DIR [options]
  --key FILE          Ed25519 private key (PEM) from `python -m firmware_app.ota keygen`
  --out DIR           directory to publish (gets ttbt5-<v>.tar, ttbt5-<v>.json, latest.json)
  --version V         release version (default: the one in pyproject.toml)
  --min-from V        oldest installed version this release may update
  --no-latest         stage the release without announcing it in latest.json
  --wheelhouse DIR    use these wheels instead of downloading (the app wheel is built
                      unless DIR already holds ttbt5-<v>-*.whl)
  --native            build every wheel here with `pip wheel` (run on the target itself)
  --platform TAG      wheel platform for cross builds (repeatable; default: Pi OS 64-bit)
  --python PY         interpreter with the project's dependencies (default: .venv/bin/python)
Cross builds take wheels only; packages without wheels for the target on PyPI (e.g.
pyalsaaudio) come from piwheels: export PIP_EXTRA_INDEX_URL=https://www.piwheels.org/simple
EOF_USAGE
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KEY=""; OUT=""; VERSION=""; MIN_FROM=""; NO_LATEST=0; WHEELHOUSE=""; NATIVE=0
PLATFORMS=()
PYTHON="$HERE/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON="python3"

while [ $# -gt 0 ]; do
    case "$1" in
        --key) KEY="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --version) VERSION="$2"; shift 2 ;;
        --min-from) MIN_FROM="$2"; shift 2 ;;
        --no-latest) NO_LATEST=1; shift ;;
        --wheelhouse) WHEELHOUSE="$2"; shift 2 ;;
        --native) NATIVE=1; shift ;;
        --platform) PLATFORMS+=("$2"); shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build-release.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$KEY" ] || [ -z "$OUT" ]; then usage >&2; exit 2; fi
[ -f "$KEY" ] || { echo "build-release.sh: no key file $KEY" >&2; exit 2; }
if [ ${#PLATFORMS[@]} -eq 0 ]; then
    PLATFORMS=(manylinux_2_36_aarch64 manylinux_2_28_aarch64 manylinux_2_17_aarch64
               manylinux2014_aarch64 linux_aarch64)
fi
if [ -z "$VERSION" ]; then
    VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$HERE/pyproject.toml")"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
WHEELS="$WORK/wheels"
mkdir -p "$WHEELS"
PIP=("$PYTHON" -m pip --disable-pip-version-check --no-input)

if [ -n "$WHEELHOUSE" ]; then
    cp "$WHEELHOUSE"/*.whl "$WHEELS"/
fi
if ! ls "$WHEELS"/ttbt5-"$VERSION"-*.whl >/dev/null 2>&1; then
    echo "build-release.sh: building the app wheel $VERSION"
    "${PIP[@]}" wheel --no-deps --wheel-dir "$WHEELS" "$HERE"
fi
APP_WHEEL="$(find "$WHEELS" -maxdepth 1 -name "ttbt5-$VERSION-*.whl" | head -n1)"

if [ -z "$WHEELHOUSE" ]; then
    if [ "$NATIVE" -eq 1 ]; then
        echo "build-release.sh: building the wheelhouse for this machine"
        "${PIP[@]}" wheel --wheel-dir "$WHEELS" "$APP_WHEEL" pip
    else
        echo "build-release.sh: downloading the wheelhouse for ${PLATFORMS[*]}"
        PLATFORM_ARGS=()
        for platform in "${PLATFORMS[@]}"; do PLATFORM_ARGS+=(--platform "$platform"); done
        "${PIP[@]}" download --dest "$WHEELS" --only-binary=:all: --implementation cp \
            --python-version 3.11 --abi cp311 --abi abi3 --abi none \
            "${PLATFORM_ARGS[@]}" "$APP_WHEEL" pip
    fi
fi

ARGS=(build --version "$VERSION" --wheelhouse "$WHEELS" --key "$KEY" --out "$OUT")
[ -n "$MIN_FROM" ] && ARGS+=(--min-from "$MIN_FROM")
[ "$NO_LATEST" -eq 1 ] && ARGS+=(--no-latest)
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m firmware_app.ota "${ARGS[@]}"
