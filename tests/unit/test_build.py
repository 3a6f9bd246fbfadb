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

"""The build pipeline (isoplugin.build) with the unit-test backend."""

import os
import socket
import time
from unittest import mock

from openstack.compute.v2 import _proxy as compute_proxy
from openstack.compute.v2 import server as _server
from openstack import connection
from openstack.image.v2 import _proxy as image_proxy
from openstack.image.v2 import image as _image
from openstack.test import fakes
from oslo_config import cfg
import pytest

from isoplugin import backends
from isoplugin.backends import base
from isoplugin import build as build_mod
from isoplugin import conf as iso_conf
from isoplugin import exception
from tests.unit import fake_backend


@pytest.fixture
def conf():
    c = cfg.ConfigOpts()
    iso_conf.register_opts(c)
    c(args=[], default_config_files=[])
    c.set_override('backend', 'unit-fake', group='isoplugin')
    return c


@pytest.fixture
def backend(conf):
    with fake_backend.registered_backends():
        yield backends.get_backend(conf)


@pytest.fixture
def sleeps():
    with mock.patch.object(build_mod, '_sleep', return_value=False) as m:
        yield m


def _iso():
    iso = fakes.generate_fake_resource(
        _image.Image, os_distro='debian', os_version='12',
        architecture='x86_64', min_ram=0, min_disk=0)
    iso.properties = {'os_type': 'linux', 'os_distro': 'debian',
                      'os_version': '12', 'isoplugin_media': 'installer-iso'}
    iso.hash_algo = 'sha512'
    iso.hash_value = 'abc'
    return iso


class FakeJson(object):
    def __init__(self, body):
        self.body = body
        self.ok = True
        self.status_code = 200

    def json(self):
        return self.body


@pytest.fixture
def conn():
    c = mock.Mock(spec=connection.Connection)
    c.compute = mock.Mock(spec=compute_proxy.Proxy)
    c.image = mock.Mock(spec=image_proxy.Proxy)
    c.compute.servers.return_value = []
    c.image.images.return_value = []
    out = fakes.generate_fake_resource(_image.Image, status='active')
    c.image.get_image.return_value = out
    c.current = {'id': out.id, 'visibility': 'private', 'tags': []}
    c.listed = {}  # role -> image dicts that GET /images answers

    def get(url, params=None, **kwargs):
        if url == '/images':
            role = (params or {}).get('isoplugin_role')
            return FakeJson({'images': c.listed.get(role, [])})
        return FakeJson(c.current)

    c.image.get.side_effect = get
    c.image.patch.return_value = mock.Mock(status_code=204, ok=True,
                                           headers={})
    return c


def _build(conn, conf, backend, **request):
    request.setdefault('iso', 'debian-12')
    request.setdefault('name', 'debian-12-image')
    events = []
    b = build_mod.Build(conn, conf, build_mod.BuildRequest(**request),
                        backend=backend, progress=events.append)
    b.iso = _iso()
    return b, events


def test_run_goes_through_the_phases_in_order(conn, conf, backend, sleeps):
    b, events = _build(conn, conf, backend, verify=False)

    image = b.run()

    assert image is conn.image.get_image.return_value
    assert backend.calls == ['check_cloud', 'prepare', 'boot',
                             'start_install', 'install_state',
                             'install_state', 'install_state', 'detach',
                             'snapshot']
    starts = [e['phase'] for e in events if e['event'] == 'phase-start']
    assert starts == ['prepare', 'boot', 'install', 'detach', 'snapshot',
                      'verify', 'cleanup']
    assert events[-1]['event'] == 'done'
    assert all(e['build_id'] == b.id for e in events)


