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

"""The build pipeline (isoplugin.build) through the test-only backend.

The backend (tests/unit/fake_backend.py) uses only the public contract;
Glance is faked at the access module (isoplugin.glance, autospecced), the
compute proxy with a spec.
"""

import concurrent.futures
import os
import signal
import socket
import threading
import time
from unittest import mock

from openstack.compute.v2 import _proxy as compute_proxy
from openstack.compute.v2 import server as _server
from openstack import connection
from openstack import exceptions as sdk_exc
from openstack.image.v2 import image as _image
from openstack.test import fakes
import pytest

from isoplugin import backends
from isoplugin.backends import base
from isoplugin import build as build_mod
from isoplugin import exception
from isoplugin import glance
from isoplugin import prepared
from isoplugin import records
from tests.unit import fake_backend


@pytest.fixture
def conf(conf):
    conf.set_override('backend', 'unit-fake', group='isoplugin')
    return conf


@pytest.fixture
def backend(conf):
    with fake_backend.registered_backends():
        yield backends.get_backend(conf)


@pytest.fixture
def sleeps():
    with mock.patch.object(build_mod, '_sleep', return_value=False) as m, \
            mock.patch.object(records, '_sleep', return_value=False):
        yield m


def _iso():
    iso = fakes.generate_fake_resource(
        _image.Image, os_distro='debian', os_version='12',
        architecture='x86_64', min_ram=0, min_disk=0, size=2 ** 30)
    iso.properties = {'os_type': 'linux', 'os_distro': 'debian',
                      'os_version': '12', 'isoplugin_media': 'installer-iso'}
    iso.hash_algo = 'sha512'
    iso.hash_value = 'abc'
    return iso


def _image_of(**fields):
    return _image.Image.existing(**fields)


class FakeGlance(object):
    """isoplugin.glance's functions, autospecced, over a dict of images."""

    def __init__(self):
        self.listed = {}  # role -> images that a role query answers
        # an installed system's snapshot: too big to be read for zeros
        self.output = fakes.generate_fake_resource(
            _image.Image, status='active', size=2 ** 30,
            disk_format='qcow2')
        self.data = {}  # image id -> bytes of a download
        self.created = []
        # a PATCH answers with the image (the output, for these tests)
        self.patch_image = mock.create_autospec(glance.patch_image,
                                                return_value=self.output)
        self.delete_image = mock.create_autospec(glance.delete_image)
        self.create_image = mock.create_autospec(
            glance.create_image, side_effect=self._create)
        self.get_image = mock.create_autospec(glance.get_image,
                                              return_value=self.output)
        self.images = mock.create_autospec(glance.images,
                                           side_effect=self._images)
        self.download_data = mock.create_autospec(
            glance.download_data,
            side_effect=lambda conn, image, **kw: iter([self.data[image.id]]))

    def _create(self, conn, forbidden=None, **body):
        image = _image_of(id='record-%d' % len(self.created),
                          status='queued', **body)
        self.created.append(body)
        return image

    def _images(self, conn, **filters):
        # the images of a role, or of a name, or every image (a query on a
        # build id): the callers must check what Glance answers
        role = filters.get('isoplugin_role')
        if role:
            return iter(self.listed.get(role, []))
        every = [i for images in self.listed.values() for i in images]
        if 'name' in filters:
            return iter([i for i in every if i.name == filters['name']])
        return iter(every)

    def patches(self, image_id):
        """The ``set`` dicts of the patches of one image, in order."""
        return [c.kwargs.get('set') or {}
                for c in self.patch_image.call_args_list
                if c.args[1] == image_id]


@pytest.fixture
def cloud():
    fake = FakeGlance()
    names = ('patch_image', 'delete_image', 'create_image', 'get_image',
             'images', 'download_data')
    patchers = [mock.patch.object(glance, n, getattr(fake, n))
                for n in names]
    # an ISO no profile recognises: built as it is (test_prepared.py and
    # the tests below that replace this cover the prepared copy)
    fake.prepare_iso = mock.create_autospec(
        prepared.prepare_iso, side_effect=exception.ProfileNotDetected(
            source='iso', available='debian', looked_at='volume label'))
    patchers.append(mock.patch.object(prepared, 'prepare_iso',
                                      fake.prepare_iso))
    for p in patchers:
        p.start()
    yield fake
    for p in patchers:
        p.stop()


@pytest.fixture
def conn(cloud):
    c = mock.Mock(spec=connection.Connection)
    c.compute = mock.Mock(spec=compute_proxy.Proxy)
    # instance attributes of the real proxy (keystoneauth's Adapter)
    c.compute.connect_retries = None
    c.compute.connect_retry_delay = None
    # a cloud without a Block Storage service
    c.config = mock.Mock()
    c.config.has_service.return_value = False
    c.compute.servers.return_value = []
    c.created = []
    # a server is there (as ``c.server`` says) until it is deleted
    c.server = None
    c.deleted = set()

    def get_server(server_id):
        if server_id in c.deleted or c.server is None:
            raise sdk_exc.NotFoundException('gone')
        return c.server

    c.compute.get_server.side_effect = get_server
    c.compute.delete_server.side_effect = \
        lambda server_id, **kw: c.deleted.add(server_id)

    def create_server(**attrs):
        c.created.append(fakes.generate_fake_resource(_server.Server,
                                                      **attrs))
        return c.created[-1]

    c.compute.create_server.side_effect = create_server
    return c


def _build(conn, conf, backend, **request):
    request.setdefault('iso', 'debian-12')
    request.setdefault('name', 'debian-12-image')
    events = []
    b = build_mod.Build(conn, conf, build_mod.BuildRequest(**request),
                        backend=backend, progress=events.append)
    b.iso = _iso()
    return b, events


def test_run_goes_through_the_phases_in_order(conn, conf, backend, sleeps,
                                              cloud):
    b, events = _build(conn, conf, backend, verify=False)

    image = b.run()

    assert image is cloud.output
    assert backend.calls == ['check_cloud', 'prepare', 'boot',
                             'start_install', 'install_state',
                             'install_state', 'install_state', 'detach',
                             'snapshot']
    starts = [e['phase'] for e in events if e['event'] == 'phase-start']
    assert starts == ['prepare', 'boot', 'install', 'detach', 'snapshot',
                      'verify', 'cleanup']
    assert events[-1]['event'] == 'done'
    assert all(e['build_id'] == b.id for e in events)


def test_backend_gets_a_context_not_the_build(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend, verify=False)

    b.run()

    for ctx in backend.contexts:
        assert isinstance(ctx, base.BuildContext)
        assert ctx.build_id == b.id and ctx.iso is b.iso
        assert ctx.resources is b.resources
    # what the backend made is typed, and the server carries the record
    assert b.resources.flavor_id == 'flavor-1'
    metadata = conn.compute.create_server.call_args.kwargs['metadata']
    assert metadata['isoplugin_role'] == base.ROLE_BUILD_SERVER
    assert metadata['isoplugin_flavor_id'] == 'flavor-1'


def test_pipeline_owns_the_record_image(conn, conf, backend, sleeps, cloud):
    b, _events = _build(conn, conf, backend, verify=False)
    cloud.listed = {base.ROLE_RECORD: [_image_of(
        id='record-0', status='queued', isoplugin_build_id=b.id,
        isoplugin_role=base.ROLE_RECORD)]}

    b.run()

    # made before the backend prepares, with no data, only the record
    assert len(cloud.created) == 1
    body = cloud.created[0]
    assert body['isoplugin_role'] == 'build-record'
    assert body['isoplugin_build_id'] == b.id
    assert body['visibility'] == 'private'
    assert 'disk_format' not in body
    assert b.record_id == 'record-0'
    # deleted at cleanup
    cloud.delete_image.assert_called_once_with(conn, 'record-0',
                                               ignore_missing=True)


