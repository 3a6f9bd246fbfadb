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

"""Debian's installer (d-i): a preseed appended to the initrd."""

import re
import urllib.parse

from isoplugin import exception
from isoplugin.i18n import _
from isoplugin.profiles import base

# install.* on Debian's CDs; debian-installer/ARCH in the netboot tree
_INSTALL_DIRS = ('install.amd', 'install.a64', 'install.386', 'install',
                 'debian-installer/amd64', 'debian-installer/arm64')
_TYPES = ('string', 'boolean', 'select', 'multiselect', 'note', 'text',
          'password', 'error', 'title')


class DebianProfile(base.Profile):
    """d-i reads ``/preseed.cfg`` from its initrd, and nowhere else.

    The profile appends a gzip'd newc cpio holding ``/preseed.cfg`` to
    every initrd the default boot entries load, and adds
    ``auto=true priority=critical`` to those entries.
    """

    name = 'debian'
    description = _("Debian's installer (d-i) with a preseed file")
    answer_kind = 'preseed'
    template = 'debian.preseed'
    answer_path = None  # inside the initrd, see modify_iso
    initrd_answer = 'preseed.cfg'
    rules = (
        base.Rule(all_of=('.disk/info',),
                  any_of=tuple('%s/initrd.gz' % d for d in _INSTALL_DIRS),
                  none_of=('casper',)),
        base.Rule(label=r'^debian\b',
                  any_of=tuple('%s/initrd.gz' % d for d in _INSTALL_DIRS)),
    )
    kernel_args = ('auto=true', 'priority=critical')
    boot_entry = r'^install$'
    isolinux_configs = ('isolinux/isolinux.cfg', 'isolinux/menu.cfg',
                        'isolinux/gtk.cfg', 'isolinux/txt.cfg')
    grub_configs = ('boot/grub/grub.cfg',)
    os_distro = 'debian'
    default_mirror = 'http://deb.debian.org/debian'
    cloud_packages = ('openssh-server', 'cloud-init', 'cloud-guest-utils',
                      'cloud-initramfs-growroot', 'qemu-guest-agent')

    def context(self, values):
        for name in values:
            if isinstance(values[name], str) and '\n' in values[name]:
                raise self._bad_value(name)
        url = urllib.parse.urlsplit(values['mirror'] or self.default_mirror)
        late = []
        if values['ssh_key']:
            late.append(
                "in-target sh -c 'mkdir -p -m 700 /root/.ssh && echo %s "
                ">> /root/.ssh/authorized_keys && chmod 600 "
                "/root/.ssh/authorized_keys'" % values['ssh_key'])
        if values['late_command']:
            late.append(values['late_command'])
        return dict(
            values,
            mirror_protocol=url.scheme or 'http',
            mirror_host=url.netloc, mirror_dir=url.path or '/',
            root_password_crypted=(values['password_hash'] or '!'),
            disk_line=('d-i partman-auto/disk string %s' % values['disk']
                       if values['disk'] else '# partman-auto/disk: the '
                       'only disk'),
            partman_method='lvm' if values['disk_layout'] == 'lvm'
            else 'regular',
            # lvm: d-i's own "atomic" recipe (it has a swap volume)
            partman_recipe='atomic' if values['disk_layout'] == 'lvm'
            else 'isoplugin',
            packages=' '.join(list(self.cloud_packages) +
                              values['packages']),
            late_command_full='; '.join(late) or 'true')

    def _bad_value(self, name):
        return exception.TemplateVariableError(
            profile=self.name,
            reason=_('%s must be one line in a preseed') % name)

    def validate(self, text):
        lines, pending = [], ''
        for raw in text.splitlines():
            if raw.rstrip().endswith('\\'):
                pending += raw.rstrip()[:-1] + ' '
                continue
            lines.append(pending + raw)
            pending = ''
        if pending:
            raise self.invalid(_('the file ends with a continuation line'))
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            parts = line.split(None, 3)
            if len(parts) < 3 or parts[2] not in _TYPES:
                # name the question, never echo a value (it may be secret)
                raise self.invalid(
                    _('line %(n)d (%(what)s) is not "owner question type '
                      'value"') % {'n': n, 'what': ' '.join(parts[:2])})
            value = parts[3].strip() if len(parts) > 3 else ''
            if parts[2] == 'boolean' and value not in ('true', 'false'):
                raise self.invalid(_('line %(n)d: a boolean must be true '
                                     'or false') % {'n': n})
            if not re.match(r'^[a-z0-9][a-z0-9.+-]*$', parts[0]):
                raise self.invalid(_('line %(n)d: bad owner %(o)r') % {
                    'n': n, 'o': parts[0]})

    def modify_iso(self, ctx, answer):
        initrds = self.rewrite_boot_menus(ctx)
        if not initrds:
            raise exception.PrepareFailed(
                source=ctx.files.name,
                reason=_('the default boot entry loads no initrd'))
        cpio = base.newc_cpio({self.initrd_answer: answer.encode('utf-8')})
        for path in initrds:
            local = ctx.copy_out(path)
            with open(local, 'ab') as f:
                f.write(cpio)
            ctx.put_file(path, local, _('initrd with /%s appended') %
                         self.initrd_answer)
        return initrds
