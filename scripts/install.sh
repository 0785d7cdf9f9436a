#!/usr/bin/env bash
# Installs the built icosfl package (dist/, runtime node_modules, the native addon) with its
# systemd units, system user, RAPL access rules and a default agent config, then enables the
# agent; with --coordinator also the coordinator's config and federation keys, and enables it. Run it from a built checkout (npm ci && npm run build) or from an installed tree
# (<prefix>/lib/icosfl/scripts/install.sh), which carries everything it needs.
# systemd/README.md describes what ends up where and why.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install.sh [options]
  --prefix DIR     install root (default /usr/local): DIR/lib/icosfl, DIR/bin/icosfl-*;
                   units, sysusers.d, tmpfiles.d and udev rules go to DIR/lib/... when DIR is
                   /usr or /usr/local (both on systemd's search paths), else under /etc
  --destdir DIR    stage everything under DIR (also $DESTDIR) and change nothing on this
                   system: no user, no rules applied, no systemctl (for packaging)
  --no-start       enable the agent but do not start it now
  --no-enable      neither enable nor start anything
  --coordinator    also set up the coordinator: /etc/icosfl/coordinator.toml from the
                   example (if absent), a federation key bundle with `icosfl-coordinator
                   keys init` (if /etc/icosfl/coordinator.json is absent), and enable (and
                   start) icosfl-coordinator.service
  --no-keys        with --coordinator: create no key bundle (bring your own coordinator.json)
  --gpu, --no-gpu  install the NVIDIA drop-in and the webgpu module (default: when
                   /dev/nvidiactl exists)
  --uninstall      stop and disable the services, remove the package, units and rules;
                   keeps /etc/icosfl, /var/lib/icosfl* and the icosfl user. With
                   --coordinator: only the coordinator (stopped, disabled, its unit removed;
                   the package and the agent stay)
  --purge          with --uninstall: also remove the config, the state and the user (with
                   --coordinator: coordinator.toml, the key bundles and the coordinator state)
  -h, --help       this text
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }
note() { echo "install.sh: $*"; }

PREFIX=/usr/local
DESTDIR=${DESTDIR:-}
START=1
ENABLE=1
COORDINATOR=0
KEYS=1
GPU=auto
MODE=install
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift ;;
    --prefix=*) PREFIX=${1#*=} ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift ;;
    --destdir=*) DESTDIR=${1#*=} ;;
    --no-start) START=0 ;;
    --no-enable) ENABLE=0; START=0 ;;
    --coordinator) COORDINATOR=1 ;;
    --no-keys) KEYS=0 ;;
    --gpu) GPU=1 ;;
    --no-gpu) GPU=0 ;;
    --uninstall) MODE=uninstall ;;
    --purge) PURGE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
  shift
done
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path, got '$PREFIX'" ;; esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix must not be /"
[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || die "--purge only goes with --uninstall"
[ "$KEYS" = 1 ] || [ "$COORDINATOR" = 1 ] || die "--no-keys only goes with --coordinator"
if [ "$GPU" = auto ]; then if [ -e /dev/nvidiactl ]; then GPU=1; else GPU=0; fi; fi

PKG_DIR=$PREFIX/lib/icosfl
BIN_DIR=$PREFIX/bin
case "$PREFIX" in
  /usr|/usr/local) SYSTEMD_LIB=$PREFIX/lib ;;
  *) SYSTEMD_LIB=/etc ;;
esac
UNIT_DIR=$SYSTEMD_LIB/systemd/system
# sysusers.d, tmpfiles.d and udev read /etc and /usr/local/lib as well as /usr/lib.
SYSUSERS_DIR=$SYSTEMD_LIB/sysusers.d
TMPFILES_DIR=$SYSTEMD_LIB/tmpfiles.d
UDEV_DIR=$SYSTEMD_LIB/udev/rules.d
DROPIN_DIR=$UNIT_DIR/icosfl-agent.service.d
COORD_DROPIN_DIR=$UNIT_DIR/icosfl-coordinator.service.d
CONFIG_DIR=/etc/icosfl
UNITS=(icosfl-agent.service icosfl-coordinator.service)

