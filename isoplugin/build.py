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

"""The build pipeline: an installer ISO in, a bootable image out.

One build goes through named phases, the same for every backend::

    prepare -> boot -> install -> detach -> snapshot -> verify -> cleanup

*prepare* resolves the ISO, checks the cloud and makes the blank system
disk; *boot* starts the temporary server; *install* presents the ISO and
waits for the installer to power the server off (or for ``openstack iso
build finish``); *detach* takes the ISO away and stops the server;
*snapshot* makes the output image and gives it its properties; *verify*
boots a server from it and reads its console log; *cleanup* deletes every
temporary resource, and runs whatever happened before (success, error,
timeout, Ctrl-C, SIGTERM).

The cloud is the state store. Every resource a build creates carries the
build record (:meth:`Build.record_fields`): server metadata or image
properties named ``<prefix>build_id``, ``role``, ``phase``, ``client``
(``host:pid`` of the process driving the build), ``heartbeat`` (UNIX time,
renewed every ``heartbeat_interval`` seconds while waiting) and what a
resumed build needs (output image name, visibility, tags, verify). From
these alone :func:`list_builds`, :func:`delete_build`,
:func:`delete_orphans`, :func:`resume_build` and :func:`finish_build` work
from any client. A build is an *orphan* when its client process is gone
(checked on the client's host) or its heartbeat is older than
``orphan_timeout``.

Every event of a build is logged with ``LOG.info`` and a dict argument
(``build_id``, ``phase``, ``event`` and details) that a service's log
handler can consume as structured data, and handed to the ``progress``
callback, which is how the command line draws its progress lines.
"""

import concurrent.futures
import contextlib
import dataclasses
import datetime
import json
import os
import re
import signal
import socket
import threading
import time
import uuid

from oslo_log import log as logging

from isoplugin import catalog
from isoplugin import cloud
from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

PHASES = ('prepare', 'boot', 'install', 'detach', 'snapshot', 'verify',
          'cleanup')

#: roles of the resources of a build (``<prefix>role``)
ROLE_BUILD_SERVER = 'build-server'
ROLE_VERIFY_SERVER = 'verify-server'
ROLE_BLANK = 'blank-disk'
#: the output image until the build succeeds; the role is then removed
ROLE_OUTPUT = 'output-pending'
TEMPORARY_IMAGE_ROLES = (ROLE_BLANK, ROLE_OUTPUT)

#: properties an output image must not inherit (ISO-only, rescue, and what
#: Nova copies from the instance and its temporary blank image)
UNWANTED_PROPERTIES = (
    'hw_rescue_device', 'hw_rescue_bus', 'hw_cdrom_bus',
    'instance_uuid', 'base_image_ref', 'image_type', 'image_location',
    'boot_roles', 'owner_user_name', 'owner_project_name', 'user_id',
    'owner_id', 'image_state', 'os_shutdown_timeout',
)
#: suffixes of ``<prefix>*`` properties an output image must not carry
UNWANTED_PREFIXED = ('media', 'featured', 'extractable', 'password_enabled',
                     'retired', 'role', 'phase', 'client', 'heartbeat',
                     'image_name', 'visibility', 'tags', 'verify', 'iso_id',
                     'started', 'finish', 'error')

CLIENT = '%s:%d' % (socket.gethostname(), os.getpid())


def _sleep(event, seconds):
    """Wait ``seconds`` or until ``event`` is set; True when it was set.

    The only sleep of the pipeline (unit tests patch it).
    """
    return event.wait(seconds)


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def new_build_id():
    """Return a new build id: ``b-`` and 10 hex digits."""
    return 'b-' + uuid.uuid4().hex[:10]


@dataclasses.dataclass
class BuildRequest:
    """What to build. ``None`` fields take their value from configuration.

    :ivar iso: name or id of the ISO (as registered by ``openstack iso
        create``).
    :ivar name: name of the output image.
    :ivar flavor: flavor name or id of the temporary server.
    :ivar disk_size: size of the system disk in GiB.
    :ivar network: network name or id for the temporary server.
    :ivar backend: build backend name.
    :ivar interactive: wait for a person on the remote console.
    :ivar verify: boot the new image and check its console log.
    :ivar verify_must_pass: a failed verification fails the build.
    :ivar timeout: seconds the whole build may take.
    :ivar install_timeout: seconds the install may take.
    :ivar visibility: visibility of the output image.
    :ivar tags: tags of the output image.
    :ivar properties: extra properties of the output image.
    :ivar keep_on_error: keep temporary resources of a failed build.
    """

    iso: str
    name: str
    flavor: str = None
    disk_size: int = None
    network: str = None
    backend: str = None
    interactive: bool = False
    verify: bool = None
    verify_must_pass: bool = None
    timeout: int = None
    install_timeout: int = None
    visibility: str = 'private'
    tags: list = dataclasses.field(default_factory=list)
    properties: dict = dataclasses.field(default_factory=dict)
    keep_on_error: bool = None


