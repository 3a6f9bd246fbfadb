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

"""isoplugin.remaster: the prepared copy of distribution-like ISOs.

The source ISOs reproduce each family's layout (tests/tools/
make_distro_iso.py), hybrid ones included: Debian, Rocky and openSUSE
with an isohybrid MBR + GPT and an EFI image inside the ISO, Ubuntu with
the EFI image as an appended GPT partition. xorriso reports their El Torito
catalog and system area before and after.
"""

import json
import os
import re
import shutil
import subprocess
from unittest import mock

import pytest
import yaml

from isoplugin import exception
from isoplugin import isoinfo
from isoplugin import profiles
from isoplugin.profiles import base
from isoplugin import remaster
from tests.tools import make_distro_iso
from tests.tools import make_test_iso
from tests.tools import make_windows_iso

HASH = '$6$salt$c2VjcmV0aGFzaHZhbHVl'


@pytest.fixture
def out_dir(tmp_path):
    d = tmp_path / 'out'
    d.mkdir()
    return str(d)


def _report(path):
    return subprocess.run(
        ['xorriso', '-indev', path, '-report_el_torito', 'plain',
         '-report_system_area', 'plain'],
        capture_output=True, text=True, check=True).stdout


def boot_equipment(path):
    """The El Torito and partition layout, without what moves with files.

    Block addresses and sizes change when files are added; GUIDs are made
    anew; GPT "Gap" entries (filling space between the ISO and appended
    partitions) depend on padding. Everything else must stay.
    """
    lines, gaps = [], set()
    for line in _report(path).splitlines():
        key, _sep, value = line.partition(':')
        key, fields = key.strip(), value.split()
        if key == 'GPT partname local' and fields[1].startswith('Gap'):
            gaps.add(fields[0])
    for line in _report(path).splitlines():
        key, _sep, value = line.partition(':')
        key, fields = key.strip(), value.split()
        if 'GUID' in key or (key.startswith('GPT partition') or
                             key.startswith('GPT part') or
                             key.startswith('GPT start') or
                             key.startswith('GPT type')) and \
                fields and fields[0] in gaps:
            continue
        if key in ('El Torito catalog', 'ISO image size/512',
                   'GPT lba range', 'GPT entry array'):
            fields = ['#']
        elif key == 'GPT start and size':
            fields = fields[:1] + ['#']
        elif key == 'El Torito boot img':
            fields = fields[:-1]
        elif key == 'MBR partition' and fields[0] != 'N':
            # isohybrid partition 1 starts at 0: keep that, not sizes
            fields = fields[:3] + [fields[3] if fields[3] == '0' else '#']
        lines.append('%s: %s' % (key, ' '.join(fields)))
    return lines


def _files(path):
    return isoinfo.open_files(path)


# Every family: detected, answer in place, menus rewritten, boot kept ------

def test_debian(distro_isos, out_dir):
    src = distro_isos['debian']
    out, manifest = remaster.prepare(
        src, values={'early_command': 'echo ISOPLUGIN-MARKER >/dev/ttyS0'},
        output_dir=out_dir)
    assert os.listdir(out_dir) == [os.path.basename(out)]
    assert manifest.profile == 'debian' and manifest.detected
    assert {c['path'] for c in manifest.changes} == {
        '/isolinux/isolinux.cfg', '/isolinux/gtk.cfg', '/isolinux/txt.cfg',
        '/boot/grub/grub.cfg', '/install.amd/initrd.gz'}
    with _files(out) as files:
        # the answer: appended to the initrd the default entries load
        initrd = make_distro_iso.read_cpio_gz(
            files.read('install.amd/initrd.gz'))
        assert initrd['init'] == b'#!/bin/sh\necho d-i text\n'  # kept
        preseed = initrd['preseed.cfg'].decode()
        profiles.get_profile('debian').validate(preseed)
        assert ('d-i preseed/early_command string echo ISOPLUGIN-MARKER '
                '>/dev/ttyS0') in preseed
        assert 'preseed.cfg' not in make_distro_iso.read_cpio_gz(
            files.read('install.amd/gtk/initrd.gz'))
        # BIOS
        isolinux = files.read('isolinux/isolinux.cfg').decode()
        assert 'default install' in isolinux and 'timeout 10' in isolinux
        assert ('initrd=/install.amd/initrd.gz auto=true priority=critical '
                '--- quiet console=tty0 console=ttyS0,115200n8'
                in files.read('isolinux/txt.cfg').decode())
        # UEFI
        grub = files.read('boot/grub/grub.cfg').decode()
        assert grub.startswith('set default=1\nset timeout=1\n')
        assert ('vga=788 auto=true priority=critical --- quiet console=tty0 '
                'console=ttyS0,115200n8') in grub
        # untouched files are the same
        assert files.read('pool/main/README') == b'packages\n'
        assert files.has_joliet
    assert boot_equipment(out) == boot_equipment(src)


