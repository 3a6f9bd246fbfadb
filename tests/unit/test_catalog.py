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

"""isoplugin.catalog, request by request."""

from unittest import mock

import fixtures
from openstack.compute.v2 import server as _server
from openstack.test import fakes
import testtools

from isoplugin import catalog
from isoplugin import conf as iso_conf
from isoplugin import exception
from isoplugin import glance
from tests.tools import make_test_iso
from tests.unit import test_glance

IMAGE_ID = test_glance.IMAGE_ID


class CatalogTestCase(test_glance.GlanceTestCase):

    def setUp(self):
        super().setUp()
        self.conf = iso_conf.load_config(config_files=[])
        self.cat = catalog.Catalog(self.cloud, self.conf)
        self.project = self.cloud.current_project_id
        admin = mock.patch.object(catalog.Catalog, 'is_admin',
                                  return_value=False)
        self.is_admin = admin.start()
        self.addCleanup(admin.stop)

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

    def test_show_adds_servers_and_projects(self):
        server = fakes.generate_fake_resource(
            _server.Server, name='web1', image={'id': IMAGE_ID},
            metadata={})
        other = fakes.generate_fake_resource(
            _server.Server, name='db', image={'id': 'other'}, metadata={})
        member = {'image_id': IMAGE_ID, 'member_id': 'p2',
                  'status': 'accepted', 'schema': '/v2/schemas/member',
                  'created_at': '2026-01-01T00:00:00Z',
                  'updated_at': '2026-01-01T00:00:00Z'}
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(visibility='shared', tags=['a'])),
            dict(method='GET', uri=self.url('images', IMAGE_ID, 'members'),
                 json={'members': [member]}),
        ])
        with mock.patch.object(self.cloud.compute, 'servers',
                               return_value=[server, other]):
            info = self.cat.show(IMAGE_ID)

        self.assertEqual([{'id': server.id, 'name': 'web1'}],
                         info['servers'])
        self.assertEqual([('p2', 'accepted')],
                         [(m['member_id'], m['status'])
                          for m in info['projects']])
        self.assertEqual('shared', info['visibility'])
        self.assertEqual(['a'], info['tags'])
        self.assert_calls()

    def test_show_hides_projects_from_others(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(visibility='shared', owner='someone')),
            dict(method='GET', uri=self.url('images', IMAGE_ID, 'members'),
                 status_code=403, json={'message': 'not the owner'}),
        ])
        with mock.patch.object(self.cloud.compute, 'servers',
                               return_value=[]):
            info = self.cat.show(IMAGE_ID)

        self.assertEqual(([], []), (info['servers'], info['projects']))
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
        self.assertEqual('cheap', glance.flat(image)['stores'])
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

    def test_restore_reactivates_and_removes_the_mark(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status='deactivated', description='old',
                                 isoplugin_retired='true')),
            dict(method='POST',
                 uri=self.url('images', IMAGE_ID, 'actions', 'reactivate'),
                 status_code=204),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image(),
                 validate=dict(json=[
                     {'op': 'remove', 'path': '/description'},
                     {'op': 'remove', 'path': '/isoplugin_retired'},
                     {'op': 'replace', 'path': '/name', 'value': 'u2'},
                     {'op': 'replace', 'path': '/tags',
                      'value': ['b']}])),
        ])
        with mock.patch.object(self.cat, 'check_name') as check_name:
            image = self.cat.update(IMAGE_ID, restore=True, description='',
                                    name='u2', add_tags=['b'])

        check_name.assert_called_once_with('u2')
        self.assertFalse(self.cat.describe(image)['retired'])
        self.assert_calls()

    def test_nothing_to_change_reads_the_iso_again(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
        ])
        image = self.cat.update(IMAGE_ID, visibility='private',
                                hidden=True)
        self.assertEqual(IMAGE_ID, image.id)
        self.assert_calls()

    def test_making_public_forbidden_is_explained(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 status_code=403,
                 json={'message': 'not allowed to publicize'},
                 validate=dict(json=[{'op': 'replace',
                                      'path': '/visibility',
                                      'value': 'public'}])),
        ])
        with testtools.ExpectedException(
                exception.PermissionDenied,
                'Permission denied: .*not allowed to publicize \\(making '
                'an ISO public needs the admin role, policy '
                'publicize_image\\)'):
            self.cat.update(IMAGE_ID, visibility='public')
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
        self.assertEqual('fast,cheap', glance.flat(image)['stores'])
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

    def test_accept_an_iso_shared_with_us(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(owner='someone', visibility='shared')),
            dict(method='PUT',
                 uri=self.url('images', IMAGE_ID, 'members', self.project),
                 json={'member_id': self.project, 'image_id': IMAGE_ID,
                       'status': 'accepted'},
                 validate=dict(json={'member': self.project,
                                     'status': 'accepted'})),
        ])
        member = self.cat.add_project(IMAGE_ID, self.project, accept=True)
        self.assertEqual(('accepted', self.project),
                         (member['status'], member['member_id']))
        self.assert_calls()

    def test_remove_project_not_a_member(self):
        other = 'f' * 32
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(visibility='shared')),
            dict(method='DELETE',
                 uri=self.url('images', IMAGE_ID, 'members', other),
                 status_code=404),
        ])
        with mock.patch.object(self.cloud.compute, 'servers',
                               return_value=[]):
            with mock.patch.object(self.cloud.identity, 'find_project',
                                   return_value=None):
                with testtools.ExpectedException(
                        exception.NotFound,
                        'Project %s as a member of ISO ubuntu could not be '
                        'found.' % other):
                    self.cat.remove_project(IMAGE_ID, other)
        self.assert_calls()

    def test_delete(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])
        with mock.patch.object(self.cloud.compute, 'servers',
                               return_value=[]):
            self.assertIsNone(self.cat.delete(IMAGE_ID))
        self.assert_calls()

    def test_usage(self):
        self.register_uris([self.usage_uri(count=(3, 10))])
        self.assertEqual({'usage': 3, 'limit': 10},
                         self.cat.usage()['image_count_total'])
        self.assert_calls()