@dataclasses.dataclass
class Resource:
    """A cloud resource that carries a build id.

    :ivar kind: ``server`` or ``image``.
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
    :ivar record: the build record (server's if any, else an image's).
    :ivar resources: list of :class:`Resource`.
    :ivar age: seconds since the last heartbeat.
    """

    id: str
    phase: str
    status: str
    record: dict
    resources: list
    age: float


class Build:
    """One build: an id, a connection, a request, a state, a phase.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param request: a :class:`BuildRequest`.
    :param backend: a :class:`isoplugin.backends.base.BuildBackend`;
        default: the one the request or the configuration names.
    :param progress: callable taking an event dict (see :meth:`event`).
    :param build_id: the id to use (default: a new one).
    """

    def __init__(self, conn, conf, request, backend=None, progress=None,
                 build_id=None):
        from isoplugin import backends

        self.id = build_id or new_build_id()
        self.conn = conn
        self.conf = conf
        self.request = request
        self.backend = backend or backends.get_backend(conf, request.backend)
        self.progress = progress
        self.prefix = conf.glance.property_prefix
        self.state = {}
        self.iso = None
        self.phase = None
        self.started = _now_iso()
        self.image_id = None
        self.output = None
        self.cancelled = threading.Event()
        self._t0 = None
        self._deadline = None
        self._last_heartbeat = 0.0
        self.waited = 0.0
        opts = conf.isoplugin
        self.verify = opts.verify if request.verify is None else \
            request.verify
        self.verify_must_pass = (opts.verify_must_pass
                                 if request.verify_must_pass is None
                                 else request.verify_must_pass)
        self.keep_on_error = (opts.keep_on_error
                              if request.keep_on_error is None
                              else request.keep_on_error)

    # -- events and the record ------------------------------------------

    def event(self, event, **details):
        """Log one event of the build and hand it to ``progress``.

        :param event: short name (``phase-start``, ``waiting``, ``done``...).
        :param details: more fields (``message``, ``status``, ``elapsed``).
        :returns: the event dict: ``build_id``, ``phase``, ``event`` and
            the details.
        """
        data = {'build_id': self.id, 'phase': self.phase, 'event': event}
        data.update(details)
        # every poll is an event too: those go to debug
        log = LOG.debug if event == 'waiting' else LOG.info
        log('isoplugin build %(build_id)s %(phase)s: %(event)s', data)
        if self.progress is not None:
            self.progress(data)
        return data

    def record_fields(self, role):
        """Return the build record a resource of ``role`` carries.

        Keys are prefixed with ``[glance] property_prefix``; every value is
        a string of at most 255 characters (a Nova metadata limit).

        :param role: the resource's role.
        :returns: a dict of strings.
        :raises isoplugin.exception.InvalidInput: a value is too long.
        """
        req = self.request
        fields = {
            'build_id': self.id,
            'role': role,
            'phase': self.phase or 'prepare',
            'backend': self.backend.NAME,
            'client': CLIENT,
            'heartbeat': str(int(time.time())),
            'started': self.started,
            'iso_id': self.iso.id if self.iso is not None else '',
            'image_name': req.name,
            'visibility': req.visibility,
            'tags': ','.join(req.tags or ()),
            'verify': 'true' if self.verify else 'false',
            'interactive': 'true' if req.interactive else 'false',
        }
        for key in ('flavor_id', 'disk_gb', 'network_id', 'image_id'):
            if self.state.get(key):
                fields[key] = str(self.state[key])
        if req.properties:
            fields['properties'] = json.dumps(req.properties,
                                              sort_keys=True)
        for key, value in fields.items():
            if len(value) > 255:
                raise exception.InvalidInput(
                    reason=_('%(key)s is too long to be recorded in the '
                             'cloud (at most 255 characters)') % {'key': key})
        return {self.prefix + k: v for k, v in fields.items()}

    def finish_requested(self, properties):
        """Whether ``properties`` of the record say "finish requested".

        :param properties: the record image's properties (or a server's
            metadata).
        :returns: a bool.
        """
        return (properties or {}).get(self.prefix + 'finish') == 'requested'

    def record(self, **fields):
        """Write ``fields`` (prefix added) into the build record.

        The record lives in the properties of the *record image*
        (``build.state['blank_id']``, the blank disk that exists for the
        whole build): Glance lets its owner change them at any time,
        whereas Nova refuses server metadata updates while a server is in
        RESCUE. One JSON-patch request (``add`` replaces a value). Does
        nothing before the record image exists. The heartbeat and the
        client are renewed with every write.

        A failed write is reported as a ``warning`` event, not raised.

        :param fields: record fields, strings.
        """
        image_id = self.state.get('blank_id')
        if not image_id:
            return
        fields = dict(fields, heartbeat=str(int(time.time())),
                      client=CLIENT)
        ops = [{'op': 'add', 'path': '/' + self.prefix + k,
                'value': str(v)[:255]} for k, v in sorted(fields.items())]
        try:
            with cloud.translate_errors(_('build record image %s')
                                        % image_id):
                resp = self.conn.image.patch(
                    '/images/%s' % image_id, json=ops,
                    headers={'Content-Type': catalog.PATCH_TYPE})
                _raise_for(resp)
        except exception.CloudError as e:
            # The record helps other clients; losing it must not fail the
            # build (the server and the output image carry the build id).
            self.event('warning', message=_('could not update the build '
                                            'record: %s') % e)
        self._last_heartbeat = time.monotonic()

    def finish_is_requested(self):
        """Whether ``openstack iso build finish`` was run (one GET).

        :returns: a bool.
        """
        image_id = self.state.get('blank_id')
        if not image_id:
            return False
        with cloud.translate_errors(_('build record image %s') % image_id):
            image = self.conn.image.get_image(image_id)
        return self.finish_requested(image.properties)

    # -- waiting --------------------------------------------------------

    def wait(self, probe, what, timeout):
        """Poll ``probe`` with exponential backoff until it says done.

        The interval starts at ``poll_interval`` and doubles up to
        ``poll_max_interval``. Between two polls the build renews its
        heartbeat when due and reacts to cancellation at once.

        :param probe: callable returning ``(done, status)``; it may raise
            to fail the wait.
        :param what: what is awaited, for messages.
        :param timeout: seconds this wait may take (the whole build's
            deadline applies too).
        :returns: the last status.
        :raises isoplugin.exception.BuildTimeout: time is up.
        :raises isoplugin.exception.BuildInterrupted: the build was
            cancelled.
        """
        opts = self.conf.isoplugin
        start = time.monotonic()
        end = start + timeout
        interval = opts.poll_interval
        status = None
        while True:
            self._check_cancelled()
            done, status = probe()
            now = time.monotonic()
            if done:
                self.event('waited', what=what, status=status,
                           elapsed=round(now - start, 1))
                return status
            limit = min(end, self._deadline or end)
            if now >= limit:
                raise exception.BuildTimeout(
                    build_id=self.id, phase=self.phase,
                    timeout=int(timeout if end <= (self._deadline or end)
                                else self._deadline - self._t0),
                    what=what + (' (last status: %s)' % status
                                 if status else ''))
            self.event('waiting', what=what, status=status,
                       elapsed=round(now - start, 1))
            if (self._last_heartbeat and now - self._last_heartbeat >=
                    opts.heartbeat_interval):
                self.record(phase=self.phase)
            pause = min(interval, max(limit - now, 0.01))
            t = time.monotonic()
            _sleep(self.cancelled, pause)
            self.waited += time.monotonic() - t
            interval = min(interval * 2, opts.poll_max_interval)

    def _check_cancelled(self):
        if self.cancelled.is_set():
            raise exception.BuildInterrupted(
                build_id=self.id, phase=self.phase, reason=_('cancelled'))

    # -- the phases -----------------------------------------------------

    def run(self, start_phase='prepare'):
        """Run the build from ``start_phase`` to the end; always clean up.

        :param start_phase: the phase to start from (resume).
        :returns: the output image, an
            :class:`openstack.image.v2.image.Image`.
        :raises isoplugin.exception.BuildFailed: a phase failed (the
            message names it and carries the cloud's fault message); its
            subclasses BuildTimeout, BuildInterrupted (Ctrl-C, SIGTERM) and
            VerifyFailed say why. Temporary resources are deleted before it
            is raised, unless keep_on_error.
        """
        opts = self.conf.isoplugin
        self._t0 = time.monotonic()
        self._deadline = self._t0 + (self.request.timeout or
                                     opts.build_timeout)
        error = None
        try:
            with _terminate_as_interrupt():
                for phase in PHASES[PHASES.index(start_phase):-1]:
                    self._enter(phase)
                    getattr(self, '_' + phase)()
                    self.event('phase-end')
        except KeyboardInterrupt:
            error = exception.BuildInterrupted(
                build_id=self.id, phase=self.phase,
                reason=_('interrupted by a signal'))
        except exception.BuildFailed as e:
            error = e
        except exception.IsopluginException as e:
            reason = str(e)
            fault = self._fault()
            if fault and fault not in reason:
                reason = '%s (%s)' % (reason, fault)
            error = exception.BuildFailed(build_id=self.id,
                                          phase=self.phase, reason=reason)
            error.__cause__ = e
        finally:
            failed_phase = self.phase
            try:
                self._cleanup(error)
            except exception.IsopluginException as e:
                if error is None:
                    error = exception.BuildFailed(
                        build_id=self.id, phase='cleanup', reason=str(e))
                    failed_phase = 'cleanup'
                else:
                    LOG.error('Cleanup of build %(id)s failed: %(err)s',
                              {'id': self.id, 'err': e})
        if error is not None:
            self.event('failed', message=str(error), failed_phase=failed_phase)
            raise error
        self.event('done', image_id=self.image_id,
                   elapsed=round(time.monotonic() - self._t0, 1))
        return self.output

    def _enter(self, phase):
        self.phase = phase
        self.event('phase-start')
        self.record(phase=phase)

    def _fault(self):
        try:
            return self.backend.describe_failure(self)
        except Exception:  # the explanation must not hide the error
            LOG.debug('Could not read the fault of build %(id)s',
                      {'id': self.id}, exc_info=True)
            return None

    def _prepare(self):
        if self.iso is None:
            self.iso = resolve_iso(self.conn, self.conf, self.request.iso)
        with cloud.translate_errors():
            self.backend.check_cloud(self.conn)
        if (self.request.interactive and not self.backend.supports(
                _capabilities().INTERACTIVE_INSTALL)):
            raise exception.CloudUnsupported(
                reason=_('the %s backend cannot run interactive installs')
                % self.backend.NAME)
        with cloud.translate_errors():
            self.backend.prepare(self)

    def _boot(self):
        with cloud.translate_errors():
            self.backend.boot(self)

    def _install(self):
        from isoplugin.backends import base

        opts = self.conf.isoplugin
        with cloud.translate_errors():
            self.backend.start_install(self)
            if self.request.interactive:
                try:
                    console_type, url = self.backend.console_url(self)
                except exception.CloudUnsupported as e:
                    console_type = url = None
                    self.event('warning', message=str(e))
            if self.request.interactive and url:
                message = _('Install through the %(type)s console %(url)s, '
                            'then power the server off or run "openstack '
                            'iso build finish %(id)s"') % {
                    'type': console_type, 'url': url, 'id': self.id}
                self.event('console', console_type=console_type, url=url,
                           message=message)

        def probe():
            with cloud.translate_errors():
                state, detail = self.backend.install_state(self)
            if (state is base.InstallState.RUNNING and
                    self.request.interactive and self.finish_is_requested()):
                return True, _('finish requested')
            if state is base.InstallState.FAILED:
                raise exception.BuildFailed(build_id=self.id,
                                            phase=self.phase, reason=detail)
            return state is base.InstallState.FINISHED, detail

        self.wait(probe, _('the installer to power the server off'),
                  self.request.install_timeout or opts.install_timeout)

    def _detach(self):
        with cloud.translate_errors():
            self.backend.detach(self)

    def _snapshot(self):
        opts = self.conf.isoplugin
        p = self.prefix
        with cloud.translate_errors():
            image_id = self.state.get('image_id') or self._pending_output()
            if not image_id:
                image_id = self.backend.snapshot(
                    self, self.request.name,
                    {p + 'build_id': self.id, p + 'role': ROLE_OUTPUT,
                     p + 'client': CLIENT})
                self.state['image_id'] = image_id
        self.image_id = image_id
        self.record(phase=self.phase, image_id=image_id)

        def probe():
            try:
                with cloud.translate_errors(_('image %s') % image_id):
                    image = self.conn.image.get_image(image_id)
            except exception.NotFound:
                image = None
            if image is None or image.status in ('killed', 'deleted'):
                fault = self._fault() or _(
                    'Nova deleted it during createImage and gives no reason '
                    '(the createImage instance action shows no error)')
                raise exception.BuildFailed(
                    build_id=self.id, phase=self.phase,
                    reason=_('the snapshot image %(id)s failed: %(fault)s')
                    % {'id': image_id, 'fault': fault})
            return image.status == 'active', image.status

        self.wait(probe, _('the snapshot image to become active'),
                  opts.snapshot_timeout)
        self._set_output_properties()

    def _pending_output(self):
        images = list_images(self.conn, {self.prefix + 'build_id': self.id,
                                         self.prefix + 'role': ROLE_OUTPUT})
        return images[0]['id'] if images else None

    def _set_output_properties(self):
        p = self.prefix
        iso = self.iso
        iso_fields = catalog.flat(iso)
        props = {}
        for key in ('os_type', 'os_distro', 'os_version', 'architecture'):
            value = iso_fields.get(key)
            if value:
                props[key] = value
        props.update(self.backend.image_properties(self))
        props.update(self.request.properties or {})
        hash_value = iso_fields.get('os_hash_value')
        props.update({
            p + 'build_id': self.id,
            p + 'source_iso_id': iso.id,
            p + 'source_iso_hash': '%s:%s' % (
                iso_fields.get('os_hash_algo'), hash_value)
            if hash_value else '',
            p + 'backend': self.backend.NAME,
            p + 'version': _version(),
            p + 'build_time': _now_iso(),
            'min_disk': int(self.state.get('disk_gb') or 0),
        })
        remove = list(UNWANTED_PROPERTIES)
        remove += [p + s for s in UNWANTED_PREFIXED if s != 'role']
        patch_image(self.conn, self.image_id, props, remove)

    def _verify(self):
        if not self.verify:
            self.event('skipped', message=_('verification not asked for'))
            patch_image(self.conn, self.image_id,
                        {self.prefix + 'verified': 'skipped'}, [])
            self._publish()
            return
        try:
            verify_image(self)
        except exception.VerifyFailed as e:
            patch_image(self.conn, self.image_id,
                        {self.prefix + 'verified': 'failed'}, [])
            if self.verify_must_pass:
                raise
            self.event('warning', message=str(e))
        else:
            patch_image(self.conn, self.image_id,
                        {self.prefix + 'verified': 'passed'}, [])
        self._publish()

    def _publish(self):
        """Give the output image its visibility and tags.

        It is no longer temporary: its role property is removed.
        """
        patch_image(self.conn, self.image_id,
                    {'visibility': self.request.visibility,
                     'tags': list(self.request.tags or [])},
                    [self.prefix + 'role'])
        with cloud.translate_errors():
            self.output = self.conn.image.get_image(self.image_id)

    def _cleanup(self, error):
        self.phase = 'cleanup'
        self.event('phase-start')
        if error is not None and self.keep_on_error:
            self.record(phase='failed', error=str(error))
            self.event('kept', message=_('keeping the resources of the '
                                         'failed build (keep-on-error); '
                                         'delete them with "openstack iso '
                                         'build delete %s"') % self.id)
            return
        try:
            self.record(phase='cleanup')
        except exception.IsopluginException:
            pass  # the server may already be gone
        delete_resources(self.conn, self.conf, self.id, build=self)
        self.event('phase-end')