# Only a live system gets users, rules and systemctl; a staged tree (DESTDIR) gets files.
LIVE=1
[ -z "$DESTDIR" ] || LIVE=0
# sd_booted(): systemd is PID 1 exactly when /run/systemd/system exists.
SYSTEMD_RUNNING=0
[ "$LIVE" = 1 ] && [ -d /run/systemd/system ] && SYSTEMD_RUNNING=1
if [ "$LIVE" = 1 ] && [ "$(id -u)" != 0 ]; then die "run as root (or stage with --destdir)"; fi

systemctl_or_skip() {
  if [ "$SYSTEMD_RUNNING" = 1 ]; then systemctl "$@"; else note "systemd is not PID 1 here; skipped: systemctl $*"; fi
}

# ------------------------------------------------------------------- uninstall (coordinator)
# Reverses --coordinator only: the agent and the package stay. Keys and state survive unless
# --purge: a federation's key bundle cannot be made again (agents hold its secret key).
COORD_UNIT=icosfl-coordinator.service
COORD_CONFIG=$CONFIG_DIR/coordinator.toml
if [ "$MODE" = uninstall ] && [ "$COORDINATOR" = 1 ]; then
  if [ "$SYSTEMD_RUNNING" = 1 ]; then
    systemctl disable --now "$COORD_UNIT" 2>/dev/null || true
  elif [ "$LIVE" = 1 ] && command -v systemctl >/dev/null; then
    systemctl disable "$COORD_UNIT" 2>/dev/null || true
  fi
  rm -f "$DESTDIR$UNIT_DIR/$COORD_UNIT" "$DESTDIR$COORD_DROPIN_DIR/50-signing-key.conf"
  rmdir "$DESTDIR$COORD_DROPIN_DIR" 2>/dev/null || true
  systemctl_or_skip daemon-reload
  if [ "$PURGE" = 1 ]; then
    rm -f "$DESTDIR$COORD_CONFIG" "$DESTDIR$CONFIG_DIR/coordinator.json" "$DESTDIR$CONFIG_DIR/agent.json" \
      "$DESTDIR$CONFIG_DIR/coordinator-signing.key" "$DESTDIR$CONFIG_DIR/coordinator-signing.pub"
    rm -rf "$DESTDIR/var/lib/private/icosfl-coordinator" "$DESTDIR/var/lib/icosfl-coordinator"
    note "removed the coordinator, its configuration, key bundles and state; the agent stays"
  else
    note "removed the coordinator service; kept $COORD_CONFIG, the key bundles in $CONFIG_DIR and its state (--purge removes them); the agent stays"
  fi
  exit 0
fi

# --------------------------------------------------------------------------------- uninstall
if [ "$MODE" = uninstall ]; then
  if [ "$SYSTEMD_RUNNING" = 1 ]; then
    for u in "${UNITS[@]}"; do systemctl disable --now "$u" 2>/dev/null || true; done
  elif [ "$LIVE" = 1 ] && command -v systemctl >/dev/null; then
    for u in "${UNITS[@]}"; do systemctl disable "$u" 2>/dev/null || true; done
  fi
  rm -rf "$DESTDIR$PKG_DIR" "$DESTDIR$DROPIN_DIR" "$DESTDIR$COORD_DROPIN_DIR"
  rm -f "$DESTDIR$BIN_DIR/icosfl-agent" "$DESTDIR$BIN_DIR/icosfl-coordinator" \
    "$DESTDIR$UNIT_DIR/icosfl-agent.service" "$DESTDIR$UNIT_DIR/icosfl-coordinator.service" \
    "$DESTDIR$SYSUSERS_DIR/icosfl.conf" "$DESTDIR$TMPFILES_DIR/icosfl-rapl.conf" \
    "$DESTDIR$UDEV_DIR/60-icosfl-rapl.rules" \
    "$DESTDIR$CONFIG_DIR/agent.example.toml" "$DESTDIR$CONFIG_DIR/coordinator.example.toml"
  systemctl_or_skip daemon-reload
  if [ "$PURGE" = 1 ]; then
    rm -rf "$DESTDIR$CONFIG_DIR" "$DESTDIR/var/lib/icosfl" "$DESTDIR/var/lib/private/icosfl-coordinator" \
      "$DESTDIR/var/lib/icosfl-coordinator"
    if [ "$LIVE" = 1 ] && getent passwd icosfl >/dev/null; then userdel icosfl; fi
    if [ "$LIVE" = 1 ] && getent group icosfl >/dev/null; then groupdel icosfl; fi
    for g in icosfl-viewers icosfl-operators; do
      if [ "$LIVE" = 1 ] && getent group "$g" >/dev/null; then groupdel "$g"; fi
    done
    note "removed icosfl, its configuration, state and user"
  else
    note "removed icosfl; kept $CONFIG_DIR, /var/lib/icosfl* and the icosfl user (--purge removes them)"
  fi
  exit 0
