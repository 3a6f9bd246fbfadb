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

"""isoplugin.isoinfo: recognising ISO images from their first sectors."""

import io
import os
import random

import pytest

from isoplugin import exception
from isoplugin import isoinfo
from tests.tools import make_test_iso


@pytest.fixture
def iso(tmp_path):
    def make(name='a.iso', **kwargs):
        path = str(tmp_path / name)
        make_test_iso.make_iso(path, **kwargs)
        return path
    return make


def test_plain_iso9660(iso):
    path = iso(volume_id='ISOPLUGIN_TEST')
    info = isoinfo.inspect(path)
    assert info.format == 'iso9660'
    assert info.volume_id == 'ISOPLUGIN_TEST'
    assert info.size == os.path.getsize(path)
    assert info.volume_size == info.size
    assert info.bootable is False
    assert info.udf is False
    assert info.first_descriptor == 'CD001'
    assert info.os_distro is None and info.detected == {}


def test_eltorito_bios_and_uefi_detects_from_label(iso):
    info = isoinfo.inspect(iso(volume_id='UBUNTU_24_04_1_AMD64',
                               eltorito=True, efi=True))
    assert info.bootable is True
    assert info.boot_platforms == ['bios', 'uefi']
    assert (info.os_type, info.os_distro, info.os_version,
            info.architecture) == ('linux', 'ubuntu', '24.04', 'x86_64')
    assert info.detected == {'os_type': 'volume label',
                             'os_distro': 'volume label',
                             'os_version': 'volume label',
                             'architecture': 'volume label'}


def test_architecture_from_boot_catalog(iso):
    info = isoinfo.inspect(iso(volume_id='INSTALLER', eltorito=True))
    assert info.architecture == 'x86_64'
    assert info.detected == {'architecture': 'boot catalog'}


def test_udf_bridge(iso):
    info = isoinfo.inspect(iso(volume_id='DEBIAN_12_ARM64', udf=True))
    assert info.format == 'iso9660'
    assert info.udf is True
    assert info.os_distro == 'debian'
    assert info.architecture == 'aarch64'


def test_udf_only_reads_udf_label(iso):
    info = isoinfo.inspect(iso(volume_id='FEDORA_40', udf_only=True))
    assert info.format == 'udf'
    assert info.volume_id == 'FEDORA_40'
    assert info.first_descriptor == 'BEA01'
    assert info.volume_size is None
    assert info.os_distro == 'fedora'


def test_fileobj_position_restored_and_size_override(iso):
    data = open(iso(volume_id='X'), 'rb').read()
    f = io.BytesIO(data[:100000])
    f.seek(5)
    info = isoinfo.inspect(f, size=len(data))
    assert f.tell() == 5
    assert info.size == len(data)


@pytest.mark.parametrize('content,reason', [
    (b'', 'the file is empty'),
    (b'x' * 1000, 'too short for an ISO 9660'),
    (b'QFI\xfb' + b'\0' * 100, 'it is a qcow2 image'),
    (b'QFI\xfb' + b'\0' * 100000, 'it is a qcow2 image'),
    (b'KDMV' + b'\0' * 100000, 'it is a VMDK image'),
    (os.urandom(100000), 'no ISO 9660 or UDF volume descriptor'),
])
def test_not_an_iso(tmp_path, content, reason):
    path = tmp_path / 'bad.iso'
    path.write_bytes(content)
    with pytest.raises(exception.NotAnISO) as e:
        isoinfo.inspect(str(path))
    assert reason in str(e.value)
    assert str(path) in str(e.value)


def test_truncated(iso, tmp_path):
    data = open(iso(files={'/BIG': b'x' * 300000}), 'rb').read()
    path = tmp_path / 'cut.iso'
    path.write_bytes(data[:len(data) - 4096])
    with pytest.raises(exception.NotAnISO) as e:
        isoinfo.inspect(str(path))
    assert 'it is truncated' in str(e.value)


def test_unreadable(tmp_path):
    with pytest.raises(exception.SourceUnreadable) as e:
        isoinfo.inspect(str(tmp_path / 'missing.iso'))
    assert 'No such file or directory' in str(e.value)


