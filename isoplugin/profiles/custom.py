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

"""Your own answer file and kernel arguments, for any installer."""

from isoplugin import exception
from isoplugin.i18n import _
from isoplugin.profiles import base


class CustomProfile(base.Profile):
    """Puts the user's answer file where they say and adds their arguments.

    Never detected: choose it by name. It has no template; give the answer
    file itself. The boot menus found at the usual places are rewritten
    like the other families' (default entry, one second, arguments).
    """

    name = 'custom'
    description = _('Your own answer file and kernel arguments')
    answer_kind = 'custom'
    template = None
    variables = (
        base.Variable('answer_path', 'answer.cfg', 'Where the answer file '
                      'goes on the ISO (or in the initrd).'),
        base.Variable('in_initrd', False, 'Append the answer file to the '
                      "default entry's initrd instead (as d-i needs).",
                      kind='bool'),
        base.Variable('kernel_args', '', 'Arguments added to the default '
                      'boot entry.'),
        base.Variable('boot_entry', '', 'Regular expression for the label '
                      'or title of the entry to boot (default: the first '
                      'with a kernel).'),
        base.Variable('serial_console', True, 'Add console=ttyS0 to the '
                      'entry.', kind='bool'),
    )
    isolinux_configs = ('isolinux/isolinux.cfg', 'isolinux/txt.cfg',
                        'syslinux/syslinux.cfg',
                        'boot/x86_64/loader/isolinux.cfg')
    grub_configs = ('boot/grub/grub.cfg', 'boot/grub2/grub.cfg',
                    'EFI/BOOT/grub.cfg')
    properties_extra = {}

    def validate(self, text):
        if not text.strip():
            raise self.invalid(_('the answer file is empty'))

    def boot_args(self, ctx):
        values = ctx.values
        after = list(base.SERIAL_ARGS) if values['serial_console'] else []
        return (values['kernel_args'].split(),
                after + list(ctx.kernel_args))

    def entry_regex(self, ctx):
        return ctx.values['boot_entry'] or None

    def modify_iso(self, ctx, answer):
        values = ctx.values
        if not values['in_initrd']:
            ctx.put(values['answer_path'], answer, _('answer file'))
            return self.rewrite_boot_menus(ctx)
        initrds = self.rewrite_boot_menus(ctx)
        if not initrds:
            raise exception.PrepareFailed(
                source=ctx.files.name,
                reason=_('the default boot entry loads no initrd'))
        cpio = base.newc_cpio({values['answer_path']: answer.encode()})
        for path in initrds:
            local = ctx.copy_out(path)
            with open(local, 'ab') as f:
                f.write(cpio)
            ctx.put_file(path, local, _('initrd with /%s appended') %
                         values['answer_path'].lstrip('/'))
        return initrds
