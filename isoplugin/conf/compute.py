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

"""How isoplugin uses Nova: group ``[compute]``."""

from isoplugin.conf import retries

GROUP = 'compute'

OPTS = retries.retry_opts(
    'Nova',
    'A server is created with no retry: when the connection failed, the '
    'build looks for the server by its name before it creates it again. '
    'Server actions (rescue, unrescue, stop, createImage) are retried too: '
    'one that Nova had received already is refused as a conflict, which '
    'the build either expects or reports, and the cleanup removes what was '
    'made.')


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