def test_phase_is_recorded_on_the_server(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend, verify=False)

    b.run()

    records = [(c.args[0], {op['path']: op['value']
                            for op in c.kwargs['json']})
               for c in conn.image.patch.call_args_list
               if c.args[0] == '/images/blank-' + b.id]
    phases = [ops.get('/isoplugin_phase') for _url, ops in records]
    assert phases[:5] == ['boot', 'install', 'detach', 'snapshot',
                          'snapshot']
    assert 'verify' in phases and phases[-1] == 'cleanup'
    assert all(op['op'] == 'add' for c in conn.image.patch.call_args_list
               if c.args[0] == '/images/blank-' + b.id
               for op in c.kwargs['json'])
    assert all(ops['/isoplugin_client'] == build_mod.CLIENT
               for _url, ops in records)
    conn.compute.set_server_metadata.assert_not_called()


def test_output_image_properties(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend, verify=False, tags=['a'],
                        visibility='shared')
    current = {'id': 'x', 'hw_rescue_device': 'cdrom', 'instance_uuid': 'u',
               'isoplugin_role': 'output-pending', 'visibility': 'private',
               'tags': []}
    conn.current = current

    b.run()

    patches = [c.kwargs['json'] for c in conn.image.patch.call_args_list
               if not c.args[0].startswith('/images/blank-')]
    first = {op['path']: op for op in patches[0]}
    assert first['/os_distro']['value'] == 'debian'
    assert first['/os_version']['value'] == '12'
    assert first['/min_disk']['value'] == 3
    assert first['/isoplugin_source_iso_id']['value'] == b.iso.id
    assert first['/isoplugin_source_iso_hash']['value'] == 'sha512:abc'
    assert first['/isoplugin_backend']['value'] == 'unit-fake'
    assert first['/isoplugin_build_id']['value'] == b.id
    assert first['/hw_rescue_device']['op'] == 'remove'
    assert first['/instance_uuid']['op'] == 'remove'
    assert '/isoplugin_role' not in first  # still temporary until verified
    last = {op['path']: op for op in patches[-1]}
    assert last['/isoplugin_role']['op'] == 'remove'
    assert last['/visibility']['value'] == 'shared'
    assert last['/tags']['value'] == ['a']


def test_failure_names_phase_and_cleans_up(conn, conf, backend, sleeps):
    b, events = _build(conn, conf, backend)
    server = fakes.generate_fake_resource(
        _server.Server, fault=None,
        metadata={'isoplugin_build_id': b.id,
                  'isoplugin_role': 'build-server'})
    conn.compute.servers.return_value = [server]
    conn.compute.find_server.return_value = None

    with mock.patch.object(backend, 'detach', side_effect=exception.
                           CloudError(reason='No valid host was found')):
        with pytest.raises(exception.BuildFailed) as e:
            b.run()

    assert e.value.kwargs['phase'] == 'detach'
    assert 'No valid host was found' in str(e.value)
    conn.compute.delete_server.assert_called_once_with(
        server.id, ignore_missing=True)
    assert [ev['event'] for ev in events][-1] == 'failed'


def test_keyboard_interrupt_cleans_up(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend)
    blank = {'id': 'blank-x', 'isoplugin_build_id': b.id,
             'isoplugin_role': 'blank-disk', 'status': 'active'}
    other = {'id': 'other', 'isoplugin_build_id': 'b-someone-else',
             'isoplugin_role': 'blank-disk', 'status': 'active'}
    conn.listed = {'blank-disk': [blank, other]}

    with mock.patch.object(backend, 'install_state',
                           side_effect=KeyboardInterrupt):
        with pytest.raises(exception.BuildInterrupted) as e:
            b.run()

    assert e.value.kwargs['phase'] == 'install'
    # only its own image, even if Glance answered with more
    conn.image.delete_image.assert_called_once_with('blank-x',
                                                    ignore_missing=True)


def test_keep_on_error_keeps_resources(conn, conf, backend, sleeps):
    b, events = _build(conn, conf, backend, keep_on_error=True)

    with mock.patch.object(backend, 'snapshot', side_effect=exception.
                           CloudError(reason='boom')):
        with pytest.raises(exception.BuildFailed):
            b.run()

    conn.compute.delete_server.assert_not_called()
    conn.image.delete_image.assert_not_called()
    ops = {op['path']: op['value']
           for op in conn.image.patch.call_args.kwargs['json']}
    assert ops['/isoplugin_phase'] == 'failed'
    assert 'kept' in [e['event'] for e in events]


