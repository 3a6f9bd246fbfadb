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

"""``openstack iso profile list|show`` and ``openstack iso prepare``.

Thin commands over :mod:`isoplugin.profiles` and
:mod:`isoplugin.prepared`; the library is imported in ``take_action``.
"""

import sys

from osc_lib.command import command

from isoplugin.osc import utils
from isoplugin.osc.v1 import build as build_cmd


class ListProfile(command.Lister):
    """List the installed install profiles."""

    def take_action(self, parsed_args):
        from isoplugin import profiles

        with utils.command_errors():
            found = profiles.get_profiles()
        return (('Name', 'Answer file', 'Description'),
                [(p.name, p.answer_kind, str(p.description))
                 for p in found])


def _format_variable(v):
    text = '%s=%s' % (v['name'], '***' if v['secret'] and v['default']
                      else v['default'])
    flags = [f for f in ('secret', 'required') if v[f]]
    if flags:
        text += ' (%s)' % ', '.join(flags)
    return text


class ShowProfile(command.ShowOne):
    """Show an install profile: variables, defaults, detection rules."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('profile', metavar='<profile>',
                            help='Profile name')
        return parser

    def take_action(self, parsed_args):
        from isoplugin import profiles

        with utils.command_errors():
            info = profiles.get_profile(parsed_args.profile).describe()
        data = dict(info)
        if parsed_args.formatter in ('table', 'value', 'shell'):
            data['detection'] = '\n'.join(info['detection'])
            data['kernel_args'] = ' '.join(info['kernel_args'])
            data['variables'] = '\n'.join(
                _format_variable(v) for v in info['variables'])
        columns = ('name', 'description', 'answer_kind', 'answer_path',
                   'kernel_args', 'detection', 'variables')
        return columns, tuple(data[c] for c in columns)


class PrepareIso(command.ShowOne):
    """Make (or find) the prepared copy of an ISO, without building.

    The copy has the answer file added and the boot menus rewritten; it is
    a private, hidden image that later builds with the same inputs reuse.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>',
                            help='ISO (name or ID) to prepare')
        return build_cmd.add_unattended_args(parser)

    def take_action(self, parsed_args):
        from osc_lib import exceptions

        from isoplugin import prepared

        a = parsed_args
        if a.profile == prepared.NO_PROFILE:
            raise exceptions.CommandError(
                '--profile none leaves the ISO as it is: nothing to '
                'prepare')
        values = build_cmd.parse_values(a.values)
        client = self.app.client_manager.iso

        def progress(event):
            sys.stderr.write('%s\n' % event.get('message'))

        with utils.command_errors():
            answer = (prepared.read_answer_file(a.answer_file)
                      if a.answer_file else None)
            result = prepared.prepare_iso(
                client.conn, client.conf, a.iso, profile=a.profile,
                values=values, answer=answer, kernel_args=a.kernel_args,
                add_files=a.add_files, progress=progress)
        source = result.source
        return (('id', 'name', 'profile', 'source_iso', 'cache_key',
                 'reused'),
                (result.image.id, result.image.name, result.profile,
                 '%s (%s)' % (source.name, source.id), result.cache_key,
                 'yes' if result.reused else 'no'))
