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

"""isoplugin.catalog, request by request (openstacksdk's test base)."""

import hashlib
import os
from unittest import mock
import urllib.parse

import fixtures
from openstack.compute.v2 import server as _server
from openstack.test import fakes
import testtools

from isoplugin import catalog
from isoplugin import conf as iso_conf
from isoplugin import exception
from tests.tools import make_test_iso
from tests.unit import base

IMAGE_ID = 'a1b2c3d4-0000-4000-8000-000000000001'


class CatalogTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.use_glance()
        self.conf = iso_conf.load_config(config_files=[])
        self.cat = catalog.Catalog(self.cloud, self.conf)
        self.cat.parallel_checks = False
        self.project = self.cloud.current_project_id
        admin = mock.patch.object(catalog.Catalog, 'is_admin',
                                  return_value=False)
        self.is_admin = admin.start()
        self.addCleanup(admin.stop)
        sleep = mock.patch('time.sleep')
        sleep.start()
        self.addCleanup(sleep.stop)

    def url(self, *parts, **qs):
        url = self.get_mock_url('image', append=list(parts),
                                base_url_append='v2')
        if qs:
            url += '?' + urllib.parse.urlencode(qs)
        return url

    def image(self, **kw):
        body = {'id': IMAGE_ID, 'name': 'ubuntu', 'status': 'active',
                'disk_format': 'iso', 'container_format': 'bare',
                'visibility': 'private', 'protected': False,
                'os_hidden': True, 'owner': self.project,
                'isoplugin_media': 'installer-iso', 'stores': 'fast',
                'tags': [], 'size': 1024, 'os_hash_algo': 'sha512',
                'os_hash_value': None}
        body.update(kw)
        return body

    def list_uris(self, name, images=(), hidden_images=()):
        query = {'disk_format': 'iso', 'isoplugin_media': 'installer-iso',
                 'limit': 100, 'sort': 'name:asc,created_at:asc',
                 'name': name, 'owner': self.project}
        return [
            dict(method='GET', uri=self.url('images', os_hidden='false',
                                            **query),
                 json={'images': list(images)}),
            dict(method='GET', uri=self.url('images', os_hidden='true',
                                            **query),
                 json={'images': list(hidden_images)}),
        ]

    def usage_uri(self, count=(1, 100), size=(10, 51200)):
        return dict(method='GET', uri=self.url('info', 'usage'),
                    json={'usage': {
                        'image_count_total': {'usage': count[0],
                                              'limit': count[1]},
                        'image_size_total': {'usage': size[0],
                                             'limit': size[1]}}})

    def make_iso(self, **kw):
        path = self.useFixture(fixtures.TempDir()).join('u.iso')
        kw.setdefault('volume_id', 'UBUNTU_24_04_AMD64')
        make_test_iso.make_iso(path, **kw)
        return path


def _consume(received):
    """A requests-mock body callback that reads the streamed body."""
    def callback(request, context):
        received.append(b''.join(request.body))
        context.status_code = 204
        return ''
    return callback


