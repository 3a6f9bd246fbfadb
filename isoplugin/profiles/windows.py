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

"""Windows Setup: Autounattend.xml at the root of the media."""

import os
import secrets
from xml.etree import ElementTree
from xml.sax import saxutils

from isoplugin import exception
from isoplugin.i18n import _
from isoplugin.profiles import base

UNATTEND_NS = '{urn:schemas-microsoft-com:unattend}'
_DRIVES = 'D E F G H I J K'
_TIMEZONES = {'Etc/UTC': 'UTC', 'UTC': 'UTC', 'Etc/GMT': 'UTC'}


def _read_template(name):
    with open(os.path.join(base.TEMPLATE_DIR, name), encoding='utf-8') as f:
        return f.read().rstrip('\n')


def _on_cd(path, command):
    """A cmd line running ``command`` on the file ``path`` of any drive.

    ``%F`` in ``command`` becomes the file's path on the drive that has it.
    """
    path = path.strip('/\\').replace('/', '\\')
    return ('cmd /c for %%d in (%s) do if exist %%d:\\%s %s' % (
        _DRIVES, path, command.replace('%F', '%d:\\' + path)))


class WindowsProfile(base.Profile):
    """Windows Setup reads ``Autounattend.xml`` from the media's root.

    No boot menu changes: Windows media have none. The copy of UDF media
    (all stock media) is written with pycdlib, see
    :mod:`isoplugin.remaster`. cloudbase-init is not
    redistributable here: give the path of its MSI on the media
    (``cloudbase_init``, added with the files of your choice); virtio-win
    drivers are loaded from a ``$WinPEDriver$`` folder.
    """

    name = 'windows'
    description = _('Windows Setup with Autounattend.xml')
    answer_kind = 'autounattend'
    template = 'windows.xml'
    answer_path = 'Autounattend.xml'
    rules = (
        base.Rule(all_of=('sources/boot.wim',),
                  any_of=('sources/install.wim', 'sources/install.esd',
                          'sources/install.swm')),
        base.Rule(label=r'^(cccoma|ccsa|sss|ssss|cpba|cena|j_?ccsa|'
                  r'[a-z]*_x64fre)_|^win(dows)?[ _-]?(1[01]|server|20\d\d)'),
    )
    variables = (
        base.Variable('locale', 'en-US', 'Windows language tag.'),
        base.Variable('keyboard', 'en-US', 'Input locale.'),
        base.Variable('timezone', 'UTC', 'Windows time zone name '
                      '(Etc/UTC is mapped to UTC).'),
        base.Variable('firmware', 'bios', 'bios (MBR disk) or uefi (GPT '
                      'disk with EFI and MSR partitions).'),
        base.Variable('image_index', '1', 'Index of the image in '
                      'install.wim (editions: see dism /get-wiminfo).'),
        base.Variable('product_key', '', 'Product key (none for '
                      'evaluation media).', secret=True),
        base.Variable('admin_password', '', 'Administrator password for '
                      'the one automatic logon (default: random, never '
                      'shared).', secret=True),
        base.Variable('cloudbase_init', '', 'Path of the cloudbase-init '
                      'MSI on the media; then sysprep generalizes and '
                      'powers off.'),
        base.Variable('virtio_guest_tools', '', 'Path of '
                      'virtio-win-guest-tools.exe on the media (drivers '
                      'and qemu-guest-agent).'),
        base.Variable('early_command', '', 'Command run in Windows PE '
                      'before partitioning.'),
        base.Variable('late_command', '', 'Command run at the first '
                      'logon, before the final power off.'),
    )
    isolinux_configs = ()
    grub_configs = ()
    os_type = 'windows'
    os_distro = 'windows'
    properties_extra = {'os_admin_user': 'Administrator'}

    def context(self, values):
        uefi = values['firmware'].lower() == 'uefi'
        if values['firmware'].lower() not in ('bios', 'uefi'):
            raise exception.TemplateVariableError(
                profile=self.name, reason=_('firmware must be bios or uefi'))
        cmds = ['bcdedit /ems {current} on',
                'bcdedit /emssettings EMSPORT:1 EMSBAUDRATE:115200']
        if values['virtio_guest_tools']:
            cmds.append(_on_cd(values['virtio_guest_tools'],
                               '%F /install /quiet /norestart'))
        if values['late_command']:
            cmds.append(values['late_command'])
        if values['cloudbase_init']:
            cmds.append(_on_cd(values['cloudbase_init'],
                               'msiexec /i %F /qn /l*v C:\\cbinit.log '
                               'LOGGINGSERIALPORTNAME=COM1'))
            cmds.append('C:\\Windows\\System32\\Sysprep\\sysprep.exe '
                        '/generalize /oobe /shutdown /unattend:"C:\\Program '
                        'Files\\Cloudbase Solutions\\Cloudbase-Init\\conf\\'
                        'Unattend.xml"')
        else:
            cmds.append('shutdown /s /t 0')
        first = '\n'.join(
            '        <SynchronousCommand wcm:action="add"><Order>%d</Order>'
            '<CommandLine>%s</CommandLine></SynchronousCommand>' % (
                n, saxutils.escape(c)) for n, c in enumerate(cmds, 1))
        run = ''
        if values['early_command']:
            run = ('      <RunSynchronous><RunSynchronousCommand '
                   'wcm:action="add"><Order>1</Order><Path>%s</Path>'
                   '</RunSynchronousCommand></RunSynchronous>' %
                   saxutils.escape(values['early_command']))
        key = values['product_key']
        return {
            'ui_language': saxutils.escape(values['locale']),
            'keyboard': saxutils.escape(values['keyboard']),
            'windows_timezone': saxutils.escape(_TIMEZONES.get(
                values['timezone'], values['timezone'])),
            'disk_configuration': _read_template(
                'windows-disk-uefi.xml' if uefi else 'windows-disk-bios.xml'),
            'install_partition': '3' if uefi else '1',
            'image_index': saxutils.escape(values['image_index']),
            'product_key_xml': (
                '        <ProductKey><Key>%s</Key><WillShowUI>OnError'
                '</WillShowUI></ProductKey>' % saxutils.escape(key)
                if key else ''),
            'admin_password': saxutils.escape(
                values['admin_password'] or
                self.generated(secrets.token_urlsafe(18))),
            'first_logon_commands': first,
            'run_synchronous': run,
        }

    def validate(self, text):
        try:
            root = ElementTree.fromstring(text.encode('utf-8'))
        except ElementTree.ParseError as e:
            raise self.invalid(_('XML does not parse: %s') % e) from e
        if root.tag != UNATTEND_NS + 'unattend':
            raise self.invalid(_('the root element is %s, not <unattend '
                                 'xmlns="urn:schemas-microsoft-com:'
                                 'unattend">') % root.tag)

    def image_properties(self, files, values=None):
        props = super().image_properties(files, values)
        props.pop('os_version', None)
        if values and values.get('virtio_guest_tools'):
            props['hw_qemu_guest_agent'] = 'yes'
        return props