def test_ubuntu_appended_efi_partition(distro_isos, out_dir):
    src = distro_isos['ubuntu']
    out, manifest = remaster.prepare(src, output_dir=out_dir)
    assert manifest.profile == 'ubuntu'
    with _files(out) as files:
        answer = files.read('autoinstall.yaml').decode()
        profiles.get_profile('ubuntu').validate(answer)
        user_data = files.read('nocloud/user-data').decode()
        assert user_data.startswith('#cloud-config\n')
        assert yaml.safe_load(user_data)['autoinstall'] == yaml.safe_load(
            answer)['autoinstall']
        assert files.exists('nocloud/meta-data')
        grub = files.read('boot/grub/grub.cfg').decode()
        assert 'set timeout=1' in grub and 'set timeout=30' not in grub
        assert ("/casper/vmlinuz autoinstall 'ds=nocloud;s=/cdrom/nocloud/'"
                " --- console=tty0 console=ttyS0,115200n8") in grub
    report = _report(out)
    assert 'Appended2' in report and '28732ac11ff8d211ba4b00a0c93ec93b' in \
        report  # the EFI system partition is still appended
    assert boot_equipment(out) == boot_equipment(src)


@pytest.mark.parametrize('family,answer,bios,uefi', [
    ('anaconda', 'ks.cfg', 'isolinux/isolinux.cfg', 'EFI/BOOT/grub.cfg'),
    ('suse', 'autoinst.xml', 'boot/x86_64/loader/isolinux.cfg',
     'EFI/BOOT/grub.cfg'),
])
def test_anaconda_and_suse(distro_isos, out_dir, family, answer, bios,
                           uefi):
    src = distro_isos[family]
    profile = profiles.get_profile(family)
    arg = profile.kernel_args[0]
    out, manifest = remaster.prepare(src, kernel_args=['inst.debug'],
                                     output_dir=out_dir)
    assert manifest.profile == family
    with _files(out) as files:
        profile.validate(files.read(answer).decode())
        bios_text = files.read(bios).decode()
        assert 'default linux' in bios_text and 'timeout 10' in bios_text
        assert re.search(r'append initrd=\S+ .*%s.* console=ttyS0,115200n8 '
                         r'inst.debug' % re.escape(arg), bios_text)
        uefi_text = files.read(uefi).decode()
        assert re.search(r'linuxefi /\S+ .*%s.*console=ttyS0,115200n8 '
                         r'inst.debug' % re.escape(arg), uefi_text)
    assert boot_equipment(out) == boot_equipment(src)
    assert manifest.warnings == []


def test_anaconda_uefi_menu_inside_the_efi_image(distro_isos, out_dir,
                                                 tmp_path):
    out, manifest = remaster.prepare(distro_isos['anaconda'],
                                     output_dir=out_dir)
    assert '/images/efiboot.img' in {c['path'] for c in manifest.changes}
    img = str(tmp_path / 'efiboot.img')
    with _files(out) as files, open(img, 'wb') as f:
        files.copy('images/efiboot.img', f)
        size = files.lookup('images/efiboot.img').size
    with _files(distro_isos['anaconda']) as files:
        assert files.lookup('images/efiboot.img').size == size
    grub = make_distro_iso.read_fat_file(img, 'EFI/BOOT/grub.cfg').decode()
    assert 'set default=0' in grub and 'set timeout=1' in grub
    assert 'quiet inst.ks=cdrom:/ks.cfg inst.text console=tty0' in grub
    assert make_distro_iso.read_fat_file(
        img, 'EFI/BOOT/BOOTX64.EFI') == b'MZ shim\n'


