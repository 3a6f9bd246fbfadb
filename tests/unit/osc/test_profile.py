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

"""``openstack iso prepare``, ``iso profile list|show``, and the prepared-ISO
options of ``iso build create``: argument mapping and formatting."""

from unittest import mock

from openstack.image.v2 import image as _image
from openstack.test import fakes
from osc_lib import exceptions as osc_exc
import pytest

from isoplugin import build as build_mod
from isoplugin.osc.v1 import build as build_cmd
from isoplugin.osc.v1 import profile as profile_cmd
from isoplugin import prepared
from tests.unit.osc.fakes import run


def test_build_create_maps_the_prepared_iso_options(app, tmp_path):
    image = fakes.generate_fake_resource(_image.Image, name='img')
    with mock.patch.object(build_mod, 'Build') as build:
        build.return_value.run.return_value = image
        run(build_cmd.CreateBuild, app, [
            'debian-12', '--name', 'img', '--profile', 'debian',
            '--answer-file', 'a.cfg', '--set', 'hostname=web',
            '--set', 'ssh_key=ssh-ed25519 AAAA me@h=x',
            '--kernel-args', 'quiet splash',
            '--add-files', '/srv/drivers:/$WinPEDriver$'])

    request = build.call_args.args[2]
    assert request.profile == 'debian'
    assert request.answer_file == 'a.cfg'
    assert request.values == {'hostname': 'web',
                              'ssh_key': 'ssh-ed25519 AAAA me@h=x'}
    assert request.kernel_args == ['quiet', 'splash']
    assert request.add_files == ['/srv/drivers:/$WinPEDriver$']


def test_set_needs_key_equals_value(app):
    with pytest.raises(osc_exc.CommandError) as e:
        run(build_cmd.CreateBuild, app, ['debian-12', '--name', 'img',
                                         '--set', 'hostname'])
    assert '--set takes KEY=VALUE' in str(e.value)


def test_prepare_shows_the_prepared_iso(app):
    source = fakes.generate_fake_resource(_image.Image, name='deb')
    image = fakes.generate_fake_resource(_image.Image, name='prep')
    result = prepared.Prepared(image=image, profile='debian', source=source,
                               cache_key='k' * 64, reused=True)
    with mock.patch.object(prepared, 'prepare_iso',
                           return_value=result) as prepare:
        columns, values = run(profile_cmd.PrepareIso, app, [
            'deb', '--set', 'password_hash=$6$x', '--kernel-args', 'quiet'])

    prepare.assert_called_once_with(
        app.client_manager.iso.conn, mock.sentinel.conf, 'deb',
        profile=None, values={'password_hash': '$6$x'}, answer=None,
        kernel_args='quiet', add_files=[], progress=mock.ANY)
    shown = dict(zip(columns, values))
    assert shown == {'id': image.id, 'name': 'prep', 'profile': 'debian',
                     'source_iso': 'deb (%s)' % source.id,
                     'cache_key': 'k' * 64, 'reused': 'yes'}


def test_prepare_refuses_profile_none(app):
    with pytest.raises(osc_exc.CommandError):
        run(profile_cmd.PrepareIso, app, ['deb', '--profile', 'none'])


def test_prepare_reads_the_answer_file(app, tmp_path):
    answer = tmp_path / 'preseed.cfg'
    answer.write_text('d-i foo/bar string x\n')
    with mock.patch.object(prepared, 'prepare_iso') as prepare:
        run(profile_cmd.PrepareIso, app, ['deb', '--profile', 'debian',
                                          '--answer-file', str(answer)])
    assert prepare.call_args.kwargs['answer'] == 'd-i foo/bar string x\n'


def test_prepare_unreadable_answer_file_is_one_line(app, tmp_path):
    with pytest.raises(osc_exc.CommandError) as e:
        run(profile_cmd.PrepareIso, app, [
            'deb', '--answer-file', str(tmp_path / 'missing.cfg')])
    assert 'cannot read the answer file' in str(e.value)
    assert '\n' not in str(e.value)


def test_profile_list_and_show():
    cmd = profile_cmd.ListProfile(mock.Mock(), None)
    columns, rows = cmd.take_action(None)
    assert [r[0] for r in rows] == ['anaconda', 'custom', 'debian', 'suse',
                                    'ubuntu', 'windows']
    cmd = profile_cmd.ShowProfile(mock.Mock(), None)
    parsed = cmd.get_parser('show').parse_args(['debian'])
    parsed.formatter = 'table'
    columns, values = cmd.take_action(parsed)
    shown = dict(zip(columns, values))
    assert 'password_hash= (secret)' in shown['variables'].splitlines()
    assert 'auto=true priority=critical' == shown['kernel_args']


def test_unknown_profile_is_one_line():
    cmd = profile_cmd.ShowProfile(mock.Mock(), None)
    parsed = cmd.get_parser('show').parse_args(['slackware'])
    parsed.formatter = 'json'
    with pytest.raises(osc_exc.CommandError) as e:
        cmd.take_action(parsed)
    assert "No install profile named 'slackware'" in str(e.value)
