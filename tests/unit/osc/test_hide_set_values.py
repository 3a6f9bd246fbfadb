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

"""--set values never reach osc-lib's --debug START line."""

import argparse
import logging

from isoplugin.osc import plugin


def test_start_line_hides_every_set_value(caplog):
    plugin.build_option_parser(argparse.ArgumentParser())
    log = logging.getLogger('osc_lib.shell')
    argv = ('--debug iso prepare deb --set password_hash=$6$SECRET '
            '--set=ssh_key=ssh-ed25519 AAAA me@host --profile debian')
    with caplog.at_level(logging.INFO, logger='osc_lib.shell'):
        log.info('START with options: %s', argv)

    assert caplog.messages == [
        'START with options: --debug iso prepare deb --set '
        'password_hash=*** --set=ssh_key=*** --profile debian']


def test_parsed_arguments_hide_set_values():
    from isoplugin.osc.v1 import build as build_cmd

    cmd = build_cmd.CreateBuild(None, None)
    parsed = cmd.get_parser('create').parse_args([
        'deb', '--name', 'x', '--set', 'password_hash=$6$SECRET',
        '--set', 'hostname=web'])

    assert '$6$SECRET' not in repr(parsed)
    assert "values=['password_hash=***', 'hostname=***']" in repr(parsed)
    assert build_cmd.parse_values(parsed.values) == {
        'password_hash': '$6$SECRET', 'hostname': 'web'}
    # the default is not shared between two parses
    again = cmd.get_parser('create').parse_args(['deb', '--name', 'x'])
    assert again.values == []
