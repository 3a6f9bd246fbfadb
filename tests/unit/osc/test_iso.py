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

"""openstack iso ...: argument mapping and output of the commands."""

import io
from unittest import mock

from openstack import connection
from openstack.image.v2 import image as _image
from osc_lib import exceptions as osc_exc
import pytest

from isoplugin import catalog
from isoplugin import conf as iso_conf
from isoplugin import exception
from isoplugin.osc import plugin
from isoplugin.osc.v1 import iso as iso_cmd
from isoplugin import registration

IMAGE = {'id': 'i1', 'name': 'ubuntu', 'status': 'active',
         'disk_format': 'iso', 'visibility': 'private', 'protected': False,
         'os_hidden': True, 'owner': 'p1', 'stores': 'fast',
         'isoplugin_media': 'installer-iso', 'isoplugin_featured': 'true',
         'os_distro': 'ubuntu', 'os_version': '24.04', 'tags': ['a', 'b'],
         'size': 2048}


def _image_obj(**kw):
    body = dict(IMAGE, **kw)
    return _image.Image.existing(**body)


@pytest.fixture
def cat():
    conf = iso_conf.load_config(config_files=[])
    real = catalog.Catalog(mock.Mock(spec=connection.Connection), conf)
    fake = mock.Mock(spec=catalog.Catalog)
    fake.describe.side_effect = real.describe
    with mock.patch.object(catalog, 'Catalog', return_value=fake):
        yield fake


@pytest.fixture
def reg(cat):
    fake = mock.Mock(spec=registration.Registration)
    with mock.patch.object(registration, 'Registration',
                           return_value=fake):
        yield fake


def _registered(reg):
    """The RegistrationRequest and the callbacks given to register()."""
    registration.Registration.assert_called_once_with(
        catalog.Catalog.return_value)
    (request,), kwargs = reg.register.call_args
    assert isinstance(request, registration.RegistrationRequest)
    return request, kwargs


def _run(cls, argv, stdout=None):
    app = mock.Mock(spec=['client_manager', 'stdout'])
    conn = mock.Mock(spec=connection.Connection)
    # what keystoneauth's Adapter has before isoplugin's retry settings
    conn.image.connect_retries = conn.image.status_code_retries = 0
    conn.image.retriable_status_codes = None
    app.client_manager.iso = plugin.IsoClient(conn)
    app.client_manager.iso._conf = iso_conf.load_config(config_files=[])
    app.stdout = stdout if stdout is not None else io.StringIO()
    cmd = cls(app, None)
    args = cmd.get_parser('openstack iso').parse_args(argv)
    return cmd.take_action(args)


def test_create_maps_arguments(cat, reg):
    reg.register.return_value = _image_obj()
    columns, values = _run(iso_cmd.CreateIso, [
        'ubuntu', '--file', '/tmp/u.iso', '--description', 'd',
        '--os-type', 'linux', '--visibility', 'shared', '--protected',
        '--tag', 'a', '--tag', 'b', '--min-disk', '10', '--min-ram', '2048',
        '--featured', '--no-extractable', '--password-enabled',
        '--checksum', 'sha256:' + '0' * 64, '--store', 'cheap',
        '--no-progress', '--unhidden'])
    request, kwargs = _registered(reg)
    assert request.name == 'ubuntu'
    assert request.filename == '/tmp/u.iso' and request.url is None
    assert request.description == 'd'
    assert request.os_type == 'linux'
    assert request.visibility == 'shared'
    assert request.protected is True
    assert request.tags == ['a', 'b']
    assert (request.min_disk, request.min_ram) == (10, 2048)
    assert request.featured is True
    assert request.extractable is False
    assert request.password_enabled is True
    assert request.hidden is False
    assert kwargs['progress'] is None
    assert kwargs['notify'] is iso_cmd._say
    assert request.store == 'cheap'
    assert request.checksum == 'sha256:' + '0' * 64
    shown = dict(zip(columns, values))
    assert shown['name'] == 'ubuntu'
    assert shown['tags'] == 'a, b'
    assert shown['featured'] is True


