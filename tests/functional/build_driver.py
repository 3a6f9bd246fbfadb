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

"""A client driving one build, for the tests that kill it.

``python -m tests.functional.build_driver CLOUD ISO NAME PAUSE [BACKEND]``
prints ``BUILD <id>`` once the build exists. With ``PAUSE`` a phase name
(``-`` for none) it then stops, as if hung, at the first wait of that phase
and prints ``PAUSED <id>``, so that a test can kill it while the cloud
shows that phase; otherwise it prints ``DONE <image id>`` at the end.
Started by :func:`tests.functional.base.start_build_driver`.
"""

import sys
import time

import openstack

from isoplugin import build
from isoplugin import conf as iso_conf


def main(argv):
    cloud, iso, name, pause = argv[:4]
    backend = argv[4] if len(argv) > 4 else None
    conf = iso_conf.load_config(config_files=[])
    conf.set_override('poll_interval', 0.5, 'isoplugin')
    conf.set_override('poll_max_interval', 2, 'isoplugin')
    conn = openstack.connect(cloud=cloud)
    original = build.Build.wait

    def wait(self, probe, what, timeout, **kwargs):
        if self.phase == pause:
            print('PAUSED', self.id, flush=True)
            time.sleep(3600)
        return original(self, probe, what, timeout, **kwargs)

    build.Build.wait = wait
    b = build.Build(conn, conf, build.BuildRequest(
        iso=iso, name=name, flavor='m1.tiny', verify=True, backend=backend))
    print('BUILD', b.id, flush=True)
    image = b.run()
    print('DONE', image.id, flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