class TestCreate(CatalogTestCase):

    def test_create_from_file(self):
        # sent chunked by default ([glance] chunked_upload), as
        # glanceclient does
        path = self.make_iso(eltorito=True)
        self._create_from_file(path, {'Transfer-Encoding': 'chunked'})

    def test_create_from_file_with_content_length(self):
        self.conf.set_override('chunked_upload', False, group='glance')
        path = self.make_iso(eltorito=True)
        self._create_from_file(
            path, {'Content-Length': str(os.path.getsize(path))})

    def _create_from_file(self, path, headers):
        data = open(path, 'rb').read()
        digest = hashlib.sha512(data).hexdigest()
        notes = []
        progress = []
        received = []
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued'),
                 validate=dict(json={
                     'name': 'ubuntu', 'disk_format': 'iso',
                     'container_format': 'bare', 'visibility': 'private',
                     'protected': False, 'os_hidden': True, 'tags': [],
                     'isoplugin_media': 'installer-iso',
                     'isoplugin_featured': 'false',
                     'isoplugin_extractable': 'true',
                     'isoplugin_password_enabled': 'false',
                     'hw_cdrom_bus': 'sata', 'hw_rescue_device': 'cdrom',
                     'hw_rescue_bus': 'sata', 'os_type': 'linux',
                     'os_distro': 'ubuntu', 'os_version': '24.04',
                     'architecture': 'x86_64'})),
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume(received),
                 validate=dict(headers=dict(
                     headers, **{'Content-Type': 'application/octet-stream'}
                 ))),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=digest)),
        ])

        image = self.cat.create('ubuntu', filename=path, notify=notes.append,
                                progress=lambda d, t: progress.append(d))

        self.assertEqual(IMAGE_ID, image.id)
        self.assertEqual(len(data), progress[-1])
        self.assertIn('Detected: os_type=linux, os_distro=ubuntu, '
                      'os_version=24.04, architecture=x86_64', notes)
        self.assertIn('Verified: Glance sha512 matches the client', notes)
        self.assertEqual([data], received)
        self.assert_calls()

    def test_hash_mismatch_deletes_the_image(self):
        path = self.make_iso()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued')),
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value='0' * 128)),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(exception.ChecksumMismatch,
                                         '.*The image was deleted'):
            self.cat.create('ubuntu', filename=path)
        self.assert_calls()

    def test_expected_checksum_mismatch_deletes_the_image(self):
        path = self.make_iso()
        digest = hashlib.sha512(open(path, 'rb').read()).hexdigest()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued')),
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=digest)),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.ChecksumMismatch,
                'Checksum mismatch for .*: expected sha256 0+'):
            self.cat.create('ubuntu', filename=path,
                            checksum='sha256:' + '0' * 64)
        self.assert_calls()

    def test_upload_refused_deletes_the_image(self):
        path = self.make_iso()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued')),
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 status_code=413,
                 json={'message': 'Project is over a limit'}),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(exception.CloudError,
                                         '.*over quota.*over a limit'):
            self.cat.create('ubuntu', filename=path)
        self.assert_calls()

    def test_parallel_checks_refuse_duplicate(self):
        path = self.make_iso()
        self.cat.parallel_checks = True
        self.register_uris(self.list_uris(
            'ubuntu', hidden_images=[self.image()]) + [self.usage_uri()])

        with testtools.ExpectedException(exception.DuplicateISO):
            self.cat.create('ubuntu', filename=path)
        methods = [(r.method, urllib.parse.urlsplit(r.url).path)
                   for r in self.adapter.request_history]
        self.assertIn(('GET', '/v2/info/usage'), methods)
        self.assertNotIn(('POST', '/v2/images'), methods)

    def test_duplicate_name_refused_before_upload(self):
        path = self.make_iso()
        self.register_uris(self.list_uris(
            'ubuntu', hidden_images=[self.image()]))

        with testtools.ExpectedException(exception.DuplicateISO,
                                         ".*named 'ubuntu'"):
            self.cat.create('ubuntu', filename=path)
        self.assert_calls()

    def test_over_quota_refused_before_upload(self):
        path = self.make_iso()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(count=(100, 100))])

        with testtools.ExpectedException(
                exception.QuotaExceeded,
                '.*image_count_total would be 101, the limit is 100'):
            self.cat.create('ubuntu', filename=path)
        self.assert_calls()

    def test_public_as_member_gets_a_clear_message(self):
        path = self.make_iso()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'), status_code=403,
                 headers={'Content-Type': 'text/html'},
                 text='<h1>403 Forbidden</h1> You are not authorized to '
                      'complete publicize_image action.'),
        ])

        with testtools.ExpectedException(
                exception.PermissionDenied,
                '.*only an administrator can make an ISO public.*'
                'publicize_image'):
            self.cat.create('ubuntu', filename=path, visibility='public')
        self.assert_calls()

    def test_bad_arguments_make_no_request(self):
        path = self.make_iso()
        for kwargs, message in [
                ({'visibility': 'secret'}, "unknown visibility 'secret'"),
                ({'os_type': 'beos'}, "unknown os_type 'beos'"),
                ({'architecture': 'z80'}, "unknown architecture 'z80'"),
                ({'checksum': 'sha1:12'}, 'a sha1 digest is 40'),
                ({'min_ram': -1}, 'min_ram must be'),
                ({'url': 'http://x/y.iso'}, 'either a file or a URL')]:
            with testtools.ExpectedException(exception.InvalidInput,
                                             '.*' + message):
                self.cat.create('ubuntu', filename=path, **kwargs)
        with testtools.ExpectedException(exception.InvalidInput,
                                         '.*Glance allows 255'):
            self.cat.create('x' * 256, filename=path)
        with testtools.ExpectedException(exception.InvalidInput,
                                         '.*only http:// and https://'):
            self.cat.create('ubuntu', url='file:///etc/passwd')
        # nothing but authentication reached the cloud
        self.assertEqual(
            {'identity.example.com'},
            {urllib.parse.urlsplit(r.url).netloc
             for r in self.adapter.request_history})


class TestListGet(CatalogTestCase):

    def test_list_follows_pages_and_hidden(self):
        query = {'disk_format': 'iso', 'isoplugin_media': 'installer-iso',
                 'limit': 100, 'sort': 'name:asc,created_at:asc'}
        second = dict(query, marker='m1')
        self.register_uris([
            dict(method='GET', uri=self.url('images', os_hidden='false',
                                            **query),
                 json={'images': [self.image(id='m1', name='b')],
                       'next': '/v2/images?marker=m1&limit=100'}),
            dict(method='GET', uri=self.url('images', os_hidden='false',
                                            **second),
                 json={'images': [self.image(id='m2', name='a')]}),
            dict(method='GET', uri=self.url('images', os_hidden='true',
                                            **query),
                 json={'images': [self.image(id='m3', name='c')]}),
        ])

        names = [i.name for i in self.cat.list()]

        self.assertEqual(['a', 'b', 'c'], names)
        self.assert_calls()

    def test_get_refuses_non_iso(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(disk_format='qcow2')),
        ])
        with testtools.ExpectedException(exception.ISONotFound):
            self.cat.get(IMAGE_ID)
        self.assert_calls()


