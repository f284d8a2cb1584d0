#!/usr/bin/env bash
# The project on the userland of today's Raspberry Pi OS: an arm64 Debian 13 (trixie)
# root, built from Debian's own packages and run under qemu-user-static, as a person who
# buys a Pi today would use it:
#   - a clone of this checkout, set up with the README's scripts/setup.sh
#   - `ttbt5 simulate` on a spoken "Hey Jarvis, what time is it" (synthesized here with the
#     packaged Piper voice): the wake and the local answer must be in the event log
#   - scripts/install.sh as root (under systemd-nspawn --boot where that boots, else
#     chrooted with systemctl recorded instead of run), then `ttbt5 check` from PATH
# What is slow under emulation is done once and cached outside the clone, in $PI_OS_CACHE:
#   - the root (Debian plus the packages setup.sh and install.sh want), built with
#     mmdebstrap (debootstrap where mmdebstrap cannot be installed), keyed by the suite and
#     those package lists; each run works on an overlay of it, so it is never changed
#   - a wheelhouse: every wheel pip resolves for the root's Python on aarch64, downloaded on
#     this machine natively, plus wheels of the projects published as source only for that
#     target (pyalsaaudio, lgpio), compiled once in the root. Keyed by the project's
#     requirements, the root's Python and the month (so it follows PyPI monthly). setup.sh
#     then installs from it offline (PIP_NO_INDEX, PIP_FIND_LINKS), install.sh with its own
#     --wheelhouse option.
#
#   sudo scripts/pi-os-test.sh               # exit 0 passed or skipped (says why), 1 failed
#   sudo scripts/pi-os-test.sh --build-only  # just build (or find) the cached root and wheels
#   PI_OS_SUITE=bookworm sudo scripts/pi-os-test.sh   # Raspberry Pi OS Bookworm's userland
#   PI_OS_CACHED_ONLY=1 sudo scripts/pi-os-test.sh     # skip (saying so) rather than build
#                                                      # a cold root or wheelhouse (CI)
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
[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap or debootstrap, mounts, chroot)"
[ -x "$HOST_PYTHON" ] || HOST_PYTHON=python3
"$HOST_PYTHON" -c 'import packaging' 2>/dev/null \
    || skip "$HOST_PYTHON lacks the project's dependencies (run scripts/setup.sh here, or set PYTHON)"

# ------------------------------------------------------------- tools and emulation
need=()
# mmdebstrap: one apt and dpkg run with its triggers once, several times faster than
# debootstrap under emulation
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "$(uname -m)" != aarch64 ]; then
    [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -x /usr/bin/qemu-aarch64-static ] \
        || need+=(qemu-user-static)
    command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
fi
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >/dev/null 2>&1 || say "could not install ${need[*]} (apt-get failed)"
fi
if command -v mmdebstrap >/dev/null 2>&1; then
    BUILDER=mmdebstrap
elif command -v debootstrap >/dev/null 2>&1; then
    BUILDER=debootstrap
else
    skip "neither mmdebstrap nor debootstrap can be installed here"
fi
if [ "$(uname -m)" != aarch64 ]; then
    [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -x /usr/bin/qemu-aarch64-static ] \
        || skip "qemu-user-static cannot be installed here"
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
BASE_RECIPE="base-2 $BUILDER $SUITE $ARCH $MIRROR $PACKAGES"
KEY="$(printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-12)"
BASE="$CACHE/pi-os-$SUITE-$ARCH-$KEY"
mkdir -p "$CACHE"
exec 9>"$CACHE/pi-os.lock"  # two runs at once build the root and the wheels once

# Under emulation every maintainer script runs ~10-20x slower: the root leaves out what
# only a person reads (manuals, translations, documentation: man-db has nothing to index)
# and skips byte-compiling Debian's Python packages (Python compiles what it imports).
# Both stay set in the root, as in Debian's container images.
DPKG_OPTS=(--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='force-unsafe-io')
# shellcheck disable=SC2016
NO_PY3COMPILE=(--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --divert /usr/bin/py3compile.real --add /usr/bin/py3compile && ln -s /bin/true "$1/usr/bin/py3compile"'
    --customize-hook='rm -f "$1/usr/bin/py3compile" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/bin/py3compile')