fi

# ----------------------------------------------------------------------------------- install
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -f "$SRC/dist/agent/cli.js" ] || die "$SRC/dist/agent/cli.js is missing: build first (npm run build)"
[ -f "$SRC/build/Release/icosfl_native.node" ] || die "$SRC/build/Release/icosfl_native.node is missing: build the addon first (npm run build:native)"
# Every key at its default, with what it means: installed beside the configs as *.example.toml.
EXAMPLES=(agent/config/agent.example.toml coordinator/config/coordinator.example.toml)
for ex in "${EXAMPLES[@]}"; do [ -f "$SRC/$ex" ] || die "$SRC/$ex is missing"; done
command -v node >/dev/null || [ "$LIVE" = 0 ] || die "node (>= 20) is not on PATH; the units run '#!/usr/bin/env node'"
if command -v node >/dev/null; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "node $major found, icosfl needs node >= 20"
fi

# Copy into a fresh sibling tree and swap it in, so a failed copy never leaves half a package.
stage=$DESTDIR$PKG_DIR.new
rm -rf "$stage"
mkdir -p "$stage"
modules_args=("$SRC")
if [ "$GPU" = 1 ]; then modules_args+=(--with-optional); fi
module_list=$(node "$SRC/scripts/runtime-modules.mjs" "${modules_args[@]}") || die "cannot list the runtime node_modules"
mapfile -t modules <<<"$module_list"
files=(package.json build/Release/icosfl_native.node systemd scripts/install.sh scripts/runtime-modules.mjs)
# coordinator/http/page: the status page's static files, read beside dist/ (coordinator/http/status-page.ts).
for d in dist/agent dist/common dist/coordinator dist/native coordinator/http/page "${EXAMPLES[@]}" docs/CONFIG.md README.md LICENSE NOTICE; do
  if [ -e "$SRC/$d" ]; then files+=("$d"); fi
done
# Source maps are a third of node-seal's size and of no use to a service.
tar -C "$SRC" --exclude='*.map' -cf - "${files[@]}" "${modules[@]}" | tar -C "$stage" -xf -
chmod 0755 "$stage/dist/agent/cli.js"
if [ -f "$stage/dist/coordinator/cli.js" ]; then chmod 0755 "$stage/dist/coordinator/cli.js"; fi
rm -rf "$DESTDIR$PKG_DIR"
mv "$stage" "$DESTDIR$PKG_DIR"
note "installed the package into $PKG_DIR (${#modules[@]} runtime modules)"

mkdir -p "$DESTDIR$BIN_DIR"
ln -sfn "$PKG_DIR/dist/agent/cli.js" "$DESTDIR$BIN_DIR/icosfl-agent"
ln -sfn "$PKG_DIR/dist/coordinator/cli.js" "$DESTDIR$BIN_DIR/icosfl-coordinator"

