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

"""The backend contract: what a build backend implements and is given.

The build pipeline (:mod:`isoplugin.build`) runs the same phases for every
backend: *prepare*, *boot*, *install*, *detach*, *snapshot*, *verify* and
*cleanup*. It owns the waiting (polling on one schedule,
per-phase and whole-build timeouts, heartbeats, interruption), the progress
reporting, the build record, the output image's properties, the
verification and the cleanup. A backend holds only what differs from one
way of installing to another: how the system disk and the temporary server
are made, how the ISO is presented and taken away, how the disk becomes an
image, and how a server boots the output to verify it.

Every method gets a :class:`BuildContext`, never the pipeline itself. A
backend never sleeps by itself: where a method has to wait for the cloud
it hands a probe to ``ctx.wait``, so that every wait has the same schedule,
timeouts and Ctrl-C behaviour.

Every method must be *idempotent with respect to the cloud's state*: the
pipeline calls them again when it resumes a build whose client died
(``openstack iso build resume``), with ``ctx.resources`` filled from what
the cloud shows, so a method looks before acting (for example: do not
rescue a server already in RESCUE).

Every resource a backend creates carries ``ctx.record_fields(role)`` (as
server metadata or image properties) with one of the roles below, so that
the pipeline finds it again from the cloud alone and deletes it at
cleanup: the cloud is the only state store.

A backend talks to the cloud through :mod:`isoplugin.compute` and
:mod:`isoplugin.glance`, and imports nothing of the pipeline.
"""

import abc
import dataclasses
import enum
import typing

from isoplugin import compute
from isoplugin import exception
from isoplugin.i18n import _

#: role of the pipeline's build record image (the pipeline makes it)
ROLE_RECORD = 'build-record'
#: role of the temporary server a backend installs on
ROLE_BUILD_SERVER = 'build-server'
#: role of the server the pipeline boots from the output to verify it
ROLE_VERIFY_SERVER = 'verify-server'
#: role of a temporary disk image a backend makes (the blank system disk)
ROLE_BLANK = 'blank-disk'
#: role of the output image until the build succeeds; then it is removed
ROLE_OUTPUT = 'output-pending'
#: role of a Cinder volume a backend installs on (its metadata carries the
#: build record; the cleanup deletes it and waits until it is gone)
ROLE_SYSTEM_VOLUME = 'system-volume'


@dataclasses.dataclass
class BuildResources:
    """What a build has made so far, by the backend or the pipeline.

    The backend sets the fields as it creates things; the pipeline records
    ``flavor_id``, ``network_id`` and ``disk_gb`` in the build record and,
    on resume, fills every field again from the cloud.

    :ivar server_id: the temporary server (role ``build-server``).
    :ivar disk_image_id: the temporary system disk image, if the backend
        makes one (role ``blank-disk``).
    :ivar flavor_id: the flavor of the temporary server; the default
        verify server uses it too.
    :ivar network_id: the network of the temporary server, ``None`` for
        none.
    :ivar disk_gb: the system disk size in GiB (the output's
        ``min_disk``).
    :ivar volume_id: the system volume, if the backend installs on a
        Cinder volume (role ``system-volume``).
    """

    server_id: str = None
    disk_image_id: str = None
    flavor_id: str = None
    network_id: str = None
    disk_gb: int = None
    volume_id: str = None


@dataclasses.dataclass
class BuildContext:
    """What a backend is given: one build, as far as the backend needs it.

    :ivar build_id: the build id (``b-`` and 10 hex digits), for names.
    :ivar conn: the :class:`openstack.connection.Connection`.
    :ivar conf: the parsed isoplugin ConfigOpts (``conf.isoplugin`` holds
        the pipeline's options, such as ``boot_timeout``); the backend's
        own options are ``backend.options``.
    :ivar request: the :class:`isoplugin.build.BuildRequest` (``flavor``,
        ``disk_size``, ``network``, ``name``...). Read only.
    :ivar iso: the ISO, an :class:`openstack.image.v2.image.Image`.
    :ivar resources: the :class:`BuildResources`, which the backend fills.
    :ivar wait: ``wait(probe, what, timeout, expected=None)``: polls
        ``probe``, a callable returning ``(done, status)``, on the
        pipeline's schedule (:class:`isoplugin.build.PollSchedule`) until
        done; ``expected``: seconds after which the end is expected,
        polled most often around then. Returns the last status; raises
        :class:`isoplugin.exception.BuildTimeout` or
        :class:`isoplugin.exception.BuildInterrupted`. ``probe`` may raise
        to fail the wait.
    :ivar record_fields: ``record_fields(role)``: the dict of the build
        record that a resource of ``role`` carries from its creation
        (server metadata or image properties, strings).
    """

    build_id: str
    conn: typing.Any
    conf: typing.Any
    request: typing.Any
    iso: typing.Any
    resources: BuildResources
    wait: typing.Callable
    record_fields: typing.Callable


