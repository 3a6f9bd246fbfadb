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

"""Builds as the cloud shows them: find, list, show, delete, finish.

The cloud is the state store of builds. Every resource a build creates
carries the build record: server metadata or image properties named
``<prefix>build_id``, ``role``, ``phase``, ``client`` (``host:pid`` of the
process driving the build), ``heartbeat`` (UNIX time, renewed every
``heartbeat_interval`` seconds while waiting) and what a resumed build
needs (output image name, visibility, tags, verify, flavor, disk size).
The pipeline keeps the live record in the properties of its *record image*
(role ``build-record``): an image with no data that it makes first and
deletes last; Glance lets its owner change properties at any time, whereas
Nova refuses server metadata updates in some states (RESCUE).

From these alone the functions here work from any client. A build is an
*orphan* when its client process is gone (checked on the client's host) or
its heartbeat is older than ``orphan_timeout``. Resuming a build runs the
pipeline again: :func:`isoplugin.build.resume_build`.
"""

import dataclasses
import datetime
import os
import socket
import threading
import time

from oslo_log import log as logging

from isoplugin.backends import base
from isoplugin import cloud
from isoplugin import compute
from isoplugin import exception
from isoplugin import glance
from isoplugin.i18n import _
from isoplugin import volume

LOG = logging.getLogger(__name__)

#: image roles that mark an image as a build's temporary resource (a
#: published output image keeps its build id but loses its role)
TEMPORARY_IMAGE_ROLES = (base.ROLE_RECORD, base.ROLE_BLANK,
                         base.ROLE_OUTPUT)


def _sleep(event, seconds):
    """Wait ``seconds`` or until ``event`` is set (unit tests patch it)."""
    return event.wait(seconds)


@dataclasses.dataclass
class Resource:
    """A cloud resource that carries a build id.

    :ivar kind: ``server``, ``image`` or ``volume`` (see :data:`KINDS`).
    :ivar id: its id.
    :ivar name: its name.
    :ivar build_id: the build it belongs to.
    :ivar role: its role in the build (``build-server``, ``blank-disk``...).
    :ivar status: the cloud's status of it.
    :ivar record: its ``<prefix>*`` metadata or properties, prefix removed.
    :ivar updated_at: when the cloud last changed it (ISO 8601).
    :ivar fault: the cloud's fault message, if any.
    """

    kind: str
    id: str
    name: str
    build_id: str
    role: str = None
    status: str = None
    record: dict = dataclasses.field(default_factory=dict)
    updated_at: str = None
    fault: str = None


@dataclasses.dataclass
class BuildInfo:
    """A build as the cloud shows it (see :func:`list_builds`).

    :ivar id: the build id.
    :ivar phase: the last phase recorded.
    :ivar status: ``running``, ``failed`` or ``orphaned``.
    :ivar record: the build record (the record image's, else the other
        resources').
    :ivar resources: list of :class:`Resource`.
    :ivar age: seconds since the last heartbeat.
    """

    id: str
    phase: str
    status: str
    record: dict
    resources: list
    age: float


def _record(fields, prefix):
    return {k[len(prefix):]: str(v) for k, v in (fields or {}).items()
            if k.startswith(prefix)}


def _of_build(record, build_id):
    """Does a resource's build record make it part of ``build_id``?

    :param build_id: a build id, or None for any build.
    """
    return bool(record.get('build_id')) and build_id in (None,
                                                         record['build_id'])


def _find_servers(conn, prefix, build_id):
    found = []
    for server in compute.servers(conn):
        record = _record(server.metadata, prefix)
        if _of_build(record, build_id):
            found.append(Resource(
                kind='server', id=server.id, name=server.name,
                build_id=record['build_id'], role=record.get('role'),
                status=server.status, record=record,
                updated_at=server.updated_at,
                fault=compute.server_fault(server)))
    return found