build_base() {
    local tmp="$BASE.partial" log="$CACHE/pi-os-build.log"
    rm -rf "$tmp"
    say "building the $SUITE $ARCH root with $BUILDER in $BASE (once; slow under emulation)"
    if [ "$BUILDER" = mmdebstrap ]; then
        # shellcheck disable=SC2086
        if ! mmdebstrap --mode=root --variant=minbase --arch="$ARCH" \
            --include="$(echo $PACKAGES | tr ' ' ',')" "${DPKG_OPTS[@]}" "${NO_PY3COMPILE[@]}" \
            "$SUITE" "$tmp" "$MIRROR" >"$log" 2>&1; then
            tail -20 "$log" >&2
            rm -rf "$tmp"
            die "mmdebstrap failed (log: $log)"
        fi
    else
        # shellcheck disable=SC2086
        if ! debootstrap --arch="$ARCH" --variant=minbase \
            --include="$(echo $PACKAGES | tr ' ' ',')" "$SUITE" "$tmp" "$MIRROR" >"$log" 2>&1; then
            tail -20 "$log" >&2
            rm -rf "$tmp"
            die "debootstrap failed (log: $log)"
        fi
        chroot "$tmp" apt-get clean
    fi
    echo "ttbt5-pi" >"$tmp/etc/hostname"
    # the Raspberry Pi OS first user: passwordless sudo, as the imager sets it up
    chroot "$tmp" useradd --create-home --shell /bin/bash --groups sudo,audio pi
    echo "pi ALL=(ALL) NOPASSWD: ALL" >"$tmp/etc/sudoers.d/010_pi-nopasswd"
    chmod 0440 "$tmp/etc/sudoers.d/010_pi-nopasswd"
    printf '%s\n' "$BASE_RECIPE" >"$tmp/.ttbt5-pi-os-recipe"
    mv "$tmp" "$BASE"
}

prune() {  # roots and wheelhouses of this suite unused for a week (another recipe's)
    local marker
    find "$CACHE" -maxdepth 2 -mtime +7 \( -path "$CACHE/pi-os-$SUITE-$ARCH-*/.ttbt5-pi-os-recipe" \
        -o -path "$CACHE/pi-os-wheels-$SUITE-$ARCH-*/.complete" \) 2>/dev/null | while read -r marker; do
        say "removing $(dirname "$marker") (unused for a week)"
        rm -rf "$(dirname "$marker")"
    done
}

cold() {  # a cache that is not built yet, when this run may only use built ones
    [ "${PI_OS_CACHED_ONLY:-0}" = 1 ] || return 0
    skip "its $1 is not cached here ($2); build it once, alone: sudo scripts/pi-os-test.sh --build-only"
}

if [ -f "$BASE/.ttbt5-pi-os-recipe" ]; then
    say "using the cached $SUITE $ARCH root $BASE"
else
    cold "$SUITE $ARCH root" "about 30 min under emulation"
    flock 9
    if [ ! -f "$BASE/.ttbt5-pi-os-recipe" ]; then
        T_BUILD=$(date +%s); build_base; say "root built in $(since "$T_BUILD")"
    fi
    flock -u 9
fi
touch "$BASE/.ttbt5-pi-os-recipe"
prune

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
# qemu-user shows the programs this machine's /proc/cpuinfo (x86), which ONNX Runtime's
# cpuinfo cannot parse: it crashes creating a session. They see a Raspberry Pi 4's instead,
# and qemu emulates its core (Cortex-A72) rather than every feature it knows.
export PI_OS_QEMU_CPU=cortex-a72
cat >"$WORK/cpuinfo" <<'CPUINFO'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

processor	: 1
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

Revision	: c03111
Model		: Raspberry Pi 4 Model B Rev 1.1
CPUINFO
[ "$(uname -m)" = aarch64 ] || mount_at --bind -o ro "$WORK/cpuinfo" "$ROOTFS/proc/cpuinfo"
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# this machine's trust store too (a proxy's own CA, where one intercepts TLS to PyPI)
cp -L /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

