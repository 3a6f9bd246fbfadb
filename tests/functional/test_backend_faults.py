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

"""What the backend contract guards against, on the local OpenStack.

* A flavor whose root disk is smaller than the ISO's ``min_disk`` is
  refused in one line before anything is created (``check_request``).
* A build holds one server at a time: the build server is deleted once the
  snapshot is active, before the verify server boots (``release``), so a
  build with ``--verify`` succeeds in a project whose instance quota is 1.
* A verified system that prints its marker and powers off at once
  (``verify_state``): in libvirt mode, with Nova's serial console on, the
  console log of the stopped guest is read and the build passes; with the
  default pty console Nova cannot give that log, and the error says so.

The first two run in fake mode; the last is marked ``libvirt``.
"""

import os
import subprocess
import time
import uuid

import openstack
import pytest

from isoplugin import build as build_mod
from isoplugin import catalog
from isoplugin import exception
from isoplugin import glance
from tests.functional import base
from tests.tools import make_test_iso

PREFIX = 'bkft-%s-' % uuid.uuid4().hex[:6]


def _register(conn, conf, path, kind, **fields):
    make_test_iso.make_iso(path, volume_id='BKFT_' + kind.upper(),
                           eltorito=True,
                           isoplugin_cfg={'action': 'install',
                                          'delay': '1'})
    image = catalog.Catalog(conn, conf).create(
        PREFIX + kind, filename=path, os_type='linux', os_distro='debian',
        os_version='12', **fields)
    return glance.flat(image)['id']


