#!/usr/bin/env bash
# Update this device now: fetch the latest release, verify its signature, install it
# beside the running one, switch, and roll back by itself if it does not come up healthy.
# Options before the update's own (--force, --version V) select config and paths:
#   sudo scripts/ota-update.sh                 # latest release from update.url
#   sudo scripts/ota-update.sh --version 1.4.0 --force
#   sudo scripts/ota-update.sh --config /etc/ttbt5/config.toml --debug
# Exit status: 0 installed and healthy (or already up to date), 1 refused, failed or
# rolled back, 2 bad usage or config. See docs/updates.md.
set -euo pipefail

PYTHON="${TTBT5_PYTHON:-/opt/ttbt5/current/venv/bin/python}"
if ! [ -x "$PYTHON" ] && ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "ota-update.sh: $PYTHON not found (is TTBT5 installed? set TTBT5_PYTHON)" >&2
    exit 2
fi

GLOBAL=()
UPDATE=()
while [ $# -gt 0 ]; do
    case "$1" in
        --config|--root|--url|--public-key) GLOBAL+=("$1" "$2"); shift 2 ;;
        --debug) GLOBAL+=("$1"); shift ;;
        *) UPDATE+=("$1"); shift ;;
    esac
done
exec "$PYTHON" -m firmware_app.ota "${GLOBAL[@]}" update "${UPDATE[@]}"