def test_create_defaults(cat, reg):
    reg.register.return_value = _image_obj()
    _run(iso_cmd.CreateIso, ['u', '--url', 'http://x/u.iso', '--progress'])
    request, kwargs = _registered(reg)
    assert request.url == 'http://x/u.iso' and request.filename is None
    assert request.visibility == 'private'
    assert request.protected is False
    assert request.extractable is True
    assert request.featured is False
    assert request.password_enabled is False
    assert request.hidden is None
    assert request.use_import is None
    assert isinstance(kwargs['progress'], iso_cmd._ProgressBar)


def test_create_needs_a_source(cat, reg):
    with pytest.raises(SystemExit):
        _run(iso_cmd.CreateIso, ['u'])


def test_library_error_becomes_command_error(cat, reg):
    reg.register.side_effect = exception.NotAnISO(source='/x.iso',
                                                  reason='the file is empty')
    with pytest.raises(osc_exc.CommandError) as e:
        _run(iso_cmd.CreateIso, ['u', '--file', '/x.iso'])
    assert str(e.value) == ('/x.iso is not an ISO 9660 or UDF image: the '
                            'file is empty.')


def test_list_long(cat):
    cat.list.return_value = [_image_obj()]
    headers, rows = _run(iso_cmd.ListIso, ['--long', '--all-projects',
                                           '--limit', '5'])
    assert cat.list.call_args.kwargs['all_projects'] is True
    assert cat.list.call_args.kwargs['limit'] == 5
    row = dict(zip(headers, rows[0]))
    assert row['Size'] == 2048
    assert row['Stores'] == 'fast'
    assert row['OS Distro'] == 'ubuntu'
    assert row['Featured'] is True
    assert row['Owner'] == 'p1'
    assert 'Created At' in headers


def test_list_short(cat):
    cat.list.return_value = [_image_obj()]
    headers, rows = _run(iso_cmd.ListIso, [])
    assert headers == ('Id', 'Name', 'Status', 'OS Distro', 'OS Version',
                       'Architecture')


def test_show_lists_servers_and_projects(cat):
    info = cat.describe(_image_obj(visibility='shared'))
    info['servers'] = [{'id': 's1', 'name': 'web1'},
                       {'id': 's2', 'name': 'web2'}]
    info['projects'] = [{'member_id': 'p2', 'status': 'accepted'}]
    cat.show.return_value = info
    columns, values = _run(iso_cmd.ShowIso, ['ubuntu'])
    cat.show.assert_called_once_with('ubuntu')
    shown = dict(zip(columns, values))
    assert shown['servers'] == 'web1 (s1), web2 (s2)'
    assert shown['projects'] == 'p2 (accepted)'
    assert shown['tags'] == 'a, b'
    assert columns[:2] == ('id', 'name')
    assert columns[-2:] == ('projects', 'servers')


def test_set_retire(cat):
    cat.update.return_value = _image_obj()
    stdout = io.StringIO()
    # like OSC's own set commands, it prints nothing
    assert _run(iso_cmd.SetIso, ['ubuntu', '--retire', '--name', 'n',
                                 '--no-featured', '--remove-tag', 'x'],
                stdout=stdout) is None
    assert stdout.getvalue() == ''
    assert not issubclass(iso_cmd.SetIso, iso_cmd.command.ShowOne)
    kwargs = cat.update.call_args.kwargs
    assert kwargs['retire'] is True and kwargs['restore'] is False
    assert kwargs['name'] == 'n'
    assert kwargs['featured'] is False
    assert kwargs['extractable'] is None
    assert kwargs['remove_tags'] == ['x']
    assert kwargs['visibility'] is None


def test_set_retire_and_restore_exclusive(cat):
    with pytest.raises(SystemExit):
        _run(iso_cmd.SetIso, ['ubuntu', '--retire', '--restore'])


def test_create_checksum_url(cat, reg):
    reg.register.return_value = _image_obj()
    _run(iso_cmd.CreateIso, ['u', '--url', 'http://x/u.iso',
                             '--checksum-url', 'http://x/SHA256SUMS'])
    request, _kwargs = _registered(reg)
    assert request.checksum_url == 'http://x/SHA256SUMS'
    assert request.checksum is None
    with pytest.raises(SystemExit):
        _run(iso_cmd.CreateIso, ['u', '--url', 'http://x/u.iso',
                                 '--checksum-url', 'http://x/SHA256SUMS',
                                 '--checksum', 'md5:' + '0' * 32])


