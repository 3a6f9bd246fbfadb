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

"""The ``nova-volume`` backend: Nova, Cinder and Glance.

For clouds whose servers boot from Cinder volumes (flavors with a 0 GiB
root disk, Ceph behind Cinder). A blank Cinder volume, carrying the build
record in its metadata, is the system disk; a server with no network
boots from it (``source_type=volume``, ``boot_index=0``); the server is
rescued with the ISO as a stable-device rescue image (microversion 2.87,
which rescues volume-backed servers; the ISO's ``hw_rescue_device=cdrom``
puts it on a CD-ROM); the installer writes the volume and powers off;
unrescue takes the ISO away; the server is stopped and deleted, which
detaches the volume; Cinder uploads the volume to a new Glance image
(``os-volume_upload_image``), a standalone image with its data in Glance.
``createImage`` is never used: of a volume-backed server it makes a
zero-byte image of Cinder snapshot references.

The backend creates the volume itself instead of asking Nova for a
``source_type=blank`` one: a volume Nova creates carries no metadata, so
a build killed before it could tag the volume would leave a volume that
nothing finds again.
"""

from oslo_config import cfg
from oslo_log import log as logging

from isoplugin.backends import base
from isoplugin.backends import nova_rescue
from isoplugin import compute
from isoplugin import exception
from isoplugin.i18n import _
from isoplugin import volume

LOG = logging.getLogger(__name__)

#: role of the build's system volume (its metadata carries the record)
ROLE_SYSTEM_VOLUME = base.ROLE_SYSTEM_VOLUME
#: volume metadata key (after the prefix) saying the install is on it and
#: its server is gone: a resumed build does not boot it again
STATE_KEY = 'volume_state'
INSTALLED = 'installed'


