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

"""openSUSE Leap and SLES: an AutoYaST profile."""

from xml.etree import ElementTree
from xml.sax import saxutils

from isoplugin.i18n import _
from isoplugin.profiles import base

YAST_NS = '{http://www.suse.com/1.0/yast2ns}'
_KEYMAPS = {'us': 'english-us', 'gb': 'english-uk', 'uk': 'english-uk',
            'de': 'german', 'fr': 'french', 'es': 'spanish',
            'it': 'italian', 'jp': 'japanese'}


def _script(name, source, chrooted=False):
    return ('      <script><filename>%s</filename>%s<source>%s</source>'
            '</script>' % (name, '<chrooted config:type="boolean">true'
                           '</chrooted>' if chrooted else '',
                           saxutils.escape(source)))


class SuseProfile(base.Profile):
    """linuxrc reads the AutoYaST profile named by ``autoyast=``.

    The profile goes to ``/autoinst.xml`` on the ISO and the install entries
    get ``autoyast=cd:/autoinst.xml``.
    """

    name = 'suse'
    description = _('openSUSE Leap and SLES with an AutoYaST profile')
    answer_kind = 'autoyast'
    template = 'suse.xml'
    answer_path = 'autoinst.xml'
    rules = (
        base.Rule(any_of=('content', 'media.1/products', 'media.1/media'),
                  all_of=('boot',),
                  none_of=('.treeinfo',)),
        base.Rule(label=r'^(opensuse|sle)', any_of=('media.1', 'boot')),
    )
    kernel_args = ('autoyast=cd:/autoinst.xml',)
    boot_entry = r'^linux$|^install'
    isolinux_configs = ('boot/x86_64/loader/isolinux.cfg',)
    grub_configs = ('EFI/BOOT/grub.cfg', 'boot/grub2/grub.cfg')
    efi_image_configs = (('boot/x86_64/efi', 'EFI/BOOT/grub.cfg'),)
    os_distro = 'opensuse'
    cloud_packages = ('openssh', 'cloud-init', 'growpart',
                      'qemu-guest-agent')
    disk_layouts = ('plain',)

    def context(self, values):
        esc = {k: (saxutils.escape(v) if isinstance(v, str) else v)
               for k, v in values.items()}
        fields = dict(esc)
        fields['language'] = esc['locale'].split('.')[0]
        fields['keymap'] = _KEYMAPS.get(values['keyboard'], esc['keyboard'])
        fields['root_password'] = esc['password_hash'] or '!'
        fields['authorized_keys_xml'] = (
            '      <authorized_keys config:type="list"><listentry>%s'
            '</listentry></authorized_keys>' % esc['ssh_key']
            if values['ssh_key'] else '')
        fields['drive_xml'] = ('      <device>%s</device>' % esc['disk']
                               if values['disk'] else '')
        fields['packages_xml'] = '\n'.join(
            '      <package>%s</package>' % saxutils.escape(p)
            for p in list(self.cloud_packages) + values['packages'])
        fields['proxy_xml'] = (
            '  <proxy><enabled config:type="boolean">true</enabled>'
            '<http_proxy>%s</http_proxy><https_proxy>%s</https_proxy>'
            '</proxy>' % (esc['proxy'], esc['proxy'])
            if values['proxy'] else '')
        fields['addon_xml'] = (
            '  <add-on><add_on_products config:type="list"><listentry>'
            '<media_url>%s</media_url></listentry></add_on_products>'
            '</add-on>' % esc['mirror'] if values['mirror'] else '')
        fields['pre_xml'] = (_script('early.sh', values['early_command'])
                             if values['early_command'] else '')
        fields['post_xml'] = (_script('late.sh', values['late_command'],
                                      chrooted=True)
                              if values['late_command'] else '')
        return fields

    def validate(self, text):
        try:
            root = ElementTree.fromstring(text.encode('utf-8'))
        except ElementTree.ParseError as e:
            raise self.invalid(_('XML does not parse: %s') % e) from e
        if root.tag != YAST_NS + 'profile':
            raise self.invalid(_('the root element is %(tag)s, not '
                                 '<profile xmlns="%(ns)s">') % {
                'tag': root.tag, 'ns': YAST_NS.strip('{}')})
