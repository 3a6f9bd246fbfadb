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

"""The abstract build backend.

The build pipeline (:mod:`isoplugin.build`) runs the same phases for every
backend: *prepare*, *boot*, *install*, *detach*, *snapshot*, *verify* and
*cleanup*. It owns the waiting (:meth:`isoplugin.build.Build.wait`: polling
with exponential backoff, per-phase and whole-build timeouts, heartbeats,
interruption), the progress reporting, the build record, the output image's
properties, the verification and the cleanup guarantees. A backend holds
only what differs from one way of installing to another: how the system
disk and the temporary server are made, how the ISO is presented and taken
away, and how the disk becomes an image.

A backend never sleeps by itself: where a method has to wait for the cloud
it hands a probe to ``build.wait()``, so that every wait has the same
backoff, timeouts and Ctrl-C behaviour.

Every method must be *idempotent with respect to the cloud's state*: the
pipeline calls them again when it resumes a build whose client died
(``openstack iso build resume``), so a method looks at what the cloud shows
before acting (for example: do not rescue a server already in RESCUE).

Every resource a backend creates must carry the build's record (see
:meth:`isoplugin.build.Build.record_fields`): server metadata or image
properties with the build id and the role of the resource, so that
:func:`isoplugin.build.find_resources` finds it again from the cloud alone;
the cloud is the only state store.
"""

import abc
import enum

from isoplugin import exception
from isoplugin.i18n import _


class Capabilities(enum.IntFlag):
    """What a backend can do; a backend declares its ``CAPABILITIES``."""

    NONE = 0
    #: the installer can run unattended and power the server off by itself
    UNATTENDED_INSTALL = enum.auto()
    #: a person can drive the installer over the remote console
    INTERACTIVE_INSTALL = enum.auto()
    #: the system disk can be a Cinder volume
    VOLUME_DISKS = enum.auto()
    #: the system disk size can be chosen per build
    DISK_SIZE = enum.auto()
    #: a build whose client died can be resumed from the cloud's state
    RESUME = enum.auto()


class InstallState(enum.Enum):
    """What :meth:`BuildBackend.install_state` reports."""

    #: the installer is still running (or waiting for a person)
    RUNNING = 'running'
    #: the installer powered the server off: the system disk is written
    FINISHED = 'finished'
    #: the server failed (ERROR state or similar); see the fault
    FAILED = 'failed'


class BuildBackend(metaclass=abc.ABCMeta):
    """Base class of isoplugin's build backends.

    A subclass sets :attr:`NAME` to its entry point name, lists its
    oslo.config options in :attr:`OPTIONS` and its :attr:`CAPABILITIES`.
    The constructor registers the options on the ConfigOpts it is handed,
    in the group returned by :meth:`config_group`; nothing is registered at
    import time.

    The ``build`` argument of the methods is the pipeline's
    :class:`isoplugin.build.Build`. It carries the build id (``build.id``),
    the openstacksdk connection (``build.conn``), the request
    (``build.request``: ISO, flavor, disk size, network, output image name),
    the resolved ISO image (``build.iso``) and a dict ``build.state`` where
    the backend keeps what it created. The pipeline reads these keys of
    ``build.state``, which a backend sets:

    ``server_id``
        the temporary server (the pipeline records the build's phase and
        heartbeat on its metadata);
    ``blank_id``
        the temporary system disk image. It exists for the whole build and
        also holds the *build record* (phase, heartbeat, finish request) in
        its properties: Glance lets its owner change them at any time,
        whereas Nova refuses server metadata updates in some states
        (RESCUE). A backend without a blank disk image creates a small
        image for the record and sets this key to it;
    ``flavor_id``
        the flavor of the temporary server (the verify server uses it too);
    ``network_id``
        the network of the temporary server, ``None`` for none;
    ``disk_gb``
        the size of the system disk in GiB (the output image's
        ``min_disk``).
    """

    #: entry point name of the backend
    NAME = None
    #: the backend's oslo.config options
    OPTIONS = []
    #: what the backend supports
    CAPABILITIES = Capabilities.NONE

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

    @abc.abstractmethod
    def prepare(self, build):
        """Create what the temporary server needs before it boots.

        For example a blank system disk image of the requested size; sets
        ``build.state['flavor_id']``, ``['disk_gb']`` and, if it makes one,
        ``['blank_id']``. Each created resource carries
        ``build.record_fields(role)``. May wait (through ``build.wait``)
        until what it created is usable.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.InvalidInput: the request cannot be
            met (no such flavor, flavor disk too small).
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def boot(self, build):
        """Create the temporary server and wait until it runs.

        Sets ``build.state['server_id']`` as soon as the cloud answers, so
        that an interrupted boot is cleaned up. Does not create a second
        server when ``build.state['server_id']`` is already set (resume).

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the cloud refused, or the
            server went to ERROR (the message carries the cloud's fault).
        """

    @abc.abstractmethod
    def start_install(self, build):
        """Present the ISO to the server and start its installer.

        Does not wait for the installer; does nothing if the cloud shows
        that the ISO is already presented.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def install_state(self, build):
        """Report how the install stands, from one look at the cloud.

        Called repeatedly by the pipeline's wait loop; it must cost one
        status request. (A finish requested with ``openstack iso build
        finish`` is the pipeline's business: it is in the build record.)

        :param build: the :class:`isoplugin.build.Build`.
        :returns: ``(InstallState, detail)``: ``detail`` is a short status
            for the progress line, or the cloud's fault message for FAILED.
        :raises isoplugin.exception.CloudError: the server is gone or the
            cloud refused.
        """

    @abc.abstractmethod
    def detach(self, build):
        """Take the ISO away and leave the server ready for a snapshot.

        After this the server is powered off, has no ISO attached, and
        its system disk is consistent. Waits through ``build.wait``.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the cloud refused or the
            server went to ERROR.
        """

    @abc.abstractmethod
    def snapshot(self, build, name, properties):
        """Start turning the system disk into an image (does not wait).

        :param build: the :class:`isoplugin.build.Build`.
        :param name: name of the new image.
        :param properties: dict of image properties the new image must
            carry from its creation (the build id and role).
        :returns: the id of the new image.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    def image_properties(self, build):
        """Return the properties the backend gives the output image.

        For example ``hw_disk_bus`` from the backend's configuration.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: a dict of strings.
        """
        return {}

    def describe_failure(self, build):
        """Return the cloud's own message for the last failure, if any.

        Used by the pipeline to explain a failed phase (a server fault, a
        failed instance action event).

        :param build: the :class:`isoplugin.build.Build`.
        :returns: a string, or ``None`` when the cloud says nothing.
        """
        return None

    def console_url(self, build):
        """Return a URL of the server's remote console, for a person.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: ``(console type, URL)``.
        :raises isoplugin.exception.CloudUnsupported: the backend or the
            cloud offers no remote console.
        """
        raise exception.CloudUnsupported(
            reason=_('the %s backend has no remote console') % self.NAME)
