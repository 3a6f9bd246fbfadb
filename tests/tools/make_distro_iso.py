#!/usr/bin/env python3
"""Write small ISOs laid out like each installer family's real media.

For isoplugin's install profile and remastering tests. Each image holds the
files the profiles look at and edit (boot menus copied from the real media,
trimmed), tiny stand-ins for kernels and initrds (an initrd is a real gzip'd
newc cpio), and the El Torito and hybrid layout the distribution ships,
written by xorriso with the options the distributions' own build tools use:

* ``debian``: isolinux BIOS entry, an EFI El Torito image inside the ISO
  (``boot/grub/efi.img``), isohybrid MBR and GPT (debian-cd's options);
* ``ubuntu``: GRUB BIOS entry, the EFI image as an appended GPT partition
  (``-append_partition 2`` + ``--interval:appended_partition_2``), as
  Ubuntu 22.04 and later;
* ``anaconda``: isolinux + ``images/efiboot.img`` (a FAT image with its
  own copy of the UEFI menu, made with mtools), isohybrid MBR + GPT
  (lorax's options), with ``.treeinfo``;
* ``suse``: isolinux in ``boot/x86_64/loader`` + an EFI image;
* ``windows``: UDF only (pycdlib), with ``sources/install.wim``, as
  Microsoft's oscdimg writes it (no xorriso: it writes no UDF).

Usable from Python (``make(family, path)``) and as a script::

    python tests/tools/make_distro_iso.py debian out.iso
"""

import gzip
import os
import shutil
import subprocess
import sys
import tempfile

from tests.tools import make_test_iso

SECTOR = 2048
FAMILIES = ('debian', 'ubuntu', 'anaconda', 'suse', 'windows')


def cpio_gz(files):
    """A gzip'd newc cpio archive with ``{name: bytes}`` (an initrd)."""
    out = bytearray()
    for n, (name, data) in enumerate(list(files.items()) +
                                     [('TRAILER!!!', b'')]):
        name_b = name.encode() + b'\0'
        mode = 0o100644 if name != 'TRAILER!!!' else 0
        fields = (n + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0,
                  len(name_b), 0)
        out += b'070701' + b''.join(b'%08X' % v for v in fields)
        out += name_b + b'\0' * (-(110 + len(name_b)) % 4)
        out += data + b'\0' * (-len(data) % 4)
    return gzip.compress(bytes(out), mtime=0)


def read_cpio_gz(data):
    """``{name: bytes}`` from (concatenated) gzip'd newc cpio archives.

    Later archives win, as in the kernel.
    """
    raw = gzip.decompress(data)
    files, pos = {}, 0
    while pos + 110 <= len(raw):
        if raw[pos:pos + 6] != b'070701':
            pos += 4 - pos % 4 if pos % 4 else 4  # padding between archives
            continue
        fields = [int(raw[pos + 6 + 8 * i:pos + 14 + 8 * i], 16)
                  for i in range(13)]
        size, namesize = fields[6], fields[11]
        name = raw[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        if name != 'TRAILER!!!':
            files[name] = raw[pos:pos + size]
        pos += size
        pos += -pos % 4
    return files


# Boot images: stand-ins xorriso accepts. isolinux.bin carries the
# isohybrid signature at byte 0x40; eltorito.img is long enough for
# --grub2-boot-info.
def _isolinux_bin():
    data = bytearray(4 * SECTOR)
    data[0x40:0x44] = (0x7078c0fb).to_bytes(4, 'little')
    return bytes(data)


_MBR = b'\x33\xc0' + b'\0' * 430 + b'\0' * 78 + b'\x55\xaa'
_EFI_IMG = b'\xeb\x3c\x90' + b'\0' * (1024 * 1024 - 3)
_KERNEL = b'MZ fake kernel\n' + b'\0' * 4000


LAYOUTS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       'distro_layouts')


def _initrd(name):
    return cpio_gz({'init': b'#!/bin/sh\necho %s\n' % name.encode()})