def _capabilities():
    from isoplugin.backends import base

    return base.Capabilities


def _version():
    try:
        import isoplugin

        return isoplugin.version_string()
    except Exception:
        return 'unknown'


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Make SIGTERM behave like Ctrl-C (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum, frame):
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- cloud helpers shared by the phases and the commands -------------------

def resolve_iso(conn, conf, name_or_id):
    """Return the ISO image to build from; refuse a retired one.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param name_or_id: the ISO's name or id.
    :returns: an :class:`openstack.image.v2.image.Image`.
    :raises isoplugin.exception.ISONotFound: no such ISO.
    :raises isoplugin.exception.ISORetired: the ISO is retired.
    """
    iso = catalog.Catalog(conn, conf).get(name_or_id)
    retired = catalog.flat(iso).get(conf.glance.property_prefix + 'retired')
    if str(retired).lower() == 'true':
        raise exception.ISORetired(iso=name_or_id)
    return iso


def patch_image(conn, image_id, set_fields, remove):
    """Set and remove image fields/properties with one JSON patch.

    :param conn: an :class:`openstack.connection.Connection`.
    :param image_id: the image.
    :param set_fields: dict of fields or properties to set.
    :param remove: names of properties to remove (absent ones ignored).
    :raises isoplugin.exception.CloudError: Glance refused.
    """
    with cloud.translate_errors(_('image %s') % image_id):
        current = conn.image.get('/images/%s' % image_id).json()
        ops = [{'op': 'remove', 'path': '/' + key}
               for key in remove if key in current and key not in set_fields]
        for key, value in set_fields.items():
            if current.get(key) == value:
                continue
            ops.append({'op': 'replace' if key in current else 'add',
                        'path': '/' + key, 'value': value})
        if not ops:
            return
        resp = conn.image.patch(
            '/images/%s' % image_id, json=ops,
            headers={'Content-Type': catalog.PATCH_TYPE})
        _raise_for(resp)