def test_install_failure_carries_the_fault(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend)

    with mock.patch.object(backend, 'install_state', return_value=(
            base.InstallState.FAILED, 'ISO says no')):
        with pytest.raises(exception.BuildFailed) as e:
            b.run()

    assert e.value.kwargs['phase'] == 'install'
    assert 'ISO says no' in str(e.value)


def test_install_timeout(conn, conf, backend):
    b, _events = _build(conn, conf, backend, install_timeout=30)
    clock = [0.0]

    def fake_sleep(event, seconds):
        clock[0] += seconds
        return False

    with mock.patch.object(build_mod, '_sleep', side_effect=fake_sleep), \
            mock.patch.object(time, 'monotonic', lambda: clock[0]), \
            mock.patch.object(backend, 'install_state', return_value=(
                base.InstallState.RUNNING, 'RESCUE/1')):
        with pytest.raises(exception.BuildTimeout) as e:
            b.run()

    assert e.value.kwargs['phase'] == 'install'
    assert 'RESCUE/1' in str(e.value)


def test_wait_backs_off_exponentially(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend)
    b._deadline = None
    answers = iter([(False, 'x')] * 7 + [(True, 'y')])

    b.wait(lambda: next(answers), 'thing', 3600)

    assert [c.args[1] for c in sleeps.call_args_list] == [
        1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_wait_stops_when_cancelled(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend)
    b.cancelled.set()

    with pytest.raises(exception.BuildInterrupted):
        b.wait(lambda: (False, 'x'), 'thing', 3600)


def test_record_fields_carry_the_request(conn, conf, backend):
    b, _events = _build(conn, conf, backend, tags=['x', 'y'])
    b.state.update(flavor_id='f1', disk_gb=4)

    fields = b.record_fields('build-server')

    assert fields['isoplugin_build_id'] == b.id
    assert fields['isoplugin_role'] == 'build-server'
    assert fields['isoplugin_iso_id'] == b.iso.id
    assert fields['isoplugin_tags'] == 'x,y'
    assert fields['isoplugin_flavor_id'] == 'f1'
    assert fields['isoplugin_client'] == build_mod.CLIENT
    assert all(isinstance(v, str) for v in fields.values())


def test_record_fields_refuse_long_values(conn, conf, backend):
    b, _events = _build(conn, conf, backend, name='x' * 300)

    with pytest.raises(exception.InvalidInput):
        b.record_fields('build-server')


def _server_of(build_id, client, heartbeat, phase='install'):
    return fakes.generate_fake_resource(
        _server.Server, status='ACTIVE', fault=None,
        metadata={'isoplugin_build_id': build_id,
                  'isoplugin_role': 'build-server',
                  'isoplugin_phase': phase, 'isoplugin_client': client,
                  'isoplugin_heartbeat': str(int(heartbeat))})


def test_list_builds_tells_running_from_orphaned(conn, conf):
    host = socket.gethostname()
    now = time.time()
    conn.compute.servers.return_value = [
        _server_of('b-live', '%s:%d' % (host, os.getpid()), now),
        _server_of('b-dead', '%s:%d' % (host, 2 ** 22 + 7), now),
        _server_of('b-away', 'elsewhere:1', now - 3600),
        _server_of('b-fresh', 'elsewhere:1', now),
        _server_of('b-other', 'x:1', now).__class__(
            id='s', name='n', status='ACTIVE', metadata={}),
    ]

    builds = {b.id: b for b in build_mod.list_builds(conn, conf)}

    assert sorted(builds) == ['b-away', 'b-dead', 'b-fresh', 'b-live']
    assert builds['b-live'].status == 'running'
    assert builds['b-dead'].status == 'orphaned'
    assert builds['b-away'].status == 'orphaned'
    assert builds['b-fresh'].status == 'running'
    assert builds['b-live'].phase == 'install'


def test_delete_orphans_skips_running_builds(conn, conf, sleeps):
    host = socket.gethostname()
    live = _server_of('b-live', '%s:%d' % (host, os.getpid()), time.time())
    dead = _server_of('b-dead', '%s:%d' % (host, 2 ** 22 + 7), time.time())
    conn.compute.servers.return_value = [live, dead]
    conn.compute.find_server.return_value = None

    deleted = build_mod.delete_orphans(conn, conf)

    assert deleted == ['b-dead']
    conn.compute.delete_server.assert_called_once_with(dead.id,
                                                       ignore_missing=True)


def test_delete_build_unknown_id(conn, conf):
    with pytest.raises(exception.BuildNotFound):
        build_mod.delete_build(conn, conf, 'b-nothing')


def test_finish_build_sets_the_flag(conn, conf):
    blank = {'id': 'blank-1', 'isoplugin_build_id': 'b-1',
             'isoplugin_role': 'blank-disk', 'status': 'active'}
    conn.listed = {'blank-disk': [blank]}
    conn.current = {'id': 'blank-1'}

    build_mod.finish_build(conn, conf, 'b-1')

    ops = conn.image.patch.call_args.kwargs['json']
    assert conn.image.patch.call_args.args[0] == '/images/blank-1'
    assert ops == [{'op': 'add', 'path': '/isoplugin_finish',
                    'value': 'requested'}]


def test_resume_refuses_a_live_build(conn, conf):
    host = socket.gethostname()
    conn.compute.servers.return_value = [
        _server_of('b-1', '%s:%d' % (host, os.getpid()), time.time())]

    with pytest.raises(exception.BuildNotResumable):
        build_mod.resume_build(conn, conf, 'b-1')


def test_resume_continues_from_the_recorded_phase(conn, conf, backend,
                                                  sleeps):
    host = socket.gethostname()
    server = _server_of('b-1', '%s:%d' % (host, 2 ** 22 + 7), time.time(),
                        phase='detach')
    server.metadata.update({'isoplugin_image_name': 'img',
                            'isoplugin_iso_id': 'iso-1',
                            'isoplugin_verify': 'false',
                            'isoplugin_flavor_id': 'f1',
                            'isoplugin_disk_gb': '2'})
    conn.compute.servers.return_value = [server]
    conn.compute.find_server.return_value = None
    iso = _iso()
    iso.status = 'active'
    conn.image.get_image.return_value = iso

    build_mod.resume_build(conn, conf, 'b-1', backend=backend)

    assert backend.calls == ['detach', 'snapshot']


def test_resolve_iso_refuses_retired(conf):
    iso = _iso()
    iso.properties['isoplugin_retired'] = 'true'
    with mock.patch('isoplugin.catalog.Catalog') as catalog:
        catalog.return_value.get.return_value = iso
        with pytest.raises(exception.ISORetired):
            build_mod.resolve_iso(mock.sentinel.conn, conf, 'old')


def test_build_images_bounded_pool(conn, conf, backend, sleeps):
    running = []
    peak = []

    def fake_run(self, start_phase='prepare'):
        running.append(self.id)
        peak.append(len(running))
        time.sleep(0.01)
        running.remove(self.id)
        if self.request.iso == 'bad':
            raise exception.BuildFailed(build_id=self.id, phase='boot',
                                        reason='x')
        return self.request.name

    def requests():
        for i in range(7):
            yield build_mod.BuildRequest(iso='bad' if i == 3 else 'i%d' % i,
                                         name='n%d' % i)

    with mock.patch.object(build_mod.Build, 'run', fake_run):
        results = list(build_mod.build_images(conn, conf, requests(),
                                              parallel=2, backend=backend))

    assert len(results) == 7
    assert max(peak) <= 2
    failures = [r for _req, r in results if isinstance(r, Exception)]
    assert len(failures) == 1
