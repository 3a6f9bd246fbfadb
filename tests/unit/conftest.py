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

"""Fixtures shared by the unit tests."""

import os
import shutil
import subprocess

from oslo_config import cfg
import pytest

from isoplugin import conf as iso_conf
from tests.tools import make_distro_iso


@pytest.fixture
def conf():
    """A ConfigOpts with isoplugin's options, parsed from no file."""
    c = cfg.ConfigOpts()
    iso_conf.register_opts(c)
    c(args=[], default_config_files=[])
    return c


@pytest.fixture(scope='session')
def distro_isos(tmp_path_factory):
    """ISOs in each installer family's layout (made once, read only)."""
    assert shutil.which('xorriso'), (
        'xorriso is not installed: apt-get install xorriso (CI installs '
        'it; the distribution-like test ISOs are made with it)')
    d = tmp_path_factory.mktemp('distro')
    return {f: make_distro_iso.make(f, str(d / ('%s.iso' % f)))
            for f in make_distro_iso.FAMILIES}


#: What the Windows-like ISO's El Torito entries load (distinct bytes, so
#: that a test can find them at the addresses the catalog gives).
WINDOWS_BOOT = {'boot/etfsboot.com': b'ETFSBOOT' * 512,
                'efi/microsoft/boot/efisys.bin': b'EFISYS..' * 184320}


@pytest.fixture(scope='session')
def windows_iso(tmp_path_factory):
    """An ISO laid out like Windows media, as Microsoft's oscdimg makes them.

    UDF 1.02 holds the files; the ISO 9660 tree of the bridge holds only
    README.TXT; El Torito has a BIOS entry (``boot/etfsboot.com``,
    no emulation, load size 8) and a UEFI one
    (``efi/microsoft/boot/efisys.bin``); no MBR. Written by genisoimage
    (another writer than pycdlib, which prepares the copy).
    """
    genisoimage = shutil.which('genisoimage')
    assert genisoimage, (
        'genisoimage is not installed: apt-get install genisoimage (the '
        'Windows-like test ISO, UDF with El Torito, is made with it)')
    d = tmp_path_factory.mktemp('windows')
    tree = d / 'tree'
    files = dict(WINDOWS_BOOT, **{
        'bootmgr': b'bootmgr\n', 'bootmgr.efi': b'MZ bootmgr\n',
        'setup.exe': b'MZ setup\n', 'boot/bcd': b'bcd\n',
        'sources/boot.wim': b'MSWIM\0\0\0boot',
        'sources/install.wim': b'MSWIM\0\0\0install' * 4096,
        'README.TXT': b'This disc contains a "UDF" file system.\r\n'})
    for rel, data in files.items():
        (tree / os.path.dirname(rel)).mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    path = str(d / 'windows.iso')
    hide = []
    for name in ('boot', 'efi', 'sources', 'bootmgr', 'bootmgr.efi',
                 'setup.exe', 'boot.catalog'):
        hide += ['-hide', name]
    subprocess.run(
        [genisoimage, '-quiet', '-udf', '-iso-level', '3',
         '-allow-limited-size', '-V', 'SSS_X64FREE_EN-US_DV9',
         '-b', 'boot/etfsboot.com', '-no-emul-boot', '-boot-load-size', '8',
         '-eltorito-alt-boot', '-e', 'efi/microsoft/boot/efisys.bin',
         '-no-emul-boot'] + hide + ['-o', path, str(tree)],
        check=True, capture_output=True)
    return path