def _raise_for(resp):
    from openstack import exceptions as sdk_exc

    sdk_exc.raise_from_response(resp)


def _server_resource(server, prefix):
    md = server.metadata or {}
    record = {k[len(prefix):]: v for k, v in md.items()
              if k.startswith(prefix)}
    fault = server_fault(server)
    return Resource(kind='server', id=server.id, name=server.name,
                    build_id=record.get('build_id'), role=record.get('role'),
                    status=server.status, record=record,
                    updated_at=server.updated_at, fault=fault)


def server_fault(server):
    """The message of a server's fault, or ``None``."""
    fault = getattr(server, 'fault', None)
    if isinstance(fault, dict):
        return fault.get('message') or fault.get('details')
    return fault or None


def _image_resource(body, prefix):
    record = {k[len(prefix):]: str(v) for k, v in body.items()
              if k.startswith(prefix)}
    return Resource(kind='image', id=body['id'], name=body.get('name'),
                    build_id=record.get('build_id'), role=record.get('role'),
                    status=body.get('status'), record=record,
                    updated_at=body.get('updated_at'))


def list_images(conn, filters):
    """Glance images matching property ``filters``, as JSON dicts.

    openstacksdk's ``images()`` drops query parameters it does not know,
    and Glance filters on any property: the query is sent as it is, and
    every page is followed.

    :param conn: an :class:`openstack.connection.Connection`.
    :param filters: dict of property name -> value.
    :returns: a list of image dicts.
    """
    images = []
    url = '/images'
    params = dict(filters, limit=100)
    while url:
        resp = conn.image.get(url, params=params)
        _raise_for(resp)
        body = resp.json()
        images.extend(body.get('images') or [])
        url = body.get('next')
        if url:
            url = url.replace('/v2', '', 1) if url.startswith('/v2') \
                else url
            params = None
    return images


