#!/bin/bash
# Build the tiny unattended installer ISO used by isoplugin's functional tests.
#
# Usage: tests/tools/build-installer-iso.sh [OUT]
#
#   OUT defaults to ${ISOPLUGIN_CACHE:-$HOME/.cache/isoplugin}/installer.iso.
#   Work files go into ${OUT%.iso}-work/ beside it (unpacked kernel and
#   disk drivers, initramfs trees, disk image; about 125 MB), the kernel .deb
#   into $ISOPLUGIN_CACHE/debs/ (70 MB); all safe to delete.
#
# The ISO (BIOS only, isolinux, El Torito no-emulation + isohybrid MBR) boots a
# Debian kernel and a busybox initramfs whose /init writes a small bootable
# disk image (MBR, FAT16 partition at 1 MiB, syslinux, the same kernel and a
# second busybox initramfs) to the first blank, writable, non-removable,
# non-ISO-9660 disk (vd*, sd*, hd*, xvd*, nvme*n*), verifies it and powers off.
# The installed system prints the marker line on ttyS0 and powers off.
#
# Environment:
#   ISOPLUGIN_CACHE   cache folder (default $HOME/.cache/isoplugin)
#   MARKER            marker printed by the installed system
#   LINGER            seconds the installed system stays up after the
#                     marker before it powers off (default 30; kernel
#                     command line isoplugin_linger=N overrides)
#                     (default ISOPLUGIN-INSTALLED-SYSTEM-BOOTED; no spaces)
#   KERNEL_PKG        Debian kernel package (default: what linux-image-amd64
#                     depends on)
#   INSTALL_ID        id written into the installed system's kernel cmdline
#   FORCE=1           rebuild even if the cached ISO is up to date
#
# The build is skipped when OUT exists and ${OUT}.build-id matches the hash of
# this script and the settings above. Needs root only to apt-get install the
# missing packages; the build itself uses no loop devices and no mounts.
set -euo pipefail

SELF=$(readlink -f "$0")
CACHE=${ISOPLUGIN_CACHE:-$HOME/.cache/isoplugin}
OUT=${1:-$CACHE/installer.iso}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
WORK=${OUT%.iso}-work
MARKER=${MARKER:-ISOPLUGIN-INSTALLED-SYSTEM-BOOTED}
LINGER=${LINGER:-30}
KERNEL_PKG=${KERNEL_PKG:-}
VOLID=TINYLINUX_1_0_AMD64
DISK_INFO='Tiny Linux 1.0 amd64'
PART_MB=24          # FAT16 partition size; the disk image is PART_MB+1 MiB

case $MARKER in *[[:space:]]*|'') echo "MARKER must be one word" >&2; exit 2 ;; esac

log() { printf '[build-installer-iso] %s\n' "$*" >&2; }

BUILD_ID=$( { sha256sum < "$SELF"; echo "MARKER=$MARKER LINGER=$LINGER KERNEL_PKG=$KERNEL_PKG"; } \
            | sha256sum | cut -c1-16)
if [ -z "${FORCE:-}" ] && [ -s "$OUT" ] && [ -f "$OUT.build-id" ] \
        && [ "$(cat "$OUT.build-id")" = "$BUILD_ID" ]; then
    log "up to date: $OUT (build id $BUILD_ID)"
    echo "$OUT"
    exit 0
fi
INSTALL_ID=${INSTALL_ID:-$BUILD_ID-$(date -u +%Y%m%dT%H%M%SZ)}

# --- packages ---------------------------------------------------------------
# package:file that proves it is installed
NEEDED="busybox-static:/bin/busybox isolinux:/usr/lib/ISOLINUX/isolinux.bin
syslinux:/usr/bin/syslinux syslinux-common:/usr/lib/syslinux/mbr/mbr.bin
xorriso:/usr/bin/xorriso mtools:/usr/bin/mcopy dosfstools:/sbin/mkfs.fat
fdisk:/sbin/sfdisk cpio:/usr/bin/cpio kmod:/sbin/depmod xz-utils:/usr/bin/xz"
missing=
for pf in $NEEDED; do
    [ -e "${pf#*:}" ] || missing="$missing ${pf%%:*}"
