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

"""isoplugin.glance, request by request."""

from unittest import mock

import testtools

import fixtures
import requests

from isoplugin import conf as iso_conf
from isoplugin import exception
from isoplugin import glance
from tests.unit import base

IMAGE_ID = 'a1b2c3d4-0000-4000-8000-000000000001'
PROJECT = 'b2c3d4e5f60718293a4b5c6d7e8f9012'


def disconnected():
    """What requests raises when the server closes without answering."""
    import http.client

    import urllib3

    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError(
            'Connection aborted.',
            http.client.RemoteDisconnected('Remote end closed connection')))


def refused():
    """What requests raises when nothing listens on the port."""
    import urllib3

    cause = urllib3.exceptions.NewConnectionError(
        None, 'Failed to establish a new connection: [Errno 111] '
              'Connection refused')
    cause.__cause__ = ConnectionRefusedError(111, 'Connection refused')
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, '/v2', cause))


def raising(make, drain=False):
    """A requests-mock answer that raises what ``make()`` returns.

    :param drain: read a streamed request body first (the server went
        away during the upload).
    """
    def callback(request, context):
        if drain:
            b''.join(request.body)
        raise make()
    return callback


class _RetryConf(fixtures.Fixture):
    """isoplugin's options with 2 retries of each kind, no delay."""

    def _setUp(self):
        self.conf = iso_conf.load_config(config_files=[])
        self.conf.set_override('connect_retries', 2, group='glance')
        self.conf.set_override('status_code_retries', 2, group='glance')
        self.conf.set_override('connect_retry_delay', 0.01,
                               group='glance')
        self.conf.set_override('status_code_retry_delay', 0.01,
                               group='glance')


class GlanceTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.use_glance()

    def url(self, *parts, **query):
        return self.image_url(*parts, **query)

    def image(self, **kw):
        body = {'id': IMAGE_ID, 'name': 'ubuntu', 'status': 'active',
                'disk_format': 'iso', 'container_format': 'bare',
                'visibility': 'private', 'protected': False,
                'os_hidden': True, 'tags': [], 'isoplugin_media':
                'installer-iso'}
        body.update(kw)
        return body


