#!/bin/bash
# End-to-end check of the tiny installer ISO with plain QEMU (TCG only):
# blank disk + ISO -> install -> power off; then the disk alone -> marker.
#
# Usage: tests/tools/qemu-install-test.sh [ISO] [RUNDIR]
#   ISO     default ${ISOPLUGIN_CACHE:-$HOME/.cache/isoplugin}/installer.iso
#   RUNDIR  default a new mktemp -d; keeps disk.qcow2, install.log, boot.log
# Environment:
#   DISKBUS=virtio|ide|sata|scsi   (default virtio; sata uses machine q35)
#   MACHINE=pc|q35                 (default pc, q35 for sata)
#   DISK_SIZE=1G   MARKER=ISOPLUGIN-INSTALLED-SYSTEM-BOOTED   TIMEOUT=300
#   EXTRA_DISK=1   also attach a second non-blank disk before the blank one
# Exit 0 when both steps printed their markers. Never uses KVM (it hangs here).
set -euo pipefail
ISO=$(readlink -f "${1:-${ISOPLUGIN_CACHE:-$HOME/.cache/isoplugin}/installer.iso}")
RUN=${2:-$(mktemp -d /tmp/isoplugin-qemu.XXXXXX)}
DISKBUS=${DISKBUS:-virtio}
MACHINE=${MACHINE:-$([ "$DISKBUS" = sata ] && echo q35 || echo pc)}
DISK_SIZE=${DISK_SIZE:-1G}
MARKER=${MARKER:-ISOPLUGIN-INSTALLED-SYSTEM-BOOTED}
TIMEOUT=${TIMEOUT:-300}
mkdir -p "$RUN"; cd "$RUN"
rm -f disk.qcow2 install.log boot.log
qemu-img create -q -f qcow2 disk.qcow2 "$DISK_SIZE"

disk_args() {   # $1 = file  $2 = index
    case $DISKBUS in
        virtio) echo "-drive file=$1,format=qcow2,if=virtio,index=$2" ;;
        ide) echo "-drive file=$1,format=qcow2,if=ide,index=$2" ;;      # pc: PIIX IDE
        sata) echo "-drive file=$1,format=qcow2,if=none,id=d$2 -device ide-hd,drive=d$2,bus=ide.$2" ;;  # q35 AHCI
        scsi) echo "-drive file=$1,format=qcow2,if=none,id=d$2 -device scsi-hd,drive=d$2,bus=vscsi.0" ;;
        *) echo "unknown DISKBUS $DISKBUS" >&2; exit 2 ;;
    esac
}
BASE="-accel tcg -machine $MACHINE -m 512 -display none -monitor none -nodefaults -no-reboot"
[ "$DISKBUS" = scsi ] && BASE="$BASE -device virtio-scsi-pci,id=vscsi"
CDROM="-drive file=$ISO,format=raw,media=cdrom,readonly=on,if=none,id=cd -device ide-cd,drive=cd,bus=ide.$([ "$MACHINE" = q35 ] && echo 2 || echo 1)"
EXTRA=
if [ -n "${EXTRA_DISK:-}" ]; then
    qemu-img create -q -f qcow2 other.qcow2 64M
    qemu-io -f qcow2 -c 'write -P 0x55 0 1M' other.qcow2 >/dev/null
    EXTRA=$(disk_args other.qcow2 0); DISKIDX=1
fi
DISKIDX=${DISKIDX:-0}

t0=$(date +%s.%N)
timeout "$TIMEOUT" qemu-system-x86_64 $BASE -serial file:install.log $CDROM $EXTRA \
    $(disk_args disk.qcow2 "$DISKIDX") -boot d </dev/null || true
t1=$(date +%s.%N)
grep -a ISOPLUGIN-INSTALL install.log | tr -d '\r' || true
grep -aq ISOPLUGIN-INSTALL-DONE install.log || { echo "FAIL: install ($RUN/install.log)"; exit 1; }
timeout "$TIMEOUT" qemu-system-x86_64 $BASE -serial file:boot.log \
    $(disk_args disk.qcow2 0) -boot c </dev/null || true
t2=$(date +%s.%N)
grep -a -A1 "$MARKER" boot.log | tr -d '\r' || true
grep -aq "$MARKER" boot.log || { echo "FAIL: boot ($RUN/boot.log)"; exit 1; }
awk -v a="$t0" -v b="$t1" -v c="$t2" -v bus="$DISKBUS" -v m="$MACHINE" -v r="$RUN" \
    'BEGIN { printf "OK bus=%s machine=%s install=%.1fs boot=%.1fs run=%s\n", bus, m, b - a, c - b, r }'
