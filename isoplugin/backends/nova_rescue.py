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
from isoplugin import compute
from isoplugin import exception
from isoplugin import glance
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

POWER_SHUTDOWN = 4
#: how often detach asks Nova for an action (unrescue, stop) that
#: nova-compute failed and reverted, before the build fails
ACTION_ATTEMPTS = 3


class NovaRescueBackend(base.BuildBackend):
    """Install by rescuing a blank-disk server with the ISO (Nova, Glance)."""

    NAME = 'nova-rescue'
    CAPABILITIES = (base.Capabilities.UNATTENDED_INSTALL |
                    base.Capabilities.INTERACTIVE_INSTALL |
                    base.Capabilities.DISK_SIZE |
                    base.Capabilities.RESUME)
    #: set on the blank disk so that rescue powers it off at once; Nova
    #: copies it to the snapshot
    UNWANTED_PROPERTIES = ('os_shutdown_timeout',)
    OPTIONS = [
        cfg.StrOpt('min_compute_microversion',
                   default='2.87',
                   help='Least compute API microversion of the rescue '
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

        maximum = compute.max_microversion(conn)
        needed = discover.normalize_version_number(self._microversion())
        if not maximum or tuple(maximum) < tuple(needed):
            raise exception.CloudUnsupported(
                reason=_('the compute API offers microversions up to '
                         '%(max)s, and the %(backend)s backend needs '
                         '%(min)s or later (stable device rescue: rescue '
                         'with an ISO on a CD-ROM, hw_rescue_device=cdrom, '
                         'Victoria or later). Ask the cloud operator, or '
                         'use another backend.') %
                {'max': discover.version_to_string(maximum)
                 if maximum else _('none'), 'min': self._microversion(),
                 'backend': self.NAME})

    # -- prepare ----------------------------------------------------------

    def _needs(self, ctx):
        """The least root disk (GiB) and RAM (MiB) the build needs."""
        disk = max(ctx.request.disk_size or 1, ctx.iso.min_disk or 0)
        ram = max(self.options.min_ram, ctx.iso.min_ram or 0)
        return disk, ram

    @staticmethod
    def _fitting(conn, disk, ram):
        return sorted((f for f in compute.flavors(conn)
                       if f.disk and f.disk >= disk and f.ram >= ram),
                      key=lambda f: (f.disk, f.ram, f.vcpus, f.name))

    def _choose_flavor(self, ctx):
        """The flavor asked for, checked, or the smallest that fits.

        The system disk is the flavor's root disk (Nova grows the blank
        image to it): a flavor whose root disk is smaller than the ISO's
        ``min_disk`` or ``--disk-size`` is refused, and so is a flavor of
        root disk 0, which Nova sizes after the 1 MiB blank image.
        """
        conn = ctx.conn
        name = ctx.request.flavor or ctx.conf.isoplugin.flavor
        size = ctx.request.disk_size
        disk, ram = self._needs(ctx)
        if not name:
            fits = self._fitting(conn, disk, ram)
            if not fits:
                raise exception.InvalidInput(
                    reason=_('no flavor has a root disk of %(d)s GiB or '
                             'more and %(r)s MiB of RAM or more; give one '
                             'with --flavor') % {'d': disk, 'r': ram})
            return fits[0]
        flavor = compute.find_flavor(conn, name)
        if flavor is None:
            raise exception.InvalidInput(reason=_('no flavor %s') % name)
        if flavor.disk and flavor.disk >= disk:
            return flavor
        fits = self._fitting(conn, disk, ram)
        advice = (_('give a flavor with a root disk of %(d)s GiB or more '
                    'with --flavor (the smallest: %(f)s)') %
                  {'d': disk, 'f': fits[0].name} if fits else
                  _('no flavor of this cloud has a root disk of %s GiB or '
                    'more: ask the cloud operator for one') % disk)
        advice += _('; the nova-rescue backend\'s system disk is the '
                    'flavor\'s root disk, so --disk-size cannot make it '
                    'bigger')
        if not flavor.disk:
            has = _('a root disk of 0 GiB (Nova sizes it after the image: '
                    'the 1 MiB blank disk)')
        else:
            has = _('a %s GiB root disk') % flavor.disk
        if size and size > (ctx.iso.min_disk or 0):
            why = _('--disk-size')
        else:
            why = _("the ISO's min_disk")
        raise exception.FlavorDiskTooSmall(flavor=name, has=has, needed=disk,
                                           why=why, advice=advice)

    def check_request(self, ctx):
        """Refuse a flavor that cannot hold the system, before anything.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.FlavorDiskTooSmall: the flavor's root
            disk is smaller than the ISO's ``min_disk`` or ``--disk-size``.
        :raises isoplugin.exception.InvalidInput: no such flavor, or none
            fits.
        """
        self._choose_flavor(ctx)

    def prepare(self, ctx):
        """Choose the flavor and upload the blank system disk image.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.InvalidInput: no fitting flavor (as
            :meth:`check_request`).
        :raises isoplugin.exception.CloudError: Glance refused.
        """
        conn = ctx.conn
        res = ctx.resources
        flavor = self._choose_flavor(ctx)
        res.flavor_id = flavor.id
        # Nova grows the blank image to the flavor's root disk
        res.disk_gb = flavor.disk
        if ctx.request.network or ctx.conf.isoplugin.network:
            network = conn.network.find_network(
                ctx.request.network or ctx.conf.isoplugin.network,
                ignore_missing=False)
            res.network_id = network.id
        if res.disk_image_id:
            blank = glance.get_image(conn, res.disk_image_id)
            if glance.flat(blank).get('status') == 'active':
                return
            # the client died while uploading it: make a new one
            glance.delete_image(conn, res.disk_image_id)
            res.disk_image_id = None
        body = {'name': '%sdisk-%s' % (self.options.server_name_prefix,
                                       ctx.build_id),
                'disk_format': 'raw', 'container_format': 'bare',
                'visibility': 'private'}
        # The build server installs onto the bus the output image will use.
        body.update(self.image_properties(ctx))
        # Rescue first asks the guest to shut down and waits up to the
        # cloud's shutdown_timeout (60 s by default) for an answer that a
        # blank disk never gives: power it off at once. The output image
        # does not inherit this (UNWANTED_PROPERTIES).
        body['os_shutdown_timeout'] = '0'
        body.update(ctx.record_fields(base.ROLE_BLANK))
        image_id = glance.flat(glance.create_image(conn, **body))['id']
        res.disk_image_id = image_id
        glance.upload_data(
            conn, image_id,
            b'\0' * (self.options.blank_disk_size * 1024 * 1024))

        def probe():
            status = glance.flat(glance.get_image(conn, image_id)).get(
                'status')
            if status in ('killed', 'deleted'):
                raise exception.CloudError(
                    reason=_('the blank disk image went %s') % status)
            return status == 'active', status

        ctx.wait(probe, _('the blank disk image'),
                 ctx.conf.isoplugin.boot_timeout)

    # -- boot ---------------------------------------------------------------

    @staticmethod
    def _server(ctx):
        return compute.get_server(ctx.conn, ctx.resources.server_id)

    @staticmethod
    def _error_message(server):
        return (_('the build server went to ERROR: %s') %
                (compute.server_fault(server) or _('no fault given')))

    def boot(self, ctx):
        """Boot the temporary server from the blank disk; wait for ACTIVE.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: the server went to ERROR.
        """
        res = ctx.resources
        if not res.server_id:
            server = compute.create_server(
                ctx.conn, name=self.options.server_name_prefix +
                ctx.build_id,
                image_id=res.disk_image_id, flavor_id=res.flavor_id,
                network_id=res.network_id,
                metadata=ctx.record_fields(base.ROLE_BUILD_SERVER))
            res.server_id = server.id

        def probe():
            server = self._server(ctx)
            if server.status == 'ERROR':
                raise exception.CloudError(
                    reason=self._error_message(server))
            return (server.status in ('ACTIVE', 'RESCUE', 'SHUTOFF') and
                    not server.task_state), server.status

        ctx.wait(probe, _('the build server to become ACTIVE'),
                 ctx.conf.isoplugin.boot_timeout)

    # -- install --------------------------------------------------------------

    def start_install(self, ctx):
        """Rescue the server with the ISO (unless it is already rescued).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: Nova refused.
        """
        server = self._server(ctx)
        if server.status == 'RESCUE' or server.task_state == 'rescuing':
            return
        compute.rescue_server(ctx.conn, server.id, ctx.iso.id,
                              self._microversion())

    def install_state(self, ctx):
        """One GET of the server: RESCUE and powered off is FINISHED.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :returns: ``(InstallState, detail)``.
        """
        server = self._server(ctx)
        detail = '%s/%s' % (server.status, server.power_state)
        if server.status == 'ERROR':
            return base.InstallState.FAILED, self._error_message(server)
        if server.task_state:
            return base.InstallState.RUNNING, detail
        if (server.status == 'RESCUE' and
                server.power_state == POWER_SHUTDOWN) or \
                server.status == 'SHUTOFF':
            return base.InstallState.FINISHED, detail
        return base.InstallState.RUNNING, detail

    # -- detach ---------------------------------------------------------------

    def _settle(self, ctx, what, until):
        """Wait until the server has no task and ``until(server)``.

        :returns: the server's status then.
        :raises isoplugin.exception.CloudError: it went to ERROR.
        """
        def probe():
            server = self._server(ctx)
            if server.status == 'ERROR':
                raise exception.CloudError(
                    reason=self._error_message(server))
            if server.task_state:
                return False, '%s/%s' % (server.status, server.task_state)
            return until(server), server.status

        return ctx.wait(probe, what, ctx.conf.isoplugin.boot_timeout)

    def _action_failed(self, ctx, name, attempt):
        """A server action ended with no effect: ask again, or give up.

        :param name: the action (``unrescue``, ``stop``).
        :param attempt: the attempt that failed (1 for the first).
        :returns: the next attempt's number.
        :raises isoplugin.exception.CloudError: ``ACTION_ATTEMPTS`` failed.
        """
        why = (compute.last_action_error(ctx.conn, ctx.resources.server_id)
               or _('no error recorded'))
        if attempt >= ACTION_ATTEMPTS:
            raise exception.CloudError(
                reason=_('Nova failed to %(action)s the build server '
                         '%(id)s %(n)d times (%(why)s)') % {
                    'action': name, 'id': ctx.resources.server_id,
                    'n': attempt, 'why': why})
        LOG.warning('Nova failed to %(action)s the build server %(id)s '
                    '(%(why)s); asking again', {
                        'action': name, 'id': ctx.resources.server_id,
                        'why': why})
        return attempt + 1

    def detach(self, ctx):
        """Unrescue (the ISO goes away), then stop the server.

        One wait per action, so that the pipeline's backoff starts again at
        ``poll_interval`` after each (the next action follows its end
        sooner). Every step looks first, so that it survives races (the
        installed system powering itself off: 409 on os-stop) and resumes.
        An action that nova-compute failed and reverted (the server back in
        its old state, no task) is sent again, up to ``ACTION_ATTEMPTS``
        times in all.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: the server went to ERROR,
            or did not end up SHUTOFF.
        """
        from openstack import exceptions as sdk_exc

        status = self._settle(ctx, _('the build server to settle'),
                              lambda server: True)
        steps = (('RESCUE', 'unrescue', compute.unrescue_server,
                  _('the build server to leave rescue')),
                 ('ACTIVE', 'stop', compute.stop_server,
                  _('the build server to stop')))
        for before, name, action, what in steps:
            attempt = 1
            while status == before:
                try:
                    action(ctx.conn, ctx.resources.server_id)
                except sdk_exc.ConflictException:
                    pass  # the state changed under us; look again
                # Nova sets the task state before it answers: a server
                # back in its old state with no task is an action that
                # nova-compute failed and reverted (its call to the
                # conductor timed out while RabbitMQ restarted...)
                status = self._settle(ctx, what, lambda server: True)
                if status == before:
                    attempt = self._action_failed(ctx, name, attempt)
        if status != 'SHUTOFF':
            raise exception.CloudError(
                reason=_('the build server is %s after unrescue and stop, '
                         'not SHUTOFF') % status)

    # -- snapshot -------------------------------------------------------------

    def snapshot(self, ctx, name, properties):
        """createImage of the stopped server.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :param name: the new image's name.
        :param properties: properties the image carries from its creation.
        :returns: the new image's id.
        """
        return compute.create_server_image(ctx.conn, ctx.resources.server_id,
                                           name, properties)

    def image_properties(self, ctx):
        """``hw_disk_bus`` and ``image_properties`` from the configuration.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :returns: a dict.
        """
        props = {}
        if self.options.hw_disk_bus:
            props['hw_disk_bus'] = self.options.hw_disk_bus
        props.update(self.options.image_properties or {})
        return props

    def describe_failure(self, ctx):
        """The server's fault, else the last failed instance action event.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :returns: a message or ``None``.
        """
        if not ctx.resources.server_id:
            return None
        fault = compute.server_fault(self._server(ctx))
        return fault or compute.last_action_error(ctx.conn,
                                                  ctx.resources.server_id)

    def console_url(self, ctx):
        """The first remote console the cloud offers for the server.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :returns: ``(type, url)``.
        :raises isoplugin.exception.CloudUnsupported: no console type works.
        """
        found, errors = compute.remote_console(ctx.conn,
                                               ctx.resources.server_id)
        if found:
            return found
        raise exception.CloudUnsupported(
            reason=_('the cloud offers no remote console for the build '
                     'server (%s)') % ', '.join(errors))