done
# apt's own output goes to a log file: one line says what is installed
APT_LOG=$CACHE/apt.log
mkdir -p "$CACHE"
apt_() {
    echo "\$ apt-get $*" >> "$APT_LOG"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" \
        >> "$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; log "apt-get $1 failed (log: $APT_LOG)"; exit 1; }
}
APT_UPDATED=
apt_update_once() {
    if [ -z "$APT_UPDATED" ]; then
        apt_ update
        APT_UPDATED=1
    fi
}
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        log "missing Debian packages:$missing (run as root or install them)"; exit 1
    fi
    log "installing Debian packages:$missing (log: $APT_LOG)"
    apt_update_once
    apt_ install -y --no-install-recommends $missing
fi

mkdir -p "$WORK"
cd "$WORK"

# --- kernel -----------------------------------------------------------------
# downloaded .debs are shared by all outputs: $CACHE/debs
DEBS=$CACHE/debs
mkdir -p "$DEBS"
deb=$(ls -1 "$DEBS"/${KERNEL_PKG:-linux-image-*}_*.deb 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$deb" ]; then
    kernel_pkg() {   # what the linux-image-amd64 meta package depends on
        { apt-cache show linux-image-amd64 2>/dev/null || true; } \
            | sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -n1
    }
    if [ -z "$KERNEL_PKG" ]; then
        KERNEL_PKG=$(kernel_pkg)
        if [ -z "$KERNEL_PKG" ]; then
            [ "$(id -u)" = 0 ] || { log "no apt lists: run apt-get update (as root)"; exit 1; }
            apt_update_once
            KERNEL_PKG=$(kernel_pkg)
        fi
        [ -n "$KERNEL_PKG" ] || { log "cannot find linux-image-amd64 in apt"; exit 1; }
    fi
    log "apt-get download $KERNEL_PKG"
    (cd "$DEBS" && apt-get download "$KERNEL_PKG" >> "$APT_LOG" 2>&1 || true)
    deb=$(ls -1 "$DEBS"/"$KERNEL_PKG"_*.deb 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$deb" ] || { log "apt-get download $KERNEL_PKG failed"; exit 1; }
fi
# only the kernel and the module directories the installer's drivers and
# their dependencies live in (about 40 MB instead of 450 MB)
KSUBDIRS="drivers/ata drivers/block drivers/nvme drivers/scsi drivers/virtio block crypto lib arch/x86/crypto"
if [ ! -f kernel/.done ] || [ "$(cat kernel/.done)" != "$deb $KSUBDIRS" ]; then
    log "unpacking $deb"
    rm -rf kernel && mkdir kernel
    pats="./boot/vmlinuz-* ./lib/modules/*/modules.builtin*"
    for d in $KSUBDIRS; do pats="$pats ./lib/modules/*/kernel/$d"; done
    set -f   # the patterns are for tar, not for the shell
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C kernel --wildcards $pats
    set +f
    echo "$deb $KSUBDIRS" > kernel/.done
fi
KVER=$(ls kernel/lib/modules | head -n1)
VMLINUZ=kernel/boot/vmlinuz-$KVER
[ -f "kernel/lib/modules/$KVER/modules.dep" ] || depmod -b "$WORK/kernel" "$KVER"

# --- busybox initramfs skeleton --------------------------------------------
mk_skel() {   # $1 = dir
    rm -rf "$1"; mkdir -p "$1"/{bin,dev,proc,sys,tmp,etc,mnt}
    cp /bin/busybox "$1/bin/busybox"
    local a
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$1/bin/$a"
    done
}
mk_cpio() {   # $1 = dir, $2 = out.gz
    (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) \
        | gzip -9n > "$2"
}

# --- installed system -------------------------------------------------------
log "installed system initramfs"
mk_skel sys-root
printf '%s\n' "$MARKER" > sys-root/etc/marker
cat > sys-root/init <<'EOF'
#!/bin/sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
exec </dev/console >/dev/console 2>&1
MARKER=$(cat /etc/marker)
ID=unknown
for w in $(cat /proc/cmdline); do
    case $w in
        isoplugin_marker=*) MARKER=${w#isoplugin_marker=} ;;
        installed_id=*) ID=${w#installed_id=} ;;
        isoplugin_linger=*) LINGER=${w#isoplugin_linger=} ;;
    esac
done
OUT=/dev/ttyS0; [ -c $OUT ] || OUT=/dev/console
ROOTDEV=$(ls /sys/block 2>/dev/null | grep -v -e "^loop" -e "^ram" | tr "\n" " ")
printf '\n%s\n' "$MARKER" > $OUT
printf 'isoplugin: installed system id=%s kernel=%s uptime=%s disks=%s\n' \
    "$ID" "$(uname -r)" "$(cut -d' ' -f1 /proc/uptime)" "$ROOTDEV" > $OUT
sync
# Stay up a while, like a real system at its login prompt: Nova's libvirt
# driver cannot read the console log of a guest that is already off, so a
# verify step polling the log must find the guest still running.
LINGER=${LINGER:-@LINGER@}
printf 'isoplugin: up, powering off in %s s\n' "$LINGER" > $OUT
sleep "$LINGER"
poweroff -f
EOF
sed -i "s/@LINGER@/$LINGER/" sys-root/init
chmod 755 sys-root/init
mk_cpio sys-root sys-initrd.gz

log "installed disk image"
cat > syslinux.cfg <<EOF
SERIAL 0 115200
DEFAULT tiny
PROMPT 0
TIMEOUT 1
LABEL tiny
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 panic=5 quiet loglevel=3 installed_id=$INSTALL_ID
EOF
rm -f part.img disk.img
mkfs.fat -F 16 -n INSTALLED -h 2048 -C part.img $((PART_MB * 1024)) >/dev/null
mcopy -i part.img "$VMLINUZ" ::/vmlinuz
mcopy -i part.img sys-initrd.gz ::/initrd.gz
mcopy -i part.img syslinux.cfg ::/syslinux.cfg
syslinux --install part.img
truncate -s $(((PART_MB + 1) * 1024 * 1024)) disk.img
printf 'label: dos\nstart=2048, size=%d, type=e, bootable\n' $((PART_MB * 2048)) | sfdisk -q disk.img
dd if=part.img of=disk.img bs=1M seek=1 conv=notrunc status=none
dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.img bs=440 count=1 conv=notrunc status=none
DISK_BYTES=$(stat -c %s disk.img)
DISK_SHA=$(sha256sum disk.img | cut -d' ' -f1)

# --- installer initramfs ----------------------------------------------------
log "installer initramfs"
mk_skel inst-root
mkdir -p inst-root/payload inst-root/modules
gzip -9nc disk.img > inst-root/payload/disk.img.gz
printf '%s %s\n' "$DISK_BYTES" "$DISK_SHA" > inst-root/payload/disk.img.info
MODS="virtio_pci virtio_blk virtio_scsi ata_piix ata_generic ahci sd_mod nvme"
: > inst-root/modules/order
for ko in $(modprobe -d "$WORK/kernel" -S "$KVER" --show-depends -a $MODS \
            | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++'); do
    name=$(basename "$ko")
    case $name in
        *.ko.xz) xz -dc "$ko" > "inst-root/modules/${name%.xz}"; name=${name%.xz} ;;
        *.ko.zst) zstd -qdc "$ko" > "inst-root/modules/${name%.zst}"; name=${name%.zst} ;;
        *) cp "$ko" inst-root/modules/ ;;
    esac
    echo "$name" >> inst-root/modules/order