class TestRetries(GlanceTestCase):
    """[glance] retry settings: repeatable requests only, with backoff."""

    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(_RetryConf()).conf
        # openstacksdk's own default (5 status code retries) is kept when
        # higher: start from none to count the requests
        self.cloud.image.status_code_retries = 0
        glance.use_retries(self.cloud, self.conf)

    def test_use_retries_sets_the_proxy_keeps_higher(self):
        self.cloud.image.connect_retries = 9
        glance.use_retries(self.cloud, self.conf)
        self.assertEqual(9, self.cloud.image.connect_retries)
        self.assertEqual(2, self.cloud.image.status_code_retries)
        self.assertEqual(0.01, self.cloud.image.connect_retry_delay)
        self.assertEqual({502, 503, 504},
                         set(self.cloud.image.retriable_status_codes) &
                         {502, 503, 504})

    def test_read_retried_while_glance_restarts(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 text=raising(refused)),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 status_code=503, text='starting'),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
        ])

        image = glance.get_image(self.cloud, IMAGE_ID)

        self.assertEqual(IMAGE_ID, image.id)
        self.assert_calls()

    def test_read_gives_up_with_one_clear_line(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 text=raising(refused))] * 3)

        with testtools.ExpectedException(
                exception.ServiceUnavailable,
                r'Glance did not answer \(connection refused\); check '
                r'that it runs, then try again\.$'):
            glance.get_image(self.cloud, IMAGE_ID)
        self.assert_calls()

    def test_unavailable_status_after_retries(self):
        self.register_uris([
            dict(method='GET', uri=self.url('info', 'usage'),
                 status_code=502, text='Bad Gateway')] * 3)

        with testtools.ExpectedException(
                exception.ServiceUnavailable,
                r'Glance did not answer \(HTTP 502: .*\)'):
            glance.usage(self.cloud)
        self.assert_calls()

    def test_upload_is_sent_once(self):
        self.register_uris([
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=raising(disconnected)),
        ])

        with testtools.ExpectedException(
                exception.ConnectionLost,
                r'Glance closed the connection during the upload '
                r'\(before answering\)\.'):
            glance.upload_data(self.cloud, IMAGE_ID, iter([b'x']))
        self.assert_calls()

    def test_patch_removing_is_sent_once(self):
        self.register_uris([
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 text=raising(disconnected)),
        ])

        with testtools.ExpectedException(exception.ConnectionLost):
            glance.patch_image(self.cloud, IMAGE_ID, remove=['a'],
                               current={'a': '1'})
        self.assert_calls()

    def test_patch_removing_sent_again_when_refused(self):
        # a refused connection never reached Glance: safe to send again
        self.register_uris([
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 text=raising(refused)),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
        ])

        glance.patch_image(self.cloud, IMAGE_ID, remove=['a'],
                           current={'a': '1'})
        self.assert_calls()

    def test_create_image_sent_again_when_refused(self):
        self.register_uris([
            dict(method='POST', uri=self.url('images'),
                 text=raising(refused)),
            dict(method='POST', uri=self.url('images'),
                 json=self.image()),
        ])

        glance.create_image(self.cloud, name='x')
        self.assert_calls()

    def test_upload_not_sent_again_when_refused(self):
        self.register_uris([
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=raising(refused)),
        ])

        with testtools.ExpectedException(exception.ServiceUnavailable):
            glance.upload_data(self.cloud, IMAGE_ID, iter([b'x']))
        self.assert_calls()

    def test_patch_setting_is_retried(self):
        self.register_uris([
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 text=raising(disconnected)),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image(a='2')),
        ])

        image = glance.patch_image(self.cloud, IMAGE_ID, set={'a': '2'},
                                   current={'a': '1'})

        self.assertEqual('2', glance.flat(image)['a'])
        self.assert_calls()

    def test_delete_patiently_waits_for_glance(self):
        # each try is 1 + 2 keystoneauth retries; then a growing wait
        self.register_uris(
            [dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                  text=raising(refused))] * 6 +
            [dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                  status_code=204)])

        with mock.patch('time.sleep') as sleep:
            glance.delete_patiently(self.cloud, IMAGE_ID, timeout=60,
                                    interval=1, max_interval=30)

        self.assertEqual([mock.call(1), mock.call(2)],
                         [c for c in sleep.call_args_list
                          if c.args[0] >= 1])
        self.assert_calls()

    def test_delete_patiently_gives_up_after_timeout(self):
        self.register_uris(
            [dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                  text=raising(refused))] * 3)

        with testtools.ExpectedException(exception.ServiceUnavailable):
            glance.delete_patiently(self.cloud, IMAGE_ID, timeout=0)
        self.assert_calls()


