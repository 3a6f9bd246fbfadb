"""Checks of tests/tools/build_debian_netboot_iso.py on the real ISO.

The ISO is built from Debian's packages (about 134 MB of .debs the first
time, cached with the ISO under $ISOPLUGIN_CACHE afterwards). Measured on
the CI machine: 11-16 s for download + build, under 2 s when cached, so
these run in the unit pass (tox -e py3). They need apt-get (with package
lists), dpkg-deb and xorriso, as tools/run-tests installs.
"""

import os
import subprocess
import sys

import pytest

from isoplugin import isoinfo
from isoplugin import profiles

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, 'build_debian_netboot_iso.py')


@pytest.fixture(scope='module')
def netboot_iso():
    r = subprocess.run([sys.executable, BUILD], check=True,
                       stdout=subprocess.PIPE, universal_newlines=True)
    path = r.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path)
    return path


def _report(path):
    r = subprocess.run(['xorriso', '-indev', path, '-report_el_torito',
                        'plain', '-report_system_area', 'plain'],
                       check=True, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, universal_newlines=True)
    return r.stdout


def _extract(path, inner, dest):
    subprocess.run(['xorriso', '-osirrox', 'on', '-indev', path,
                    '-extract', inner, str(dest)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(dest, 'rb') as f:
        return f.read()


def test_detected_as_debian(netboot_iso):
    with isoinfo.open_files(netboot_iso) as files:
        profile, match = profiles.detect(files)
        assert profile.name == 'debian'
        assert files.info.volume_id == 'DEBIAN_12_NETBOOT'
        assert files.read('.disk/info').startswith(b'Debian GNU/Linux 12 ')
        assert files.exists('debian-installer/amd64/linux')
    assert '/debian-installer/amd64/initrd.gz' in ' '.join(match.looked_at)


def test_bios_el_torito_and_isohybrid_mbr(netboot_iso):
    report = _report(netboot_iso)
    lines = report.splitlines()
    entries = [line.split(':', 1)[1].split() for line in lines
               if line.startswith('El Torito boot img :')]
    # N Pltf B Emul Ld_seg Hdpt Ldsiz LBA: bootable, no emulation, 4 sectors
    assert entries[0][:7] == ['1', 'BIOS', 'y', 'none', '0x0000', '0x00',
                              '4']
    assert 'El Torito img path :   1  /isolinux/isolinux.bin' in report
    assert 'boot-info-table isohybrid-suitable' in report
    assert 'System area summary: MBR isohybrid' in report
    # the UEFI entry is there when the package ships GRUB (bookworm's does)
    assert entries[1][1] == 'UEFI'
    assert 'El Torito img path :   2  /boot/grub/efi.img' in report


def test_stock_menu_waits_forever(netboot_iso, tmp_path):
    cfg = _extract(netboot_iso, '/isolinux/isolinux.cfg',
                   tmp_path / 'isolinux.cfg').decode()
    assert 'timeout 0\n' in cfg and 'default vesamenu.c32\n' in cfg
    txt = _extract(netboot_iso, '/isolinux/txt.cfg',
                   tmp_path / 'txt.cfg').decode()
    assert 'kernel /debian-installer/amd64/linux\n' in txt
    assert 'auto=true' not in txt
    # the real d-i kernel and initrd, not stand-ins
    kernel = _extract(netboot_iso, '/debian-installer/amd64/linux',
                      tmp_path / 'linux')
    assert kernel[0x202:0x206] == b'HdrS' and len(kernel) > 4 * 2 ** 20
    initrd = _extract(netboot_iso, '/debian-installer/amd64/initrd.gz',
                      tmp_path / 'initrd.gz')
    assert initrd[:2] == b'\x1f\x8b' and len(initrd) > 20 * 2 ** 20


def test_cached_iso_is_not_rebuilt(netboot_iso):
    before = os.stat(netboot_iso)
    r = subprocess.run([sys.executable, BUILD], check=True,
                       stdout=subprocess.PIPE, universal_newlines=True)
    assert r.stdout.strip().splitlines()[-1] == netboot_iso
    after = os.stat(netboot_iso)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino,
                                                 before.st_mtime_ns)