@pytest.mark.parametrize('label,expected', [
    ('Ubuntu-Server 24.04.1 LTS amd64',
     {'os_type': 'linux', 'os_distro': 'ubuntu', 'os_version': '24.04',
      'architecture': 'x86_64'}),
    ('Ubuntu 22.04.4 LTS arm64',
     {'os_type': 'linux', 'os_distro': 'ubuntu', 'os_version': '22.04',
      'architecture': 'aarch64'}),
    ('Debian 12.5.0 amd64 n',
     {'os_type': 'linux', 'os_distro': 'debian', 'os_version': '12',
      'architecture': 'x86_64'}),
    ('Fedora-S-dvd-x86_64-40',
     {'os_type': 'linux', 'os_distro': 'fedora', 'os_version': '40',
      'architecture': 'x86_64'}),
    ('CentOS-Stream-9-BaseOS-x86_64',
     {'os_type': 'linux', 'os_distro': 'centos', 'os_version': '9',
      'architecture': 'x86_64'}),
    ('RHEL-9-4-0-BaseOS-x86_64',
     {'os_type': 'linux', 'os_distro': 'rhel', 'os_version': '9.4',
      'architecture': 'x86_64'}),
    ('Rocky-9-4-x86_64-dvd',
     {'os_type': 'linux', 'os_distro': 'rocky', 'os_version': '9.4',
      'architecture': 'x86_64'}),
    ('openSUSE-Leap-15.5-DVD-x86_64',
     {'os_type': 'linux', 'os_distro': 'opensuse', 'os_version': '15.5',
      'architecture': 'x86_64'}),
    ('SLE-15-SP5-Full-x86_64',
     {'os_type': 'linux', 'os_distro': 'sles', 'os_version': '15.5',
      'architecture': 'x86_64'}),
    ('CCCOMA_X64FRE_EN-US_DV9',
     {'os_type': 'windows', 'os_distro': 'windows',
      'architecture': 'x86_64'}),
    ('14_1_RELEASE_AMD64_CD',
     {'os_distro': 'freebsd', 'os_version': '14.1',
      'architecture': 'x86_64'}),
    ('alpine-virt 3.19.1 x86_64',
     {'os_type': 'linux', 'os_distro': 'alpine', 'os_version': '3.19',
      'architecture': 'x86_64'}),
    ('ISOPLUGIN_TEST', {}),
    ('', {}),
])
def test_guess_os(label, expected):
    assert isoinfo.guess_os(label) == expected


@pytest.mark.parametrize('name,canonical', [
    ('amd64', 'x86_64'), ('X86_64', 'x86_64'), ('arm64', 'aarch64'),
    ('i386', 'i686'), ('ppc64el', 'ppc64le'), ('s390x', 's390x'),
])
def test_normalize_architecture(name, canonical):
    assert isoinfo.normalize_architecture(name) == canonical


def test_normalize_architecture_unknown():
    with pytest.raises(exception.InvalidInput) as e:
        isoinfo.normalize_architecture('z80')
    assert "unknown architecture 'z80'" in str(e.value)


# Directory entries (IsoFiles) ------------------------------------------------

TREE = {
    '/.disk/info': 'Debian GNU/Linux 12',
    '/isolinux/isolinux.cfg': 'timeout 0\n',
    '/install.amd/initrd.gz': b'\x1f\x8b' + b'z' * 5000,
    '/boot/grub/grub.cfg': 'set timeout=5\n',
    '/sources/a_rather_long_file_name_for_level_one.txt': 'long',
}