def test_without_mtools_the_efi_image_is_kept_and_said(distro_isos,
                                                       out_dir):
    real = shutil.which

    def which(name):
        return None if name.startswith('m') else real(name)

    with mock.patch('shutil.which', side_effect=which):
        out, manifest = remaster.prepare(distro_isos['anaconda'],
                                         output_dir=out_dir)
    assert manifest.warnings == [
        'the UEFI menu inside /images/efiboot.img was not rewritten: '
        'mtools is not installed']
    assert '/images/efiboot.img' not in {c['path']
                                         for c in manifest.changes}
    assert '/EFI/BOOT/grub.cfg' in {c['path'] for c in manifest.changes}


def test_isohybrid_layout_kept_exactly(distro_isos, out_dir):
    # debian-cd's -isohybrid-mbr + -isohybrid-gpt-basdat: MBR partition 1
    # from sector 0, the EFI image as MBR partition 2, GPT on top.
    src = distro_isos['debian']
    out, _m = remaster.prepare(src, output_dir=out_dir)
    before = boot_equipment(src)
    assert 'MBR partition: 1 0x80 0x00 0' in before
    assert 'MBR partition: 2 0x00 0xef #' in before
    assert 'El Torito boot img: 1 BIOS y none 0x0000 0x00 4' in before
    assert 'El Torito boot img: 2 UEFI y none 0x0000 0x00 2048' in before
    assert boot_equipment(out) == before


def test_minimal_debian_netboot_layout(tmp_path, out_dir):
    # What an ISO made from debian-installer-12-netboot-amd64 looks like:
    # the netboot tree, a stock isolinux menu that waits forever, no UEFI.
    initrd = make_distro_iso.cpio_gz({'init': b'd-i'})
    src = make_test_iso.make_iso(
        str(tmp_path / 'netboot.iso'), volume_id='DEBIAN_12_NETBOOT',
        eltorito=True, disk_info='Debian GNU/Linux 12 netboot',
        files={'/debian-installer/amd64/linux': b'kernel',
               '/debian-installer/amd64/initrd.gz': initrd,
               '/isolinux/isolinux.cfg':
               'default install\nprompt 0\ntimeout 0\nlabel install\n'
               '  kernel /debian-installer/amd64/linux\n'
               '  append vga=788 initrd=/debian-installer/amd64/initrd.gz '
               '--- quiet\n'})
    marker = 'echo ISOPLUGIN-E2E-MARKER >/dev/ttyS0; poweroff'
    out, manifest = remaster.prepare(src, values={'early_command': marker},
                                     output_dir=out_dir)
    assert manifest.profile == 'debian'
    with _files(out) as files:
        preseed = make_distro_iso.read_cpio_gz(files.read(
            'debian-installer/amd64/initrd.gz'))['preseed.cfg'].decode()
        assert 'd-i preseed/early_command string %s\n' % marker in preseed
        cfg = files.read('isolinux/isolinux.cfg').decode()
    assert cfg.startswith('default install\nprompt 0\ntimeout 10\n')
    assert ('append vga=788 initrd=/debian-installer/amd64/initrd.gz '
            'auto=true priority=critical --- quiet console=tty0 '
            'console=ttyS0,115200n8') in cfg
    assert boot_equipment(out) == boot_equipment(src)


def test_custom_profile(distro_isos, out_dir):
    out, manifest = remaster.prepare(
        distro_isos['debian'], profile='custom', answer='my own preseed\n',
        values={'answer_path': 'my.seed', 'in_initrd': 'true',
                'kernel_args': 'auto=true file=/my.seed',
                'boot_entry': '^install$'}, output_dir=out_dir)
    assert manifest.profile == 'custom' and manifest.detected == []
    with _files(out) as files:
        initrd = make_distro_iso.read_cpio_gz(
            files.read('install.amd/initrd.gz'))
        assert initrd['my.seed'] == b'my own preseed\n'
        assert 'auto=true file=/my.seed --- quiet console=tty0' in \
            files.read('isolinux/txt.cfg').decode()
    out, _m = remaster.prepare(
        distro_isos['anaconda'], profile='custom', answer='ks\n',
        values={'answer_path': 'mine/ks.cfg'}, output_dir=out_dir)
    with _files(out) as files:
        assert files.read('mine/ks.cfg') == b'ks\n'