def test_phase_is_recorded_in_the_record_image(conn, conf, backend, sleeps,
                                               cloud):
    b, _events = _build(conn, conf, backend, verify=False)

    b.run()

    calls = [c for c in cloud.patch_image.call_args_list
             if c.args[1] == 'record-0']
    # one request per write: no read first
    assert all(c.kwargs['current'] == {} for c in calls)
    assert cloud.created[0]['isoplugin_phase'] == 'prepare'
    records_ = cloud.patches('record-0')
    # one write per phase after prepare (the heartbeat is not due in a
    # build this fast), and only what changed
    phases = [r.get('isoplugin_phase') for r in records_]
    assert phases == ['boot', 'install', 'detach', 'snapshot', 'verify',
                      'cleanup']
    assert all(r['isoplugin_client'] == build_mod.CLIENT for r in records_)
    # what the backend made goes into the record with the next phase, for
    # a resume; the output image once it exists
    assert records_[0]['isoplugin_flavor_id'] == 'flavor-1'
    assert records_[0]['isoplugin_disk_gb'] == '3'
    assert [sorted(r) for r in records_[1:4]] == [sorted(
        ['isoplugin_phase', 'isoplugin_heartbeat', 'isoplugin_client'])] * 3
    assert records_[4]['isoplugin_image_id'] == 'image-' + b.id
    conn.compute.set_server_metadata.assert_not_called()


def test_record_writes_changes_and_a_due_heartbeat(conn, conf, backend,
                                                   cloud):
    b, _events = _build(conn, conf, backend)
    b._make_record()
    clock = [1000.0]

    with mock.patch.object(time, 'monotonic', lambda: clock[0]):
        b._last_heartbeat = clock[0]
        b.record(phase='prepare')  # as created: nothing to send
        clock[0] += conf.isoplugin.heartbeat_interval - 1
        b.record()
        assert cloud.patch_image.call_count == 0
        clock[0] += 1  # the heartbeat is due
        b.record()
        b.record(phase='boot')  # a change
        b.record(phase='boot')

    first, second = cloud.patches('record-0')
    assert sorted(first) == ['isoplugin_client', 'isoplugin_heartbeat']
    assert sorted(second) == ['isoplugin_client', 'isoplugin_heartbeat',
                              'isoplugin_phase']


def test_a_failed_record_write_is_sent_again(conn, conf, backend, cloud):
    b, events = _build(conn, conf, backend)
    b._make_record()
    cloud.patch_image.side_effect = [
        exception.CloudError(reason='Glance is away'), cloud.output]

    b.record(phase='boot')
    b.record(phase='boot')

    assert [p['isoplugin_phase'] for p in cloud.patches('record-0')] == [
        'boot', 'boot']
    assert 'could not update the build record' in events[-1]['message']


def test_output_image_costs_two_patches_and_no_get(conn, conf, backend,
                                                   sleeps, cloud):
    b, _events = _build(conn, conf, backend, verify=False)

    image = b.run()

    output = [c for c in cloud.patch_image.call_args_list
              if c.args[1] == 'image-' + b.id]
    assert len(output) == 2
    # the fields the snapshot wait read are the base of the first patch,
    # the first patch's answer that of the second
    assert output[0].kwargs['current']['id'] == cloud.output.id
    assert output[1].kwargs['current'] == glance.flat(cloud.output)
    # one GET: the snapshot wait's
    assert [c.args[1] for c in cloud.get_image.call_args_list] == [
        'image-' + b.id]
    assert image is cloud.output


def test_output_image_properties(conn, conf, backend, sleeps, cloud):
    b, _events = _build(conn, conf, backend, verify=False, tags=['a'],
                        visibility='shared')

    b.run()

    output = [c for c in cloud.patch_image.call_args_list
              if c.args[1] == 'image-' + b.id]
    first = output[0].kwargs
    props = first['set']
    assert props['os_distro'] == 'debian'
    assert props['os_version'] == '12'
    assert props['min_disk'] == 3
    assert props['isoplugin_source_iso_id'] == b.iso.id
    assert props['isoplugin_source_iso_hash'] == 'sha512:abc'
    assert props['isoplugin_backend'] == 'unit-fake'
    assert props['isoplugin_build_id'] == b.id
    assert props['unit_fake_bus'] == 'scsi'
    assert 'hw_rescue_device' in first['remove']
    assert 'instance_uuid' in first['remove']
    # the backend's own unwanted properties, not another backend's
    assert 'unit_fake_marker' in first['remove']
    assert 'os_shutdown_timeout' not in first['remove']
    assert 'isoplugin_role' not in first['remove']  # temporary until done
    last = output[-1].kwargs
    assert last['remove'] == ['isoplugin_role']
    assert last['set'] == {'visibility': 'shared', 'tags': ['a'],
                           'isoplugin_verified': 'skipped'}


def test_an_iso_that_cannot_boot_is_refused_first(conn, conf, backend,
                                                  sleeps, cloud):
    b, _events = _build(conn, conf, backend)
    b.iso.properties['isoplugin_bootable'] = 'false'

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert e.value.kwargs['phase'] == 'prepare'
    assert 'has no El Torito boot record' in str(e.value)
    assert backend.calls == []  # not even the cloud checks
    cloud.prepare_iso.assert_not_called()
    cloud.create_image.assert_not_called()


def test_a_taken_output_name_is_refused_before_anything(conn, conf,
                                                        backend, sleeps,
                                                        cloud):
    b, _events = _build(conn, conf, backend, name='web')
    conn.current_project_id = 'project-1'
    cloud.listed = {None: [_image_of(id='img-9', name='web',
                                     status='active')]}

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert cloud.images.call_args_list[0] == mock.call(
        conn, name='web', owner='project-1')
    assert ("already has an image named 'web' (img-9); choose another "
            "--name, or delete that image first ('openstack image delete "
            "img-9')") in str(e.value)
    assert e.value.kwargs['phase'] == 'prepare'
    cloud.prepare_iso.assert_not_called()
    cloud.create_image.assert_not_called()


def test_a_pending_output_of_that_name_names_its_build(conn, conf, backend,
                                                       sleeps, cloud):
    b, _events = _build(conn, conf, backend, name='web')
    cloud.listed = {None: [_image_of(
        id='img-9', name='web', status='active',
        isoplugin_role='output-pending', isoplugin_build_id='b-other')]}

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert "build b-other is already making an image named 'web'" in \
        str(e.value)
    cloud.create_image.assert_not_called()