def _find_images(conn, prefix, build_id):
    # One build: one query on its id (a published output image keeps the
    # id, not the role). Every build: a query per temporary role (Glance
    # cannot filter on "has a build id").
    if build_id:
        queries = [{prefix + 'build_id': build_id}]
    else:
        queries = [{prefix + 'role': role} for role in TEMPORARY_IMAGE_ROLES]
    found = {}
    for query in queries:
        for image in glance.images(conn, **query):
            fields = glance.flat(image)
            record = _record(fields, prefix)
            # Glance filtered already; check again, it is cheap and a
            # cleanup must never touch what is not its own
            if (_of_build(record, build_id) and
                    record.get('role') in TEMPORARY_IMAGE_ROLES):
                found[fields['id']] = Resource(
                    kind='image', id=fields['id'], name=fields.get('name'),
                    build_id=record['build_id'], role=record['role'],
                    status=fields.get('status'), record=record,
                    updated_at=fields.get('updated_at'))
    return sorted(found.values(),
                  key=lambda r: TEMPORARY_IMAGE_ROLES.index(r.role))


def _delete_image(conn, image_id):
    glance.delete_image(conn, image_id, ignore_missing=True)


def _find_volumes(conn, prefix, build_id):
    # none on a cloud without Cinder; one query on the build id, or on the
    # role for every build (Cinder filters on metadata)
    if not volume.has_service(conn):
        return []
    query = ({prefix + 'build_id': build_id} if build_id else
             {prefix + 'role': base.ROLE_SYSTEM_VOLUME})
    found = []
    for vol in volume.find_volumes(conn, query):
        record = _record(vol.metadata, prefix)
        if _of_build(record, build_id):
            found.append(Resource(
                kind='volume', id=vol.id, name=vol.name,
                build_id=record['build_id'], role=record.get('role'),
                status=vol.status, record=record,
                updated_at=vol.updated_at))
    return found


#: ``(kind, find, delete)`` per kind of resource a build may leave, in the
#: order they are deleted. ``find(conn, prefix, build_id)`` returns
#: :class:`Resource` objects; ``delete(conn, id, timeout)`` deletes one
#: (a volume: as soon as Cinder lets it, and waits until it is gone).
#: Servers are awaited before anything else is deleted (they may use it).
#: Volumes go before images: a volume Cinder is uploading is waited for
#: until the upload ends; deleting its image during the upload makes the
#: upload fail, and Cinder 29's RBD driver then keeps the RBD image open
#: (busy: not deletable until cinder-volume restarts).
KINDS = (('server', _find_servers,
          lambda conn, server_id, timeout: compute.delete_server(
              conn, server_id)),
         ('volume', _find_volumes, volume.delete_volume_and_wait),
         ('image', _find_images,
          lambda conn, image_id, timeout: _delete_image(conn, image_id)))


def find_resources(conn, conf, build_id=None):
    """Find the temporary resources of one build, or of every build.

    Servers whose metadata carries ``<prefix>build_id``; images whose
    ``<prefix>role`` is one of :data:`TEMPORARY_IMAGE_ROLES`; volumes
    whose metadata carries it (none on a cloud without Cinder).

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param build_id: one build's id, or ``None`` for all.
    :returns: a list of :class:`Resource`, in the order of :data:`KINDS`.
    """
    prefix = conf.glance.property_prefix
    found = []
    with cloud.translate_errors():
        for _kind, find, _delete in KINDS:
            found.extend(find(conn, prefix, build_id))
    return found


