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