# Units name /usr/local; rewrite the paths for any other prefix.
mkdir -p "$DESTDIR$UNIT_DIR" "$DESTDIR$SYSUSERS_DIR" "$DESTDIR$TMPFILES_DIR" "$DESTDIR$UDEV_DIR"
for u in "${UNITS[@]}"; do
  sed -e "s#/usr/local/bin/#$BIN_DIR/#g" -e "s#/usr/local/lib/icosfl/#$PKG_DIR/#g" \
    "$SRC/systemd/$u" >"$DESTDIR$UNIT_DIR/$u"
  chmod 0644 "$DESTDIR$UNIT_DIR/$u"
done
install -m 0644 "$SRC/systemd/sysusers.d/icosfl.conf" "$DESTDIR$SYSUSERS_DIR/icosfl.conf"
install -m 0644 "$SRC/systemd/tmpfiles.d/icosfl-rapl.conf" "$DESTDIR$TMPFILES_DIR/icosfl-rapl.conf"
install -m 0644 "$SRC/systemd/udev/60-icosfl-rapl.rules" "$DESTDIR$UDEV_DIR/60-icosfl-rapl.rules"
if [ "$GPU" = 1 ]; then
  install -D -m 0644 "$SRC/systemd/drop-ins/gpu-nvidia.conf" "$DESTDIR$DROPIN_DIR/50-gpu-nvidia.conf"
  note "installed the NVIDIA drop-in"
else
  rm -f "$DESTDIR$DROPIN_DIR/50-gpu-nvidia.conf"
fi

if [ "$LIVE" = 1 ]; then
  # The user first: the config's group and the RAPL rules name it.
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$SYSUSERS_DIR/icosfl.conf"
  else
    if ! getent passwd icosfl >/dev/null; then
      useradd --system --user-group --home-dir /var/lib/icosfl --no-create-home --shell /usr/sbin/nologin icosfl
    fi
    # The coordinator's control-socket role groups (sysusers.d/icosfl.conf).
    for g in icosfl-viewers icosfl-operators; do getent group "$g" >/dev/null || groupadd --system "$g"; done
  fi
  if command -v systemd-tmpfiles >/dev/null; then systemd-tmpfiles --create "$TMPFILES_DIR/icosfl-rapl.conf"; fi
  if command -v udevadm >/dev/null && [ -d /run/udev ]; then udevadm control --reload || true; fi
fi

# A default config only where there is none: an admin's file is never overwritten.
mkdir -p "$DESTDIR$CONFIG_DIR"
if [ ! -e "$DESTDIR$CONFIG_DIR/agent.toml" ]; then
  cat >"$DESTDIR$CONFIG_DIR/agent.toml" <<'EOF'
# icosfl agent configuration. Every key is optional; the defaults are documented by
# `icosfl-agent check-config --help`, and /etc/icosfl/agent.example.toml lists every key.
# Check edits with `icosfl-agent check-config`, apply them with `systemctl reload icosfl-agent`.
EOF
  # May hold broker credentials later: readable by the service's group only.
  chmod 0640 "$DESTDIR$CONFIG_DIR/agent.toml"
  if [ "$LIVE" = 1 ]; then chgrp icosfl "$DESTDIR$CONFIG_DIR/agent.toml"; fi
  note "wrote a default $CONFIG_DIR/agent.toml"
else
  note "kept the existing $CONFIG_DIR/agent.toml"
fi
# The examples are the package's documentation, not an admin's config: each install refreshes them
# to this version's keys and defaults (agent.toml and coordinator.toml are never overwritten).
for ex in "${EXAMPLES[@]}"; do install -m 0644 "$SRC/$ex" "$DESTDIR$CONFIG_DIR/$(basename "$ex")"; done
note "installed ${EXAMPLES[*]##*/} into $CONFIG_DIR"

