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

"""The one way isoplugin talks to Block Storage (Cinder).

Thin functions over openstacksdk's block storage proxy
(``conn.block_storage``); nothing else in isoplugin calls it. Every
function translates the cloud's errors with
:func:`isoplugin.cloud.translate_errors`, so that callers only see
:class:`isoplugin.exception.IsopluginException`.

openstacksdk has every call used here (``upload_volume_to_image`` is the
``os-volume_upload_image`` action): no request is sent raw.
"""

import functools
import json

from oslo_log import log as logging

from isoplugin import cloud
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

#: The service, as errors name it.
SERVICE = 'Cinder'

#: Statuses in which Cinder deletes a volume.
DELETABLE_STATUSES = ('available', 'error', 'error_restoring',
                      'error_extending', 'error_managing')

#: Statuses from which a volume cannot become usable any more.
FAILED_STATUSES = ('error', 'error_deleting', 'error_extending',
                   'error_restoring', 'error_managing')

_translate = functools.partial(cloud.translate_errors, service=SERVICE)


def has_service(conn):
    """Whether the cloud's catalog has a Block Storage service.

    :param conn: an :class:`openstack.connection.Connection`.
    :returns: a bool.
    """
    from keystoneauth1 import exceptions as ks_exc

    if not conn.config.has_service('block-storage'):
        return False  # disabled in the cloud's configuration
    try:
        # keystoneauth's catalog lookup (the aliases volumev3 and volume
        # included), as Connection.has_service does; that one also logs a
        # warning for a cloud without the service, which a build on such
        # a cloud would print at every cleanup
        return bool(conn.session.get_endpoint(
            service_type='block-storage',
            interface=conn.config.get_interface('block-storage'),
            region_name=conn.config.get_region_name('block-storage')))
    except ks_exc.EndpointNotFound:
        return False


def find_type(conn, name_or_id):
    """The volume type of that name or id, or ``None``.

    :param conn: an :class:`openstack.connection.Connection`.
    :param name_or_id: the type's name or id.
    :returns: an :class:`openstack.block_storage.v3.type.Type` or ``None``.
    """
    with _translate():
        return conn.block_storage.find_type(name_or_id, ignore_missing=True)


def limits(conn):
    """The project's absolute Block Storage limits and usage.

    :param conn: an :class:`openstack.connection.Connection`.
    :returns: an :class:`openstack.block_storage.v3.limits.AbsoluteLimit`
        (``max_total_volumes``, ``total_volumes_used``,
        ``max_total_volume_gigabytes``, ``total_gigabytes_used``; a
        maximum of -1 is no limit).
    """
    with _translate():
        return conn.block_storage.get_limits().absolute


def create_volume(conn, name, size, metadata, volume_type=None):
    """Create a blank volume (does not wait).

    :param conn: an :class:`openstack.connection.Connection`.
    :param name: the volume's name.
    :param size: its size in GiB.
    :param metadata: its metadata (the build record), from its creation.
    :param volume_type: a volume type's name or id, ``None`` for the
        cloud's default.
    :returns: the :class:`openstack.block_storage.v3.volume.Volume`.
    :raises isoplugin.exception.CloudError: Cinder refused (over quota,
        no such type...).
    """
    attrs = {'name': name, 'size': size, 'metadata': metadata}
    if volume_type:
        attrs['volume_type'] = volume_type
    what = _('volume type %s') % volume_type if volume_type else None
    with _translate(what=what, during=_('creating the volume')):
        volume = conn.block_storage.create_volume(**attrs)
    LOG.debug('Created volume %(id)s (%(size)s GiB)',
              {'id': volume.id, 'size': size})
    return volume


def make_bootable(conn, volume_id, image_metadata=None):
    """Make an available blank volume a boot disk Nova accepts.

    Nova refuses to boot from a volume whose ``bootable`` flag is false
    (``InvalidBDMVolumeNotBootable``), and Cinder makes blank volumes with
    the flag false (it sets it only for a volume made from an image).

    :param conn: an :class:`openstack.connection.Connection`.
    :param volume_id: the volume, ``available``.
    :param image_metadata: image metadata to give it first
        (``hw_disk_bus``...): Nova reads a boot volume's image metadata as
        the image properties of the server.
    """
    with _translate(what=_('Volume %s') % volume_id):
        if image_metadata:
            conn.block_storage.set_volume_image_metadata(volume_id,
                                                         **image_metadata)
        conn.block_storage.set_volume_bootable_status(volume_id, True)


def get_volume(conn, volume_id):
    """One GET of a volume.

    :raises isoplugin.exception.NotFound: it does not exist.
    """
    with _translate(what=_('Volume %s') % volume_id):
        return conn.block_storage.get_volume(volume_id)


def find_volume(conn, volume_id):
    """The volume, or ``None`` when it is gone (one GET)."""
    from openstack import exceptions as sdk_exc

    with _translate():
        try:
            return conn.block_storage.get_volume(volume_id)
        except sdk_exc.NotFoundException:
            return None


def find_volumes(conn, metadata):
    """The project's volumes whose metadata holds every pair of ``metadata``.

    Cinder filters by metadata; the result is checked again here, so that
    a cloud that ignores the filter cannot hand back a stranger's volume.

    :param conn: an :class:`openstack.connection.Connection`.
    :param metadata: a dict of strings.
    :returns: a list of :class:`openstack.block_storage.v3.volume.Volume`.
    """
    with _translate():
        found = conn.block_storage.volumes(
            details=True, properties=json.dumps(metadata, sort_keys=True))
        return [v for v in found
                if all((v.metadata or {}).get(k) == value
                       for k, value in metadata.items())]


