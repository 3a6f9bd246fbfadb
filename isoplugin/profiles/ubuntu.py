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

"""Ubuntu's subiquity: an autoinstall file at the ISO root."""

import json

import yaml

from isoplugin.i18n import _
from isoplugin.profiles import base

_SERIAL = ' '.join(base.SERIAL_ARGS)


class UbuntuProfile(base.Profile):
    """subiquity reads ``/autoinstall.yaml`` or NoCloud user-data.

    The file goes at the ISO root (subiquity 23.04+) and, as ``#cloud-config``
    user-data, in ``/nocloud`` (20.04 to 22.10, with ``ds=nocloud`` on the
    kernel command line). ``autoinstall`` on the command line skips the
    "Continue with autoinstall?" question.
    """

    name = 'ubuntu'
    description = _("Ubuntu's subiquity installer with an autoinstall file")
    answer_kind = 'autoinstall'
    template = 'ubuntu.yaml'
    answer_path = 'autoinstall.yaml'
    rules = (
        base.Rule(all_of=('casper', '.disk/info')),
        base.Rule(label=r'^ubuntu', all_of=('casper',)),
    )
    kernel_args = ('autoinstall', 'ds=nocloud;s=/cdrom/nocloud/')
    boot_entry = r'install|ubuntu'
    isolinux_configs = ('isolinux/isolinux.cfg', 'isolinux/txt.cfg')
    grub_configs = ('boot/grub/grub.cfg',)
    os_distro = 'ubuntu'
    cloud_packages = ('cloud-init', 'cloud-guest-utils',
                      'cloud-initramfs-growroot', 'qemu-guest-agent')

    def context(self, values):
        # 'default' keeps the distribution's cloud user, which gets the
        # cloud's key at first boot.
        user_data = {'ssh_pwauth': False, 'disable_root': True}
        if values['ssh_key']:
            user_data.update(disable_root=False, users=['default', {
                'name': 'root', 'lock_passwd': True,
                'ssh_authorized_keys': [values['ssh_key']]}])
        elif values['password_hash']:
            user_data.update(disable_root=False, users=['default', {
                'name': 'root', 'lock_passwd': False,
                'hashed_passwd': values['password_hash']}])
        apt = {'fallback': 'offline-install'}
        if values['mirror']:
            apt['primary'] = [{'arches': ['default'],
                               'uri': values['mirror']}]
        late = ["curtin in-target -- sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*"
                "/GRUB_CMDLINE_LINUX_DEFAULT=\"%s\"/' /etc/default/grub"
                % _SERIAL, 'curtin in-target -- update-grub']
        if values['late_command']:
            late.append(values['late_command'])
        storage = {'name': 'lvm' if values['disk_layout'] == 'lvm'
                   else 'direct'}
        if values['disk']:
            storage['match'] = {'path': values['disk']}
        fields = {
            'locale': values['locale'].split('.')[0],
            'keyboard': values['keyboard'], 'timezone': values['timezone'],
            'proxy': values['proxy'] or None, 'apt': apt,
            'storage': storage,
            'ssh_keys': [values['ssh_key']] if values['ssh_key'] else [],
            'packages': list(self.cloud_packages) + values['packages'],
            'user_data': user_data,
            'early_commands': ([values['early_command']]
                               if values['early_command'] else []),
            'late_commands': late}
        # JSON is YAML: every value is quoted correctly whatever it holds.
        return {k: json.dumps(v) for k, v in fields.items()}

    def validate(self, text):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            # problem and position only: PyYAML's text quotes the line,
            # which may hold a secret
            mark = getattr(e, 'problem_mark', None)
            where = (_(' at line %(line)d, column %(col)d') % {
                'line': mark.line + 1, 'col': mark.column + 1}
                if mark is not None else '')
            raise self.invalid(_('YAML does not parse: %(problem)s%(where)s')
                               % {'problem': getattr(e, 'problem', None)
                                  or type(e).__name__,
                                  'where': where}) from None
        if isinstance(data, dict) and 'autoinstall' in data:
            data = data['autoinstall']
        if not isinstance(data, dict) or data.get('version') != 1:
            raise self.invalid(_('expected a mapping with "version: 1" '
                                 '(under "autoinstall:")'))

    def modify_iso(self, ctx, answer):
        data = yaml.safe_load(answer)
        if 'autoinstall' not in data:
            data = {'autoinstall': data}
        ctx.put(self.answer_path, answer, _('autoinstall file'))
        user_data = '#cloud-config\n' + yaml.safe_dump(
            data, default_flow_style=False)
        ctx.put('nocloud/user-data', user_data,
                _('NoCloud user-data (the same autoinstall)'))
        ctx.put('nocloud/meta-data', 'instance-id: isoplugin-install\n',
                _('NoCloud meta-data'))
        return self.rewrite_boot_menus(ctx)