def find_resources(conn, conf, build_id=None):
    """Find the temporary resources of one build, or of every build.

    Servers whose metadata carries ``<prefix>build_id``; images whose
    ``<prefix>role`` is ``blank-disk`` or ``output-pending`` (a published
    output image keeps its build id but is no longer temporary).

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param build_id: one build's id, or ``None`` for all.
    :returns: a list of :class:`Resource`, servers first.
    """
    prefix = conf.glance.property_prefix
    found = []
    with cloud.translate_errors():
        for server in conn.compute.servers(details=True):
            res = _server_resource(server, prefix)
            if res.build_id and build_id in (None, res.build_id):
                found.append(res)
        for role in TEMPORARY_IMAGE_ROLES:
            query = {prefix + 'role': role}
            if build_id:
                query[prefix + 'build_id'] = build_id
            for body in list_images(conn, query):
                res = _image_resource(body, prefix)
                # Glance filtered already; check again, it is cheap and a
                # cleanup must never touch what is not its own
                if (res.build_id and res.role == role and
                        build_id in (None, res.build_id) and
                        res.id not in {r.id for r in found}):
                    found.append(res)
    return found


def delete_resources(conn, conf, build_id, build=None, resources=None):
    """Delete a build's temporary resources: servers first, then images.

    Waits (with backoff) for the servers to be gone before deleting the
    images they were booted from. Something already gone is not an error;
    every resource is tried even when one fails.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param build_id: the build.
    :param build: the running :class:`Build`, if any (for events).
    :param resources: the resources to delete (default: found again).
    :returns: the list of deleted :class:`Resource`.
    :raises isoplugin.exception.CloudError: some could not be deleted (the
        message lists them); the others were deleted.
    """
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as sdk_exc

    errors = (sdk_exc.SDKException, ks_exc.ClientException)
    if resources is None:
        resources = find_resources(conn, conf, build_id)
    opts = conf.isoplugin
    failures = []
    servers = [r for r in resources if r.kind == 'server']
    images = [r for r in resources if r.kind == 'image']

    def note(res, event):
        if build is not None:
            build.event(event, resource=res.kind, id=res.id, role=res.role)
        else:
            LOG.info('isoplugin build %(build_id)s cleanup: %(event)s '
                     '%(resource)s %(id)s',
                     {'build_id': build_id, 'phase': 'cleanup',
                      'event': event, 'resource': res.kind, 'id': res.id})

    for res in servers:
        try:
            conn.compute.delete_server(res.id, ignore_missing=True)
            note(res, 'deleting')
        except errors as e:
            failures.append('server %s: %s' % (res.id, e))
    pending = {r.id for r in servers}
    start = time.monotonic()
    interval = opts.poll_interval
    event = build.cancelled if build is not None else threading.Event()
    # An interrupted build still cleans up: do not stop on its event.
    event = threading.Event() if event.is_set() else event
    while pending and time.monotonic() - start < opts.delete_timeout:
        for server_id in list(pending):
            try:
                server = conn.compute.find_server(server_id,
                                                  ignore_missing=True)
            except sdk_exc.NotFoundException:
                server = None
            except errors:
                continue  # cannot tell: look again
            if server is None or server.status == 'DELETED':
                pending.discard(server_id)
        if pending:
            _sleep(event, interval)
            interval = min(interval * 2, opts.poll_max_interval)
    for server_id in pending:
        failures.append('server %s: still there after %s s' %
                        (server_id, opts.delete_timeout))
    for res in images:
        try:
            conn.image.delete_image(res.id, ignore_missing=True)
            note(res, 'deleted')
        except errors as e:
            failures.append('image %s: %s' % (res.id, e))
    if failures:
        raise exception.CloudError(
            reason=_('cleanup of build %(id)s left: %(what)s; run '
                     '"openstack iso build delete %(id)s"')
            % {'id': build_id, 'what': '; '.join(failures)})
    return [r for r in resources if r.id not in pending]


