#!/usr/bin/env bash
# Builds (once) the throw-away VM the systemd system test boots: a minimal Debian bookworm
# root filesystem with systemd as PID 1 and the host's `node`, a stock Debian kernel, and a
# busybox initramfs that loads the virtio and ext4 modules. /work/shared/SYSTEM-TEST.md has the
# measurements behind this recipe.
#   scripts/vm/build-image.sh [CACHE_DIR]     (default ${XDG_CACHE_HOME:-~/.cache}/icosfl-vm)
# Prints the directory holding rootfs.ext4, vmlinuz and initrd.gz. The directory is keyed by a
# hash of this script and of the node binary, so editing either builds a fresh image; a
# finished build is marked by a `complete` file, so an interrupted one is redone.
# Needs root (mmdebstrap, ownership in the image) and: mmdebstrap e2fsprogs cpio busybox-static.
set -euo pipefail

die() { echo "build-image: $*" >&2; exit 1; }
log() { echo "build-image: $*" >&2; }

CACHE_ROOT=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/icosfl-vm}
NODE_BIN=$(command -v node) || die "node is not on PATH"
NODE_BIN=$(readlink -f "$NODE_BIN")
for tool in mmdebstrap mke2fs cpio apt-get dpkg; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (apt-get install qemu-system-x86 qemu-utils mmdebstrap e2fsprogs cpio zstd busybox-static)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && ! ldd "$BUSYBOX" >/dev/null 2>&1 || die "$BUSYBOX is missing or not static (apt-get install busybox-static)"
[ "$(id -u)" = 0 ] || die "run as root: mmdebstrap and the image's file ownership need it"

key=$( { cat "$0"; sha256sum "$NODE_BIN"; } | sha256sum | cut -c1-16)
OUT=$CACHE_ROOT/$key
if [ -f "$OUT/complete" ]; then echo "$OUT"; exit 0; fi
rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d "$CACHE_ROOT/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The apt sources this machine already uses (CI: Debian's mirror is its only network).
MIRROR=${ICOSFL_VM_MIRROR:-}
if [ -z "$MIRROR" ]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ]; then MIRROR=$f; break; fi
  done
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

