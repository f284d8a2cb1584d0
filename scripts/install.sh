#!/usr/bin/env bash
# Install TTBT5 on Raspberry Pi OS 64-bit (Trixie or Bookworm) or Debian 12/13: system
# packages, the `ttbt5` user, /opt/ttbt5/releases/<version> with its own venv (Python
# 3.11-3.13), the `ttbt5` command in /usr/local/bin, /etc/ttbt5/config.toml,
# /var/lib/ttbt5, models, and the systemd units. Safe to run again: what is already in
# place is left alone, a newer release (installed by an update) is never replaced, and a
# step is recorded as done only once it succeeded, so a re-run after a failure finishes
# it. Offline, everything but the models is installed and the command that fetches them
# later is printed. See docs/install.md.
#
#   sudo scripts/install.sh                      # from this checkout, packages from PyPI
#   sudo scripts/install.sh --wheelhouse DIR     # offline, from prebuilt wheels
#   scripts/install.sh --root /tmp/stage         # stage only: touches nothing outside it
#   sudo scripts/install.sh --uninstall [--purge]
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install.sh [options]
  --root DIR          install into DIR as if it were / (no apt, useradd, chown or
                      systemctl: those are printed instead)
  --app PATH          app wheel or project directory (default: this checkout)
  --wheelhouse DIR    install offline from these wheels (pip --no-index --find-links)
  --python PY         interpreter for the release venv, 64-bit 3.11-3.13 (default: python3)
  --models-from PATH  models directory to copy, or an archive for `ttbt5 models pull --from`
  --skip-models       do not install models now (run `ttbt5 models pull` later)
  --public-key FILE   release signing public key, enables verified updates
  --update-url URL    release server for updates (written into a new config)
  --uninstall         remove the app and its units; keep config and data
  --purge             with --uninstall: remove config, data and the user too
  -h, --help          this text
EOF
}

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=""
APP="$HERE"
WHEELHOUSE=""
PYTHON="python3"
MODELS_FROM=""
SKIP_MODELS=0
PUBLIC_KEY=""
UPDATE_URL=""
UNINSTALL=0
PURGE=0

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="$(realpath -m "$2")"; shift 2 ;;
        --app) APP="$(realpath "$2")"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="$(realpath "$2")"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --models-from) MODELS_FROM="$(realpath "$2")"; shift 2 ;;
        --skip-models) SKIP_MODELS=1; shift ;;
        --public-key) PUBLIC_KEY="$(realpath "$2")"; shift 2 ;;
        --update-url) UPDATE_URL="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

APP_DIR="$ROOT/opt/ttbt5"
CONF_DIR="$ROOT/etc/ttbt5"
DATA_DIR="$ROOT/var/lib/ttbt5"
UNIT_DIR="$ROOT/etc/systemd/system"
UNITS="ttbt5.service ttbt5-update.service ttbt5-update.timer ttbt5-update.path"
# the command on PATH: through `current`, so it follows every update and rollback
COMMAND_LINK="$ROOT/usr/local/bin/ttbt5"
COMMAND_TARGET="/opt/ttbt5/current/venv/bin/ttbt5"
CHANGED=0