class TestChangeDelete(CatalogTestCase):

    def test_delete_protected_refused(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(protected=True)),
        ])
        with testtools.ExpectedException(
                exception.ISOProtected,
                ".*'ubuntu' is protected.*--unprotected"):
            self.cat.delete(IMAGE_ID)
        self.assert_calls()

    def test_delete_in_use_refused(self):
        server = fakes.generate_fake_resource(
            _server.Server, name='web1',
            image={'id': 'other-image'},
            metadata={'isoplugin_iso_id': IMAGE_ID})
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
        ])
        with mock.patch.object(self.cloud.compute, 'servers',
                               return_value=[server]) as servers:
            with testtools.ExpectedException(
                    exception.ISOInUse,
                    ".*in use by 1 server.*web1"):
                self.cat.delete(IMAGE_ID)
        servers.assert_called_once_with(details=True)
        self.assert_calls()

    def test_delete_from_one_store(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(stores='fast,cheap')),
            dict(method='DELETE', uri=self.url('stores', 'fast', IMAGE_ID),
                 status_code=204),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(stores='cheap')),
        ])
        image = self.cat.delete(IMAGE_ID, stores=['fast'])
        self.assertEqual('cheap', catalog.flat(image)['stores'])
        self.assert_calls()

    def test_delete_every_store_refused(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(stores='fast')),
        ])
        with testtools.ExpectedException(exception.InvalidInput,
                                         '.*hold every copy'):
            self.cat.delete(IMAGE_ID, stores=['fast'])
        self.assert_calls()

    def test_retire(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hidden=False)),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image(isoplugin_retired='true'),
                 validate=dict(json=[
                     {'op': 'add', 'path': '/isoplugin_retired',
                      'value': 'true'},
                     {'op': 'replace', 'path': '/os_hidden',
                      'value': True}])),
            dict(method='POST',
                 uri=self.url('images', IMAGE_ID, 'actions', 'deactivate'),
                 status_code=204),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(isoplugin_retired='true',
                                 status='deactivated')),
        ])
        image = self.cat.update(IMAGE_ID, retire=True)
        self.assertTrue(self.cat.describe(image)['retired'])
        self.assert_calls()

    def test_copy_forbidden_is_explained(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
            dict(method='GET', uri=self.url('info', 'stores'),
                 json={'stores': [{'id': 'cheap'},
                                  {'id': 'fast', 'default': True}]}),
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=403,
                 json={'message': 'You are not authorized to complete '
                                  'copy_image action.'},
                 validate=dict(json={
                     'method': {'name': 'copy-image'}, 'stores': ['cheap'],
                     'all_stores_must_succeed': False})),
        ])
        with testtools.ExpectedException(
                exception.PermissionDenied,
                '.*copy_image action.*administrators only'):
            self.cat.copy(IMAGE_ID, stores=['cheap'])
        self.assert_calls()

    def test_copy_waits_per_store(self):
        events = []
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
            dict(method='GET', uri=self.url('info', 'stores'),
                 json={'stores': [{'id': 'fast', 'default': True},
                                  {'id': 'cheap'}]}),
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=202),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_glance_importing_to_stores='cheap')),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(stores='fast,cheap')),
        ])
        image = self.cat.copy(IMAGE_ID, all_stores=True,
                              progress=lambda s, st: events.append((s, st)))
        self.assertEqual([('cheap', 'copying'), ('cheap', 'done')], events)
        self.assertEqual('fast,cheap', catalog.flat(image)['stores'])
        self.assert_calls()

    def test_share_private_iso_makes_it_shared(self):
        other = 'f' * 32
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image(visibility='shared'),
                 validate=dict(json=[{'op': 'replace',
                                      'path': '/visibility',
                                      'value': 'shared'}])),
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'members'),
                 json={'member_id': other, 'status': 'pending'},
                 validate=dict(json={'member': other})),
        ])
        with mock.patch.object(self.cloud.identity, 'find_project',
                               side_effect=exception.PermissionDenied(
                                   reason='no')):
            member = self.cat.add_project(IMAGE_ID, other)
        self.assertEqual('pending', member['status'])
        self.assert_calls()

    def test_usage(self):
        self.register_uris([self.usage_uri(count=(3, 10))])
        self.assertEqual({'usage': 3, 'limit': 10},
                         self.cat.usage()['image_count_total'])
        self.assert_calls()
