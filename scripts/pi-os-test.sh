#!/usr/bin/env bash
# The project on the userland of today's Raspberry Pi OS: an arm64 Debian 13 (trixie)
# root, built with debootstrap from Debian's own packages and run under qemu-user-static,
# as a person who buys a Pi today would use it:
#   - a clone of this checkout, set up with the README's scripts/setup.sh
#   - `ttbt5 simulate` on a spoken "Hey Jarvis, what time is it" (synthesized here with the
#     packaged Piper voice): the wake and the local answer must be in the event log
#   - scripts/install.sh as root (under systemd-nspawn --boot where that boots, else
#     chrooted with systemctl recorded instead of run), then `ttbt5 check` from PATH
# The base root (Debian plus the packages setup.sh and install.sh want) is built once and
# cached outside the clone, keyed by the suite and those package lists; each run works on
# an overlay of it, so the cache is never changed. pip's download cache is kept beside it.
#
#   sudo scripts/pi-os-test.sh               # exit 0 passed or skipped (says why), 1 failed
#   sudo scripts/pi-os-test.sh --build-only  # just build (or find) the cached root
#   PI_OS_SUITE=bookworm sudo scripts/pi-os-test.sh   # Raspberry Pi OS Bookworm's userland
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${PI_OS_SUITE:-trixie}"
ARCH=arm64
MIRROR="${PI_OS_MIRROR:-http://deb.debian.org/debian}"
CACHE="${PI_OS_CACHE:-/var/cache/ttbt5-ci}"
HOST_PYTHON="${PYTHON:-$HERE/.venv/bin/python}"
STEP_TIMEOUT="${PI_OS_STEP_TIMEOUT:-5400}"
BUILD_ONLY=0
[ "${1:-}" = "--build-only" ] && BUILD_ONLY=1

say() { echo "pi-os-test: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
die() { say "FAILED: $*" >&2; exit 1; }
since() { echo "$(($(date +%s) - $1)) s"; }

T0=$(date +%s)
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, mounts, chroot)"

# ------------------------------------------------------------- tools and emulation
need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "$(uname -m)" != aarch64 ]; then
    [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -x /usr/bin/qemu-aarch64-static ] \
        || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
fi
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >/dev/null 2>&1 || skip "cannot install ${need[*]} (apt-get failed)"
fi
if [ "$(uname -m)" != aarch64 ]; then
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
            || skip "cannot mount binfmt_misc here (a container without that privilege)"
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 \
        >/dev/null 2>&1 || true
    grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
        || skip "cannot register qemu-aarch64 with binfmt_misc here"
    # F (fix binary): the interpreter is opened now, so it works inside the chroot too
    grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
        || skip "qemu-aarch64 is registered without the F flag (install qemu-user-static)"
fi

# ------------------------------------------------------------------ the base root
# what setup.sh and install.sh install with apt, so their apt steps find them in place
apt_list() {  # the APT_PACKAGES array of setup.sh, the PACKAGES string of install.sh
    sed -n '/^APT_PACKAGES=(/,/^)/p' "$HERE/scripts/setup.sh" | sed 's/#.*//; s/APT_PACKAGES=(//; s/)//'
    sed -n '/^PACKAGES="/,/"$/p' "$HERE/scripts/install.sh" | sed 's/PACKAGES="//; s/["\\]//g'
}
EXTRA="git ca-certificates sudo systemd-sysv dbus python3 curl"
PACKAGES="$( (apt_list; echo "$EXTRA") | tr -s ' \n' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')"
BASE_RECIPE="base-1 $SUITE $ARCH $MIRROR $PACKAGES"
KEY="$(printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-12)"
BASE="$CACHE/pi-os-$SUITE-$ARCH-$KEY"
PIP_CACHE="$CACHE/pi-os-pip-$SUITE-$ARCH"
mkdir -p "$CACHE" "$PIP_CACHE"

build_base() {
    local tmp="$BASE.partial"
    rm -rf "$tmp"
    say "building the $SUITE $ARCH root in $BASE (once; slow under emulation)"
    # shellcheck disable=SC2086
    if ! debootstrap --arch="$ARCH" --variant=minbase \
        --include="$(echo $PACKAGES | tr ' ' ',')" "$SUITE" "$tmp" "$MIRROR" \
        >"$CACHE/pi-os-build.log" 2>&1; then
        tail -20 "$CACHE/pi-os-build.log" >&2
        rm -rf "$tmp"
        die "debootstrap failed (log: $CACHE/pi-os-build.log)"
    fi
    echo "ttbt5-pi" >"$tmp/etc/hostname"
    # the Raspberry Pi OS first user: passwordless sudo, as the imager sets it up
    chroot "$tmp" useradd --create-home --shell /bin/bash --groups sudo,audio pi
    echo "pi ALL=(ALL) NOPASSWD: ALL" >"$tmp/etc/sudoers.d/010_pi-nopasswd"
    chmod 0440 "$tmp/etc/sudoers.d/010_pi-nopasswd"
    chroot "$tmp" apt-get clean
    printf '%s\n' "$BASE_RECIPE" >"$tmp/.ttbt5-pi-os-recipe"
    mv "$tmp" "$BASE"
}