class TestImages(GlanceTestCase):

    def test_flat_merges_properties(self):
        body = self.image(os_hash_value=None)
        body['self'] = '/v2/images/%s' % IMAGE_ID
        image = glance.image_from_body(self.cloud, body)

        props = glance.flat(image)

        self.assertEqual('installer-iso', props['isoplugin_media'])
        self.assertIs(True, props['os_hidden'])
        self.assertNotIn('os_hash_value', props)
        self.assertNotIn('properties', props)

    def test_get_image(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
        ])

        image = glance.get_image(self.cloud, IMAGE_ID)

        self.assertEqual('ubuntu', image.name)
        self.assert_calls()

    def test_get_image_not_found_names_what(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 status_code=404),
        ])

        with testtools.ExpectedException(
                exception.NotFound, "build record image x could not be "
                                    "found."):
            glance.get_image(self.cloud, IMAGE_ID,
                             what='build record image x')
        self.assert_calls()

    def test_find_image_by_name_is_none(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images') + '/my%20iso',
                 status_code=400),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 status_code=404),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 status_code=403, json={'message': 'no'}),
        ])

        self.assertIsNone(glance.find_image(self.cloud, 'my iso'))
        self.assertIsNone(glance.find_image(self.cloud, IMAGE_ID))
        self.assertRaises(exception.PermissionDenied, glance.find_image,
                          self.cloud, IMAGE_ID)
        self.assert_calls()

    def test_create_image_sends_the_body_as_given_with_the_marker(self):
        # the body as given, plus the client marker, in the first request
        body = {'name': 'disk', 'disk_format': 'raw',
                'container_format': 'bare', 'visibility': 'private',
                'isoplugin_build_id': 'b1', 'os_shutdown_timeout': '0'}
        sent = dict(body, x_client=glance.client_id())
        self.register_uris([
            dict(method='POST', uri=self.url('images'), status_code=201,
                 json=dict(sent, id=IMAGE_ID, status='queued'),
                 validate=dict(json=sent)),
        ])

        image = glance.create_image(self.cloud, prefix='x_', **body)

        self.assertEqual(IMAGE_ID, image.id)
        self.assertEqual('b1', glance.flat(image)['isoplugin_build_id'])
        self.assertEqual(glance.client_id(), glance.flat(image)['x_client'])
        self.assert_calls()

    def test_create_image_is_sent_once(self):
        # Glance closed the connection after the POST: it may have made
        # the image, so the POST is not sent again, even with retries on
        glance.use_retries(self.cloud, self.useFixture(_RetryConf()).conf)
        self.register_uris([
            dict(method='POST', uri=self.url('images'),
                 text=raising(disconnected)),
        ])

        with testtools.ExpectedException(
                exception.ConnectionLost,
                r'Glance closed the connection during the creation of an '
                r'image \(before answering\)\.'):
            glance.create_image(self.cloud, name='x')
        self.assert_calls()

    def test_create_image_forbidden_template(self):
        self.register_uris([
            dict(method='POST', uri=self.url('images'), status_code=403,
                 json={'message': 'policy says no'}),
        ])

        with testtools.ExpectedException(
                exception.PermissionDenied,
                'Permission denied: ask an admin: .*policy says no'):
            glance.create_image(self.cloud, name='x',
                                forbidden='ask an admin: %(reason)s')
        self.assert_calls()

    def test_upload_data_with_store(self):
        self.register_uris([
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 status_code=204,
                 validate=dict(headers={
                     'Content-Type': 'application/octet-stream',
                     'X-Image-Meta-Store': 'fast'})),
        ])

        glance.upload_data(self.cloud, IMAGE_ID, b'\0' * 512, store='fast')

        self.assertEqual(b'\0' * 512, self.adapter.request_history[-1].body)
        self.assert_calls()

    def test_upload_data_over_quota(self):
        self.register_uris([
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 status_code=413, json={'message': 'quota exceeded'}),
        ])

        with testtools.ExpectedException(
                exception.OverQuota,
                "Glance refused the upload: over quota "
                r"\(quota exceeded\)"):
            glance.upload_data(self.cloud, IMAGE_ID, b'x')
        self.assert_calls()

    def test_patch_image_reads_then_patches_what_differs(self):
        current = self.image(isoplugin_role='blank-disk',
                             isoplugin_phase='boot')
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=current),
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=dict(current, isoplugin_role='output'),
                 validate=dict(
                     headers={'Content-Type': glance.PATCH_TYPE},
                     json=[
                         {'op': 'remove', 'path': '/isoplugin_phase'},
                         {'op': 'replace', 'path': '/isoplugin_role',
                          'value': 'output'},
                         {'op': 'add', 'path': '/isoplugin_done',
                          'value': 'true'}])),
        ])

        image = glance.patch_image(
            self.cloud, IMAGE_ID,
            set={'name': 'ubuntu', 'isoplugin_role': 'output',
                 'isoplugin_done': 'true'},
            remove=['isoplugin_phase', 'isoplugin_absent'])

        self.assertEqual('output', glance.flat(image)['isoplugin_role'])
        self.assert_calls()

    def test_patch_image_nothing_to_change(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image()),
        ])

        image = glance.patch_image(self.cloud, IMAGE_ID,
                                   set={'name': 'ubuntu'}, remove=['x'])

        self.assertEqual(IMAGE_ID, image.id)
        self.assertIsNone(glance.patch_image(
            self.cloud, IMAGE_ID, set={'name': 'ubuntu'},
            current={'name': 'ubuntu'}))
        self.assert_calls()

    def test_patch_image_blind_adds(self):
        self.register_uris([
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image(),
                 validate=dict(json=[{'op': 'add',
                                      'path': '/isoplugin_heartbeat',
                                      'value': '12'}])),
        ])

        glance.patch_image(self.cloud, IMAGE_ID,
                           set={'isoplugin_heartbeat': '12'}, current={})

        self.assert_calls()

    def test_delete_image(self):
        self.register_uris([
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=404),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=404),
        ])

        glance.delete_image(self.cloud, IMAGE_ID)
        glance.delete_image(self.cloud, IMAGE_ID)
        with testtools.ExpectedException(exception.NotFound,
                                         "ISO 'x' could not be found."):
            glance.delete_image(self.cloud, IMAGE_ID, ignore_missing=False,
                                what="ISO 'x'")
        self.assert_calls()

    def test_delete_image_from_one_store(self):
        self.register_uris([
            dict(method='DELETE',
                 uri=self.get_mock_url('image', append=[
                     'stores', 'slow', IMAGE_ID], base_url_append='v2'),
                 status_code=403, json={'message': 'admins only'}),
        ])

        with testtools.ExpectedException(exception.PermissionDenied,
                                         '.*admins only .policy.'):
            glance.delete_image(self.cloud, IMAGE_ID, store='slow',
                                ignore_missing=False,
                                forbidden='%(reason)s (policy)')
        self.assert_calls()

    def test_images_sends_any_filter_and_follows_pages(self):
        query = {'isoplugin_role': 'blank-disk', 'os_hidden': 'true'}
        self.register_uris([
            dict(method='GET', uri=self.url('images', limit=2, **query),
                 json={'images': [self.image(id='1'), self.image(id='2')],
                       'next': '/v2/images?marker=2&limit=2'}),
            dict(method='GET', uri=self.url('images', limit=2, marker='2',
                                            **query),
                 json={'images': [self.image(id='3')]}),
        ])

        found = list(glance.images(self.cloud, limit=2, owner=None,
                                   **query))

        self.assertEqual(['1', '2', '3'], [i.id for i in found])
        self.assert_calls()

    def test_images_default_page_size_and_empty_page(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', name='x', limit=100),
                 json={'images': [], 'next': '/v2/images?marker=z'}),
        ])

        self.assertEqual([], list(glance.images(self.cloud, name='x')))
        self.assert_calls()

    def test_wait_for_image_backs_off(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status=status))
            for status in ('queued', 'importing', 'importing', 'active')])
        seen = []

        def check(image):
            seen.append(image.status)
            return image if image.status == 'active' else None

        with mock.patch('time.sleep') as sleep:
            image = glance.wait_for_image(self.cloud, IMAGE_ID, check, 60,
                                          'the import', interval=2,
                                          max_interval=5)

        self.assertEqual('active', image.status)
        self.assertEqual(['queued', 'importing', 'importing', 'active'],
                         seen)
        self.assertEqual([mock.call(2), mock.call(4), mock.call(5)],
                         sleep.call_args_list)
        self.assert_calls()

    def test_wait_for_image_times_out(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status='importing'))] * 2)

        with mock.patch('time.monotonic', side_effect=[0, 10, 61]):
            with testtools.ExpectedException(
                    exception.CloudTimeout,
                    'Timed out after 60 s waiting for copies to b.'):
                glance.wait_for_image(self.cloud, IMAGE_ID, lambda i: None,
                                      60, lambda: 'copies to b')
        self.assert_calls()

    def test_deactivate_and_reactivate_check_the_answer(self):
        self.register_uris([
            dict(method='POST',
                 uri=self.url('images', IMAGE_ID, 'actions', 'deactivate'),
                 status_code=204),
            dict(method='POST',
                 uri=self.url('images', IMAGE_ID, 'actions', 'reactivate'),
                 status_code=403, json={'message': 'not the owner'}),
        ])

        glance.deactivate_image(self.cloud, IMAGE_ID)
        with testtools.ExpectedException(exception.PermissionDenied,
                                         '.*not the owner'):
            glance.reactivate_image(self.cloud, IMAGE_ID)
        self.assert_calls()

    def test_import_image(self):
        image = glance.image_from_body(self.cloud, self.image())
        self.register_uris([
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=202,
                 validate=dict(json={
                     'method': {'name': 'web-download',
                                'uri': 'http://x/u.iso'},
                     'stores': ['fast']})),
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=403, json={'message': 'copy is for admins'},
                 validate=dict(json={
                     'method': {'name': 'copy-image'},
                     'stores': ['a', 'b'],
                     'all_stores_must_succeed': False})),
        ])

        glance.import_image(self.cloud, image, 'web-download',
                            uri='http://x/u.iso', stores=['fast'])
        with testtools.ExpectedException(exception.PermissionDenied,
                                         '.*copy is for admins'):
            glance.import_image(self.cloud, image, 'copy-image',
                                stores=['a', 'b'],
                                all_stores_must_succeed=False)
        self.assert_calls()

    def test_image_tasks(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID, 'tasks'),
                 json={'tasks': [{'id': 't1', 'image_id': IMAGE_ID,
                                  'status': 'failure',
                                  'message': 'URL unreachable'}]}),
        ])

        tasks = glance.image_tasks(self.cloud, IMAGE_ID)

        self.assertEqual('failure', tasks[0]['status'])
        self.assertEqual('URL unreachable', tasks[0]['message'])
        self.assert_calls()