class Capabilities(enum.IntFlag):
    """What a backend can do; a backend declares its ``CAPABILITIES``.

    The pipeline refuses a request that needs a capability the backend
    does not declare.
    """

    NONE = 0
    #: the installer can run unattended and power the server off by itself
    #: (a build without ``--interactive``)
    UNATTENDED_INSTALL = enum.auto()
    #: a person can drive the installer over the remote console
    #: (``--interactive``)
    INTERACTIVE_INSTALL = enum.auto()
    #: the system disk size can be chosen per build (``--disk-size``)
    DISK_SIZE = enum.auto()
    #: a build whose client died can be resumed from the cloud's state
    #: (``openstack iso build resume``)
    RESUME = enum.auto()
    #: the system disk is a Cinder volume: the backend builds on clouds
    #: whose flavors have a 0 GiB root disk (boot from volume only), and
    #: needs a Block Storage service
    VOLUME_DISK = enum.auto()


class InstallState(enum.Enum):
    """What :meth:`BuildBackend.install_state` reports."""

    #: the installer is still running (or waiting for a person)
    RUNNING = 'running'
    #: the installer powered the server off: the system disk is written
    FINISHED = 'finished'
    #: the server failed (ERROR state or similar); see the fault
    FAILED = 'failed'


class VerifyState(enum.Enum):
    """What :meth:`BuildBackend.verify_state` reports."""

    #: the verify server is not running yet
    BOOTING = 'booting'
    #: it runs (or ran) and its console log has not matched yet
    WAITING = 'waiting'
    #: the console log matched: the image boots
    PASSED = 'passed'
    #: it cannot pass any more (ERROR, or powered off without a match)
    FAILED = 'failed'