@pytest.mark.parametrize('other_created,gives_way', [
    ('2026-01-01T10:00:00Z', True),  # earlier: it goes on
    ('2026-01-01T10:00:05Z', True),  # the same second: both stop
    ('2026-01-01T10:00:06Z', False),  # later: the other one gives way
])
def test_of_two_builds_of_one_name_the_later_gives_way(
        conn, conf, backend, sleeps, cloud, other_created, gives_way):
    b, _events = _build(conn, conf, backend, name='web', verify=False)
    cloud.create_image.side_effect = lambda conn, **body: _image_of(
        id='record-0', status='queued', created_at='2026-01-01T10:00:05Z',
        **body)
    cloud.listed = {'build-record': [
        _image_of(id='record-9', isoplugin_build_id='b-other',
                  isoplugin_role='build-record', isoplugin_image_name='web',
                  created_at=other_created),
        # Glance answers more than was asked: another name
        _image_of(id='record-8', isoplugin_build_id='b-x',
                  isoplugin_role='build-record', isoplugin_image_name='db',
                  created_at='2000-01-01T00:00:00Z')]}

    if gives_way:
        with pytest.raises(exception.BuildFailed) as e:
            b.run()
        assert "build b-other is already making an image named 'web'" in \
            str(e.value)
        assert 'prepare' not in backend.calls  # nothing made but the record
    else:
        b.run()
    assert cloud.images.call_args_list[1] == mock.call(
        conn, isoplugin_role='build-record', isoplugin_image_name='web')


def test_the_backend_refuses_a_request_before_anything(conn, conf,
                                                       backend, sleeps,
                                                       cloud):
    b, _events = _build(conn, conf, backend)

    with mock.patch.object(backend, 'check_request', side_effect=exception.
                           InvalidInput(reason='flavor too small')) as check:
        with pytest.raises(exception.BuildFailed) as e:
            b.run()

    assert check.call_args.args[0].iso is b.iso
    assert 'flavor too small' in str(e.value)
    cloud.prepare_iso.assert_not_called()
    cloud.create_image.assert_not_called()


def test_the_build_server_is_released_before_verify(conn, conf, backend,
                                                    sleeps, cloud):
    b, _events = _build(conn, conf, backend, verify=True)
    conn.server = fakes.generate_fake_resource(_server.Server,
                                               status='ACTIVE')
    conn.compute.get_server_console_output.return_value = {
        'output': 'login:'}
    states = iter([(base.VerifyState.BOOTING, 'BUILD'),
                   (base.VerifyState.WAITING, 'ACTIVE'),
                   (base.VerifyState.PASSED, 'matched')])

    def verify_state(ctx, server_id, pattern):
        backend.calls.append('verify_state')
        return next(states)

    with mock.patch.object(backend, 'release', side_effect=lambda ctx: (
            backend.calls.append('release'))), \
            mock.patch.object(backend, 'verify_state',
                              side_effect=verify_state):
        b.run()

    assert backend.calls[-6:] == ['snapshot', 'release', 'release',
                                  'verify_state', 'verify_state',
                                  'verify_state']
    assert cloud.patches('image-' + b.id)[-1]['isoplugin_verified'] == \
        'passed'


def test_a_failed_verify_state_fails_the_verification(conn, conf, backend,
                                                      sleeps, cloud):
    b, _events = _build(conn, conf, backend, verify=True)

    with mock.patch.object(backend, 'verify_state', return_value=(
            base.VerifyState.FAILED, 'powered off, log does not match')):
        with pytest.raises(exception.VerifyFailed) as e:
            b.run()

    assert 'powered off, log does not match' in str(e.value)
    assert cloud.patches('image-' + b.id)[-1] == {
        'isoplugin_verified': 'failed'}


def _qcow2(clusters, flags=0, backing=0):
    """A qcow2 image of 512-byte clusters: header, L1, one L2, data.

    ``clusters``: per guest cluster, ``None`` (unallocated) or its bytes.
    """
    import struct

    size = 512
    l2 = b''.join(
        struct.pack('>Q', 0 if data is None else
                    ((3 + i) * size) | (1 << 63) | flags)
        for i, data in enumerate(clusters))
    header = b'QFI\xfb' + struct.pack(
        '>IQIIQIIQ', 3, backing, 0, 9, len(clusters) * size, 0, 1, size)
    data = b''.join((d or b'').ljust(size, b'\0') for d in clusters)
    return (header.ljust(size, b'\0') +
            struct.pack('>Q', 2 * size | (1 << 63)).ljust(size, b'\0') +
            l2.ljust(size, b'\0') + data)


@pytest.mark.parametrize('data,disk_format,expected', [
    (_qcow2([None, None]), 'qcow2', True),
    (_qcow2([None, b'\0' * 512]), 'qcow2', True),
    (_qcow2([None, b'installed']), 'qcow2', False),
    (_qcow2([b'stale bytes'], flags=1), 'qcow2', True),  # marked as zeros
    (_qcow2([b'x'], flags=1 << 62), 'qcow2', False),  # compressed
    (_qcow2([None], backing=4096), 'qcow2', None),
    (b'\0' * 4096, 'raw', True),
    (b'\0' * 4095 + b'\1', 'raw', False),
    (b'\0' * 4096, 'vmdk', None),
])
def test_holds_only_zeros(data, disk_format, expected):
    assert build_mod.holds_only_zeros(data, disk_format) is expected


@pytest.mark.parametrize('written', [False, True])
def test_a_snapshot_of_an_unwritten_disk_fails_at_once(
        conn, conf, backend, sleeps, cloud, written):
    b, events = _build(conn, conf, backend, verify=True)
    snapshot = _qcow2([b'GRUB' if written else None, None])
    cloud.output.size = len(snapshot)
    cloud.data[cloud.output.id] = snapshot
    conn.server = fakes.generate_fake_resource(_server.Server,
                                               status='ACTIVE')
    conn.compute.get_server_console_output.return_value = {
        'output': 'login:'}

    if written:
        b.run()
    else:
        with pytest.raises(exception.NothingInstalled) as e:
            b.run()
        assert e.value.kwargs['phase'] == 'snapshot'
        assert 'without writing anything to the system disk' in \
            str(e.value)
        # no verify server was booted: from snapshot to cleanup
        assert len(conn.created) == 1
        starts = [e['phase'] for e in events if e['event'] == 'phase-start']
        assert starts[-2:] == ['snapshot', 'cleanup']
    cloud.download_data.assert_called_once()


def _prepared_result(iso):
    image = _image_of(id='prepared-1', status='active', disk_format='iso')
    return prepared.Prepared(
        image=image, profile='debian', source=iso, cache_key='k' * 64,
        reused=True, properties={'os_distro': 'debian', 'os_version': '12',
                                 'hw_qemu_guest_agent': 'yes',
                                 'isoplugin_profile': 'debian'})


def test_build_boots_the_prepared_iso(conn, conf, backend, sleeps, cloud):
    b, events = _build(conn, conf, backend, verify=False, profile='debian',
                       values={'password_hash': 'SECRET-HASH'},
                       kernel_args=['quiet'])
    cloud.prepare_iso.side_effect = None
    cloud.prepare_iso.return_value = _prepared_result(b.iso)

    b.run()

    cloud.prepare_iso.assert_called_once_with(
        conn, conf, b.iso, profile='debian',
        values={'password_hash': 'SECRET-HASH'}, answer=None,
        kernel_args=['quiet'], add_files=[], progress=mock.ANY)
    # the backend rescues with the prepared copy; the record keeps both
    assert all(ctx.iso.id == 'prepared-1' for ctx in backend.contexts)
    record = cloud.created[0]
    assert record['isoplugin_iso_id'] == b.iso.id
    assert record['isoplugin_prepared_iso_id'] == 'prepared-1'
    # no secret in the record, the events or the output's properties
    assert 'SECRET-HASH' not in repr(cloud.created)
    assert 'SECRET-HASH' not in repr(events)
    assert 'SECRET-HASH' not in repr(cloud.patch_image.call_args_list)
    output = cloud.patches('image-' + b.id)[0]
    assert output['hw_qemu_guest_agent'] == 'yes'
    assert output['isoplugin_profile'] == 'debian'
    assert output['isoplugin_source_iso_id'] == b.iso.id
    # the cached copy is not the build's to delete
    deleted = [c.args[1] for c in cloud.delete_image.call_args_list]
    assert 'prepared-1' not in deleted
    notices = [e['message'] for e in events if e['event'] == 'notice']
    assert notices == ['booting the prepared ISO prepared-1 (profile '
                       'debian, reused)']


