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

"""The nova-rescue backend, request by request."""

import json
import os
import re
import tempfile
from unittest import mock
import uuid

from openstack.compute.v2 import flavor as flavor_mod
from openstack import exceptions as sdk_exc
from oslo_config import cfg

from isoplugin.backends import base
from isoplugin.backends import nova_rescue
from isoplugin import build as build_mod
from isoplugin import conf as iso_conf
from isoplugin import exception
from tests.unit import base as test_base


def version_file(max_version):
    """A compute version document announcing ``max_version``."""
    body = {'version': {'id': 'v2.1', 'status': 'CURRENT',
                        'version': max_version, 'min_version': '2.1',
                        'links': [{'href': 'https://compute.example.com/'
                                           'v2.1/', 'rel': 'self'}]}}
    fd, path = tempfile.mkstemp(suffix='.json')
    with os.fdopen(fd, 'w') as f:
        json.dump(body, f)
    return path


class TestNovaRescue(test_base.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        iso_conf.register_opts(self.conf)
        self.conf(args=[], default_config_files=[])
        self.backend = nova_rescue.NovaRescueBackend(self.conf)
        self.server_id = uuid.uuid4().hex
        self.iso_id = uuid.uuid4().hex
        # the backend is tested with its context alone (no pipeline)
        self.waited = []
        self.ctx = base.BuildContext(
            build_id='b-123', conn=self.cloud, conf=self.conf,
            request=build_mod.BuildRequest(iso='x', name='img'),
            iso=mock.Mock(id=self.iso_id),
            resources=base.BuildResources(server_id=self.server_id),
            wait=self._wait,
            record_fields=lambda role: {'isoplugin_build_id': 'b-123',
                                        'isoplugin_role': role})

    def _wait(self, probe, what, timeout):
        # polls without sleeping, as the pipeline's wait would
        self.waited.append(what)
        for _i in range(20):
            done, status = probe()
            if done:
                return status
        raise AssertionError('probe never done: %s' % what)

    def _discovery(self, max_version):
        path = version_file(max_version)
        self.addCleanup(os.unlink, path)
        self.use_compute_discovery(compute_version_json=path)

    def _server(self, status, power_state=1, task_state=None, fault=None,
                metadata=None):
        body = {'id': self.server_id, 'name': 'srv', 'status': status,
                'OS-EXT-STS:power_state': power_state,
                'OS-EXT-STS:task_state': task_state,
                'metadata': metadata or {}}
        if fault:
            body['fault'] = {'message': fault, 'code': 400}
        return dict(method='GET',
                    uri=self.get_mock_url('compute', 'public',
                                          append=['servers',
                                                  self.server_id]),
                    json={'server': body})

    def _action(self, validate=None, status_code=202, body=None):
        entry = dict(method='POST',
                     uri=self.get_mock_url('compute', 'public',
                                           append=['servers',
                                                   self.server_id,
                                                   'action']),
                     status_code=status_code, json=body or {})
        if validate:
            entry['validate'] = validate
        return entry

    def test_check_cloud_refuses_old_microversion(self):
        self._discovery('2.53')

        with self.assertRaises(exception.CloudUnsupported) as e:
            self.backend.check_cloud(self.cloud)

        self.assertIn('2.53', str(e.exception))
        self.assertIn('2.87', str(e.exception))
        self.assert_calls()

    def test_check_cloud_accepts_recent_microversion(self):
        self._discovery('2.96')

        self.backend.check_cloud(self.cloud)

        self.assert_calls()

    def test_start_install_rescues_with_the_iso_at_2_87_or_later(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('ACTIVE'),
            # openstacksdk's rescue_server, at the highest microversion
            self._action(
                validate=dict(
                    json={'rescue': {'rescue_image_ref': self.iso_id}},
                    headers={'OpenStack-API-Version': 'compute 2.96'}),
                status_code=200, body={'adminPass': 'x'}),
        ])

        self.backend.start_install(self.ctx)

        self.assert_calls()

    def test_start_install_overrides_an_older_pinned_microversion(self):
        self._discovery('2.96')
        self.cloud.compute.default_microversion = '2.1'
        self.register_uris([
            self._server('ACTIVE'),
            self._action(
                validate=dict(
                    json={'rescue': {'rescue_image_ref': self.iso_id}},
                    headers={'OpenStack-API-Version': 'compute 2.87'}),
                status_code=200, body={'adminPass': 'x'}),
        ])

        self.backend.start_install(self.ctx)

        self.assert_calls()

    def test_start_install_refused(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('ACTIVE'),
            self._action(status_code=409, body={'conflictingRequest': {
                'message': 'Cannot rescue a volume-backed instance',
                'code': 409}}),
        ])

        with self.assertRaises(sdk_exc.ConflictException) as e:
            self.backend.start_install(self.ctx)

        self.assertIn('volume-backed', str(e.exception))
        self.assert_calls()

    def test_start_install_does_not_rescue_twice(self):
        self._discovery('2.96')
        self.register_uris([self._server('RESCUE')])

        self.backend.start_install(self.ctx)

        self.assert_calls()

    def test_install_state(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('RESCUE', power_state=1),
            self._server('RESCUE', power_state=4),
            self._server('ERROR', fault='cannot be rescued: ISO broken'),
            self._server('SHUTOFF', power_state=4),
        ])

        states = [self.backend.install_state(self.ctx) for _i in range(4)]

        self.assertEqual(base.InstallState.RUNNING, states[0][0])
        self.assertEqual(base.InstallState.FINISHED, states[1][0])
        self.assertEqual(base.InstallState.FAILED, states[2][0])
        self.assertIn('ISO broken', states[2][1])
        self.assertEqual(base.InstallState.FINISHED, states[3][0])
        self.assert_calls()

    def test_detach_unrescues_then_stops(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('RESCUE', power_state=4),
            self._action(validate=dict(json={'unrescue': None})),
            self._server('RESCUE', task_state='unrescuing'),
            self._server('ACTIVE'),
            # the installed system powered off by itself meanwhile: 409
            self._action(validate=dict(json={'os-stop': None}),
                         status_code=409,
                         body={'conflictingRequest': {
                             'message': 'Cannot stop while stopped',
                             'code': 409}}),
            self._server('SHUTOFF', power_state=4),
        ])

        self.backend.detach(self.ctx)

        self.assert_calls()
        # one wait per action: the backoff starts again after each
        self.assertEqual(['the build server to settle',
                          'the build server to leave rescue',
                          'the build server to stop'], self.waited)

    def _failed_unrescue(self, n):
        """The requests of an unrescue that nova-compute failed (try n)."""
        actions = self.get_mock_url('compute', 'public',
                                    append=['servers', self.server_id,
                                            'os-instance-actions'])
        return [
            self._action(validate=dict(json={'unrescue': None})),
            self._server('RESCUE', task_state='unrescuing'),
            # nova-compute reverted the task: back in RESCUE, no task
            self._server('RESCUE', power_state=4),
            dict(method='GET', uri=actions,
                 json={'instanceActions': [
                     {'action': 'unrescue', 'request_id': 'req-%d' % n,
                      'message': None}]}),
            dict(method='GET', uri=actions + '/req-%d' % n,
                 json={'instanceAction': {
                     'action': 'unrescue', 'request_id': 'req-%d' % n,
                     'message': None,
                     'events': [{'event': 'compute_unrescue_instance',
                                 'result': 'Error',
                                 'details': 'MessagingTimeout'}]}}),
        ]

    def test_detach_asks_again_for_an_action_nova_failed(self):
        self._discovery('2.96')
        self.register_uris(
            [self._server('RESCUE', power_state=4)] +
            self._failed_unrescue(1) + [
                self._action(validate=dict(json={'unrescue': None})),
                self._server('ACTIVE'),
                self._action(validate=dict(json={'os-stop': None})),
                self._server('SHUTOFF', power_state=4),
            ])

        with self.assertLogs('isoplugin.backends.nova_rescue',
                             'WARNING') as logs:
            self.backend.detach(self.ctx)

        self.assert_calls()
        self.assertIn('Nova failed to unrescue the build server %s '
                      '(unrescue: MessagingTimeout); asking again'
                      % self.server_id, logs.output[0])

    def test_detach_gives_up_after_three_failed_actions(self):
        self._discovery('2.96')
        self.register_uris(
            [self._server('RESCUE', power_state=4)] +
            self._failed_unrescue(1) + self._failed_unrescue(2) +
            self._failed_unrescue(3))

        with self.assertRaises(exception.CloudError) as e:
            self.backend.detach(self.ctx)

        self.assert_calls()
        self.assertIn('Nova failed to unrescue the build server %s 3 '
                      'times (unrescue: MessagingTimeout)' % self.server_id,
                      str(e.exception))

    def test_detach_of_a_stopped_server_does_nothing(self):
        self._discovery('2.96')
        self.register_uris([self._server('SHUTOFF', power_state=4)])

        self.backend.detach(self.ctx)

        self.assert_calls()

    def test_snapshot_returns_the_image_id(self):
        self._discovery('2.96')
        self.register_uris([
            self._action(
                validate=dict(json={'createImage': {
                    'name': 'img',
                    'metadata': {'isoplugin_build_id': 'b-123'}}}),
                body={'image_id': 'new-image'}),
        ])

        image_id = self.backend.snapshot(self.ctx, 'img',
                                         {'isoplugin_build_id': 'b-123'})

        self.assertEqual('new-image', image_id)
        self.assert_calls()
        self.assertEqual(
            'compute 2.45',
            self.adapter.request_history[-1].headers['OpenStack-API-Version'])

    def test_boot_creates_the_server_with_its_record(self):
        self._discovery('2.96')
        self.ctx.resources = base.BuildResources(
            disk_image_id='blank-1', flavor_id='f1', network_id='net-1')
        self.register_uris([
            dict(method='POST',
                 uri=self.get_mock_url('compute', 'public',
                                       append=['servers']),
                 validate=dict(json={'server': {
                     'name': 'isoplugin-build-b-123', 'imageRef': 'blank-1',
                     'flavorRef': 'f1', 'networks': [{'uuid': 'net-1'}],
                     'metadata': {'isoplugin_build_id': 'b-123',
                                  'isoplugin_role': 'build-server'}}}),
                 json={'server': {'id': self.server_id, 'status': 'BUILD'}}),
            self._server('BUILD', task_state='spawning'),
            self._server('ACTIVE'),
        ])

        self.backend.boot(self.ctx)

        self.assertEqual(self.server_id, self.ctx.resources.server_id)
        self.assert_calls()

    def test_describe_failure_reads_instance_actions(self):
        self._discovery('2.96')
        actions = self.get_mock_url('compute', 'public',
                                    append=['servers', self.server_id,
                                            'os-instance-actions'])
        self.register_uris([
            self._server('SHUTOFF'),
            dict(method='GET', uri=actions,
                 json={'instanceActions': [
                     {'action': 'createImage', 'request_id': 'req-2',
                      'message': None},
                     {'action': 'stop', 'request_id': 'req-1',
                      'message': None}]}),
            dict(method='GET', uri=actions + '/req-2',
                 json={'instanceAction': {
                     'action': 'createImage', 'request_id': 'req-2',
                     'message': None,
                     'events': [{'event': 'compute_snapshot_instance',
                                 'result': 'Error',
                                 'details': 'disk full'}]}}),
        ])

        self.assertEqual('createImage: disk full',
                         self.backend.describe_failure(self.ctx))
        self.assert_calls()

    def test_console_url_tries_console_types(self):
        self._discovery('2.96')
        url = self.get_mock_url('compute', 'public',
                                append=['servers', self.server_id,
                                        'remote-consoles'])
        self.register_uris([
            dict(method='POST', uri=url, status_code=400,
                 json={'badRequest': {'message': 'no vnc', 'code': 400}}),
            dict(method='POST', uri=url,
                 validate=dict(json={'remote_console': {
                     'protocol': 'spice', 'type': 'spice-html5'}}),
                 json={'remote_console': {'protocol': 'spice',
                                          'type': 'spice-html5',
                                          'url': 'http://c/spice'}}),
        ])

        self.assertEqual(('spice-html5', 'http://c/spice'),
                         self.backend.console_url(self.ctx))
        self.assert_calls()

    def test_prepare_blank_disk_carries_bus_and_no_shutdown_wait(self):
        self.use_glance()
        self.conf.set_override('hw_disk_bus', 'sata',
                               group='backend_nova_rescue')
        flavor = mock.Mock(spec=flavor_mod.Flavor, id='f1', disk=2)
        blank_id = uuid.uuid4().hex
        images = self.get_mock_url('image', append=['images'],
                                   base_url_append='v2')
        self.register_uris([
            dict(method='POST', uri=images, status_code=201,
                 json={'id': blank_id, 'status': 'queued'}),
            dict(method='PUT', uri='%s/%s/file' % (images, blank_id),
                 status_code=204),
            dict(method='GET', uri='%s/%s' % (images, blank_id),
                 json={'id': blank_id, 'status': 'active'}),
        ])

        with mock.patch.object(self.backend, '_choose_flavor',
                               return_value=flavor):
            self.backend.prepare(self.ctx)

        self.assert_calls()
        post = [r for r in self.adapter.request_history
                if r.method == 'POST' and r.url == images][0].json()
        # the build server installs onto the bus the image will boot from,
        # and rescue does not wait for a blank disk to shut down
        self.assertEqual('sata', post['hw_disk_bus'])
        self.assertEqual('0', post['os_shutdown_timeout'])
        self.assertEqual('raw', post['disk_format'])
        self.assertEqual('b-123', post['isoplugin_build_id'])
        self.assertEqual(base.ROLE_BLANK, post['isoplugin_role'])
        self.assertEqual(blank_id, self.ctx.resources.disk_image_id)
        self.assertEqual(2, self.ctx.resources.disk_gb)
        self.assertEqual('f1', self.ctx.resources.flavor_id)
        # the backend, not the pipeline, keeps it off the output
        self.assertIn('os_shutdown_timeout',
                      nova_rescue.NovaRescueBackend.UNWANTED_PROPERTIES)
        self.assertNotIn('os_shutdown_timeout',
                         build_mod.UNWANTED_PROPERTIES)

    def test_image_properties_from_configuration(self):
        self.conf.set_override('image_properties',
                               {'hw_qemu_guest_agent': 'yes'},
                               group='backend_nova_rescue')

        self.assertEqual({'hw_disk_bus': 'virtio',
                          'hw_qemu_guest_agent': 'yes'},
                         self.backend.image_properties(self.ctx))

    def _delete(self):
        return dict(method='DELETE',
                    uri=self.get_mock_url('compute', 'public',
                                          append=['servers',
                                                  self.server_id]),
                    status_code=204)

    def _gone(self):
        return dict(method='GET',
                    uri=self.get_mock_url('compute', 'public',
                                          append=['servers',
                                                  self.server_id]),
                    status_code=404,
                    json={'itemNotFound': {'code': 404,
                                           'message': 'not found'}})

    def test_release_deletes_the_server_and_waits_until_gone(self):
        self._discovery('2.96')
        self.register_uris([
            self._delete(),
            self._server('SHUTOFF', task_state='deleting'),
            self._gone(),
        ])

        self.backend.release(self.ctx)

        self.assert_calls()
        self.assertEqual(['the build server to be deleted'], self.waited)
        self.assertIsNone(self.ctx.resources.server_id)

    def test_release_without_a_server_does_nothing(self):
        self.ctx.resources.server_id = None

        self.backend.release(self.ctx)

        self.assertEqual([], self.waited)

    def test_release_of_a_server_that_stays_in_error_fails(self):
        self._discovery('2.96')
        self.register_uris([
            self._delete(),
            self._server('ERROR', fault='disk busy'),
        ])

        with self.assertRaises(exception.CloudError) as e:
            self.backend.release(self.ctx)

        self.assertIn('could not be deleted: disk busy', str(e.exception))
        self.assert_calls()

    def _console(self, output=None, status_code=200):
        body = ({'output': output} if status_code == 200 else
                {'itemNotFound': {'code': 404, 'message': 'Guest does not '
                                  'have a console available.'}})
        return self._action(
            validate=dict(json={'os-getConsoleOutput': {}}),
            status_code=status_code, body=body)

    def _verify_state(self):
        return self.backend.verify_state(self.ctx, self.server_id,
                                         re.compile('SYSTEM-BOOTED'))

    def test_verify_state_booting_costs_one_request(self):
        self._discovery('2.96')
        self.register_uris([self._server('BUILD', task_state='spawning')])

        self.assertEqual((base.VerifyState.BOOTING, 'BUILD'),
                         self._verify_state())
        self.assert_calls()

    def test_verify_state_waits_then_passes_while_running(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('ACTIVE'), self._console('SeaBIOS\n'),
            self._server('ACTIVE'), self._console('SeaBIOS\nSYSTEM-BOOTED'),
        ])

        first, second = self._verify_state(), self._verify_state()

        self.assertEqual((base.VerifyState.WAITING,
                          'ACTIVE, 8 bytes of console log'), first)
        self.assertEqual(base.VerifyState.PASSED, second[0])
        self.assert_calls()

    def test_verify_state_reads_the_log_of_a_stopped_guest(self):
        # a system that printed its marker and powered off (Nova gives the
        # log: fake driver, libvirt with a serial console)
        self._discovery('2.96')
        self.register_uris([self._server('SHUTOFF', power_state=4),
                            self._console('SYSTEM-BOOTED\nPower down\n')])

        self.assertEqual(base.VerifyState.PASSED, self._verify_state()[0])
        self.assert_calls()

    def test_verify_state_stopped_without_a_match_fails_at_once(self):
        self._discovery('2.96')
        self.register_uris([self._server('SHUTOFF', power_state=4),
                            self._console('No bootable device.\n')])

        state, detail = self._verify_state()

        self.assertEqual(base.VerifyState.FAILED, state)
        self.assertEqual('the verify server powered itself off and its '
                         'console log (20 bytes) does not match '
                         'SYSTEM-BOOTED; the last line is "No bootable '
                         'device."', detail)
        self.assert_calls()

    def test_verify_state_stopped_and_log_not_given_says_why(self):
        # Nova's libvirt driver with a pty console: 404 once the guest is off
        self._discovery('2.96')
        self.register_uris([self._server('SHUTOFF', power_state=4),
                            self._console(status_code=404)])

        state, detail = self._verify_state()

        self.assertEqual(base.VerifyState.FAILED, state)
        self.assertIn('powered itself off before its console log could be '
                      'seen to match SYSTEM-BOOTED', detail)
        self.assertIn('Guest does not have a console available', detail)
        self.assertIn('[serial_console] enabled = true', detail)
        self.assertIn('--no-verify', detail)
        self.assertEqual(1, len(detail.splitlines()))
        self.assert_calls()

    def test_verify_state_running_without_a_log_yet_waits(self):
        self._discovery('2.96')
        self.register_uris([self._server('ACTIVE'),
                            self._console(status_code=404)])

        self.assertEqual((base.VerifyState.WAITING,
                          'ACTIVE, no console log yet (404)'),
                         self._verify_state())
        self.assert_calls()

    def test_verify_state_error_fails_with_the_fault(self):
        self._discovery('2.96')
        self.register_uris([self._server('ERROR', fault='No valid host')])

        self.assertEqual((base.VerifyState.FAILED, 'the verify server went '
                          'to ERROR: No valid host'), self._verify_state())
        self.assert_calls()

    # -- check_request: the flavor's root disk against the ISO's min_disk

    FLAVORS = [('f-tiny', 'm1.tiny', 1, 512), ('f-large', 'm1.large', 20,
                                               2048),
               ('f-medium', 'm1.medium', 10, 2048),
               ('f-zero', 'm1.zero', 0, 4096)]

    def _request(self, **kwargs):
        # an ISO of min_disk 10
        self._discovery('2.96')
        self.ctx.iso = mock.Mock(id=self.iso_id, min_disk=10, min_ram=0)
        self.ctx.request = build_mod.BuildRequest(iso='x', name='img',
                                                  **kwargs)

    def _flavor_body(self, flavor_id):
        fid, name, disk, ram = [f for f in self.FLAVORS
                                if f[0] == flavor_id][0]
        return {'id': fid, 'name': name, 'disk': disk, 'ram': ram,
                'vcpus': 1}

    def _get_flavor(self, flavor_id):
        return dict(method='GET',
                    uri=self.get_mock_url('compute', 'public',
                                          append=['flavors', flavor_id]),
                    json={'flavor': self._flavor_body(flavor_id)})

    def _list_flavors(self):
        return dict(method='GET',
                    uri=self.get_mock_url('compute', 'public',
                                          append=['flavors', 'detail'],
                                          qs_elements=['is_public=None']),
                    json={'flavors': [self._flavor_body(f[0])
                                      for f in self.FLAVORS]})

    def test_flavor_smaller_than_min_disk_is_refused(self):
        self._request(flavor='f-tiny')
        self.register_uris([self._get_flavor('f-tiny'),
                            self._list_flavors()])

        with self.assertRaises(exception.FlavorDiskTooSmall) as e:
            self.backend.check_request(self.ctx)

        message = str(e.exception)
        self.assertEqual(1, len(message.splitlines()))
        self.assertIn('Flavor f-tiny has a 1 GiB root disk, but the build '
                      "needs 10 GiB (the ISO's min_disk)", message)
        # the smallest flavor that fits is named
        self.assertIn('(the smallest: m1.medium)', message)
        self.assertIn('--disk-size cannot make it bigger', message)
        self.assertIsNone(self.ctx.resources.flavor_id)
        self.assert_calls()

    def test_flavor_of_disk_zero_is_refused(self):
        self._request(flavor='f-zero')
        self.register_uris([self._get_flavor('f-zero'),
                            self._list_flavors()])

        with self.assertRaises(exception.FlavorDiskTooSmall) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('root disk of 0 GiB', str(e.exception))
        self.assert_calls()

    def test_disk_size_above_the_flavor_is_refused(self):
        self._request(flavor='f-medium', disk_size=15)
        self.register_uris([self._get_flavor('f-medium'),
                            self._list_flavors()])

        with self.assertRaises(exception.FlavorDiskTooSmall) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('needs 15 GiB (--disk-size)', str(e.exception))
        self.assertIn('(the smallest: m1.large)', str(e.exception))
        self.assert_calls()

    def test_no_flavor_big_enough(self):
        self._request(flavor='f-tiny')
        self.ctx.iso.min_disk = 100
        self.register_uris([self._get_flavor('f-tiny'),
                            self._list_flavors()])

        with self.assertRaises(exception.FlavorDiskTooSmall) as e:
            self.backend.check_request(self.ctx)

        self.assertIn('no flavor of this cloud has a root disk of 100 GiB',
                      str(e.exception))
        self.assert_calls()

    def test_flavor_big_enough_is_accepted_with_one_request(self):
        self._request(flavor='f-large')
        self.register_uris([self._get_flavor('f-large')])

        self.backend.check_request(self.ctx)

        self.assert_calls()

    def test_chosen_flavor_fits_min_disk_and_gives_min_disk(self):
        self._request()
        self.register_uris([self._list_flavors()])

        flavor = self.backend._choose_flavor(self.ctx)

        # m1.tiny is smaller than min_disk, m1.zero has no root disk
        self.assertEqual('f-medium', flavor.id)
        self.assert_calls()
