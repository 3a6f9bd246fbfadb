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

"""The one way isoplugin talks to Glance (the Image service).

Every call to Glance made by the catalog, the registration of ISOs, the
build pipeline and the build backends goes through the functions of this
module. They take an :class:`openstack.connection.Connection`, use the
openstacksdk image proxy wherever it has the call, and translate every
error with :func:`isoplugin.cloud.translate_errors`, so that callers only
see :class:`isoplugin.exception.IsopluginException`.

A raw request remains only where openstacksdk lacks the call; each one says
what is missing. They all go through :func:`_request`.

Retries: :func:`isoplugin.cloud.use_retries` gives the connection's image
proxy the ``[glance]`` retry settings, so that keystoneauth1 tries a
request again, with a growing delay, when Glance cannot be reached or
answers 502, 503 or 504. Requests that must not be sent twice (creating an
image, sending its data) are made with no retries: a connection closed
after Glance received one may have done it. An upload Glance kept nothing
of is sent again by :mod:`isoplugin.registration`.
"""

import functools
import os
import socket
import time
import urllib.parse

from oslo_log import log as logging

from isoplugin import cloud
from isoplugin.conf import glance as glance_opts
from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

#: Media type of Glance's JSON-patch image updates.
PATCH_TYPE = 'application/openstack-images-v2.1-json-patch'

#: Images asked per request when listing.
PAGE_SIZE = 100

#: The service, as errors name it.
SERVICE = 'Glance'

#: Property (after the prefix) naming the client that created an image.
CLIENT_PROPERTY = 'client'

#: Keyword arguments of a request that must not be sent twice.
NO_RETRIES = {'connect_retries': 0, 'status_code_retries': 0}

_translate = functools.partial(cloud.translate_errors, service=SERVICE)


def client_id():
    """``host:pid`` of this process (read when called: a fork changes it).

    The value of ``<prefix>client``, the marker every image isoplugin
    creates carries from its first request.
    """
    return '%s:%d' % (socket.gethostname(), os.getpid())


def use_retries(conn, conf):
    """Give the connection isoplugin's retry settings.

    See :func:`isoplugin.cloud.use_retries` (every service, not only
    Glance; kept here for the callers that know this name).
    """
    cloud.use_retries(conn, conf)


def flat(image):
    """Return all the attributes of an image as Glance names them.

    :param image: an :class:`openstack.image.v2.image.Image`.
    :returns: a dict of Glance's attribute names (``os_hidden``,
        ``protected``...) and of every extra property.
    """
    d = image.to_dict(original_names=True, computed=False)
    props = d.pop('properties', None) or {}
    out = {k: v for k, v in d.items() if v is not None}
    out.update(props)
    return out


def image_from_body(conn, body):
    """Return an Image for a JSON image body Glance answered.

    :param conn: an :class:`openstack.connection.Connection`.
    :param body: the image as a dict, as Glance sends it.
    :returns: an :class:`openstack.image.v2.image.Image`.
    """
    from openstack.image.v2 import image as _image

    body = {k: v for k, v in body.items() if k != 'self'}
    return _image.Image.existing(connection=conn, **body)


def _request(conn, method, url, what=None, forbidden=None, allow=(),
             repeatable=True, during=None, **kwargs):
    """One raw request to Glance (URL relative to ``/v2``).

    Only for the calls openstacksdk lacks; the caller says which.

    :param allow: status codes returned to the caller instead of raised.
    :param repeatable: whether keystoneauth1 may send it again (see
        :func:`use_retries`); false for what must not be done twice. Such
        a request is still sent again, ``[glance] connect_retries`` times
        (0.5 s doubling), when its connection was refused: Glance never
        got it. Not one with a streamed body (``data``).
    :param during: what the request does, for the message of a connection
        Glance closed.
    :returns: the :class:`requests.Response`.
    """
    from openstack import exceptions as sdk_exc

    tries = 0
    if not repeatable:
        kwargs.update(NO_RETRIES)
        if 'data' not in kwargs:
            tries = conn.image.connect_retries or 0
    delay = conn.image.connect_retry_delay or 0.5
    for attempt in range(tries + 1):
        try:
            with _translate(what=what, forbidden=forbidden, during=during):
                resp = conn.image.request(url, method, raise_exc=False,
                                          **kwargs)
                if resp.status_code not in allow:
                    sdk_exc.raise_from_response(resp)
            return resp
        except exception.ServiceUnavailable as e:
            if attempt >= tries or not _refused(e):
                raise
            LOG.warning('Glance refused the connection (%(method)s %(url)s);'
                        ' trying again in %(delay).1f s',
                        {'method': method, 'url': url, 'delay': delay})
            time.sleep(delay)
            delay = min(delay * 2, 60)


