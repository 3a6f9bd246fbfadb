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

"""The nova-volume backend against Cinder on Ceph (fake compute driver).

The devcloud runs Cinder (api, scheduler, volume) with its RBD driver on
a one-node Ceph (``tools/devcloud set volumes=ceph``; the module turns it
on when it is off). Nova boots the build server from the Cinder volume;
the fake compute driver's installer writes the installed system into the
volume's RBD image and its verify server reads it back from the volume
Nova makes from the output image, so a build that passes has gone
through Ceph both ways. Builds run as the demo user. Every test checks
that nothing is left: servers, images, volumes, volume snapshots and the
RBD images of Ceph's pool (``rbd ls``).
"""

import json
import os
import uuid

import pytest
import yaml

from isoplugin import build as build_mod
from tests.functional import base

PREFIX = 'volft-%s-' % uuid.uuid4().hex[:6]


@pytest.fixture(scope='module')
def isos(demo_conn, conf, volumes, tmp_path_factory):
    """ISOs registered as demo, one per installer behaviour."""
    d = tmp_path_factory.mktemp('isos')
    kinds = {
        'install': {'action': 'install', 'delay': '2'},
        'slow': {'action': 'install', 'delay': '25'},
        'hang': {'action': 'hang'},
    }
    out = base.register_test_isos(demo_conn, conf, d, PREFIX, kinds)
    yield out
    base.delete_images(demo_conn, PREFIX, out.values())


def _last_line(stderr):
    return (stderr.strip().splitlines() or [''])[-1]


def _build_server_actions(admin_conn, build_id):
    servers = list(admin_conn.compute.servers(
        all_projects=True, deleted=True,
        name='isoplugin-build-' + build_id))
    assert len(servers) == 1, servers
    actions = admin_conn.compute.get(
        '/servers/%s/os-instance-actions' % servers[0].id,
        microversion='2.84').json()['instanceActions']
    return [a['action'] for a in actions]


# -- success -------------------------------------------------------------

def test_full_build_through_the_volume_backend(demo_conn, admin_conn, conf,
                                               isos, leak_check):
    name = PREFIX + 'full'
    result = base.osc('iso', 'build', 'create', PREFIX + 'install',
                      '--name', name, '--backend', 'nova-volume',
                      '--flavor', 'm1.tiny', '--verify', '-f', 'json')

    shown = base.one_row(json.loads(result.stdout))
    image = base.assert_volume_output(demo_conn, shown['id'])
    build_id = image['isoplugin_build_id']
    assert image['name'] == name
    assert image['min_disk'] == 1
    assert image['disk_format'] == 'raw'
    assert image['isoplugin_source_iso_id'] == isos['install']
    for phase in build_mod.PHASES:
        assert '%s %-8s phase-start' % (build_id, phase) in result.stderr
    # the output came from Cinder's volume upload, never from createImage
    # of the volume-backed server (a zero-byte image of snapshot refs)
    actions = _build_server_actions(admin_conn, build_id)
    assert 'createImage' not in actions
    assert 'rescue' in actions and 'unrescue' in actions
    base.assert_no_leftovers(demo_conn, conf, build_id)
    demo_conn.image.delete_image(image['id'])
    leak_check.assert_clean()


def test_auto_picks_nova_volume_for_a_0_gib_root_flavor(
        demo_conn, conf, isos, bfv_flavor, leak_check):
    name = PREFIX + 'auto'
    result = base.osc('iso', 'build', 'create', PREFIX + 'install',
                      '--name', name, '--flavor', bfv_flavor.name, '--verify',
                      '-f', 'json')

    shown = base.one_row(json.loads(result.stdout))
    image = base.assert_volume_output(demo_conn, shown['id'])
    assert 'backend nova-volume (auto: flavor %s has a 0 GiB root disk' % (
        bfv_flavor.name) in result.stderr
    demo_conn.image.delete_image(image['id'])
    leak_check.assert_clean()


# -- failures and interruptions ----------------------------------------------

def test_install_timeout_leaves_nothing(demo_conn, conf, isos, leak_check):
    base.assert_install_times_out(demo_conn, conf, build_mod.BuildRequest(
        iso=isos['hang'], name=PREFIX + 'timeout', flavor='m1.tiny',
        install_timeout=6, verify=False, backend='nova-volume'))

    leak_check.assert_clean()


def _driver(iso, pause='-'):
    name = PREFIX + uuid.uuid4().hex[:6]
    proc, build_id = base.start_build_driver(iso, name, pause,
                                             backend='nova-volume')
    return proc, build_id, name


