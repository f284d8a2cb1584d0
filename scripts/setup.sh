#!/usr/bin/env bash
# One command to set up a development machine or a Raspberry Pi checkout:
# system packages, a Python (3.11-3.13) virtual environment in .venv, the project and its test tools.
# Safe to re-run. Use scripts/install.sh instead for a system-wide appliance install.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv python3-dev build-essential   # venv and building pyalsaaudio
  swig                                       # building lgpio on a Pi with Python 3.13 (no wheel)
  libasound2-dev alsa-utils                  # ALSA headers, arecord/aplay
  mosquitto mosquitto-clients                # the broker the MQTT tests start
  systemd                                    # systemd-analyze for the unit tests
  systemd-container                          # systemd-nspawn for scripts/nspawn-test.sh
  librsvg2-bin                               # renders the wiring diagrams in hardware/
  libspeexdsp1                               # the echo canceller (loaded through ctypes)
  espeak-ng sox                              # voices, noise and reverb of the wake corpus
  iproute2                                   # ip netns: the satellite's zeroconf test on a private network
  flite festival festvox-kallpc16k           # more voices for the speech corpus
  festvox-kdlpc16k festvox-us-slt-hts
)

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "==> not a Debian system: install ALSA headers, mosquitto and Python 3.11-3.13 yourself" >&2
fi

# Python 3.11-3.13, 64-bit: Raspberry Pi OS Bookworm / Debian 12 ship 3.11, Trixie / Debian 13
# ship 3.13. PYTHON=... picks another interpreter; otherwise the system's python3 first.
supported='import struct, sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13) and struct.calcsize("P") == 8))'
PY=""
for candidate in ${PYTHON:-python3 python3.13 python3.12 python3.11}; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "$supported" 2>/dev/null; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  echo "error: a 64-bit Python 3.11, 3.12 or 3.13 is needed (Raspberry Pi OS Bookworm ships 3.11," \
    "Trixie 3.13; a 32-bit system cannot run the speech engines: flash the 64-bit image)" >&2
  exit 1
fi

VENV="${VENV:-.venv}"
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "$supported" 2>/dev/null; then
  echo "==> $VENV holds an unsupported Python: making it again with $PY"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
  "$PY" -m venv "$VENV"
fi
# lgpio has no wheel for Python 3.13: PYPI=1 is its build's switch to compile its C library
# in (as its wheels do) instead of linking Raspberry Pi OS's liblgpio, which Debian lacks
export PYPI=1
echo "==> installing the project into $VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[dev]"
echo "==> done. Run the tests: scripts/test.sh   Start the assistant: $VENV/bin/ttbt5 run"
