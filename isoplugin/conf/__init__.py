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

"""isoplugin's configuration options.

Options are declared in the modules of this package and registered only on
the :class:`oslo_config.cfg.ConfigOpts` a caller hands in, never at import
time. A service that imports isoplugin does::

    from oslo_config import cfg
    import isoplugin.conf

    conf = cfg.ConfigOpts()
    isoplugin.conf.register_opts(conf)
    conf(args=[], project='isoplugin',
         default_config_files=['/etc/isoplugin/isoplugin.conf'])

Backends declare their own options (``OPTIONS``) and register them in their
constructor, in a group named after the backend.
"""

from isoplugin.conf import cloud
from isoplugin.conf import compute
from isoplugin.conf import core
from isoplugin.conf import glance

_MODULES = (core, glance, compute, cloud)


def register_opts(conf):
    """Register the library's options (not the backends') on ``conf``.

    :param conf: an :class:`oslo_config.cfg.ConfigOpts`.
    """
    for module in _MODULES:
        module.register_opts(conf)


def load_config(config_files=None, args=None):
    """Return a new ConfigOpts with isoplugin's options, files parsed.

    :param config_files: list of configuration files to read; default: the
        standard search path for project ``isoplugin`` (``~/.isoplugin/``,
        ``~/``, ``/etc/isoplugin/``, ``/etc/``), which includes
        ``/etc/isoplugin/isoplugin.conf``.
    :param args: command line arguments for oslo.config (default: none).
    :returns: a parsed :class:`oslo_config.cfg.ConfigOpts`.
    :raises isoplugin.exception.ConfigurationError: a file is missing or
        cannot be parsed.
    """
    from oslo_config import cfg

    from isoplugin import exception

    conf = cfg.ConfigOpts()
    register_opts(conf)
    if config_files is None:
        config_files = cfg.find_config_files(project='isoplugin')
    try:
        conf(args=args or [], project='isoplugin',
             default_config_files=list(config_files),
             validate_default_values=True)
    except (cfg.Error, OSError) as e:
        raise exception.ConfigurationError(reason=e) from e
    return conf


def list_opts():
    """Return the options of isoplugin and of every installed backend.

    The entry point ``oslo.config.opts`` points here, so that
    ``oslo-config-generator --namespace isoplugin`` writes the sample file.
    Backend classes are loaded without being instantiated; the option
    objects returned are the original ones, sorted by name in each group.

    :returns: a list of ``(group name, [options])`` tuples, sorted by group.
    """
    from isoplugin import backends

    groups = {}
    for module in _MODULES:
        for group, opts in module.list_opts():
            groups.setdefault(group, []).extend(opts)
    for _name, cls in backends.backend_classes():
        groups.setdefault(cls.config_group(), []).extend(cls.OPTIONS)
    return [(group, sorted(opts, key=lambda o: o.name))
            for group, opts in sorted(groups.items())]