def _refused(error):
    """Whether a request never reached Glance (its connection failed)."""
    from keystoneauth1 import exceptions as ks_exc

    cause = error.__cause__
    return (isinstance(cause, ks_exc.ConnectFailure) and
            not cloud.connection_failure(cause)[0])


# -- images -----------------------------------------------------------------

def get_image(conn, image_id, what=None):
    """Return one image.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image's ID.
    :param what: what the image is, for the NotFound message (default
        ``Image <id>``).
    :returns: an :class:`openstack.image.v2.image.Image`.
    :raises isoplugin.exception.NotFound: no such image.
    """
    with _translate(what=what or _('Image %s') % image_id):
        return conn.image.get_image(image_id)


def find_image(conn, image_id):
    """Return an image by ID, or ``None`` when the ID names none.

    Glance answers 404 for an unknown ID and 400 for a string that is not
    a UUID (a name): both give ``None``.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: what may be an image's ID.
    :returns: an :class:`openstack.image.v2.image.Image` or ``None``.
    """
    from openstack import exceptions as sdk_exc

    with _translate():
        try:
            return conn.image.get_image(urllib.parse.quote(image_id))
        except (sdk_exc.NotFoundException, sdk_exc.BadRequestException):
            return None


def create_image(conn, forbidden=None, prefix=glance_opts.DEFAULT_PREFIX,
                 **body):
    """Create an image record, without data.

    openstacksdk's ``create_image`` cannot make a plain record: it looks
    the name up first and adds its own ``owner_specified.openstack.*``
    properties (md5, sha256, object) and vendor-agent properties. The
    record is therefore POSTed as given, once (never retried: a POST
    whose answer was lost may have created the image).

    Every image gets ``<prefix>client`` = ``host:pid`` of this process
    (:func:`client_id`) in this first request, unless the body names a
    client: an upload its client left unfinished is found by it
    (``openstack iso list --incomplete``).

    :param conn: an :class:`openstack.connection.Connection`.
    :param forbidden: message of a 403, with ``%(reason)s``.
    :param prefix: isoplugin's property prefix (``[glance]
        property_prefix``).
    :param body: the image's fields (``name``, ``disk_format``,
        ``container_format``, ``visibility``...) and extra properties.
    :returns: the new :class:`openstack.image.v2.image.Image` (queued).
    :raises isoplugin.exception.PermissionDenied: policy refused.
    """
    body.setdefault(prefix + CLIENT_PROPERTY, client_id())
    resp = _request(conn, 'POST', '/images', json=body, forbidden=forbidden,
                    repeatable=False, during=_('the creation of an image'))
    return image_from_body(conn, resp.json())


def upload_data(conn, image_id, data, store=None):
    """PUT an image's data.

    openstacksdk's ``Image.upload`` cannot name the store
    (``X-Image-Meta-Store``) and does not check the answer: the PUT is
    made here.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image (queued).
    :param data: bytes, a file, or an iterable of chunks (sent with
        ``Transfer-Encoding: chunked``); an object with a length is sent
        with a ``Content-Length``.
    :param store: Glance store to write into (default store if ``None``).
    :raises isoplugin.exception.ConnectionLost: Glance closed the
        connection (the data is sent once: a stream cannot be sent again).
    :raises isoplugin.exception.CloudError: Glance refused or failed.
    """
    headers = {'Content-Type': 'application/octet-stream'}
    if store:
        headers['X-Image-Meta-Store'] = store
    _request(conn, 'PUT', '/images/%s/file' % image_id, data=data,
             headers=headers, repeatable=False, during=_('the upload'))


def download_data(conn, image, chunk_size=1024 * 1024):
    """Yield an image's data in chunks, streamed (nothing held in memory).

    :param conn: an :class:`openstack.connection.Connection`.
    :param image: the :class:`openstack.image.v2.image.Image`.
    :param chunk_size: bytes per chunk.
    :returns: a generator of bytes; the caller checks the hash.
    :raises isoplugin.exception.CloudError: Glance refused or failed.
    """
    with _translate(what=_('Image %s') % image.id):
        resp = conn.image.download_image(image, stream=True)
        try:
            yield from resp.iter_content(chunk_size)
        finally:
            resp.close()


