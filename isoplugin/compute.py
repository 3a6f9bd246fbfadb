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

"""The one way isoplugin talks to Compute (Nova).

Thin functions over openstacksdk's compute proxy (``conn.compute``); the
pipeline and the backends call these, never the proxy's raw ``get`` /
``post``. They raise openstacksdk's exceptions, which the caller turns into
isoplugin's with :func:`isoplugin.cloud.translate_errors` (the pipeline
does so around every backend call).

One request is sent raw, where openstacksdk lacks the means: see
:func:`rescue_server`.

Retries: the compute proxy has the ``[compute]`` retry settings
(:func:`isoplugin.cloud.use_retries`), so that keystoneauth1 sends a
request again when Nova cannot be reached or does not answer. The one
request that must not be sent twice, a server's creation, is sent without
them by :func:`create_server`, which looks for the server by its name
before it tries again.
"""

import copy
import re
import time

from oslo_log import log as logging

from isoplugin import cloud
from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

#: remote console (protocol, type) pairs :func:`remote_console` tries
CONSOLES = (('vnc', 'novnc'), ('spice', 'spice-html5'),
            ('serial', 'serial'), ('mks', 'webmks'), ('rdp', 'rdp-html5'))


def _version(text):
    from keystoneauth1 import discover

    return tuple(discover.normalize_version_number(text))


def max_microversion(conn):
    """The highest compute API microversion the cloud offers.

    :param conn: an :class:`openstack.connection.Connection`.
    :returns: a version tuple such as ``(2, 96)``, or ``None`` when the
        endpoint announces none.
    """
    data = conn.compute.get_endpoint_data()
    maximum = getattr(data, 'max_microversion', None)
    return tuple(maximum) if maximum else None


def server_fault(server):
    """The message of a server's fault, or ``None``.

    :param server: an :class:`openstack.compute.v2.server.Server`.
    :returns: a string or ``None``.
    """
    fault = getattr(server, 'fault', None)
    if isinstance(fault, dict):
        return fault.get('message') or fault.get('details')
    return fault or None


def create_server(conn, name, flavor_id, metadata, network_id=None,
                  image_id=None, block_device_mapping=None):
    """Create a server (does not wait).

    :param conn: an :class:`openstack.connection.Connection`.
    :param name: the server's name.
    :param flavor_id: its flavor.
    :param metadata: its metadata (the build record).
    :param network_id: the network to attach, ``None`` for none.
    :param image_id: the image to boot from.
    :param block_device_mapping: a ``block_device_mapping_v2`` list, to
        boot from a volume instead.
    :returns: the :class:`openstack.compute.v2.server.Server`.
    """
    attrs = {'name': name, 'flavor_id': flavor_id, 'metadata': metadata,
             'networks': ([{'uuid': network_id}] if network_id
                          else 'none')}
    if image_id:
        attrs['image_id'] = image_id
    if block_device_mapping:
        attrs['block_device_mapping'] = block_device_mapping
    return _create_once(conn, name, attrs)


def _once(proxy):
    """A copy of ``proxy`` that never retries (it shares the session)."""
    once = copy.copy(proxy)
    once.connect_retries = 0
    once.status_code_retries = 0
    return once


def _create_once(conn, name, attrs):
    """POST the server with no retry; after a failed connection, look.

    A POST whose connection failed may have created the server (Nova got
    it, then the connection closed or timed out) or not (refused). The
    server's name is unique (it carries the build id): it is looked for
    (a GET, retried), and the POST is sent again only when there is none,
    as many times as ``[compute] connect_retries``, 0.5 s doubling apart.
    """
    from keystoneauth1 import exceptions as ks_exc

    tries = conn.compute.connect_retries or 0
    delay = conn.compute.connect_retry_delay or 0.5
    for attempt in range(tries + 1):
        try:
            return _once(conn.compute).create_server(**attrs)
        except ks_exc.RetriableConnectionFailure as e:
            if attempt >= tries:
                raise
            LOG.warning('Creating server %(name)s failed (%(error)s); '
                        'looking for it in %(delay).1f s before trying '
                        'again', {'name': name, 'delay': delay,
                                  'error': cloud.connection_failure(e)[1]})
            time.sleep(delay)
            delay = min(delay * 2, 60)
            found = server_named(conn, name)
            if found is not None:
                LOG.info('Server %(name)s was created (%(id)s)',
                         {'name': name, 'id': found.id})
                return found


