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

"""Options of the library itself: group ``[isoplugin]``.

The build pipeline reads its defaults from here; every one of them can be
overridden per build by the Python API or the ``openstack iso build``
command's flags.
"""

from oslo_config import cfg

GROUP = 'isoplugin'

OPTS = [
    cfg.StrOpt('backend',
               default='nova-rescue',
               help='Name of the build backend to use, an entry point in '
                    'the "isoplugin.backends" namespace. '
                    '"openstack iso backend list" shows the installed '
                    'ones.'),
    cfg.IntOpt('build_timeout',
               default=7200, min=60,
               help='Seconds a whole build may take, all phases together, '
                    'before it is stopped and cleaned up.'),
    cfg.IntOpt('boot_timeout',
               default=600, min=10,
               help='Seconds to wait for the temporary server to become '
                    'ACTIVE, and for it to enter or leave rescue.'),
    cfg.IntOpt('install_timeout',
               default=3600, min=10,
               help='Seconds to wait for the installer to power the '
                    'temporary server off.'),
    cfg.IntOpt('snapshot_timeout',
               default=1800, min=10,
               help='Seconds to wait for the snapshot image to become '
                    'active.'),
    cfg.IntOpt('delete_timeout',
               default=300, min=10,
               help='Seconds to wait for a temporary server to be deleted '
                    'during cleanup.'),
    cfg.BoolOpt('verify',
                default=True,
                help='Boot a server from every new image and look for '
                     'verify_console_regex in its console log before the '
                     'build succeeds.'),
    cfg.IntOpt('verify_timeout',
               default=900, min=10,
               help='Seconds the verify step waits for the console log to '
                    'match verify_console_regex.'),
    cfg.StrOpt('verify_console_regex',
               default=r'(?m)(login:|ISOPLUGIN-INSTALLED-SYSTEM-BOOTED|'
                       r'INSTALLED-SYSTEM-BOOTED)',
               help='Python regular expression that the console log of a '
                    'server booted from the new image must match for the '
                    'image to pass verification (a login prompt or a '
                    'marker the installed system prints).'),
    cfg.FloatOpt('poll_interval',
                 default=1.0, min=0.1,
                 help='Interval, in seconds, between status requests '
                      'during the first 10 of them of a wait (the end of '
                      'most waits comes then). Then the interval is 15 % '
                      'of the time waited so far, at least twice this, at '
                      'most poll_max_interval; around an install\'s '
                      'expected end (--install-estimate) polls come every '
                      'second. Any wait longer than 90 poll_max_interval '
                      'makes at most one request per poll_max_interval on '
                      'average, heartbeats included.'),
    cfg.FloatOpt('poll_max_interval',
                 default=10.0, min=1.0,
                 help='Longest interval, in seconds, between two status '
                      'requests while waiting on the cloud.'),
    cfg.FloatOpt('api_timeout',
                 default=60.0, min=1.0,
                 help='Seconds to wait for an OpenStack service to answer '
                      'a request (keystoneauth1\'s session timeout, '
                      'openstacksdk\'s api_timeout; a value from '
                      'clouds.yaml wins). Nova can hold a request for '
                      'minutes while RabbitMQ is away; after this time the '
                      'request is retried as [compute] and [glance] '
                      'connect_retries say, then the command fails with a '
                      'clear error and cleans up. An upload only needs '
                      'Glance to take or acknowledge data within this '
                      'time, not the whole upload.'),
    cfg.IntOpt('parallel',
               default=2, min=1,
               help='How many builds run at once when several ISOs are '
                    'built in one call.'),
    cfg.StrOpt('flavor',
               help='Flavor (name or ID) of the temporary build server; '
                    'when unset, the smallest flavor with enough RAM and '
                    'disk for the ISO is chosen.'),
    cfg.StrOpt('network',
               help='Network (name or ID) to attach the temporary server '
                    'to. Unset: no network ("networks": "none").'),
    cfg.BoolOpt('verify_must_pass',
                default=True,
                help='Whether a failed verification fails the build (and '
                     'so deletes the new image). When false, the image is '
                     'kept, marked isoplugin_verified=failed, and the '
                     'build succeeds with a warning.'),
    cfg.IntOpt('heartbeat_interval',
               default=60, min=5,
               help='Seconds between two heartbeats a running build writes '
                    'into its build record (isoplugin_heartbeat, a '
                    'property of the build\'s record image), so that '
                    'other clients can tell a live build from an orphaned '
                    'one.'),
    cfg.IntOpt('orphan_timeout',
               default=900, min=60,
               help='A build whose last heartbeat is older than this many '
                    'seconds is an orphan (its client died), even when '
                    'its client ran on another host. On the host of the '
                    'client a build is an orphan as soon as the client '
                    'process is gone.'),
    cfg.FloatOpt('prepared_iso_max_age',
                 default=168, min=0,
                 help='Hours a prepared ISO (the unattended copy of an ISO '
                      'that builds boot from, kept private and hidden in '
                      'Glance as a cache) is kept. Older ones are deleted '
                      'by "openstack iso build delete --orphans" (or all '
                      'of them by "--prepared"). 0 keeps them until '
                      'deleted.'),
    cfg.BoolOpt('keep_on_error',
                default=False,
                help='Keep the temporary server and images of a failed '
                     'build for debugging instead of deleting them.'),
]


def register_opts(conf):
    """Register the ``[isoplugin]`` options on ``conf``.

    :param conf: an :class:`oslo_config.cfg.ConfigOpts`.
    """
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    """Return ``[(group, options)]`` for the sample configuration file."""
    return [(GROUP, OPTS)]