def _client_alive(client):
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
    builds = []
    for bid, resources in by_build.items():
        # the record image (blank disk) is the live record; servers carry
        # the record as it was when they were created
        rank = {ROLE_BLANK: 3, ROLE_BUILD_SERVER: 2}
        ordered = sorted(resources, key=lambda r: rank.get(r.role, 1))
        record = {}
        for res in ordered:
            record.update(res.record)
        beats = [float(r.record.get('heartbeat') or 0) or
                 _to_epoch(r.updated_at) for r in resources]
        age = now - max(beats)
        alive = _client_alive(record.get('client'))
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

    :raises isoplugin.exception.BuildNotFound: nothing carries that id.
    """
    builds = list_builds(conn, conf, build_id)
    if not builds:
        raise exception.BuildNotFound(build_id=build_id)
    return builds[0]


def delete_build(conn, conf, build_id):
    """Delete what a build left (servers, blank disk, unfinished output).

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
    records = [r for r in info.resources if r.role == ROLE_BLANK]
    if not records:
        raise exception.BuildNotFound(build_id=build_id)
    patch_image(conn, records[0].id,
                {conf.glance.property_prefix + 'finish': 'requested'}, [])
    return info


def resume_build(conn, conf, build_id, progress=None, backend=None):
    """Continue a build whose client died, from the phase the cloud shows.

    :param progress: as for :class:`Build`.
    :returns: the output image.
    :raises isoplugin.exception.BuildNotResumable: it is still running
        elsewhere, or nothing is left to resume from.
    :raises isoplugin.exception.BuildFailed: as :meth:`Build.run`.
    """
    info = show_build(conn, conf, build_id)
    if info.status == 'running':
        raise exception.BuildNotResumable(
            build_id=build_id,
            reason=_('its client %(client)s is alive (heartbeat %(age)s s '
                     'ago)') % {'client': info.record.get('client'),
                                'age': int(info.age)})
    rec = info.record
    tags = [t for t in (rec.get('tags') or '').split(',') if t]
    request = BuildRequest(
        iso=rec.get('iso_id'), name=rec.get('image_name'),
        visibility=rec.get('visibility') or 'private', tags=tags,
        verify=rec.get('verify') == 'true', backend=rec.get('backend'),
        properties=json.loads(rec['properties'])
        if rec.get('properties') else {})
    build = Build(conn, conf, request, backend=backend, progress=progress,
                  build_id=build_id)
    build.started = rec.get('started') or build.started
    with cloud.translate_errors(_('ISO %s') % request.iso):
        build.iso = conn.image.get_image(request.iso)
    request.interactive = rec.get('interactive') == 'true'
    for key in ('flavor_id', 'disk_gb', 'network_id', 'image_id'):
        if rec.get(key):
            build.state[key] = rec[key]
    for res in info.resources:
        if res.role == ROLE_BUILD_SERVER:
            build.state['server_id'] = res.id
        elif res.role == ROLE_BLANK:
            build.state['blank_id'] = res.id
        elif res.role == ROLE_OUTPUT:
            build.state['image_id'] = res.id
        elif res.role == ROLE_VERIFY_SERVER:
            build.state.setdefault('stale_verify_ids', []).append(res.id)
    build.image_id = build.state.get('image_id')
    phase = info.phase
    if phase == 'failed':  # kept with keep-on-error: start again at boot
        phase = 'boot'
    if phase == 'prepare' and not build.state.get('blank_id'):
        raise exception.BuildNotResumable(
            build_id=build_id, reason=_('it stopped before creating '
                                        'anything to resume from'))
    build.event('resume', from_phase=phase)
    if phase == 'cleanup':
        build._t0 = time.monotonic()
        build._cleanup(None)
        return None
    return build.run(start_phase=phase)