def test_undetected_iso_without_options_is_used_as_is(conn, conf, backend,
                                                      sleeps, cloud):
    b, events = _build(conn, conf, backend, verify=False)

    b.run()

    assert all(ctx.iso is b.iso for ctx in backend.contexts)
    notice, = [e['message'] for e in events if e['event'] == 'notice']
    assert 'could not be detected' in notice
    assert 'Building from the ISO as it is' in notice


def test_undetected_iso_with_options_fails_before_anything(
        conn, conf, backend, sleeps, cloud):
    b, _events = _build(conn, conf, backend, values={'hostname': 'x'})

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert e.value.kwargs['phase'] == 'prepare'
    assert 'could not be detected' in str(e.value)
    assert cloud.created == []
    assert 'prepare' not in backend.calls


def test_profile_none_uses_the_iso_as_is(conn, conf, backend, sleeps,
                                         cloud):
    b, _events = _build(conn, conf, backend, verify=False, profile='none')

    b.run()

    cloud.prepare_iso.assert_not_called()
    assert all(ctx.iso is b.iso for ctx in backend.contexts)


def test_profile_none_takes_no_options(conn, conf, backend, sleeps, cloud):
    b, _events = _build(conn, conf, backend, profile='none',
                        kernel_args=['quiet'])

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert '--profile none uses the ISO as it is' in str(e.value)
    assert cloud.created == []


def test_verify_boots_as_the_backend_says(conn, conf, backend, sleeps,
                                          cloud):
    b, _events = _build(conn, conf, backend, verify=True)
    conn.server = fakes.generate_fake_resource(
        _server.Server, status='ACTIVE')
    conn.compute.get_server_console_output.return_value = {
        'output': 'debian login:'}
    args = {'flavor_id': 'f-verify', 'network_id': None,
            'block_device_mapping': [{'uuid': 'vol', 'boot_index': 0}]}

    with mock.patch.object(backend, 'verify_server_args',
                           return_value=args) as how:
        b.run()

    assert how.call_args.args[1] == 'image-' + b.id
    verify = conn.compute.create_server.call_args_list[-1].kwargs
    assert verify['block_device_mapping'] == args['block_device_mapping']
    assert 'image_id' not in verify
    assert verify['flavor_id'] == 'f-verify'
    assert verify['networks'] == 'none'
    assert verify['metadata']['isoplugin_role'] == 'verify-server'
    conn.compute.delete_server.assert_any_call(conn.created[-1].id,
                                               ignore_missing=True)
    assert cloud.patches('image-' + b.id)[-1]['isoplugin_verified'] == \
        'passed'


def test_default_verify_boots_the_image(conn, conf, backend):
    b, _events = _build(conn, conf, backend)
    b.resources.flavor_id = 'f1'
    b.resources.network_id = 'net-1'

    args = backend.verify_server_args(b.context(), 'img-1')

    assert args == {'image_id': 'img-1', 'flavor_id': 'f1',
                    'network_id': 'net-1'}


def test_failure_names_phase_and_cleans_up(conn, conf, backend, sleeps):
    b, events = _build(conn, conf, backend)
    server = fakes.generate_fake_resource(
        _server.Server, fault=None,
        metadata={'isoplugin_build_id': b.id,
                  'isoplugin_role': 'build-server'})
    conn.compute.servers.return_value = [server]

    with mock.patch.object(backend, 'detach', side_effect=exception.
                           CloudError(reason='No valid host was found')):
        with pytest.raises(exception.BuildFailed) as e:
            b.run()

    assert e.value.kwargs['phase'] == 'detach'
    assert 'No valid host was found' in str(e.value)
    conn.compute.delete_server.assert_called_once_with(
        server.id, ignore_missing=True)
    assert [ev['event'] for ev in events][-1] == 'failed'


def test_keyboard_interrupt_cleans_up(conn, conf, backend, sleeps, cloud):
    b, _events = _build(conn, conf, backend)
    record = _image_of(id='record-0', isoplugin_build_id=b.id,
                       isoplugin_role='build-record', status='queued')
    other = _image_of(id='other', isoplugin_build_id='b-someone-else',
                      isoplugin_role='build-record', status='queued')
    cloud.listed = {'build-record': [record, other]}

    with mock.patch.object(backend, 'install_state',
                           side_effect=KeyboardInterrupt):
        with pytest.raises(exception.BuildInterrupted) as e:
            b.run()

    assert e.value.kwargs['phase'] == 'install'
    # only its own image, even if Glance answered with more
    cloud.delete_image.assert_called_once_with(conn, 'record-0',
                                               ignore_missing=True)


