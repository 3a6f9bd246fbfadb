"""Checks of the real tiny installer ISO, in the libvirt pass.

They build the ISO (root for the Debian packages the first time, about
70 MB of kernel download) and install + boot it under plain QEMU/TCG on a
disk bus the Nova end-to-end test does not use. Marked ``libvirt``: they
run where the local OpenStack runs in libvirt mode (QEMU is installed),
``tools/run-tests`` passes tests/tools to that pass.
"""

import io
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, 'build-installer-iso.sh')
QEMU_TEST = os.path.join(HERE, 'qemu-install-test.sh')

pytestmark = pytest.mark.libvirt


@pytest.fixture(scope='module')
def installer_iso():
    r = subprocess.run([BUILD], check=True, stdout=subprocess.PIPE,
                       universal_newlines=True)
    out = r.stdout.strip().splitlines()[-1]
    assert os.path.isfile(out)
    return out


def test_identity(installer_iso):
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(installer_iso)
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'TINYLINUX_1_0_AMD64'
        assert iso.eltorito_boot_catalog is not None
        assert iso.eltorito_boot_catalog.initial_entry.boot_indicator == 0x88
        buf = io.BytesIO()
        iso.get_file_from_iso_fp(buf, rr_path='/.disk/info')
        assert buf.getvalue() == b'Tiny Linux 1.0 amd64'
        buf = io.BytesIO()
        iso.get_file_from_iso_fp(buf, iso_path='/ISOPLUGIN.CFG;1')
        assert b'action=install' in buf.getvalue()
    finally:
        iso.close()
    assert os.path.getsize(installer_iso) < 40 * 1024 * 1024


def test_cached_iso_is_not_rebuilt(installer_iso):
    before = os.stat(installer_iso)
    r = subprocess.run([BUILD], check=True, stdout=subprocess.PIPE,
                       universal_newlines=True)
    assert r.stdout.strip().splitlines()[-1] == installer_iso
    after = os.stat(installer_iso)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino,
                                                 before.st_mtime_ns)


@pytest.mark.parametrize('bus', ['scsi'])
def test_install_and_boot(installer_iso, tmp_path, bus):
    assert shutil.which("qemu-system-x86_64"), "QEMU is not installed"
    env = dict(os.environ, DISKBUS=bus)
    r = subprocess.run([QEMU_TEST, installer_iso, str(tmp_path)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=900)
    assert r.returncode == 0, r.stdout
    assert 'ISOPLUGIN-INSTALLED-SYSTEM-BOOTED' in r.stdout
