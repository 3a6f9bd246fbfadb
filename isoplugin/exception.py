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

"""isoplugin's exceptions.

Every error the library raises is an :class:`IsopluginException`. Each
subclass carries a message template, ``msg_fmt``, filled from the keyword
arguments given when it is raised, so that a caller (the OpenStackClient
plugin, a service) can show ``str(exc)`` to a person as it is: one line that
names the problem and, where there is one, what to do about it.
"""

from oslo_log import log as logging

from isoplugin.i18n import _

LOG = logging.getLogger(__name__)


class IsopluginException(Exception):
    """Base exception of isoplugin.

    Subclasses set ``msg_fmt`` to a ``%``-template with named fields; the
    keyword arguments given to the constructor fill it in and stay available
    as ``exc.kwargs``. A message given explicitly wins over the template.
    """

    msg_fmt = _("An unknown isoplugin error occurred.")

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # A template field is missing: keep the template rather than
                # hide the real error behind a formatting one.
                LOG.exception('Exception in string format operation; '
                              'kwargs: %(kwargs)s', {'kwargs': kwargs})
                message = self.msg_fmt
        self.msg = message
        super().__init__(message)

    def __str__(self):
        return self.msg


# Configuration and backends

class ConfigurationError(IsopluginException):
    msg_fmt = _("Configuration error: %(reason)s")


class BackendNotFound(IsopluginException):
    msg_fmt = _("No build backend named '%(name)s' is installed. "
                "Installed backends: %(available)s.")


class BackendLoadError(IsopluginException):
    msg_fmt = _("The build backend '%(name)s' could not be loaded: "
                "%(reason)s")


# Input

class InvalidInput(IsopluginException):
    msg_fmt = _("Invalid input: %(reason)s")


# Cloud access

class CloudError(IsopluginException):
    msg_fmt = _("The cloud refused the request: %(reason)s")


class PermissionDenied(CloudError):
    msg_fmt = _("Permission denied: %(reason)s")


class NotFound(CloudError):
    msg_fmt = _("%(what)s could not be found.")


class Conflict(CloudError):
    msg_fmt = _("Conflict: %(reason)s")


class CloudUnsupported(CloudError):
    msg_fmt = _("This cloud cannot do what was asked: %(reason)s")


class CloudTimeout(CloudError):
    msg_fmt = _("Timed out after %(timeout)s s waiting for %(what)s.")


# Builds (isoplugin.build, the build backends)

class ISORetired(InvalidInput):
    msg_fmt = _("ISO %(iso)s is retired: new builds from it are refused. "
                "Choose a current ISO (openstack iso list).")


class BuildNotFound(NotFound):
    msg_fmt = _("No build %(build_id)s was found in the cloud (no server "
                "nor image carries that build id).")


class BuildFailed(IsopluginException):
    """A build stopped; ``phase`` names where, ``reason`` what the cloud said.

    ``kwargs`` keeps ``build_id``, ``phase`` and ``reason``.
    """

    msg_fmt = _("Build %(build_id)s failed in phase %(phase)s: %(reason)s")


class BuildTimeout(BuildFailed):
    msg_fmt = _("Build %(build_id)s timed out in phase %(phase)s after "
                "%(timeout)s s waiting for %(what)s")


class BuildInterrupted(BuildFailed):
    msg_fmt = _("Build %(build_id)s was interrupted in phase %(phase)s "
                "(%(reason)s)")


class VerifyFailed(BuildFailed):
    msg_fmt = _("Build %(build_id)s failed in phase verify: %(reason)s")


class BuildNotResumable(InvalidInput):
    msg_fmt = _("Build %(build_id)s cannot be resumed: %(reason)s")


# ISO catalog (isoplugin.catalog, isoplugin.isoinfo)

class NotAnISO(InvalidInput):
    msg_fmt = _("%(source)s is not an ISO 9660 or UDF image: %(reason)s.")


class SourceUnreadable(InvalidInput):
    msg_fmt = _("Cannot read %(source)s: %(reason)s.")


class SourceUnavailable(InvalidInput):
    msg_fmt = _("Cannot fetch %(source)s: %(reason)s.")


class ISONotFound(NotFound):
    msg_fmt = _("No ISO named or with ID '%(iso)s' is visible to this "
                "project (see 'openstack iso list').")


class DuplicateISO(Conflict):
    msg_fmt = _("This project already has an ISO named '%(name)s' "
                "(%(id)s); choose another name or delete that ISO first.")


