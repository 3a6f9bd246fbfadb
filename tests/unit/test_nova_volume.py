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

"""The nova-volume backend, request by request."""

import json
import os
from unittest import mock
import uuid

from oslo_config import cfg

from isoplugin import backends
from isoplugin.backends import base
from isoplugin.backends import nova_volume
from isoplugin import build as build_mod
from isoplugin import conf as iso_conf
from isoplugin import exception
from tests.unit import fake_backend
from tests.unit import test_nova_rescue
from tests.unit import test_volume

GROUP = 'backend_nova_volume'
#: the entry point setup.cfg declares
ENTRY_POINT = {'nova-volume': 'isoplugin.backends.nova_volume:'
                              'NovaVolumeBackend'}
RECORD = {'isoplugin_build_id': 'b-123', 'isoplugin_role': 'system-volume'}


class TestNovaVolume(test_volume.VolumeTestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        iso_conf.register_opts(self.conf)
        self.conf(args=[], default_config_files=[])
        self.backend = nova_volume.NovaVolumeBackend(self.conf)
        self.server_id = uuid.uuid4().hex
        self.waited = []
        self.ctx = base.BuildContext(
            build_id='b-123', conn=self.cloud, conf=self.conf,
            request=build_mod.BuildRequest(iso='x', name='img'),
            iso=mock.Mock(id='iso-1', min_disk=0, min_ram=0),
            resources=base.BuildResources(),
            wait=self._wait,
            record_fields=lambda role: {'isoplugin_build_id': 'b-123',
                                        'isoplugin_role': role})
        path = test_nova_rescue.version_file('2.96')
        self.addCleanup(os.unlink, path)
        self.use_compute_discovery(compute_version_json=path)

    # polls without sleeping, as the pipeline's wait would
    _wait = test_nova_rescue.TestNovaRescue._wait

    # -- requests -----------------------------------------------------------

    def _compute(self, *parts):
        return self.get_mock_url('compute', 'public', append=list(parts))

    def _server(self, status, power_state=1, task_state=None, code=200):
        body = {'id': self.server_id, 'name': 'srv', 'status': status,
                'OS-EXT-STS:power_state': power_state,
                'OS-EXT-STS:task_state': task_state, 'metadata': {}}
        return dict(method='GET', uri=self._compute('servers',
                                                    self.server_id),
                    status_code=code, json={'server': body})

    def _server_action(self, body, status_code=202):
        return dict(method='POST',
                    uri=self._compute('servers', self.server_id, 'action'),
                    status_code=status_code, json={},
                    validate=dict(json=body))

    def _find(self, *volumes, metadata=RECORD):
        return dict(method='GET',
                    uri=self.volume_url(
                        'volumes', 'detail',
                        metadata=json.dumps(metadata, sort_keys=True)),
                    json={'volumes': list(volumes)})

    def _flavor(self, flavor_id='f-zero', disk=0, ram=1024):
        return dict(method='GET', uri=self._compute('flavors', flavor_id),
                    json={'flavor': {'id': flavor_id, 'name': flavor_id,
                                     'disk': disk, 'ram': ram, 'vcpus': 1}})

    def _limits(self, volumes=(10, 0), gigabytes=(100, 0)):
        return dict(method='GET', uri=self.volume_url('limits'),
                    json={'limits': {'rate': [], 'absolute': {
                        'maxTotalVolumes': volumes[0],
                        'totalVolumesUsed': volumes[1],
                        'maxTotalVolumeGigabytes': gigabytes[0],
                        'totalGigabytesUsed': gigabytes[1]}}})

    def _installed(self):
        return dict(RECORD, isoplugin_volume_state='installed')

    # -- checks -------------------------------------------------------------

    def test_options_in_their_own_group(self):
        self.assertEqual(GROUP, self.backend.config_group())
        self.assertEqual(10, self.backend.options.volume_size)
        self.assertEqual('raw', self.backend.options.upload_disk_format)

    def test_loaded_by_name_with_its_options_listed(self):
        conf = cfg.ConfigOpts()
        iso_conf.register_opts(conf)
        conf(args=[], default_config_files=[])
        with fake_backend.registered_backends(ENTRY_POINT):
            backend = backends.get_backend(conf, 'nova-volume')
            listed = dict(iso_conf.list_opts())

        self.assertIsInstance(backend, nova_volume.NovaVolumeBackend)
        self.assertEqual('volume', conf.backend_nova_volume.verify_boot)
        self.assertEqual(
            ['hw_disk_bus', 'image_properties', 'min_compute_microversion',
             'min_ram', 'server_name_prefix', 'upload_disk_format',
             'verify_boot', 'volume_size', 'volume_type'],
            [o.name for o in listed[GROUP]])

    def test_check_cloud_without_block_storage(self):
        self.cloud.config.disable_service('block-storage', 'no Cinder')

        with self.assertRaises(exception.CloudUnsupported) as e:
            self.backend.check_cloud(self.cloud)

        self.assertIn('no Block Storage (Cinder) service', str(e.exception))
        self.assertIn('--backend nova-rescue', str(e.exception))
        self.assert_calls()

    def test_check_cloud_refuses_old_microversion(self):
        path = test_nova_rescue.version_file('2.60')
        self.addCleanup(os.unlink, path)
        self.use_compute_discovery(compute_version_json=path)

        with self.assertRaises(exception.CloudUnsupported) as e:
            self.backend.check_cloud(self.cloud)

        self.assertIn('2.87 or later', str(e.exception))
        self.assertIn('up to 2.60', str(e.exception))
        self.assert_calls()

    def test_check_cloud_accepts(self):
        self.backend.check_cloud(self.cloud)

        self.assert_calls()

    def test_check_request_takes_a_zero_disk_flavor(self):
        self.ctx.request.flavor = 'f-zero'
        self.register_uris([self._flavor(), self._limits()])

        self.backend.check_request(self.ctx)

        self.assert_calls()

    def test_check_request_unknown_volume_type(self):
        self.ctx.request.flavor = 'f-zero'
        self.conf.set_override('volume_type', 'nope', group=GROUP)
        self.register_uris([
            self._flavor(),
            dict(method='GET',
                 uri=self.volume_url('types', 'nope', is_public='none'),
                 status_code=404),
            dict(method='GET',
                 uri=self.volume_url('types', is_public='none'),
                 json={'volume_types': [{'id': 't1', 'name': 'ceph'}]}),
        ])

        with self.assertRaises(exception.InvalidInput) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('no volume type nope', str(e.exception))
        self.assertIn('[backend_nova_volume] volume_type', str(e.exception))
        self.assert_calls()

    def test_check_request_image_verify_on_a_zero_disk_flavor(self):
        self.ctx.request.flavor = 'f-zero'
        self.ctx.request.verify = True
        self.conf.set_override('verify_boot', 'image', group=GROUP)
        self.register_uris([self._flavor()])

        with self.assertRaises(exception.InvalidInput) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('f-zero has a 0 GiB root disk', str(e.exception))
        self.assertIn('verify_boot = volume', str(e.exception))
        self.assert_calls()

    def test_check_request_over_the_gigabytes_quota(self):
        self.ctx.request.flavor = 'f-zero'
        self.ctx.request.disk_size = 20
        self.register_uris([self._flavor(),
                            self._limits(gigabytes=(50, 40))])

        with self.assertRaises(exception.QuotaExceeded) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('gigabytes would be 60, the limit is 50',
                      str(e.exception))
        self.assert_calls()

    def test_check_request_over_the_volumes_quota(self):
        self.ctx.request.flavor = 'f-zero'
        self.register_uris([self._flavor(), self._limits(volumes=(2, 2))])

        with self.assertRaises(exception.QuotaExceeded) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('volumes would be 3, the limit is 2', str(e.exception))
        self.assert_calls()

    def test_check_request_unlimited_quota(self):
        self.ctx.request.flavor = 'f-zero'
        self.register_uris([self._flavor(),
                            self._limits(volumes=(-1, 50),
                                         gigabytes=(-1, 5000))])

        self.backend.check_request(self.ctx)

        self.assert_calls()

    def test_size_from_disk_size_flavor_option_and_min_disk(self):
        flavor = mock.Mock(disk=0)
        self.assertEqual(10, self.backend._size(self.ctx, flavor))
        flavor.disk = 5
        self.assertEqual(5, self.backend._size(self.ctx, flavor))
        self.ctx.request.disk_size = 7
        self.assertEqual(7, self.backend._size(self.ctx, flavor))
        self.ctx.iso.min_disk = 9
        self.assertEqual(9, self.backend._size(self.ctx, flavor))

    # -- prepare ------------------------------------------------------------

    def test_prepare_creates_the_volume_with_record_and_bus(self):
        self.ctx.request.flavor = 'f-zero'
        self.conf.set_override('hw_disk_bus', 'scsi', group=GROUP)
        self.register_uris([
            self._flavor(),
            self._find(),
            dict(method='POST', uri=self.volume_url('volumes'),
                 status_code=202,
                 validate=dict(json={'volume': {
                     'name': 'isoplugin-build-disk-b-123', 'size': 10,
                     'metadata': RECORD}}),
                 json={'volume': self.volume_body('creating')}),
            self.get_volume('creating'),
            self.get_volume('available'),
            # Nova boots only from a volume marked bootable
            self.volume_action({'os-set_image_metadata': {
                'metadata': {'hw_disk_bus': 'scsi'}}}, status_code=200),
            self.volume_action({'os-set_bootable': {'bootable': True}},
                               status_code=200),
        ])

        self.backend.prepare(self.ctx)

        self.assertEqual('f-zero', self.ctx.resources.flavor_id)
        self.assertEqual(10, self.ctx.resources.disk_gb)
        self.assertEqual(['the system volume to become available'],
                         self.waited)
        self.assert_calls()

    def test_prepare_on_resume_keeps_the_volume(self):
        self.ctx.request.flavor = 'f-zero'
        self.register_uris([
            self._flavor(),
            self._find(self.volume_body('available', RECORD, size=12,
                                        bootable=True)),
        ])

        self.backend.prepare(self.ctx)

        self.assertEqual(12, self.ctx.resources.disk_gb)
        self.assertEqual([], self.waited)
        self.assert_calls()

    def test_prepare_on_resume_replaces_a_volume_in_error(self):
        self.ctx.request.flavor = 'f-zero'
        fresh = uuid.uuid4().hex
        self.register_uris([
            self._flavor(),
            self._find(self.volume_body('error', RECORD)),
            dict(method='DELETE',
                 uri=self.volume_url('volumes', self.volume_id,
                                     cascade=False, force=False),
                 status_code=202),
            dict(method='POST', uri=self.volume_url('volumes'),
                 status_code=202,
                 json={'volume': self.volume_body('available',
                                                  volume_id=fresh)}),
            dict(method='POST',
                 uri=self.volume_url('volumes', fresh, 'action'),
                 validate=dict(json={'os-set_image_metadata': {
                     'metadata': {'hw_disk_bus': 'virtio'}}})),
            dict(method='POST',
                 uri=self.volume_url('volumes', fresh, 'action'),
                 validate=dict(json={'os-set_bootable': {
                     'bootable': True}})),
        ])

        self.backend.prepare(self.ctx)

        self.assertEqual(fresh, self.backend._volumes['b-123'])
        self.assert_calls()

    # -- boot ---------------------------------------------------------------

    def test_boot_from_the_volume_without_an_image(self):
        self.ctx.resources.flavor_id = 'f-zero'
        self.register_uris([
            self._find(self.volume_body('available', RECORD)),
            dict(method='POST', uri=self._compute('servers'),
                 validate=dict(json={'server': {
                     'name': 'isoplugin-build-b-123', 'flavorRef': 'f-zero',
                     'networks': 'none',
                     'metadata': {'isoplugin_build_id': 'b-123',
                                  'isoplugin_role': 'build-server'},
                     'block_device_mapping_v2': [{
                         'uuid': self.volume_id, 'source_type': 'volume',
                         'destination_type': 'volume', 'boot_index': 0,
                         'delete_on_termination': False}]}}),
                 json={'server': {'id': self.server_id, 'status': 'BUILD'}}),
            self._server('BUILD', task_state='block_device_mapping'),
            self._server('ACTIVE'),
        ])

        self.backend.boot(self.ctx)

        self.assertEqual(self.server_id, self.ctx.resources.server_id)
        self.assert_calls()

    def test_boot_on_resume_of_an_installed_volume_boots_nothing(self):
        self.register_uris([
            self._find(self.volume_body('available', self._installed())),
        ])

        self.backend.boot(self.ctx)
        self.backend.start_install(self.ctx)

        self.assertIsNone(self.ctx.resources.server_id)
        self.assertEqual(base.InstallState.FINISHED,
                         self.backend.install_state(self.ctx)[0])
        self.assert_calls()

    def test_start_install_rescues_with_the_iso(self):
        self.ctx.resources.server_id = self.server_id
        self.register_uris([
            self._server('ACTIVE'),
            dict(self._server_action({'rescue': {
                'rescue_image_ref': 'iso-1'}}, status_code=200),
                json={'adminPass': 'x'}),
        ])

        self.backend.start_install(self.ctx)

        self.assert_calls()

    # -- detach -------------------------------------------------------------

    def test_detach_stops_marks_and_deletes_the_server(self):
        self.ctx.resources.server_id = self.server_id
        self.register_uris([
            self._find(self.volume_body('in-use', RECORD)),
            self._server('RESCUE', power_state=4),
            self._server_action({'unrescue': None}),
            self._server('ACTIVE'),
            self._server_action({'os-stop': None}),
            self._server('SHUTOFF', power_state=4),
            dict(method='POST',
                 uri=self.volume_url('volumes', self.volume_id, 'metadata'),
                 validate=dict(json={'metadata': {
                     'isoplugin_volume_state': 'installed'}}),
                 json={'metadata': self._installed()}),
            dict(method='DELETE',
                 uri=self._compute('servers', self.server_id),
                 status_code=204),
            self._server('SHUTOFF', task_state='deleting'),
            self._server(None, code=404),
            self.get_volume('detaching'),
            self.get_volume('available'),
        ])

        self.backend.detach(self.ctx)

        self.assertIsNone(self.ctx.resources.server_id)
        self.assert_calls()

    def test_detach_on_resume_after_the_server_is_gone(self):
        self.register_uris([
            self._find(self.volume_body('available', self._installed())),
            self.get_volume('available'),
        ])

        self.backend.detach(self.ctx)

        self.assert_calls()

    # -- snapshot and release -----------------------------------------------

    def test_snapshot_uploads_the_volume_carrying_the_record(self):
        self.conf.set_override('upload_disk_format', 'qcow2', group=GROUP)
        self.register_uris([
            self._find(self.volume_body('available', self._installed())),
            self.volume_action({'os-set_image_metadata': {'metadata': {
                'hw_disk_bus': 'virtio', 'isoplugin_build_id': 'b-123',
                'isoplugin_role': 'output-pending'}}}, status_code=200),
            self.volume_action(
                {'os-volume_upload_image': {
                    'image_name': 'img', 'force': False,
                    'disk_format': 'qcow2', 'container_format': 'bare'}},
                answer={'os-volume_upload_image': {'image_id': 'out-1'}}),
        ])

        image_id = self.backend.snapshot(
            self.ctx, 'img', {'isoplugin_build_id': 'b-123',
                              'isoplugin_role': 'output-pending'})

        self.assertEqual('out-1', image_id)
        self.assert_calls()
        # never createImage: no request went to Nova
        self.assertFalse([r for r in self.adapter.request_history
                          if 'compute' in r.url and r.method == 'POST'])

    def test_release_waits_for_the_upload_then_deletes_the_volume(self):
        by_build = {'isoplugin_build_id': 'b-123'}
        self.register_uris([
            self._find(self.volume_body('uploading', self._installed()),
                       metadata=by_build),
            self.get_volume('uploading'),
            self.get_volume('available'),
            dict(method='DELETE',
                 uri=self.volume_url('volumes', self.volume_id,
                                     cascade=False, force=False),
                 status_code=202),
            self.get_volume('deleting'),
            self.get_volume(None),
        ])

        self.backend.release(self.ctx)

        self.assertEqual(['the build volume to be deleted'], self.waited)
        self.assert_calls()

    def test_release_error_deleting(self):
        self.register_uris([
            self._find(self.volume_body('available', self._installed()),
                       metadata={'isoplugin_build_id': 'b-123'}),
            self.get_volume('error_deleting'),
        ])

        with self.assertRaises(exception.CloudError) as e:
            self.backend.release(self.ctx)

        self.assertIn('could not delete the volume %s' % self.volume_id,
                      str(e.exception))
        self.assert_calls()

    # -- verify and failures ------------------------------------------------

    def test_verify_boots_from_a_new_volume_by_default(self):
        self.ctx.resources = base.BuildResources(flavor_id='f-zero',
                                                 disk_gb=12)

        args = self.backend.verify_server_args(self.ctx, 'out-1')

        self.assertEqual([{'uuid': 'out-1', 'source_type': 'image',
                           'destination_type': 'volume', 'boot_index': 0,
                           'volume_size': 12,
                           'delete_on_termination': True}],
                         args['block_device_mapping'])
        self.assertNotIn('image_id', args)
        self.conf.set_override('verify_boot', 'image', group=GROUP)
        self.assertEqual('out-1', self.backend.verify_server_args(
            self.ctx, 'out-1')['image_id'])

    def test_describe_failure_of_the_volume(self):
        self.register_uris([
            self._find(self.volume_body('error', RECORD)),
        ])

        self.assertEqual('the system volume %s is in error' % self.volume_id,
                         self.backend.describe_failure(self.ctx))
        self.assert_calls()
