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

"""``openstack iso backend list``: the installed build backends."""

from osc_lib.command import command

from isoplugin.osc import utils


class ListBackend(command.Lister):
    """List the installed isoplugin build backends and what they support."""

    def take_action(self, parsed_args):
        with utils.command_errors():
            from isoplugin import backends
            from isoplugin.backends import base

            client = self.app.client_manager.iso
            default = client.conf.isoplugin.backend
            rows = []
            for name, cls in backends.backend_classes():
                caps = [c.name.lower() for c in base.Capabilities
                        if c and cls.CAPABILITIES & c]
                rows.append((name, name == default, ', '.join(caps),
                             (cls.__doc__ or '').strip().splitlines()[0]
                             if cls.__doc__ else ''))
        return (('Name', 'Default', 'Capabilities', 'Description'), rows)