def _error_line(result):
    """Exit 1, no traceback: the last line of stderr is the error."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


# -- a flavor too small for the ISO's min_disk ------------------------------

@pytest.fixture
def big_iso(demo_conn, conf, tmp_path):
    # the devcloud's flavors: m1.tiny 1 GiB, m1.small 2, m1.medium 4
    iso_id = _register(demo_conn, conf, str(tmp_path / 'big.iso'), 'big',
                       min_disk=3)
    yield iso_id
    demo_conn.image.delete_image(iso_id, ignore_missing=True)


def test_flavor_smaller_than_min_disk_is_refused_before_anything(
        demo_conn, conf, big_iso, leak_check, monkeypatch):
    # the command line: one line naming the flavor, its disk, the ISO's
    # min_disk and what to do; exit 1; nothing left
    result = base.osc('iso', 'build', 'create', big_iso, '--flavor',
                      'm1.tiny', '--name', PREFIX + 'refused', '--verify',
                      check=False)
    line = _error_line(result)
    assert ("Flavor m1.tiny has a 1 GiB root disk, but the build needs "
            "3 GiB (the ISO's min_disk): give a flavor with a root disk of "
            "3 GiB or more with --flavor (the smallest: m1.medium)") in line
    assert '--disk-size cannot make it bigger' in line, line
    leak_check.assert_clean()

    # the library: refused before the first resource is created (no
    # record image, no prepared ISO, no blank disk, no server)
    created = []

    def create_image(conn, **fields):
        created.append(fields.get('name'))
        raise AssertionError('an image was created: %s' % fields)

    monkeypatch.setattr(glance, 'create_image', create_image)
    b = build_mod.Build(demo_conn, conf, build_mod.BuildRequest(
        iso=big_iso, name=PREFIX + 'refused', flavor='m1.tiny',
        verify=False))
    with pytest.raises(exception.BuildFailed) as e:
        b.run()
    assert e.value.kwargs['phase'] == 'prepare'
    assert isinstance(e.value.__cause__, exception.FlavorDiskTooSmall)
    assert created == []
    assert b.record_id is None and b.resources.server_id is None
    leak_check.assert_clean()


# -- one server at a time: a build with --verify under an instance quota of 1


@pytest.fixture
def one_instance_project(admin_conn, conf, tmp_path):
    """A project whose instance quota is 1, a member user, its ISO."""
    identity = admin_conn.identity
    name = PREFIX + 'q1'
    password = uuid.uuid4().hex
    project = identity.create_project(name=name, domain_id='default')
    user = identity.create_user(name=name, password=password,
                                domain_id='default',
                                default_project_id=project.id)
    role = identity.find_role('member', ignore_missing=False)
    identity.assign_project_role_to_user(project, user, role)
    admin_conn.set_compute_quotas(project.id, instances=1)
    auth = admin_conn.config.get_auth_args()
    conn = openstack.connection.Connection(
        auth_url=auth['auth_url'], username=name, password=password,
        project_name=name, user_domain_id='default',
        project_domain_id='default',
        region_name=admin_conn.config.get_region_name())
    iso_id = _register(conn, conf, str(tmp_path / 'q1.iso'), 'q1')
    try:
        yield conn, project, iso_id
    finally:
        for image in base.images(conn, PREFIX):
            conn.image.delete_image(image.id, ignore_missing=True)
        conn.image.delete_image(iso_id, ignore_missing=True)
        admin_conn.delete_compute_quotas(project.id)
        identity.delete_user(user, ignore_missing=True)
        identity.delete_project(project, ignore_missing=True)


def test_build_with_verify_holds_one_server_at_a_time(
        one_instance_project, admin_conn, conf, leak_check):
    conn, project, iso_id = one_instance_project
    seen = {}

    def progress(event):
        # when the verify server is about to boot, the build server must
        # be gone, and the build's resources by role must say so
        if event['phase'] == 'verify' and event['event'] == 'phase-start':
            found = build_mod.find_resources(conn, conf, event['build_id'])
            seen['roles'] = sorted(r.role for r in found)
            seen['servers'] = [s.id for s in conn.compute.servers()]

    b = build_mod.Build(conn, conf, build_mod.BuildRequest(
        iso=iso_id, name=PREFIX + 'q1-out', flavor='m1.tiny', verify=True,
        verify_must_pass=True), progress=progress)
    image = b.run()

    out = base.image_json(conn, image.id)
    assert out['isoplugin_verified'] == 'passed'
    assert seen['servers'] == [], seen
    # the record and the output remain, the blank disk until cleanup
    assert 'build-server' not in seen['roles'], seen
    assert build_mod.find_resources(conn, conf, b.id) == []
    # Nova: the build server was deleted before the verify server was made
    gone = {s.name: s for s in admin_conn.compute.servers(
        all_projects=True, deleted=True, project_id=project.id)}
    build_srv = gone['isoplugin-build-' + b.id]
    verify_srv = gone['isoplugin-verify-' + b.id]
    assert build_srv.status == verify_srv.status == 'DELETED'
    assert build_srv.updated_at <= verify_srv.created_at, (
        build_srv.updated_at, verify_srv.created_at)
    conn.image.delete_image(image.id)
    leak_check.assert_clean()


# -- a verified system that powers off right after its marker (libvirt) ----

@pytest.fixture(scope='module')
def quick_poweroff_iso(demo_conn):
    """The tiny installer whose installed system powers off at once.

    (conftest's ``devcloud_mode`` checks that the cloud runs in libvirt
    mode, as the ``libvirt`` mark says.)
    """
    cache = os.path.join(os.path.expanduser('~'), '.cache', 'isoplugin')
    out = os.path.join(cache, 'installer-linger0.iso')
    result = subprocess.run(
        [os.path.join(base.ROOT, 'tests', 'tools', 'build-installer-iso.sh'),
         out], capture_output=True, text=True, timeout=900,
        stdin=subprocess.DEVNULL, env=dict(os.environ, LINGER='0'))
    assert result.returncode == 0, result.stdout + result.stderr
    iso = base.osc_json('iso', 'create', PREFIX + 'linger0', '--file', out,
                        timeout=1200)
    yield iso
    demo_conn.image.delete_image(iso['id'], ignore_missing=True)


def _serial_console(value):
    base.Devcloud().run('set', 'serial_console=%s' % value)
    base.poll(base.Devcloud().is_up, 'tools/devcloud status: all up', 240,
              interval=2)


@pytest.mark.libvirt
@pytest.mark.parametrize('serial_console', ['true', 'false'])
def test_marker_then_power_off(quick_poweroff_iso, demo_conn, tmp_path,
                               leak_check, serial_console):
    _serial_console(serial_console)
    config_file = tmp_path / 'isoplugin.conf'
    config_file.write_text('[isoplugin]\npoll_interval = 1\n'
                           'poll_max_interval = 3\n')
    try:
        t0 = time.time()
        result = base.osc('iso', 'build', 'create',
                          quick_poweroff_iso['name'], '--name',
                          PREFIX + 'off-' + serial_console, '--flavor',
                          'm1.tiny', '--verify',
                          '-f', 'json', config_file=str(config_file),
                          check=False, timeout=1200)
        print('build with serial_console=%s: rc %d in %.0fs\n%s'
              % (serial_console, result.returncode, time.time() - t0,
                 result.stderr))
        outputs = base.images(demo_conn, PREFIX + 'off-' + serial_console)
        if serial_console == 'true' or result.returncode == 0:
            # Nova reads console.log of the stopped guest (serial console);
            # with a pty only a read in the instant between the marker and
            # the power-off sees it, which the pipeline may happen to do
            assert result.returncode == 0, result.stderr
            assert [base.image_json(demo_conn, i.id)['isoplugin_verified']
                    for i in outputs] == ['passed']
        else:
            line = _error_line(result)
            assert 'powered itself off' in line, line
            assert 'Guest does not have a console available' in line, line
            assert '[serial_console] enabled = true' in line, line
            assert outputs == []
    finally:
        _serial_console('false')
        for image in base.images(demo_conn, PREFIX + 'off-'):
            demo_conn.image.delete_image(image.id, ignore_missing=True)
    leak_check.assert_clean(timeout=300)
