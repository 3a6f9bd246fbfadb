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

"""End to end: a real installer ISO, a real install under QEMU, a real image.

Needs the local OpenStack in libvirt mode (``tools/devcloud up --mode
libvirt``: Nova's libvirt driver, QEMU software emulation). The tiny
installer of ``tests/tools/build-installer-iso.sh`` is registered with
``openstack iso create``; ``openstack iso build create --verify`` rescues a
blank-disk server with it, the installer writes the disk and powers off, the
server is unrescued, stopped and snapshotted, and the verify step boots the
new image and waits for ``ISOPLUGIN-INSTALLED-SYSTEM-BOOTED`` in its console
log. The test prints that console log (run it with ``pytest -s``), the phase
times, the image size, and checks that nothing of the build is left: no
server, no temporary image, no libvirt domain, no instance directory.

Every test here is marked ``libvirt``: tools/run-tests runs them in the
libvirt pass only (``-m libvirt``) and deselects them in the fake pass.
"""

import json
import os
import subprocess
import threading
import time
import uuid

import openstack
import pytest

from isoplugin import build as build_mod
from isoplugin import conf as iso_conf
from tests.functional import base

pytestmark = pytest.mark.libvirt

INSTANCES = os.path.join(base.STATE_DIR, 'state', 'nova-libvirt',
                         'instances')
PREFIX = 'lve2e-%s-' % uuid.uuid4().hex[:6]
MARKER = 'ISOPLUGIN-INSTALLED-SYSTEM-BOOTED'
COMPUTE_HOST = 'devcloud-libvirt'


