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

"""A second build backend, for the unit tests only.

It uses nothing but the public backend contract
(:mod:`isoplugin.backends.base`) and the access modules, as a third
party's backend would; the pipeline's unit tests run through it. It is
registered by the tests (see :func:`registered_backends`), never in
setup.cfg, so that an installed isoplugin does not offer it.
"""

import contextlib
import os
import sys
import tempfile

from oslo_config import cfg
from stevedore import extension

from isoplugin.backends import base
from isoplugin import compute


class FakeBackend(base.BuildBackend):
    """In-memory backend that records what the pipeline asked of it."""

    NAME = 'unit-fake'
    OPTIONS = [
        cfg.IntOpt('install_polls',
                   default=2,
                   help='How many install_state calls report RUNNING '
                        'before FINISHED.'),
    ]
    CAPABILITIES = (base.Capabilities.UNATTENDED_INSTALL |
                    base.Capabilities.DISK_SIZE)
    UNWANTED_PROPERTIES = ('unit_fake_marker',)

    def __init__(self, conf):
        super().__init__(conf)
        self.calls = []
        self.contexts = []
        self._polls = 0

    def _called(self, name, ctx):
        self.calls.append(name)
        self.contexts.append(ctx)

    def check_cloud(self, conn):
        self.calls.append('check_cloud')

    def prepare(self, ctx):
        self._called('prepare', ctx)
        ctx.resources.flavor_id = 'flavor-1'
        ctx.resources.disk_gb = ctx.request.disk_size or 3

    def boot(self, ctx):
        self._called('boot', ctx)
        if not ctx.resources.server_id:
            server = compute.create_server(
                ctx.conn, name='unit-fake-' + ctx.build_id,
                flavor_id=ctx.resources.flavor_id,
                metadata=ctx.record_fields(base.ROLE_BUILD_SERVER))
            ctx.resources.server_id = server.id
        ctx.wait(lambda: (True, 'ACTIVE'), 'the fake server',
                 ctx.conf.isoplugin.boot_timeout)

    def start_install(self, ctx):
        self._called('start_install', ctx)

    def install_state(self, ctx):
        self._called('install_state', ctx)
        self._polls += 1
        if self._polls > self.options.install_polls:
            return base.InstallState.FINISHED, 'SHUTOFF'
        return base.InstallState.RUNNING, 'RESCUE'

    def detach(self, ctx):
        self._called('detach', ctx)

    def snapshot(self, ctx, name, properties):
        self._called('snapshot', ctx)
        return 'image-' + ctx.build_id

    def image_properties(self, ctx):
        return {'unit_fake_bus': 'scsi'}


class NotABackend(object):
    """Registered under a backend name, but not a BuildBackend."""

    def __init__(self, conf):
        self.conf = conf


ENTRY_POINTS = {
    'unit-fake': 'tests.unit.fake_backend:FakeBackend',
    'unit-not-a-backend': 'tests.unit.fake_backend:NotABackend',
    'unit-broken': 'tests.unit.no_such_module:Backend',
}


@contextlib.contextmanager
def registered_backends(entry_points=None):
    """Register test backends as an installed distribution would.

    A throw-away ``.dist-info`` directory with an ``entry_points.txt`` is
    put on ``sys.path``, which is where stevedore (through
    importlib.metadata) finds entry points. stevedore also keeps the entry
    points of each namespace in a class-level cache for the life of the
    process: it is emptied on the way in and out.
    """
    entry_points = entry_points or ENTRY_POINTS
    with tempfile.TemporaryDirectory() as tmp:
        info = os.path.join(tmp, 'isoplugin_unit_backends-1.0.dist-info')
        os.mkdir(info)
        with open(os.path.join(info, 'METADATA'), 'w') as f:
            f.write('Metadata-Version: 2.1\n'
                    'Name: isoplugin-unit-backends\nVersion: 1.0\n')
        with open(os.path.join(info, 'entry_points.txt'), 'w') as f:
            f.write('[isoplugin.backends]\n')
            for name, target in sorted(entry_points.items()):
                f.write('%s = %s\n' % (name, target))
        sys.path.insert(0, tmp)
        extension.ExtensionManager.ENTRY_POINT_CACHE.clear()
        try:
            yield
        finally:
            sys.path.remove(tmp)
            extension.ExtensionManager.ENTRY_POINT_CACHE.clear()