def layout(family):
    """``(volume label, {path: bytes|str}, xorriso -as mkisofs options)``.

    The binary stand-ins are listed here; the text files (boot menus,
    ``.disk/info``, ``.treeinfo``...) are those of
    ``distro_layouts/FAMILY``, copied from the real media.
    """
    if family == 'debian':
        files = {
            'isolinux/isolinux.bin': _isolinux_bin(),
            'install.amd/vmlinuz': _KERNEL,
            'install.amd/initrd.gz': _initrd('d-i text'),
            'install.amd/gtk/initrd.gz': _initrd('d-i gtk'),
            'boot/grub/efi.img': _EFI_IMG,
            'pool/main/README': 'packages\n',
        }
        opts = ['-J', '-joliet-long', '-isohybrid-mbr', '@mbr',
                '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
                '-boot-load-size', '4', '-boot-info-table',
                '-no-emul-boot', '-eltorito-alt-boot',
                '-e', 'boot/grub/efi.img', '-no-emul-boot',
                '-isohybrid-gpt-basdat']
        return 'Debian 12.5.0 amd64 n', files, opts
    if family == 'ubuntu':
        files = {
            'boot/grub/i386-pc/eltorito.img': bytes(4 * SECTOR),
            'casper/vmlinuz': _KERNEL,
            'casper/initrd': _initrd('casper'),
            'casper/hwe-vmlinuz': _KERNEL,
            'casper/hwe-initrd': _initrd('casper hwe'),
        }
        opts = ['-J', '-joliet-long', '--grub2-mbr', '@mbr',
                '-partition_offset', '16', '--mbr-force-bootable',
                '-append_partition', '2',
                '28732ac11ff8d211ba4b00a0c93ec93b', '@efi',
                '-appended_part_as_gpt',
                '-iso_mbr_part_type', 'a2a0d0ebe5b9334487c068b6b72699c7',
                '-c', '/boot.catalog',
                '-b', '/boot/grub/i386-pc/eltorito.img', '-no-emul-boot',
                '-boot-load-size', '4', '-boot-info-table',
                '--grub2-boot-info', '-eltorito-alt-boot',
                '-e', '--interval:appended_partition_2:::',
                '-no-emul-boot']
        return 'Ubuntu-Server 24.04.1 LTS amd64', files, opts
    if family == 'anaconda':
        files = {
            'isolinux/isolinux.bin': _isolinux_bin(),
            'isolinux/vmlinuz': _KERNEL,
            'isolinux/initrd.img': _initrd('anaconda'),
            'images/pxeboot/vmlinuz': _KERNEL,
            'images/pxeboot/initrd.img': _initrd('anaconda'),
            'images/install.img': b'squashfs stand-in\n',
            'images/efiboot.img': _EFI_IMG,
            'EFI/BOOT/BOOTX64.EFI': b'MZ shim\n',
        }
        opts = ['-J', '-joliet-long', '-isohybrid-mbr', '@mbr',
                '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
                '-boot-load-size', '4', '-boot-info-table',
                '-no-emul-boot', '-eltorito-alt-boot',
                '-e', 'images/efiboot.img', '-no-emul-boot',
                '-isohybrid-gpt-basdat']
        return 'Rocky-9-4-x86_64-dvd', files, opts
    if family == 'suse':
        files = {
            'boot/x86_64/loader/isolinux.bin': _isolinux_bin(),
            'boot/x86_64/loader/linux': _KERNEL,
            'boot/x86_64/loader/initrd': _initrd('linuxrc'),
            'boot/x86_64/efi': _EFI_IMG,
            'EFI/BOOT/bootx64.efi': b'MZ shim\n',
        }
        opts = ['-J', '-joliet-long', '-isohybrid-mbr', '@mbr',
                '-b', 'boot/x86_64/loader/isolinux.bin',
                '-c', 'boot/x86_64/boot.catalog',
                '-boot-load-size', '4', '-boot-info-table',
                '-no-emul-boot', '-eltorito-alt-boot',
                '-e', 'boot/x86_64/efi', '-no-emul-boot',
                '-isohybrid-gpt-basdat']
        return 'openSUSE-Leap-15.6-DVD-x86_64', files, opts
    raise ValueError('unknown family %r (xorriso layouts: %s)' % (
        family, ', '.join(FAMILIES[:-1])))