def verify_image(build):
    """Boot a server from the build's image and read its console log.

    Waits for ACTIVE, then for ``verify_console_regex`` in the console
    log within ``verify_timeout``; deletes the server in every case.

    :param build: the :class:`Build`.
    :raises isoplugin.exception.VerifyFailed: the server failed, or the
        log did not match in time.
    """
    from openstack import exceptions as sdk_exc

    conn = build.conn
    opts = build.conf.isoplugin
    pattern = re.compile(opts.verify_console_regex)
    for stale in build.state.pop('stale_verify_ids', []):
        conn.compute.delete_server(stale, ignore_missing=True)
    networks = ([{'uuid': build.state['network_id']}]
                if build.state.get('network_id') else 'none')
    with cloud.translate_errors():
        server = conn.compute.create_server(
            name='%sverify-%s' % (build.prefix.replace('_', '-'), build.id),
            image_id=build.image_id, flavor_id=build.state['flavor_id'],
            networks=networks,
            metadata=build.record_fields(ROLE_VERIFY_SERVER))
    build.state['verify_server_id'] = server.id

    def active():
        with cloud.translate_errors():
            srv = conn.compute.get_server(server.id)
        if srv.status == 'ERROR':
            raise exception.VerifyFailed(
                build_id=build.id, phase='verify',
                reason=_('the verify server went to ERROR: %s') %
                (server_fault(srv) or _('no fault')))
        return srv.status == 'ACTIVE', srv.status

    def console():
        try:
            output = conn.compute.get_server_console_output(
                server.id).get('output') or ''
        except sdk_exc.SDKException as e:
            # libvirt has no console log for a guest that is off: if the
            # image powered itself off before the log matched, waiting
            # longer cannot help.
            with cloud.translate_errors():
                srv = conn.compute.get_server(server.id)
            if srv.status in ('SHUTOFF', 'ERROR'):
                raise exception.VerifyFailed(
                    build_id=build.id, phase='verify',
                    reason=_('the verify server is %(status)s and its '
                             'console log cannot be read (%(error)s); '
                             'the log never matched %(regex)s') % {
                        'status': srv.status, 'error': e,
                        'regex': opts.verify_console_regex})
            return False, str(e)
        return bool(pattern.search(output)), _('%d bytes of console log') \
            % len(output)

    try:
        build.wait(active, _('the verify server to become ACTIVE'),
                   opts.boot_timeout)
        try:
            build.wait(console, _('the console log to match %s') %
                       opts.verify_console_regex, opts.verify_timeout)
        except exception.BuildTimeout as e:
            raise exception.VerifyFailed(
                build_id=build.id, phase='verify', reason=str(e)) from e
    finally:
        # cleanup waits for it to be gone, with the other servers
        with contextlib.suppress(sdk_exc.SDKException):
            conn.compute.delete_server(server.id, ignore_missing=True)


