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

"""The nova-volume backend under libvirt/QEMU: a real install onto Ceph.

The devcloud runs in libvirt mode with Cinder on Ceph (``volumes=ceph``,
turned on for this module). Nova's libvirt driver gives QEMU the build
server's system volume as an RBD network disk (librbd in QEMU, the key in
the libvirt secret Cinder's ``rbd_secret_uuid`` names: no kernel module
is involved). The tiny installer of ``tests/tools/build-installer-iso.sh``
boots as the rescue CD-ROM, writes its system onto that volume and powers
off; Cinder uploads the volume to Glance; the verify server boots a new
volume made from the output image and prints the installed system's
marker on its console. Every test checks that nothing is left: servers,
images, volumes, snapshots and RBD images (``rbd ls``), also after an
install timeout and after the client was killed (SIGKILL) in each phase
and ``openstack iso build delete --orphans`` ran.
"""

import json
import uuid

import pytest

from isoplugin import build as build_mod
from tests.functional import base

pytestmark = pytest.mark.libvirt

PREFIX = 'vollv-%s-' % uuid.uuid4().hex[:6]


@pytest.fixture(scope='module')
def installer(volumes, installer_iso, demo_conn):
    """The tiny installer registered with `openstack iso create` as demo."""
    iso = base.osc_json('iso', 'create', PREFIX + 'installer', '--file',
                        installer_iso, timeout=1200)
    yield iso
    demo_conn.image.delete_image(iso['id'], ignore_missing=True)


def _build(installer, name, config_file, *args):
    result = base.osc('iso', 'build', 'create', installer['name'], '--name',
                      name, '--verify', '-f', 'json', *args,
                      config_file=config_file, check=False, timeout=1500)
    print('build %s: rc %d\n%s' % (name, result.returncode, result.stderr),
          flush=True)
    assert result.returncode == 0, result.stderr
    return result


def test_real_install_onto_a_ceph_volume(demo_conn, conf, installer,
                                         config_file, leak_check):
    name = PREFIX + 'full'
    result = _build(installer, name, config_file, '--backend', 'nova-volume',
                    '--flavor', 'm1.tiny')
    image = base.assert_volume_output(
        demo_conn, base.one_row(json.loads(result.stdout))['id'])
    try:
        assert image['name'] == name
        assert image['isoplugin_source_iso_id'] == installer['id']
        base.assert_no_leftovers(demo_conn, conf,
                                 image['isoplugin_build_id'])
    finally:
        demo_conn.image.delete_image(image['id'])
    leak_check.assert_clean(timeout=300)


def test_auto_on_a_0_gib_root_flavor(demo_conn, installer, bfv_flavor,
                                     config_file, leak_check):
    # a 1 GiB volume (the flavor has no root disk size to give; the
    # default volume_size is 10 GiB, which Cinder would upload whole)
    result = _build(installer, PREFIX + 'auto', config_file, '--flavor',
                    bfv_flavor.name, '--disk-size', '1')
    image = base.assert_volume_output(
        demo_conn, base.one_row(json.loads(result.stdout))['id'])
    demo_conn.image.delete_image(image['id'])
    assert 'backend nova-volume (auto: flavor %s has a 0 GiB root disk' % (
        bfv_flavor.name) in result.stderr
    leak_check.assert_clean(timeout=300)


# -- failures and interruptions, with a real guest on a Ceph volume -----------

def test_install_timeout_leaves_nothing(demo_conn, conf, installer,
                                        leak_check):
    # the real installer runs for tens of seconds under TCG: 5 s is short
    base.assert_install_times_out(demo_conn, conf, build_mod.BuildRequest(
        iso=installer['id'], name=PREFIX + 'timeout', flavor='m1.tiny',
        install_timeout=5, verify=False, backend='nova-volume'))

    leak_check.assert_clean(timeout=300)


@pytest.mark.parametrize('phase', base.KILL_PHASES)
def test_sigkill_then_delete_orphans(demo_conn, conf, installer, leak_check,
                                     phase):
    name = PREFIX + uuid.uuid4().hex[:6]
    proc, build_id = base.start_build_driver(installer['id'], name, phase,
                                             backend='nova-volume')
    base.wait_paused(proc, build_id)
    if phase != 'prepare':  # prepare has no server yet
        base.wait_phase(demo_conn, conf, build_id, phase)
    base.kill_build_driver(demo_conn, conf, proc, build_id)

    base.delete_orphans(demo_conn, conf, build_id, name)

    leak_check.assert_clean(timeout=300)