@pytest.fixture
def sigint_default():
    """SIGINT as an interactive Python has it.

    A test run started in the background by a shell without job control
    inherits SIGINT ignored, and the guard leaves an ignored signal alone.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_signal_guard_interrupts_once_then_defers(sigint_default):
    notes = []
    before = signal.getsignal(signal.SIGTERM)

    with build_mod.SignalGuard(lambda *a, **kw: notes.append(kw)) as guard:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this at once
        os.kill(os.getpid(), signal.SIGINT)  # disarmed: reported only
        guard.defer()
        os.kill(os.getpid(), signal.SIGTERM)

    assert [n['message'] for n in notes] == [
        'SIGINT received: finishing the cleanup first',
        'SIGTERM received: finishing the cleanup first']
    assert signal.getsignal(signal.SIGTERM) is before


def test_signal_guard_keeps_an_ignored_signal_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with build_mod.SignalGuard():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigterm_during_a_build_cleans_up(conn, conf, backend, sleeps,
                                          cloud):
    b, events = _build(conn, conf, backend)
    cloud.listed = {'build-record': [_image_of(
        id='record-0', isoplugin_build_id=b.id,
        isoplugin_role='build-record', status='queued')]}

    def terminate(ctx):
        os.kill(os.getpid(), signal.SIGTERM)
        return base.InstallState.RUNNING, 'RESCUE'

    # a second one during the cleanup: the cleanup goes on
    cloud.delete_image.side_effect = \
        lambda *a, **kw: os.kill(os.getpid(), signal.SIGTERM)
    with mock.patch.object(backend, 'install_state', side_effect=terminate):
        with pytest.raises(exception.BuildInterrupted) as e:
            b.run()

    assert 'interrupted in phase install (interrupted by a signal)' in \
        str(e.value)
    cloud.delete_image.assert_called_once_with(conn, 'record-0',
                                               ignore_missing=True)
    assert 'SIGTERM received: finishing the cleanup first' in [
        ev.get('message') for ev in events]


def _signal_at_the_second_install(conf, send):
    """A backend install_state that signals once two builds poll it.

    :param send: called once, in the thread of the second build to poll.
    :returns: ``(install_state, the ids of the builds that polled)``.
    """
    conf.set_override('install_polls', 10 ** 6, group='backend_unit_fake')
    polled = set()
    sent = []
    lock = threading.Lock()

    def install_state(ctx):
        with lock:
            polled.add(ctx.build_id)
            if len(polled) == 2 and not sent:
                sent.append(True)
                send()
        return base.InstallState.RUNNING, 'RESCUE'

    return install_state, polled


def test_a_signal_stops_a_pool_of_builds_which_clean_up(conn, conf,
                                                        backend, cloud):
    # from a pool thread: Python handles it in the main thread
    install_state, polled = _signal_at_the_second_install(
        conf, lambda: os.kill(os.getpid(), signal.SIGTERM))

    events = []
    requests = [build_mod.BuildRequest(iso='i%d' % i, name='n%d' % i)
                for i in range(2)]
    with mock.patch.object(backend, 'install_state',
                           side_effect=install_state), \
            mock.patch.object(build_mod, 'resolve_iso',
                              return_value=_iso()), \
            mock.patch.object(build_mod, '_sleep',
                              lambda event, seconds: event.wait(0.01)), \
            mock.patch.object(records, '_sleep', return_value=False):
        with pytest.raises(KeyboardInterrupt):
            list(build_mod.build_images(conn, conf, requests, parallel=2,
                                        progress=events.append,
                                        backend=backend))

    failed = [e for e in events if e['event'] == 'failed']
    assert sorted(e['build_id'] for e in failed) == sorted(polled)
    assert all('interrupted in phase install (cancelled)' in e['message']
               for e in failed)
    # both ran their cleanup to its end before the pool gave up
    cleaned = [e['build_id'] for e in events
               if e['phase'] == 'cleanup' and e['event'] == 'phase-end']
    assert sorted(cleaned) == sorted(polled)


@pytest.mark.parametrize('where', ['thread start', 'submit'])
def test_a_signal_while_the_pool_starts_a_build_stops_it_too(
        conn, conf, backend, cloud, where):
    """A signal during submit(): that build is cancelled and awaited too.

    Python raises the handler's KeyboardInterrupt wherever the main thread
    is. In ThreadPoolExecutor.submit(), once the thread that takes the
    build has started but before the pool records it (``thread start``),
    or once submit() made the future (``submit``), the build was neither
    cancelled nor waited for: it ran on after build_images gave up.
    """
    conf.set_override('install_polls', 10 ** 6, group='backend_unit_fake')
    if where == 'submit':
        owner, name = concurrent.futures.ThreadPoolExecutor, 'submit'
    else:
        owner, name = threading.Thread, 'start'
    original = getattr(owner, name)
    calls = []

    def signal_in_the_second(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if where == 'submit' or self.name.startswith('ThreadPoolExecutor'):
            calls.append(self)
            if len(calls) == 2:
                # handled here, at once, in the main thread
                os.kill(os.getpid(), signal.SIGTERM)
        return result

    events = []
    # a build nobody cancels ends with its install timeout (not a hang)
    requests = [build_mod.BuildRequest(iso='i%d' % i, name='n%d' % i,
                                       install_timeout=60)
                for i in range(2)]
    with mock.patch.object(owner, name, signal_in_the_second), \
            mock.patch.object(build_mod, 'resolve_iso',
                              return_value=_iso()), \
            mock.patch.object(records, '_sleep', return_value=False):
        with pytest.raises(KeyboardInterrupt):
            list(build_mod.build_images(conn, conf, requests, parallel=2,
                                        progress=events.append,
                                        backend=backend))

    assert len(calls) == 2
    started = {e['build_id'] for e in events if e['event'] == 'phase-start'}
    assert len(started) == 2
    failed = {e['build_id']: e['message'] for e in events
              if e['event'] == 'failed'}
    assert sorted(failed) == sorted(started)
    assert all('(cancelled)' in m for m in failed.values()), failed
    cleaned = [e['build_id'] for e in events
               if e['phase'] == 'cleanup' and e['event'] == 'phase-end']
    assert sorted(cleaned) == sorted(started)


def test_a_signal_a_build_thread_takes_stops_the_pool(conn, conf,
                                                      backend, cloud):
    """The kernel may give a process's signal to any of its threads.

    Python's C handler then runs in that thread and does not wake the
    main thread, where the Python handler runs: a pool that waits without
    end would see the signal only when a build ends.
    """
    # to this build's thread only
    install_state, polled = _signal_at_the_second_install(
        conf, lambda: signal.pthread_kill(threading.get_ident(),
                                          signal.SIGTERM))

    events = []
    # without a look for signals, the builds end with their install timeout
    requests = [build_mod.BuildRequest(iso='i%d' % i, name='n%d' % i,
                                       install_timeout=30)
                for i in range(2)]
    with mock.patch.object(backend, 'install_state',
                           side_effect=install_state), \
            mock.patch.object(build_mod, 'resolve_iso',
                              return_value=_iso()), \
            mock.patch.object(records, '_sleep', return_value=False):
        with pytest.raises(KeyboardInterrupt):
            list(build_mod.build_images(conn, conf, requests, parallel=2,
                                        progress=events.append,
                                        backend=backend))

    failed = [e for e in events if e['event'] == 'failed']
    assert sorted(e['build_id'] for e in failed) == sorted(polled)
    assert all('interrupted in phase install (cancelled)' in e['message']
               for e in failed), failed


def test_signal_guard_holds_a_signal_until_the_block_ends():
    notes = []

    with build_mod.SignalGuard(lambda *a, **kw: notes.append(kw)) as guard:
        with pytest.raises(KeyboardInterrupt):
            with guard.held():
                with guard.held():  # nested: raised at the outer end
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.01)  # not cut
                    done = True
                os.kill(os.getpid(), signal.SIGTERM)  # reported only
        assert done
        guard.armed = True
        with pytest.raises(KeyboardInterrupt) as e:  # the block failed
            with guard.held():
                os.kill(os.getpid(), signal.SIGTERM)
                raise ValueError('x')
        assert isinstance(e.value.__context__, ValueError)
        with guard.held():  # nothing pending any more
            pass

    assert [n['message'] for n in notes] == [
        'SIGTERM received: finishing the cleanup first']


def test_keep_on_error_keeps_resources(conn, conf, backend, sleeps, cloud):
    b, events = _build(conn, conf, backend, keep_on_error=True)

    with mock.patch.object(backend, 'snapshot', side_effect=exception.
                           CloudError(reason='boom')):
        with pytest.raises(exception.BuildFailed):
            b.run()

    conn.compute.delete_server.assert_not_called()
    cloud.delete_image.assert_not_called()
    assert cloud.patches('record-0')[-1]['isoplugin_phase'] == 'failed'
    assert 'kept' in [e['event'] for e in events]


def test_disk_size_needs_the_capability(conn, conf, backend, sleeps, cloud):
    b, _events = _build(conn, conf, backend, disk_size=20)

    with mock.patch.object(type(backend), 'CAPABILITIES',
                           base.Capabilities.UNATTENDED_INSTALL):
        with pytest.raises(exception.BuildFailed) as e:
            b.run()

    assert 'cannot choose the system disk size' in str(e.value)
    assert e.value.kwargs['phase'] == 'prepare'
    assert backend.calls == ['check_cloud']  # nothing was made
    cloud.create_image.assert_not_called()


def test_unattended_needs_the_capability(conn, conf, backend, sleeps,
                                         cloud):
    b, _events = _build(conn, conf, backend)

    with mock.patch.object(type(backend), 'CAPABILITIES',
                           base.Capabilities.INTERACTIVE_INSTALL):
        with pytest.raises(exception.BuildFailed) as e:
            b.run()

    assert 'cannot run unattended installs' in str(e.value)
    cloud.create_image.assert_not_called()


def test_interactive_needs_the_capability(conn, conf, backend, sleeps,
                                          cloud):
    b, _events = _build(conn, conf, backend, interactive=True)

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert 'cannot run interactive installs' in str(e.value)
    cloud.create_image.assert_not_called()


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


def _polls_until(b, done_at, timeout=3600, expected=None, beats=None):
    """Poll times (fake clock) of ``b.wait``.

    The probe says done from ``done_at`` seconds on. ``beats``: a list
    that gets the times of the heartbeats the wait wrote (the build needs
    a record for that).
    """
    clock = [0.0]
    polls = []
    record = b.record

    def fake_sleep(event, seconds):
        clock[0] += seconds
        return False

    def probe():
        polls.append(clock[0])
        return clock[0] >= done_at, 'x'

    def counted_record(**fields):
        sent = record(**fields)
        if sent and beats is not None:
            beats.append(clock[0])
        return sent

    with mock.patch.object(build_mod, '_sleep', side_effect=fake_sleep), \
            mock.patch.object(time, 'monotonic', lambda: clock[0]), \
            mock.patch.object(b, 'record', counted_record):
        if b.record_id is None and beats is not None:
            b._make_record()
        b.wait(probe, 'thing', timeout, expected=expected)
    return polls


def _gaps(polls):
    return [y - x for x, y in zip(polls, polls[1:])]


def test_wait_polls_every_second_at_first_then_backs_off(conn, conf,
                                                         backend):
    b, _events = _build(conn, conf, backend)

    polls = _polls_until(b, 20)

    # at once, every second for 10 s, then 2 s, then 15 % of the time
    assert polls[:11] == [float(i) for i in range(11)]
    assert _gaps(polls)[10:15] == pytest.approx(
        [2, 2, 0.15 * 14, 0.15 * 16.1, 0.15 * 18.515])


@pytest.mark.parametrize('done_at', [0, 0.5, 2.5, 4.5, 8, 9.5])
def test_wait_sees_a_short_phase_end_within_1_s(conn, conf, backend,
                                                done_at):
    b, _events = _build(conn, conf, backend)

    polls = _polls_until(b, done_at)

    assert polls[-1] - done_at <= 1.0
    assert len(polls) <= done_at + 2  # one poll per second, no more


@pytest.mark.parametrize('expected', [None, 20, 60, 120, 300, 600, 1800])
def test_wait_stays_within_its_budget_at_every_moment(conn, conf, backend,
                                                      cloud, expected):
    """Polls and heartbeats: at most max(30 + t / 15, t / 10) by t."""
    b, _events = _build(conn, conf, backend)
    beats = []

    polls = _polls_until(b, 3600, timeout=7200, expected=expected,
                         beats=beats)

    assert len(beats) >= 45  # the heartbeats were written and counted
    requests = sorted(polls + beats)
    for n, t in enumerate(requests, 1):
        assert n <= max(30 + t / 15.0, t / 10.0) + 1e-9, (n, t)
    # a long wait: one request per 10 s on average over its whole length
    assert len(requests) <= 3600 / 10 + 1
    assert len([t for t in requests if t <= 900]) <= 90
    # the budget slows the polls, it never stops them for long
    assert max(_gaps(polls)) <= 30
    assert polls[-1] - 3600 <= 10


def test_wait_without_the_budget_would_exceed_it(conn, conf, backend,
                                                 cloud):
    """The budget test above can fail: the placement alone overspends."""
    b, _events = _build(conn, conf, backend)
    beats = []

    with mock.patch.object(build_mod.PollSchedule, '_earliest',
                           return_value=0.0):
        polls = _polls_until(b, 900, expected=None, beats=beats)

    requests = sorted(polls + beats)
    assert len(requests) > 90
    assert any(n > max(30 + t / 15.0, t / 10.0)
               for n, t in enumerate(requests, 1))


@pytest.mark.parametrize('done_at', [57.5, 60, 63.2, 66.5, 71.5])
def test_wait_polls_every_second_around_the_expected_end(conn, conf,
                                                         backend, done_at):
    b, _events = _build(conn, conf, backend)

    polls = _polls_until(b, done_at, expected=60)

    # every 10 s up to the window (57 to 72 s), then every second
    assert polls[:7] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 57.0]
    assert polls[-1] - done_at <= 1.0
    assert len(polls) <= 7 + (done_at - 57) + 1


def test_wait_expected_end_saves_requests_of_the_first_minute(conn, conf,
                                                              backend):
    b, _events = _build(conn, conf, backend)

    blind = _polls_until(b, 62)
    expected = _polls_until(b, 62, expected=60)

    assert len([t for t in blind if t <= 60]) == 23
    assert len(expected) == 12  # 0, 10 ... 50, 57 ... 62
    assert blind[-1] - 62 > 3 and expected[-1] - 62 == 0


def test_wait_after_a_missed_expected_end_backs_off(conn, conf, backend):
    b, _events = _build(conn, conf, backend)

    polls = _polls_until(b, 400, expected=60)

    assert [t for t in polls if 57 <= t <= 72] == [
        float(t) for t in range(57, 73)]
    assert max(_gaps([t for t in polls if t >= 72])) <= 15
    assert polls[-1] - 400 <= 15


def test_a_wait_wrapper_of_the_older_signature_works(conn, conf, backend,
                                                     sleeps, cloud):
    """Without an estimate, wait is called as wait(probe, what, timeout)."""
    b, _events = _build(conn, conf, backend, verify=False)
    original = build_mod.Build.wait
    seen = []

    def wait(self, probe, what, timeout):
        seen.append(self.phase)
        return original(self, probe, what, timeout)

    with mock.patch.object(build_mod.Build, 'wait', wait):
        assert b.run() is not None

    assert 'install' in seen


def test_install_wait_expects_the_requests_estimate(conn, conf, backend,
                                                    sleeps, cloud):
    b, _events = _build(conn, conf, backend, verify=False,
                        install_estimate=90)

    with mock.patch.object(build_mod, 'PollSchedule',
                           wraps=build_mod.PollSchedule) as schedule:
        b.run()

    expectations = [c.args[1] for c in schedule.call_args_list]
    assert expectations.count(90) == 1
    assert set(expectations) == {None, 90}


def _fake_clock():
    """A clock that only the build's sleeps move: ``(clock, sleep)``."""
    clock = [0.0]

    def fake_sleep(event, seconds):
        clock[0] += seconds
        return False

    return clock, fake_sleep


