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

"""Connections to the cloud and the translation of its errors.

Every API call of isoplugin goes through openstacksdk (and so through
keystoneauth1). A caller gives the library an
:class:`openstack.connection.Connection`; the OpenStackClient plugin takes
OSC's, a service builds one from its configuration with
:func:`connection_from_conf`, and a script can call :func:`connect` with a
clouds.yaml cloud name.
"""

import contextlib
import logging as std_logging
import re

from oslo_log import log as logging

from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)


def connect(cloud=None, **kwargs):
    """Return a connection for a clouds.yaml cloud (or ``OS_*`` variables).

    :param cloud: name of the cloud in clouds.yaml; ``None`` uses
        ``OS_CLOUD`` or the ``OS_*`` environment variables.
    :param kwargs: further arguments for :func:`openstack.connect`.
    :returns: an :class:`openstack.connection.Connection`.
    :raises isoplugin.exception.ConfigurationError: the cloud is not
        configured.
    """
    import openstack
    from openstack import exceptions as sdk_exc

    try:
        return openstack.connect(cloud=cloud, **kwargs)
    except sdk_exc.ConfigException as e:
        raise exception.ConfigurationError(reason=e) from e


def connection_from_conf(conf):
    """Return a connection built from the ``[cloud]`` group of ``conf``.

    This is how a service that imports isoplugin authenticates: the
    keystoneauth1 session and auth options are loaded from its
    configuration file, as services load their service clients.

    :param conf: a ConfigOpts on which :func:`isoplugin.conf.register_opts`
        was called and the configuration files were parsed.
    :returns: an :class:`openstack.connection.Connection`.
    :raises isoplugin.exception.ConfigurationError: no auth plugin or an
        incomplete one is configured.
    """
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1 import loading as ks_loading
    from openstack import connection

    try:
        auth = ks_loading.load_auth_from_conf_options(conf, 'cloud')
    except ks_exc.MissingRequiredOptions as e:
        raise exception.ConfigurationError(
            reason=_('[cloud] is missing %s') %
            ', '.join(o.dest for o in e.options)) from e
    if auth is None:
        raise exception.ConfigurationError(
            reason=_('[cloud] auth_type is not set; configure the '
                     'keystoneauth options of the [cloud] group'))
    session = ks_loading.load_session_from_conf_options(
        conf, 'cloud', auth=auth)
    return connection.Connection(
        session=session,
        region_name=conf.cloud.region_name,
        interface=conf.cloud.interface)


#: The option groups of the services isoplugin calls, by the attribute of
#: their openstacksdk proxy: each group has the retry options of
#: :func:`isoplugin.conf.retries.retry_opts`.
RETRY_GROUPS = {'image': 'glance', 'compute': 'compute'}


def use_retries(conn, conf):
    """Give a connection isoplugin's retry and timeout settings.

    The one place of the retry idea. Each service's openstacksdk proxy
    (a keystoneauth1 adapter) gets its group's ``connect_retries`` and
    ``status_code_retries`` (``[glance]``, ``[compute]``): keystoneauth1
    then tries a request again when the service cannot be reached, drops
    the connection or does not answer within ``api_timeout``, and when it
    answers one of ``retriable_status_codes``, waiting ``*_retry_delay``
    seconds, or 0.5 s doubling up to 60 s when unset. The session gets
    ``[isoplugin] api_timeout`` unless it has a timeout (clouds.yaml
    ``api_timeout``). Settings the connection already has that are higher
    are kept. The requests that must not be repeated are made without
    retries (:data:`isoplugin.glance.NO_RETRIES`,
    :func:`isoplugin.compute.create_server`).

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: a ConfigOpts with isoplugin's options.
    """
    for service, group in sorted(RETRY_GROUPS.items()):
        opts = conf[group]
        proxy = getattr(conn, service)
        for attr in ('connect_retries', 'status_code_retries'):
            current = getattr(proxy, attr, None)
            if not isinstance(current, int):
                current = 0
            setattr(proxy, attr, max(current, getattr(opts, attr)))
        for attr in ('connect_retry_delay', 'status_code_retry_delay'):
            if getattr(opts, attr) is not None:
                setattr(proxy, attr, getattr(opts, attr))
        codes = getattr(proxy, 'retriable_status_codes', None)
        if not isinstance(codes, (list, tuple, set)):
            codes = ()
        proxy.retriable_status_codes = sorted(
            set(codes) | set(opts.retriable_status_codes))
    session = conn.session
    if getattr(session, 'timeout', None) is None:
        session.timeout = conf.isoplugin.api_timeout