# Windows: files in UDF, written with pycdlib ---------------------------

def _windows_add_files(tmp_path):
    drivers = tmp_path / 'drivers'
    for name in ('viostor', 'netkvm'):
        (drivers / name).mkdir(parents=True)
        (drivers / name / ('%s.inf' % name)).write_text('[Version]\n')
    virtio_iso = make_test_iso.make_iso(
        str(tmp_path / 'virtio-win.iso'), volume_id='VIRTIO_WIN_0_1_262',
        files={'/virtio-win-guest-tools.exe': b'MZ tools\n',
               '/viostor/2k22/amd64/viostor.sys': b'MZ viostor\n'})
    msi = tmp_path / 'CloudbaseInitSetup_x64.msi'
    msi.write_bytes(b'MSI cloudbase-init\n')
    ei = tmp_path / 'ei.cfg'
    ei.write_text('[Channel]\nRetail\n')
    return [(str(drivers), '/$WinPEDriver$'),
            (virtio_iso, '/virtio-win'),
            (str(msi), '/cloudbase/CloudbaseInitSetup_x64.msi'),
            (str(ei), '/Sources/ei.cfg')]


def test_windows_udf_media(windows_iso, out_dir, tmp_path):
    from tests.unit import conftest

    add = _windows_add_files(tmp_path)
    out, manifest = remaster.prepare(
        windows_iso, values={
            'cloudbase_init': 'cloudbase/CloudbaseInitSetup_x64.msi',
            'virtio_guest_tools': 'virtio-win/virtio-win-guest-tools.exe'},
        add_files=add, output_dir=out_dir)
    assert manifest.profile == 'windows' and manifest.detected
    assert [(c['path'], c['action']) for c in manifest.changes] == [
        ('/Autounattend.xml', 'added'), ('/$WinPEDriver$', 'added'),
        ('/virtio-win', 'added'),
        ('/cloudbase/CloudbaseInitSetup_x64.msi', 'added'),
        ('/Sources/ei.cfg', 'added')]
    assert manifest.properties['hw_qemu_guest_agent'] == 'yes'
    with _files(out) as files:
        assert files.tree == 'udf'  # where Windows Setup reads them
        answer = files.read('Autounattend.xml').decode()
        profiles.get_profile('windows').validate(answer)
        assert 'cloudbase\\CloudbaseInitSetup_x64.msi /qn' in answer
        assert 'shutdown /s' in answer or '/shutdown' in answer
        assert sorted(files.listdir('$WinPEDriver$')) == ['netkvm',
                                                          'viostor']
        assert files.read('$WinPEDriver$/viostor/viostor.inf') == \
            b'[Version]\n'
        assert files.read('virtio-win/viostor/2k22/amd64/viostor.sys') == \
            b'MZ viostor\n'
        assert files.read('cloudbase/CloudbaseInitSetup_x64.msi') == \
            b'MSI cloudbase-init\n'
        # merged into the existing sources/, names compared without case
        assert 'Sources' not in files.listdir('/')
        assert files.read('sources/ei.cfg') == b'[Channel]\nRetail\n'
        with _files(windows_iso) as src:
            for path in ('sources/install.wim', 'sources/boot.wim',
                         'bootmgr', 'README.TXT'):
                assert files.read(path) == src.read(path), path
    # both El Torito entries kept, each loading what it loaded before
    images = make_windows_iso.eltorito_images(out)
    assert images == make_windows_iso.eltorito_images(windows_iso)
    assert images == [
        ('BIOS', 8, conftest.WINDOWS_BOOT['boot/etfsboot.com'][:16]),
        ('UEFI', 2880, conftest.WINDOWS_BOOT[
            'efi/microsoft/boot/efisys.bin'][:16])]
    assert boot_equipment(out) == boot_equipment(windows_iso)
    assert 'MBR partition' not in _report(out)


