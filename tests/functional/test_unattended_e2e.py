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

"""End to end: unattended builds through a prepared copy of the ISO.

Needs the local OpenStack in libvirt mode (``tools/devcloud up --mode
libvirt``), like test_libvirt_e2e.py; every test is marked ``libvirt``.

``test_debian_real_installer_reads_the_preseed``: an ISO made from Debian's
own packages (``tests/tools/build_debian_netboot_iso.py``: the real d-i
kernel and initrd, a stock isolinux menu that waits forever) is registered
and built with **no** ``--profile``. The debian profile must be detected,
and the real d-i must read isoplugin's preseed from the prepared copy: its
``early_command`` (set with ``--set early_command=...``) prints a marker on
the build server's serial console and powers off, so the install phase ends
by itself. This netboot initrd cannot go further without a mirror (it has
no CD or disk drivers of its own); the complete install is the networked
build's test. The marker is read from the build server's console log on
the compute node (``<instances>/<uuid>/console.log``) while the server
exists: Nova's API has no console log for a server that is off, and the
server powers off right after the marker.

``test_prepared_hybrid_iso_boots_as_rescue_device``: ``openstack iso
prepare`` makes the prepared copy of the tiny self-installing ISO (custom
profile), then a build with the same inputs uses that cached copy as the
rescue image and succeeds with ``--verify``: a prepared, re-uploaded,
isohybrid ISO still boots as Nova's rescue device.

Both end with nothing left: the prepared ISOs (a cache, kept on purpose by
the product) are deleted by the test, then ``leak_check`` must be clean.
"""

import json
import os
import re
import subprocess
import time
import uuid

import pytest

from isoplugin.backends import base as backend_base
from isoplugin import prepared as prepared_mod
from tests.functional import base
from tests.functional import test_libvirt_e2e as lve2e

pytestmark = pytest.mark.libvirt

# the same fixture as the tiny installer's end-to-end test (installer_iso
# is conftest's)
libvirt_cloud = lve2e.libvirt_cloud

PREFIX = 'unatt-%s-' % uuid.uuid4().hex[:6]
MARKER = 'ISOPLUGIN-PRESEED-MARKER-%s' % uuid.uuid4().hex[:8]
BUILD_TOOL = os.path.join(base.ROOT, 'tests', 'tools',
                          'build_debian_netboot_iso.py')
say = lve2e.say


@pytest.fixture(scope='module')
def debian_iso():
    """Debian's real installer on an ISO (built once, cached by versions)."""
    t = time.time()
    result = subprocess.run(
        ['python3', BUILD_TOOL], capture_output=True, text=True,
        timeout=900, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path), result.stdout
    say('Debian netboot ISO %s (%d bytes), ready in %.1fs'
        % (path, os.path.getsize(path), time.time() - t))
    return path


def _register(path, name):
    t = time.time()
    iso = base.osc_json('iso', 'create', name, '--file', path, timeout=1200)
    say('registered ISO %s (%s) in %.1fs'
        % (name, iso['id'], time.time() - t))
    assert iso['status'] == 'active'
    return iso


def _build_server(server):
    """``wanted`` for the console watcher: the build server."""
    meta = server.metadata or {}
    return (meta.get('isoplugin_role') == backend_base.ROLE_BUILD_SERVER and
            server.name.startswith('isoplugin-build-'))


def _build(args, conn, marker=None, config_file=None):
    """Run `openstack iso build create`; return (rc, out, stderr, console)."""
    watcher = None
    if marker:
        # the build server powers off right after the marker: read the file
        watcher = lve2e.ConsoleWatcher(conn, marker, _build_server,
                                       read=lve2e.file_console,
                                       interval=0.2)
        watcher.start()
    t0 = time.time()
    try:
        rc, out, lines = lve2e.osc_timed('iso', 'build', 'create', *args,
                                         config_file=config_file)
    finally:
        total = time.time() - t0
        if watcher:
            watcher.stop.set()
            watcher.join(10)
    stderr = '\n'.join('[%6.1fs] %s' % line for line in lines)
    say('\n=== openstack iso build create %s (%.1fs), progress:\n%s\n'
        'phase times: %s' % (' '.join(args), total, stderr,
                             ', '.join('%s %.1fs' % t for t in
                                       lve2e.phase_times(lines, total))))
    return rc, out, [line for _t, line in lines], (
        watcher.output if watcher else None)


def _events(lines):
    """[(phase, event)] of the progress lines (build_id phase event ...)."""
    return [tuple(line.split()[1:3]) for line in lines
            if len(line.split()) > 2]