def patch_image(conn, image_id, set=None, remove=(), current=None,
                forbidden=None):
    """Set and remove image fields and properties with one JSON patch.

    The one JSON-patch builder: ``remove`` ops first (only for keys the
    image has and ``set`` does not), then ``add`` or ``replace`` for every
    value of ``set`` that differs from the current one.

    openstacksdk's ``update_image`` sends every attribute it is given as
    an ``add`` op and cannot remove one: the patch is built here.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image.
    :param set: dict of fields or properties to set.
    :param remove: names of fields or properties to remove.
    :param current: the image's fields as :func:`flat` gives them, when
        the caller has them (else they are read first); ``{}`` patches
        without reading, with ``add`` ops (``add`` replaces an existing
        property).
    :param forbidden: message of a 403, with ``%(reason)s``.
    :returns: the updated :class:`openstack.image.v2.image.Image`, or the
        current one when nothing changes (``None`` when ``current`` was
        given and nothing changes).
    :raises isoplugin.exception.NotFound: no such image.
    """
    set = dict(set or {})
    image = None
    if current is None:
        image = get_image(conn, image_id)
        current = flat(image)
    ops = [{'op': 'remove', 'path': '/' + key}
           for key in remove if key in current and key not in set]
    for key, value in set.items():
        if key in current and current[key] == value:
            continue
        ops.append({'op': 'replace' if key in current else 'add',
                    'path': '/' + key, 'value': value})
    if not ops:
        return image
    # add and replace give the same image when sent twice; a remove sent
    # again would fail on the property it removed
    resp = _request(conn, 'PATCH', '/images/%s' % image_id, json=ops,
                    headers={'Content-Type': PATCH_TYPE},
                    what=_('Image %s') % image_id, forbidden=forbidden,
                    repeatable=not any(op['op'] == 'remove' for op in ops))
    return image_from_body(conn, resp.json())


def delete_image(conn, image_id, store=None, ignore_missing=True,
                 what=None, forbidden=None):
    """Delete an image, or its data in one store only.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image.
    :param store: delete the data in this store only.
    :param ignore_missing: no error when the image does not exist.
    :param what: what the image is, for the NotFound message.
    :param forbidden: message of a 403, with ``%(reason)s``.
    :raises isoplugin.exception.NotFound: no such image (and
        ``ignore_missing`` false).
    """
    with _translate(what=what or _('Image %s') % image_id,
                    forbidden=forbidden):
        conn.image.delete_image(image_id, store=store,
                                ignore_missing=ignore_missing)


def delete_patiently(conn, image_id, timeout, interval=1, max_interval=30):
    """Delete an image, trying again while Glance does not answer.

    For the cleanup of an upload that failed because Glance went away:
    each try has keystoneauth1's retries; between tries the wait doubles,
    up to ``max_interval``, until ``timeout`` seconds have passed.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image (gone already is fine).
    :param timeout: seconds to keep trying.
    :raises isoplugin.exception.ServiceUnavailable: Glance did not answer
        within ``timeout``.
    :raises isoplugin.exception.CloudError: Glance refused.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            delete_image(conn, image_id)
            return
        except exception.ServiceUnavailable as e:
            if time.monotonic() + interval > deadline:
                raise
            LOG.info('Glance does not answer (%(error)s); deleting image '
                     '%(id)s again in %(s)s s',
                     {'error': e, 'id': image_id, 's': interval})
        time.sleep(interval)
        interval = min(interval * 2, max_interval)


def images(conn, **filters):
    """Yield the images of a query, following Glance's pagination.

    The one paginator. openstacksdk's ``images()`` drops the query
    parameters it does not know, and Glance filters on any property (and
    on ``disk_format``): the query is sent as it is.

    :param conn: an :class:`openstack.connection.Connection`.
    :param filters: Glance filters (``name``, ``owner``, ``os_hidden``,
        ``visibility``, ``sort``, a property name...); ``limit`` is the
        page size (default :data:`PAGE_SIZE`).
    :returns: a generator of :class:`openstack.image.v2.image.Image`.
    """
    params = {k: v for k, v in filters.items() if v is not None}
    params.setdefault('limit', PAGE_SIZE)
    while True:
        body = _request(conn, 'GET', '/images', params=params).json()
        for item in body.get('images', []):
            yield image_from_body(conn, item)
        nxt = body.get('next')
        if not nxt or not body.get('images'):
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)
        marker = query.get('marker', [None])[0]
        if marker is None:
            return
        params['marker'] = marker


def wait_for_image(conn, image_id, check, timeout, what, interval=2,
                   max_interval=30):
    """Read an image until ``check`` says it is done.

    openstacksdk's ``wait_for_status`` waits for one status at a fixed
    interval; an import or a copy is done when the store properties say so,
    and a long one is polled less and less often.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image.
    :param check: ``check(image)`` returns ``None`` while not done, else
        the result; it raises to stop with an error.
    :param timeout: seconds to wait at most.
    :param what: what is waited for, for the timeout message (or a
        callable returning it).
    :param interval: seconds between the first reads; doubled each time.
    :param max_interval: seconds between reads, at most.
    :returns: what ``check`` returned.
    :raises isoplugin.exception.CloudTimeout: not done in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check(get_image(conn, image_id))
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise exception.CloudTimeout(
                timeout=timeout, what=what() if callable(what) else what)
        time.sleep(interval)
        interval = min(interval * 2, max_interval)


