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
import json
from unittest import mock

from openstack.image.v2 import image as _image
from openstack.test import fakes
from osc_lib import exceptions as osc_exc
import pytest

from isoplugin import background
from isoplugin import build as build_mod
from isoplugin import exception
from isoplugin.osc.v1 import build as build_cmd
from isoplugin import records
from tests.unit.osc.fakes import run


def test_create_maps_arguments_to_the_request(app):
    image = fakes.generate_fake_resource(_image.Image, name='img')
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.return_value = image
        columns, values = run(build_cmd.CreateBuild, app, [
            'debian-12', '--name', 'img', '--flavor', 'm1.small',
            '--disk-size', '4', '--no-verify', '--timeout', '600',
            '--install-timeout', '300', '--install-estimate', '42.5',
            '--public', '--tag', 'a', '--tag', 'b', '--keep-on-error'])

    request = build.call_args.args[2]
    assert request.iso == 'debian-12'
    assert request.name == 'img'
    assert request.flavor == 'm1.small'
    assert request.disk_size == 4
    assert request.verify is False
    assert request.timeout == 600
    assert request.install_timeout == 300
    assert request.install_estimate == 42.5
    assert request.visibility == 'public'
    assert request.tags == ['a', 'b']
    assert request.keep_on_error is True
    assert 'id' in columns and image.id in values


def test_create_defaults_come_from_configuration(app):
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.return_value = fakes.generate_fake_resource(
            _image.Image)
        run(build_cmd.CreateBuild, app, ['iso', '--name', 'img'])

    request = build.call_args.args[2]
    assert request.verify is None
    assert request.install_estimate is None
    assert request.keep_on_error is None
    assert request.visibility == 'private'


def test_create_failure_is_a_command_error(app):
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.side_effect = exception.BuildFailed(
            build_id='b-1', phase='install', reason='fault text')
        with pytest.raises(osc_exc.CommandError) as e:
            run(build_cmd.CreateBuild, app, ['iso', '--name', 'img'])

    assert 'install' in str(e.value) and 'fault text' in str(e.value)


def test_no_wait_hands_the_build_to_the_background(app):
    with mock.patch.object(build_mod, 'Build') as build, \
            mock.patch.object(background, 'run_in_background',
                              return_value=(4242, '/x.log')) as bg:
        build.return_value.id = 'b-1'
        columns, values = run(build_cmd.CreateBuild, app,
                              ['iso', '--name', 'img', '--no-wait'])

    assert (columns, values) == (('build_id', 'worker_pid'), ('b-1', 4242))
    assert bg.call_args.args == (build.return_value,)
    assert bg.call_args.kwargs == {'progress': build_cmd._Progress}
    build.return_value.run.assert_not_called()


def _several(app, argv, results):
    cmd = build_cmd.CreateBuild(app, None)
    parsed = cmd.get_parser('openstack iso build').parse_args(argv)
    with mock.patch.object(build_mod, 'build_images',
                           return_value=iter(results)):
        columns, data = cmd.take_action(parsed)
    return cmd, parsed, columns, data


def test_several_isos_give_one_row_per_iso(app):
    images = [fakes.generate_fake_resource(_image.Image) for _i in (1, 2)]
    requests = [mock.Mock(iso='a'), mock.Mock(iso='b')]

    cmd, parsed, columns, data = _several(
        app, ['a', 'b', '--name', 'img'], zip(requests, images))

    assert columns == ('iso', 'image')
    assert list(data) == [('a', images[0].id), ('b', images[1].id)]


def test_several_isos_print_as_a_list(app):
    images = [fakes.generate_fake_resource(_image.Image) for _i in (1, 2)]
    requests = [mock.Mock(iso='a'), mock.Mock(iso='b')]
    cmd = build_cmd.CreateBuild(app, None)
    parsed = cmd.get_parser('openstack iso build').parse_args(
        ['a', 'b', '--name', 'img', '-f', 'json'])

    with mock.patch.object(build_mod, 'build_images',
                           return_value=zip(requests, images)):
        assert cmd.run(parsed) == 0

    assert json.loads(app.stdout.getvalue()) == [
        {'iso': 'a', 'image': images[0].id},
        {'iso': 'b', 'image': images[1].id}]