def _lookups(cloud):
    """The image queries of the install estimate (on the source ISO)."""
    return [c for c in cloud.images.call_args_list
            if 'isoplugin_source_iso_id' in c.kwargs]


def _install_expectations(schedule):
    """``expected`` of every wait's PollSchedule, in order."""
    return [c.args[1] for c in schedule.call_args_list]


def test_the_install_time_is_kept_on_the_output_image(conn, conf, backend,
                                                      cloud):
    b, _events = _build(conn, conf, backend, verify=False)
    clock, fake_sleep = _fake_clock()

    with mock.patch.object(build_mod, '_sleep', side_effect=fake_sleep), \
            mock.patch.object(time, 'monotonic', lambda: clock[0]):
        b.run()

    # polls at 0, 1 and 2 s: powered off at the third
    assert b.install_seconds == 2.0
    first, last = cloud.patches('image-' + b.id)
    assert first['isoplugin_install_seconds'] == '2.0'
    assert first['isoplugin_source_iso_id'] == b.iso.id
    assert 'isoplugin_install_seconds' not in last
    # with the other properties: still two patches of the output
    assert len([c for c in cloud.patch_image.call_args_list
                if c.args[1] == 'image-' + b.id]) == 2


def test_the_install_expects_the_last_install_of_the_iso(conn, conf,
                                                         backend, sleeps,
                                                         cloud):
    b, events = _build(conn, conf, backend, verify=False)
    conn.current_project_id = 'project-1'
    mine = dict(isoplugin_source_iso_id=b.iso.id, status='active')
    cloud.listed = {None: [
        # Glance answers more than was asked: another ISO's build
        _image_of(id='other-iso', isoplugin_source_iso_id='iso-x',
                  isoplugin_install_seconds='7.0',
                  created_at='2026-03-03T00:00:00Z'),
        # built before the install time was kept, or finished by hand
        _image_of(id='img-3', created_at='2026-03-02T00:00:00Z', **mine),
        _image_of(id='img-2', isoplugin_install_seconds='25.3',
                  isoplugin_build_time='2026-03-01T10:00:00Z',
                  created_at='2026-03-01T10:05:00Z', **mine),
        _image_of(id='img-1', isoplugin_install_seconds='40.0',
                  created_at='2026-02-01T00:00:00Z', **mine)]}

    with mock.patch.object(build_mod, 'PollSchedule',
                           wraps=build_mod.PollSchedule) as schedule:
        b.run()

    # one query between the name checks and the cleanup's: the
    # project's images of the ISO, newest first, one short page
    queries = [c.kwargs for c in cloud.images.call_args_list]
    assert queries == [
        {'name': 'debian-12-image', 'owner': 'project-1'},
        {'isoplugin_role': 'build-record',
         'isoplugin_image_name': 'debian-12-image'},
        {'isoplugin_source_iso_id': b.iso.id, 'owner': 'project-1',
         'sort': 'created_at:desc', 'limit': 5},
        {'isoplugin_build_id': b.id}]
    assert _install_expectations(schedule).count(25.3) == 1
    estimate, = [e for e in events if e['event'] == 'estimate']
    assert estimate['phase'] == 'install'
    assert estimate['expected'] == 25.3
    assert estimate['message'] == (
        'install expected to take about 25s (the build of image img-2 on '
        '2026-03-01T10:00:00Z)')
    # the install wait comes after it
    waits = [e for e in events if e['event'] == 'waited']
    assert events.index(estimate) < events.index(waits[-2])


