#!/usr/bin/env bash
# The product under a real systemd: boots this machine's own OS in a throwaway
# systemd-nspawn container (an overlay of / on a tmpfs, private network, nothing left
# behind), runs install.sh for real and checks what only systemd can show:
#   - ttbt5.service active after READY=1, ttbt5-update.path started by install.sh
#   - a stalled audio loop killed by the watchdog and restarted
#   - an OTA update requested the way MQTT does it, committed
#   - two failing updates rolled back, and a third one still leaves the service running
#   - a compromised service user's links, FIFOs and planted code gain nothing
# The voice service is a stand-in speaking sd_notify (scripts/nspawn_release.py); the
# units, install.sh and the updater are the real ones.
#
#   sudo scripts/nspawn-test.sh          # exit 0 passed or skipped (says why), 1 failed
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$HERE/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
FAILED=0
STEP_TIMEOUT=300

say() { echo "nspawn-test: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
pass() { say "ok: $*"; }
fail() { say "FAILED: $*" >&2; FAILED=1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (it mounts an overlay and boots a container)"
command -v systemd-nspawn >/dev/null 2>&1 \
    || skip "systemd-nspawn is not installed (Debian: apt-get install systemd-container)"
[ -x /lib/systemd/systemd ] || skip "this machine has no systemd to boot"

WORK="$(mktemp -d /tmp/ttbt5-nspawn.XXXXXX)"
MNT="$WORK/mnt"
ROOTFS="$MNT/root"
NSPAWN_PID=""
LEADER=""

in_ct() {  # a command inside the container, with a clean environment
    nsenter -t "$LEADER" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 "$@"
}

cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        if [ -n "$LEADER" ]; then in_ct systemctl poweroff >/dev/null 2>&1 || true; fi
        for _ in $(seq 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    umount "$ROOTFS" 2>/dev/null || umount -l "$ROOTFS" 2>/dev/null || true
    umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$MNT"
mount -t tmpfs -o size=4G,mode=0755 tmpfs "$MNT" || skip "cannot mount a tmpfs here"
mkdir -p "$MNT/upper" "$MNT/work" "$ROOTFS"
mount -t overlay overlay -o "lowerdir=/,upperdir=$MNT/upper,workdir=$MNT/work" "$ROOTFS" \
    || skip "cannot mount an overlay of / here"

# ---------------------------------------------------------------- inputs
say "building the releases (stand-in service, real updater)"
"$PYTHON" "$HERE/scripts/nspawn_release.py" "$ROOTFS/srv/ttbt5" >"$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; skip "could not build the test releases (see above)"; }
mkdir -p "$ROOTFS/srv/ttbt5/src"
tar -C "$HERE" --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=__pycache__ \
    -cf - . | tar -C "$ROOTFS/srv/ttbt5/src" -xf -
tr -d '-' </proc/sys/kernel/random/uuid >"$ROOTFS/etc/machine-id"
# packages install.sh wants and this machine lacks: fetched into the overlay only
missing=""
for pkg in python3 python3-venv python3-pip python3-dev build-essential libasound2-dev \
    alsa-utils libopenblas0 swig; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    say "installing$missing into the container's overlay"
    # shellcheck disable=SC2086
    systemd-nspawn -q -D "$ROOTFS" --register=no --keep-unit \
        sh -c "apt-get install -y --no-install-recommends $missing" >"$WORK/apt.log" 2>&1 \
        || { tail -5 "$WORK/apt.log" >&2; skip "cannot install$missing into the container"; }
fi

# ------------------------------------------------------------------ boot
say "booting $(. /etc/os-release && echo "$PRETTY_NAME") in a container"
systemd-nspawn -q -D "$ROOTFS" --boot --private-network --register=no --keep-unit \
    -M "ttbt5-test-$$" --console=passive >"$WORK/boot.log" 2>&1 &
NSPAWN_PID=$!
for _ in $(seq 100); do
    # the container's PID 1 (nspawn forks helpers first: wait for systemd itself)
    LEADER="$(ps --ppid "$NSPAWN_PID" -o pid=,comm= 2>/dev/null | awk '$2 == "systemd" {print $1; exit}' || true)"
    [ -n "$LEADER" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.2
done
[ -n "$LEADER" ] || { cat "$WORK/boot.log" >&2; skip "systemd-nspawn could not start a container here"; }
state=""
for _ in $(seq 120); do
    state="$(in_ct systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
done
case "$state" in
    running|degraded) pass "systemd booted in the container ($state)" ;;
    *) cat "$WORK/boot.log" >&2; skip "systemd did not finish booting in the container ($state)" ;;
esac

# ------------------------------------------------------------ the checks
wait_for() {  # seconds command...: until the command succeeds
    local limit="$1"; shift
    for _ in $(seq $((limit * 2))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 1
}
prop() { in_ct systemctl show -p "$2" --value "$1"; }
current() { in_ct readlink /opt/ttbt5/current; }
active() { [ "$(prop ttbt5.service ActiveState)" = active ]; }
run_done() { in_ct grep -q "\"run\": \"$1\".*\"active\": false" /opt/ttbt5/state/journal.jsonl; }
last_line() { in_ct tail -n1 /opt/ttbt5/state/journal.jsonl; }

request_update() {  # run-id: as the service does it for MQTT cmd/update
    in_ct runuser -u ttbt5 -- sh -c "printf '{\"id\": \"$1\", \"force\": false}' \
        > /var/lib/ttbt5/update/.request.tmp && mv /var/lib/ttbt5/update/.request.tmp \
        /var/lib/ttbt5/update/request.json"
    wait_for "$STEP_TIMEOUT" run_done "$1" || {
        in_ct journalctl -u ttbt5-update --no-pager -n 30 >&2 || true
        fail "update run $1 did not finish"
        return 1
    }
}
publish() { in_ct cp "/srv/ttbt5/site/ttbt5-$1.json" /srv/ttbt5/site/latest.json; }

say "running install.sh in the container"
if in_ct bash /srv/ttbt5/src/scripts/install.sh \
    --app /srv/ttbt5/wheels/ttbt5-0.1.0-py3-none-any.whl --wheelhouse /srv/ttbt5/wheels \
    --python /usr/bin/python3 --skip-models --public-key /srv/ttbt5/release.pub \
    --update-url http://127.0.0.1:8765/ >"$WORK/install.log" 2>&1; then
    pass "install.sh: $(tail -n1 "$WORK/install.log")"
else
    cat "$WORK/install.log" >&2
    fail "install.sh failed"
    exit 1
fi
# a quicker health gate than a real device needs (its models take longer to load)
in_ct sh -c 'printf "health_timeout_s = 20.0\nhealth_audio_s = 2.0\n" >> /etc/ttbt5/config.toml'

if wait_for 60 active && [ "$(prop ttbt5.service SubState)" = running ]; then
    pass "ttbt5.service is active (running) after READY=1"
else
    fail "ttbt5.service is $(prop ttbt5.service ActiveState)/$(prop ttbt5.service SubState)"
fi
if [ "$(prop ttbt5-update.path ActiveState)" = active ]; then
    pass "ttbt5-update.path is started by install.sh (no reboot needed)"
else
    fail "ttbt5-update.path is $(prop ttbt5-update.path ActiveState)"
fi

in_ct touch /run/ttbt5/stall  # the audio loop stops: no more WATCHDOG=1
if wait_for 90 sh -c "[ \"\$(nsenter -t $LEADER -a systemctl show -p NRestarts --value ttbt5)\" -ge 1 ]" \
    && wait_for 60 active && in_ct journalctl -u ttbt5 --no-pager | grep -q "Watchdog timeout"; then
    pass "stalled audio loop: watchdog timeout, restarted ($(prop ttbt5.service NRestarts) restart)"
else
    fail "the watchdog did not restart a stalled service"
fi

in_ct systemd-run --quiet --unit=ttbt5-release-server -p WorkingDirectory=/srv/ttbt5/site \
    /usr/bin/python3 -m http.server 8765 --bind 127.0.0.1
wait_for 20 in_ct python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8765/')" \
    || fail "the release server did not start"

publish 0.2.0
if request_update upd1 && [ "$(current)" = releases/0.2.0 ] && last_line | grep -q '"step": "commit", "ok": true'; then
    pass "OTA update to 0.2.0 committed: $(last_line | sed 's/.*"message": "\([^"]*\)".*/\1/')"
else
    fail "OTA update to 0.2.0: current $(current), last step $(last_line)"
fi

n=0
for version in 0.3.0 0.3.1 0.3.2; do
    n=$((n + 1))
    publish "$version"
    request_update "bad$n" || continue
    line="$(last_line)"
    if [ "$(current)" = releases/0.2.0 ] && echo "$line" | grep -q '"step": "rollback", "ok": true' \
        && wait_for 60 active; then
        pass "failing update $n ($version) rolled back, ttbt5.service active on 0.2.0"
    else
        fail "failing update $n ($version): current $(current), state $(prop ttbt5.service ActiveState), $line"
    fi
done
in_ct journalctl -u ttbt5 --no-pager | grep -q "start-limit-hit\|Start request repeated too quickly" \
    && say "note: the crashing releases reached the start limit; the updater reset it each time"

# the service user turns hostile: links and FIFOs wherever it can write, code to plant
SITE="$(in_ct sh -c 'readlink -f /opt/ttbt5/current/venv/lib/python3*/site-packages' || true)"
in_ct runuser -u ttbt5 -- sh -c "
    cd /var/lib/ttbt5/update &&
    ln -s $SITE/zz_planted.pth journal.jsonl &&
    ln -s /etc/ttbt5/owned-failed failed.json &&
    ln -s /etc/ttbt5/owned-pending pending.json &&
    ln -s /etc/ttbt5/owned-lock .update.lock &&
    ln -s /etc/ttbt5 downloads &&
    mkfifo journal.fifo /run/ttbt5/planted.fifo &&
    printf 'import os\nif os.getuid() == 0: open(\"/etc/ttbt5/ROOT_RAN\", \"w\")\n' > sitecustomize.py &&
    mkdir -p firmware_app/ota && cp sitecustomize.py firmware_app/__init__.py &&
    cp sitecustomize.py firmware_app/ota/__main__.py"
publish 0.4.0
if request_update evil1 && [ "$(current)" = releases/0.4.0 ] \
    && ! in_ct sh -c 'ls /etc/ttbt5/owned-* /etc/ttbt5/ROOT_RAN /opt/ttbt5/releases/*/venv/lib/*/site-packages/zz_planted.pth' >/dev/null 2>&1 \
    && [ "$(in_ct readlink /var/lib/ttbt5/update/journal.jsonl)" = "$SITE/zz_planted.pth" ]; then
    pass "compromised service user: update to 0.4.0 committed, no write through its links, no root execution"
else
    fail "compromised service user: current $(current); $(in_ct sh -c 'ls /etc/ttbt5' | tr '\n' ' ')"
fi
in_ct runuser -u ttbt5 -- ln -s /dev/zero /var/lib/ttbt5/update/request.json
wait_for 60 sh -c "! nsenter -t $LEADER -a test -L /var/lib/ttbt5/update/request.json" || true
sleep 2
if in_ct journalctl -u ttbt5-update --no-pager | grep -q "request.json is a symbolic link" \
    && [ "$(current)" = releases/0.4.0 ] && active; then
    pass "request.json linked to /dev/zero: refused unread, link removed, service untouched"
else
    fail "request.json linked to /dev/zero was not refused cleanly"
fi

if [ "$FAILED" -ne 0 ]; then
    say "FAILED (boot log: $WORK/boot.log is removed on exit)"
    exit 1
fi
say "all checks passed"