if [ -f "$BASE/.ttbt5-pi-os-recipe" ]; then
    say "using the cached $SUITE $ARCH root $BASE"
else
    exec 9>"$CACHE/pi-os.lock"
    flock 9  # two runs at once build it once
    [ -f "$BASE/.ttbt5-pi-os-recipe" ] || { T_BUILD=$(date +%s); build_base; say "root built in $(since "$T_BUILD")"; }
    flock -u 9
fi
[ "$BUILD_ONLY" -eq 1 ] && { say "done in $(since "$T0")"; exit 0; }

# ------------------------------------------------------------------ a throwaway root
WORK="$(mktemp -d /var/tmp/ttbt5-pi-os.XXXXXX)"
ROOTFS="$WORK/root"
MOUNTED=()
NSPAWN_PID=""
cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
mount_at() {  # mount args... target (recorded for the clean-up)
    mount "$@" && MOUNTED+=("${*: -1}")
}

mkdir -p "$WORK/upper" "$WORK/work" "$ROOTFS"
if ! mount_at -t overlay overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/work" "$ROOTFS"; then
    say "no overlay here: copying the cached root"
    cp -a "$BASE/." "$ROOTFS/"
fi
mount_at -t proc proc "$ROOTFS/proc"
mount_at -t sysfs sys "$ROOTFS/sys"
mount_at --rbind /dev "$ROOTFS/dev"
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# this machine's trust store too (a proxy's own CA, where one intercepts TLS to PyPI)
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$ROOTFS/home/pi/.cache/pip"
mount_at --bind "$PIP_CACHE" "$ROOTFS/home/pi/.cache/pip"

in_root() {  # a command in the root, as root, with a clean environment
    chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
as_pi() {  # a shell command as the first user, in its home
    # PIP_NO_COMPILE: pip's byte-compiling of every installed file is most of an emulated
    # install's time; Python compiles what it imports when it runs instead
    in_root runuser -u pi -- env HOME=/home/pi PIP_NO_COMPILE=1 bash -c "cd ~ && $1"
}
timed() {  # label command...: run it, say how long it took, fail with its log's tail
    local label="$1" t log="$WORK/${1//[^A-Za-z0-9]/-}.log"; shift
    t=$(date +%s)
    # the helpers are shell functions: exported, so timeout's bash can call them
    if ! timeout "$STEP_TIMEOUT" bash -c '"$@"' timed "$@" >"$log" 2>&1; then
        tail -30 "$log" >&2
        die "$label (after $(since "$t"); log above)"
    fi
    say "ok: $label ($(since "$t"))"
}

export ROOTFS
export -f in_root as_pi
say "$(. "$ROOTFS/etc/os-release" && echo "$PRETTY_NAME"), $(in_root uname -m), \
$(in_root python3 --version)"

# ------------------------------------------------------- the README's set-up
COMMIT="$(git -C "$HERE" rev-parse HEAD)"
[ -z "$(git -C "$HERE" status --porcelain --untracked-files=no)" ] \
    || say "note: uncommitted changes are not tested (the clone is of $COMMIT)"
git clone -q "$HERE" "$ROOTFS/home/pi/ttbt5"
git -C "$ROOTFS/home/pi/ttbt5" checkout -q --detach "$COMMIT"
chown -R 1000:1000 "$ROOTFS/home/pi" "$PIP_CACHE"
timed "scripts/setup.sh" as_pi "cd ttbt5 && scripts/setup.sh"

# ------------------------------------------------ a spoken request, simulated
# synthesized here with the packaged Piper voice (fast natively), played in there
[ -x "$HOST_PYTHON" ] || HOST_PYTHON=python3
PYTHONPATH="$HERE:$HERE/tests" "$HOST_PYTHON" - "$ROOTFS/home/pi/hey-jarvis.wav" <<'PY' \
    || die "could not synthesize the request on this machine (run scripts/setup.sh here)"
import sys
from pathlib import Path

from audio_helpers import conversation, write

write(Path(sys.argv[1]), conversation(1.0, "Hey Jarvis, what time is it?", 2.5))
PY
chown 1000:1000 "$ROOTFS/home/pi/hey-jarvis.wav"
timed "ttbt5 simulate" as_pi "ttbt5/.venv/bin/ttbt5 simulate hey-jarvis.wav \
    --output reply.wav --events events.jsonl"
python3 - "$ROOTFS/home/pi/events.jsonl" <<'PY' || die "the event log lacks the wake or the answer"
import json
import sys

events = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
wake = [e for e in events if e["type"] == "wake"]
reply = [e for e in events if e["type"] == "reply"]
intent = [e for e in events if e["type"] == "intent"]
print("pi-os-test: events:", [(e["type"], e.get("model") or e.get("text") or e.get("name") or "")
                              for e in events if e["type"] in ("wake", "transcript", "intent", "reply")])
assert wake and wake[0]["model"] == "hey_jarvis", "no hey_jarvis wake"
assert reply and reply[0]["source"] == "local", "no local answer"
assert intent and intent[0]["name"] == "time", "not the time intent"
assert reply[0]["text"].strip(), "an empty answer"
PY
say "ok: woke on hey_jarvis and answered locally"

# ------------------------------------------------------------------ install.sh
INSTALL_ARGS="--skip-models"  # the Vosk model comes from the internet: not in a test
booted=0
if [ "${PI_OS_BOOT:-1}" = 1 ] && command -v systemd-nspawn >/dev/null 2>&1; then
    tr -d '-' </proc/sys/kernel/random/uuid >"$ROOTFS/etc/machine-id"
    systemd-nspawn -q -D "$ROOTFS" --boot --register=no --keep-unit \
        -M "ttbt5-pi-os-$$" --console=passive >"$WORK/boot.log" 2>&1 &
    NSPAWN_PID=$!
    LEADER=""
    for _ in $(seq 240); do
        LEADER="$(ps --ppid "$NSPAWN_PID" -o pid= 2>/dev/null | head -n1 | tr -d ' ' || true)"
        if [ -n "$LEADER" ]; then
            state="$(nsenter -t "$LEADER" -a systemctl is-system-running 2>/dev/null || true)"
            case "$state" in running|degraded) booted=1; break ;; esac
        fi
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 1
    done
    if [ "$booted" -eq 1 ]; then
        say "systemd booted the root under systemd-nspawn ($state)"
    else
        say "systemd-nspawn could not boot the emulated root here (see below): chroot instead"
        tail -5 "$WORK/boot.log" | sed 's/^/    /'
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
        NSPAWN_PID=""
    fi