# ---- kernel: the current Debian kernel package, unpacked (no install scripts run)
log "downloading the kernel"
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
kpkg=$(kernel_package)
# Container images often ship without package lists.
if [ -z "$kpkg" ]; then apt-get update -qq >&2; kpkg=$(kernel_package); fi
[ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-amd64"
# Sandbox user root: _apt cannot write into this private (0700) build directory.
(cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >&2)
dpkg -x "$WORK"/"$kpkg"_*.deb "$WORK/kernel"
cp "$WORK"/kernel/boot/vmlinuz-* "$OUT/vmlinuz"
moddir=$(echo "$WORK"/kernel/lib/modules/*)
[ -d "$moddir/kernel" ] || die "no modules in $kpkg"

# ---- initramfs: busybox, the modules needed to see /dev/vda as ext4, an init that mounts it
# Debian builds virtio-blk and ext4 as modules. The package ships no modules.dep (depmod runs
# at install time, and kmod may be absent here), so each module's prerequisites are read from
# the `depends=` field of its own .modinfo section.
declare -A path_of=()
while IFS= read -r f; do
  b=$(basename "$f"); b=${b%%.ko*}; path_of[${b//-/_}]=$f
done < <(find "$moddir/kernel" -name '*.ko*')
declare -A seen=()
order=()
add_module() { # appends the module's prerequisites, then the module itself
  local name=${1//-/_} f deps dep
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  f=${path_of[$name]:-}
  [ -n "$f" ] || { grep -q "/${name}.ko" "$moddir/modules.builtin" || log "module $name not found"; return 0; }
  case "$f" in
    *.ko.xz) xz -dc "$f" >"$WORK/$name.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$WORK/$name.ko" ;;
    *) cp "$f" "$WORK/$name.ko" ;;
  esac
  deps=$(grep -a -o 'depends=[a-z0-9_,-]*' "$WORK/$name.ko" | sed 's/^depends=//' | tr ',' ' ')
  for dep in $deps; do add_module "$dep"; done
  order+=("$name")
}
# crc32c_generic: ext4 asks the crypto API for crc32c at mount time, with no modprobe to load it.
for name in virtio_pci virtio_blk ext4 crc32c_generic; do add_module "$name"; done
mkdir -p "$WORK/initrd/bin" "$WORK/initrd/modules"
cp "$BUSYBOX" "$WORK/initrd/bin/busybox"
: >"$WORK/initrd/modules/order"
for name in "${order[@]}"; do
  mv "$WORK/$name.ko" "$WORK/initrd/modules/$name.ko"
  echo "$name.ko" >>"$WORK/initrd/modules/order"
done
cat >"$WORK/initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do insmod /modules/$m || echo "initrd: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initrd: cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
EOF
chmod 0755 "$WORK/initrd/init"
(cd "$WORK/initrd" && find . | cpio -o -H newc --quiet | gzip -9) >"$OUT/initrd.gz"

# ---- root filesystem: systemd as PID 1, the host's node, a harness unit that runs the payload.
# socat lets checks query the agent's control socket without a Node start per query (seconds
# each under emulation).
log "building the root filesystem from $MIRROR"
mmdebstrap --quiet --variant=minbase --include=systemd,systemd-sysv,dbus,libnss-systemd,procps,socat \
  bookworm "$WORK/root" "$MIRROR" </dev/null >&2
R=$WORK/root
install -m 0755 "$NODE_BIN" "$R/usr/local/bin/node"
# A fixed machine-id: otherwise every boot is a first boot (presets, firstboot prompts).
echo 0123456789abcdef0123456789abcdef >"$R/etc/machine-id"
: >"$R/etc/fstab"
echo icosfl-vm >"$R/etc/hostname"
for u in getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service \
  systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  e2scrub_reap.service fstrim.timer; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# The harness: once boot has finished, unpack the payload disk (/dev/vdb, a plain tar) and run
# its run.sh with output on the second serial port, then power off. Type=exec rather than
# oneshot: a oneshot that waits for the end of boot would be part of boot and deadlock it.
cat >"$R/usr/local/sbin/icosfl-harness" <<'EOF'
#!/bin/sh
systemctl is-system-running --wait >/dev/null 2>&1
mkdir -p /payload
if tar -C /payload -xf /dev/vdb; then
  SYSTEMD_COLORS=0 SYSTEMD_URLIFY=0 SYSTEMD_PAGER= /bin/bash /payload/run.sh >/dev/ttyS1 2>&1
  rc=$?
else
  rc=99
fi
echo "HARNESS-EXIT $rc" >/dev/ttyS1
sync
systemctl poweroff --no-block
EOF
chmod 0755 "$R/usr/local/sbin/icosfl-harness"
cat >"$R/etc/systemd/system/icosfl-harness.service" <<'EOF'
[Unit]
Description=icosfl system-test harness
[Service]
Type=exec
ExecStart=/usr/local/sbin/icosfl-harness
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/icosfl-harness.service "$R/etc/systemd/system/multi-user.target.wants/icosfl-harness.service"
rm -rf "$R/var/cache/apt/archives/"*.deb "$R/var/lib/apt/lists/"* "$R/usr/share/doc" "$R/usr/share/man"

size_mb=$(( $(du -sm "$R" | cut -f1) + 400 ))
mke2fs -q -t ext4 -L root -d "$R" "$OUT/rootfs.ext4" "${size_mb}M"
echo "kernel=$kpkg node=$("$NODE_BIN" -v)" >"$OUT/complete"
# Other keys are older images (a few hundred MB each) or remains of interrupted builds.
for old in "$CACHE_ROOT"/*; do
  name=$(basename "$old")
  if [ "$name" != "$key" ] && [[ "$name" =~ ^[0-9a-f]{16}$ ]]; then rm -rf "$old"; fi
done
log "image ready in $OUT"
echo "$OUT"