def test_several_isos_refuse_a_single_record_format(app):
    cmd = build_cmd.CreateBuild(app, None)
    parsed = cmd.get_parser('openstack iso build').parse_args(
        ['a', 'b', '--name', 'img', '-f', 'shell'])

    with mock.patch.object(build_mod, 'build_images') as build_images:
        with pytest.raises(osc_exc.CommandError) as e:
            cmd.run(parsed)

    assert '-f shell shows one build' in str(e.value)
    build_images.assert_not_called()


def test_one_iso_prints_one_image(app):
    image = fakes.generate_fake_resource(_image.Image, name='img')
    cmd = build_cmd.CreateBuild(app, None)
    parsed = cmd.get_parser('openstack iso build').parse_args(
        ['a', '--name', 'img', '-f', 'json'])

    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.return_value = image
        assert cmd.run(parsed) == 0

    shown = json.loads(app.stdout.getvalue())
    assert shown['id'] == image.id and shown['name'] == 'img'


def test_several_isos_one_fails(app, capsys):
    image = fakes.generate_fake_resource(_image.Image)
    results = [(mock.Mock(iso='a'), image),
               (mock.Mock(iso='b'), exception.BuildFailed(
                   build_id='b-2', phase='boot', reason='no host'))]

    with pytest.raises(osc_exc.CommandError) as e:
        _several(app, ['a', 'b', '--name', 'img'], results)

    assert '1 of 2 builds failed' in str(e.value)
    assert 'b: Build b-2 failed in phase boot' in capsys.readouterr().err


def test_list_formats_builds(app):
    info = records.BuildInfo(id='b-1', phase='install', status='orphaned',
                             record={'iso_id': 'i', 'image_name': 'n',
                                     'client': 'h:1'},
                             resources=[mock.Mock()], age=12.5)
    with mock.patch.object(records, 'list_builds', return_value=[info]):
        columns, rows = run(build_cmd.ListBuild, app, [])

    assert rows == [('b-1', 'orphaned', 'install', 'i', 'n', 'h:1', 12, 1)]


def test_delete_needs_ids_or_orphans(app):
    with pytest.raises(osc_exc.CommandError):
        run(build_cmd.DeleteBuild, app, [])


def test_delete_orphans_older_than(app):
    with mock.patch.object(records, 'delete_orphans',
                           return_value=['b-1']) as delete, \
            mock.patch.object(records, 'delete_prepared',
                              return_value=['img-1']) as prepared:
        run(build_cmd.DeleteBuild, app, ['--orphans', '--older-than',
                                         '60'])

    delete.assert_called_once_with(app.client_manager.iso.conn,
                                   mock.sentinel.conf, 60)
    # --orphans deletes the expired prepared ISOs only
    prepared.assert_called_once_with(app.client_manager.iso.conn,
                                     mock.sentinel.conf, expired_only=True)
    assert 'deleted b-1\ndeleted prepared ISO img-1\n' == \
        app.stdout.getvalue()


def test_delete_prepared_deletes_every_prepared_iso(app):
    with mock.patch.object(records, 'delete_orphans') as orphans, \
            mock.patch.object(records, 'delete_prepared',
                              return_value=['img-1']) as prepared:
        run(build_cmd.DeleteBuild, app, ['--prepared'])

    orphans.assert_not_called()
    prepared.assert_called_once_with(app.client_manager.iso.conn,
                                     mock.sentinel.conf, expired_only=False)
    assert 'deleted prepared ISO img-1\n' == app.stdout.getvalue()


def test_finish_calls_the_library(app):
    with mock.patch.object(records, 'finish_build') as finish:
        run(build_cmd.FinishBuild, app, ['b-1'])

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