def test_windows_replaces_files_and_streams_to_a_sink(
        windows_iso, out_dir, tmp_path):
    # a source that has an answer file already, spelt in lower case
    answer = tmp_path / 'autounattend.xml'
    answer.write_text('<unattend xmlns="urn:schemas-microsoft-com:unattend"'
                      '/>\n')
    first = os.path.join(out_dir, 'first.iso')
    with open(first, 'wb') as f:
        remaster.write_udf(windows_iso, [base.Change(
            '/autounattend.xml', 'added', '', str(answer))], f)
    got = []

    def sink(read):
        for chunk in iter(lambda: read(1 << 16), b''):
            got.append(chunk)
        return 'uploaded'

    result, manifest = remaster.prepare(first, sink=sink,
                                        output_dir=out_dir)
    assert result == 'uploaded' and manifest.output == ''
    assert os.listdir(out_dir) == [os.path.basename(first)]
    assert [(c['path'], c['action']) for c in manifest.changes] == [
        ('/Autounattend.xml', 'replaced')]
    second = tmp_path / 'second.iso'
    second.write_bytes(b''.join(got))
    with _files(str(second)) as files:
        # one answer file, under the name the source spelt it
        assert [n for n in files.listdir('/')
                if n.lower() == 'autounattend.xml'] == ['autounattend.xml']
        assert b'<FirstLogonCommands>' in files.read('autounattend.xml')
    assert make_windows_iso.eltorito_images(str(second)) == \
        make_windows_iso.eltorito_images(windows_iso)


def test_windows_iso9660_media_use_xorriso(tmp_path, out_dir):
    # media rebuilt with ISO 9660 + Joliet files (no UDF) are replayed
    src = make_test_iso.make_iso(
        str(tmp_path / 'w.iso'), volume_id='WIN_SERVER_2022',
        eltorito=True, files={'/sources/boot.wim': b'wim',
                              '/sources/install.wim': b'wim'})
    with mock.patch.object(remaster, 'write_udf') as udf:
        out, manifest = remaster.prepare(src, output_dir=out_dir)
    assert not udf.called and manifest.profile == 'windows'
    with _files(out) as files:
        assert files.tree != 'udf'
        profiles.get_profile('windows').validate(
            files.read('Autounattend.xml').decode())
    assert boot_equipment(out) == boot_equipment(src)


# Manifest and secrets --------------------------------------------------------

def test_manifest_holds_no_secret(distro_isos, out_dir):
    out, manifest = remaster.prepare(
        distro_isos['anaconda'], profile='anaconda',
        values={'password_hash': HASH}, output_dir=out_dir)
    data = json.dumps(manifest.as_dict())
    assert HASH not in data
    assert manifest.variables['password_hash'] == '***'
    assert len(manifest.answer_sha256) == 64
    assert manifest.properties['os_distro'] == 'rocky'
    with _files(out) as files:  # the ISO itself has it, and is private
        assert HASH in files.read('ks.cfg').decode()


# Errors: clear, and nothing left behind ------------------------------------

def test_udf_only_media_refused(distro_isos, out_dir):
    # Windows media always have the ISO 9660 bridge; pycdlib needs it
    with pytest.raises(exception.PrepareFailed) as e:
        remaster.prepare(distro_isos['windows'], output_dir=out_dir)
    assert 'it is UDF only, without the ISO 9660 bridge' in str(e.value)
    assert os.listdir(out_dir) == []


def test_pycdlib_missing(windows_iso, out_dir):
    with mock.patch.dict('sys.modules', {'pycdlib': None}):
        with pytest.raises(exception.PrepareFailed) as e:
            remaster.prepare(windows_iso, output_dir=out_dir)
    assert 'install it (pip install pycdlib)' in str(e.value)
    assert os.listdir(out_dir) == []


def test_udf_write_fails_output_removed(windows_iso, out_dir):
    import pycdlib

    with mock.patch.object(pycdlib.PyCdlib, 'write_fp', side_effect=(
            pycdlib.pycdlibexception.PyCdlibInvalidInput('disk full'))):
        with pytest.raises(exception.PrepareFailed) as e:
            remaster.prepare(windows_iso, output_dir=out_dir)
    assert str(e.value).endswith('pycdlib cannot write a copy of it: '
                                 'disk full')
    assert os.listdir(out_dir) == []


