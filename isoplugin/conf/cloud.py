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

"""How a service that imports isoplugin reaches the cloud: group ``[cloud]``.

These are keystoneauth1's session and authentication options, loaded with
:mod:`keystoneauth1.loading` as every OpenStack service does for its service
clients. The OpenStackClient plugin does not use them: it uses the
connection OSC made from clouds.yaml or ``OS_*`` variables.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = 'cloud'

OPTS = [
    cfg.StrOpt('region_name',
               help='Region of the cloud to use.'),
    cfg.StrOpt('interface',
               default='public',
               choices=['public', 'internal', 'admin'],
               help='Endpoint interface to use from the service catalog.'),
]


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP)
    ks_loading.register_session_conf_options(conf, GROUP)
    ks_loading.register_auth_conf_options(conf, GROUP)


def list_opts():
    opts = list(OPTS)
    opts.extend(ks_loading.get_session_conf_options())
    opts.extend(ks_loading.get_auth_common_conf_options())
    opts.extend(ks_loading.get_auth_plugin_conf_options('password'))
    # The password plugin repeats some of the common options; keep one of
    # each name.
    seen = set()
    unique = []
    for opt in opts:
        if opt.dest not in seen:
            seen.add(opt.dest)
            unique.append(opt)
    return [(GROUP, unique)]