say() { echo "install.sh: $*"; }
did() { CHANGED=1; say "$*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

# Commands that change the machine itself: printed, not run, when staging with --root
# (INSTALL_SH_RUN_STAGED=1 runs them anyway, for tests with stand-in commands on PATH).
system() {
    if [ -n "$ROOT" ] && [ "${INSTALL_SH_RUN_STAGED:-0}" != 1 ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

# Steps recorded only after they succeeded: a re-run redoes a step that failed halfway.
STEPS="$APP_DIR/state/install"
step_done() { [ -f "$STEPS/$1" ] && [ "$(cat "$STEPS/$1")" = "$2" ]; }
record_step() { mkdir -p "$STEPS"; printf '%s\n' "$2" > "$STEPS/$1.tmp"; mv "$STEPS/$1.tmp" "$STEPS/$1"; }

if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo), or stage with --root DIR"
fi

# ----------------------------------------------------------------------- uninstall
if [ "$UNINSTALL" -eq 1 ]; then
    system systemctl disable --now ttbt5.service ttbt5-update.timer ttbt5-update.path || true
    for unit in $UNITS; do
        if [ -e "$UNIT_DIR/$unit" ]; then rm -f "$UNIT_DIR/$unit"; did "removed $UNIT_DIR/$unit"; fi
    done
    system systemctl daemon-reload
    if [ "$(readlink "$COMMAND_LINK" 2>/dev/null || true)" = "$COMMAND_TARGET" ]; then
        rm -f "$COMMAND_LINK"; did "removed $COMMAND_LINK"
    fi
    if [ -e "$APP_DIR" ]; then rm -rf "$APP_DIR"; did "removed $APP_DIR"; fi
    if [ "$PURGE" -eq 1 ]; then
        rm -rf "$CONF_DIR" "$DATA_DIR"
        say "removed $CONF_DIR and $DATA_DIR"
        system userdel ttbt5 || true
    else
        say "kept config in $CONF_DIR and data in $DATA_DIR (--purge removes them)"
    fi
    exit 0
fi

# ------------------------------------------------------------------ system packages
PACKAGES="python3 python3-venv python3-pip python3-dev build-essential libasound2-dev \
alsa-utils libopenblas0 swig libspeexdsp1"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    system apt-get update
    # shellcheck disable=SC2086
    system apt-get install -y --no-install-recommends $missing
fi

# 64-bit Python 3.11-3.13 (Bookworm ships 3.11, Trixie 3.13): the speech engines have wheels
# for nothing else. Staging without the interpreter (printed apt commands) checks nothing.
if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -c 'import struct, sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13) and struct.calcsize("P") == 8))' \
        || die "$PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version(), platform.architecture()[0])'); a 64-bit Python 3.11-3.13 is needed (flash Raspberry Pi OS 64-bit)"
fi

# ------------------------------------------------------------------- user and groups
for group in audio gpio spi; do
    getent group "$group" >/dev/null 2>&1 || system groupadd --system "$group"
done
if ! getent passwd ttbt5 >/dev/null 2>&1; then
    system useradd --system --user-group --home-dir /var/lib/ttbt5 --no-create-home \
        --shell /usr/sbin/nologin --groups audio,gpio,spi ttbt5
else
    for group in audio gpio spi; do
        id -nG ttbt5 | tr ' ' '\n' | grep -qx "$group" || system usermod -aG "$group" ttbt5
    done
fi

# ----------------------------------------------------------------------- directories
make_dir() {  # path mode [owner]
    if [ ! -d "$1" ]; then mkdir -p "$1"; did "created $1"; fi
    if [ "$(stat -c %a "$1")" != "${2#0}" ]; then chmod "$2" "$1"; did "chmod $2 $1"; fi
    if [ -n "${3:-}" ]; then system chown "$3" "$1"; fi
}
make_dir "$APP_DIR" 0755
make_dir "$APP_DIR/releases" 0755
make_dir "$APP_DIR/state" 0755
make_dir "$CONF_DIR" 0750 root:ttbt5
make_dir "$CONF_DIR/credentials" 0700
make_dir "$DATA_DIR" 0750 ttbt5:ttbt5
make_dir "$DATA_DIR/models" 0750 ttbt5:ttbt5
make_dir "$DATA_DIR/update" 0750 ttbt5:ttbt5
for cred in mqtt_password llm_api_key; do
    # LoadCredential= needs the file to exist; an empty one means "not set"
    if [ ! -e "$CONF_DIR/credentials/$cred" ]; then
        install -m 0600 /dev/null "$CONF_DIR/credentials/$cred"
        did "created empty credential $CONF_DIR/credentials/$cred"
    fi
done

# ------------------------------------------------------------------- the release
if [ -f "$APP" ]; then
    VERSION="$(basename "$APP" | cut -d- -f2)"
else
    [ -f "$APP/pyproject.toml" ] || die "$APP is neither a wheel nor a project directory"
    VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$APP/pyproject.toml")"
fi
RELEASE="$APP_DIR/releases/$VERSION"
CURRENT_VERSION=""
if [ -f "$APP_DIR/current/release.json" ]; then
    CURRENT_VERSION="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$APP_DIR/current/release.json" | head -n1)"
fi
NEWER=0
if [ -n "$CURRENT_VERSION" ] && [ "$CURRENT_VERSION" != "$VERSION" ] \
    && [ "$(printf '%s\n%s\n' "$VERSION" "$CURRENT_VERSION" | sort -V | tail -n1)" = "$CURRENT_VERSION" ]; then
    NEWER=1
    say "release $CURRENT_VERSION (newer than this installer's $VERSION) is installed: left in place"
    RELEASE="$APP_DIR/releases/$CURRENT_VERSION"
    VERSION="$CURRENT_VERSION"
elif [ -f "$RELEASE/release.json" ]; then
    say "release $VERSION is already installed"
else
    rm -rf "$RELEASE"
    mkdir -p "$RELEASE"
    "$PYTHON" -m venv --without-pip "$RELEASE/venv"
    PIP_ARGS=(install --disable-pip-version-check --no-input --no-cache-dir)
    # lgpio from source (no wheel for Python 3.13): its C library compiled in, as in its
    # wheels, rather than linked to a liblgpio that Debian lacks
    export PYPI=1
    if [ -n "$WHEELHOUSE" ]; then
        # only these wheels: no pip.conf, no PIP_* variables can add another source
        export PIP_CONFIG_FILE=/dev/null
        while read -r var; do unset "$var"; done < <(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p' | grep -v '^PIP_CONFIG_FILE$')
        PIP_ARGS=(--isolated "${PIP_ARGS[@]}" --no-index --find-links "$WHEELHOUSE")
        if [ -f "$APP" ]; then PIP_ARGS+=(--find-links "$(dirname "$APP")"); fi
        if ls "$WHEELHOUSE"/pip-*.whl >/dev/null 2>&1; then PIP_ARGS+=(pip); fi
    else
        PIP_ARGS+=(pip)  # from the index: the release can then run its own updates
    fi
    if [ -f "$APP" ]; then PIP_ARGS+=("ttbt5==$VERSION"); else PIP_ARGS+=("$APP"); fi
    if "$PYTHON" -m pip --version >/dev/null 2>&1; then
        "$PYTHON" -m pip --python "$RELEASE/venv/bin/python" "${PIP_ARGS[@]}"
    else
        "$RELEASE/venv/bin/python" -m ensurepip --upgrade >/dev/null
        "$RELEASE/venv/bin/python" -m pip "${PIP_ARGS[@]}"
    fi
    [ -x "$RELEASE/venv/bin/ttbt5" ] || die "the app did not install a ttbt5 command"
    # written last: a release without it is incomplete and never becomes current
    printf '{"version": "%s", "installed": %s, "installer": "install.sh"}\n' \
        "$VERSION" "$(date +%s)" > "$RELEASE/release.json.tmp"
    sync "$RELEASE/release.json.tmp" 2>/dev/null || true
    mv "$RELEASE/release.json.tmp" "$RELEASE/release.json"
    did "installed release $VERSION in $RELEASE"
fi

link_to() {  # link target: atomic replace (symlink + rename)
    if [ "$(readlink "$1" 2>/dev/null || true)" != "$2" ]; then
        ln -sfn "$2" "$1.tmp"
        mv -T "$1.tmp" "$1"
        did "$1 -> $2"
    fi
}
old_current="$(readlink "$APP_DIR/current" 2>/dev/null || true)"
if [ "$NEWER" -eq 0 ]; then
    if [ -n "$old_current" ] && [ "$old_current" != "releases/$VERSION" ] \
        && [ -f "$APP_DIR/$old_current/release.json" ]; then
        link_to "$APP_DIR/previous" "$old_current"
    fi
    link_to "$APP_DIR/current" "releases/$VERSION"
fi

# the `ttbt5` command for people on the speaker (docs/install.md), following `current`
mkdir -p "$(dirname "$COMMAND_LINK")"
if [ -e "$COMMAND_LINK" ] && [ ! -L "$COMMAND_LINK" ]; then
    say "left $COMMAND_LINK alone (not a link made by this script)"
else
    link_to "$COMMAND_LINK" "$COMMAND_TARGET"
fi

# ----------------------------------------------------------------------- config
if [ -n "$PUBLIC_KEY" ] && ! cmp -s "$PUBLIC_KEY" "$CONF_DIR/update.pub"; then
    install -m 0644 "$PUBLIC_KEY" "$CONF_DIR/update.pub"
    did "installed the release public key as $CONF_DIR/update.pub"
fi
if [ ! -f "$CONF_DIR/config.toml" ]; then
    {
        echo "# TTBT5 configuration: every key is described by \`ttbt5 config show\`"
        echo "# and docs/configuration.md. Validate changes with \`ttbt5 config validate\`."
        echo 'data_dir = "/var/lib/ttbt5"'
        echo
        echo "[audio]"
        echo 'input_device = "default"'
        echo 'output_device = "default"'
        echo
        echo "[wake]"
        echo 'models = ["hey_jarvis"]'
        echo
        echo "# [mqtt]"
        echo '# host = "homeassistant.local"'
        echo "# (password: put it in /etc/ttbt5/credentials/mqtt_password)"
        echo
        echo "[update]"
        echo 'root = "/opt/ttbt5"'
        if [ -n "$UPDATE_URL" ]; then echo "url = \"$UPDATE_URL\""; fi
        if [ -f "$CONF_DIR/update.pub" ]; then echo 'public_key = "/etc/ttbt5/update.pub"'; fi
    } > "$CONF_DIR/config.toml.tmp"
    chmod 0640 "$CONF_DIR/config.toml.tmp"
    mv "$CONF_DIR/config.toml.tmp" "$CONF_DIR/config.toml"
    did "wrote $CONF_DIR/config.toml"
fi
system chown root:ttbt5 "$CONF_DIR/config.toml"
system "$RELEASE/venv/bin/ttbt5" config validate --config /etc/ttbt5/config.toml

# ----------------------------------------------------------------------- units
mkdir -p "$UNIT_DIR"
for unit in $UNITS; do
    if ! cmp -s "$HERE/systemd/$unit" "$UNIT_DIR/$unit"; then
        install -m 0644 "$HERE/systemd/$unit" "$UNIT_DIR/$unit"
        did "installed $UNIT_DIR/$unit"
    fi
done
# shellcheck disable=SC2086
UNITS_SUM="$(cd "$HERE/systemd" && sha256sum $UNITS | sha256sum | cut -c1-64)"
if ! step_done units "$UNITS_SUM"; then
    system systemctl daemon-reload
    # the update timer is installed but left off: `systemctl enable --now ttbt5-update.timer`
    system systemctl enable ttbt5.service
    # started now, not at the next boot: update requests from MQTT work at once
    system systemctl enable --now ttbt5-update.path
    record_step units "$UNITS_SUM"
    did "systemd units loaded and enabled"
fi

# ----------------------------------------------------------------------- models
PULL="runuser -u ttbt5 -- /opt/ttbt5/current/venv/bin/ttbt5 models pull --config /etc/ttbt5/config.toml"
MODELS_MISSING=0
if [ -n "$MODELS_FROM" ] && [ -d "$MODELS_FROM" ]; then
    (cd "$MODELS_FROM" && find . -type d) | while read -r dir; do
        mkdir -p "$DATA_DIR/models/$dir"
    done
    (cd "$MODELS_FROM" && find . -type f) | while read -r file; do
        if [ ! -e "$DATA_DIR/models/$file" ]; then
            cp -p "$MODELS_FROM/$file" "$DATA_DIR/models/$file"
            echo "install.sh: copied model file ${file#./}"
        fi
    done
    system chown -R ttbt5:ttbt5 "$DATA_DIR/models"
elif [ -n "$MODELS_FROM" ] || [ "$SKIP_MODELS" -eq 0 ]; then
    PULL_CMD=(runuser -u ttbt5 -- "$RELEASE/venv/bin/ttbt5" models pull --config /etc/ttbt5/config.toml)
    if [ -n "$MODELS_FROM" ]; then PULL_CMD+=(--from "$MODELS_FROM"); fi
    if ! step_done models "${MODELS_FROM:-download}"; then
        if system "${PULL_CMD[@]}"; then
            record_step models "${MODELS_FROM:-download}"
            did "models installed"
        else
            MODELS_MISSING=1
        fi
    fi
fi

if [ "$CHANGED" -eq 1 ] || ! step_done started "$VERSION $UNITS_SUM"; then
    system systemctl restart ttbt5.service
    record_step started "$VERSION $UNITS_SUM"
fi

if [ "$MODELS_MISSING" -eq 1 ]; then
    say "TTBT5 $VERSION is installed, but the models could not be fetched (offline?)."
    say "once online, run:  sudo $PULL"
    exit 0
fi
if [ "$SKIP_MODELS" -eq 1 ] && [ -z "$MODELS_FROM" ] && ! step_done models download; then
    say "models skipped: fetch them with  sudo $PULL"
fi
if [ "$CHANGED" -eq 0 ]; then
    say "nothing to do: TTBT5 $VERSION is installed"
else
    say "TTBT5 $VERSION installed${ROOT:+ under $ROOT}"
fi