# ------------------------------------------------------------------------------ coordinator
# Its unit runs as a dynamic user with no fixed group: coordinator.toml and coordinator.json
# (parameters only, no secret) are world-readable; agent.json (the secret key) stays root's.
START_COORDINATOR=$COORDINATOR
if [ "$COORDINATOR" = 1 ]; then
  chmod 0755 "$DESTDIR$CONFIG_DIR"
  if [ ! -e "$DESTDIR$COORD_CONFIG" ]; then
    install -m 0644 "$SRC/coordinator/config/coordinator.example.toml" "$DESTDIR$COORD_CONFIG"
    note "wrote $COORD_CONFIG from the example (every key at its default)"
  else
    note "kept the existing $COORD_CONFIG"
  fi
  bundle=$DESTDIR$CONFIG_DIR/coordinator.json
  secret=$DESTDIR$CONFIG_DIR/agent.json
  if [ -e "$bundle" ]; then
    note "kept the existing key bundle $CONFIG_DIR/coordinator.json"
  elif [ "$KEYS" = 0 ]; then
    note "no key bundle at $CONFIG_DIR/coordinator.json (--no-keys): put the federation's there, then systemctl start $COORD_UNIT"
    START_COORDINATOR=0
  elif [ -e "$secret" ]; then
    die "$CONFIG_DIR/agent.json exists without coordinator.json: not making a new federation over it; copy the federation's coordinator.json to $CONFIG_DIR (or use --no-keys)"
  else
    node "$DESTDIR$PKG_DIR/dist/coordinator/cli.js" keys init --out "$DESTDIR$CONFIG_DIR" >/dev/null || die "icosfl-coordinator keys init failed"
    chmod 0644 "$bundle"
    chmod 0600 "$secret"
    if [ "$LIVE" = 1 ]; then chown root:root "$bundle" "$secret"; fi
    chmod 0600 "$DESTDIR$CONFIG_DIR/coordinator-signing.key"
    if [ "$LIVE" = 1 ]; then chown root:root "$DESTDIR$CONFIG_DIR/coordinator-signing.key"; fi
    note "created a federation: $CONFIG_DIR/coordinator.json (parameters, readable by the service)"
    note "$CONFIG_DIR/agent.json holds the federation's secret key (root only, 0600): copy it to every agent over a secure channel, keep it off other hosts"
    if [ "$LIVE" = 0 ]; then note "this staged tree now holds a secret key: ship it to one coordinator only (or stage with --no-keys)"; fi
  fi
fi

# The signing key stays root's 0600; systemd hands it to the dynamic user as a credential, which
# an empty coordinator.signing_key takes (drop-ins/coordinator-signing-key.conf). Only with the
# key there: a LoadCredential= of a missing file would fail the start.
if [ "$COORDINATOR" = 1 ]; then
  if [ -e "$DESTDIR$CONFIG_DIR/coordinator-signing.key" ]; then
    install -D -m 0644 "$SRC/systemd/drop-ins/coordinator-signing-key.conf" "$DESTDIR$COORD_DROPIN_DIR/50-signing-key.conf"
    note "message signing on: $CONFIG_DIR/coordinator-signing.key is passed to the service as a credential; give agents coordinator-signing.pub and enrol them (icosfl-coordinator agents enroll)"
  else
    rm -f "$DESTDIR$COORD_DROPIN_DIR/50-signing-key.conf"
    note "no $CONFIG_DIR/coordinator-signing.key: messages are not signed (put the federation's there and rerun install.sh --coordinator)"
  fi
fi

if [ "$LIVE" = 0 ]; then note "staged under $DESTDIR; nothing enabled"; exit 0; fi
systemctl_or_skip daemon-reload
services=(icosfl-agent.service)
if [ "$COORDINATOR" = 1 ]; then services+=("$COORD_UNIT"); fi
if [ "$ENABLE" = 1 ]; then
  # enable only writes symlinks, so it works without a running systemd too (an image build):
  # the unit then starts on the next boot.
  if command -v systemctl >/dev/null; then systemctl enable "${services[@]}"; fi
  # restart, not start: a reinstall must replace the running code. For Type=notify this
  # returns once the agent has sent READY=1, so a broken install fails here, visibly.
  if [ "$START" = 1 ]; then
    started=(icosfl-agent.service)
    if [ "$START_COORDINATOR" = 1 ]; then started+=("$COORD_UNIT"); fi
    systemctl_or_skip restart "${started[@]}"
  fi
fi
note "done"