def delete_resources(conn, conf, build_id, resources=None, note=None):
    """Delete a build's temporary resources: servers first, then the rest.

    Waits (with backoff) for the servers to be gone before deleting what
    they may use; waits for each volume to be gone (Cinder counts it
    against the quota until then). Something already gone is not an
    error; every resource is tried even when one fails.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param build_id: the build.
    :param resources: the resources to delete (default: found again).
    :param note: ``note(resource, event)`` called as each is deleted
        (default: logged).
    :returns: the list of deleted :class:`Resource`.
    :raises isoplugin.exception.CloudError: some could not be deleted (the
        message lists them); the others were deleted.
    """
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as sdk_exc

    errors = (sdk_exc.SDKException, ks_exc.ClientException,
              exception.IsopluginException)
    if resources is None:
        resources = find_resources(conn, conf, build_id)
    if note is None:
        def note(res, event):
            LOG.info('isoplugin build %(build_id)s cleanup: %(event)s '
                     '%(resource)s %(id)s',
                     {'build_id': build_id, 'phase': 'cleanup',
                      'event': event, 'resource': res.kind, 'id': res.id})
    opts = conf.isoplugin
    deleters = {kind: delete for kind, _find, delete in KINDS}
    failures = []

    def delete(res, event):
        try:
            deleters[res.kind](conn, res.id, opts.delete_timeout)
            note(res, event)
        except errors as e:
            failures.append('%s %s: %s' % (res.kind, res.id, e))

    servers = [r for r in resources if r.kind == 'server']
    for res in servers:
        delete(res, 'deleting')
    pending = {r.id for r in servers}
    start = time.monotonic()
    interval = opts.poll_interval
    # a cleanup runs to its end even for an interrupted build
    never = threading.Event()
    while pending and time.monotonic() - start < opts.delete_timeout:
        for server_id in list(pending):
            try:
                # one GET (find_server also lists by name when it is gone)
                server = compute.get_server(conn, server_id)
            except sdk_exc.NotFoundException:
                server = None
            except errors:
                continue  # cannot tell: look again
            if server is None or server.status == 'DELETED':
                pending.discard(server_id)
        if pending:
            _sleep(never, interval)
            interval = min(interval * 2, opts.poll_max_interval)
    for server_id in pending:
        failures.append('server %s: still there after %s s' %
                        (server_id, opts.delete_timeout))
    for res in resources:
        if res.kind != 'server':
            delete(res, 'deleted')
    if failures:
        raise exception.CloudError(
            reason=_('cleanup of build %(id)s left: %(what)s; run '
                     '"openstack iso build delete %(id)s"')
            % {'id': build_id, 'what': '; '.join(failures)})
    return [r for r in resources if r.id not in pending]


def client_alive(client):
    """Whether ``host:pid`` is a live process; ``None`` if unknowable."""
    host, _sep, pid = (client or '').rpartition(':')
    if not host or host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _to_epoch(stamp):
    if not stamp:
        return 0.0
    try:
        return datetime.datetime.fromisoformat(
            stamp.replace('Z', '+00:00')).timestamp()
    except ValueError:
        return 0.0


def list_builds(conn, conf, build_id=None):
    """Return the builds the cloud shows, from their resources' records.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param build_id: only this build.
    :returns: a list of :class:`BuildInfo`, sorted by start time.
    """
    by_build = {}
    for res in find_resources(conn, conf, build_id):
        by_build.setdefault(res.build_id, []).append(res)
    now = time.time()
    # the record image is the live record; the other resources carry the
    # record as it was when they were created
    rank = {base.ROLE_RECORD: 4, base.ROLE_BLANK: 3,
            base.ROLE_SYSTEM_VOLUME: 3, base.ROLE_BUILD_SERVER: 2}
    builds = []
    for bid, resources in by_build.items():
        record = {}
        for res in sorted(resources, key=lambda r: rank.get(r.role, 1)):
            record.update(res.record)
        beats = [float(r.record.get('heartbeat') or 0) or
                 _to_epoch(r.updated_at) for r in resources]
        age = now - max(beats)
        alive = client_alive(record.get('client'))
        phase = record.get('phase') or 'prepare'
        if phase == 'failed' or any(r.status == 'ERROR' and
                                    r.kind == 'server' for r in resources):
            status = 'failed'
        elif alive is False or (
                alive is None and age > conf.isoplugin.orphan_timeout):
            status = 'orphaned'
        else:
            status = 'running'
        builds.append(BuildInfo(id=bid, phase=phase, status=status,
                                record=record, resources=resources,
                                age=round(age, 1)))
    return sorted(builds, key=lambda b: b.record.get('started') or '')