@pytest.mark.parametrize('phase', base.KILL_PHASES)
def test_sigkill_then_delete_orphans(demo_conn, conf, isos, leak_check,
                                     phase):
    iso = isos['slow'] if phase == 'install' else isos['install']
    proc, build_id, name = _driver(iso, pause=phase)
    if phase == 'install':  # a real wait: the installer takes 25 s
        base.wait_phase(demo_conn, conf, build_id, 'install')
    else:
        base.wait_paused(proc, build_id)
        if phase != 'prepare':
            base.wait_phase(demo_conn, conf, build_id, phase)
    if phase in ('prepare', 'boot', 'install'):
        # the killed build holds its system volume
        kinds = {r.kind for r in build_mod.find_resources(demo_conn, conf,
                                                          build_id)}
        assert 'volume' in kinds
    base.kill_build_driver(demo_conn, conf, proc, build_id)

    base.delete_orphans(demo_conn, conf, build_id, name)

    leak_check.assert_clean()


# -- bad input -------------------------------------------------------------

def _refused(args, config_file=None, env=None):
    result = base.osc('iso', 'build', 'create', *args, check=False,
                      config_file=config_file, env=env)
    assert result.returncode != 0, result.stdout
    assert 'Traceback' not in result.stderr
    return _last_line(result.stderr)


def test_unknown_volume_type_is_refused(conf, isos, leak_check, tmp_path):
    config = tmp_path / 'isoplugin.conf'
    config.write_text('[backend_nova_volume]\nvolume_type = %snope\n'
                      % PREFIX)

    line = _refused([PREFIX + 'install', '--name', PREFIX + 'vtype',
                     '--backend', 'nova-volume', '--flavor', 'm1.tiny'],
                    config_file=config)

    assert 'no volume type %snope' % PREFIX in line
    assert 'volume_type' in line
    leak_check.assert_clean()


def test_over_the_volume_quota_is_refused(demo_conn, admin_conn, conf, isos,
                                          leak_check):
    project = demo_conn.current_project_id
    before = admin_conn.block_storage.get_quota_set(project)
    used = demo_conn.block_storage.get_limits().absolute
    admin_conn.block_storage.update_quota_set(
        project, gigabytes=used.total_gigabytes_used + 1)
    try:
        line = _refused([PREFIX + 'install', '--name', PREFIX + 'quota',
                         '--backend', 'nova-volume', '--flavor', 'm1.tiny',
                         '--disk-size', '2'])
    finally:
        admin_conn.block_storage.update_quota_set(
            project, gigabytes=before.gigabytes)

    assert 'volume quota' in line
    assert 'gigabytes' in line
    leak_check.assert_clean()


def test_a_cloud_without_a_volume_service_is_refused(conf, isos, leak_check,
                                                     tmp_path):
    # the client's view of a cloud whose catalog has no Block Storage:
    # openstacksdk's has_block_storage = false (the catalog of the shared
    # devcloud keeps its volumev3 entry for the other tests)
    with open(base.CLOUDS_YAML) as f:
        clouds = yaml.safe_load(f)
    clouds['clouds']['devcloud-demo']['has_block_storage'] = False
    path = tmp_path / 'clouds.yaml'
    path.write_text(yaml.safe_dump(clouds))

    line = _refused([PREFIX + 'install', '--name', PREFIX + 'novol',
                     '--backend', 'nova-volume', '--flavor', 'm1.tiny'],
                    env=base.osc_env(OS_CLIENT_CONFIG_FILE=str(path)))

    assert 'no Block Storage (Cinder) service' in line
    assert '--backend nova-rescue' in line
    leak_check.assert_clean()


def test_devcloud_runs_ceph_and_cinder(devcloud, admin_conn, volumes):
    services = {(s.binary, s.status, s.state) for s in
                admin_conn.block_storage.services()}
    assert ('cinder-volume', 'enabled', 'up') in services
    assert ('cinder-scheduler', 'enabled', 'up') in services
    status = devcloud.run('status').stdout
    for name in ('ceph-mon', 'ceph-mgr', 'ceph-osd', 'cinder-api',
                 'cinder-scheduler', 'cinder-volume'):
        assert any(line.split()[:2] == [name, 'running']
                   for line in status.splitlines()), (name, status)
    assert os.path.exists(base.CEPH_CONF)
    base.rbd_images()  # answers