class BuildBackend(metaclass=abc.ABCMeta):
    """Base class of isoplugin's build backends.

    A subclass sets :attr:`NAME` to its entry point name, lists its
    oslo.config options in :attr:`OPTIONS`, its :attr:`CAPABILITIES` and
    the :attr:`UNWANTED_PROPERTIES` the output image must not inherit. The
    constructor registers the options on the ConfigOpts it is handed, in
    the group returned by :meth:`config_group`; nothing is registered at
    import time.

    The ``ctx`` argument of the methods is the build's
    :class:`BuildContext`.
    """

    #: entry point name of the backend
    NAME = None
    #: the backend's oslo.config options
    OPTIONS = []
    #: what the backend supports
    CAPABILITIES = Capabilities.NONE
    #: properties the backend puts on its temporary resources that the
    #: output image must not inherit (the pipeline removes them)
    UNWANTED_PROPERTIES = ()

    def __init__(self, conf):
        """Register the backend's options on ``conf`` and keep it.

        :param conf: an :class:`oslo_config.cfg.ConfigOpts`.
        """
        self.conf = conf
        conf.register_opts(self.OPTIONS, group=self.config_group())

    @classmethod
    def config_group(cls):
        """Name of the backend's configuration group.

        ``backend_`` followed by the entry point name, with ``-`` turned
        into ``_`` (``nova-rescue`` reads ``[backend_nova_rescue]``).

        :returns: the group name, a string.
        """
        return 'backend_' + cls.NAME.replace('-', '_')

    @property
    def options(self):
        """The backend's configuration group, as parsed."""
        return getattr(self.conf, self.config_group())

    def supports(self, capability):
        """Return whether the backend declares ``capability``.

        :param capability: a :class:`Capabilities` member.
        :returns: a bool.
        """
        return bool(self.CAPABILITIES & capability)

    @abc.abstractmethod
    def check_cloud(self, conn):
        """Check that the cloud offers what this backend needs.

        Called before a build creates anything, so that a cloud that cannot
        do the job is refused with a clear message instead of a half-built
        image.

        :param conn: an :class:`openstack.connection.Connection`.
        :raises isoplugin.exception.CloudUnsupported: the cloud lacks an
            API, a microversion or a feature; the message says which one
            and what would be needed.
        """

    def check_request(self, ctx):
        """Refuse a request this backend cannot serve, before anything exists.

        Called after :meth:`check_cloud` and before the pipeline creates
        anything (the build record, the prepared ISO), so that a request
        that cannot succeed fails in a second with nothing to clean up:
        for example a flavor whose root disk is smaller than the ISO's
        ``min_disk``. It only looks (flavors, networks); it creates
        nothing and sets nothing in ``ctx.resources``. ``ctx.iso`` is the
        ISO as registered. The default accepts every request.

        :param ctx: the :class:`BuildContext`.
        :raises isoplugin.exception.InvalidInput: the request cannot be
            met; the message names what and says what to give instead.
        """

    @abc.abstractmethod
    def prepare(self, ctx):
        """Create what the temporary server needs before it boots.

        Sets ``ctx.resources.flavor_id`` and ``disk_gb`` (and
        ``network_id`` when the server gets a network); for example makes
        a blank system disk image of the requested size, with role
        :data:`ROLE_BLANK`, and sets ``disk_image_id``. May wait (through
        ``ctx.wait``) until what it created is usable. On resume, keeps
        what ``ctx.resources`` shows to be usable.

        :param ctx: the :class:`BuildContext`.
        :raises isoplugin.exception.InvalidInput: the request cannot be
            met (no such flavor, flavor disk too small).
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def boot(self, ctx):
        """Create the temporary server and wait until it runs.

        Sets ``ctx.resources.server_id`` as soon as the cloud answers, so
        that an interrupted boot is cleaned up; the server carries
        ``ctx.record_fields(ROLE_BUILD_SERVER)``. Does not create a second
        server when ``server_id`` is already set (resume).

        :param ctx: the :class:`BuildContext`.
        :raises isoplugin.exception.CloudError: the cloud refused, or the
            server went to ERROR (the message carries the cloud's fault).
        """

    @abc.abstractmethod
    def start_install(self, ctx):
        """Present the ISO to the server and start its installer.

        Does not wait for the installer; does nothing if the cloud shows
        that the ISO is already presented.

        :param ctx: the :class:`BuildContext`.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def install_state(self, ctx):
        """Report how the install stands, from one look at the cloud.

        Called repeatedly by the pipeline's wait loop; it must cost one
        status request. (A finish requested with ``openstack iso build
        finish`` is the pipeline's business: it is in the build record.)

        :param ctx: the :class:`BuildContext`.
        :returns: ``(InstallState, detail)``: ``detail`` is a short status
            for the progress line, or the cloud's fault message for FAILED.
        :raises isoplugin.exception.CloudError: the server is gone or the
            cloud refused.
        """

    @abc.abstractmethod
    def detach(self, ctx):
        """Take the ISO away and leave the server ready for a snapshot.

        After this the server is powered off, has no ISO attached, and
        its system disk is consistent. Waits through ``ctx.wait``.

        :param ctx: the :class:`BuildContext`.
        :raises isoplugin.exception.CloudError: the cloud refused or the
            server went to ERROR.
        """

    @abc.abstractmethod
    def snapshot(self, ctx, name, properties):
        """Start turning the system disk into an image (does not wait).

        The pipeline waits for the image to become active, then gives it
        its properties.

        :param ctx: the :class:`BuildContext`.
        :param name: name of the new image.
        :param properties: dict of image properties the new image must
            carry from its creation (the build id and
            :data:`ROLE_OUTPUT`).
        :returns: the id of the new image.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    def release(self, ctx):
        """Delete the temporary server once the output image is active.

        Called by the pipeline as soon as the snapshot is active, before
        a verify server boots, so that a build holds at most one server at
        a time (ten builds with ``--verify`` need ten instances of quota,
        not twenty). Waits through ``ctx.wait`` until the server is gone
        (Nova counts a server against the quota until then), then clears
        ``ctx.resources.server_id``. Does nothing when it is not set
        (already released, or resumed after the release). What else the
        backend made stays until the cleanup.

        :param ctx: the :class:`BuildContext`.
        :raises isoplugin.exception.CloudError: the cloud refused, or the
            server went to ERROR while being deleted.
        :raises isoplugin.exception.BuildTimeout: it is still there after
            ``[isoplugin] delete_timeout`` seconds.
        """
        server_id = ctx.resources.server_id
        if not server_id:
            return
        compute.delete_server(ctx.conn, server_id)

        def probe():
            from openstack import exceptions as sdk_exc

            try:  # one GET (find_server would list by name when gone)
                server = compute.get_server(ctx.conn, server_id)
            except sdk_exc.NotFoundException:
                return True, _('gone')
            if server.status == 'DELETED':
                return True, _('gone')
            if server.status == 'ERROR' and not server.task_state:
                raise exception.CloudError(
                    reason=_('the build server %(id)s could not be '
                             'deleted: %(fault)s') %
                    {'id': server_id, 'fault': compute.server_fault(server)
                     or _('it is in ERROR')})
            return False, '%s/%s' % (server.status, server.task_state)

        ctx.wait(probe, _('the build server to be deleted'),
                 ctx.conf.isoplugin.delete_timeout)
        ctx.resources.server_id = None

    def image_properties(self, ctx):
        """Return the properties the backend gives the output image.

        For example ``hw_disk_bus`` from the backend's configuration.

        :param ctx: the :class:`BuildContext`.
        :returns: a dict of strings.
        """
        return {}

    def verify_server_args(self, ctx, image_id):
        """Say how a server boots the output image, to verify it.

        The pipeline creates the verify server with these arguments of
        :func:`isoplugin.compute.create_server` (it adds the name and the
        metadata), waits for ACTIVE and reads its console log. The default
        boots from the image with the build's flavor and network; a backend
        whose output must boot otherwise (from a volume) overrides it.

        :param ctx: the :class:`BuildContext`.
        :param image_id: the output image.
        :returns: a dict with ``flavor_id``, ``network_id`` and either
            ``image_id`` or ``block_device_mapping``.
        """
        return {'image_id': image_id,
                'flavor_id': ctx.resources.flavor_id,
                'network_id': ctx.resources.network_id}

    def verify_state(self, ctx, server_id, pattern):
        """Report how the verification stands, from one look at the cloud.

        The pipeline boots the verify server (:meth:`verify_server_args`)
        and polls this until PASSED or FAILED. The default, for a Nova
        server, GETs it and, once it has booted, reads its console log
        (two requests; one while it boots):

        * ERROR is FAILED with the server's fault;
        * a log that matches ``pattern`` is PASSED, whether the guest
          still runs or powered itself off (SHUTOFF): Nova's fake driver,
          and its libvirt driver with a TCP serial console
          (``[serial_console] enabled = true``), give the log of a stopped
          guest;
        * a SHUTOFF server whose log does not match is FAILED at once (a
          stopped guest prints nothing more), and so is a SHUTOFF server
          whose log Nova does not give (the libvirt driver with the default
          pty console reads the log only while the guest runs): the
          detail says which, and why (:func:`isoplugin.compute.
          console_unreadable`).

        The state is read before the log, so a guest that prints its
        marker and powers off between two looks is judged by its whole
        log.

        :param ctx: the :class:`BuildContext`.
        :param server_id: the verify server.
        :param pattern: a compiled regular expression the console log must
            match (``[isoplugin] verify_console_regex``).
        :returns: ``(VerifyState, detail)``: ``detail`` is a short status
            for the progress line, or why it FAILED.
        :raises isoplugin.exception.CloudError: the server is gone or the
            cloud refused.
        """
        from openstack import exceptions as sdk_exc

        server = compute.get_server(ctx.conn, server_id)
        if server.status == 'ERROR':
            return VerifyState.FAILED, _(
                'the verify server went to ERROR: %s') % (
                compute.server_fault(server) or _('no fault given'))
        if server.status not in ('ACTIVE', 'SHUTOFF'):
            return VerifyState.BOOTING, server.status
        stopped = server.status == 'SHUTOFF'
        try:
            output = compute.console_output(ctx.conn, server_id)
        except sdk_exc.HttpException as e:
            if stopped:
                return VerifyState.FAILED, _(
                    'the verify server powered itself off before its '
                    'console log could be seen to match %(regex)s. '
                    '%(why)s. Keep the installed system running a while '
                    'after it prints the marker, or build with '
                    '--no-verify') % {
                    'regex': pattern.pattern,
                    'why': compute.console_unreadable(server, e)}
            return VerifyState.WAITING, _('%(status)s, no console log yet '
                                          '(%(code)s)') % {
                'status': server.status, 'code': e.status_code}
        if pattern.search(output):
            return VerifyState.PASSED, _('the console log matched')
        if stopped:
            return VerifyState.FAILED, _(
                'the verify server powered itself off and its console log '
                '(%(size)d bytes) does not match %(regex)s; the last line '
                'is "%(last)s"') % {
                'size': len(output), 'regex': pattern.pattern,
                'last': (output.strip().splitlines() or [''])[-1][:120]}
        return VerifyState.WAITING, _('%(status)s, %(size)d bytes of '
                                      'console log') % {
            'status': server.status, 'size': len(output)}

    def describe_failure(self, ctx):
        """Return the cloud's own message for the last failure, if any.

        Used by the pipeline to explain a failed phase (a server fault, a
        failed instance action event).

        :param ctx: the :class:`BuildContext`.
        :returns: a string, or ``None`` when the cloud says nothing.
        """
        return None

    def console_url(self, ctx):
        """Return a URL of the server's remote console, for a person.

        Needed only with :attr:`Capabilities.INTERACTIVE_INSTALL`.

        :param ctx: the :class:`BuildContext`.
        :returns: ``(console type, URL)``.
        :raises isoplugin.exception.CloudUnsupported: the backend or the
            cloud offers no remote console.
        """
        raise exception.CloudUnsupported(
            reason=_('the %s backend has no remote console') % self.NAME)
