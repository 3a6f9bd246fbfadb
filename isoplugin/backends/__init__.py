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

"""Build backends, loaded by name through stevedore.

A backend is the part of the build pipeline that differs from one way of
installing to another (for example: a Nova server rescued with the ISO, or
a server booted from the ISO with a blank volume). The pipeline itself
(:mod:`isoplugin.build`) is the same for every backend.

Third parties add a backend by publishing an entry point in the
``isoplugin.backends`` namespace that names a subclass of
:class:`isoplugin.backends.base.BuildBackend`.
"""

from oslo_log import log as logging

from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

NAMESPACE = 'isoplugin.backends'


def available_backends():
    """Return the sorted names of the installed backends.

    Nothing is imported nor instantiated: only the entry points are read.
    """
    from stevedore import extension

    mgr = extension.ExtensionManager(NAMESPACE, invoke_on_load=False)
    names = {ep.name for ep in mgr.list_entry_points()}
    return sorted(names)


def backend_classes():
    """Return ``(name, class)`` of every installed backend, sorted by name.

    The classes are imported but not instantiated (nothing is registered on
    any ConfigOpts). A backend that fails to import, or that is not a
    :class:`~isoplugin.backends.base.BuildBackend`, is left out and logged.
    """
    from stevedore import extension

    from isoplugin.backends import base

    mgr = extension.ExtensionManager(NAMESPACE, invoke_on_load=False)
    found = []
    for ext in mgr:
        if isinstance(ext.plugin, type) and issubclass(ext.plugin,
                                                       base.BuildBackend):
            found.append((ext.name, ext.plugin))
        else:
            LOG.warning('Entry point %(name)s in %(ns)s is not a build '
                        'backend; ignored',
                        {'name': ext.name, 'ns': NAMESPACE})
    return sorted(found, key=lambda item: item[0])


def get_backend(conf, name=None, conn=None, flavor=None):
    """Load and return the build backend called ``name``.

    :param conf: the :class:`oslo_config.cfg.ConfigOpts` the backend
        registers its options on and reads them from.
    :param name: entry point name in ``isoplugin.backends``, or ``auto``
        (see :func:`select_backend`; without ``conn``: the configured
        default); defaults to ``conf.isoplugin.backend``.
    :param conn: the connection ``auto`` looks the flavor up with.
    :param flavor: the build's flavor, for ``auto``.
    :returns: an instance of :class:`isoplugin.backends.base.BuildBackend`.
    :raises isoplugin.exception.BackendNotFound: no backend of that name is
        installed; the message lists the installed ones.
    :raises isoplugin.exception.BackendLoadError: the backend is installed
        but failed to import or to initialise.
    """
    from stevedore import driver
    from stevedore import exception as stevedore_exc

    from isoplugin.backends import base

    name = name or conf.isoplugin.backend
    why = None
    if name == AUTO:
        if conn is not None:
            name, why = select_backend(conn, conf, name, flavor)
        else:
            name = (conf.isoplugin.backend
                    if conf.isoplugin.backend != AUTO else FALLBACK)

    def _failed(manager, entrypoint, error):
        raise exception.BackendLoadError(name=entrypoint.name,
                                         reason=error) from error

    try:
        mgr = driver.DriverManager(
            NAMESPACE, name,
            invoke_on_load=True,
            invoke_args=(conf,),
            on_load_failure_callback=_failed)
    except stevedore_exc.NoMatches as e:
        available = available_backends()
        raise exception.BackendNotFound(
            name=name,
            available=', '.join(available) or _('none')) from e
    backend = mgr.driver
    if not isinstance(backend, base.BuildBackend):
        raise exception.BackendLoadError(
            name=name,
            reason=_('%s is not a BuildBackend') % type(backend).__name__)
    #: why ``auto`` chose it (None: named or configured)
    backend.chosen_because = why
    LOG.debug('Loaded build backend %(name)s (%(cls)s)',
              {'name': name, 'cls': type(backend).__name__})
    return backend


#: the backend name that chooses one from the request (``--backend auto``)
AUTO = 'auto'
#: what ``auto`` picks for a flavor with a 0 GiB root disk
VOLUME_BACKEND = 'nova-volume'
#: what ``auto`` falls back to when ``[isoplugin] backend`` is auto too
FALLBACK = 'nova-rescue'


def select_backend(conn, conf, name=None, flavor=None):
    """Resolve a backend name, ``auto`` included, and say why.

    ``auto`` picks ``nova-volume`` when the flavor has a 0 GiB root disk:
    on such a flavor Nova boots only volume-backed servers for non-admins
    (``os_compute_api:servers:create:zero_disk_flavor``), which no
    image-backed backend can build on. Otherwise it picks the configured
    default (``[isoplugin] backend``, or nova-rescue when that says auto
    too). Any other name is returned as it is.

    :param conn: an :class:`openstack.connection.Connection` (``auto``
        looks the flavor up).
    :param conf: the parsed isoplugin ConfigOpts.
    :param name: a backend name, ``auto``, or ``None`` for
        ``[isoplugin] backend``.
    :param flavor: the build's flavor name or id, or ``None`` for
        ``[isoplugin] flavor`` (none at all: the configured default).
    :returns: ``(name, reason)``: ``reason`` is ``None`` for a name given
        or configured, else a sentence saying what ``auto`` saw.
    """
    from isoplugin import cloud
    from isoplugin import compute

    name = name or conf.isoplugin.backend
    if name != AUTO:
        return name, None
    default = (conf.isoplugin.backend
               if conf.isoplugin.backend != AUTO else FALLBACK)
    flavor = flavor or conf.isoplugin.flavor
    if not flavor:
        return default, _('auto: no flavor given, the configured default')
    with cloud.translate_errors(service='Nova'):
        found = compute.find_flavor(conn, flavor)
    if found is not None and found.disk == 0:
        return VOLUME_BACKEND, _(
            'auto: flavor %s has a 0 GiB root disk (boot from volume)'
        ) % found.name
    return default, _('auto: flavor %s has a root disk, the configured '
                      'default') % flavor
