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
*cleanup*. It owns the waiting (polling with backoff and timeouts), the
progress reporting, the build record and the cleanup guarantees; a backend
only starts the cloud operations of each phase and reports what the cloud
shows. Its methods therefore return quickly: none of them waits for the
cloud to finish something, except where a method's documentation says so.

Every resource a backend creates must carry the build's id (server
metadata, image properties or tags) so that :meth:`BuildBackend.
find_resources` finds it again from the cloud alone, after the client
died; the cloud is the only state store.
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
    :class:`isoplugin.build.Build`: it carries the build id (``build.id``),
    the openstacksdk connection (``build.conn``), the request (ISO, flavor,
    disk size, network, output image name and metadata) and a dict
    ``build.state`` where a backend keeps the ids it created (for example
    the temporary server's). Everything a backend puts in ``build.state``
    must also be findable in the cloud through the build id.
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
        """
        return 'backend_' + cls.NAME.replace('-', '_')

    @property
    def options(self):
        """The backend's configuration group, as parsed."""
        return getattr(self.conf, self.config_group())

    def supports(self, capability):
        """Return whether the backend declares ``capability``."""
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

        For example a blank system disk image of the requested size. Each
        created resource is tagged with the build id.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def boot(self, build):
        """Start creating the temporary server (does not wait).

        :param build: the :class:`isoplugin.build.Build`.
        :returns: the id of the server being created.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def start_install(self, build):
        """Present the ISO to the server and start its installer.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def install_state(self, build):
        """Report how the install stands, from one look at the cloud.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: an :class:`InstallState`.
        :raises isoplugin.exception.CloudError: the server is gone or the
            cloud refused.
        """

    @abc.abstractmethod
    def detach(self, build):
        """Take the ISO away from the server (does not wait).

        After this the server boots its system disk only, and the
        snapshot cannot contain the ISO.

        :param build: the :class:`isoplugin.build.Build`.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def snapshot(self, build):
        """Start turning the system disk into an image (does not wait).

        :param build: the :class:`isoplugin.build.Build`.
        :returns: the id of the new image.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    @abc.abstractmethod
    def find_resources(self, conn, build_id=None):
        """Find what builds of this backend left in the cloud.

        :param conn: an :class:`openstack.connection.Connection`.
        :param build_id: only this build's resources; ``None`` for every
            build's.
        :returns: a list of :class:`isoplugin.build.Resource`.
        """

    @abc.abstractmethod
    def delete_resource(self, conn, resource):
        """Start deleting one resource found by :meth:`find_resources`.

        Deleting something already gone is not an error.

        :param conn: an :class:`openstack.connection.Connection`.
        :param resource: an :class:`isoplugin.build.Resource`.
        :raises isoplugin.exception.CloudError: the cloud refused.
        """

    def console_url(self, build):
        """Return a URL of the server's remote console, for a person.

        :param build: the :class:`isoplugin.build.Build`.
        :returns: the URL, as a string.
        :raises isoplugin.exception.CloudUnsupported: the backend or the
            cloud offers no remote console.
        """
        raise exception.CloudUnsupported(
            reason=_('the %s backend has no remote console') % self.NAME)