class NovaVolumeBackend(nova_rescue.NovaRescueBackend):
    """Install on a Cinder volume: boot from it, rescue with the ISO."""

    NAME = 'nova-volume'
    CAPABILITIES = (nova_rescue.NovaRescueBackend.CAPABILITIES |
                    base.Capabilities.VOLUME_DISK)
    UNWANTED_PROPERTIES = ()
    #: nova-rescue's options of the server and the output (the same option
    #: objects), and the volume's own
    OPTIONS = [o for o in nova_rescue.NovaRescueBackend.OPTIONS
               if o.name in ('min_compute_microversion', 'min_ram',
                             'server_name_prefix', 'hw_disk_bus',
                             'image_properties')] + [
        cfg.IntOpt('volume_size',
                   default=10, min=1,
                   help='Size in GiB of the system volume when neither '
                        '--disk-size nor the flavor\'s root disk gives one '
                        '(the ISO\'s min_disk counts too).'),
        cfg.StrOpt('volume_type',
                   help='Volume type of the system volume; unset for the '
                        'cloud\'s default.'),
        cfg.StrOpt('upload_disk_format',
                   default='raw', choices=['raw', 'qcow2'],
                   help='Disk format of the output image Cinder uploads '
                        '(qcow2 is smaller, raw boots from Ceph without a '
                        'conversion).'),
        cfg.StrOpt('verify_boot',
                   default='volume', choices=['volume', 'image'],
                   help='How --verify boots the output: from a new volume '
                        'made from it (as on a boot-from-volume cloud), or '
                        'from the image directly (needs a flavor with a '
                        'root disk).'),
    ]

    def __init__(self, conf):
        super().__init__(conf)
        #: build id -> system volume id, so a build looks it up once
        self._volumes = {}

    # -- checks ---------------------------------------------------------

    def check_cloud(self, conn):
        """Refuse a cloud without Cinder or without stable device rescue.

        :param conn: an :class:`openstack.connection.Connection`.
        :raises isoplugin.exception.CloudUnsupported: no Block Storage
            service in the catalog, or compute microversions below
            ``min_compute_microversion``.
        """
        if not volume.has_service(conn):
            raise exception.CloudUnsupported(
                reason=_('the cloud has no Block Storage (Cinder) service '
                         'in its catalog, and the nova-volume backend '
                         'installs on a Cinder volume. Use the nova-rescue '
                         'backend (--backend nova-rescue).'))
        # stable device rescue, as nova-rescue: at 2.87 it also rescues
        # volume-backed servers
        super().check_cloud(conn)

    def _choose_flavor(self, ctx):
        """The flavor asked for, or the smallest in RAM that fits.

        Any root disk does, 0 GiB included: the system disk is the volume.
        """
        name = ctx.request.flavor or ctx.conf.isoplugin.flavor
        _disk, ram = self._needs(ctx)
        if name:
            flavor = compute.find_flavor(ctx.conn, name)
            if flavor is None:
                raise exception.InvalidInput(reason=_('no flavor %s') % name)
            return flavor
        fits = sorted((f for f in compute.flavors(ctx.conn) if f.ram >= ram),
                      key=lambda f: (f.ram, f.vcpus, f.disk, f.name))
        if not fits:
            raise exception.InvalidInput(
                reason=_('no flavor has %s MiB of RAM or more; give one '
                         'with --flavor') % ram)
        return fits[0]

    def _size(self, ctx, flavor):
        """The system volume's size in GiB.

        ``--disk-size``, else the flavor's root disk, else
        ``volume_size``; never below the ISO's ``min_disk``.
        """
        size = (ctx.request.disk_size or flavor.disk or
                self.options.volume_size)
        return max(size, ctx.iso.min_disk or 0)

    def _check_quota(self, ctx, size):
        absolute = volume.limits(ctx.conn)
        rows = ((_('volumes'), 1, absolute.total_volumes_used,
                 absolute.max_total_volumes),
                (_('gigabytes'), size, absolute.total_gigabytes_used,
                 absolute.max_total_volume_gigabytes))
        for what, needed, used, limit in rows:
            if limit is None or limit < 0 or used is None:
                continue
            if used + needed > limit:
                raise exception.QuotaExceeded(_(
                    "The build's system volume would exceed the project's "
                    "volume quota: %(what)s would be %(total)s, the limit "
                    "is %(limit)s. Delete volumes, give a smaller "
                    "--disk-size, or ask for more quota.") % {
                    'what': what, 'total': used + needed, 'limit': limit})

    def check_request(self, ctx):
        """Refuse, before anything exists, what the cloud cannot give.

        A flavor that does not exist, a volume type that does not exist,
        a 0 GiB root flavor with ``verify_boot = image``, and a system
        volume over the project's volume quota (volumes, gigabytes).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.InvalidInput: no such flavor or type.
        :raises isoplugin.exception.QuotaExceeded: over the volume quota.
        """
        flavor = self._choose_flavor(ctx)
        vtype = self.options.volume_type
        if vtype and volume.find_type(ctx.conn, vtype) is None:
            raise exception.InvalidInput(
                reason=_('no volume type %s; set [%s] volume_type to one '
                         'that "openstack volume type list" shows, or '
                         'unset it') % (vtype, self.config_group()))
        verify = (ctx.request.verify if ctx.request.verify is not None
                  else ctx.conf.isoplugin.verify)
        if verify and self.options.verify_boot == 'image' and not flavor.disk:
            raise exception.InvalidInput(
                reason=_('flavor %(f)s has a 0 GiB root disk, on which Nova '
                         'boots no image-backed verify server; set '
                         '[%(g)s] verify_boot = volume, give a flavor with '
                         'a root disk, or build with --no-verify') %
                {'f': flavor.name, 'g': self.config_group()})
        self._check_quota(ctx, self._size(ctx, flavor))

    # -- the system volume ------------------------------------------------

    def _key(self, ctx, name):
        return ctx.conf.glance.property_prefix + name

    def _volume(self, ctx):
        """The build's system volume, or ``None`` before it exists."""
        volume_id = self._volumes.get(ctx.build_id)
        if volume_id:
            return volume.find_volume(ctx.conn, volume_id)
        found = volume.find_volumes(ctx.conn, {
            self._key(ctx, 'build_id'): ctx.build_id,
            self._key(ctx, 'role'): ROLE_SYSTEM_VOLUME})
        if not found:
            return None
        self._volumes[ctx.build_id] = found[0].id
        ctx.resources.volume_id = found[0].id
        return found[0]

    def _installed(self, ctx, vol):
        return (vol is not None and
                (vol.metadata or {}).get(self._key(ctx, STATE_KEY)) ==
                INSTALLED)

    def _wait_available(self, ctx, volume_id, what):
        def probe():
            vol = volume.get_volume(ctx.conn, volume_id)
            if vol.status in volume.FAILED_STATUSES:
                raise exception.CloudError(
                    reason=_('the system volume %(id)s went to %(status)s')
                    % {'id': volume_id, 'status': vol.status})
            return vol.status == 'available', vol.status

        ctx.wait(probe, what, ctx.conf.isoplugin.boot_timeout)

    def prepare(self, ctx):
        """Choose the flavor; create the system volume and make it bootable.

        The blank volume is created, awaited until ``available``, then
        given ``hw_disk_bus`` as image metadata and the ``bootable`` flag
        Nova needs of a boot volume.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.InvalidInput: no such flavor.
        :raises isoplugin.exception.CloudError: Cinder refused, or the
            volume went to error.
        """
        res = ctx.resources
        flavor = self._choose_flavor(ctx)
        res.flavor_id = flavor.id
        if ctx.request.network or ctx.conf.isoplugin.network:
            network = ctx.conn.network.find_network(
                ctx.request.network or ctx.conf.isoplugin.network,
                ignore_missing=False)
            res.network_id = network.id
        vol = self._volume(ctx)
        if vol is not None and vol.status in volume.FAILED_STATUSES:
            volume.delete_volume(ctx.conn, vol.id)  # make a new one
            self._volumes.pop(ctx.build_id, None)
            vol = None
        if vol is None:
            vol = volume.create_volume(
                ctx.conn,
                name='%sdisk-%s' % (self.options.server_name_prefix,
                                    ctx.build_id),
                size=self._size(ctx, flavor),
                volume_type=self.options.volume_type,
                metadata=ctx.record_fields(ROLE_SYSTEM_VOLUME))
            self._volumes[ctx.build_id] = vol.id
        res.disk_gb = vol.size
        res.volume_id = vol.id
        if vol.status != 'available':
            self._wait_available(ctx, vol.id,
                                 _('the system volume to become available'))
        if not vol.is_bootable:
            bus = ({'hw_disk_bus': self.options.hw_disk_bus}
                   if self.options.hw_disk_bus else None)
            volume.make_bootable(ctx.conn, vol.id, image_metadata=bus)

    # -- boot -------------------------------------------------------------

    def boot(self, ctx):
        """Boot the server from the system volume; wait until it runs.

        Boots nothing when the volume says the install is done (a resumed
        build whose server was deleted).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: the server went to ERROR.
        """
        res = ctx.resources
        if not res.server_id:
            vol = self._volume(ctx)
            if vol is None:
                raise exception.CloudError(
                    reason=_('the system volume of build %s is gone') %
                    ctx.build_id)
            if self._installed(ctx, vol):
                return
            server = compute.create_server(
                ctx.conn, name=self.options.server_name_prefix +
                ctx.build_id,
                flavor_id=res.flavor_id, network_id=res.network_id,
                block_device_mapping=[{
                    'uuid': vol.id, 'source_type': 'volume',
                    'destination_type': 'volume', 'boot_index': 0,
                    'delete_on_termination': False}],
                metadata=ctx.record_fields(base.ROLE_BUILD_SERVER))
            res.server_id = server.id
        super().boot(ctx)

    # -- install ----------------------------------------------------------

    def start_install(self, ctx):
        """Rescue the server with the ISO (not twice, not once installed).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        """
        if ctx.resources.server_id:
            super().start_install(ctx)

    def install_state(self, ctx):
        """As nova-rescue; FINISHED once the server is gone, installed.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :returns: ``(InstallState, detail)``.
        """
        if ctx.resources.server_id:
            return super().install_state(ctx)
        return base.InstallState.FINISHED, _('installed on the volume')

    # -- detach -----------------------------------------------------------

    def detach(self, ctx):
        """Unrescue and stop, then delete the server to free the volume.

        The volume is marked installed before its server is deleted, so a
        resumed build does not boot it again; then this waits until the
        server is gone and the volume ``available`` (Cinder uploads a
        detached volume only).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: the server or the volume
            went to ERROR.
        """
        vol = self._volume(ctx)
        if vol is None:
            raise exception.CloudError(
                reason=_('the system volume of build %s is gone') %
                ctx.build_id)
        if ctx.resources.server_id:
            super().detach(ctx)
            if not self._installed(ctx, vol):
                volume.set_metadata(ctx.conn, vol.id,
                                    {self._key(ctx, STATE_KEY): INSTALLED})
            # the base release deletes the server and waits until it is
            # gone; Nova then detaches the volume
            super().release(ctx)
        self._wait_available(ctx, vol.id,
                             _('the system volume to be detached'))

    # -- snapshot ---------------------------------------------------------

    def snapshot(self, ctx, name, properties):
        """Upload the system volume to a new image (does not wait).

        The image's properties are given to the volume as image metadata
        first: Cinder copies them into the new image, which so carries
        the build record from its creation.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :param name: the new image's name.
        :param properties: properties the image carries from its creation.
        :returns: the new image's id.
        """
        volume_id = self._volume(ctx).id
        meta = dict(self.image_properties(ctx))
        meta.update(properties)
        volume.set_image_metadata(ctx.conn, volume_id, meta)
        return volume.upload_to_image(
            ctx.conn, volume_id, name,
            disk_format=self.options.upload_disk_format)

    def release(self, ctx):
        """Delete the server if any, then the system volume; wait for both.

        The volume goes back to ``available`` shortly after the image it
        was uploaded to is active: this waits for that before deleting it,
        then until it is gone (Cinder counts it against the quota until
        then).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: Cinder could not delete it.
        """
        super().release(ctx)
        self.delete_volumes(ctx)

    def delete_volumes(self, ctx):
        """Delete every volume of the build and wait until they are gone.

        The cleanup of a build (success, failure, Ctrl-C) and of an orphan
        (``delete --orphans``) once the pipeline calls it: a volume still
        ``in-use``, ``uploading`` or ``creating`` is waited for first.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :raises isoplugin.exception.CloudError: a volume went to
            ``error_deleting``.
        """
        ids = [v.id for v in volume.find_volumes(
            ctx.conn, {self._key(ctx, 'build_id'): ctx.build_id})]
        for volume_id in ids:
            def probe(volume_id=volume_id):
                vol = volume.find_volume(ctx.conn, volume_id)
                if vol is None:
                    return True, _('gone')
                if vol.status == 'error_deleting':
                    raise exception.CloudError(
                        reason=_('Cinder could not delete the volume '
                                 '%s (error_deleting)') % volume_id)
                # asked again if it is back in a deletable status (a
                # failed upload makes it available after a deletion)
                if vol.status in volume.DELETABLE_STATUSES:
                    volume.delete_volume(ctx.conn, volume_id)
                return False, vol.status

            ctx.wait(probe, _('the build volume to be deleted'),
                     ctx.conf.isoplugin.delete_timeout)
        self._volumes.pop(ctx.build_id, None)
        ctx.resources.volume_id = None

    # -- verify and failures ----------------------------------------------

    def verify_server_args(self, ctx, image_id):
        """Boot the output from a new volume, or from the image, by setting.

        The volume Nova makes from the image is deleted with the verify
        server (``delete_on_termination``).

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :param image_id: the output image.
        :returns: arguments of :func:`isoplugin.compute.create_server`.
        """
        if self.options.verify_boot == 'image':
            return super().verify_server_args(ctx, image_id)
        return {'flavor_id': ctx.resources.flavor_id,
                'network_id': ctx.resources.network_id,
                'block_device_mapping': [{
                    'uuid': image_id, 'source_type': 'image',
                    'destination_type': 'volume', 'boot_index': 0,
                    'volume_size': ctx.resources.disk_gb,
                    'delete_on_termination': True}]}

    def describe_failure(self, ctx):
        """The server's fault, or the system volume's error status.

        :param ctx: the :class:`~isoplugin.backends.base.BuildContext`.
        :returns: a message or ``None``.
        """
        if ctx.resources.server_id:
            return super().describe_failure(ctx)
        vol = self._volume(ctx)
        if vol is not None and vol.status in volume.FAILED_STATUSES:
            return _('the system volume %(id)s is in %(status)s') % {
                'id': vol.id, 'status': vol.status}
        return None
