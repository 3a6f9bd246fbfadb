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
import tempfile
from unittest import mock
import uuid

from openstack.compute.v2 import flavor as flavor_mod
from oslo_config import cfg

from isoplugin.backends import base
from isoplugin.backends import nova_rescue
from isoplugin import build as build_mod
from isoplugin import conf as iso_conf
from isoplugin import exception
from tests.unit import base as test_base


def _version_file(max_version):
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
        self.build = build_mod.Build(
            self.cloud, self.conf,
            build_mod.BuildRequest(iso='x', name='img'),
            backend=self.backend, build_id='b-123')
        self.build.iso = mock.Mock(id=self.iso_id)
        self.build.state['server_id'] = self.server_id
        self.build._deadline = None
        patcher = mock.patch.object(build_mod, '_sleep', return_value=False)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _discovery(self, max_version):
        path = _version_file(max_version)
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

    def test_start_install_rescues_with_the_iso_at_2_87(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('ACTIVE'),
            self._action(
                validate=dict(
                    json={'rescue': {'rescue_image_ref': self.iso_id}},
                    headers={'OpenStack-API-Version': 'compute 2.87'}),
                status_code=200, body={'adminPass': 'x'}),
        ])

        self.backend.start_install(self.build)

        self.assert_calls()

    def test_start_install_does_not_rescue_twice(self):
        self._discovery('2.96')
        self.register_uris([self._server('RESCUE')])

        self.backend.start_install(self.build)

        self.assert_calls()

    def test_install_state(self):
        self._discovery('2.96')
        self.register_uris([
            self._server('RESCUE', power_state=1),
            self._server('RESCUE', power_state=4),
            self._server('ERROR', fault='cannot be rescued: ISO broken'),
            self._server('SHUTOFF', power_state=4),
        ])

        states = [self.backend.install_state(self.build) for _i in range(4)]

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

        self.backend.detach(self.build)

        self.assert_calls()

    def test_snapshot_returns_the_image_id(self):
        self.register_uris([
            self._action(
                validate=dict(json={'createImage': {
                    'name': 'img',
                    'metadata': {'isoplugin_build_id': 'b-123'}}}),
                body={'image_id': 'new-image'}),
        ])

        image_id = self.backend.snapshot(self.build, 'img',
                                         {'isoplugin_build_id': 'b-123'})

        self.assertEqual('new-image', image_id)
        self.assert_calls()

    def test_console_url_tries_console_types(self):
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
                         self.backend.console_url(self.build))
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
            self.backend.prepare(self.build)

        self.assert_calls()
        post = [r for r in self.adapter.request_history
                if r.method == 'POST' and r.url == images][0].json()
        # the build server installs onto the bus the image will boot from,
        # and rescue does not wait for a blank disk to shut down
        self.assertEqual('sata', post['hw_disk_bus'])
        self.assertEqual('0', post['os_shutdown_timeout'])
        self.assertEqual('raw', post['disk_format'])
        self.assertEqual('b-123', post['isoplugin_build_id'])
        self.assertEqual(build_mod.ROLE_BLANK, post['isoplugin_role'])
        self.assertEqual(blank_id, self.build.state['blank_id'])
        self.assertEqual(2, self.build.state['disk_gb'])
        self.assertIn('os_shutdown_timeout', build_mod.UNWANTED_PROPERTIES)

    def test_image_properties_from_configuration(self):
        self.conf.set_override('image_properties',
                               {'hw_qemu_guest_agent': 'yes'},
                               group='backend_nova_rescue')

        self.assertEqual({'hw_disk_bus': 'virtio',
                          'hw_qemu_guest_agent': 'yes'},
                         self.backend.image_properties(self.build))