fi
if [ "$booted" -eq 1 ]; then
    in_ct() {
        nsenter -t "$LEADER" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8 "$@"
    }
    export LEADER
    export -f in_ct
    timed "scripts/install.sh (booted)" in_ct bash /home/pi/ttbt5/scripts/install.sh $INSTALL_ARGS
    in_ct systemctl is-enabled ttbt5.service >/dev/null || die "ttbt5.service is not enabled"
    in_ct systemctl is-active ttbt5-update.path >/dev/null || die "ttbt5-update.path is not started"
    CHECK=(in_ct runuser -u ttbt5 -- ttbt5 check)
else
    # no init: systemctl is recorded, not run; everything else is install.sh for real
    mkdir -p "$ROOTFS/usr/local/libexec/ttbt5-test"
    cat >"$ROOTFS/usr/local/libexec/ttbt5-test/systemctl" <<'SH'
#!/bin/sh
echo "systemctl $*" >>/var/log/ttbt5-test-systemctl.log
SH
    chmod +x "$ROOTFS/usr/local/libexec/ttbt5-test/systemctl"
    in_chroot_test() {
        chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
            PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
            PATH=/usr/local/libexec/ttbt5-test:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    }
    export -f in_chroot_test
    timed "scripts/install.sh (chroot)" in_chroot_test bash /home/pi/ttbt5/scripts/install.sh $INSTALL_ARGS
    grep -q "enable ttbt5.service" "$ROOTFS/var/log/ttbt5-test-systemctl.log" \
        || die "install.sh did not enable ttbt5.service"
    in_root systemd-analyze verify /etc/systemd/system/ttbt5.service >"$WORK/verify.log" 2>&1 \
        || { cat "$WORK/verify.log" >&2; die "systemd-analyze verify rejects ttbt5.service"; }
    CHECK=(in_root runuser -u ttbt5 -- ttbt5 check)
fi
[ "$(in_root readlink -f /usr/local/bin/ttbt5)" = "$(in_root readlink -f /opt/ttbt5/current)/venv/bin/ttbt5" ] \
    || die "/usr/local/bin/ttbt5 does not run the current release"
say "ok: /usr/local/bin/ttbt5 -> $(in_root readlink /usr/local/bin/ttbt5)"
# no sound card in here: the devices WARN; every part the speaker needs must be ok
"${CHECK[@]}" >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; die "ttbt5 check failed"; }
sed 's/^/    /' "$WORK/check.log"
! grep -q "ALSA lib" "$WORK/check.log" || die "ttbt5 check printed raw ALSA errors"
say "passed in $(since "$T0")"