def osc_timed(*args, config_file=None, timeout=1200):
    """Like :func:`base.osc`, and time-stamps every progress line on stderr.

    :returns: ``(returncode, stdout, [(seconds since start, line)])``.
    """
    t0 = time.time()
    proc = subprocess.Popen(base.osc_command(*args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=base.osc_env(config_file),
                            stdin=subprocess.DEVNULL)
    lines = []
    out = []

    def read_stderr():
        for line in proc.stderr:
            lines.append((time.time() - t0, line.rstrip('\n')))

    def read_stdout():
        out.append(proc.stdout.read())

    readers = [threading.Thread(target=f, daemon=True)
               for f in (read_stderr, read_stdout)]
    for reader in readers:
        reader.start()
    proc.wait(timeout=timeout)
    for reader in readers:
        reader.join(10)
    return proc.returncode, ''.join(out), lines


def phase_times(lines, total):
    """Wall time of each phase, from the phase-start lines' time stamps."""
    starts = [(t, line.split()[1]) for t, line in lines
              if len(line.split()) > 2 and line.split()[2] == 'phase-start']
    out = []
    for i, (t, phase) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else total
        out.append((phase, end - t))
    return out


def say(text):
    """Print to the test's stdout (visible with pytest -s, in CI's log)."""
    print(text, flush=True)


@pytest.fixture(scope='module')
def libvirt_cloud(admin_conn):
    """The devcloud runs in libvirt mode: fail (never skip) otherwise."""
    with open(os.path.join(base.STATE_DIR, 'mode')) as f:
        mode = f.read().strip()
    assert mode == 'libvirt', (
        'the local OpenStack runs in mode %r; these tests need '
        '`tools/devcloud up --mode libvirt`' % mode)
    computes = {s.host: (s.status, s.state) for s in
                admin_conn.compute.services(binary='nova-compute')}
    assert computes.get(COMPUTE_HOST) == ('enabled', 'up'), computes
    enabled = [h for h, (status, _) in computes.items()
               if status == 'enabled']
    assert enabled == [COMPUTE_HOST], computes
    return computes


@pytest.fixture(scope='module')
def registered_iso(libvirt_cloud, installer_iso, demo_conn):
    """The installer registered with `openstack iso create` as demo."""
    name = PREFIX + 'installer'
    t = time.time()
    iso = base.osc_json('iso', 'create', name, '--file', installer_iso,
                        timeout=1200)
    say('registered ISO %s (%s) in %.1fs'
        % (name, iso['id'], time.time() - t))
    assert iso['status'] == 'active'
    yield iso
    demo_conn.image.delete_image(iso['id'], ignore_missing=True)


def api_console(conn, server_id):
    """The console log as Nova's API gives it (none once the guest is off)."""
    return conn.compute.get_server_console_output(server_id).get(
        'output') or ''


def file_console(conn, server_id):
    """The console log file virtlogd writes on the compute node.

    It stays until the server is unrescued or deleted, also after the guest
    powered off (when the API has no log to give).
    """
    with open(os.path.join(INSTANCES, server_id, 'console.log'), 'rb') as f:
        return f.read().decode('utf-8', 'replace')


class ConsoleWatcher(threading.Thread):
    """Reads the console log of one of the build's servers while it lives.

    The build deletes its servers as soon as it is done with them, so the
    log is read here, in parallel, until ``marker`` shows.

    :param conn: the SDK connection that sees the server.
    :param marker: the text to wait for.
    :param wanted: ``wanted(server) -> bool`` picks the server.
    :param read: ``read(conn, server_id) -> str``, :func:`api_console` or
        :func:`file_console`.
    """

    def __init__(self, conn, marker, wanted, read=api_console,
                 interval=0.5):
        super().__init__(daemon=True)
        self.conn = conn
        self.marker = marker
        self.wanted = wanted
        self.read = read
        self.interval = interval
        self.output = ''
        self.server_id = None
        self.stop = threading.Event()

    def _find(self):
        for server in self.conn.compute.servers(details=True):
            if self.wanted(server):
                return server.id
        return None

    def run(self):
        while not self.stop.is_set() and self.marker not in self.output:
            try:
                if not self.server_id:
                    self.server_id = self._find()
                if self.server_id:
                    out = self.read(self.conn, self.server_id)
                    if self.marker in out or len(out) > len(self.output):
                        self.output = out
            except (OSError, openstack.exceptions.SDKException):
                pass  # not there yet, or gone
            self.stop.wait(self.interval)


def verify_server_of(iso_id):
    """``wanted`` for :class:`ConsoleWatcher`: a verify server of ISO's."""
    def wanted(server):
        meta = server.metadata or {}
        return (meta.get('isoplugin_role') == 'verify-server' and
                meta.get('isoplugin_iso_id') == iso_id)
    return wanted


def _boot_and_read_console(conn, image_id, flavor, timeout=600):
    """Boot the image ourselves and return its console log (fallback)."""
    server = conn.compute.create_server(
        name=PREFIX + 'proof', image_id=image_id, flavor_id=flavor.id,
        networks='none')

    def console():
        try:
            return conn.compute.get_server_console_output(
                server.id).get('output') or ''
        except openstack.exceptions.SDKException:
            return ''  # not there yet

    try:
        return base.poll(console, '%s in the console of server %s'
                         % (MARKER, server.id), timeout,
                         until=lambda out: MARKER in out, interval=2)
    finally:
        conn.compute.delete_server(server.id)
        conn.compute.wait_for_delete(server, wait=300)


def _deleted_servers(admin, build_id):
    return list(admin.compute.servers(
        all_projects=True, deleted=True, details=True,
        **{'name': build_id}))


@pytest.mark.parametrize('disk_bus', ['virtio', 'sata'])
def test_install_snapshot_verify(demo_conn, admin_conn, registered_iso,
                                 disk_bus, tmp_path):
    """A real install; the snapshot boots on its own on the given bus."""
    config_file = str(tmp_path / 'isoplugin.conf')
    with open(config_file, 'w') as f:
        f.write('[isoplugin]\n'
                'poll_interval = 1\n'
                'poll_max_interval = 3\n'
                '[backend_nova_rescue]\n'
                # the bus the verify server (and every server booted from
                # the image) gets for its system disk
                'hw_disk_bus = %s\n' % disk_bus)
    name = PREFIX + disk_bus
    watcher = ConsoleWatcher(demo_conn, MARKER,
                             verify_server_of(registered_iso['id']))
    watcher.start()
    t0 = time.time()
    try:
        rc, out, lines = osc_timed(
            'iso', 'build', 'create', registered_iso['name'], '--name', name,
            '--flavor', 'm1.tiny', '--verify', '-f', 'json',
            config_file=config_file)
    finally:
        total = time.time() - t0
        watcher.stop.set()
        watcher.join(10)
    stderr = '\n'.join('[%6.1fs] %s' % line for line in lines)
    say('\n=== openstack iso build create (%s, %.1fs), progress:\n%s'
        % (disk_bus, total, stderr))
    assert rc == 0, stderr
    shown = base.one_row(json.loads(out))
    image = base.image_json(demo_conn, shown['id'])
    build_id = image['isoplugin_build_id']
    try:
        say('phase times (%s): %s; total build %.1fs; image %s: %s, %d '
            'bytes (%.1f MiB), virtual size %s bytes'
            % (disk_bus, ', '.join('%s %.1fs' % t
                                   for t in phase_times(lines, total)),
               total, image['id'], image['disk_format'], image['size'],
               image['size'] / 2.0 ** 20, image.get('virtual_size')))

        assert image['status'] == 'active'
        assert image['disk_format'] == 'qcow2'
        assert image['isoplugin_verified'] == 'passed'
        assert image['hw_disk_bus'] == disk_bus
        assert image['isoplugin_source_iso_id'] == registered_iso['id']

        console = watcher.output
        if MARKER in console:
            say('=== console log of the verify server %s (booted from the '
                'new image, system disk on %s):\n%s'
                % (watcher.server_id, disk_bus, console))
        else:
            # the verify server came and went between two reads: boot the
            # image once more so that the log shows the installed system
            say('verify server console not caught (%d bytes); booting the '
                'image again' % len(console))
            flavor = demo_conn.compute.find_flavor('m1.tiny',
                                                   ignore_missing=False)
            console = _boot_and_read_console(demo_conn, image['id'], flavor)
            say('=== console log of a server booted from image %s (system '
                'disk on %s):\n%s' % (image['id'], disk_bus, console))
        assert MARKER in console
        assert 'isoplugin: installed system' in console

        # nothing of the build is left: servers, temporary images, domains,
        # instance directories
        conf = iso_conf.load_config(config_files=[])
        assert build_mod.find_resources(demo_conn, conf, build_id) == []
        gone = _deleted_servers(admin_conn, build_id)
        names = sorted(s.name for s in gone)
        assert names == ['isoplugin-build-' + build_id,
                         'isoplugin-verify-' + build_id], names
        assert all(s.status == 'DELETED' for s in gone), gone
        for server in gone:
            assert not os.path.exists(os.path.join(INSTANCES, server.id))
        domains = subprocess.run(
            ['virsh', '-q', '-c', 'qemu:///system', 'list', '--all',
             '--uuid'], capture_output=True, text=True).stdout.split()
        assert not {s.id for s in gone} & set(domains), domains
    finally:
        demo_conn.image.delete_image(image['id'], ignore_missing=True)