done
cat > inst-root/init <<'EOF'
#!/bin/sh
# isoplugin tiny installer: write /payload/disk.img.gz to the blank system disk.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
exec </dev/console >/dev/console 2>&1
OUT=/dev/ttyS0; [ -c $OUT ] || OUT=/dev/console
say() { echo "$*" > $OUT; }
fail() { say "ISOPLUGIN-INSTALL-FAILED: $*"; sync; poweroff -f; sleep 60; }
say ""
say "ISOPLUGIN-INSTALL-START kernel=$(uname -r)"
for m in $(cat /modules/order); do insmod /modules/$m 2>/dev/null; done
read BYTES SHA < /payload/disk.img.info
MIN_SECTORS=$((BYTES / 512))
# cmdline: isoplugin_target=vdb forces a disk; isoplugin_blank_only=1 refuses non-blank disks
FORCED=; BLANK_ONLY=
for w in $(cat /proc/cmdline); do
    case $w in
        isoplugin_target=*) FORCED=${w#isoplugin_target=} ;;
        isoplugin_blank_only=1) BLANK_ONLY=1 ;;
    esac
done
# candidates: whole disks, writable, not removable, big enough, no ISO 9660 signature
candidates() {
    for d in $(ls /sys/block 2>/dev/null); do
        case $d in vd*|sd*|hd*|xvd*|nvme*n*) ;; *) continue ;; esac
        [ -b /dev/$d ] || continue
        [ "$(cat /sys/block/$d/removable 2>/dev/null)" = 0 ] || continue
        [ "$(cat /sys/block/$d/ro 2>/dev/null)" = 0 ] || continue
        [ "$(cat /sys/block/$d/size 2>/dev/null || echo 0)" -ge $MIN_SECTORS ] || continue
        sig=$(dd if=/dev/$d bs=2048 skip=16 count=1 2>/dev/null | head -c 6 | tail -c 5)
        [ "$sig" = CD001 ] && { say "isoplugin: skipping /dev/$d (ISO 9660)"; continue; }
        echo $d
    done
}
is_blank() {   # first and last MiB are all zero
    n=$(dd if=/dev/$1 bs=1M count=1 2>/dev/null | tr -d '\000' | wc -c)
    [ "$n" = 0 ] || return 1
    s=$(cat /sys/block/$1/size)
    n=$(dd if=/dev/$1 bs=512 skip=$((s - 2048)) count=2048 2>/dev/null | tr -d '\000' | wc -c)
    [ "$n" = 0 ]
}
TARGET=
i=0
while [ $i -lt 100 ]; do          # 100 x 0.2 s = 20 s
    if [ -n "$FORCED" ]; then
        [ -b /dev/$FORCED ] && { TARGET=$FORCED; break; }
    else
        first=
        for d in $(candidates); do
            [ -z "$first" ] && first=$d
            if is_blank $d; then TARGET=$d; break; fi
        done
        [ -n "$TARGET" ] && break
        # no blank disk: after 3 s settle for the first usable one
        if [ -n "$first" ] && [ -z "$BLANK_ONLY" ] && [ $i -ge 15 ]; then
            TARGET=$first; say "isoplugin: no blank disk, using /dev/$first"; break
        fi
    fi
    usleep 200000; i=$((i + 1))
