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

"""anaconda (Fedora, RHEL, CentOS Stream, Rocky, AlmaLinux): a kickstart."""

import configparser
import re

from isoplugin.i18n import _
from isoplugin.profiles import base

#: Kickstart commands the syntax check accepts (pykickstart's, as of
#: Fedora 40 / RHEL 9).
COMMANDS = frozenset((
    'authselect', 'autopart', 'bootloader', 'btrfs', 'cdrom', 'clearpart',
    'cmdline', 'eula', 'firewall', 'firstboot', 'graphical', 'group',
    'halt', 'harddrive', 'ignoredisk', 'include', 'install', 'iscsi',
    'iscsiname', 'keyboard', 'lang', 'liveimg', 'logging', 'logvol',
    'mediacheck', 'module', 'mount', 'network', 'nfs', 'ostreesetup',
    'part', 'partition', 'poweroff', 'raid', 'realm', 'reboot', 'repo',
    'reqpart', 'rhsm', 'rootpw', 'selinux', 'services', 'shutdown',
    'skipx', 'snapshot', 'sshkey', 'sshpw', 'syspurpose', 'text',
    'timesource', 'timezone', 'updates', 'url', 'user', 'vnc', 'volgroup',
    'xconfig', 'zerombr', 'zfcp', 'zipl', 'ostreecontainer'))
SECTIONS = frozenset(('%pre', '%pre-install', '%post', '%packages',
                      '%addon', '%anaconda', '%onerror', '%traceback'))


class AnacondaProfile(base.Profile):
    """anaconda reads the kickstart named by ``inst.ks=``.

    The kickstart goes to ``/ks.cfg`` on the ISO and the install entries get
    ``inst.ks=cdrom:/ks.cfg inst.text``.
    """

    name = 'anaconda'
    description = _('anaconda (Fedora, RHEL, CentOS Stream, Rocky, '
                    'AlmaLinux) with a kickstart')
    answer_kind = 'kickstart'
    template = 'anaconda.ks'
    answer_path = 'ks.cfg'
    rules = (
        base.Rule(all_of=('.treeinfo',),
                  any_of=('images/install.img', 'isolinux/vmlinuz',
                          'images/pxeboot/vmlinuz')),
        base.Rule(label=r'^(fedora|rhel|centos|rocky|alma)',
                  all_of=('.treeinfo',)),
    )
    kernel_args = ('inst.ks=cdrom:/ks.cfg', 'inst.text')
    boot_entry = r'^linux$|^install'
    isolinux_configs = ('isolinux/isolinux.cfg',)
    grub_configs = ('EFI/BOOT/grub.cfg', 'boot/grub2/grub.cfg')
    efi_image_configs = (('images/efiboot.img', 'EFI/BOOT/grub.cfg'),)

    def context(self, values):
        fields = dict(values)
        if values['mirror']:
            fields['source'] = 'url --url=%s%s' % (
                values['mirror'],
                ' --proxy=%s' % values['proxy'] if values['proxy'] else '')
        else:
            fields['source'] = '# installation source: the ISO itself'
        if values['password_hash']:
            fields['root'] = 'rootpw --iscrypted %s' % values['password_hash']
        else:
            fields['root'] = 'rootpw --lock'
        fields['sshkey'] = ('sshkey --username=root "%s"' % values['ssh_key']
                            if values['ssh_key'] else '')
        fields['drives'] = (' --drives=%s' % values['disk'].replace(
            '/dev/', '') if values['disk'] else '')
        fields['autopart'] = ('lvm' if values['disk_layout'] == 'lvm'
                              else 'plain')
        fields['locale'] = values['locale'].replace('UTF-8', 'utf8')
        fields['pre'] = ('\n%%pre\n%s\n%%end\n' % values['early_command']
                         if values['early_command'] else '')
        fields['post'] = values['late_command']
        fields['packages'] = '\n'.join(values['packages'])
        return fields

    def validate(self, text):
        section = None
        for n, line in enumerate(text.splitlines(), 1):
            word = (line.split() or [''])[0]
            if word == '%end':
                if section is None:
                    raise self.invalid(_('line %d: %%end outside a '
                                         'section') % n)
                section = None
            elif word.startswith('%'):
                if section is not None:
                    raise self.invalid(_('line %(n)d: %(w)s inside %(s)s '
                                         '(missing %%end)') % {
                        'n': n, 'w': word, 's': section})
                if word not in SECTIONS:
                    raise self.invalid(_('line %(n)d: unknown section '
                                         '%(w)s') % {'n': n, 'w': word})
                section = word
            elif section is None and word and not word.startswith('#'):
                if word not in COMMANDS:
                    raise self.invalid(_('line %(n)d: unknown command '
                                         '%(w)r') % {'n': n, 'w': word})
        if section is not None:
            raise self.invalid(_('%s is not closed by %%end') % section)

    def image_properties(self, files, values=None):
        props = super().image_properties(files, values)
        if files.exists('.treeinfo'):
            tree = configparser.ConfigParser(interpolation=None)
            try:
                tree.read_string(files.read('.treeinfo').decode(
                    'utf-8', 'replace'))
            except configparser.Error:
                return props
            sect = 'release' if tree.has_section('release') else 'general'
            name = tree.get(sect, 'name', fallback='') or tree.get(
                sect, 'family', fallback='')
            version = tree.get(sect, 'version', fallback=None)
            distro = _distro(name)
            if distro:
                props['os_distro'] = distro
            if version:
                props['os_version'] = version
        return props


def _distro(name):
    low = name.lower()
    for key, distro in (('fedora', 'fedora'), ('centos', 'centos'),
                        ('red hat', 'rhel'), ('rocky', 'rocky'),
                        ('alma', 'almalinux')):
        if re.search(key, low):
            return distro
    return None