WINDOWS_FILES = {
    '/bootmgr': b'bootmgr\n',
    '/boot/etfsboot.com': b'\0' * SECTOR,
    '/boot/bcd': b'bcd\n',
    '/efi/microsoft/boot/efisys.bin': b'\0' * SECTOR,
    '/sources/boot.wim': b'MSWIM\0\0\0boot',
    '/sources/install.wim': b'MSWIM\0\0\0install',
    '/setup.exe': b'MZ setup\n',
}


def _fat_image(path, files):
    """Write a FAT image (1.44 MB geometry) holding ``files`` (mtools)."""
    tools = [shutil.which(t) for t in ('mformat', 'mmd', 'mcopy')]
    if not all(tools):
        raise RuntimeError('mtools is not installed (apt-get install '
                           'mtools): the anaconda-like test ISO has a FAT '
                           'EFI image')
    mformat, mmd, mcopy = tools
    env = dict(os.environ, MTOOLS_SKIP_CHECK='1')
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run([mformat, '-C', '-f', '1440', '-i', path, '::'],
                   check=True, capture_output=True, env=env)
    dirs = sorted({os.path.dirname(n) for n in files} - {''})
    made = set()
    for d in dirs:
        parts = d.split('/')
        for i in range(1, len(parts) + 1):
            sub = '/'.join(parts[:i])
            if sub not in made:
                subprocess.run([mmd, '-i', path, '::/' + sub], check=True,
                               capture_output=True, env=env)
                made.add(sub)
    for name, data in files.items():
        with tempfile.NamedTemporaryFile() as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            subprocess.run([mcopy, '-i', path, f.name, '::/' + name],
                           check=True, capture_output=True, env=env)


def read_fat_file(image, name):
    """The content of ``name`` in the FAT image file ``image`` (mtools)."""
    return subprocess.run(
        ['mtype', '-i', image, '::/' + name], check=True,
        capture_output=True,
        env=dict(os.environ, MTOOLS_SKIP_CHECK='1')).stdout


def make(family, path):
    """Write ``family``'s image to ``path``; return ``path``."""
    if family == 'windows':
        return make_test_iso.make_iso(
            path, volume_id='SSS_X64FREE_EN_US_DV9', files=WINDOWS_FILES,
            joliet=False, rock_ridge=False, udf_only=True)
    label, files, opts = layout(family)
    text_root = os.path.join(LAYOUTS, family)
    for top, _dirs, names in os.walk(text_root):
        for name in names:
            full = os.path.join(top, name)
            with open(full, 'rb') as f:
                files[os.path.relpath(full, text_root)] = f.read()
    xorriso = shutil.which('xorriso')
    if xorriso is None:
        raise RuntimeError('xorriso is not installed (apt-get install '
                           'xorriso): the distribution-like test ISOs are '
                           'made with it')
    tmp = tempfile.mkdtemp(prefix='isoplugin-distro-')
    try:
        tree = os.path.join(tmp, 'tree')
        for rel, data in files.items():
            full = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'wb') as f:
                f.write(data.encode() if isinstance(data, str) else data)
        if family == 'anaconda':
            # lorax copies the UEFI menu into the EFI image: firmware
            # booting the CD reads that copy, not the ISO's.
            _fat_image(os.path.join(tree, 'images', 'efiboot.img'), {
                'EFI/BOOT/grub.cfg': files['EFI/BOOT/grub.cfg'],
                'EFI/BOOT/BOOTX64.EFI': b'MZ shim\n'})
        blobs = {'@mbr': _MBR, '@efi': _EFI_IMG}
        for name, data in blobs.items():
            with open(os.path.join(tmp, name[1:]), 'wb') as f:
                f.write(data)
        opts = [os.path.join(tmp, o[1:]) if o in blobs else o for o in opts]
        cmd = [xorriso, '-as', 'mkisofs', '-quiet', '-r', '-V', label,
               '-o', path] + opts + [tree]
        subprocess.run(cmd, check=True, capture_output=True)
    finally:
        shutil.rmtree(tmp)
    return path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in FAMILIES:
        print('usage: make_distro_iso.py {%s} OUTPUT' % '|'.join(FAMILIES),
              file=sys.stderr)
        return 2
    print(make(argv[0], argv[1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