def _prepared_images(conn, leak_check):
    """The images made since the test started that are prepared ISOs."""
    found = []
    for image_id in leak_check.left().get('images', {}):
        resp = conn.image.get('/images/%s' % image_id, raise_exc=False)
        if resp.status_code != 200:
            continue  # deleted meanwhile
        image = resp.json()
        # by its role: registered ISOs are hidden too
        if image.get('isoplugin_role') == prepared_mod.ROLE_PREPARED:
            found.append(image)
    return found


def _config(tmp_path):
    path = str(tmp_path / 'isoplugin.conf')
    with open(path, 'w') as f:
        f.write('[isoplugin]\npoll_interval = 1\npoll_max_interval = 2\n')
    return path


def test_debian_real_installer_reads_the_preseed(
        libvirt_cloud, debian_iso, demo_conn, admin_conn, leak_check,
        tmp_path):
    iso = _register(debian_iso, PREFIX + 'debian-12-netboot')
    output_id = None
    try:
        rc, out, lines, console = _build(
            [iso['name'], '--name', PREFIX + 'debian',
             # d-i needs more than m1.tiny's 512 MB (its initrd is 40 MB)
             '--flavor', 'm1.small',
             # the early command powers off before d-i installs anything:
             # the disk stays blank, which the build recognises at the
             # snapshot (the networked-build issue verifies a complete
             # install)
             '--no-verify',
             '--set', 'early_command=echo %s > /dev/ttyS0; poweroff'
             % MARKER, '-f', 'json'],
            demo_conn, marker=MARKER, config_file=_config(tmp_path))
        text = '\n'.join(lines)
        if rc == 0:
            output_id = base.one_row(json.loads(out))['id']
        say('=== build server console log (%d bytes):\n%s'
            % (len(console), console))
        # d-i powered off before it wrote anything: the build says so at
        # the snapshot, at once, instead of making an empty image
        assert rc != 0, text
        assert 'without writing anything to the system disk' in text, text
        # detected, not given: the output says so
        assert re.search(r'\bdetected profile debian\b', text), text
        # the install phase ended because the guest powered off, by itself
        events = _events(lines)
        assert ('install', 'waited') in events, text
        assert events.index(('install', 'waited')) < events.index(
            ('detach', 'phase-start')), text
        assert ('install', 'console') not in events, text
        # the real d-i read the preseed and ran its early_command
        # the marker as the guest printed it (at a line's end), not the
        # command that prints it
        assert re.search(r'%s\r?$' % MARKER, console, re.M), console
    finally:
        if output_id:
            demo_conn.image.delete_image(output_id, ignore_missing=True)
        for image in _prepared_images(admin_conn, leak_check):
            say('deleting prepared ISO %s (%s)' % (image['id'],
                                                   image['name']))
            demo_conn.image.delete_image(image['id'], ignore_missing=True)
        demo_conn.image.delete_image(iso['id'], ignore_missing=True)
    leak_check.assert_clean()


def test_prepared_hybrid_iso_boots_as_rescue_device(
        libvirt_cloud, installer_iso, demo_conn, admin_conn, leak_check,
        tmp_path):
    iso = _register(installer_iso, PREFIX + 'installer')
    answer = tmp_path / 'answer.cfg'
    answer.write_text('# the tiny installer does not read it\n')
    inputs = ['--profile', 'custom', '--answer-file', str(answer),
              '--set', 'answer_path=isoplugin/answer.cfg']
    output_id = None
    try:
        t = time.time()
        shown = base.osc_json('iso', 'prepare', iso['name'], *inputs,
                              timeout=1200)
        prepared = shown['id']
        say('prepared ISO %s in %.1fs: %s'
            % (prepared, time.time() - t, shown))
        assert shown['profile'] == 'custom' and shown['reused'] == 'no'
        image = base.image_json(demo_conn, prepared)
        assert image['disk_format'] == 'iso'
        assert image['visibility'] == 'private'
        assert image['os_hidden'] is True

        rc, out, lines, _console = _build(
            [iso['name'], '--name', PREFIX + 'prepared', '--flavor',
             'm1.tiny', '--verify', '-f', 'json'] + inputs, demo_conn,
            config_file=_config(tmp_path))
        text = '\n'.join(lines)
        assert rc == 0, text
        output_id = base.one_row(json.loads(out))['id']
        result = base.image_json(demo_conn, output_id)
        assert result['isoplugin_verified'] == 'passed'
        # the build used the copy `iso prepare` made, not a new one
        assert prepared in text or prepared in out, text + out
        assert [i['id'] for i in _prepared_images(admin_conn, leak_check)] \
            == [prepared]
    finally:
        if output_id:
            demo_conn.image.delete_image(output_id, ignore_missing=True)
        for image in _prepared_images(admin_conn, leak_check):
            demo_conn.image.delete_image(image['id'], ignore_missing=True)
        demo_conn.image.delete_image(iso['id'], ignore_missing=True)
    leak_check.assert_clean()
