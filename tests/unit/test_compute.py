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

"""isoplugin.compute, request by request."""

import os
import uuid

from openstack import exceptions as sdk_exc
import testtools

from isoplugin import compute
from isoplugin import exception
from tests.unit import base as test_base
from tests.unit import test_nova_rescue


class TestCompute(test_base.TestCase):

    def setUp(self):
        super().setUp()
        self.server_id = uuid.uuid4().hex
        path = test_nova_rescue.version_file('2.96')
        self.addCleanup(os.unlink, path)
        self.use_compute_discovery(compute_version_json=path)

    def _url(self, *parts):
        return self.get_mock_url('compute', 'public',
                                 append=['servers', self.server_id] +
                                 list(parts))

    def _action(self, body, status_code=202, json_body=None,
                microversion='2.96'):
        return dict(method='POST', uri=self._url('action'),
                    status_code=status_code, json=json_body or {},
                    validate=dict(json=body, headers={
                        'OpenStack-API-Version': 'compute ' + microversion}))

    def test_max_microversion(self):
        self.assertEqual((2, 96), compute.max_microversion(self.cloud))
        self.assert_calls()

    def test_create_server_without_network(self):
        self.register_uris([
            dict(method='POST',
                 uri=self.get_mock_url('compute', 'public',
                                       append=['servers']),
                 validate=dict(json={'server': {
                     'name': 'srv', 'flavorRef': 'f1', 'imageRef': 'img',
                     'networks': 'none', 'metadata': {'k': 'v'}}}),
                 json={'server': {'id': self.server_id}}),
        ])

        server = compute.create_server(self.cloud, 'srv', 'f1', {'k': 'v'},
                                       image_id='img')

        self.assertEqual(self.server_id, server.id)
        self.assert_calls()

    def _refused(self, request, context):
        from tests.unit import test_glance

        raise test_glance.refused()

    def _servers_named(self, name, servers):
        return dict(method='GET',
                    uri=self.get_mock_url(
                        'compute', 'public', append=['servers', 'detail'],
                        qs_elements=['name=%5E' + name + '%24']),
                    json={'servers': servers})

    def _post(self, **answer):
        return dict(method='POST',
                    uri=self.get_mock_url('compute', 'public',
                                          append=['servers']), **answer)

    def test_create_server_looks_before_posting_again(self):
        # the first POST fails to connect: no such server yet, so the POST
        # is sent again; each POST once (no keystoneauth1 retry)
        self.cloud.compute.connect_retries = 2
        self.cloud.compute.connect_retry_delay = 0.01
        self.register_uris([
            self._post(text=self._refused),
            self._servers_named('srv', []),
            self._post(json={'server': {'id': self.server_id}}),
        ])

        server = compute.create_server(self.cloud, 'srv', 'f1', {},
                                       image_id='img')

        self.assertEqual(self.server_id, server.id)
        self.assert_calls()

    def test_create_server_found_after_a_lost_answer(self):
        self.cloud.compute.connect_retries = 2
        self.cloud.compute.connect_retry_delay = 0.01
        self.register_uris([
            self._post(text=self._refused),
            self._servers_named('srv', [{'id': self.server_id,
                                         'name': 'srv'}]),
        ])

        server = compute.create_server(self.cloud, 'srv', 'f1', {},
                                       image_id='img')

        self.assertEqual(self.server_id, server.id)
        self.assert_calls()

    def test_create_server_gives_up_after_the_retries(self):
        from keystoneauth1 import exceptions as ks_exc

        self.cloud.compute.connect_retries = 1
        self.cloud.compute.connect_retry_delay = 0.01
        self.register_uris([
            self._post(text=self._refused),
            self._servers_named('srv', []),
            self._post(text=self._refused),
        ])

        self.assertRaises(ks_exc.ConnectFailure, compute.create_server,
                          self.cloud, 'srv', 'f1', {}, image_id='img')
        self.assert_calls()
        # the proxy keeps its retries (a copy was used for the POST)
        self.assertEqual(1, self.cloud.compute.connect_retries)

    def test_create_server_from_a_volume(self):
        bdm = [{'uuid': 'vol', 'source_type': 'volume',
                'destination_type': 'volume', 'boot_index': 0}]
        self.register_uris([
            dict(method='POST',
                 uri=self.get_mock_url('compute', 'public',
                                       append=['servers']),
                 validate=dict(json={'server': {
                     'name': 'srv', 'flavorRef': 'f1',
                     'networks': [{'uuid': 'net'}], 'metadata': {},
                     'block_device_mapping_v2': bdm}}),
                 json={'server': {'id': self.server_id}}),
        ])

        compute.create_server(self.cloud, 'srv', 'f1', {}, network_id='net',
                              block_device_mapping=bdm)

        self.assert_calls()

    def test_find_server_gone_is_none(self):
        self.register_uris([
            dict(method='GET', uri=self._url(), status_code=404),
            dict(method='GET',
                 uri=self.get_mock_url(
                     'compute', 'public', append=['servers', 'detail'],
                     qs_elements=['name=' + self.server_id]),
                 json={'servers': []}),
        ])

        self.assertIsNone(compute.find_server(self.cloud, self.server_id))
        self.assert_calls()

    def test_delete_server_gone_is_not_an_error(self):
        self.register_uris([
            dict(method='DELETE', uri=self._url(), status_code=404),
        ])

        compute.delete_server(self.cloud, self.server_id)

        self.assert_calls()

    def test_rescue_unrescue_stop(self):
        self.register_uris([
            self._action({'rescue': {'rescue_image_ref': 'iso'}},
                         json_body={'adminPass': 'x'}),
            self._action({'unrescue': None}),
            self._action({'os-stop': None}),
        ])

        compute.rescue_server(self.cloud, self.server_id, 'iso', '2.87')
        compute.unrescue_server(self.cloud, self.server_id)
        compute.stop_server(self.cloud, self.server_id)

        self.assert_calls()

    def test_rescue_with_a_pinned_older_microversion_is_sent_raw(self):
        self.cloud.compute.default_microversion = '2.60'
        self.register_uris([
            self._action({'rescue': {'rescue_image_ref': 'iso'}},
                         json_body={'adminPass': 'x'}, microversion='2.87'),
        ])

        compute.rescue_server(self.cloud, self.server_id, 'iso', '2.87')

        self.assert_calls()

    def test_rescue_refused_raises(self):
        self.cloud.compute.default_microversion = '2.60'
        self.register_uris([
            self._action({'rescue': {'rescue_image_ref': 'iso'}},
                         status_code=409, microversion='2.87',
                         json_body={'conflictingRequest': {
                             'message': 'in task_state rescuing',
                             'code': 409}}),
        ])

        self.assertRaises(sdk_exc.ConflictException, compute.rescue_server,
                          self.cloud, self.server_id, 'iso', '2.87')
        self.assert_calls()

    def test_create_server_image_returns_the_id(self):
        self.register_uris([
            self._action({'createImage': {'name': 'img',
                                          'metadata': {'a': 'b'}}},
                         json_body={'image_id': 'new'},
                         microversion='2.45'),
        ])

        self.assertEqual('new', compute.create_server_image(
            self.cloud, self.server_id, 'img', {'a': 'b'}))
        self.assert_calls()

    def _create_image_fails(self):
        return self._action({'createImage': {'name': 'img', 'metadata': {}}},
                            status_code=500,
                            json_body={'computeFault': {
                                'message': 'Unexpected API Error.',
                                'code': 500}},
                            microversion='2.45')

    def test_create_server_image_over_the_image_quota(self):
        # Nova answers 500 when Glance refuses the snapshot for the quota
        self.use_glance()
        self.register_uris([
            self._create_image_fails(),
            dict(method='GET', uri=self.image_url('info', 'usage'),
                 json={'usage': {
                     'image_count_total': {'usage': 12, 'limit': 12},
                     'image_size_total': {'usage': 10, 'limit': 51200}}}),
        ])

        with testtools.ExpectedException(
                exception.OverQuota,
                r"^Nova refused the snapshot \(createImage\): over quota "
                r"\(Glance's image_count_total is 12 of 12; Nova answered "
                r"HTTP 500\)"):
            compute.create_server_image(self.cloud, self.server_id, 'img',
                                        {})
        self.assert_calls()

    def test_create_server_image_other_failure(self):
        self.use_glance()
        self.register_uris([
            self._create_image_fails(),
            dict(method='GET', uri=self.image_url('info', 'usage'),
                 json={'usage': {
                     'image_count_total': {'usage': 3, 'limit': 12}}}),
        ])

        self.assertRaises(sdk_exc.HttpException,
                          compute.create_server_image, self.cloud,
                          self.server_id, 'img', {})
        self.assert_calls()

    def test_console_output(self):
        self.register_uris([
            self._action({'os-getConsoleOutput': {}},
                         status_code=200, json_body={'output': 'login:'}),
        ])

        self.assertEqual('login:', compute.console_output(
            self.cloud, self.server_id))
        self.assert_calls()

    def test_console_output_of_a_stopped_libvirt_guest(self):
        # what Nova's libvirt driver answers for a shut-off guest whose
        # console is a pty: 404, although console.log exists
        self.register_uris([
            self._action({'os-getConsoleOutput': {}}, status_code=404,
                         json_body={'itemNotFound': {
                             'code': 404, 'message': 'Guest does not have '
                                                     'a console available.'}}),
        ])

        with self.assertRaises(sdk_exc.NotFoundException) as e:
            compute.console_output(self.cloud, self.server_id)

        class Server(object):
            status = 'SHUTOFF'

        reason = compute.console_unreadable(Server(), e.exception)
        self.assertIn('Guest does not have a console available', reason)
        self.assertIn('[serial_console] enabled = true', reason)
        self.assertIn('only while the guest runs', reason)
        self.assert_calls()

    def test_console_unreadable_other_cases_quote_nova(self):
        class Server(object):
            status = 'ACTIVE'

        error = sdk_exc.HttpException(message='boom', http_status=409,
                                      details='Instance not ready')

        reason = compute.console_unreadable(Server(), error)

        self.assertEqual('Nova gives no console log of the ACTIVE server '
                         '(409: Instance not ready)', reason)

    def test_remote_console_collects_refusals(self):
        url = self._url('remote-consoles')
        self.register_uris([
            dict(method='POST', uri=url, status_code=400,
                 json={'badRequest': {'message': 'no', 'code': 400}},
                 validate=dict(json={'remote_console': {
                     'protocol': 'vnc', 'type': 'novnc'}})),
            dict(method='POST', uri=url, status_code=400,
                 json={'badRequest': {'message': 'no', 'code': 400}}),
        ])

        found, errors = compute.remote_console(
            self.cloud, self.server_id,
            consoles=(('vnc', 'novnc'), ('spice', 'spice-html5')))

        self.assertIsNone(found)
        self.assertEqual(['novnc: 400', 'spice-html5: 400'], errors)
        self.assert_calls()

    def test_last_action_error_none_when_all_succeeded(self):
        actions = self._url('os-instance-actions')
        self.register_uris([
            dict(method='GET', uri=actions,
                 json={'instanceActions': [{'action': 'stop',
                                            'request_id': 'req-1'}]}),
            dict(method='GET', uri=actions + '/req-1',
                 json={'instanceAction': {
                     'action': 'stop', 'request_id': 'req-1',
                     'events': [{'event': 'compute_stop_instance',
                                 'result': 'Success'}]}}),
        ])

        self.assertIsNone(compute.last_action_error(self.cloud,
                                                    self.server_id))
        self.assert_calls()

    def test_server_fault(self):
        class Server(object):
            fault = {'message': 'No valid host', 'code': 500}

        self.assertEqual('No valid host', compute.server_fault(Server()))
        Server.fault = None
        self.assertIsNone(compute.server_fault(Server()))
