#!/usr/bin/env python3
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Build a Debian 12 installer ISO from Debian's own packages.

The end-to-end test of issue 12 needs Debian's *real* installer, booted
from a CD with its stock menu. Debian's netinst ISO is not in the
archive, but its parts are:

- ``debian-installer-12-netboot-amd64``: d-i's kernel (``linux``) and
  ``initrd.gz``, GRUB's EFI binaries and ``grub.cfg``;
- ``isolinux`` and ``syslinux-common``: isolinux.bin, the isohybrid MBR
  and the BIOS modules (ldlinux.c32, vesamenu.c32...).

The packages are fetched by name with ``apt-get download`` (run
``apt-get update`` first on a fresh machine), unpacked with ``dpkg-deb``
and put together with xorriso::

    /.disk/info                       Debian GNU/Linux 12 ... netboot
    /debian-installer/amd64/linux     d-i's kernel   (the netboot tree path,
    /debian-installer/amd64/initrd.gz d-i's initrd    the debian profile
                                                      detects it)
    /isolinux/isolinux.cfg            stock: "default vesamenu.c32",
    /isolinux/menu.cfg, txt.cfg ...   "timeout 0" (waits forever), "Install"
    /boot/grub/grub.cfg, efi.img      UEFI entry (when the package has GRUB)

BIOS El Torito (no emulation, boot info table), an isohybrid MBR and, when
the netboot package ships ``grubx64.efi``, a UEFI El Torito entry whose FAT
image holds shim (``bootnetx64.efi`` as ``BOOTX64.EFI``) and GRUB. Only
the BIOS path is booted by the tests (Nova/QEMU boot BIOS here).

The .debs and the ISO are cached under ``$ISOPLUGIN_CACHE`` (default
``~/.cache/isoplugin``) in ``debian-netboot/``, the ISO keyed by the three
package versions: a later run with the same versions prints the cached
path without downloading anything.

Usage: build_debian_netboot_iso.py [--force]   (prints the ISO's path)

Needs: apt-get, dpkg-deb, xorriso; mtools and mkfs.vfat (dosfstools) for
the UEFI entry (left out, with a note on stderr, without them).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

PACKAGES = ('debian-installer-12-netboot-amd64', 'isolinux',
            'syslinux-common')
IMAGES = 'usr/lib/debian-installer/images/12/amd64/text'
TREE = 'debian-installer/amd64'
VOLUME_ID = 'DEBIAN_12_NETBOOT'
DISK_INFO = 'Debian GNU/Linux 12 "Bookworm" - Official amd64 netboot %s'
BIOS_MODULES = ('ldlinux.c32', 'vesamenu.c32', 'libcom32.c32',
                'libutil.c32')

# Debian's CD menu (debian-cd's isolinux.cfg, menu.cfg, stdmenu.cfg,
# txt.cfg), pointing at the netboot tree. "timeout 0": waits forever.
ISOLINUX_CFG = """\
# D-I config version 2.0
# search path for the c32 support libraries (libcom32, libutil etc.)
path
include menu.cfg
default vesamenu.c32
prompt 0
timeout 0
"""
MENU_CFG = """\
menu hshift 4
menu width 70

menu title Debian GNU/Linux installer menu (BIOS mode)
include stdmenu.cfg
include txt.cfg
"""
TXT_CFG = """\
label install
\tmenu label ^Install
\tkernel /%(tree)s/linux
\tappend vga=788 initrd=/%(tree)s/initrd.gz --- quiet
""" % {'tree': TREE}


def cache_dir():
    return os.path.join(
        os.environ.get('ISOPLUGIN_CACHE') or
        os.path.expanduser('~/.cache/isoplugin'), 'debian-netboot')


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          universal_newlines=True, **kw).stdout


def candidate_versions():
    """{package: version} that ``apt-get download`` would fetch."""
    out = _run(['apt-cache', 'show', '--no-all-versions'] + list(PACKAGES))
    versions = {}
    for stanza in out.split('\n\n'):
        pkg = re.search(r'^Package:\s*(\S+)', stanza, re.M)
        ver = re.search(r'^Version:\s*(\S+)', stanza, re.M)
        if pkg and ver:
            versions.setdefault(pkg.group(1), ver.group(1))
    missing = [p for p in PACKAGES if p not in versions]
    if missing:
        raise SystemExit('%s: no candidate version (run apt-get update)'
                         % ', '.join(missing))
    return versions


def efi_tools():
    """mkfs.vfat, mmd, mcopy (the UEFI entry's FAT image), None if absent."""
    tools = [shutil.which(t) for t in ('mkfs.vfat', 'mmd', 'mcopy')]
    return tools if all(tools) else None


def iso_path(versions):
    """The cached ISO of these versions.

    A BIOS-only one is named apart: an ISO made before mtools and
    dosfstools were installed is not reused once they are.
    """
    key = '_'.join(re.sub(r'[^A-Za-z0-9.+~-]', '-', versions[p])
                   for p in PACKAGES)
    return os.path.join(cache_dir(), 'debian-12-netboot-%s%s.iso' % (
        key, '' if efi_tools() else '-bios-only'))


def download(versions):
    """Fetch the .debs (kept in the cache); return {package: path}."""
    debs = os.path.join(cache_dir(), 'debs')
    os.makedirs(debs, exist_ok=True)

    def find(pkg):
        for name in os.listdir(debs):
            parts = name[:-4].split('_') if name.endswith('.deb') else []
            if len(parts) == 3 and parts[0] == pkg and \
                    parts[1].replace('%3a', ':') == versions[pkg]:
                return os.path.join(debs, name)

    missing = [p for p in PACKAGES if not find(p)]
    if missing:
        subprocess.run(['apt-get', 'download', '-q'] +
                       ['%s=%s' % (p, versions[p]) for p in missing],
                       cwd=debs, check=True, stdout=sys.stderr)
    return {p: find(p) for p in PACKAGES}


