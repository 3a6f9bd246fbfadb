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

"""isoplugin.profiles: loading, detection, templates, boot menu edits."""

import os
from xml.etree import ElementTree

import pytest
from stevedore import extension
import yaml

from isoplugin import exception
from isoplugin import isoinfo
from isoplugin import profiles
from isoplugin.profiles import base
from isoplugin.profiles import bootcfg
from isoplugin import remaster
from tests.tools import make_distro_iso
from tests.tools import make_test_iso

LAYOUTS = make_distro_iso.LAYOUTS
FAMILIES = ('debian', 'ubuntu', 'anaconda', 'suse', 'windows')
KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfake user@host'
HASH = '$6$salt$Zm9vYmFyYmF6cXV1eGhhc2g'


def _layout(path):
    with open(os.path.join(LAYOUTS, path), encoding='utf-8') as f:
        return f.read()


# Loading ------------------------------------------------------------------

def test_entry_points_list_every_family():
    assert profiles.available_profiles() == [
        'anaconda', 'custom', 'debian', 'suse', 'ubuntu', 'windows']
    for profile in profiles.get_profiles():
        assert isinstance(profile, base.Profile)
        assert profile.name in profiles.available_profiles()


#: The third-party profile of doc/source/user/profiles.rst.
FREEBSD_PROFILE = '''
import os

from isoplugin.profiles import base


class FreeBSDProfile(base.Profile):
    """bsdinstall runs /etc/installerconfig when the media has one."""

    name = 'freebsd'
    description = 'FreeBSD bsdinstall with /etc/installerconfig'
    answer_kind = 'installerconfig'
    template = 'installerconfig'
    template_dir = os.path.join(os.path.dirname(__file__), 'templates')
    answer_path = 'etc/installerconfig'
    rules = (base.Rule(label=r'^\\d+_\\d+_RELEASE_',
                       all_of=('usr/libexec/bsdinstall',)),)
    variables = (
        base.Variable('disk', 'vtbd0', 'Target disk.'),
        base.Variable('ssh_key', '', "SSH public key for root."),
    )
    isolinux_configs = ()   # FreeBSD's loader: no menu to rewrite
    grub_configs = ()
    os_distro = 'freebsd'

    def validate(self, text):
        if 'shutdown -p now' not in text:
            raise self.invalid('it must end with shutdown -p now')
'''

FREEBSD_TEMPLATE = '''PARTITIONS={{disk}}
DISTRIBUTIONS="kernel.txz base.txz"
#!/bin/sh
echo '{{ssh_key}}' > /root/.ssh/authorized_keys
shutdown -p now
'''


