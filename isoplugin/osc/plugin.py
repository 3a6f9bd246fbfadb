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

"""The OpenStackClient plugin hooks (``openstack.cli.extension``).

OSC imports this module for every ``openstack`` command, so it imports
nothing beyond the standard library at module level: the library is loaded
when an ``iso`` command runs.
"""

import logging
import os

LOG = logging.getLogger(__name__)

DEFAULT_API_VERSION = '1'
API_VERSION_OPTION = 'os_iso_api_version'
API_NAME = 'iso'
API_VERSIONS = ('1',)

CONFIG_FILE_ENV = 'ISOPLUGIN_CONFIG_FILE'


class IsoClient(object):
    """What ``self.app.client_manager.iso`` gives a command.

    :ivar conn: OSC's :class:`openstack.connection.Connection`, built from
        clouds.yaml or the ``OS_*`` variables (with isoplugin's retry
        and timeout settings).
    :ivar config_file: the isoplugin configuration file given with
        ``--isoplugin-config-file`` (or ``$ISOPLUGIN_CONFIG_FILE``), or
        ``None`` for the default search path.
    """

    def __init__(self, conn, config_file=None, debug=False):
        self._conn = conn
        self._debug = debug
        self._retrying = False
        self.config_file = config_file
        self._conf = None

    @property
    def conn(self):
        """The connection, with isoplugin's retry settings applied.

        Every ``iso`` command (registrations and builds alike) retries
        what can be sent again when Glance or Nova drops a connection or
        does not answer in time, and shows one short line per series of
        retries unless ``--debug``; see :func:`isoplugin.cloud.use_retries`.
        """
        if not self._retrying:
            from isoplugin import cloud

            cloud.use_retries(self._conn, self.conf)
            cloud.quiet_retry_logs(debug=self._debug)
            self._retrying = True
        return self._conn

    @property
    def conf(self):
        """isoplugin's configuration, parsed on first use."""
        if self._conf is None:
            from isoplugin import conf as iso_conf

            files = [self.config_file] if self.config_file else None
            self._conf = iso_conf.load_config(config_files=files)
        return self._conf


def make_client(instance):
    """Return the client of the ``iso`` commands (called lazily by OSC)."""
    # OSC puts the global options (--isoplugin-config-file) into the cloud
    # configuration, which ClientManager.get_configuration() returns.
    configuration = instance.get_configuration()
    config_file = configuration.get('isoplugin_config_file')
    config_file = config_file or os.environ.get(CONFIG_FILE_ENV) or None
    if config_file and not os.path.isfile(config_file):
        from osc_lib import exceptions

        raise exceptions.CommandError(
            'isoplugin configuration file %s does not exist; give an '
            'existing file with --isoplugin-config-file or unset %s'
            % (config_file, CONFIG_FILE_ENV))
    LOG.debug('isoplugin client using configuration file %s',
              config_file or '(search path)')
    return IsoClient(instance.sdk_connection, config_file=config_file,
                     debug=bool(configuration.get('debug')))


class _HideSetValues(logging.Filter):
    """Hide ``--set KEY=VALUE`` values in the shell's ``START`` log line.

    osc-lib logs the command line with ``--debug``; a template variable
    may be secret (``password_hash``), and which ones are is only known
    once the profile is loaded, so every value is hidden.
    """

    def filter(self, record):
        import re

        if isinstance(record.args, tuple):
            record.args = tuple(
                re.sub(r'(--set[ =]+[^\s=]+=).*?(?=\s--|$)', r'\1***', a)
                if isinstance(a, str) else a for a in record.args)
        return True


_HIDE_SET_VALUES = _HideSetValues()


def build_option_parser(parser):
    """Add isoplugin's global options to the ``openstack`` parser."""
    logging.getLogger('osc_lib.shell').addFilter(_HIDE_SET_VALUES)
    parser.add_argument(
        '--os-iso-api-version',
        metavar='<iso-api-version>',
        default=os.environ.get('OS_ISO_API_VERSION'),
        help='isoplugin API version, default=%s (Env: OS_ISO_API_VERSION)'
             % DEFAULT_API_VERSION)
    parser.add_argument(
        '--isoplugin-config-file',
        metavar='<path>',
        default=os.environ.get(CONFIG_FILE_ENV),
        help='isoplugin configuration file (default: the search path, '
             'including /etc/isoplugin/isoplugin.conf; Env: %s)'
             % CONFIG_FILE_ENV)
    return parser


def check_api_version(check_version):
    """Only version 1 exists; OSC's own version check is enough."""
    return False
