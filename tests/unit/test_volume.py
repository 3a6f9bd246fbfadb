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

"""isoplugin.volume, request by request."""

import json
import urllib.parse
import uuid

from isoplugin import exception
from isoplugin import volume
from tests.unit import base as test_base

BLOCK_ENDPOINT = 'https://block-storage.example.com/'

#: Cinder's version document (``GET /``), as Cinder 29 answers.
CINDER_VERSIONS = {'versions': [
    {'id': 'v3.0', 'status': 'CURRENT', 'version': '3.71',
     'min_version': '3.0',
     'links': [{'href': BLOCK_ENDPOINT + 'v3/', 'rel': 'self'}]}]}


class VolumeTestCase(test_base.TestCase):
    """Answers Cinder's version discovery; helpers for its requests."""

    def setUp(self):
        super().setUp()
        self._use_discovery(BLOCK_ENDPOINT, CINDER_VERSIONS)
        self.volume_id = uuid.uuid4().hex

    def volume_url(self, *parts, **query):
        """The URL of a Cinder v3 request of the test project."""
        url = '/'.join([BLOCK_ENDPOINT + 'v3', test_base.PROJECT_ID] +
                       list(parts))
        if query:
            url += '?' + urllib.parse.urlencode(query)
        return url

    def get_volume(self, status, metadata=None, size=10, volume_id=None,
                   code=200):
        """A GET of the volume answering ``status`` (404 when ``None``)."""
        volume_id = volume_id or self.volume_id
        if status is None:
            return dict(method='GET', uri=self.volume_url('volumes',
                                                          volume_id),
                        status_code=404,
                        json={'itemNotFound': {'message': 'gone',
                                               'code': 404}})
        return dict(method='GET', uri=self.volume_url('volumes', volume_id),
                    status_code=code,
                    json={'volume': self.volume_body(status, metadata, size,
                                                     volume_id)})

    def volume_body(self, status, metadata=None, size=10, volume_id=None,
                    bootable=False):
        return {'id': volume_id or self.volume_id, 'status': status,
                'size': size, 'name': 'vol', 'metadata': metadata or {},
                'bootable': 'true' if bootable else 'false'}

    def volume_action(self, body, status_code=202, answer=None):
        return dict(method='POST',
                    uri=self.volume_url('volumes', self.volume_id, 'action'),
                    status_code=status_code, json=answer or {},
                    validate=dict(json=body))