# -- many builds -----------------------------------------------------------

def build_images(conn, conf, requests, parallel=None, progress=None,
                 backend=None):
    """Run many builds with at most ``parallel`` at a time.

    ``requests`` may be any iterable (a generator): it is consumed as
    builds finish, so memory stays flat however many ISOs are given. On
    Ctrl-C every running build is cancelled and cleans up before this
    returns.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param requests: iterable of :class:`BuildRequest`.
    :param parallel: builds at once (default ``[isoplugin] parallel``).
    :param progress: callback for every build's events.
    :param backend: a backend instance shared by the builds.
    :returns: a generator of ``(request, image or exception)``, in order
        of completion.
    """
    parallel = parallel or conf.isoplugin.parallel
    running = {}
    iterator = iter(requests)
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        try:
            while True:
                while len(running) < parallel:
                    try:
                        request = next(iterator)
                    except StopIteration:
                        break
                    build = Build(conn, conf, request, backend=backend,
                                  progress=progress)
                    running[pool.submit(build.run)] = (request, build)
                if not running:
                    return
                done, _pending = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    request, _build = running.pop(future)
                    try:
                        yield request, future.result()
                    except exception.IsopluginException as e:
                        yield request, e
        except (KeyboardInterrupt, GeneratorExit):
            for _request, build in running.values():
                build.cancelled.set()
            concurrent.futures.wait(running)
            raise
