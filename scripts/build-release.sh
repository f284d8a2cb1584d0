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
Cross builds take wheels for Raspberry Pi OS 64-bit from PyPI, for Bookworm (cp311,
glibc 2.36) and Trixie (cp313, glibc 2.41) in one bundle, and check every file's tags;
pyalsaaudio, which has no such wheel, is bundled as source and compiled by the updater on
the device. --platform applies to every target Python.
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
if [ -z "$VERSION" ]; then
    VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$HERE/pyproject.toml")"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
WHEELS="$WORK/wheels"
mkdir -p "$WHEELS"
PIP=("$PYTHON" -m pip --disable-pip-version-check --no-input)

if [ -n "$WHEELHOUSE" ]; then
    find "$WHEELHOUSE" -maxdepth 1 -type f \( -name "*.whl" -o -name "*.tar.gz" \) -exec cp {} "$WHEELS"/ \;
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
        WH=(env PYTHONPATH="$HERE" "$PYTHON" -m firmware_app.ota.wheelhouse)
        : > "$WORK/sources.txt"
        for py in $("${WH[@]}" targets); do
            abi="cp${py/./}"
            PLATFORM_ARGS=()
            if [ ${#PLATFORMS[@]} -gt 0 ]; then
                for platform in "${PLATFORMS[@]}"; do PLATFORM_ARGS+=(--platform "$platform"); done
            else
                # every manylinux tag the target's glibc accepts: pip does not widen a
                # --platform by itself
                while read -r platform; do PLATFORM_ARGS+=(--platform "$platform"); done \
                    < <("${WH[@]}" platforms "$py")
            fi
            echo "build-release.sh: downloading the wheelhouse for Python $py ($abi, aarch64)"
            # the app's dependencies as the target sees them (markers evaluated for it)
            "${WH[@]}" requirements "$APP_WHEEL" wheels "$py" > "$WORK/wheels.txt"
            "${WH[@]}" requirements "$APP_WHEEL" sources "$py" >> "$WORK/sources.txt"
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                if "${PIP[@]}" download --dest "$WHEELS" --find-links "$WHEELS" \
                    --only-binary=:all: --implementation cp --python-version "$py" \
                    --abi "$abi" --abi abi3 --abi none "${PLATFORM_ARGS[@]}" \
                    -r "$WORK/wheels.txt" pip 2> "$WORK/pip.err"; then
                    break
                fi
                missing="$(sed -n 's/.*No matching distribution found for \([^ ]*\).*/\1/p' "$WORK/pip.err" | head -n1)"
                if [ -z "$missing" ]; then cat "$WORK/pip.err" >&2; exit 1; fi
                # published as source only: a wheel built here, which the check below
                # accepts only if it came out pure Python (py3-none-any)
                echo "build-release.sh: no wheel for $missing on PyPI, building one here"
                "${PIP[@]}" wheel --wheel-dir "$WHEELS" --no-deps --no-binary=:all: "$missing"
            done
        done
        sort -u -o "$WORK/sources.txt" "$WORK/sources.txt"
        if [ -s "$WORK/sources.txt" ]; then
            # no wheel for the target: the source and its build tools, compiled on the device
            "${PIP[@]}" download --dest "$WHEELS" --no-deps --no-binary=:all: -r "$WORK/sources.txt"
            "${PIP[@]}" download --dest "$WHEELS" --no-deps --only-binary=:all: setuptools wheel
        fi
        PYTHONPATH="$HERE" "$PYTHON" -m firmware_app.ota.wheelhouse check "$WHEELS"
    fi
fi

ARGS=(build --version "$VERSION" --wheelhouse "$WHEELS" --key "$KEY" --out "$OUT")
[ -n "$MIN_FROM" ] && ARGS+=(--min-from "$MIN_FROM")
[ "$NO_LATEST" -eq 1 ] && ARGS+=(--no-latest)
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m firmware_app.ota "${ARGS[@]}"
