#!/usr/bin/env bash
# Boots the image from build-image.sh once with PAYLOAD (a tar whose run.sh the in-VM harness
# runs as root) and leaves OUT_DIR/console.log (kernel + systemd console, ttyS0) and
# OUT_DIR/results.log (run.sh's output, then `HARNESS-EXIT <rc>`, ttyS1).
#   scripts/vm/run-vm.sh IMAGE_DIR PAYLOAD_TAR OUT_DIR [TIMEOUT_S]
# Exits with QEMU's status (124 when the timeout hit). The root disk is opened with
# snapshot=on, so the cached image is never modified.
# Accelerator: ICOSFL_VM_ACCEL=kvm|tcg forces one. Otherwise KVM where /dev/kvm is usable and
# is not the PVM variant (/sys/module/kvm_pvm), which hangs stock kernels silently; else TCG.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: run-vm.sh IMAGE_DIR PAYLOAD_TAR OUT_DIR [TIMEOUT_S]" >&2; exit 2; }
IMAGE=$1 PAYLOAD=$2 OUT=$3 TIMEOUT=${4:-300}
for f in rootfs.ext4 vmlinuz initrd.gz; do
  [ -f "$IMAGE/$f" ] || { echo "run-vm: $IMAGE/$f is missing (run scripts/vm/build-image.sh)" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "run-vm: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 2; }
mkdir -p "$OUT"
: >"$OUT/console.log"
: >"$OUT/results.log"

accel=${ICOSFL_VM_ACCEL:-}
if [ -z "$accel" ]; then
  if [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ]; then accel=kvm; else accel=tcg; fi
fi
case "$accel" in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  *) echo "run-vm: ICOSFL_VM_ACCEL must be kvm or tcg, got '$accel'" >&2; exit 2 ;;
esac
echo "run-vm: accel=$accel timeout=${TIMEOUT}s" >&2

exec timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 "${accel_args[@]}" -smp 2 -m 1024 \
  -display none -no-reboot -nic none -monitor none \
  -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.gz" \
  -append "console=ttyS0 root=/dev/vda rw panic=-1 quiet systemd.show_status=1 systemd.log_color=0" \
  -drive file="$IMAGE/rootfs.ext4",format=raw,if=virtio,snapshot=on \
  -drive file="$PAYLOAD",format=raw,if=virtio,readonly=on \
  -serial file:"$OUT/console.log" -serial file:"$OUT/results.log"