class QuietRetries(std_logging.Filter):
    """One short line per series of keystoneauth1 retries.

    keystoneauth1 logs every retry as a WARNING that repeats the whole
    exception chain. The first retry of a series becomes one line naming
    the endpoint and the reason, and the next ones of the series (the
    retries left count down) are dropped. Not installed with ``--debug``
    (:func:`quiet_retry_logs`), which keeps every detail.
    """

    _URL = re.compile(r'(https?://[^/\s:]+(?::\d+)?)')

    def __init__(self):
        super().__init__()
        self._left = {}

    def filter(self, record):
        msg = record.msg if isinstance(record.msg, str) else ''
        args = record.args if isinstance(record.args, dict) else {}
        if 'retries' not in args or not (
                msg.startswith('Failure:') or
                msg.startswith('Retriable status code')):
            return True
        if 'e' in args:
            error = args['e']
            found = self._URL.search(str(error))
            key = found.group(1) if found else _('the cloud')
            reason = connection_failure(error)[1]
        else:
            key = 'HTTP %s' % args.get('code')
            reason = _('it answered HTTP %s') % args.get('code')
        left = args['retries']
        # within a series the count of retries left goes down
        new_series = key not in self._left or left >= self._left[key]
        self._left[key] = left
        if not new_series:
            return False
        record.msg = _('%(where)s: %(reason)s; retrying, %(n)d tries '
                       'left (--debug shows each)')
        record.args = {'where': key, 'reason': reason, 'n': left}
        return True


_QUIET_RETRIES = QuietRetries()


def quiet_retry_logs(debug=False):
    """Install :class:`QuietRetries` on keystoneauth1's logger (once).

    :param debug: the command runs with ``--debug``: install nothing.
    """
    if debug:
        return
    logger = std_logging.getLogger('keystoneauth.session')
    if _QUIET_RETRIES not in logger.filters:
        logger.addFilter(_QUIET_RETRIES)


def _reason(error):
    """The cloud's own message for an openstacksdk exception.

    Glance and Nova put their explanation in the body, which openstacksdk
    keeps as ``details``; the exception's message adds the URL and the
    status line, which tell a person nothing more. Made one line.
    """
    details = getattr(error, 'details', None)
    if details:
        text = str(details).replace('<br />', ' ')
    else:
        text = getattr(error, 'message', None) or str(error)
    return ' '.join(text.split())  # one line (Nova's faults have several)


#: Statuses a proxy, a load balancer or a restarting WSGI server answers
#: while the service behind it cannot: retried, then reported as the
#: service not answering.
UNAVAILABLE_STATUSES = (502, 503, 504)


def _chain(error):
    """The exceptions behind ``error``: causes, contexts and wrapped ones.

    requests and urllib3 keep the socket error in ``args`` or ``reason``
    rather than as the cause.
    """
    seen = set()
    todo = [error]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__, getattr(e, 'reason', None)])
        todo.extend(a for a in e.args if isinstance(a, BaseException))


#: What Glance says when its store has no room (glance_store.StorageFull:
#: "Image storage media is full") and when a quota refuses (Keystone
#: unified limits: "Project ... is over a limit for ..."; user_storage_quota:
#: "... exceeds the storage quota"; Nova's createImage: "Quota exceeded").
_STORE_FULL = re.compile(r'storage media is full|no space left',
                         re.IGNORECASE)
_QUOTA = re.compile(r'quota|over (a )?limit|limit exceeded',
                    re.IGNORECASE)


#: The service of a request, from its URL's path (the catalog's endpoints
#: are not at hand where errors are translated): what messages name when
#: the caller did not say.
_SERVICES = (
    (re.compile(r'/v2/(images|schemas|info|tasks|stores)\b'), 'Glance'),
    (re.compile(r'/v2\.1\b|/(servers|flavors|os-[a-z-]+)\b'), 'Nova'),
    (re.compile(r'/v3/(auth|limits|projects|users|domains)\b'),
     'Keystone'),
    (re.compile(r'/v3/[0-9a-f]{32}/|/volumes\b'), 'Cinder'),
    (re.compile(r'/v2\.0/'), 'Neutron'),
)