def _unpack(deb, dest, members=()):
    # only the members needed (the d-i package also has the gtk flavour)
    tar = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb],
                           stdout=subprocess.PIPE)
    subprocess.run(['tar', '-x', '-C', dest] + list(members),
                   stdin=tar.stdout, check=True)
    tar.stdout.close()
    if tar.wait():
        raise SystemExit('dpkg-deb failed on %s' % deb)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def _efi_image(netboot, root, work):
    """boot/grub/efi.img (FAT: shim + GRUB) and boot/grub/grub.cfg."""
    grub = os.path.join(netboot, 'grubx64.efi')
    shim = os.path.join(netboot, 'bootnetx64.efi')
    cfg = os.path.join(netboot, 'grub', 'grub.cfg')
    tools = efi_tools()
    if not (os.path.isfile(grub) and os.path.isfile(cfg)):
        return False
    if not tools:
        print('note: no mtools/dosfstools: BIOS-only ISO', file=sys.stderr)
        return False
    mkfs, mmd, mcopy = tools
    img = os.path.join(root, 'boot', 'grub', 'efi.img')
    os.makedirs(os.path.dirname(img), exist_ok=True)
    size_kib = ((os.path.getsize(grub) +
                 (os.path.getsize(shim) if os.path.isfile(shim) else 0)) //
                1024 + 1024) // 1024 * 1024
    _run([mkfs, '-C', '-n', 'DEBIAN_EFI', img, str(size_kib)])
    env = dict(os.environ, MTOOLS_SKIP_CHECK='1')
    _run([mmd, '-i', img, '::/EFI', '::/EFI/boot'], env=env)
    if os.path.isfile(shim):    # shim loads grubx64.efi from its folder
        _run([mcopy, '-i', img, shim, '::/EFI/boot/bootx64.efi'], env=env)
        _run([mcopy, '-i', img, grub, '::/EFI/boot/grubx64.efi'], env=env)
    else:
        _run([mcopy, '-i', img, grub, '::/EFI/boot/bootx64.efi'], env=env)
    # the netboot GRUB reads debian-installer/amd64/grub/grub.cfg (kept in
    # the tree); boot/grub/grub.cfg is where Debian's CDs have it
    shutil.copy(cfg, os.path.join(root, 'boot', 'grub', 'grub.cfg'))
    return True


def build(out, debs, versions):
    xorriso = shutil.which('xorriso')
    if not xorriso:
        raise SystemExit('xorriso is not installed')
    work = tempfile.mkdtemp(prefix='debian-netboot-', dir=cache_dir())
    try:
        unpacked = os.path.join(work, 'debs')
        os.makedirs(unpacked)
        _unpack(debs[PACKAGES[0]], unpacked, ['./' + IMAGES])
        for pkg in PACKAGES[1:]:
            _unpack(debs[pkg], unpacked)
        netboot = os.path.join(unpacked, IMAGES, TREE)
        root = os.path.join(work, 'root')
        # the whole netboot tree, symlinks resolved (ISO 9660 + RR keeps
        # them, but isolinux cannot follow them)
        shutil.copytree(netboot, os.path.join(root, TREE), symlinks=False)
        iso_dir = os.path.join(root, 'isolinux')
        os.makedirs(iso_dir)
        shutil.copy(os.path.join(unpacked, 'usr/lib/ISOLINUX/isolinux.bin'),
                    iso_dir)
        for mod in BIOS_MODULES:
            shutil.copy(os.path.join(unpacked, 'usr/lib/syslinux/modules/'
                                     'bios', mod), iso_dir)
        screens = os.path.join(netboot, 'boot-screens')
        with open(os.path.join(screens, 'stdmenu.cfg')) as f:
            stdmenu = f.read().replace(TREE + '/boot-screens/', '/isolinux/')
        shutil.copy(os.path.join(screens, 'splash.png'), iso_dir)
        _write(os.path.join(iso_dir, 'isolinux.cfg'), ISOLINUX_CFG)
        _write(os.path.join(iso_dir, 'menu.cfg'), MENU_CFG)
        _write(os.path.join(iso_dir, 'stdmenu.cfg'), stdmenu)
        _write(os.path.join(iso_dir, 'txt.cfg'), TXT_CFG)
        _write(os.path.join(root, '.disk', 'info'),
               DISK_INFO % versions[PACKAGES[0]])
        efi = _efi_image(netboot, root, work)
        cmd = [xorriso, '-as', 'mkisofs', '-quiet', '-o', out + '.part',
               '-V', VOLUME_ID, '-J', '-joliet-long', '-R', '-r',
               '-isohybrid-mbr', os.path.join(unpacked,
                                              'usr/lib/ISOLINUX/isohdpfx.bin'),
               '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
               '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table']
        if efi:
            cmd += ['-eltorito-alt-boot', '-e', 'boot/grub/efi.img',
                    '-no-emul-boot', '-isohybrid-gpt-basdat']
        subprocess.run(cmd + [root], check=True, stdout=sys.stderr)
        os.replace(out + '.part', out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(out + '.part'):
            os.unlink(out + '.part')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--force', action='store_true',
                        help='rebuild the ISO even when it is cached')
    args = parser.parse_args(argv)
    os.makedirs(cache_dir(), exist_ok=True)
    versions = candidate_versions()
    out = iso_path(versions)
    if args.force or not os.path.isfile(out):
        build(out, download(versions), versions)
    print(out)
    return out


if __name__ == '__main__':
    main()