def server_named(conn, name):
    """The project's server of exactly that name, or ``None`` (one GET)."""
    for server in conn.compute.servers(name='^%s$' % re.escape(name)):
        if server.name == name:
            return server
    return None


def get_server(conn, server_id):
    """One GET of a server.

    :raises openstack.exceptions.NotFoundException: it does not exist.
    """
    return conn.compute.get_server(server_id)


def find_server(conn, server_id):
    """The server, or ``None`` when it is gone (one GET)."""
    from openstack import exceptions as sdk_exc

    try:
        return conn.compute.find_server(server_id, ignore_missing=True)
    except sdk_exc.NotFoundException:
        return None


def servers(conn, **query):
    """Every server of the project, with details (all pages).

    :param query: Nova filters (``all_projects``, ``project_id``...).
    """
    return conn.compute.servers(details=True, **query)


def delete_server(conn, server_id):
    """Ask for a server's deletion (does not wait); gone is not an error."""
    conn.compute.delete_server(server_id, ignore_missing=True)


def rescue_server(conn, server_id, image_id, microversion):
    """Rescue a server with ``image_id`` at ``microversion`` or later.

    openstacksdk's ``rescue_server`` sends the session's default
    microversion when one is configured (``compute_default_microversion``),
    else the highest both sides support; it cannot be asked for a minimum.
    When a configured default is older than ``microversion``, the action is
    sent raw with ``microversion``: what the SDK lacks is a per-call
    microversion for server actions.

    :param conn: an :class:`openstack.connection.Connection`.
    :param server_id: the server.
    :param image_id: the rescue image.
    :param microversion: the least microversion the rescue needs (stable
        device rescue is 2.87).
    """
    from openstack import exceptions as sdk_exc

    pinned = conn.compute.default_microversion
    if pinned and _version(pinned) < _version(microversion):
        resp = conn.compute.post(
            '/servers/%s/action' % server_id,
            json={'rescue': {'rescue_image_ref': image_id}},
            microversion=microversion)
        sdk_exc.raise_from_response(resp)
        return
    conn.compute.rescue_server(server_id, image=image_id)


def unrescue_server(conn, server_id):
    """Leave rescue (does not wait)."""
    conn.compute.unrescue_server(server_id)


def stop_server(conn, server_id):
    """Power a server off (does not wait)."""
    conn.compute.stop_server(server_id)


def create_server_image(conn, server_id, name, metadata):
    """Snapshot a server (createImage); does not wait for the image.

    openstacksdk's ``create_server_image`` also GETs the new image; the
    server resource's ``create_image`` (what it calls) returns the id
    alone, which is all a build needs.

    Nova answers 500 when Glance refuses the snapshot image for the
    project's quota (it does not translate Glance's 413): after a refusal,
    Glance's usage (``/v2/info/usage``) is read, and a full image quota is
    reported as such.

    :returns: the new image's id.
    :raises isoplugin.exception.OverQuota: the image quota is full.
    """
    from openstack.compute.v2 import server as _server
    from openstack import exceptions as sdk_exc

    try:
        return _server.Server.existing(id=server_id).create_image(
            conn.compute, name, metadata)
    except sdk_exc.HttpException as e:
        full = image_quota_full(conn)
        if full:
            raise exception.OverQuota(
                service='Nova', during=_('the snapshot (createImage)'),
                reason=_('%(full)s; Nova answered HTTP %(code)s') % {
                    'full': full, 'code': e.status_code}) from e
        raise