@pytest.mark.parametrize('kwargs,tree', [
    ({}, 'rock_ridge'),
    ({'rock_ridge': False}, 'joliet'),
    ({'rock_ridge': False, 'joliet': False}, 'iso9660'),
    ({'udf_only': True, 'rock_ridge': False, 'joliet': False}, 'udf'),
])
def test_files_lookup_and_read(iso, kwargs, tree):
    path = iso(volume_id='DEBIAN_12', files=TREE, **kwargs)
    with isoinfo.open_files(path) as files:
        assert files.tree == tree
        assert files.info.os_distro == 'debian'
        assert files.read('.disk/info') == b'Debian GNU/Linux 12'
        assert files.read('/isolinux/isolinux.cfg') == b'timeout 0\n'
        assert files.isdir('install.amd') and files.isdir('/boot/grub/')
        assert not files.isdir('isolinux/isolinux.cfg')
        assert files.exists('boot/grub/grub.cfg')
        assert files.lookup('install.amd/initrd.gz').size == 5002
        assert files.lookup('casper') is None
        assert files.lookup('isolinux/isolinux.cfg/x') is None
        out = io.BytesIO()
        assert files.copy('install.amd/initrd.gz', out) == 5002
        assert out.getvalue() == TREE['/install.amd/initrd.gz']
        names = [n.lower() for n in files.listdir('/')]
        if tree == 'iso9660':
            # level names, found from the real ones by folding
            assert names == ['boot', 'install_amd', 'isolinux', 'sources',
                             '_disk']
        else:
            assert names == ['.disk', 'boot', 'install.amd', 'isolinux',
                             'sources']


def test_files_case_insensitive_fallback(iso):
    with isoinfo.open_files(iso(files=TREE)) as files:
        assert files.read('ISOLINUX/ISOLINUX.CFG') == b'timeout 0\n'


def test_files_udf_bridge_without_iso_directories_reads_udf(iso):
    # A bridge image with directories in ISO 9660 is read there; Windows
    # media (no ISO 9660 directory, or no ISO 9660 at all) through UDF.
    path = iso(volume_id='DEBIAN_12', udf=True, files=TREE)
    with isoinfo.open_files(path) as files:
        assert files.tree == 'rock_ridge'
    path = iso(name='r.iso', volume_id='CCCOMA_X64FRE', udf=True,
               rock_ridge=False, joliet=False,
               files={'/README.TXT': 'udf inside'})
    with isoinfo.open_files(path) as files:
        assert files.tree == 'udf'
        assert files.listdir('/') == ['README.TXT']
    path = iso(name='w.iso', volume_id='CCCOMA_X64FRE', udf_only=True,
               rock_ridge=False, joliet=False,
               files={'/sources/install.wim': b'MSWIM', '/bootmgr': 'b'})
    with isoinfo.open_files(path) as files:
        assert files.tree == 'udf'
        assert files.listdir('sources') == ['install.wim']
        assert files.read('sources/install.wim') == b'MSWIM'


def test_files_errors(iso):
    with isoinfo.open_files(iso(files=TREE)) as files:
        with pytest.raises(exception.SourceUnreadable) as e:
            files.read('install.amd/initrd.gz', limit=100)
        assert 'more than 100' in str(e.value)
        with pytest.raises(exception.SourceUnreadable) as e:
            files.read('no/such/file')
        assert 'no such file' in str(e.value)
        with pytest.raises(exception.SourceUnreadable) as e:
            files.read('isolinux')
        with pytest.raises(exception.SourceUnreadable) as e:
            files.listdir('isolinux/isolinux.cfg')
        assert 'no such directory' in str(e.value)


def test_files_not_an_iso(tmp_path):
    path = tmp_path / 'x.iso'
    path.write_bytes(b'x' * 100000)
    with pytest.raises(exception.NotAnISO):
        isoinfo.open_files(str(path))


def test_files_closes_only_what_it_opened(iso):
    with open(iso(files=TREE), 'rb') as f:
        with isoinfo.open_files(f) as files:
            assert files.read('.disk/info') == b'Debian GNU/Linux 12'
        assert not f.closed


def test_files_survive_garbage_directories(iso, tmp_path):
    data = bytearray(open(iso(files=TREE, udf=True), 'rb').read())
    rnd = random.Random(7)
    for _n in range(5):
        bad = bytearray(data)
        # keep the volume descriptors, scramble the rest
        for i in range(18 * 2048, len(bad), 7):
            bad[i] = rnd.randrange(256)
        path = tmp_path / 'bad.iso'
        path.write_bytes(bytes(bad))
        with isoinfo.open_files(str(path)) as files:
            files.exists('isolinux/isolinux.cfg')
            files.lookup('.disk/info')