def _upload(alive):
    return catalog.IncompleteUpload(
        id='i1', name='ubuntu', status='saving', client='h:1', alive=alive,
        age=5400, created_at='2026-11-29T18:00:00Z')


def test_list_incomplete(cat):
    cat.incomplete.return_value = [_upload(False), _upload(None)]
    headers, rows = _run(iso_cmd.ListIso, ['--incomplete'])
    assert headers == ('Id', 'Name', 'Status', 'Client', 'Alive', 'Age',
                       'Created At')
    assert rows == [('i1', 'ubuntu', 'saving', 'h:1', 'no', '1h30m',
                     '2026-11-29T18:00:00Z'),
                    ('i1', 'ubuntu', 'saving', 'h:1', 'unknown', '1h30m',
                     '2026-11-29T18:00:00Z')]
    cat.list.assert_not_called()


def test_delete_incomplete_older_than(cat):
    cat.delete_incomplete.return_value = [_upload(False)]
    stdout = io.StringIO()
    _run(iso_cmd.DeleteIso, ['--incomplete', '--older-than', '2h'],
         stdout=stdout)
    cat.delete_incomplete.assert_called_once_with(older_than=7200)
    assert stdout.getvalue() == 'deleted i1 (ubuntu, saving)\n'
    cat.delete.assert_not_called()


def test_delete_needs_an_iso_or_incomplete(cat):
    for argv in ([], ['ubuntu', '--incomplete']):
        with pytest.raises(osc_exc.CommandError) as e:
            _run(iso_cmd.DeleteIso, argv)
        assert 'give an ISO or --incomplete' in str(e.value)
    with pytest.raises(SystemExit):
        _run(iso_cmd.DeleteIso, ['--incomplete', '--older-than', '2x'])


def test_delete_yes(cat):
    cat.get.return_value = _image_obj()
    _run(iso_cmd.DeleteIso, ['ubuntu', '--yes', '--store', 'fast'])
    cat.delete.assert_called_once_with('i1', stores=['fast'])


def test_delete_asks_on_a_terminal(cat, monkeypatch):
    cat.get.return_value = _image_obj()
    tty = io.StringIO('wrong\n')
    tty.isatty = lambda: True
    monkeypatch.setattr('sys.stdin', tty)
    with pytest.raises(osc_exc.CommandError) as e:
        _run(iso_cmd.DeleteIso, ['ubuntu'])
    assert 'Not confirmed' in str(e.value)
    cat.delete.assert_not_called()
    tty = io.StringIO('ubuntu\n')
    tty.isatty = lambda: True
    monkeypatch.setattr('sys.stdin', tty)
    _run(iso_cmd.DeleteIso, ['ubuntu'])
    cat.delete.assert_called_once_with('i1', stores=None)


def test_copy(cat):
    cat.copy.return_value = _image_obj(stores='fast,cheap')
    columns, values = _run(iso_cmd.CopyIso, ['ubuntu', '--store', 'cheap'])
    assert cat.copy.call_args.kwargs['stores'] == ['cheap']
    assert cat.copy.call_args.kwargs['wait'] is True
    assert dict(zip(columns, values))['stores'] == 'fast,cheap'


def test_usage(cat):
    cat.usage.return_value = {
        'image_count_total': {'usage': 3, 'limit': 10},
        'image_size_total': {'usage': 100, 'limit': -1}}
    headers, rows = _run(iso_cmd.ShowIsoUsage, [])
    assert rows == [('image_count_total', 3, 10, ''),
                    ('image_size_total', 100, 'unlimited', 'MiB')]


def test_add_and_remove_project(cat):
    cat.add_project.return_value = {'image_id': 'i1', 'member_id': 'p2',
                                    'status': 'accepted'}
    columns, values = _run(iso_cmd.AddProjectToIso,
                           ['ubuntu', 'p2', '--accept'])
    cat.add_project.assert_called_once_with('ubuntu', 'p2', accept=True)
    assert dict(zip(columns, values))['status'] == 'accepted'
    _run(iso_cmd.RemoveProjectFromIso, ['ubuntu', 'p2'])
    cat.remove_project.assert_called_once_with('ubuntu', 'p2')
