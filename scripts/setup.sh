#!/usr/bin/env bash
# One command to set up a development machine or a Raspberry Pi checkout:
# system packages, a Python 3.11 virtual environment in .venv, the project and its test tools.
# Safe to re-run. Use scripts/install.sh instead for a system-wide appliance install.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3-venv python3-dev build-essential   # venv and building pyalsaaudio
  libasound2-dev alsa-utils                  # ALSA headers, arecord/aplay
  mosquitto mosquitto-clients                # the broker the MQTT tests start
  systemd                                    # systemd-analyze for the unit tests
  systemd-container                          # systemd-nspawn for scripts/nspawn-test.sh
  librsvg2-bin                               # renders the wiring diagrams in hardware/
  libspeexdsp1                               # the echo canceller (loaded through ctypes)
  espeak-ng sox                              # voices, noise and reverb of the wake corpus
  iproute2                                   # ip netns: the satellite's zeroconf test on a private network
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
  echo "==> not a Debian system: install ALSA headers, mosquitto and Python 3.11 yourself" >&2
fi

# tflite-runtime (the wake word engine) has wheels for Python 3.11 only.
PY=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY="$candidate"; break
  fi
done
if [ -z "$PY" ]; then
  echo "error: Python 3.11 is needed (Raspberry Pi OS Bookworm and Debian 12 ship it)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
echo "==> installing the project into .venv"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
echo "==> done. Run the tests: scripts/test.sh   Start the assistant: .venv/bin/ttbt5 run"
