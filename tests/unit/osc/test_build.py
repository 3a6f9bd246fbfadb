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

"""``openstack iso build ...``: argument mapping and formatting."""

import io
from unittest import mock

from openstack import connection
from openstack.image.v2 import image as _image
from openstack.test import fakes
from osc_lib import exceptions as osc_exc
import pytest

from isoplugin import build as build_mod
from isoplugin import exception
from isoplugin.osc import plugin
from isoplugin.osc.v1 import build as build_cmd


@pytest.fixture
def app():
    a = mock.Mock(spec=['client_manager', 'stdout', 'options'])
    client = mock.Mock(spec=plugin.IsoClient)
    client.conn = mock.Mock(spec=connection.Connection)
    client.conf = mock.sentinel.conf
    a.client_manager.iso = client
    a.stdout = io.StringIO()
    return a


def _run(cls, app, argv):
    cmd = cls(app, None)
    parsed = cmd.get_parser('openstack iso build').parse_args(argv)
    return cmd.take_action(parsed)


def test_create_maps_arguments_to_the_request(app):
    image = fakes.generate_fake_resource(_image.Image, name='img')
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.return_value = image
        columns, values = _run(build_cmd.CreateBuild, app, [
            'debian-12', '--name', 'img', '--flavor', 'm1.small',
            '--disk-size', '4', '--no-verify', '--timeout', '600',
            '--public', '--tag', 'a', '--tag', 'b', '--keep-on-error'])

    request = build.call_args.args[2]
    assert request.iso == 'debian-12'
    assert request.name == 'img'
    assert request.flavor == 'm1.small'
    assert request.disk_size == 4
    assert request.verify is False
    assert request.timeout == 600
    assert request.visibility == 'public'
    assert request.tags == ['a', 'b']
    assert request.keep_on_error is True
    assert 'id' in columns and image.id in values


def test_create_defaults_come_from_configuration(app):
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.return_value = fakes.generate_fake_resource(
            _image.Image)
        _run(build_cmd.CreateBuild, app, ['iso', '--name', 'img'])

    request = build.call_args.args[2]
    assert request.verify is None
    assert request.keep_on_error is None
    assert request.visibility == 'private'


def test_create_failure_is_a_command_error(app):
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.side_effect = exception.BuildFailed(
            build_id='b-1', phase='install', reason='fault text')
        with pytest.raises(osc_exc.CommandError) as e:
            _run(build_cmd.CreateBuild, app, ['iso', '--name', 'img'])

    assert 'install' in str(e.value) and 'fault text' in str(e.value)


def test_list_formats_builds(app):
    info = build_mod.BuildInfo(id='b-1', phase='install', status='orphaned',
                               record={'iso_id': 'i', 'image_name': 'n',
                                       'client': 'h:1'},
                               resources=[mock.Mock()], age=12.5)
    with mock.patch.object(build_mod, 'list_builds', return_value=[info]):
        columns, rows = _run(build_cmd.ListBuild, app, [])

    assert rows == [('b-1', 'orphaned', 'install', 'i', 'n', 'h:1', 12, 1)]


def test_delete_needs_ids_or_orphans(app):
    with pytest.raises(osc_exc.CommandError):
        _run(build_cmd.DeleteBuild, app, [])


def test_delete_orphans_older_than(app):
    with mock.patch.object(build_mod, 'delete_orphans',
                           return_value=['b-1']) as delete:
        _run(build_cmd.DeleteBuild, app, ['--orphans', '--older-than',
                                          '60'])

    delete.assert_called_once_with(app.client_manager.iso.conn,
                                   mock.sentinel.conf, 60)
    assert 'deleted b-1' in app.stdout.getvalue()


def test_finish_calls_the_library(app):
    with mock.patch.object(build_mod, 'finish_build') as finish:
        _run(build_cmd.FinishBuild, app, ['b-1'])

    finish.assert_called_once_with(app.client_manager.iso.conn,
                                   mock.sentinel.conf, 'b-1')


def test_progress_prints_phase_lines():
    stream = io.StringIO()
    progress = build_cmd._Progress(stream)

    progress({'build_id': 'b-1', 'phase': 'install',
              'event': 'phase-start'})
    progress({'build_id': 'b-1', 'phase': 'install', 'event': 'waiting',
              'what': 'x', 'status': 'RESCUE', 'elapsed': 3})
    progress({'build_id': 'b-1', 'phase': 'install', 'event': 'waited',
              'elapsed': 9})

    lines = stream.getvalue().splitlines()
    assert lines == ['b-1 install  phase-start ...',
                     'b-1 install  waited done (9s)']
