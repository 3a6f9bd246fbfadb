"""Slow, opt-in checks of the real tiny installer ISO.

Run with ISOPLUGIN_INSTALLER_TESTS=1 (builds the ISO: needs root for the
Debian packages the first time, and about 70 MB of kernel download), and
with ISOPLUGIN_QEMU_TESTS=1 also an install + boot under QEMU/TCG (~25 s
per disk bus).
"""

import io
import os
import shutil
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, 'build-installer-iso.sh')
QEMU_TEST = os.path.join(HERE, 'qemu-install-test.sh')

pytestmark = pytest.mark.skipif(
    not (os.environ.get('ISOPLUGIN_INSTALLER_TESTS')
         or os.environ.get('ISOPLUGIN_QEMU_TESTS')),
    reason='set ISOPLUGIN_INSTALLER_TESTS=1 to build the installer ISO')


@pytest.fixture(scope='module')
def installer_iso():
    r = subprocess.run([BUILD], check=True, stdout=subprocess.PIPE,
                       universal_newlines=True)
    out = r.stdout.strip().splitlines()[-1]
    assert os.path.isfile(out)
    return out


def test_identity(installer_iso):
    pycdlib = pytest.importorskip('pycdlib')
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


def test_cached_rebuild_is_fast(installer_iso):
    t0 = time.time()
    subprocess.run([BUILD], check=True, stdout=subprocess.PIPE)
    assert time.time() - t0 < 2


@pytest.mark.skipif(not os.environ.get('ISOPLUGIN_QEMU_TESTS'),
                    reason='set ISOPLUGIN_QEMU_TESTS=1 to run QEMU')
@pytest.mark.skipif(shutil.which('qemu-system-x86_64') is None,
                    reason='qemu-system-x86_64 missing')
@pytest.mark.parametrize('bus', ['virtio', 'sata'])
def test_install_and_boot(installer_iso, tmp_path, bus):
    env = dict(os.environ, DISKBUS=bus)
    r = subprocess.run([QEMU_TEST, installer_iso, str(tmp_path)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=900)
    assert r.returncode == 0, r.stdout
    assert 'ISOPLUGIN-INSTALLED-SYSTEM-BOOTED' in r.stdout