class ChecksumMismatch(CloudError):
    msg_fmt = _("Checksum mismatch for %(what)s: expected %(algo)s "
                "%(expected)s, got %(actual)s. The image was deleted.")


class QuotaExceeded(CloudError):
    msg_fmt = _("Registering this ISO would exceed the project's image "
                "quota: %(resource)s would be %(needed)s, the limit is "
                "%(limit)s (see 'openstack iso usage').")


class ISOProtected(Conflict):
    msg_fmt = _("ISO '%(iso)s' is protected and cannot be deleted; run "
                "'openstack iso set --unprotected %(iso)s' first.")


class ISOInUse(Conflict):
    msg_fmt = _("ISO '%(iso)s' is in use by %(count)d server(s): "
                "%(servers)s. %(hint)s")


class ImportFailed(CloudError):
    msg_fmt = _("Glance could not import %(what)s: %(reason)s")


# Install profiles and prepared ISOs (isoplugin.profiles, isoplugin.remaster)

class ProfileNotFound(InvalidInput):
    msg_fmt = _("No install profile named '%(name)s' is installed. "
                "Installed profiles: %(available)s.")


class ProfileNotDetected(InvalidInput):
    msg_fmt = _("The installer family of %(source)s could not be detected; "
                "give a profile (one of: %(available)s). Looked at: "
                "%(looked_at)s.")


class AnswerFileInvalid(InvalidInput):
    msg_fmt = _("The %(kind)s answer file is not valid: %(reason)s")


class TemplateVariableError(InvalidInput):
    msg_fmt = _("Profile '%(profile)s': %(reason)s")


class PrepareFailed(IsopluginException):
    msg_fmt = _("Cannot prepare a copy of %(source)s: %(reason)s")


class FlavorDiskTooSmall(InvalidInput):
    msg_fmt = _("Flavor %(flavor)s has %(has)s, but the build needs "
                "%(needed)s GiB (%(why)s): %(advice)s.")


# Faults: a service that does not answer, a race (issue 11)

class ServiceUnavailable(CloudError):
    msg_fmt = _("%(service)s did not answer (%(reason)s); check that it "
                "runs, then try again.")


class ConnectionLost(ServiceUnavailable):
    msg_fmt = _("%(service)s closed the connection during %(during)s "
                "(%(reason)s).")


class StoreFull(CloudError):
    msg_fmt = _("%(service)s's image store is full: it refused "
                "%(during)s (%(reason)s). Nothing of it was kept. Ask the "
                "cloud's operator to free or grow the store, or choose "
                "another store with --store.")


class OverQuota(CloudError):
    msg_fmt = _("%(service)s refused %(during)s: over quota (%(reason)s). "
                "Delete what the project no longer needs "
                "('openstack iso list', 'openstack image list') or ask an "
                "administrator for a higher limit.")


class ServiceTimeout(ServiceUnavailable):
    msg_fmt = _("%(service)s did not answer %(during)s in time, even when "
                "asked again ([isoplugin] api_timeout); check that it runs "
                "and that what it depends on (RabbitMQ, its database) "
                "answers, then try again.")


class RegistrationRace(DuplicateISO):
    msg_fmt = _("Another client registered an ISO named '%(name)s' "
                "(%(id)s) at the same moment; this registration gave way "
                "and deleted its own image. Choose another name or use "
                "that ISO.")


# Builds refused before they start, and installs that wrote nothing
# (isoplugin.build, issue 11)

class ISONotBootable(InvalidInput):
    msg_fmt = _("ISO %(iso)s has no El Torito boot record (registration "
                "read its boot catalog): a server cannot boot it, so "
                "nothing would install. Build from a bootable installer "
                "ISO.")


class DuplicateImageName(Conflict):
    msg_fmt = _("This project already has an image named '%(name)s' "
                "(%(id)s); choose another --name, or delete that image "
                "first ('openstack image delete %(id)s').")


class BuildNameTaken(Conflict):
    msg_fmt = _("build %(other)s is already making an image named "
                "'%(name)s'; choose another --name, or wait for that build "
                "or stop it ('openstack iso build delete %(other)s').")


class NothingInstalled(BuildFailed):
    msg_fmt = _("Build %(build_id)s failed in phase %(phase)s: the "
                "server powered off without writing anything to the system "
                "disk (the snapshot %(image)s holds only zeros): the ISO "
                "is a live system or its installer stopped early. Watch an "
                "install with --interactive, or keep the build server with "
                "--keep-on-error and read its console log.")