done
[ -n "$TARGET" ] || fail "no target disk found (have: $(ls /sys/block | tr '\n' ' '))"
say "ISOPLUGIN-INSTALL-TARGET /dev/$TARGET sectors=$(cat /sys/block/$TARGET/size)"
gunzip -c /payload/disk.img.gz | dd of=/dev/$TARGET bs=1M conv=fsync 2>/dev/null \
    || fail "writing /dev/$TARGET"
sync
blockdev --flushbufs /dev/$TARGET 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
GOT=$(head -c $BYTES /dev/$TARGET | sha256sum | cut -d' ' -f1)
[ "$GOT" = "$SHA" ] || fail "verification of /dev/$TARGET: sha256 $GOT != $SHA"
say "ISOPLUGIN-INSTALL-DONE target=/dev/$TARGET bytes=$BYTES uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
sleep 60
EOF
chmod 755 inst-root/init
mk_cpio inst-root initrd.gz

# --- ISO --------------------------------------------------------------------
log "ISO"
rm -rf isoroot && mkdir -p isoroot/isolinux isoroot/boot isoroot/.disk
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 isoroot/isolinux/
cp "$VMLINUZ" isoroot/boot/vmlinuz
cp initrd.gz isoroot/boot/initrd.gz
cat > isoroot/isolinux/isolinux.cfg <<EOF
SERIAL 0 115200
DEFAULT install
PROMPT 0
TIMEOUT 1
LABEL install
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.gz
  APPEND console=ttyS0,115200 panic=5 quiet loglevel=3
EOF
printf '%s' "$DISK_INFO" > isoroot/.disk/info
# read by the fake compute driver of tools/devcloud when used as a rescue image
printf 'action=install\nmarker=%s\nmessage=tiny installer (real ISO)\n' "$MARKER" > isoroot/ISOPLUGIN.CFG
printf 'kernel=%s\ninstall_id=%s\nbuild_id=%s\n' "$KVER" "$INSTALL_ID" "$BUILD_ID" > isoroot/BUILD.TXT
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.tmp"
xorriso -as mkisofs -quiet -o "$OUT.tmp" -V "$VOLID" -A "Tiny Linux 1.0 amd64 isoplugin test installer" \
    -iso-level 3 -J -R -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
    isoroot
mv -f "$OUT.tmp" "$OUT"
echo "$BUILD_ID" > "$OUT.build-id"
log "built $OUT ($(stat -c %s "$OUT") bytes, volume id $VOLID, kernel $KVER)"
echo "$OUT"
