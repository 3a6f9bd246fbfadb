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

*prepare* resolves the ISO, checks the cloud, makes the build record and
lets the backend make the system disk; *boot* starts the temporary server;
*install* presents the ISO and waits for the installer to power the server
off (or for ``openstack iso build finish``); *detach* takes the ISO away
and stops the server; *snapshot* makes the output image and gives it its
properties; *verify* boots a server from it (as the backend says) and
reads its console log; *cleanup* deletes every temporary resource, and
runs whatever happened before (success, error, timeout, Ctrl-C, SIGTERM).

The backend (:mod:`isoplugin.backends.base`) does what differs from one
way of installing to another; it gets a
:class:`~isoplugin.backends.base.BuildContext`, never the :class:`Build`.

The cloud is the state store: the pipeline keeps the build record in the
properties of its *record image* (see :mod:`isoplugin.records`, where the
builds are found, listed, deleted and finished from any client).

Every event of a build is logged with ``LOG.info`` and a dict argument
(``build_id``, ``phase``, ``event`` and details) that a service's log
handler can consume as structured data, and handed to the ``progress``
callback, which is how the command line draws its progress lines.
"""

import concurrent.futures
import contextlib
import dataclasses
import datetime
import itertools
import json
import math
import os
import queue
import re
import signal
import socket
import threading
import time
import uuid

from oslo_log import log as logging

from isoplugin.backends import base
from isoplugin import cloud
from isoplugin import compute
from isoplugin import exception
from isoplugin import glance
from isoplugin.i18n import _
from isoplugin import presentation
from isoplugin import records

LOG = logging.getLogger(__name__)

PHASES = ('prepare', 'boot', 'install', 'detach', 'snapshot', 'verify',
          'cleanup')

#: the resource roles, defined with the backend contract
ROLE_RECORD = base.ROLE_RECORD
ROLE_BUILD_SERVER = base.ROLE_BUILD_SERVER
ROLE_VERIFY_SERVER = base.ROLE_VERIFY_SERVER
ROLE_BLANK = base.ROLE_BLANK
ROLE_OUTPUT = base.ROLE_OUTPUT

#: properties an output image must not inherit (ISO-only, rescue, and what
#: Nova copies from the instance and its temporary images); the backend
#: adds its own (``BuildBackend.UNWANTED_PROPERTIES``)
UNWANTED_PROPERTIES = (
    'hw_rescue_device', 'hw_rescue_bus', 'hw_cdrom_bus',
    'instance_uuid', 'base_image_ref', 'image_type', 'image_location',
    'boot_roles', 'owner_user_name', 'owner_project_name', 'user_id',
    'owner_id', 'image_state',
)
#: suffixes of ``<prefix>*`` properties an output image must not carry
UNWANTED_PREFIXED = ('media', 'featured', 'extractable', 'password_enabled',
                     'retired', 'role', 'phase', 'client', 'heartbeat',
                     'image_name', 'visibility', 'tags', 'verify', 'iso_id',
                     'started', 'finish', 'error')

CLIENT = '%s:%d' % (socket.gethostname(), os.getpid())

#: a snapshot up to this size is read to check that the install wrote the
#: disk: an unwritten disk's qcow2 is a few hundred KiB whatever its
#: virtual size, an installed system's is far bigger than this
BLANK_CHECK_MAX_SIZE = 8 * 1024 * 1024
#: a wait's interval after its fast start: this share of the time waited
#: so far, at least ``2 * poll_interval`` and at most ``poll_max_interval``
#: (see :class:`PollSchedule`)
POLL_RATIO = 0.15
#: a wait polls every ``poll_interval`` during its first this many
#: ``poll_interval`` (when no end is expected)
FAST_START = 10
#: requests a wait may make beyond its share of the budget (see
#: :class:`PollSchedule`)
POLL_ALLOWANCE = 30
#: a wait longer than this many ``poll_max_interval`` makes at most one
#: request per ``poll_max_interval`` on average
BUDGET_HORIZON = 90
#: polls spread over the window around an expected end
WINDOW_POLLS = 15
#: seconds between two looks for a signal while the pool of builds waits:
#: the kernel may give a signal to a build's thread, whose C handler does
#: not wake the main thread where Python runs the signal's handler
SIGNAL_CHECK_INTERVAL = 0.5
#: earlier builds of an ISO looked at (one request) for the one that
#: tells how long its install took
ESTIMATE_LOOKUP = 5
_QCOW2_OFFSET_MASK = 0x00fffffffffffe00

# The build records, kept importable from here (the command line and the
# README use isoplugin.build).
Resource = records.Resource
BuildInfo = records.BuildInfo
find_resources = records.find_resources
delete_resources = records.delete_resources
list_builds = records.list_builds
show_build = records.show_build
delete_build = records.delete_build
delete_orphans = records.delete_orphans
finish_build = records.finish_build


def _sleep(event, seconds):
    """Wait ``seconds`` or until ``event`` is set; True when it was set.

    The only sleep of the pipeline (unit tests patch it).
    """
    return event.wait(seconds)


class PollSchedule(object):
    """When a wait polls: often where its end is likely, within a budget.

    **The budget.** Every status poll and every heartbeat of the build
    record during the wait counts as one request. At each moment ``t``
    (seconds since the wait started) the wait has made at most::

        max(A + t * (1 / M - A / H), t / M)

    requests, ``M`` being ``poll_max_interval`` (10 s by default), ``A``
    :data:`POLL_ALLOWANCE` (30) and ``H`` :data:`BUDGET_HORIZON` times
    ``M`` (900 s). So any wait longer than ``H`` (15 minutes: an
    install) makes at most one request per ``M`` on average over its
    whole length, and a shorter one at most ``A`` requests more than one
    per 15 s (with the defaults). The budget wins over the placement
    below: a pause is lengthened until the next poll fits in it.

    **Where the polls go**, ``p`` being ``poll_interval`` (1 s):

    * at once (the end may have come with the request that started the
      wait: an uploaded image is active);
    * with no end expected: every ``p`` during the first
      ``FAST_START * p`` (10 s), where most waits end (a server booting,
      leaving rescue, stopping; a small snapshot), so those ends are seen
      within ``p``; then every ``POLL_RATIO`` (15 %) of the time waited,
      at least ``2 * p`` and at most ``M``, as an end grows less likely
      per second the longer it did not come;
    * with an end expected after ``E`` seconds (an install's estimate):
      ``WINDOW_POLLS`` (15) polls evenly spread, at least ``p`` and at
      most ``M`` apart, from ``E - max(3 p, 5 % E)`` to
      ``E + max(12 p, 20 % E)``; every ``M`` before that window, more
      slowly where the budget must keep the window's polls in reserve;
      after it, every 15 % of the time waited, at most ``M``, as if none
      was expected. The window helps up to ``E`` of about 9 minutes;
      beyond, an estimate's uncertainty is too wide for polls more
      often than every ``M``.

    With the defaults, an install expected to take 60 s polls at 0, 10,
    ... 50 s, then every second from 57 to 72 s: 22 polls and a heartbeat
    up to 72 s, where with no end expected it makes 23 polls by 57 s and
    the next at 65 s.

    :param opts: the ``[isoplugin]`` options (``poll_interval``,
        ``poll_max_interval``).
    :param expected: seconds after which the end is expected, or None.
    """

    def __init__(self, opts, expected=None):
        self.p = opts.poll_interval
        self.max = opts.poll_max_interval
        self.expected = expected if expected and expected > 0 else None
        #: requests made so far (:meth:`count` them)
        self.requests = 0
        self.window = None
        self.reserve = 0
        if self.expected is not None:
            e = float(self.expected)
            start = max(0.0, e - max(3 * self.p, 0.05 * e))
            end = e + max(12 * self.p, 0.2 * e)
            step = min(self.max, max(self.p, (end - start) / WINDOW_POLLS))
            self.window = (start, end, step)
            # the window's polls, kept in reserve before it (none when
            # it is too wide for them to come more often than every M)
            self.reserve = (int(math.ceil((end - start) / step)) + 1
                            if step < self.max else 0)

    def count(self, requests=1):
        """Charge ``requests`` made by the wait (a poll, a heartbeat)."""
        self.requests += requests

    def _slope(self):
        return 1.0 / self.max - POLL_ALLOWANCE / (BUDGET_HORIZON * self.max)

    def allowed(self, t):
        """Requests the budget allows in the first ``t`` seconds."""
        return max(POLL_ALLOWANCE + t * self._slope(), t / self.max)

    def _earliest(self, requests):
        """The first moment the budget allows ``requests`` requests."""
        return max(0.0, min((requests - POLL_ALLOWANCE) / self._slope(),
                            requests * self.max))

    def wanted(self, t):
        """The pause after a poll at ``t`` where the placement wants it."""
        if self.window is not None:
            start, end, step = self.window
            if t < start:
                return min(self.max, start - t)
            if t < end:
                return step
        elif t < FAST_START * self.p:
            return self.p
        return min(self.max, max(2 * self.p, POLL_RATIO * t))

    def _fit(self, wanted, need):
        """The first moment from ``wanted`` with room for ``need``."""
        at = max(wanted, self._earliest(need))
        if self.reserve and at < self.window[0]:
            # before the window, keep its polls in reserve
            at = max(at, min(self._earliest(need + self.reserve),
                             max(self.window[0], self._earliest(need))))
        return at

    def pause(self, t, beat_at=None):
        """Seconds to sleep after a poll at ``t`` (within the budget).

        :param t: seconds since the wait started.
        :param beat_at: when (same clock) the next heartbeat is due: the
            poll that finds it due is followed by it, and needs room for
            both.
        """
        wanted = t + self.wanted(t)
        at = self._fit(wanted, self.requests + 1)
        if beat_at is not None and at >= beat_at:
            at = self._fit(wanted, self.requests + 2)
        return at - t


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def _id(image):
    return glance.flat(image)['id']


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
    :ivar disk_size: size of the system disk in GiB (backends with the
        ``DISK_SIZE`` capability).
    :ivar network: network name or id for the temporary server.
    :ivar backend: build backend name.
    :ivar interactive: wait for a person on the remote console (backends
        with the ``INTERACTIVE_INSTALL`` capability).
    :ivar verify: boot the new image and check its console log.
    :ivar verify_must_pass: a failed verification fails the build.
    :ivar timeout: seconds the whole build may take.
    :ivar install_timeout: seconds the install may take.
    :ivar install_estimate: seconds the install is expected to take (from
        the start of the install to the installer's power-off), or
        ``None``: the install wait polls most often around then (see
        :class:`PollSchedule`). Without it, an unattended build expects
        what the install of this project's last build of the ISO took
        (the ``<prefix>install_seconds`` of its output image).
    :ivar visibility: visibility of the output image.
    :ivar tags: tags of the output image.
    :ivar properties: extra properties of the output image.
    :ivar keep_on_error: keep temporary resources of a failed build.
    :ivar profile: install profile name (see :mod:`isoplugin.profiles`);
        ``None`` detects it from the ISO, ``'none'`` uses the ISO as it is.
    :ivar answer_file: path of an answer file to use instead of the
        profile's template.
    :ivar values: the profile's template variables (``{name: value}``);
        never recorded or logged (some are secret).
    :ivar kernel_args: extra kernel arguments for the installer.
    :ivar add_files: ``['SRC[:DEST]', ...]`` merged into the prepared ISO.

    With a profile (given or detected) the build boots from the prepared
    copy of the ISO (:mod:`isoplugin.prepared`), made or found in the
    cache. With none of the last five fields and an ISO no profile
    recognises, the ISO is used as it is (a ``notice`` event says so).
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
    install_estimate: float = None
    visibility: str = 'private'
    tags: list = dataclasses.field(default_factory=list)
    properties: dict = dataclasses.field(default_factory=dict)
    keep_on_error: bool = None
    profile: str = None
    answer_file: str = None
    values: dict = dataclasses.field(default_factory=dict)
    kernel_args: list = dataclasses.field(default_factory=list)
    add_files: list = dataclasses.field(default_factory=list)

    def unattended_options(self):
        """Whether any option of the prepared ISO was given."""
        return bool(self.profile or self.answer_file or self.values or
                    self.kernel_args or self.add_files)


class Build:
    """One build: an id, a connection, a request, its resources, a phase.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param request: a :class:`BuildRequest`.
    :param backend: a :class:`isoplugin.backends.base.BuildBackend`;
        default: the one the request or the configuration names.
    :param progress: callable taking an event dict (see :meth:`event`).
    :param build_id: the id to use (default: a new one).

    Public attributes: ``id``, ``conn``, ``conf``, ``request``,
    ``backend``, ``progress``, ``iso`` (the ISO image once resolved),
    ``phase``, ``resources`` (the
    :class:`~isoplugin.backends.base.BuildResources`), ``record_id`` (the
    record image), ``image_id`` and ``output`` (the output image),
    ``cancelled`` (a :class:`threading.Event`: set it to stop the build,
    which then cleans up), ``waited`` (seconds spent sleeping),
    ``install_seconds`` (how long the install took, once the installer
    powered the server off; the output image keeps it as
    ``<prefix>install_seconds``).
    """

    def __init__(self, conn, conf, request, backend=None, progress=None,
                 build_id=None):
        from isoplugin import backends

        self.id = build_id or new_build_id()
        self.conn = conn
        self.conf = conf
        self.request = request
        self.backend = backend or backends.get_backend(
            conf, request.backend, conn=conn, flavor=request.flavor)
        self.progress = progress
        self.prefix = conf.glance.property_prefix
        self.resources = base.BuildResources()
        self.record_id = None
        self.iso = None
        self.rescue_iso = None
        self.prepared = None
        self.phase = None
        self.started = _now_iso()
        self.image_id = None
        self.output = None
        self.stale_verify_ids = []
        self.cancelled = threading.Event()
        self.waited = 0.0
        self.install_seconds = None
        #: the install phase is resumed: it started earlier
        self._install_resumed = False
        self._t0 = None
        self._deadline = None
        self._last_heartbeat = 0.0
        #: the record fields as last written (prefix removed)
        self._recorded = {}
        #: when Glance made the record image (a resumed build: unknown)
        self._record_created = ''
        #: the output image's fields as last seen (saves a GET per patch)
        self._output_fields = None
        opts = conf.isoplugin
        self.verify = opts.verify if request.verify is None else \
            request.verify
        self.verify_must_pass = (opts.verify_must_pass
                                 if request.verify_must_pass is None
                                 else request.verify_must_pass)
        self.keep_on_error = (opts.keep_on_error
                              if request.keep_on_error is None
                              else request.keep_on_error)

    def context(self):
        """Return the context the backend gets for this build.

        :returns: a :class:`~isoplugin.backends.base.BuildContext`: this
            build's id, connection, request, ISO and resources, and its
            :meth:`wait` and :meth:`record_fields`.
        """
        return base.BuildContext(
            build_id=self.id, conn=self.conn, conf=self.conf,
            request=self.request, iso=self.rescue_iso or self.iso,
            resources=self.resources,
            wait=self.wait, record_fields=self.record_fields)

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

    def _resource_fields(self):
        fields = {}
        for key in ('flavor_id', 'disk_gb', 'network_id'):
            value = getattr(self.resources, key)
            if value:
                fields[key] = str(value)
        if self.image_id:
            fields['image_id'] = self.image_id
        return fields

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
            'prepared_iso_id': (self.rescue_iso.id if self.rescue_iso
                                is not None else ''),
            'image_name': req.name,
            'visibility': req.visibility,
            'tags': ','.join(req.tags or ()),
            'verify': 'true' if self.verify else 'false',
            'interactive': 'true' if req.interactive else 'false',
        }
        fields.update(self._resource_fields())
        if req.properties:
            fields['properties'] = json.dumps(req.properties,
                                              sort_keys=True)
        for key, value in fields.items():
            if len(value) > 255:
                raise exception.InvalidInput(
                    reason=_('%(key)s is too long to be recorded in the '
                             'cloud (at most 255 characters)') % {'key': key})
        return {self.prefix + k: v for k, v in fields.items()}

    def record(self, **fields):
        """Write what changed of ``fields`` (prefix added) into the record.

        The record lives in the properties of the record image
        (:attr:`record_id`), which the pipeline makes in *prepare* and
        deletes at *cleanup*. What the build made so far (flavor, disk
        size, network, output image) goes with ``fields``. Only the values
        that differ from the last write are sent, with a new heartbeat;
        when none differs, nothing is sent unless the heartbeat is due
        (``heartbeat_interval``), so calling this often costs nothing.
        Does nothing before the record image exists.

        A failed write is reported as a ``warning`` event, not raised (the
        values are sent again with the next write).

        :param fields: record fields, strings.
        :returns: whether a request was sent.
        """
        if not self.record_id:
            return False
        fields = dict(self._resource_fields(), **fields)
        changed = {k: str(v)[:255] for k, v in fields.items()
                   if self._recorded.get(k) != str(v)[:255]}
        due = (time.monotonic() - self._last_heartbeat >=
               self.conf.isoplugin.heartbeat_interval)
        if not changed and not due:
            return False
        changed.update(heartbeat=str(int(time.time())), client=CLIENT)
        try:
            # one request, no read: ``add`` replaces a value
            glance.patch_image(self.conn, self.record_id, current={},
                               set={self.prefix + k: v
                                    for k, v in changed.items()})
        except exception.CloudError as e:
            # The record helps other clients; losing it must not fail the
            # build (the server and the output image carry the build id).
            self.event('warning', message=_('could not update the build '
                                            'record: %s') % e)
        else:
            self._recorded.update(changed)
        self._last_heartbeat = time.monotonic()
        return True

    def finish_is_requested(self):
        """Whether ``openstack iso build finish`` was run (one GET).

        :returns: a bool.
        """
        if not self.record_id:
            return False
        image = glance.get_image(self.conn, self.record_id,
                                 what=_('build record image %s')
                                 % self.record_id)
        return glance.flat(image).get(self.prefix + 'finish') == 'requested'

    # -- waiting --------------------------------------------------------

    def wait(self, probe, what, timeout, expected=None):
        """Poll ``probe`` until it says done, soon where its end is likely.

        Every second between the cloud's change and the next poll is
        lost, and every poll is a request to the cloud: the
        :class:`PollSchedule` places the polls (every second at the
        start, around an ``expected`` end, ever more sparsely elsewhere)
        within its budget: with the defaults, any wait longer than 10
        minutes makes at most one request per 10 s on average, counting
        its polls and the build record's heartbeats (which the wait
        writes between two polls, when due). Cancellation stops the wait
        at once.

        :param probe: callable returning ``(done, status)``; it may raise
            to fail the wait. One call counts as one request (most
            probes make one; the verify probe reads the console too).
        :param what: what is awaited, for messages.
        :param timeout: seconds this wait may take (the whole build's
            deadline applies too, once :meth:`run` started).
        :param expected: seconds after which the end is expected (an
            estimate), or None.
        :returns: the last status.
        :raises isoplugin.exception.BuildTimeout: time is up.
        :raises isoplugin.exception.BuildInterrupted: the build was
            cancelled.
        """
        schedule = PollSchedule(self.conf.isoplugin, expected)
        start = time.monotonic()
        end = start + timeout
        status = None
        while True:
            self._check_cancelled()
            schedule.count()
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
            if self.record():  # the heartbeat, when due
                schedule.count()
            beat_at = None
            if self.record_id:
                beat_at = (self._last_heartbeat - start +
                           self.conf.isoplugin.heartbeat_interval)
            pause = min(schedule.pause(time.monotonic() - start, beat_at),
                        max(limit - now, 0.01))
            t = time.monotonic()
            _sleep(self.cancelled, pause)
            self.waited += time.monotonic() - t

    def _check_cancelled(self):
        if self.cancelled.is_set():
            raise exception.BuildInterrupted(
                build_id=self.id, phase=self.phase, reason=_('cancelled'))

    # -- the phases -----------------------------------------------------

    def run(self, start_phase='prepare'):
        """Run the build from ``start_phase`` to the end; always clean up.

        :param start_phase: the phase to start from (resume); from
            ``cleanup`` only the cleanup runs, and ``None`` is returned.
        :returns: the output image, an
            :class:`openstack.image.v2.image.Image`.
        :raises isoplugin.exception.BuildFailed: a phase failed (the
            message names it and carries the cloud's fault message); its
            subclasses BuildTimeout, BuildInterrupted (Ctrl-C, SIGTERM) and
            VerifyFailed say why. Temporary resources are deleted before it
            is raised, unless keep_on_error.
        """
        opts = self.conf.isoplugin
        steps = (('prepare', self._prepare), ('boot', self._boot),
                 ('install', self._install), ('detach', self._detach),
                 ('snapshot', self._snapshot), ('verify', self._verify))
        self._t0 = time.monotonic()
        self._install_resumed = start_phase == 'install'
        self._deadline = self._t0 + (self.request.timeout or
                                     opts.build_timeout)
        error = None
        guard = SignalGuard(self.event)
        with guard:
            try:
                try:
                    for phase, step in steps[PHASES.index(start_phase):]:
                        self._enter(phase)
                        step()
                        self.event('phase-end')
                except exception.BuildFailed as e:
                    error = e
                except exception.IsopluginException as e:
                    reason = str(e)
                    fault = self._fault()
                    if fault and fault not in reason:
                        reason = '%s (%s)' % (reason, fault)
                    error = exception.BuildFailed(
                        build_id=self.id, phase=self.phase, reason=reason)
                    error.__cause__ = e
            except KeyboardInterrupt:
                error = exception.BuildInterrupted(
                    build_id=self.id, phase=self.phase,
                    reason=_('interrupted by a signal'))
            finally:
                guard.defer()  # the cleanup runs to its end
                failed_phase = self.phase
                try:
                    self._cleanup(error)
                except exception.IsopluginException as e:
                    if error is None:
                        error = exception.BuildFailed(
                            build_id=self.id, phase='cleanup',
                            reason=str(e))
                        failed_phase = 'cleanup'
                    else:
                        LOG.error('Cleanup of build %(id)s failed: %(err)s',
                                  {'id': self.id, 'err': e})
        if error is not None:
            self.event('failed', message=str(error), failed_phase=failed_phase)
            raise error
        if start_phase == 'cleanup':
            return None
        self.event('done', image_id=self.image_id,
                   elapsed=round(time.monotonic() - self._t0, 1))
        return self.output

    def _enter(self, phase):
        self.phase = phase
        self.event('phase-start')
        self.record(phase=phase)

    def _fault(self):
        try:
            return self.backend.describe_failure(self.context())
        except Exception:  # the explanation must not hide the error
            LOG.debug('Could not read the fault of build %(id)s',
                      {'id': self.id}, exc_info=True)
            return None

    def _prepare(self):
        if self.iso is None:
            self.iso = resolve_iso(self.conn, self.conf, self.request.iso)
        self._check_bootable()
        why = getattr(self.backend, 'chosen_because', None)
        if why:
            self.event('notice', message=_('backend %(name)s (%(why)s)')
                       % {'name': self.backend.NAME, 'why': why})
        with cloud.translate_errors():
            self.backend.check_cloud(self.conn)
        self._check_capabilities()
        with cloud.translate_errors():
            self.backend.check_request(self.context())
        self._check_name()
        if self.rescue_iso is None:
            self._prepare_iso()
        self._make_record()
        self._check_name_race()
        with cloud.translate_errors():
            self.backend.prepare(self.context())
        # what the backend made goes into the record with the next phase

    def _prepare_iso(self):
        """Find or make the prepared copy of the ISO (before the record).

        It is a cache, not a temporary resource of the build: the
        cleanup leaves it (see :mod:`isoplugin.prepared`).
        """
        from isoplugin import prepared

        req = self.request
        if req.profile == prepared.NO_PROFILE:
            if (req.answer_file or req.values or req.kernel_args or
                    req.add_files):
                raise exception.InvalidInput(reason=_(
                    '--profile none uses the ISO as it is: it takes no '
                    'answer file, variables, kernel arguments or files'))
            self.event('notice', message=_('profile none: booting the ISO '
                                           'as it is'))
            return
        answer = (prepared.read_answer_file(req.answer_file)
                  if req.answer_file else None)

        def progress(event):
            self.event(event.pop('event'), **{k: v for k, v in event.items()
                                              if k != 'phase'})

        try:
            self.prepared = prepared.prepare_iso(
                self.conn, self.conf, self.iso, profile=req.profile,
                values=req.values, answer=answer,
                kernel_args=req.kernel_args, add_files=req.add_files,
                progress=progress)
        except exception.ProfileNotDetected as e:
            if req.unattended_options():
                raise
            self.event('notice', message=_(
                '%s Building from the ISO as it is (it must install by '
                'itself and power off).') % e)
            return
        self.rescue_iso = self.prepared.image
        self.event('notice', message=_(
            'booting the prepared ISO %(id)s (profile %(profile)s%(how)s)')
            % {'id': self.rescue_iso.id, 'profile': self.prepared.profile,
               'how': _(', reused') if self.prepared.reused else ''})

    def _check_bootable(self):
        """Refuse an ISO registration found no El Torito boot record in.

        Registration stores what the ISO's boot catalog says as
        ``<prefix>bootable``; an ISO registered before that (or by URL)
        has no such property and is not refused.

        :raises isoplugin.exception.ISONotBootable: it cannot boot.
        """
        if glance.flat(self.iso).get(self.prefix + 'bootable') == 'false':
            raise exception.ISONotBootable(
                iso='%s (%s)' % (self.iso.name, self.iso.id))

    def _check_name(self):
        """Refuse an output name the project's images already have.

        One query, before anything is made. A build's pending output has
        the name too: that build is named instead.

        :raises isoplugin.exception.DuplicateImageName: an image has it.
        :raises isoplugin.exception.BuildNameTaken: another build is
            snapshotting or verifying an image of that name.
        """
        name = self.request.name
        for image in glance.images(self.conn, name=name,
                                   owner=self.conn.current_project_id):
            fields = glance.flat(image)
            if fields.get('name') != name:
                continue  # Glance filtered already; be sure
            if fields.get(self.prefix + 'role') == ROLE_OUTPUT:
                raise exception.BuildNameTaken(
                    other=fields.get(self.prefix + 'build_id'), name=name)
            raise exception.DuplicateImageName(name=name, id=fields['id'])

    def _check_name_race(self):
        """Give way to an earlier build of the same output name.

        Two builds of one name that both passed :meth:`_check_name` (they
        started together, or the other one is still installing) both have
        a build record by now. A build gives way when another record of
        that name is not strictly younger than its own, so that of two
        builds at most one goes on (both stop when they were made in the
        same second: nothing is left, and each says why). One query.

        :raises isoplugin.exception.BuildNameTaken: it gave way (the
            cleanup deletes its record).
        """
        p = self.prefix
        name = self.request.name
        for image in glance.images(self.conn, **{p + 'role': ROLE_RECORD,
                                                 p + 'image_name': name}):
            fields = glance.flat(image)
            other = fields.get(p + 'build_id')
            if (other and other != self.id and
                    fields.get(p + 'image_name') == name and
                    (fields.get('created_at') or '') <=
                    self._record_created):
                raise exception.BuildNameTaken(other=other, name=name)

    def _check_capabilities(self):
        needs = ((self.request.interactive,
                  base.Capabilities.INTERACTIVE_INSTALL,
                  _('the %s backend cannot run interactive installs')),
                 (not self.request.interactive,
                  base.Capabilities.UNATTENDED_INSTALL,
                  _('the %s backend cannot run unattended installs; use '
                    '--interactive')),
                 (self.request.disk_size, base.Capabilities.DISK_SIZE,
                  _('the %s backend cannot choose the system disk size')))
        for asked, capability, message in needs:
            if asked and not self.backend.supports(capability):
                raise exception.CloudUnsupported(
                    reason=message % self.backend.NAME)

    def _make_record(self):
        """Make the record image: properties only, no data (queued)."""
        if self.record_id:
            return
        fields = self.record_fields(ROLE_RECORD)
        image = glance.create_image(
            self.conn,
            name='%srecord-%s' % (self.prefix.replace('_', '-'), self.id),
            visibility='private', **fields)
        self.record_id = _id(image)
        self._record_created = glance.flat(image).get('created_at') or ''
        self._recorded = {k[len(self.prefix):]: v for k, v in fields.items()}
        self._last_heartbeat = time.monotonic()

    def _boot(self):
        with cloud.translate_errors():
            self.backend.boot(self.context())

    def _install(self):
        opts = self.conf.isoplugin
        ctx = self.context()
        expected = self._install_estimate()
        with cloud.translate_errors():
            self.backend.start_install(ctx)
            if self.request.interactive:
                self._show_console(ctx)
        finished = []

        def probe():
            with cloud.translate_errors():
                state, detail = self.backend.install_state(ctx)
            if (state is base.InstallState.RUNNING and
                    self.request.interactive and self.finish_is_requested()):
                return True, _('finish requested')
            if state is base.InstallState.FAILED:
                raise exception.BuildFailed(build_id=self.id,
                                            phase=self.phase, reason=detail)
            done = state is base.InstallState.FINISHED
            if done:
                finished.append(True)
            return done, detail

        # ``expected`` only when there is one: a wrapper of the older
        # wait(probe, what, timeout) keeps working without an estimate
        extra = {'expected': expected} if expected else {}
        start = time.monotonic()
        self.wait(probe, _('the installer to power the server off'),
                  self.request.install_timeout or opts.install_timeout,
                  **extra)
        # what the next builds of the ISO expect: the installer's own
        # time, from the start of an install this client saw begin
        if finished and not self._install_resumed:
            self.install_seconds = round(time.monotonic() - start, 1)

    def _install_estimate(self):
        """Seconds the install is expected to take, or ``None``.

        ``BuildRequest.install_estimate`` (``--install-estimate``) when
        given. Else, for an unattended install this client starts (not
        an interactive one, where a person installs, nor a resumed one,
        which started earlier), how long the install of this project's
        newest build of the same ISO took: the ``<prefix>install_seconds``
        of its output image (see :meth:`_last_install`). An ``estimate``
        event says where the estimate comes from.

        :returns: seconds, or ``None``.
        """
        req = self.request
        if req.install_estimate:
            seconds, source = req.install_estimate, '--install-estimate'
        elif req.interactive or self._install_resumed:
            return None
        else:
            seconds, image = self._last_install()
            if seconds is None:
                return None
            source = _('the build of image %(id)s on %(date)s') % {
                'id': image.get('id'),
                'date': (image.get(self.prefix + 'build_time') or
                         image.get('created_at'))}
        self.event('estimate', expected=seconds, message=_(
            'install expected to take about %(duration)s (%(source)s)') % {
                'duration': presentation.format_duration(seconds),
                'source': source})
        return seconds

    def _last_install(self):
        """How long the install of the newest build of the ISO took.

        One image query: this project's images made from the ISO
        (``<prefix>source_iso_id``, a property Glance filters on), the
        newest first, :data:`ESTIMATE_LOOKUP` of them; the first that has
        a ``<prefix>install_seconds`` tells (Glance cannot filter on a
        property being there). A failed query only means no estimate.

        :returns: ``(seconds, image fields)``, or ``(None, None)``.
        """
        p = self.prefix
        iso_id = self.iso.id
        query = {p + 'source_iso_id': iso_id,
                 'owner': self.conn.current_project_id,
                 'sort': 'created_at:desc', 'limit': ESTIMATE_LOOKUP}
        try:
            for image in itertools.islice(glance.images(self.conn, **query),
                                          ESTIMATE_LOOKUP):
                fields = glance.flat(image)
                if fields.get(p + 'source_iso_id') != iso_id:
                    continue  # Glance filtered already; be sure
                try:
                    seconds = float(fields.get(p + 'install_seconds'))
                except (TypeError, ValueError):
                    continue
                if math.isfinite(seconds) and seconds > 0:
                    return seconds, fields
        except Exception:  # an estimate must not fail the build
            LOG.debug('Build %(id)s: could not look up how long the last '
                      'install of ISO %(iso)s took', {'id': self.id,
                                                      'iso': iso_id},
                      exc_info=True)
        return None, None

    def _show_console(self, ctx):
        try:
            console_type, url = self.backend.console_url(ctx)
        except exception.CloudUnsupported as e:
            self.event('warning', message=str(e))
            return
        message = _('Install through the %(type)s console %(url)s, then '
                    'power the server off or run "openstack iso build '
                    'finish %(id)s"') % {
            'type': console_type, 'url': url, 'id': self.id}
        self.event('console', console_type=console_type, url=url,
                   message=message)

    def _detach(self):
        with cloud.translate_errors():
            self.backend.detach(self.context())

    def _snapshot(self):
        opts = self.conf.isoplugin
        p = self.prefix
        with cloud.translate_errors():
            # a resumed build knows its output image from the cloud
            image_id = self.image_id
            if not image_id:
                image_id = self.backend.snapshot(
                    self.context(), self.request.name,
                    {p + 'build_id': self.id, p + 'role': ROLE_OUTPUT,
                     p + 'client': CLIENT})
        # recorded with the next phase (the image carries the build id)
        self.image_id = image_id

        seen = {}

        def probe():
            try:
                seen['image'] = glance.get_image(self.conn, image_id)
                self._output_fields = glance.flat(seen['image'])
                status = self._output_fields.get('status')
            except exception.NotFound:
                status = None
            if status in (None, 'killed', 'deleted'):
                fault = self._fault() or _(
                    'Nova deleted it during createImage and gives no reason '
                    '(the createImage instance action shows no error)')
                raise exception.BuildFailed(
                    build_id=self.id, phase=self.phase,
                    reason=_('the snapshot image %(id)s failed: %(fault)s')
                    % {'id': image_id, 'fault': fault})
            return status == 'active', status

        self.wait(probe, _('the snapshot image to become active'),
                  opts.snapshot_timeout)
        self._check_installed(seen['image'])
        self._set_output_properties()
        # one server per build: the build server goes before verify's
        with cloud.translate_errors():
            self.backend.release(self.context())

    def _check_installed(self, image):
        """Fail when the snapshot shows that the install wrote nothing.

        A server that powered off without installing (a live system, an
        installer that stopped early) leaves the blank system disk: its
        snapshot holds only zeros. A snapshot of at most
        :data:`BLANK_CHECK_MAX_SIZE` bytes is read to see that (one
        download); a bigger one holds data.

        :param image: the active snapshot.
        :raises isoplugin.exception.NothingInstalled: only zeros.
        """
        fields = glance.flat(image)
        size = fields.get('size') or 0
        if not size or size > BLANK_CHECK_MAX_SIZE:
            return
        data = b''.join(glance.download_data(self.conn, image))
        if holds_only_zeros(data, fields.get('disk_format')):
            raise exception.NothingInstalled(
                build_id=self.id, phase=self.phase, image=self.image_id)

    def _set_output_properties(self):
        p = self.prefix
        iso = self.iso
        iso_fields = glance.flat(iso)
        props = {}
        for key in ('os_type', 'os_distro', 'os_version', 'architecture'):
            value = iso_fields.get(key)
            if value:
                props[key] = value
        if self.prepared is not None:
            props.update(self.prepared.properties)
        elif self.rescue_iso is not None:  # resumed
            with contextlib.suppress(ValueError):
                props.update(json.loads(glance.flat(self.rescue_iso).get(
                    p + 'output_properties') or '{}'))
        props.update(self.backend.image_properties(self.context()))
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
            'min_disk': int(self.resources.disk_gb or 0),
        })
        if self.install_seconds is not None:
            # the next builds of the ISO expect as much
            props[p + 'install_seconds'] = '%.1f' % self.install_seconds
        remove = list(UNWANTED_PROPERTIES)
        remove += list(self.backend.UNWANTED_PROPERTIES)
        remove += [p + s for s in UNWANTED_PREFIXED if s != 'role']
        self._patch_output(set=props, remove=remove)

    def _patch_output(self, set=None, remove=()):
        """One PATCH of the output image (no GET when its fields are known).

        :returns: the image as Glance answered.
        """
        image = glance.patch_image(self.conn, self.image_id, set=set,
                                   remove=remove,
                                   current=self._output_fields)
        if image is None:  # nothing changed
            return glance.get_image(self.conn, self.image_id)
        self._output_fields = glance.flat(image)
        return image

    def _verify(self):
        if not self.verify:
            self.event('skipped', message=_('verification not asked for'))
            self._publish('skipped')
            return
        try:
            self._verify_image()
        except exception.VerifyFailed as e:
            if self.verify_must_pass:
                # what a kept image (keep-on-error) says
                self._patch_output(set={self.prefix + 'verified': 'failed'})
                raise
            self.event('warning', message=str(e))
            self._publish('failed')
        else:
            self._publish('passed')

    def _verify_image(self):
        """Boot a server from the output image and read its console log.

        The backend says how the server boots the image
        (:meth:`~isoplugin.backends.base.BuildBackend.verify_server_args`)
        and how the verification stands
        (:meth:`~isoplugin.backends.base.BuildBackend.verify_state`): the
        pipeline waits ``boot_timeout`` while it boots, then
        ``verify_timeout`` for ``verify_console_regex`` in its console log;
        it deletes the server in every case (cleanup waits for it to be
        gone).

        :raises isoplugin.exception.VerifyFailed: the server failed, or the
            log did not match in time.
        """
        from openstack import exceptions as sdk_exc

        conn = self.conn
        opts = self.conf.isoplugin
        pattern = re.compile(opts.verify_console_regex)
        ctx = self.context()
        with cloud.translate_errors():
            self.backend.release(ctx)  # a resumed build's server
            for stale in self.stale_verify_ids:
                compute.delete_server(conn, stale)
        self.stale_verify_ids = []
        args = self.backend.verify_server_args(ctx, self.image_id)
        with cloud.translate_errors():
            server = compute.create_server(
                conn, name='%sverify-%s' % (self.prefix.replace('_', '-'),
                                            self.id),
                metadata=self.record_fields(ROLE_VERIFY_SERVER), **args)
        seen = {}

        def probe(done):
            with cloud.translate_errors():
                state, detail = self.backend.verify_state(ctx, server.id,
                                                          pattern)
            if state is base.VerifyState.FAILED:
                raise exception.VerifyFailed(build_id=self.id,
                                             phase='verify', reason=detail)
            seen['state'] = state
            return state in done, detail

        try:
            self.wait(lambda: probe((base.VerifyState.WAITING,
                                     base.VerifyState.PASSED)),
                      _('the verify server to boot'), opts.boot_timeout)
            if seen['state'] is not base.VerifyState.PASSED:
                try:
                    self.wait(lambda: probe((base.VerifyState.PASSED,)),
                              _('the console log to match %s') %
                              opts.verify_console_regex, opts.verify_timeout)
                except exception.BuildTimeout as e:
                    raise exception.VerifyFailed(
                        build_id=self.id, phase='verify',
                        reason=str(e)) from e
        finally:
            with contextlib.suppress(sdk_exc.SDKException):
                compute.delete_server(conn, server.id)

    def _publish(self, verified):
        """Give the output image its verdict, visibility and tags.

        It is no longer temporary: its role property is removed. One
        PATCH, whose answer is the output image.

        :param verified: ``passed``, ``failed`` or ``skipped``.
        """
        self.output = self._patch_output(
            set={self.prefix + 'verified': verified,
                 'visibility': self.request.visibility,
                 'tags': list(self.request.tags or [])},
            remove=[self.prefix + 'role'])

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
        self.record(phase='cleanup')

        def note(res, event):
            self.event(event, resource=res.kind, id=res.id, role=res.role)

        records.delete_resources(self.conn, self.conf, self.id, note=note)
        self.event('phase-end')


def holds_only_zeros(data, disk_format):
    """Whether a whole disk image reads as zeros only.

    :param data: the image's bytes, all of them.
    :param disk_format: ``raw`` or ``qcow2`` (the clusters its L1 and L2
        tables map are read; a cluster marked as zeros is zeros).
    :returns: ``True`` or ``False``; ``None`` when it cannot tell (another
        format, a backing file, encryption, extended L2 entries).
    """
    import struct

    if disk_format == 'raw':
        return not data.strip(b'\0')
    if disk_format != 'qcow2' or data[:4] != b'QFI\xfb' or len(data) < 80:
        return None
    (version, backing, _size, cluster_bits, _virtual, crypt, l1_size,
     l1_offset) = struct.unpack('>IQIIQIIQ', data[4:48])
    extended_l2 = version >= 3 and struct.unpack('>Q', data[72:80])[0] & 16
    if backing or crypt or extended_l2:
        return None
    cluster = 1 << cluster_bits
    l1_table = data[l1_offset:l1_offset + 8 * l1_size]
    for (l1,) in struct.iter_unpack('>Q', l1_table):
        l2_offset = l1 & _QCOW2_OFFSET_MASK
        if not l2_offset:
            continue
        for (l2,) in struct.iter_unpack(
                '>Q', data[l2_offset:l2_offset + cluster]):
            if l2 & (1 << 62):
                return False  # a compressed cluster: data
            host = l2 & _QCOW2_OFFSET_MASK
            if not host or l2 & 1:  # unallocated, or marked as zeros
                continue
            if host >= len(data):
                return None  # not the whole image
            if data[host:host + cluster].strip(b'\0'):
                return False
    return True


def _version():
    try:
        import isoplugin

        return isoplugin.version_string()
    except Exception:
        return 'unknown'


class SignalGuard(object):
    """SIGTERM and SIGINT stop the builds, whose cleanup then runs to its end.

    A context manager for the main thread, around one build run there or
    around a pool of builds (:func:`build_images`): the first SIGTERM or
    SIGINT raises :class:`KeyboardInterrupt` in the main thread (which
    stops the build, or makes the pool cancel its builds); once
    :meth:`defer` was called (the cleanup started), a signal is reported
    and ignored. A signal the process ignores (``nohup``) stays ignored.
    Out of the main thread, where Python cannot handle signals, it does
    nothing: the pool's guard in the main thread cancels such a build.

    Python raises a handler's exception wherever the main thread happens
    to be, in the middle of the standard library too: :meth:`held` marks
    the code that must not be cut (the pool's bookkeeping of a new build),
    where the first signal is held and raised when the block ends.

    :param note: callable ``note('notice', message=...)`` told of a
        signal ignored during the cleanup (a build's :meth:`Build.event`).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, note=None):
        self.note = note
        self.armed = True
        self.previous = {}
        #: depth of the :meth:`held` blocks the main thread is in
        self._held = 0
        #: the first signal came during a held block
        self._pending = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self.previous[signum] = signal.signal(signum,
                                                          self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def defer(self):
        """From now on a signal is reported and ignored."""
        self.armed = False

    @contextlib.contextmanager
    def held(self):
        """A block no signal cuts: the first one is raised at its end.

        For the main thread (where the handler runs). The
        :class:`KeyboardInterrupt` of a signal that came during the block
        is raised when it ends, even when it ends with an exception (which
        becomes its context).
        """
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if self._pending and not self._held:
                self._pending = False
                raise KeyboardInterrupt()

    def _handle(self, signum, frame):
        if self.armed:
            self.armed = False
            if self._held:
                self._pending = True  # raised at the end of the block
                return
            raise KeyboardInterrupt()
        message = _('%s received: finishing the cleanup first') % (
            signal.Signals(signum).name)
        LOG.warning('%(message)s', {'message': message})
        if self.note is not None:
            self.note('notice', message=message)


def resolve_iso(conn, conf, name_or_id):
    """Return the ISO image to build from; refuse a retired one.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param name_or_id: the ISO's name or id.
    :returns: an :class:`openstack.image.v2.image.Image`.
    :raises isoplugin.exception.ISONotFound: no such ISO.
    :raises isoplugin.exception.ISORetired: the ISO is retired.
    """
    from isoplugin import catalog

    iso = catalog.Catalog(conn, conf).get(name_or_id)
    retired = glance.flat(iso).get(conf.glance.property_prefix + 'retired')
    if str(retired).lower() == 'true':
        raise exception.ISORetired(iso=name_or_id)
    return iso


def resume_build(conn, conf, build_id, progress=None, backend=None):
    """Continue a build whose client died, from the phase the cloud shows.

    :param progress: as for :class:`Build`.
    :param backend: the backend instance (default: the one the build
        record names).
    :returns: the output image, or ``None`` when only its cleanup was left.
    :raises isoplugin.exception.BuildNotResumable: it is still running
        elsewhere, nothing is left to resume from, or its backend cannot
        resume builds (no ``RESUME`` capability).
    :raises isoplugin.exception.BuildFailed: as :meth:`Build.run`.
    """
    from isoplugin import backends

    info = records.show_build(conn, conf, build_id)
    if info.status == 'running':
        raise exception.BuildNotResumable(
            build_id=build_id,
            reason=_('its client %(client)s is alive (heartbeat %(age)s s '
                     'ago)') % {'client': info.record.get('client'),
                                'age': int(info.age)})
    rec = info.record
    backend = backend or backends.get_backend(conf, rec.get('backend'))
    if not backend.supports(base.Capabilities.RESUME):
        raise exception.BuildNotResumable(
            build_id=build_id,
            reason=_('the %s backend cannot resume builds') % backend.NAME)
    request = BuildRequest(
        iso=rec.get('iso_id'), name=rec.get('image_name'),
        visibility=rec.get('visibility') or 'private',
        tags=[t for t in (rec.get('tags') or '').split(',') if t],
        verify=rec.get('verify') == 'true', backend=backend.NAME,
        interactive=rec.get('interactive') == 'true',
        properties=json.loads(rec['properties'])
        if rec.get('properties') else {})
    build = Build(conn, conf, request, backend=backend, progress=progress,
                  build_id=build_id)
    build.started = rec.get('started') or build.started
    build.iso = glance.get_image(conn, request.iso,
                                 what=_('ISO %s') % request.iso)
    if rec.get('prepared_iso_id'):
        build.rescue_iso = glance.get_image(
            conn, rec['prepared_iso_id'],
            what=_('prepared ISO %s') % rec['prepared_iso_id'])
    build.resources = base.BuildResources(
        flavor_id=rec.get('flavor_id'), network_id=rec.get('network_id'),
        disk_gb=int(rec['disk_gb']) if rec.get('disk_gb') else None)
    build.image_id = rec.get('image_id')
    for res in info.resources:
        if res.role == ROLE_RECORD:
            build.record_id = res.id
        elif res.role == ROLE_BUILD_SERVER:
            build.resources.server_id = res.id
        elif res.role == ROLE_BLANK:
            build.resources.disk_image_id = res.id
        elif res.role == ROLE_OUTPUT:
            build.image_id = res.id
        elif res.role == ROLE_VERIFY_SERVER:
            build.stale_verify_ids.append(res.id)
    phase = info.phase
    if phase == 'failed':  # kept with keep-on-error: start again at boot
        phase = 'boot'
    if phase == 'prepare' and not build.record_id:
        raise exception.BuildNotResumable(
            build_id=build_id, reason=_('it stopped before creating '
                                        'anything to resume from'))
    build.event('resume', from_phase=phase)
    return build.run(start_phase=phase)


# -- many builds -----------------------------------------------------------

def build_images(conn, conf, requests, parallel=None, progress=None,
                 backend=None):
    """Run many builds with at most ``parallel`` at a time.

    ``requests`` may be any iterable (a generator): it is consumed as
    builds finish, so memory stays flat however many ISOs are given. On
    Ctrl-C or SIGTERM every running build is cancelled and cleans up
    before this raises :class:`KeyboardInterrupt`; so it does when the
    caller closes the generator.

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
    # future -> (request, build): every build submitted and not yet
    # handed to the caller
    running = {}
    # the futures of finished builds, put by their done callbacks: the
    # loop blocks in this queue's get() only, where a signal may raise
    # (a signal raised in concurrent.futures.wait() could leave the
    # futures' locks held)
    finished = queue.SimpleQueue()
    iterator = iter(requests)
    guard = SignalGuard()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool, guard:
        try:
            while True:
                while len(running) < parallel:
                    try:
                        request = next(iterator)
                    except StopIteration:
                        break
                    # A signal during submit() (which starts a thread and
                    # waits for it) would leave a build running that
                    # nobody cancels, nor waits for: the pool does not
                    # know its thread yet. It is raised once the build is
                    # in ``running``.
                    with guard.held():
                        build = Build(conn, conf, request, backend=backend,
                                      progress=progress)
                        future = pool.submit(build.run)
                        running[future] = (request, build)
                        future.add_done_callback(finished.put)
                if not running:
                    return
                done = None
                while done is None:
                    # not one long wait: a signal that a build's thread
                    # took is handled once this thread runs again
                    with contextlib.suppress(queue.Empty):
                        done = finished.get(timeout=SIGNAL_CHECK_INTERVAL)
                request, _build = running.pop(done)
                try:
                    yield request, done.result()
                except exception.IsopluginException as e:
                    yield request, e
        except (KeyboardInterrupt, GeneratorExit):
            guard.defer()  # the builds' cleanups run to their end
            for _request, build in running.values():
                build.cancelled.set()
            concurrent.futures.wait(running)
            raise