in_root() {  # a command in the root, as root, with a clean environment
    chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt QEMU_CPU="$PI_OS_QEMU_CPU" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
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
export -f in_root
ROOT_PY="$(readlink "$BASE/usr/bin/python3")"  # python3.13
ROOT_PY="${ROOT_PY#python}"
say "$(. "$ROOTFS/etc/os-release" && echo "$PRETTY_NAME"), $(in_root uname -m), \
$(in_root python3 --version)"

# ------------------------------------------------------------------ the wheelhouse
# The project's requirements (runtime, build and the dev extra setup.sh installs) as the
# root sees them, split into those with wheels for it and those built there
# (firmware_app.ota.wheelhouse knows Raspberry Pi OS's targets, as the release build does).
PYTHONPATH="$HERE" "$HOST_PYTHON" - "$HERE/pyproject.toml" "$ROOT_PY" "$WORK" <<'PY' \
    || die "cannot read the project's requirements for Python $ROOT_PY"
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from firmware_app.ota.wheelhouse import target_for

project = tomllib.loads(Path(sys.argv[1]).read_text())
target = target_for(sys.argv[2])
wanted = [
    *project["build-system"]["requires"],
    *project["project"]["dependencies"],
    *project["project"]["optional-dependencies"]["dev"],
]
lists: dict[bool, list[str]] = {True: [], False: []}
for req in map(Requirement, wanted):
    if req.marker is None or req.marker.evaluate(target.markers()):
        req.marker = None
        lists[canonicalize_name(req.name) in target.built_on_device].append(str(req))
out = Path(sys.argv[3])
(out / "wheels.txt").write_text("".join(f"{line}\n" for line in lists[False]))
(out / "sources.txt").write_text("".join(f"{line}\n" for line in lists[True]))
Path(out / "platforms.txt").write_text("\n".join(target.platforms()) + "\n")
PY
WHEELS_KEY="$( (echo "wheels-1 $ROOT_PY $(date +%Y-%m)"; cat "$WORK"/wheels.txt "$WORK"/sources.txt \
    "$WORK"/platforms.txt) | sha256sum | cut -c1-12)"
WHEELS="$CACHE/pi-os-wheels-$SUITE-$ARCH-$WHEELS_KEY"
WHEELS_IN_ROOT=/var/cache/ttbt5-wheels

build_wheels() {
    local tmp="$WHEELS.partial" py="" candidate missing
    rm -rf "$tmp"
    mkdir -p "$tmp/src"
    # pip evaluates the markers of dependencies for the Python it runs on: the root's own
    # version here where this machine has it (pyenv's too)
    for candidate in "python$ROOT_PY" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$ROOT_PY".*/bin/python"$ROOT_PY" \
        "$HOST_PYTHON"; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -m pip --version >/dev/null 2>&1; then
            py="$(command -v "$candidate")"; break
        fi
    done
    [ -n "$py" ] || die "no Python with pip here to download the wheels"
    local pip=("$py" -m pip --disable-pip-version-check --no-input) platforms=() abi="cp${ROOT_PY/./}"
    while read -r platform; do platforms+=(--platform "$platform"); done <"$WORK/platforms.txt"
    say "downloading the wheels for Python $ROOT_PY aarch64 here (with $py)"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if "${pip[@]}" download -q --dest "$tmp" --find-links "$tmp" --only-binary=:all: \
            --implementation cp --python-version "$ROOT_PY" --abi "$abi" --abi abi3 --abi none \
            "${platforms[@]}" -r "$WORK/wheels.txt" pip wheel 2>"$WORK/pip.err"; then
            missing=""; break
        fi
        missing="$(sed -n 's/.*No matching distribution found for \([^ ]*\).*/\1/p' "$WORK/pip.err" | head -n1)"
        [ -n "$missing" ] || { tail -20 "$WORK/pip.err" >&2; die "pip download failed"; }
        # published as source only: built here, which is right only for pure Python
        "${pip[@]}" wheel -q --wheel-dir "$tmp" --no-deps --no-binary=:all: "$missing" \
            >"$WORK/pip.err" 2>&1 || { tail -20 "$WORK/pip.err" >&2; die "cannot build $missing"; }
    done
    [ -z "$missing" ] || die "pip download still misses $missing"
    local impure
    impure="$(find "$tmp" -maxdepth 1 -name '*.whl' ! -name '*-none-any.whl' ! -name '*aarch64*.whl')"
    [ -z "$impure" ] || die "built here for this machine, not aarch64: $impure (add it to the \
projects built on the device in firmware_app/ota/wheelhouse.py)"
    if [ -s "$WORK/sources.txt" ]; then
        "${pip[@]}" download -q --dest "$tmp/src" --no-deps --no-binary=:all: -r "$WORK/sources.txt" \
            >"$WORK/pip.err" 2>&1 || { tail -20 "$WORK/pip.err" >&2; die "cannot download the sources"; }
        local sources=() file
        for file in "$tmp"/src/*; do sources+=("$WHEELS_IN_ROOT/src/${file##*/}"); done
        say "compiling $(cd "$tmp/src" && echo *) in the root"
        mkdir -p "$ROOTFS$WHEELS_IN_ROOT"
        mount --bind "$tmp" "$ROOTFS$WHEELS_IN_ROOT"
        # PYPI=1: lgpio's switch to compile its C library in, as setup.sh and install.sh set it
        if ! timeout "$STEP_TIMEOUT" chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PYPI=1 \
            QEMU_CPU="$PI_OS_QEMU_CPU" \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELS_IN_ROOT" \
            python3 -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps \
            --wheel-dir "$WHEELS_IN_ROOT" "${sources[@]}" >"$WORK/build.log" 2>&1; then
            umount "$ROOTFS$WHEELS_IN_ROOT"
            tail -30 "$WORK/build.log" >&2
            die "compiling the source-only projects in the root failed"
        fi
        umount "$ROOTFS$WHEELS_IN_ROOT"
    fi
    touch "$tmp/.complete"
    mv "$tmp" "$WHEELS"
}