def test_third_party_profile_through_the_entry_point(
        tmp_path, monkeypatch):
    pkg = tmp_path / 'bsdprofile'
    (pkg / 'templates').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'freebsd.py').write_text(FREEBSD_PROFILE)
    (pkg / 'templates' / 'installerconfig').write_text(FREEBSD_TEMPLATE)
    dist = tmp_path / 'bsdprofile-1.0.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text('Metadata-Version: 2.1\nName: bsdprofile'
                                   '\nVersion: 1.0\n')
    (dist / 'entry_points.txt').write_text(
        '[isoplugin.profiles]\nfreebsd = bsdprofile.freebsd:FreeBSDProfile'
        '\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    # stevedore keeps the entry points it read per group: read them again
    monkeypatch.setattr(extension.ExtensionManager, 'ENTRY_POINT_CACHE', {})
    assert 'freebsd' in profiles.available_profiles()
    iso = make_test_iso.make_iso(
        str(tmp_path / 'fbsd.iso'), volume_id='14_1_RELEASE_AMD64_CD',
        eltorito=True, files={'/usr/libexec/bsdinstall': '#!/bin/sh\n'})
    with isoinfo.open_files(iso) as files:
        profile, match = profiles.detect(files)
    assert profile.name == 'freebsd' and match.matched
    out, manifest = remaster.prepare(iso, values={'ssh_key': KEY},
                                     output_dir=str(tmp_path))
    assert manifest.properties['os_distro'] == 'freebsd'
    with isoinfo.open_files(out) as files:
        text = files.read('etc/installerconfig').decode()
    assert text.startswith('PARTITIONS=vtbd0\n')
    assert "echo '%s' > /root/.ssh/authorized_keys" % KEY in text


def test_unknown_profile():
    with pytest.raises(exception.ProfileNotFound) as e:
        profiles.get_profile('slackware')
    assert "No install profile named 'slackware'" in str(e.value)
    assert 'anaconda, custom, debian, suse, ubuntu, windows' in str(e.value)


# Detection -----------------------------------------------------------------

@pytest.mark.parametrize('family', FAMILIES)
def test_detect_each_family(distro_isos, family):
    with isoinfo.open_files(distro_isos[family]) as files:
        profile, match = profiles.detect(files)
    assert profile.name == family
    assert match.matched and match.looked_at


def test_ubuntu_is_not_taken_for_debian(distro_isos):
    # Both have .disk/info; casper/ decides.
    with isoinfo.open_files(distro_isos['ubuntu']) as files:
        debian = profiles.get_profile('debian').detect(files)
    assert debian.matched is False
    assert '/casper absent: no' in debian.looked_at


def test_not_detected_says_what_was_looked_at(tmp_path):
    path = make_test_iso.make_iso(str(tmp_path / 'x.iso'),
                                  volume_id='MYSTERY_OS',
                                  files={'/README': 'hello'})
    with isoinfo.open_files(path) as files:
        with pytest.raises(exception.ProfileNotDetected) as e:
            profiles.detect(files)
    msg = str(e.value)
    assert "volume label 'MYSTERY_OS'" in msg
    for looked in ('/.treeinfo: missing', '/casper', '/.disk/info',
                   'sources/install.wim', 'media.1/products'):
        assert looked in msg
    assert 'custom' in msg  # the profiles one may give


def test_custom_is_never_detected(distro_isos):
    with isoinfo.open_files(distro_isos['debian']) as files:
        assert profiles.get_profile('custom').detect(files).matched is False


# Templates and variables ---------------------------------------------------

POWEROFF = {
    'debian': ('d-i debian-installer/exit/poweroff boolean true',
               'exit/reboot'),
    'ubuntu': ('shutdown: poweroff', 'shutdown: reboot'),
    'anaconda': ('\npoweroff\n', '\nreboot'),
    'suse': ('<final_halt config:type="boolean">true</final_halt>',
             '<final_reboot config:type="boolean">true'),
    'windows': ('shutdown /s /t 0', 'shutdown /r'),
}


@pytest.mark.parametrize('family', FAMILIES)
def test_default_template_renders_validates_and_powers_off(family):
    profile = profiles.get_profile(family)
    text = profile.render()
    profile.validate(text)
    poweroff, reboot = POWEROFF[family]
    assert poweroff in text
    assert reboot not in text
    assert '{{' not in text


@pytest.mark.parametrize('family,expected', [
    ('debian', ['cloud-init', 'qemu-guest-agent', 'cloud-initramfs-growroot',
                'd-i netcfg/choose_interface select auto',
                'd-i passwd/root-password-crypted password !']),
    ('ubuntu', ['cloud-init', 'qemu-guest-agent', 'cloud-initramfs-growroot',
                'dhcp4: true', '"disable_root": true', 'ttyS0']),
    ('anaconda', ['cloud-init', 'qemu-guest-agent', 'cloud-utils-growpart',
                  'network --bootproto=dhcp', 'rootpw --lock',
                  'console=ttyS0,115200n8']),
    ('suse', ['cloud-init', 'qemu-guest-agent', 'growpart',
              '<bootproto>dhcp</bootproto>',
              '<user_password>!</user_password>', 'console=ttyS0']),
    ('windows', ['EMSPORT:1', '<PlainText>true</PlainText>']),
])
def test_cloud_ready_defaults(family, expected):
    text = profiles.get_profile(family).render()
    for item in expected:
        assert item in text, item


def test_windows_has_no_shared_default_password():
    profile = profiles.get_profile('windows')
    first, second = profile.render(), profile.render()
    ns = {'u': 'urn:schemas-microsoft-com:unattend'}

    def password(text):
        root = ElementTree.fromstring(text)
        return root.find('.//u:AdministratorPassword/u:Value', ns).text

    assert len(password(first)) >= 20
    assert password(first) != password(second)
    # ... and yet one cached prepared copy serves both (nobody knows it)
    assert profile.cache_text(first) == profile.cache_text(second)
    assert password(first) not in profile.cache_text(first)
    chosen = profile.render({'admin_password': 'Chosen-1'})
    assert profile.cache_text(chosen) == chosen
    assert profile.cache_text(profile.render(
        {'admin_password': 'Chosen-2'})) != chosen
    other = profiles.get_profile('debian')
    assert other.cache_text(other.render()) == other.render()
    assert 'sysprep' in profile.render({'cloudbase_init': 'cb/cbi.msi'})
    uefi = profile.render({'firmware': 'uefi'})
    assert '<Type>EFI</Type>' in uefi and '<PartitionID>3' in uefi


@pytest.mark.parametrize('family,key_line,root_line', [
    ('debian', '/root/.ssh/authorized_keys', 'root-password-crypted '
     'password !'),
    ('anaconda', 'sshkey --username=root "%s"' % KEY, 'rootpw --lock'),
    ('suse', '<listentry>%s</listentry>' % KEY, '<user_password>!<'),
    ('ubuntu', '"ssh_authorized_keys": ["%s"]' % KEY, '"lock_passwd": true'),
])
def test_ssh_key_given_root_locked(family, key_line, root_line):
    text = profiles.get_profile(family).render({'ssh_key': KEY})
    assert KEY in text and key_line in text and root_line in text


@pytest.mark.parametrize('family,line', [
    ('debian', 'root-password-crypted password %s' % HASH),
    ('anaconda', 'rootpw --iscrypted %s' % HASH),
    ('suse', '<user_password>%s</user_password>' % HASH),
    ('ubuntu', '"hashed_passwd": "%s"' % HASH),
])
def test_password_hash(family, line):
    assert line in profiles.get_profile(family).render(
        {'password_hash': HASH})


def test_debian_variables():
    text = profiles.get_profile('debian').render({
        'early_command': 'echo MARKER > /dev/ttyS0; poweroff',
        'late_command': 'in-target true',
        'mirror': 'http://mirror.example:8080/debian/',
        'proxy': 'http://proxy:3128', 'packages': 'vim, htop',
        'disk': '/dev/vda', 'locale': 'de_DE.UTF-8', 'keyboard': 'de',
        'timezone': 'Europe/Berlin'})
    for line in (
            'd-i preseed/early_command string echo MARKER > /dev/ttyS0; '
            'poweroff',
            'd-i mirror/protocol string http',
            'd-i mirror/http/hostname string mirror.example:8080',
            'd-i mirror/http/directory string /debian/',
            'd-i mirror/http/proxy string http://proxy:3128',
            'qemu-guest-agent vim htop', 'partman-auto/disk string /dev/vda',
            'locale string de_DE.UTF-8', 'xkb-keymap select de',
            'time/zone string Europe/Berlin',
            'late_command string in-target true'):
        assert line in text


def test_debian_https_mirror():
    text = profiles.get_profile('debian').render(
        {'mirror': 'https://deb.example/debian'})
    assert 'd-i mirror/protocol string https' in text
    assert 'd-i mirror/https/hostname string deb.example' in text


def test_values_are_quoted_for_yaml_and_xml():
    nasty = 'echo "a: b" & <x> \'y\''
    text = profiles.get_profile('ubuntu').render({'early_command': nasty})
    assert yaml.safe_load(text)['autoinstall']['early-commands'] == [nasty]
    for family in ('suse', 'windows'):
        text = profiles.get_profile(family).render({'early_command': nasty,
                                                    'late_command': nasty})
        assert nasty in ''.join(ElementTree.fromstring(text).itertext())


def test_unknown_variable():
    with pytest.raises(exception.TemplateVariableError) as e:
        profiles.get_profile('debian').render({'colour': 'blue',
                                               'ssh_kye': 'x'})
    assert "Profile 'debian': unknown variable(s) colour, ssh_kye" in str(
        e.value)
    assert 'early_command' in str(e.value)  # lists the known ones


def test_preseed_values_must_be_one_line():
    with pytest.raises(exception.TemplateVariableError) as e:
        profiles.get_profile('debian').render({'early_command': 'a\nb'})
    assert 'early_command must be one line' in str(e.value)


class _Broken(base.Profile):
    name = 'broken'
    answer_kind = 'text'
    variables = (base.Variable('needed', required=True),
                 base.Variable('flag', False, kind='bool'))

    def load_template(self):
        return 'needed={{needed}} flag={{flag}} other={{nowhere}}\n'

    def validate(self, text):
        pass


def test_missing_required_variable_and_template_field():
    profile = _Broken()
    with pytest.raises(exception.TemplateVariableError) as e:
        profile.render()
    assert 'variable needed is required' in str(e.value)
    with pytest.raises(exception.TemplateVariableError) as e:
        profile.render({'needed': 'x'})
    assert 'the template uses nowhere, which has no value' in str(e.value)
    with pytest.raises(exception.TemplateVariableError) as e:
        profile.render({'needed': 'x', 'flag': 'maybe'})
    assert 'flag must be true or false' in str(e.value)
    assert profile.resolve({'needed': 'x', 'flag': 'yes'})['flag'] is True


def test_secrets_are_marked_and_redacted():
    for family in ('debian', 'ubuntu', 'anaconda', 'suse'):
        assert 'password_hash' in profiles.get_profile(family).secret_names()
    windows = profiles.get_profile('windows')
    assert {'admin_password', 'product_key'} <= windows.secret_names()
    values = windows.resolve({'admin_password': 'S3cret!'})
    assert windows.redact(values)['admin_password'] == '***'
    assert windows.redact(values)['image_index'] == '1'


# Answer file validation ----------------------------------------------------

@pytest.mark.parametrize('family,text,reason', [
    ('ubuntu', 'autoinstall: [', 'YAML does not parse'),
    ('ubuntu', 'autoinstall:\n  locale: en_US\n', 'version: 1'),
    ('suse', '<profile><general>', 'XML does not parse'),
    ('suse', '<profile/>', 'not <profile xmlns="http://www.suse.com'),
    ('windows', '<unattend xmlns="urn:x"/>', 'not <unattend'),
    ('anaconda', 'text\nrootpwd --lock\n', "unknown command 'rootpwd'"),
    ('anaconda', 'text\n%pre\necho\n', '%pre is not closed by %end'),
    ('anaconda', '%packages\n%post\n%end\n', '%post inside %packages'),
    ('anaconda', 'text\n%end\n', '%end outside a section'),
    ('debian', 'd-i foo/bar strin x\n', 'line 1 (d-i foo/bar) is not '
     '"owner question type'),
    ('debian', 'd-i foo/bar boolean yes\n', 'a boolean must be true'),
    ('debian', 'd-i foo/bar string a \\\n', 'continuation line'),
    ('custom', '  \n', 'the answer file is empty'),
])
def test_invalid_answer_files(family, text, reason):
    with pytest.raises(exception.AnswerFileInvalid) as e:
        profiles.get_profile(family).validate(text)
    assert reason in str(e.value)
    assert 'answer file is not valid' in str(e.value)


def test_valid_user_answer_files():
    profiles.get_profile('anaconda').validate(
        '# mine\ntext\nrootpw --lock\n%post --nochroot\nls\n%end\n')
    profiles.get_profile('debian').validate(
        'd-i foo/bar string a \\\n  b\n# c\nd-i x/y boolean true\n')
    profiles.get_profile('ubuntu').validate('version: 1\n')


def test_custom_profile_has_no_template():
    with pytest.raises(exception.TemplateVariableError) as e:
        profiles.get_profile('custom').render()
    assert 'this profile has no template: give an answer file' in str(
        e.value)


# Boot menus ----------------------------------------------------------------

def test_isolinux_debian_menus():
    names = ('isolinux.cfg', 'menu.cfg', 'gtk.cfg', 'txt.cfg')
    texts = [_layout('debian/isolinux/' + n) for n in names]
    new, label, initrds = bootcfg.edit_isolinux(
        texts, '^install$', ['auto=true', 'priority=critical'],
        ['console=ttyS0,115200n8'])
    isolinux, menu, gtk, txt = new
    assert label == 'install'
    assert initrds == ['/install.amd/initrd.gz']
    assert 'timeout 10' in isolinux and 'timeout 0' not in isolinux
    assert 'default install' in isolinux and 'vesamenu' not in isolinux
    assert '\tappend vga=788 initrd=/install.amd/initrd.gz auto=true ' \
           'priority=critical --- quiet console=ttyS0,115200n8' in txt
    assert 'menu default' in txt
    assert 'menu default' not in gtk and 'default install' in gtk
    assert 'auto=true' not in gtk  # the graphical entry is left alone
    assert menu == texts[1]


def test_isolinux_rocky_and_suse():
    new, label, initrds = bootcfg.edit_isolinux(
        [_layout('anaconda/isolinux/isolinux.cfg')], '^linux$',
        ['inst.ks=cdrom:/ks.cfg'], ['console=ttyS0,115200n8'])
    text = new[0]
    assert label == 'linux' and initrds == ['initrd.img']
    assert 'default linux' in text and 'timeout 10' in text
    block = text.split('label linux')[1].split('label check')[0]
    assert 'menu default' in block
    assert 'quiet inst.ks=cdrom:/ks.cfg console=ttyS0,115200n8' in block
    assert text.count('menu default') == 1
    new, label, _i = bootcfg.edit_isolinux(
        [_layout('suse/boot/x86_64/loader/isolinux.cfg')], '^linux$',
        ['autoyast=cd:/autoinst.xml'], [])
    assert label == 'linux' and 'default linux' in new[0]
    assert 'timeout\t\t600' not in new[0] and 'timeout 10' in new[0]


def test_isolinux_inserts_missing_default_and_timeout():
    new, label, initrds = bootcfg.edit_isolinux(
        ['label a\n  kernel /vmlinuz\n'], None, ['x=1'], ['y=2'])
    assert new[0].startswith('default a\ntimeout 10\nlabel a\n')
    assert '  append x=1 y=2' in new[0]
    assert bootcfg.edit_isolinux(['default vesamenu.c32\n'], None, [],
                                 []) is None


def test_grub_debian_rocky_ubuntu_suse():
    text, title, initrds = bootcfg.edit_grub(
        _layout('debian/boot/grub/grub.cfg'), '^install$',
        ['auto=true', 'priority=critical'], ['console=ttyS0,115200n8'])
    assert title == 'Install' and initrds == ['/install.amd/initrd.gz']
    assert text.startswith('set default=1\nset timeout=1\n')
    assert ('linux    /install.amd/vmlinuz vga=788 auto=true '
            'priority=critical --- quiet console=ttyS0,115200n8') in text
    assert text.count('auto=true') == 1

    text, title, _i = bootcfg.edit_grub(
        _layout('anaconda/EFI/BOOT/grub.cfg'), '^install',
        ['inst.ks=cdrom:/ks.cfg'], [])
    assert title == 'Install Rocky Linux 9.4'
    assert 'set default=0' in text and 'set default="1"' not in text
    assert 'set timeout=1' in text and 'set timeout=60' not in text

    text, title, _i = bootcfg.edit_grub(
        _layout('ubuntu/boot/grub/grub.cfg'), 'install',
        ['autoinstall', 'ds=nocloud;s=/cdrom/nocloud/'], ['console=ttyS0'])
    assert title == 'Try or Install Ubuntu Server'
    assert ("/casper/vmlinuz autoinstall 'ds=nocloud;s=/cdrom/nocloud/' "
            "--- console=ttyS0") in text

    text, title, _i = bootcfg.edit_grub(
        _layout('suse/EFI/BOOT/grub.cfg'), '^install', ['autoyast=x'], [])
    assert title == 'Installation'
    assert 'default=1' in text and 'timeout=1' in text
    assert 'timeout=60' not in text


def test_grub_without_kernel_entries():
    assert bootcfg.edit_grub('search --set=root -f /x\nsource /y.cfg\n',
                             None, ['a'], []) is None


def test_add_args_is_idempotent():
    once = bootcfg.add_args('quiet --- splash', ['a=1'], ['console=ttyS0'])
    assert once == 'quiet a=1 --- splash console=ttyS0'
    assert bootcfg.add_args(once, ['a=1'], ['console=ttyS0']) == once


# Output properties ---------------------------------------------------------

@pytest.mark.parametrize('family,expected', [
    ('debian', {'os_type': 'linux', 'os_distro': 'debian',
                'os_version': '12', 'architecture': 'x86_64',
                'hw_qemu_guest_agent': 'yes',
                'isoplugin_profile': 'debian'}),
    ('ubuntu', {'os_type': 'linux', 'os_distro': 'ubuntu',
                'os_version': '24.04', 'architecture': 'x86_64',
                'hw_qemu_guest_agent': 'yes',
                'isoplugin_profile': 'ubuntu'}),
    ('anaconda', {'os_type': 'linux', 'os_distro': 'rocky',
                  'os_version': '9.4', 'architecture': 'x86_64',
                  'hw_qemu_guest_agent': 'yes',
                  'isoplugin_profile': 'anaconda'}),
    ('suse', {'os_type': 'linux', 'os_distro': 'opensuse',
              'os_version': '15.6', 'architecture': 'x86_64',
              'hw_qemu_guest_agent': 'yes', 'isoplugin_profile': 'suse'}),
    ('windows', {'os_type': 'windows', 'os_distro': 'windows',
                 'architecture': 'x86_64', 'os_admin_user': 'Administrator',
                 'isoplugin_profile': 'windows'}),
])
def test_image_properties(distro_isos, family, expected):
    with isoinfo.open_files(distro_isos[family]) as files:
        props = profiles.get_profile(family).image_properties(files)
    assert props == expected


def test_windows_guest_agent_property_needs_the_tools(distro_isos):
    profile = profiles.get_profile('windows')
    with isoinfo.open_files(distro_isos['windows']) as files:
        props = profile.image_properties(files, profile.resolve(
            {'virtio_guest_tools': 'virtio/virtio-win-guest-tools.exe'}))
    assert props['hw_qemu_guest_agent'] == 'yes'


def test_newc_cpio_round_trip():
    data = base.newc_cpio({'preseed.cfg': b'd-i a/b string c\n',
                           '/odd': b'x' * 5})
    assert make_distro_iso.read_cpio_gz(data) == {
        'preseed.cfg': b'd-i a/b string c\n', 'odd': b'xxxxx'}
    nested = make_distro_iso.read_cpio_gz(base.newc_cpio(
        {'etc/app/a.cfg': b'a', 'etc/b.cfg': b'b'}))
    assert nested == {'etc': b'', 'etc/app': b'', 'etc/app/a.cfg': b'a',
                      'etc/b.cfg': b'b'}


def test_reference_documents_every_variable():
    doc = os.path.join(os.path.dirname(__file__), '..', '..', 'doc',
                       'source', 'user', 'profiles.rst')
    with open(doc, encoding='utf-8') as f:
        text = f.read()
    for profile in profiles.get_profiles():
        assert '``%s``' % profile.name in text
        for var in profile.variables:
            assert '``%s``' % var.name in text, (profile.name, var.name)
            if var.secret:
                assert '**Secret.**' in text


def test_describe():
    info = profiles.get_profile('debian').describe()
    assert info['name'] == 'debian' and info['answer_kind'] == 'preseed'
    assert info['kernel_args'] == ['auto=true', 'priority=critical']
    assert info['detection'][0].startswith(
        '/.disk/info and one of /install.amd/initrd.gz, ')
    assert info['detection'][0].endswith(' and no /casper')
    assert info['detection'][1].startswith('label ~ /^debian\\b/ and ')
    secret = [v for v in info['variables'] if v['secret']]
    assert [v['name'] for v in secret] == ['password_hash']
    assert secret[0]['default'] == ''
    assert profiles.get_profile('custom').describe()['detection'] == []


def test_disk_layouts():
    assert 'choose_recipe select atomic' in profiles.get_profile(
        'debian').render({'disk_layout': 'lvm'})
    assert 'autopart --type=lvm' in profiles.get_profile(
        'anaconda').render({'disk_layout': 'lvm'})
    assert '"name": "lvm"' in profiles.get_profile('ubuntu').render(
        {'disk_layout': 'lvm'})
    with pytest.raises(exception.TemplateVariableError) as e:
        profiles.get_profile('suse').render({'disk_layout': 'lvm'})
    assert 'disk_layout must be one of plain' in str(e.value)
    with pytest.raises(exception.TemplateVariableError):
        profiles.get_profile('debian').render({'disk_layout': 'zfs'})


def test_invalid_preseed_does_not_echo_values():
    with pytest.raises(exception.AnswerFileInvalid) as e:
        profiles.get_profile('debian').validate(
            'd-i passwd/root-password-crypted passwrd %s\n' % HASH)
    assert HASH not in str(e.value)
    assert 'd-i passwd/root-password-crypted' in str(e.value)


def test_invalid_yaml_does_not_echo_values():
    with pytest.raises(exception.AnswerFileInvalid) as e:
        profiles.get_profile('ubuntu').validate(
            'autoinstall:\n  secret: "%s\n  x: [' % HASH)
    assert HASH not in str(e.value)
    assert 'YAML does not parse' in str(e.value) and 'line' in str(e.value)
