#!/bin/bash
# The isoplugin flow by hand through libvirt, with domains shaped like the ones
# Nova's libvirt driver (virt_type=qemu) generates:
#   1. "rescue" boot: blank root disk (qcow2 over a raw _base file, virtio) +
#      the ISO as a cdrom on sata/ide with <boot order='1'/> (stable device
#      rescue, hw_rescue_device=cdrom) -> the installer writes the disk, powers off
#   2. "snapshot": qemu-img convert of the root disk to qcow2 (what Nova does
#      for a stopped instance)
#   3. a new server from the snapshot: raw _base (force_raw_images) + qcow2
#      overlay grown to the flavor's root size; boots alone -> marker, powers off
# Needs `tools/libvirt-host up`. Prints the times of each step.
#
# Usage: tests/tools/libvirt-install-test.sh [ISO]
# Environment: DISKBUS=virtio|sata|ide|scsi (root disk, default virtio)
#   RESCUE_BUS=sata|ide (default sata)  MACHINE=pc|q35 (default pc)
#   LEGACY_RESCUE=1: Nova's legacy rescue (no hw_rescue_device): the ISO is
#     the first disk (vda, virtio, boots through its isohybrid MBR) and the
#     blank root disk moves to vdb
#   CPU_MODE=none|host-model|qemu64 (default none)  ROOT_GB=2  TIMEOUT=300
#   MARKER=ISOPLUGIN-INSTALLED-SYSTEM-BOOTED  KEEP=1 (keep the files)
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
STATE=${DEVCLOUD_STATE:-$REPO/.devcloud}
ISO=$(readlink -f "${1:-${ISOPLUGIN_CACHE:-$HOME/.cache/isoplugin}/installer.iso}")
DISKBUS=${DISKBUS:-virtio}
RESCUE_BUS=${RESCUE_BUS:-sata}
MACHINE=${MACHINE:-pc}
CPU_MODE=${CPU_MODE:-none}
ROOT_GB=${ROOT_GB:-2}
TIMEOUT=${TIMEOUT:-300}
MARKER=${MARKER:-ISOPLUGIN-INSTALLED-SYSTEM-BOOTED}
URI=qemu:///system
TAG=$DISKBUS-$([ -n "${LEGACY_RESCUE:-}" ] && echo legacy || echo "$RESCUE_BUS")-$MACHINE
T=$STATE/libvirt/test-$TAG
NAME=isoplugin-test-$TAG
virsh_() { timeout 120 virsh -q -c "$URI" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

rm -rf "$T"; mkdir -p "$T/_base" "$T/instances/inst1" "$T/instances/inst2"
# libvirt-qemu (DAC) must traverse every directory up to the files
chmod o+x "$STATE" "$STATE/libvirt" "$T" "$T/_base" "$T/instances" "$T/instances"/*
cp "$ISO" "$T/_base/iso.raw"; chmod 644 "$T/_base/iso.raw"
truncate -s 1G "$T/_base/blank.raw"
qemu-img create -q -f qcow2 -o backing_file="$T/_base/blank.raw",backing_fmt=raw \
    "$T/instances/inst1/disk" ${ROOT_GB}G
qemu-img create -q -f qcow2 -o backing_file="$T/_base/iso.raw",backing_fmt=raw \
    "$T/instances/inst1/disk.rescue"

case $DISKBUS in
    virtio) ROOT_TGT=vda ;;
    sata|scsi) ROOT_TGT=sda ;;
    ide) ROOT_TGT=hda ;;
esac
case $RESCUE_BUS in
    sata) RESCUE_TGT=$([ "$ROOT_TGT" = sda ] && echo sdb || echo sda) ;;
    ide) RESCUE_TGT=hdc ;;
esac
case $CPU_MODE in
    none) CPU= ;;
    host-model) CPU="<cpu mode='host-model' match='exact'><topology sockets='1' cores='1' threads='1'/></cpu>" ;;
    *) CPU="<cpu mode='custom' match='exact'><model fallback='forbid'>$CPU_MODE</model><topology sockets='1' cores='1' threads='1'/></cpu>" ;;
esac
SCSI_CTL=
[ "$DISKBUS" = scsi ] && SCSI_CTL="<controller type='scsi' index='0' model='virtio-scsi'/>"

domain_xml() {   # $1 = instance dir, $2 = rescue (1/0)
    local boot="<boot dev='hd'/>" rescue= root_tgt=$ROOT_TGT
    [ "$2" = 1 ] && [ -n "${LEGACY_RESCUE:-}" ] && root_tgt=vdb
    if [ "$2" = 1 ] && [ -n "${LEGACY_RESCUE:-}" ]; then
        boot=
        rescue="<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$1/disk.rescue'/>
      <target dev='vda' bus='virtio'/>
    </disk>"
    elif [ "$2" = 1 ]; then
        boot=
        rescue="<disk type='file' device='cdrom'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$1/disk.rescue'/>
      <target dev='$RESCUE_TGT' bus='$RESCUE_BUS'/>
      <boot order='1'/>
    </disk>"
    fi
    local rescue_first= rescue_last=$rescue
    [ -n "${LEGACY_RESCUE:-}" ] && { rescue_first=$rescue; rescue_last=; }
    cat <<EOF
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='KiB'>524288</memory>
  <vcpu>1</vcpu>
  <sysinfo type='smbios'><system>
    <entry name='manufacturer'>OpenStack Foundation</entry>
    <entry name='product'>OpenStack Nova</entry>
    <entry name='family'>Virtual Machine</entry>
  </system></sysinfo>
  <os><type arch='x86_64' machine='$MACHINE'>hvm</type>$boot<smbios mode='sysinfo'/></os>
  <features><acpi/><apic/></features>
  $CPU
  <clock offset='utc'>
    <timer name='pit' tickpolicy='delay'/><timer name='rtc' tickpolicy='catchup'/><timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    $rescue_first
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$1/disk'/>
      <target dev='$root_tgt' bus='$DISKBUS'/>
    </disk>
    $rescue_last
    $SCSI_CTL
    <serial type='pty'><log file='$1/console.log' append='off'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <input type='tablet' bus='usb'/>
    <memballoon model='virtio'><stats period='10'/></memballoon>
  </devices>
</domain>
EOF
}

run_domain() {   # $1 = xml file; waits until shut off
    virsh_ destroy "$NAME" >/dev/null 2>&1 || true
    virsh_ undefine "$NAME" >/dev/null 2>&1 || true
    virsh_ define "$1" >/dev/null
    virsh_ start "$NAME" >/dev/null
    local end=$((SECONDS + TIMEOUT))
    while [ "$(virsh_ domstate "$NAME" 2>/dev/null)" = running ]; do
        [ $SECONDS -lt $end ] || { virsh_ destroy "$NAME" >/dev/null; echo "TIMEOUT ($1)"; break; }
        sleep 0.5
    done
    virsh_ undefine "$NAME" >/dev/null
}

# 1. install (rescue with the ISO)
domain_xml "$T/instances/inst1" 1 > "$T/install.xml"
t0=$(now)
run_domain "$T/install.xml"
t1=$(now)
tr -d '\r' < "$T/instances/inst1/console.log" | grep -a ISOPLUGIN-INSTALL || true
grep -aq ISOPLUGIN-INSTALL-DONE "$T/instances/inst1/console.log" \
    || { echo "FAIL: install ($T/instances/inst1/console.log)"; exit 1; }

# 2. snapshot (instance stopped): flatten to qcow2
t2=$(now)
qemu-img convert -f qcow2 -O qcow2 "$T/instances/inst1/disk" "$T/snapshot.qcow2"
t3=$(now)
SNAP_BYTES=$(stat -c %s "$T/snapshot.qcow2")

# 3. new server from the snapshot, root disk grown to ROOT_GB
qemu-img convert -f qcow2 -O raw "$T/snapshot.qcow2" "$T/_base/snap.raw"
qemu-img create -q -f qcow2 -o backing_file="$T/_base/snap.raw",backing_fmt=raw \
    "$T/instances/inst2/disk" $((ROOT_GB + 1))G
domain_xml "$T/instances/inst2" 0 > "$T/boot.xml"
t4=$(now)
run_domain "$T/boot.xml"
t5=$(now)
tr -d '\r' < "$T/instances/inst2/console.log" | grep -a -A1 "$MARKER" || true
grep -aq "$MARKER" "$T/instances/inst2/console.log" \
    || { echo "FAIL: boot ($T/instances/inst2/console.log)"; exit 1; }
echo "OK libvirt disk=$DISKBUS rescue=$([ -n "${LEGACY_RESCUE:-}" ] && echo legacy-virtio-disk || echo "cdrom-$RESCUE_BUS") machine=$MACHINE cpu=$CPU_MODE" \
     "install=$(secs "$t0" "$t1")s snapshot=$(secs "$t2" "$t3")s (${SNAP_BYTES} bytes)" \
     "boot=$(secs "$t4" "$t5")s"
[ -n "${KEEP:-}" ] || rm -rf "$T"