def image_quota_full(conn):
    """What of the project's image quota leaves no room for one more image.

    :returns: e.g. ``"image_count_total is 12 of 12"``, or ``None`` when
        there is room or Glance does not say.
    """
    from isoplugin import glance

    try:
        usage = glance.usage(conn)
    except exception.IsopluginException:
        LOG.debug('Cannot read the image quota usage', exc_info=True)
        return None
    for resource, delta in (('image_count_total', 1),
                            ('image_size_total', 0)):
        entry = usage.get(resource) or {}
        limit = entry.get('limit')
        if limit is None or limit < 0:
            continue
        if entry.get('usage', 0) + delta > limit or (
                delta == 0 and entry.get('usage', 0) >= limit):
            unit = ' MiB' if resource == 'image_size_total' else ''
            return _("Glance's %(resource)s is %(usage)s%(unit)s of "
                     "%(limit)s%(unit)s") % {
                'resource': resource, 'usage': entry.get('usage', 0),
                'limit': limit, 'unit': unit}
    return None


def console_output(conn, server_id):
    """The server's console log, a string (empty when there is none).

    :raises openstack.exceptions.NotFoundException: Nova has no console
        log to give (see :func:`console_unreadable`), or the server is
        gone.
    """
    return conn.compute.get_server_console_output(server_id).get(
        'output') or ''


def console_unreadable(server, error):
    """Why Nova gives no console log of ``server``, in one sentence.

    Nova's libvirt driver finds the log through the guest's live domain
    XML: a ``file`` console's path, a ``tcp`` serial console's ``<log
    file>`` (``[serial_console] enabled = true``), or a ``pty`` console's
    device path. A pty (the default, its output kept in ``console.log``
    by virtlogd) has a path only while the guest runs, so for a guest that
    is off ``os-getConsoleOutput`` answers 404 "Guest does not have a
    console available" although ``console.log`` is on the compute node.

    :param server: the server as Nova shows it now (its ``status``).
    :param error: the exception ``os-getConsoleOutput`` raised.
    :returns: a string.
    """
    status = getattr(server, 'status', None)
    code = getattr(error, 'status_code', None)
    message = getattr(error, 'details', None) or str(error)
    if status == 'SHUTOFF' and code == 404:
        return _('Nova gives no console log of a stopped server here '
                 '("%s"): its libvirt driver reads the log of a guest that '
                 'is off only from a TCP serial console ([serial_console] '
                 'enabled = true on the compute node); with the default pty '
                 'console it reads the log only while the guest '
                 'runs') % message
    return _('Nova gives no console log of the %(status)s server '
             '(%(code)s: %(message)s)') % {
        'status': status, 'code': code or _('no status'),
        'message': message}


def remote_console(conn, server_id, consoles=CONSOLES):
    """The first remote console the cloud gives for a server.

    :param consoles: ``(protocol, type)`` pairs to try in order.
    :returns: ``((type, url), [])`` for the first that works, or
        ``(None, errors)`` with one ``"type: error"`` per failed type.
    """
    from openstack import exceptions as sdk_exc

    errors = []
    for protocol, kind in consoles:
        try:
            console = conn.compute.create_console(
                server_id, console_type=kind, console_protocol=protocol)
        except (sdk_exc.SDKException, ValueError) as e:
            code = getattr(e, 'status_code', None)
            errors.append('%s: %s' % (kind, code or e))
            continue
        if console and console.get('url'):
            return (kind, console['url']), errors
        errors.append('%s: %s' % (kind, _('no URL')))
    return None, errors


def last_action_error(conn, server_id, actions=3):
    """The newest failed event of a server's last instance actions.

    :param actions: how many of the newest actions to look at.
    :returns: ``"<action>: <details>"`` or ``None``.
    """
    from openstack import exceptions as sdk_exc

    try:
        recent = list(conn.compute.server_actions(server_id))[:actions]
    except sdk_exc.SDKException:
        return None
    for action in recent:  # newest first
        try:
            detail = conn.compute.get_server_action(
                action.request_id, server_id, ignore_missing=True)
        except sdk_exc.SDKException:
            continue
        for event in (detail.events if detail else None) or []:
            if _field(event, 'result') == 'Error':
                return '%s: %s' % (action.action,
                                   _field(event, 'details') or
                                   action.message or _field(event, 'event'))
    return None


def _field(obj, key):
    # events come as ServerActionEvent resources, or dicts from old SDKs
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def find_flavor(conn, name_or_id):
    """The flavor of that name or id, or ``None``."""
    return conn.compute.find_flavor(name_or_id, ignore_missing=True)


def flavors(conn):
    """Every flavor, with details."""
    return conn.compute.flavors(details=True)