@pytest.mark.parametrize('error', [
    exception.NotFound(what='Image list'),
    exception.CloudError(reason='Glance is away'),
])
def test_a_failed_estimate_lookup_does_not_fail_the_build(
        conn, conf, backend, sleeps, cloud, caplog, error):
    b, events = _build(conn, conf, backend, verify=False)
    images = cloud.images.side_effect

    def failing(conn, **filters):
        if 'isoplugin_source_iso_id' in filters:
            raise error
        return images(conn, **filters)

    cloud.images.side_effect = failing
    caplog.set_level('DEBUG', logger='isoplugin.build')
    with mock.patch.object(build_mod, 'PollSchedule',
                           wraps=build_mod.PollSchedule) as schedule:
        assert b.run() is cloud.output

    assert len(_lookups(cloud)) == 1
    assert set(_install_expectations(schedule)) == {None}
    assert 'estimate' not in [e['event'] for e in events]
    lookup, = [r for r in caplog.records if 'install of ISO' in
               r.getMessage()]
    assert lookup.levelname == 'DEBUG'
    assert str(error) in caplog.text


def test_an_explicit_estimate_wins_without_a_lookup(conn, conf, backend,
                                                    sleeps, cloud):
    b, events = _build(conn, conf, backend, verify=False,
                       install_estimate=90)
    cloud.listed = {None: [_image_of(
        id='img-1', isoplugin_source_iso_id=b.iso.id,
        isoplugin_install_seconds='25.0', status='active')]}

    with mock.patch.object(build_mod, 'PollSchedule',
                           wraps=build_mod.PollSchedule) as schedule:
        b.run()

    assert _lookups(cloud) == []
    assert _install_expectations(schedule).count(90) == 1
    estimate, = [e for e in events if e['event'] == 'estimate']
    assert estimate['message'] == ('install expected to take about 1m30s '
                                   '(--install-estimate)')


def test_an_install_finished_by_hand_keeps_no_install_time(conn, conf,
                                                           backend, sleeps,
                                                           cloud):
    b, events = _build(conn, conf, backend, verify=False, interactive=True)
    cloud.listed = {None: [_image_of(
        id='img-1', isoplugin_source_iso_id=b.iso.id,
        isoplugin_install_seconds='25.0', status='active')]}
    record = _image_of(id='record-0', isoplugin_finish='requested')
    cloud.get_image.side_effect = lambda conn, image_id, what=None: (
        record if image_id == 'record-0' else cloud.output)

    with mock.patch.object(type(backend), 'CAPABILITIES',
                           base.Capabilities.INTERACTIVE_INSTALL), \
            mock.patch.object(build_mod, 'PollSchedule',
                              wraps=build_mod.PollSchedule) as schedule:
        b.run()

    install, = [e for e in events if e['event'] == 'waited' and
                e['phase'] == 'install']
    assert install['status'] == 'finish requested'
    # a person installs: no estimate, and no install time for the next
    assert _lookups(cloud) == []
    assert set(_install_expectations(schedule)) == {None}
    assert 'estimate' not in [e['event'] for e in events]
    assert b.install_seconds is None
    assert all('isoplugin_install_seconds' not in props
               for props in cloud.patches('image-' + b.id))


def test_a_resumed_install_neither_expects_nor_keeps_a_time(conn, conf,
                                                            backend, sleeps,
                                                            cloud):
    """The install started before the resume: its time is unknown."""
    b, events = _build(conn, conf, backend, verify=False)
    b.record_id = 'record-1'
    cloud.listed = {None: [_image_of(
        id='img-1', isoplugin_source_iso_id=b.iso.id,
        isoplugin_install_seconds='25.0', status='active')]}

    b.run(start_phase='install')

    assert _lookups(cloud) == []
    assert 'estimate' not in [e['event'] for e in events]
    assert b.install_seconds is None
    assert 'isoplugin_install_seconds' not in cloud.patches(
        'image-' + b.id)[0]


def test_wait_stops_when_cancelled(conn, conf, backend, sleeps):
    b, _events = _build(conn, conf, backend)
    b.cancelled.set()

    with pytest.raises(exception.BuildInterrupted):
        b.wait(lambda: (False, 'x'), 'thing', 3600)


def test_record_fields_carry_the_request(conn, conf, backend):
    b, _events = _build(conn, conf, backend, tags=['x', 'y'])
    b.resources.flavor_id = 'f1'
    b.resources.disk_gb = 4

    fields = b.record_fields('build-server')

    assert fields['isoplugin_build_id'] == b.id
    assert fields['isoplugin_role'] == 'build-server'
    assert fields['isoplugin_iso_id'] == b.iso.id
    assert fields['isoplugin_tags'] == 'x,y'
    assert fields['isoplugin_flavor_id'] == 'f1'
    assert fields['isoplugin_disk_gb'] == '4'
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
    deleted = build_mod.delete_orphans(conn, conf)

    assert deleted == ['b-dead']
    conn.compute.delete_server.assert_called_once_with(dead.id,
                                                       ignore_missing=True)