class TestMembers(GlanceTestCase):

    def member(self, **kw):
        body = {'image_id': IMAGE_ID, 'member_id': PROJECT,
                'status': 'pending', 'created_at': '2026-01-01T00:00:00Z',
                'updated_at': '2026-01-01T00:00:00Z',
                'schema': '/v2/schemas/member'}
        body.update(kw)
        return body

    def test_members(self):
        self.register_uris([
            dict(method='GET', uri=self.url('images', IMAGE_ID, 'members'),
                 json={'members': [self.member()]}),
        ])

        members = glance.members(self.cloud, IMAGE_ID)

        self.assertEqual([PROJECT], [m['member_id'] for m in members])
        self.assertEqual('pending', members[0]['status'])
        self.assertEqual(IMAGE_ID, members[0]['image_id'])
        self.assert_calls()

    def test_add_update_remove_member(self):
        self.register_uris([
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'members'),
                 json=self.member(),
                 validate=dict(json={'member': PROJECT})),
            dict(method='PUT',
                 uri=self.url('images', IMAGE_ID, 'members', PROJECT),
                 json=self.member(status='accepted'),
                 # the SDK repeats the member (Glance reads the status)
                 validate=dict(json={'member': PROJECT,
                                     'status': 'accepted'})),
            dict(method='DELETE',
                 uri=self.url('images', IMAGE_ID, 'members', PROJECT),
                 status_code=404),
        ])

        added = glance.add_member(self.cloud, IMAGE_ID, PROJECT)
        accepted = glance.update_member(self.cloud, IMAGE_ID, PROJECT,
                                        'accepted')
        with testtools.ExpectedException(exception.NotFound,
                                         'Project p could not be found.'):
            glance.remove_member(self.cloud, IMAGE_ID, PROJECT,
                                 what='Project p')

        self.assertEqual(('pending', PROJECT, IMAGE_ID),
                         (added['status'], added['member_id'],
                          added['image_id']))
        self.assertEqual('accepted', accepted['status'])
        self.assert_calls()