class TestVolume(VolumeTestCase):

    def test_has_service(self):
        self.assertTrue(volume.has_service(self.cloud))
        self.cloud.config.disable_service('block-storage', 'no Cinder')
        self.assertFalse(volume.has_service(self.cloud))
        self.assert_calls()

    def test_create_volume_with_record_and_type(self):
        self.register_uris([
            dict(method='POST', uri=self.volume_url('volumes'),
                 status_code=202,
                 validate=dict(json={'volume': {
                     'name': 'disk', 'size': 12, 'volume_type': 'ceph',
                     'metadata': {'isoplugin_build_id': 'b-1'}}}),
                 json={'volume': self.volume_body('creating', size=12)}),
        ])

        vol = volume.create_volume(
            self.cloud, 'disk', 12, {'isoplugin_build_id': 'b-1'},
            volume_type='ceph')

        self.assertEqual(self.volume_id, vol.id)
        self.assertEqual('creating', vol.status)
        self.assert_calls()

    def test_make_bootable_with_image_metadata(self):
        self.register_uris([
            self.volume_action({'os-set_image_metadata': {
                'metadata': {'hw_disk_bus': 'scsi'}}}, status_code=200,
                answer={'metadata': {'hw_disk_bus': 'scsi'}}),
            self.volume_action({'os-set_bootable': {'bootable': True}},
                               status_code=200),
        ])

        volume.make_bootable(self.cloud, self.volume_id,
                             image_metadata={'hw_disk_bus': 'scsi'})

        self.assert_calls()

    def test_create_volume_over_quota(self):
        self.register_uris([
            dict(method='POST', uri=self.volume_url('volumes'),
                 status_code=413,
                 json={'overLimit': {
                     'message': 'VolumeSizeExceedsAvailableQuota: '
                                'Requested volume or snapshot exceeds '
                                'allowed gigabytes quota.',
                     'code': 413}}),
        ])

        with self.assertRaises(exception.CloudError) as e:
            volume.create_volume(self.cloud, 'disk', 1000, {})

        self.assertIn('over quota', str(e.exception))
        self.assertIn('gigabytes quota', str(e.exception))
        self.assert_calls()

    def test_create_volume_of_a_missing_type(self):
        self.register_uris([
            dict(method='POST', uri=self.volume_url('volumes'),
                 status_code=404,
                 json={'itemNotFound': {
                     'message': 'Volume type with name nope could not be '
                                'found.', 'code': 404}}),
        ])

        with self.assertRaises(exception.NotFound) as e:
            volume.create_volume(self.cloud, 'disk', 1, {},
                                 volume_type='nope')

        self.assertIn('volume type nope', str(e.exception))
        self.assert_calls()

    def test_find_volumes_filters_by_metadata_and_checks_again(self):
        wanted = {'isoplugin_build_id': 'b-1', 'isoplugin_role': 'r'}
        other = uuid.uuid4().hex
        self.register_uris([
            dict(method='GET',
                 uri=self.volume_url(
                     'volumes', 'detail',
                     metadata=json.dumps(wanted, sort_keys=True)),
                 json={'volumes': [
                     self.volume_body('available', metadata=dict(wanted)),
                     # a cloud that ignores the filter answers strangers
                     self.volume_body('available', volume_id=other,
                                      metadata={'isoplugin_build_id':
                                                'b-2'})]}),
        ])

        found = volume.find_volumes(self.cloud, wanted)

        self.assertEqual([self.volume_id], [v.id for v in found])
        self.assert_calls()

    def test_find_volume_gone_is_none(self):
        self.register_uris([self.get_volume(None)])

        self.assertIsNone(volume.find_volume(self.cloud, self.volume_id))
        self.assert_calls()

    def test_get_volume_gone_is_not_found(self):
        self.register_uris([self.get_volume(None)])

        with self.assertRaises(exception.NotFound) as e:
            volume.get_volume(self.cloud, self.volume_id)

        self.assertIn(self.volume_id, str(e.exception))
        self.assert_calls()

    def test_set_metadata_and_image_metadata(self):
        self.register_uris([
            dict(method='POST',
                 uri=self.volume_url('volumes', self.volume_id, 'metadata'),
                 validate=dict(json={'metadata': {'k': 'v'}}),
                 json={'metadata': {'k': 'v'}}),
            self.volume_action({'os-set_image_metadata': {
                'metadata': {'isoplugin_role': 'output-pending'}}},
                status_code=200),
        ])

        volume.set_metadata(self.cloud, self.volume_id, {'k': 'v'})
        volume.set_image_metadata(self.cloud, self.volume_id,
                                  {'isoplugin_role': 'output-pending'})

        self.assert_calls()

    def test_upload_to_image_is_never_forced(self):
        self.register_uris([
            self.volume_action(
                {'os-volume_upload_image': {
                    'image_name': 'img', 'force': False,
                    'disk_format': 'qcow2', 'container_format': 'bare'}},
                answer={'os-volume_upload_image': {
                    'id': self.volume_id, 'image_id': 'image-1',
                    'status': 'uploading', 'image_name': 'img'}}),
        ])

        self.assertEqual('image-1', volume.upload_to_image(
            self.cloud, self.volume_id, 'img', disk_format='qcow2'))
        self.assert_calls()

    def test_upload_of_an_attached_volume_is_refused(self):
        self.register_uris([
            self.volume_action(
                {'os-volume_upload_image': {
                    'image_name': 'img', 'force': False,
                    'disk_format': 'raw', 'container_format': 'bare'}},
                status_code=400,
                answer={'badRequest': {
                    'message': 'Invalid volume: Volume status must be '
                               'available (is in-use)', 'code': 400}}),
        ])

        with self.assertRaises(exception.CloudError) as e:
            volume.upload_to_image(self.cloud, self.volume_id, 'img')

        self.assertIn('must be available', str(e.exception))
        self.assert_calls()

    def test_delete_volume_gone_is_not_an_error(self):
        self.register_uris([
            dict(method='DELETE',
                 uri=self.volume_url('volumes', self.volume_id,
                                     cascade=False, force=False),
                 status_code=404),
        ])

        volume.delete_volume(self.cloud, self.volume_id)

        self.assert_calls()

    def test_wait_for_available(self):
        self.register_uris([
            self.get_volume('creating'),
            self.get_volume('creating'),
            self.get_volume('available'),
        ])

        vol = volume.wait_for_available(self.cloud, self.volume_id, 60)

        self.assertEqual('available', vol.status)
        self.assert_calls()

    def test_wait_for_available_fails_on_error(self):
        self.register_uris([
            self.get_volume('creating'),
            self.get_volume('error'),
        ])

        with self.assertRaises(exception.CloudError) as e:
            volume.wait_for_available(self.cloud, self.volume_id, 60)

        self.assertIn('error', str(e.exception))
        self.assert_calls()

    def test_wait_for_deleted(self):
        self.register_uris([
            self.get_volume('deleting'),
            self.get_volume(None),
        ])

        volume.wait_for_deleted(self.cloud, self.volume_id, 60)

        self.assert_calls()

    def test_limits(self):
        self.register_uris([
            dict(method='GET', uri=self.volume_url('limits'),
                 json={'limits': {'rate': [], 'absolute': {
                     'maxTotalVolumes': 10, 'totalVolumesUsed': 3,
                     'maxTotalVolumeGigabytes': 100,
                     'totalGigabytesUsed': 40}}}),
        ])

        absolute = volume.limits(self.cloud)

        self.assertEqual((10, 3, 100, 40),
                         (absolute.max_total_volumes,
                          absolute.total_volumes_used,
                          absolute.max_total_volume_gigabytes,
                          absolute.total_gigabytes_used))
        self.assert_calls()

    def _delete(self, status_code=202):
        return dict(method='DELETE',
                    uri=self.volume_url('volumes', self.volume_id,
                                        cascade=False, force=False),
                    status_code=status_code)

    def test_delete_and_wait_waits_for_the_upload(self):
        self.register_uris([
            self.get_volume('uploading'),
            self.get_volume('uploading'),
            self.get_volume('available'),
            self._delete(),
            self.get_volume('deleting'),
            self.get_volume(None),
        ])

        volume.delete_volume_and_wait(self.cloud, self.volume_id, 60)

        self.assert_calls()

    def test_delete_and_wait_asks_again_when_it_is_back(self):
        # an upload that fails after the deletion was accepted puts the
        # volume back to available: it is deleted again, not waited out
        self.register_uris([
            self.get_volume('available'),
            self._delete(),
            self.get_volume('available'),
            self._delete(),
            self.get_volume('deleting'),
            self.get_volume(None),
        ])

        volume.delete_volume_and_wait(self.cloud, self.volume_id, 60)

        self.assert_calls()

    def test_delete_and_wait_deletes_a_volume_in_error(self):
        self.register_uris([
            self.get_volume('error'),
            self._delete(),
            self.get_volume(None),
        ])

        volume.delete_volume_and_wait(self.cloud, self.volume_id, 60)

        self.assert_calls()

    def test_delete_and_wait_gone_is_not_an_error(self):
        self.register_uris([self.get_volume(None)])

        volume.delete_volume_and_wait(self.cloud, self.volume_id, 60)

        self.assert_calls()

    def test_delete_and_wait_error_deleting(self):
        self.register_uris([
            self.get_volume('deleting'),
            self.get_volume('error_deleting'),
        ])

        with self.assertRaises(exception.CloudError) as e:
            volume.delete_volume_and_wait(self.cloud, self.volume_id, 60)

        self.assertIn('error_deleting', str(e.exception))
        self.assert_calls()