def test_one_build_is_found_with_one_image_query(conn, conf, cloud):
    mine = dict(isoplugin_build_id='b-1', status='active')
    cloud.listed = {None: [
        _image_of(id='out', isoplugin_role='output-pending', **mine),
        _image_of(id='rec', isoplugin_role='build-record', **mine),
        _image_of(id='published', **mine),  # a finished build's output
        _image_of(id='other', isoplugin_role='blank-disk',
                  isoplugin_build_id='b-2', status='active')]}

    found = build_mod.find_resources(conn, conf, 'b-1')

    cloud.images.assert_called_once_with(conn, isoplugin_build_id='b-1')
    # the temporary ones only, the record first as before
    assert [(r.id, r.role) for r in found] == [
        ('rec', 'build-record'), ('out', 'output-pending')]


def test_delete_build_unknown_id(conn, conf):
    with pytest.raises(exception.BuildNotFound):
        build_mod.delete_build(conn, conf, 'b-nothing')


def test_finish_build_sets_the_flag(conn, conf, cloud):
    cloud.listed = {'build-record': [_image_of(
        id='record-1', isoplugin_build_id='b-1',
        isoplugin_role='build-record', status='queued')]}

    build_mod.finish_build(conn, conf, 'b-1')

    cloud.patch_image.assert_called_once_with(
        conn, 'record-1', current={}, set={'isoplugin_finish': 'requested'})


def test_finish_is_read_from_the_record(conn, conf, backend, cloud):
    b, _events = _build(conn, conf, backend)
    b.record_id = 'record-1'
    cloud.get_image.return_value = _image_of(id='record-1',
                                             isoplugin_finish='requested')

    assert b.finish_is_requested()
    assert cloud.get_image.call_args.args[:2] == (conn, 'record-1')


def test_resume_refuses_a_live_build(conn, conf):
    host = socket.gethostname()
    conn.compute.servers.return_value = [
        _server_of('b-1', '%s:%d' % (host, os.getpid()), time.time())]

    with pytest.raises(exception.BuildNotResumable):
        build_mod.resume_build(conn, conf, 'b-1')


def _dead_build(conn, cloud, phase):
    host = socket.gethostname()
    server = _server_of('b-1', '%s:%d' % (host, 2 ** 22 + 7), time.time(),
                        phase=phase)
    conn.compute.servers.return_value = [server]
    cloud.listed = {'build-record': [_image_of(
        id='record-1', status='queued', isoplugin_build_id='b-1',
        isoplugin_role='build-record', isoplugin_phase=phase,
        isoplugin_image_name='img', isoplugin_iso_id='iso-1',
        isoplugin_verify='false', isoplugin_interactive='true',
        isoplugin_flavor_id='f1', isoplugin_disk_gb='2',
        isoplugin_backend='unit-fake',
        isoplugin_client='%s:%d' % (host, 2 ** 22 + 7))]}
    return server


def resumable(backend):
    """The test backend, declaring RESUME (it does not by default)."""
    return mock.patch.object(
        type(backend), 'CAPABILITIES',
        backend.CAPABILITIES | base.Capabilities.RESUME)


def test_resume_continues_from_the_recorded_phase(conn, conf, backend,
                                                  sleeps, cloud):
    server = _dead_build(conn, cloud, 'detach')
    iso = _iso()
    iso.status = 'active'  # the snapshot reads the same fake
    cloud.get_image.return_value = iso

    with resumable(backend):
        build_mod.resume_build(conn, conf, 'b-1', backend=backend)

    assert backend.calls == ['detach', 'snapshot']
    ctx = backend.contexts[0]
    # the server the cloud showed, released once the snapshot was active
    assert ctx.resources == base.BuildResources(flavor_id='f1', disk_gb=2)
    conn.compute.delete_server.assert_any_call(server.id,
                                               ignore_missing=True)
    assert ctx.iso is iso
    assert ctx.request.interactive is True and ctx.request.name == 'img'
    # the same record image carries on
    assert cloud.patches('record-1')[0]['isoplugin_phase'] == 'detach'


def test_resume_needs_the_capability(conn, conf, backend, cloud):
    _dead_build(conn, cloud, 'detach')

    with pytest.raises(exception.BuildNotResumable) as e:
        build_mod.resume_build(conn, conf, 'b-1', backend=backend)

    assert 'the unit-fake backend cannot resume builds' in str(e.value)
    assert backend.calls == []


def test_resume_from_cleanup_only_cleans_up(conn, conf, backend, sleeps,
                                            cloud):
    server = _dead_build(conn, cloud, 'cleanup')

    with resumable(backend):
        assert build_mod.resume_build(conn, conf, 'b-1',
                                      backend=backend) is None

    assert backend.calls == []
    conn.compute.delete_server.assert_called_once_with(
        server.id, ignore_missing=True)
    cloud.delete_image.assert_called_once_with(conn, 'record-1',
                                               ignore_missing=True)


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


def test_cleanup_waits_for_servers_before_deleting_images(conn, conf,
                                                          sleeps, cloud):
    server = fakes.generate_fake_resource(_server.Server, status='ACTIVE')
    order = []
    conn.compute.delete_server.side_effect = \
        lambda *a, **k: order.append('delete server')
    answers = iter([server, server, sdk_exc.NotFoundException('gone')])

    def get_server(server_id):
        order.append('look')
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    conn.compute.get_server.side_effect = get_server
    cloud.delete_image.side_effect = \
        lambda *a, **k: order.append('delete image')
    resources = [records.Resource(kind='image', id='blank', name='b',
                                  build_id='b-1', role='blank-disk'),
                 records.Resource(kind='server', id=server.id, name='s',
                                  build_id='b-1', role='build-server')]

    deleted = records.delete_resources(conn, conf, 'b-1',
                                       resources=resources)

    assert order == ['delete server', 'look', 'look', 'look',
                     'delete image']
    assert [r.id for r in deleted] == ['blank', server.id]


def test_cleanup_reports_a_server_that_stays(conn, conf, sleeps, cloud):
    server = fakes.generate_fake_resource(_server.Server, status='ACTIVE')
    conn.compute.get_server.side_effect = None
    conn.compute.get_server.return_value = server
    clock = [0.0]

    def fake_sleep(event, seconds):
        clock[0] += seconds

    resources = [records.Resource(kind='server', id=server.id, name='s',
                                  build_id='b-1', role='build-server'),
                 records.Resource(kind='image', id='blank', name='b',
                                  build_id='b-1', role='blank-disk')]
    with mock.patch.object(records, '_sleep', side_effect=fake_sleep), \
            mock.patch.object(time, 'monotonic', lambda: clock[0]):
        with pytest.raises(exception.CloudError) as e:
            records.delete_resources(conn, conf, 'b-1', resources=resources)

    assert 'server %s: still there after 300 s' % server.id in str(e.value)
    assert 'openstack iso build delete b-1' in str(e.value)
    # the images are deleted even so
    cloud.delete_image.assert_called_once_with(conn, 'blank',
                                               ignore_missing=True)
