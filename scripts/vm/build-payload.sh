#!/usr/bin/env bash
# Packs what the system-test VM runs: the built package exactly as scripts/install.sh lays it
# out (staged with --destdir, so only runtime node_modules travel, no webgpu, no typescript)
# under icosfl/, and CHECK_SCRIPT as run.sh, which the in-VM harness runs as root.
#   scripts/vm/build-payload.sh OUT_TAR CHECK_SCRIPT
# Inside the VM, /payload/icosfl/scripts/install.sh installs it for real.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: build-payload.sh OUT_TAR CHECK_SCRIPT" >&2; exit 2; }
OUT=$1 CHECK=$2
[ -f "$CHECK" ] || { echo "build-payload: $CHECK does not exist" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
"$ROOT/scripts/install.sh" --destdir "$stage/dest" --no-gpu >&2
cp "$CHECK" "$stage/run.sh"
tar -cf "$OUT" -C "$stage/dest/usr/local/lib" icosfl -C "$stage" run.sh
echo "build-payload: $(du -h "$OUT" | cut -f1) in $OUT" >&2
