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

"""The ``nova-rescue`` backend: Nova and Glance only.

A small blank raw image is the system disk (Nova grows it to the flavor's
root disk); a server boots from it with no network; the server is rescued
with the ISO as rescue image (stable device rescue: the ISO's
``hw_rescue_device=cdrom`` puts it on a CD-ROM, and the blank disk stays
the guest's disk); the installer writes the disk and powers off; unrescue
takes the ISO away; the server is stopped and snapshotted (createImage).
"""

from oslo_config import cfg
from oslo_log import log as logging

from isoplugin.backends import base
from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

POWER_SHUTDOWN = 4
#: remote console (protocol, type) pairs tried in order
CONSOLES = (('vnc', 'novnc'), ('spice', 'spice-html5'),
            ('serial', 'serial'), ('mks', 'webmks'), ('rdp', 'rdp-html5'))


class NovaRescueBackend(base.BuildBackend):
    """Install by rescuing a blank-disk server with the ISO (Nova, Glance)."""

    NAME = 'nova-rescue'
    CAPABILITIES = (base.Capabilities.UNATTENDED_INSTALL |
                    base.Capabilities.INTERACTIVE_INSTALL |
                    base.Capabilities.DISK_SIZE |
                    base.Capabilities.RESUME)
    OPTIONS = [
        cfg.StrOpt('min_compute_microversion',
                   default='2.87',
                   help='Compute API microversion sent with the rescue '
                        'request; the cloud must offer it. 2.87 is stable '
                        'device rescue (the rescue image on its own '
                        'device, hw_rescue_device=cdrom, the system disk '
                        'kept as the guest sees it).'),
        cfg.IntOpt('blank_disk_size',
                   default=1, min=1,
                   help='Size in MiB of the blank raw image uploaded as the '
                        'system disk; Nova grows it to the flavor\'s root '
                        'disk.'),
        cfg.IntOpt('min_ram',
                   default=512, min=64,
                   help='Least RAM in MiB of the flavor chosen when none is '
                        'given (the ISO\'s min_ram counts too).'),
        cfg.StrOpt('server_name_prefix',
                   default='isoplugin-build-',
                   help='Prefix of the temporary servers\' names (the build '
                        'id follows).'),
        cfg.StrOpt('hw_disk_bus',
                   default='virtio',
                   help='hw_disk_bus property of the output image; empty to '
                        'set none.'),
        cfg.DictOpt('image_properties',
                    default={},
                    help='More properties of every output image, for '
                         'example hw_scsi_model:virtio-scsi,hw_qemu_guest_'
                         'agent:yes.'),
    ]

    # -- checks ---------------------------------------------------------

    def _microversion(self):
        return self.options.min_compute_microversion

    def check_cloud(self, conn):
        """Refuse clouds whose compute API lacks the microversion.

        :param conn: an :class:`openstack.connection.Connection`.
        :raises isoplugin.exception.CloudUnsupported: the maximum compute
            microversion is below ``min_compute_microversion``.
        """
        from keystoneauth1 import discover

        data = conn.compute.get_endpoint_data()
        maximum = getattr(data, 'max_microversion', None)
        needed = discover.normalize_version_number(self._microversion())
        if not maximum or tuple(maximum) < tuple(needed):
            raise exception.CloudUnsupported(
                reason=_('the compute API offers microversions up to '
                         '%(max)s, and the nova-rescue backend needs '
                         '%(min)s or later (stable device rescue: rescue '
                         'with an ISO on a CD-ROM, hw_rescue_device=cdrom, '
                         'Victoria or later). Ask the cloud operator, or '
                         'use another backend.') %
                {'max': discover.version_to_string(maximum)
                 if maximum else _('none'), 'min': self._microversion()})

    # -- prepare ----------------------------------------------------------

    def _choose_flavor(self, build):
        conn = build.conn
        name = build.request.flavor or build.conf.isoplugin.flavor
        size = build.request.disk_size
        if name:
            flavor = conn.compute.find_flavor(name, ignore_missing=True)
            if flavor is None:
                raise exception.InvalidInput(
                    reason=_('no flavor %s') % name)
            if size and flavor.disk and flavor.disk < size:
                raise exception.InvalidInput(
                    reason=_('flavor %(f)s has a %(d)s GiB root disk, '
                             'smaller than the %(s)s GiB asked for') %
                    {'f': name, 'd': flavor.disk, 's': size})
            return flavor
        ram = max(self.options.min_ram, build.iso.min_ram or 0)
        disk = max(size or 1, build.iso.min_disk or 0)
        fits = [f for f in conn.compute.flavors(details=True)
                if f.disk and f.disk >= disk and f.ram >= ram]
        if not fits:
            raise exception.InvalidInput(
                reason=_('no flavor has a root disk of %(d)s GiB or more '
                         'and %(r)s MiB of RAM or more; give one with '
                         '--flavor') % {'d': disk, 'r': ram})
        return min(fits, key=lambda f: (f.disk, f.ram, f.vcpus, f.name))

    def prepare(self, build):
        """Choose the flavor and upload the blank system disk image.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.InvalidInput: no fitting flavor.
        :raises isoplugin.exception.CloudError: Glance refused.
        """
        from openstack import exceptions as sdk_exc

        from isoplugin import build as build_mod

        conn = build.conn
        flavor = self._choose_flavor(build)
        build.state['flavor_id'] = flavor.id
        build.state['disk_gb'] = build.request.disk_size or flavor.disk
        if build.request.network or build.conf.isoplugin.network:
            network = conn.network.find_network(
                build.request.network or build.conf.isoplugin.network,
                ignore_missing=False)
            build.state['network_id'] = network.id
        if build.state.get('blank_id'):
            blank = conn.image.get_image(build.state['blank_id'])
            if blank.status == 'active':
                return
            # the client died while uploading it: make a new one
            conn.image.delete_image(blank.id, ignore_missing=True)
        body = {'name': '%sdisk-%s' % (self.options.server_name_prefix,
                                       build.id),
                'disk_format': 'raw', 'container_format': 'bare',
                'visibility': 'private'}
        # The build server installs onto the bus the output image will use.
        body.update(self.image_properties(build))
        # Rescue first asks the guest to shut down and waits up to the
        # cloud's shutdown_timeout (60 s by default) for an answer that a
        # blank disk never gives: power it off at once. The output image
        # does not inherit this (UNWANTED_PROPERTIES).
        body['os_shutdown_timeout'] = '0'
        body.update(build.record_fields(build_mod.ROLE_BLANK))
        resp = conn.image.post('/images', json=body)
        sdk_exc.raise_from_response(resp)
        image_id = resp.json()['id']
        build.state['blank_id'] = image_id
        resp = conn.image.put(
            '/images/%s/file' % image_id,
            data=b'\0' * (self.options.blank_disk_size * 1024 * 1024),
            headers={'Content-Type': 'application/octet-stream'})
        sdk_exc.raise_from_response(resp)

        def probe():
            image = conn.image.get_image(image_id)
            if image.status in ('killed', 'deleted'):
                raise exception.CloudError(
                    reason=_('the blank disk image went %s') % image.status)
            return image.status == 'active', image.status

        build.wait(probe, _('the blank disk image'),
                   build.conf.isoplugin.boot_timeout)

    # -- boot ---------------------------------------------------------------

    def _server(self, build):
        return build.conn.compute.get_server(build.state['server_id'])

    @staticmethod
    def _fault(server):
        from isoplugin import build as build_mod

        return build_mod.server_fault(server)

    def boot(self, build):
        """Boot the temporary server from the blank disk; wait for ACTIVE.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the server went to ERROR.
        """
        conn = build.conn
        if not build.state.get('server_id'):
            networks = ([{'uuid': build.state['network_id']}]
                        if build.state.get('network_id') else 'none')
            server = conn.compute.create_server(
                name=self.options.server_name_prefix + build.id,
                image_id=build.state['blank_id'],
                flavor_id=build.state['flavor_id'],
                networks=networks,
                metadata=build.record_fields('build-server'))
            build.state['server_id'] = server.id

        def probe():
            server = self._server(build)
            if server.status == 'ERROR':
                raise exception.CloudError(
                    reason=_('the build server went to ERROR: %s') %
                    (self._fault(server) or _('no fault given')))
            return (server.status in ('ACTIVE', 'RESCUE', 'SHUTOFF') and
                    not server.task_state), server.status

        build.wait(probe, _('the build server to become ACTIVE'),
                   build.conf.isoplugin.boot_timeout)

    # -- install --------------------------------------------------------------

    def _action(self, build, body, microversion=None):
        from openstack import exceptions as sdk_exc

        resp = build.conn.compute.post(
            '/servers/%s/action' % build.state['server_id'], json=body,
            microversion=microversion or self._microversion())
        sdk_exc.raise_from_response(resp)
        return resp

    def start_install(self, build):
        """Rescue the server with the ISO (unless it is already rescued).

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: Nova refused.
        """
        server = self._server(build)
        if server.status == 'RESCUE' or server.task_state == 'rescuing':
            return
        self._action(build, {'rescue': {'rescue_image_ref': build.iso.id}})

    def install_state(self, build):
        """One GET of the server: RESCUE and powered off is FINISHED.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: ``(InstallState, detail)``.
        """
        server = self._server(build)
        detail = '%s/%s' % (server.status, server.power_state)
        if server.status == 'ERROR':
            return base.InstallState.FAILED, (
                _('the build server went to ERROR: %s') %
                (self._fault(server) or _('no fault given')))
        if server.task_state:
            return base.InstallState.RUNNING, detail
        if (server.status == 'RESCUE' and
                server.power_state == POWER_SHUTDOWN) or \
                server.status == 'SHUTOFF':
            return base.InstallState.FINISHED, detail
        return base.InstallState.RUNNING, detail

    # -- detach ---------------------------------------------------------------

    def detach(self, build):
        """Unrescue (the ISO goes away), then stop the server.

        A state machine on what Nova shows, so that it survives races (the
        installed system powering itself off, 409 on os-stop) and resumes.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the server went to ERROR.
        """
        from openstack import exceptions as sdk_exc

        def probe():
            server = self._server(build)
            if server.status == 'ERROR':
                raise exception.CloudError(
                    reason=_('the build server went to ERROR: %s') %
                    (self._fault(server) or _('no fault given')))
            if server.task_state:
                return False, '%s/%s' % (server.status, server.task_state)
            try:
                if server.status == 'RESCUE':
                    self._action(build, {'unrescue': None})
                elif server.status == 'ACTIVE':
                    self._action(build, {'os-stop': None})
            except sdk_exc.ConflictException:
                pass  # the state changed under us; look again
            return server.status == 'SHUTOFF', server.status

        build.wait(probe, _('the build server to leave rescue and stop'),
                   build.conf.isoplugin.boot_timeout)

    # -- snapshot -------------------------------------------------------------

    def snapshot(self, build, name, properties):
        """createImage of the stopped server (microversion 2.45+ body).

        :param build: the :class:`isoplugin.build.Build`.
        :param name: the new image's name.
        :param properties: properties the image carries from its creation.
        :returns: the new image's id.
        """
        resp = self._action(build, {'createImage': {
            'name': name, 'metadata': properties}})
        return resp.json()['image_id']

    def image_properties(self, build):
        """``hw_disk_bus`` and ``image_properties`` from the configuration.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: a dict.
        """
        props = {}
        if self.options.hw_disk_bus:
            props['hw_disk_bus'] = self.options.hw_disk_bus
        props.update(self.options.image_properties or {})
        return props

    def describe_failure(self, build):
        """The server's fault, else the last failed instance action event.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: a message or ``None``.
        """
        server_id = build.state.get('server_id')
        if not server_id:
            return None
        conn = build.conn
        server = conn.compute.get_server(server_id)
        fault = self._fault(server)
        if fault:
            return fault
        resp = conn.compute.get(
            '/servers/%s/os-instance-actions' % server_id,
            microversion='2.84')
        if not resp.ok:
            return None
        actions = resp.json().get('instanceActions') or []
        for action in actions[:3]:  # newest first
            detail = conn.compute.get(
                '/servers/%s/os-instance-actions/%s' %
                (server_id, action['request_id']), microversion='2.84')
            if not detail.ok:
                continue
            events = (detail.json().get('instanceAction') or {}).get(
                'events') or []
            for event in events:
                if event.get('result') == 'Error':
                    return '%s: %s' % (action['action'],
                                       event.get('details') or
                                       action.get('message') or
                                       event['event'])
        return None

    def console_url(self, build):
        """The first remote console the cloud offers for the server.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: ``(type, url)``.
        :raises isoplugin.exception.CloudUnsupported: no console type works.
        """
        errors = []
        for protocol, kind in CONSOLES:
            resp = build.conn.compute.post(
                '/servers/%s/remote-consoles' % build.state['server_id'],
                json={'remote_console': {'protocol': protocol,
                                         'type': kind}},
                microversion='2.8' if protocol == 'mks' else '2.6')
            if resp.ok:
                return kind, resp.json()['remote_console']['url']
            errors.append('%s: %s' % (kind, resp.status_code))
        raise exception.CloudUnsupported(
            reason=_('the cloud offers no remote console for the build '
                     'server (%s)') % ', '.join(errors))