def test_not_detected(tmp_path, out_dir):
    src = make_test_iso.make_iso(str(tmp_path / 'x.iso'),
                                 volume_id='MYSTERY')
    with pytest.raises(exception.ProfileNotDetected) as e:
        remaster.prepare(src, output_dir=out_dir)
    assert "Looked at: volume label 'MYSTERY'" in str(e.value)
    assert os.listdir(out_dir) == []


def test_unknown_profile_and_variable(distro_isos, out_dir):
    with pytest.raises(exception.ProfileNotFound):
        remaster.prepare(distro_isos['debian'], profile='nope',
                         output_dir=out_dir)
    with pytest.raises(exception.TemplateVariableError):
        remaster.prepare(distro_isos['debian'], values={'nope': 1},
                         output_dir=out_dir)
    assert os.listdir(out_dir) == []


def test_invalid_answer_file(distro_isos, out_dir):
    with pytest.raises(exception.AnswerFileInvalid) as e:
        remaster.prepare(distro_isos['ubuntu'], answer='autoinstall: [',
                         output_dir=out_dir)
    assert 'The autoinstall answer file is not valid' in str(e.value)
    assert os.listdir(out_dir) == []


def test_no_boot_entry(tmp_path, out_dir):
    src = make_test_iso.make_iso(
        str(tmp_path / 'x.iso'), volume_id='ROCKY_9',
        files={'/.treeinfo': '[general]\n', '/images/install.img': 'x',
               '/isolinux/isolinux.cfg': 'default vesamenu.c32\n'})
    with pytest.raises(exception.PrepareFailed) as e:
        remaster.prepare(src, output_dir=out_dir)
    assert 'no boot entry with a kernel in /isolinux/isolinux.cfg' in str(
        e.value)
    assert os.listdir(out_dir) == []


def test_not_an_iso(tmp_path, out_dir):
    src = tmp_path / 'x.iso'
    src.write_bytes(b'QFI\xfb' + b'\0' * 100000)
    with pytest.raises(exception.NotAnISO):
        remaster.prepare(str(src), output_dir=out_dir)
    assert os.listdir(out_dir) == []


def test_xorriso_missing(distro_isos, out_dir):
    with mock.patch.object(remaster.shutil, 'which', return_value=None):
        with pytest.raises(exception.PrepareFailed) as e:
            remaster.prepare(distro_isos['debian'], output_dir=out_dir)
    assert 'xorriso program is not installed' in str(e.value)
    assert 'apt-get install xorriso' in str(e.value)
    assert os.listdir(out_dir) == []


def test_xorriso_fails_output_removed(distro_isos, out_dir):
    real = remaster.xorriso_command

    def broken(*args, **kwargs):
        cmd = real(*args, **kwargs)
        return cmd[:-1] + ['-map', '/nonexistent/file', '/x', '-end']

    with mock.patch.object(remaster, 'xorriso_command', side_effect=broken):
        with pytest.raises(exception.PrepareFailed) as e:
            remaster.prepare(distro_isos['debian'], output_dir=out_dir)
    assert 'xorriso exited with' in str(e.value)
    assert 'FAILURE' in str(e.value) or 'SORRY' in str(e.value)
    assert os.listdir(out_dir) == []


def test_interrupted_output_removed(distro_isos, out_dir):
    with mock.patch.object(remaster, '_run_xorriso',
                           side_effect=KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            remaster.prepare(distro_isos['suse'], output_dir=out_dir)
    assert os.listdir(out_dir) == []


def test_replay_options():
    assert remaster.replay_options('') == ['-boot_image', 'any', 'replay']
    isohybrid = ('El Torito img opts :   1  boot-info-table '
                 'isohybrid-suitable\nMBR partition      :   1   0x80  0x00'
                 '            0         4096\nGPT                :   N  '
                 'Info\n')
    assert remaster.replay_options(isohybrid) == [
        '-boot_image', 'any', 'replay',
        '-boot_image', 'isolinux', 'partition_table=on',
        '-boot_image', 'any', 'efi_boot_part=',
        '-boot_image', 'isolinux', 'partition_entry=gpt_basdat']