def _service_of(error):
    """The service an exception's request went to, or "The cloud"."""
    url = getattr(error, 'url', None)
    text = url or str(error)
    found = re.search(r'https?://\S+', text)
    path = re.sub(r'^https?://[^/]*', '', found.group(0)) if found else ''
    for pattern, name in _SERVICES:
        if path and pattern.search(path):
            return name
    return _('The cloud')


def _too_large(error, service, during):
    """The exception of a 413 (or a quota 403): store full or quota."""
    reason = _reason(error)
    service = service or _service_of(error)
    during = during or _('the request')
    if _STORE_FULL.search(reason):
        return exception.StoreFull(service=service, during=during,
                                   reason=reason)
    if _QUOTA.search(reason):
        return exception.OverQuota(service=service, during=during,
                                   reason=reason)
    return exception.CloudError(reason=_('too large: %s') % reason)


def connection_failure(error):
    """What a failed connection was, from the socket error behind it.

    :param error: a keystoneauth1 connection error (or any exception).
    :returns: ``(reached, reason)``: whether the request may have reached
        the service (the connection was open, then closed or reset) and a
        short reason for a person, e.g. ``"connection refused"``.
    """
    import http.client
    import socket

    for e in _chain(error):
        if isinstance(e, ConnectionRefusedError):
            return False, _('connection refused')
        if isinstance(e, socket.gaierror):
            return False, _('its host name does not resolve')
        if isinstance(e, http.client.RemoteDisconnected):
            return True, _('before answering')
        if isinstance(e, ConnectionResetError):
            return True, _('connection reset')
        if isinstance(e, BrokenPipeError):
            return True, _('broken pipe')
        if isinstance(e, (TimeoutError, socket.timeout)):
            return True, _('no answer in time')
    return True, str(error)


@contextlib.contextmanager
def translate_errors(what=None, forbidden=None, service=None,
                     during=None):
    """Turn openstacksdk and keystoneauth1 errors into isoplugin's.

    The one error translator of the library, used at its boundary (the
    access modules :mod:`isoplugin.glance` and :mod:`isoplugin.compute`)
    so that callers only ever see
    :class:`isoplugin.exception.IsopluginException`; the original exception
    stays available as ``__cause__``.

    :param what: what was being looked for or changed, for NotFound
        messages (e.g. ``"ISO 'debian-12'"``).
    :param forbidden: message of a 403, a ``%``-template with
        ``%(reason)s`` (the cloud's message), to say which policy refused
        and what to do.
    :param service: the service called, for the messages of a connection
        that failed (default "The cloud").
    :param during: what was under way, for the message of a connection
        the service closed (default "the request").
    """
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as sdk_exc

    try:
        yield
    except exception.IsopluginException:
        raise
    except sdk_exc.ForbiddenException as e:
        reason = _reason(e)
        if forbidden:
            reason = forbidden % {'reason': reason}
        raise exception.PermissionDenied(reason=reason) from e
    except sdk_exc.NotFoundException as e:
        raise exception.NotFound(what=what or _reason(e)) from e
    except sdk_exc.ConflictException as e:
        raise exception.Conflict(reason=_reason(e)) from e
    except sdk_exc.ResourceTimeout as e:
        raise exception.CloudTimeout(timeout='?', what=_reason(e)) from e
    except sdk_exc.HttpException as e:
        status = getattr(e, 'status_code', None)
        if status in UNAVAILABLE_STATUSES:
            raise exception.ServiceUnavailable(
                service=service or _service_of(e),
                reason=_('HTTP %(code)s: %(reason)s') % {
                    'code': status, 'reason': _reason(e)}) from e
        if status == 413:
            raise _too_large(e, service, during) from e
        raise exception.CloudError(reason=_reason(e)) from e
    except sdk_exc.SDKException as e:
        raise exception.CloudError(reason=_reason(e)) from e
    except ks_exc.ConnectTimeout as e:
        raise exception.ServiceTimeout(
            service=service or _service_of(e),
            during=during or _('the request')) from e
    except ks_exc.RetriableConnectionFailure as e:
        reached, reason = connection_failure(e)
        if reached:
            raise exception.ConnectionLost(
                service=service or _service_of(e),
                during=during or _('the request'), reason=reason) from e
        raise exception.ServiceUnavailable(
            service=service or _service_of(e), reason=reason) from e
    except ks_exc.ClientException as e:
        raise exception.CloudError(reason=e) from e