class TestService(GlanceTestCase):

    def test_stores_default_first(self):
        self.register_uris([
            dict(method='GET', uri=self.url('info', 'stores'),
                 json={'stores': [{'id': 'slow'},
                                  {'id': 'fast', 'default': True}]}),
            dict(method='GET', uri=self.url('info', 'stores'),
                 status_code=410),
        ])

        self.assertEqual(['fast', 'slow'], glance.stores(self.cloud))
        self.assertEqual([], glance.stores(self.cloud))
        self.assert_calls()

    def test_import_methods(self):
        self.register_uris([
            dict(method='GET', uri=self.url('info', 'import'),
                 json={'import-methods': {
                     'type': 'array',
                     'value': ['glance-direct', 'web-download']}}),
            dict(method='GET', uri=self.url('info', 'import'),
                 status_code=404),
        ])

        self.assertEqual(['glance-direct', 'web-download'],
                         glance.import_methods(self.cloud))
        self.assertEqual([], glance.import_methods(self.cloud))
        self.assert_calls()

    def test_usage(self):
        usage = {'image_count_total': {'usage': 1, 'limit': 10}}
        self.register_uris([
            dict(method='GET', uri=self.url('info', 'usage'),
                 json={'usage': usage}),
            dict(method='GET', uri=self.url('info', 'usage'),
                 status_code=404),
            dict(method='GET', uri=self.url('info', 'usage'),
                 status_code=500, json={'message': 'boom'}),
        ])

        self.assertEqual(usage, glance.usage(self.cloud))
        self.assertEqual({}, glance.usage(self.cloud))
        with testtools.ExpectedException(exception.CloudError, '.*boom'):
            glance.usage(self.cloud)
        self.assert_calls()