def deactivate_image(conn, image_id, forbidden=None):
    """Deactivate an image.

    openstacksdk's ``deactivate_image`` does not check Glance's answer (a
    refusal would pass unseen): the action is POSTed here.

    :raises isoplugin.exception.PermissionDenied: policy refused.
    """
    _request(conn, 'POST', '/images/%s/actions/deactivate' % image_id,
             forbidden=forbidden)


def reactivate_image(conn, image_id, forbidden=None):
    """Reactivate a deactivated image.

    openstacksdk's ``reactivate_image`` does not check Glance's answer: the
    action is POSTed here.

    :raises isoplugin.exception.PermissionDenied: policy refused.
    """
    _request(conn, 'POST', '/images/%s/actions/reactivate' % image_id,
             forbidden=forbidden)


def import_image(conn, image, method, uri=None, stores=None,
                 all_stores_must_succeed=None, forbidden=None):
    """Start an import into an image (web-download, copy-image...).

    :param conn: an :class:`openstack.connection.Connection`.
    :param image: the :class:`openstack.image.v2.image.Image` (the SDK
        needs its ``disk_format`` and ``container_format``).
    :param method: the import method.
    :param uri: the URL, for ``web-download``.
    :param stores: store IDs to import into.
    :param all_stores_must_succeed: whether one failed store fails all.
    :param forbidden: message of a 403, with ``%(reason)s``.
    :raises isoplugin.exception.CloudError: Glance refused.
    """
    from openstack import exceptions as sdk_exc

    with _translate(forbidden=forbidden):
        resp = conn.image.import_image(
            image, method=method, uri=uri, stores=stores or None,
            all_stores_must_succeed=all_stores_must_succeed)
        # the SDK returns the answer unchecked
        sdk_exc.raise_from_response(resp)


def image_tasks(conn, image_id):
    """Return the tasks of an image (imports), as dicts.

    :returns: a list of dicts with ``status``, ``message``...
    """
    with _translate():
        return [t.to_dict(computed=False)
                for t in conn.image.image_tasks(image_id)]


# -- members ----------------------------------------------------------------

def _member(member, image_id):
    # image_id is part of the SDK's URL, not of the body it keeps
    d = member.to_dict(computed=False)
    for key in ('id', 'name', 'location'):
        d.pop(key, None)
    d['image_id'] = image_id
    return d


def members(conn, image_id):
    """Return the members (projects) of an image, as dicts.

    :returns: a list of dicts with ``member_id``, ``image_id``,
        ``status``, ``created_at``, ``updated_at``.
    """
    with _translate():
        return [_member(m, image_id)
                for m in conn.image.members(image_id)]


def add_member(conn, image_id, member_id):
    """Share an image with a project.

    :returns: the member, a dict.
    """
    with _translate():
        return _member(conn.image.add_member(image_id, member=member_id),
                       image_id)


def update_member(conn, image_id, member_id, status):
    """Accept or reject an image shared with the caller's project.

    :returns: the member, a dict.
    """
    with _translate():
        return _member(conn.image.update_member(member_id, image_id,
                                                status=status), image_id)


def remove_member(conn, image_id, member_id, what=None):
    """Stop sharing an image with a project.

    :raises isoplugin.exception.NotFound: the project is not a member.
    """
    with _translate(what=what):
        conn.image.remove_member(member_id, image_id, ignore_missing=False)


# -- the service ------------------------------------------------------------

def stores(conn):
    """Return the IDs of the cloud's Glance stores, the default one first.

    :returns: a list of store IDs, empty when the cloud has no multi-store
        configuration.
    """
    from openstack import exceptions as sdk_exc

    with _translate():
        try:
            found = list(conn.image.stores())
        except sdk_exc.HttpException as e:
            if e.status_code in (404, 410):
                return []
            raise
    return [s.id for s in sorted(found, key=lambda s: not s.is_default)]


def import_methods(conn):
    """Return the import methods the cloud offers.

    :returns: a list such as ``['glance-direct', 'web-download']``.
    """
    from openstack import exceptions as sdk_exc

    with _translate():
        try:
            info = conn.image.get_import_info()
        except sdk_exc.NotFoundException:
            return []
    return list((info.import_methods or {}).get('value', []))


def usage(conn):
    """Return the project's image quota and usage (unified limits).

    openstacksdk has no call for ``/v2/info/usage``: it is a raw GET.

    :returns: ``{resource: {'usage': N, 'limit': N}}`` (sizes in MiB; a
        limit of -1 means unlimited), or ``{}`` when the cloud does not
        report usage.
    """
    resp = _request(conn, 'GET', '/info/usage', allow=(404,))
    if resp.status_code == 404:
        return {}
    return resp.json().get('usage', {})