def set_metadata(conn, volume_id, metadata):
    """Add or change metadata of a volume (other keys are kept)."""
    with _translate(what=_('Volume %s') % volume_id):
        conn.block_storage.set_volume_metadata(volume_id, **metadata)


def set_image_metadata(conn, volume_id, metadata):
    """Add or change the image metadata of a volume.

    Cinder copies a volume's image metadata (but for its
    ``glance_core_properties``) into the image
    :func:`upload_to_image` makes: that is how the image carries the build
    record from its creation.
    """
    with _translate(what=_('Volume %s') % volume_id):
        conn.block_storage.set_volume_image_metadata(volume_id, **metadata)


def upload_to_image(conn, volume_id, name, disk_format='raw',
                    container_format='bare'):
    """Start uploading a volume to a new Glance image (does not wait).

    Never forced: Cinder refuses an attached (``in-use``) volume unless
    its ``enable_force_upload`` is on, which it is not by default, and a
    disk in use is not consistent anyway. Detach it, or delete its
    server, first.

    :param conn: an :class:`openstack.connection.Connection`.
    :param volume_id: the volume, ``available``.
    :param name: the new image's name.
    :param disk_format: ``raw`` or ``qcow2`` (Cinder converts).
    :param container_format: the image's container format.
    :returns: the new image's id.
    :raises isoplugin.exception.CloudError: Cinder refused (the volume is
        attached, over the image quota...).
    """
    with _translate(what=_('Volume %s') % volume_id,
                    during=_('starting the upload of the volume')):
        answer = conn.block_storage.upload_volume_to_image(
            volume_id, name, force=False, disk_format=disk_format,
            container_format=container_format)
    return answer['image_id']


def delete_volume(conn, volume_id):
    """Ask for a volume's deletion (does not wait); gone is not an error.

    :raises isoplugin.exception.CloudError: Cinder refused (the volume is
        attached or busy: 400).
    """
    with _translate(what=_('Volume %s') % volume_id):
        conn.block_storage.delete_volume(volume_id, ignore_missing=True)


def wait_for_available(conn, volume_id, timeout):
    """Wait with openstacksdk's wait until a volume is ``available``.

    For callers outside a build (a build's backend waits through the
    pipeline's ``ctx.wait``, which never sleeps by itself).

    :param timeout: seconds.
    :returns: the volume.
    :raises isoplugin.exception.CloudError: it went to an error status.
    :raises isoplugin.exception.CloudTimeout: not available in time.
    """
    with _translate(what=_('Volume %s') % volume_id):
        volume = conn.block_storage.get_volume(volume_id)
        return conn.block_storage.wait_for_status(
            volume, 'available', failures=list(FAILED_STATUSES),
            interval=2, wait=timeout)


def wait_for_deleted(conn, volume_id, timeout):
    """Wait with openstacksdk's wait until a volume is gone.

    :param timeout: seconds.
    :raises isoplugin.exception.CloudTimeout: still there after it.
    """
    from openstack.block_storage.v3 import volume as _volume

    with _translate(what=_('Volume %s') % volume_id):
        conn.block_storage.wait_for_delete(
            _volume.Volume.existing(id=volume_id), interval=2,
            wait=timeout)


def delete_volume_and_wait(conn, volume_id, timeout, interval=2):
    """Delete a volume as soon as Cinder can, and wait until it is gone.

    For a cleanup (a build's, ``openstack iso build delete``,
    ``--orphans``), once the servers are gone: a volume that is still
    ``in-use``, ``detaching``, ``uploading`` or ``creating`` is waited for
    until Cinder accepts its deletion. The deletion is asked again when
    the volume is back in a deletable status afterwards: an upload that
    fails (its image deleted by the same cleanup) puts the volume back to
    ``available`` even after a deletion was accepted. Gone is not an
    error.

    :param timeout: seconds for the whole wait.
    :param interval: seconds between two looks (openstacksdk's wait).
    :raises isoplugin.exception.CloudError: Cinder could not delete it
        (``error_deleting``).
    :raises isoplugin.exception.CloudTimeout: it is still there.
    """
    from openstack import exceptions as sdk_exc
    from openstack import utils as sdk_utils

    with _translate(what=_('Volume %s') % volume_id,
                    during=_('deleting the volume')):
        for _count in sdk_utils.iterate_timeout(
                timeout, _('Timeout waiting for the deletion of volume '
                           '%s') % volume_id, wait=interval):
            try:
                vol = conn.block_storage.get_volume(volume_id)
            except sdk_exc.NotFoundException:
                return
            if vol.status == 'error_deleting':
                raise sdk_exc.ResourceFailure(
                    'Cinder could not delete volume %s (error_deleting)'
                    % volume_id)
            if vol.status in DELETABLE_STATUSES:
                try:
                    conn.block_storage.delete_volume(volume_id)
                except sdk_exc.NotFoundException:
                    return
                except sdk_exc.BadRequestException:
                    # its status changed since the look: look again
                    LOG.debug('Volume %s not deletable yet', volume_id)