class TestIncomplete(CatalogTestCase):

    QUERY = {'disk_format': 'iso', 'isoplugin_media': 'installer-iso',
             'limit': 100, 'sort': 'name:asc,created_at:asc',
             'status': 'in:queued,saving,uploading,importing'}

    def incomplete_uris(self, *images):
        return [dict(method='GET', uri=self.url('images', os_hidden=h,
                                                **self.QUERY),
                     json={'images': list(images) if h == 'true' else []})
                for h in ('false', 'true')]

    def setUp(self):
        super().setUp()
        import socket

        here = socket.gethostname()
        self.dead = self.image(id='dead', status='saving',
                               created_at='2026-11-29T10:00:00Z',
                               isoplugin_client='%s:999999' % here)
        self.live = self.image(id='live', status='saving',
                               created_at='2026-11-29T10:00:00Z',
                               isoplugin_client=glance.client_id())
        self.elsewhere = self.image(id='elsewhere', status='queued',
                                    created_at='2026-11-29T11:00:00Z',
                                    isoplugin_client='other-host:1')
        now = mock.patch('time.time', return_value=1795953600.0)
        now.start()  # 2026-11-29T12:00:00Z
        self.addCleanup(now.stop)

    def test_incomplete_says_whose_and_how_old(self):
        self.register_uris(self.incomplete_uris(self.dead, self.live,
                                                self.elsewhere))

        found = {u.id: (u.alive, u.age, u.client)
                 for u in self.cat.incomplete()}

        self.assertEqual(False, found['dead'][0])
        self.assertEqual(True, found['live'][0])
        self.assertEqual((None, 3600, 'other-host:1'), found['elsewhere'])
        self.assertEqual(7200, found['dead'][1])
        self.assert_calls()

    def test_delete_incomplete_spares_live_and_young_uploads(self):
        self.register_uris(self.incomplete_uris(
            self.dead, self.live, self.elsewhere) + [
            dict(method='DELETE', uri=self.url('images', 'dead'),
                 status_code=204),
        ])

        deleted = self.cat.delete_incomplete(older_than=5400)

        self.assertEqual(['dead'], [u.id for u in deleted])
        self.assert_calls()

    def test_delete_incomplete_of_other_hosts_by_age(self):
        self.register_uris(self.incomplete_uris(self.elsewhere) + [
            dict(method='DELETE', uri=self.url('images', 'elsewhere'),
                 status_code=204),
        ])

        deleted = self.cat.delete_incomplete()

        self.assertEqual(['elsewhere'], [u.id for u in deleted])
        self.assert_calls()