def show_build(conn, conf, build_id):
    """Return one build as the cloud shows it.

    :returns: a :class:`BuildInfo`.
    :raises isoplugin.exception.BuildNotFound: nothing carries that id.
    """
    builds = list_builds(conn, conf, build_id)
    if not builds:
        raise exception.BuildNotFound(build_id=build_id)
    return builds[0]


def delete_build(conn, conf, build_id):
    """Delete what a build left (servers, images, unfinished output).

    :returns: the deleted :class:`Resource` list.
    :raises isoplugin.exception.BuildNotFound: nothing carries that id.
    """
    resources = find_resources(conn, conf, build_id)
    if not resources:
        raise exception.BuildNotFound(build_id=build_id)
    return delete_resources(conn, conf, build_id, resources=resources)


def delete_orphans(conn, conf, older_than=0):
    """Delete the resources of orphaned (and failed) builds.

    A build is orphaned when its client process is gone (known on the
    client's host) or its heartbeat is older than ``orphan_timeout``.
    Failed builds kept with keep-on-error are deleted too.

    :param older_than: only builds whose last heartbeat is at least this
        many seconds old.
    :returns: list of the deleted builds' ids.
    """
    deleted = []
    for info in list_builds(conn, conf):
        if info.status == 'running' or info.age < (older_than or 0):
            continue
        delete_resources(conn, conf, info.id, resources=info.resources)
        deleted.append(info.id)
    return deleted


def finish_build(conn, conf, build_id):
    """Tell an interactive build that the person finished installing.

    Sets ``<prefix>finish=requested`` in the build record; the build's
    client sees it at its next poll, then detaches the ISO and snapshots
    (the detach phase stops the server).

    :returns: the :class:`BuildInfo`.
    :raises isoplugin.exception.BuildNotFound: the build has no record.
    """
    info = show_build(conn, conf, build_id)
    records = [r for r in info.resources if r.role == base.ROLE_RECORD]
    if not records:
        raise exception.BuildNotFound(build_id=build_id)
    glance.patch_image(conn, records[0].id, current={}, set={
        conf.glance.property_prefix + 'finish': 'requested'})
    return info


# -- prepared ISOs -----------------------------------------------------------

def list_prepared(conn, conf):
    """The prepared ISOs (:mod:`isoplugin.prepared`): a cache, not builds.

    :returns: a list of dicts: ``id``, ``name``, ``profile``,
        ``prepared_from``, ``cache_key``, ``status``, ``prepared_at``,
        ``expired`` (past ``[isoplugin] prepared_iso_max_age``, or an
        upload that never finished), ``size``.
    """
    from isoplugin import prepared

    p = conf.glance.property_prefix
    out = []
    for image in prepared.list_prepared(conn, conf):
        fields = glance.flat(image)
        out.append({'id': fields['id'], 'name': fields.get('name'),
                    'profile': fields.get(p + 'profile'),
                    'prepared_from': fields.get(p + 'prepared_from'),
                    'cache_key': fields.get(p + 'cache_key'),
                    'status': fields.get('status'),
                    'prepared_at': fields.get(p + 'prepared_at'),
                    'expired': prepared.expired(conf, image),
                    'size': fields.get('size')})
    return sorted(out, key=lambda d: d['prepared_at'] or '')


def delete_prepared(conn, conf, expired_only=True):
    """Delete the expired prepared ISOs, or all of them.

    ``openstack iso build delete --orphans`` deletes the expired ones,
    ``--prepared`` all. A build never deletes one (it is reusable).

    :returns: the deleted images' ids.
    """
    from isoplugin import prepared

    return prepared.delete_prepared(conn, conf, expired_only=expired_only)
