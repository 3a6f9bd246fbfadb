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

"""The OpenStackClient plugin hooks and ``openstack iso backend list``."""

import argparse
import os
import subprocess
import sys
import types
from unittest import mock

from openstack import connection
from osc_lib import clientmanager
from osc_lib import exceptions as osc_exc
import pytest

from isoplugin.osc import plugin
from isoplugin.osc.v1 import backend as backend_cmd
from tests.unit import fake_backend

BIN = os.path.dirname(sys.executable)


def test_plugin_protocol():
    assert plugin.API_NAME == 'iso'
    assert plugin.API_VERSION_OPTION == 'os_iso_api_version'
    assert plugin.DEFAULT_API_VERSION in plugin.API_VERSIONS


def test_build_option_parser(monkeypatch):
    monkeypatch.setenv('ISOPLUGIN_CONFIG_FILE', '/etc/x.conf')
    parser = plugin.build_option_parser(argparse.ArgumentParser())

    args = parser.parse_args([])
    assert args.isoplugin_config_file == '/etc/x.conf'
    args = parser.parse_args(['--isoplugin-config-file', '/tmp/a.conf',
                              '--os-iso-api-version', '1'])
    assert args.isoplugin_config_file == '/tmp/a.conf'
    assert args.os_iso_api_version == '1'


def _instance(config=None):
    instance = mock.Mock(spec=clientmanager.ClientManager)
    instance.sdk_connection = mock.Mock(spec=connection.Connection)
    # the retry attributes of a keystoneauth Adapter, as OSC makes them
    instance.sdk_connection.image = types.SimpleNamespace(
        connect_retries=None, status_code_retries=None,
        connect_retry_delay=None, status_code_retry_delay=None,
        retriable_status_codes=None)
    instance.get_configuration.return_value = config or {}
    return instance


def test_make_client_uses_sdk_connection(monkeypatch):
    monkeypatch.delenv('ISOPLUGIN_CONFIG_FILE', raising=False)
    instance = _instance()

    client = plugin.make_client(instance)

    assert client.conn is instance.sdk_connection
    assert client.config_file is None


def test_client_connection_retries_glance(tmp_path, monkeypatch):
    monkeypatch.delenv('ISOPLUGIN_CONFIG_FILE', raising=False)
    path = tmp_path / 'isoplugin.conf'
    path.write_text('[glance]\nconnect_retries = 4\n'
                    'status_code_retries = 3\n')
    instance = _instance({'isoplugin_config_file': str(path)})

    image = plugin.make_client(instance).conn.image

    assert image is instance.sdk_connection.image
    assert (image.connect_retries, image.status_code_retries) == (4, 3)
    assert 503 in image.retriable_status_codes


def test_make_client_reads_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv('ISOPLUGIN_CONFIG_FILE', raising=False)
    path = tmp_path / 'isoplugin.conf'
    path.write_text('[isoplugin]\nbackend = unit-fake\n')

    client = plugin.make_client(
        _instance({'isoplugin_config_file': str(path)}))

    assert client.conf.isoplugin.backend == 'unit-fake'


def test_make_client_missing_config_file(tmp_path):
    missing = str(tmp_path / 'missing.conf')

    with pytest.raises(osc_exc.CommandError) as e:
        plugin.make_client(_instance({'isoplugin_config_file': missing}))

    assert missing in str(e.value)
    assert '--isoplugin-config-file' in str(e.value)


def test_backend_list(tmp_path):
    path = tmp_path / 'isoplugin.conf'
    path.write_text('[isoplugin]\nbackend = unit-fake\n')
    app = mock.Mock(spec=['client_manager'])
    app.client_manager.iso = plugin.IsoClient(
        mock.Mock(spec=connection.Connection), config_file=str(path))
    cmd = backend_cmd.ListBackend(app, None)

    with fake_backend.registered_backends():
        columns, rows = cmd.take_action(cmd.get_parser('x').parse_args([]))

    rows = {row[0]: row for row in rows}
    assert columns == ('Name', 'Default', 'Capabilities', 'Description')
    assert rows['unit-fake'][1] is True
    assert rows['unit-fake'][2] == 'unattended_install, disk_size'
    assert rows['unit-fake'][3] == ('In-memory backend that records what '
                                    'the pipeline asked of it.')
    assert 'unit-broken' not in rows


def test_openstack_iso_help_lists_commands():
    result = subprocess.run([os.path.join(BIN, 'openstack'), 'iso', '--help'],
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    for words in ('iso create', 'iso list', 'iso show', 'iso set',
                  'iso delete', 'iso copy', 'iso usage', 'iso add project',
                  'iso remove project', 'iso build create',
                  'iso build list', 'iso build show', 'iso build delete',
                  'iso build resume', 'iso build finish',
                  'iso backend list'):
        assert words in result.stdout
    assert 'Could not load' not in result.stderr


def test_command_modules_import_lightly():
    """``openstack --help`` imports every command module: keep them light."""
    code = '\n'.join([
        'import sys',
        'from importlib import metadata',
        'before = set(sys.modules)',
        'for ep in metadata.entry_points(group="openstack.iso.v1"):',
        '    __import__(ep.module)',
        'import isoplugin.osc.plugin',
        'heavy = ("openstack.connection", "isoplugin.catalog",',
        '         "isoplugin.build", "isoplugin.isoinfo", "pycdlib",',
        '         "isoplugin.backends.nova_rescue", "glanceclient")',
        'print(sorted(m for m in set(sys.modules) - before',
        '             if m.startswith(heavy)))',
    ])
    # osc_lib and cliff are already loaded by OSC when it imports plugins
    code = 'import osc_lib.command.command\n' + code
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout

    assert out.strip() == '[]'