if [ -f "$WHEELS/.complete" ]; then
    say "using the cached wheelhouse $WHEELS"
else
    cold "wheelhouse" "about 15 min, once a month"
    flock 9
    if [ ! -f "$WHEELS/.complete" ]; then
        T_WHEELS=$(date +%s); build_wheels
        say "wheelhouse of $(find "$WHEELS" -maxdepth 1 -name '*.whl' | wc -l) wheels, \
$(du -sm "$WHEELS" | cut -f1) MB, made in $(since "$T_WHEELS")"
    fi
    flock -u 9
fi
touch "$WHEELS/.complete"
[ "$BUILD_ONLY" -eq 1 ] && { say "done in $(since "$T0")"; exit 0; }
mkdir -p "$ROOTFS$WHEELS_IN_ROOT"
mount_at --bind -o ro "$WHEELS" "$ROOTFS$WHEELS_IN_ROOT"

as_pi() {  # a shell command as the first user, in its home
    # from the wheelhouse only (the README's set-up with pip told where the wheels are);
    # PIP_NO_COMPILE: pip's byte-compiling of every installed file is most of an emulated
    # install's time; Python compiles what it imports when it runs instead
    in_root runuser -u pi -- env HOME=/home/pi PIP_NO_COMPILE=1 PIP_NO_INDEX=1 \
        PIP_FIND_LINKS="$WHEELS_IN_ROOT" bash -c "cd ~ && $1"
}
export WHEELS_IN_ROOT
export -f as_pi

# ------------------------------------------------------- the README's set-up
COMMIT="$(git -C "$HERE" rev-parse HEAD)"
[ -z "$(git -C "$HERE" status --porcelain --untracked-files=no)" ] \
    || say "note: uncommitted changes are not tested (the clone is of $COMMIT)"
git clone -q "$HERE" "$ROOTFS/home/pi/ttbt5"
git -C "$ROOTFS/home/pi/ttbt5" checkout -q --detach "$COMMIT"
chown -R 1000:1000 "$ROOTFS/home/pi"
timed "scripts/setup.sh" as_pi "cd ttbt5 && scripts/setup.sh"

# ------------------------------------------------ a spoken request, simulated
# synthesized here with the packaged Piper voice (fast natively), played in there
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
# the Vosk model comes from the internet: not in a test; the wheels from the wheelhouse
INSTALL_ARGS="--skip-models --wheelhouse $WHEELS_IN_ROOT"
booted=0
if [ "${PI_OS_BOOT:-1}" = 1 ] && command -v systemd-nspawn >/dev/null 2>&1; then
    tr -d '-' </proc/sys/kernel/random/uuid >"$ROOTFS/etc/machine-id"
    systemd-nspawn -q -D "$ROOTFS" --boot --register=no --keep-unit \
        --bind-ro="$WHEELS:$WHEELS_IN_ROOT" --bind-ro="$WORK/cpuinfo:/proc/cpuinfo" \
        --setenv=QEMU_CPU="$PI_OS_QEMU_CPU" \
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
            PIP_CERT=/etc/ssl/certs/ca-certificates.crt LANG=C.UTF-8 QEMU_CPU="$PI_OS_QEMU_CPU" "$@"
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
            PIP_CERT=/etc/ssl/certs/ca-certificates.crt QEMU_CPU="$PI_OS_QEMU_CPU" \
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
