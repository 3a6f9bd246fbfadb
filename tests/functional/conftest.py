"""Fixtures of the functional tests: the local OpenStack of tools/devcloud.

The one set of fixtures every functional test module uses. The helpers
they are built on are in ``base.py``, which test modules import for
``osc()`` (the ``openstack`` CLI as one of the users), ``poll()`` and the
like: a conftest is not meant to be imported.

* ``devcloud`` (session): waits until no other functional test session
  runs on the machine (``base.session_lock``: tests restart services of the
  one shared cloud), runs ``tools/devcloud up`` unless
  ``tools/devcloud status --quiet`` says it is up, points
  OS_CLIENT_CONFIG_FILE at .devcloud/clouds.yaml, returns a
  ``base.Devcloud`` with the paths (clouds.yaml, service venv, state
  folder, Glance stores).
* ``devcloud_mode`` (session, autouse): the compute mode the selected
  tests need (tests marked ``libvirt``: libvirt, the others: fake) is the
  one the devcloud runs in; else the session ends at once with a message
  saying which ``tools/devcloud up --mode`` to run.
* ``admin_conn``, ``demo_conn``, ``other_conn`` (session): openstacksdk
  connections for the clouds devcloud-admin, devcloud-demo, devcloud-other.
* ``volumes`` (module): Cinder and Ceph run (``tools/devcloud set
  volumes=ceph``), turned on for the module that asks and off after it.
* ``bfv_flavor`` (module): a public flavor with a 0 GiB root disk, as on
  a cloud that boots from volumes only.
* ``installer_iso`` (session): the path of the tiny self-installing ISO
  (``tests/tools/build-installer-iso.sh``, cached across runs) that the
  libvirt tests install for real.
* ``leak_check`` (function): ``leak_check.assert_clean()`` at the end of a
  test asserts that no server, image or Placement allocation was left that
  was not there when the test started (``leak_check.snapshot()`` gives the
  raw lists, ``leak_check.baseline`` what was there before).
"""

import collections
import os
import subprocess
import time
import uuid

import pytest

from tests.functional import base


@pytest.fixture(scope='session')
def devcloud():
    lock = base.session_lock()
    dc = base.Devcloud()
    if not dc.is_up():
        t = time.time()
        dc.run('up')
        print('tools/devcloud up took %.1fs' % (time.time() - t))
    # clouds.yaml wins over any OS_* of the caller's shell
    for k in [k for k in os.environ if k.startswith('OS_')]:
        del os.environ[k]
    os.environ['OS_CLIENT_CONFIG_FILE'] = dc.clouds_yaml
    yield dc
    if lock:
        lock.close()


@pytest.fixture(scope='session', autouse=True)
def devcloud_mode(request):
    """End the session at once when the devcloud runs in the wrong mode.

    A fake-mode test against the libvirt driver (or the reverse) fails
    only after its timeouts, one test after the other.
    """
    needed = collections.Counter(
        m for m in map(base.mode_needed, request.session.items) if m)
    if not needed:
        return None
    mode = request.getfixturevalue('devcloud').mode()
    problem = base.mode_mismatch(needed, mode)
    if problem:
        pytest.exit('tests/functional: %s' % problem,
                    returncode=pytest.ExitCode.USAGE_ERROR)
    return mode


@pytest.fixture(scope='session')
def admin_conn(devcloud):
    return base.connect('admin')


@pytest.fixture(scope='session')
def demo_conn(devcloud):
    return base.connect('demo')


@pytest.fixture(scope='session')
def other_conn(devcloud):
    return base.connect('other')


@pytest.fixture(scope='module')
def conf():
    """isoplugin's options with fast polling (each module its own copy)."""
    from isoplugin import conf as iso_conf

    c = iso_conf.load_config(config_files=[])
    c.set_override('poll_interval', 0.5, 'isoplugin')
    c.set_override('poll_max_interval', 2, 'isoplugin')
    return c


@pytest.fixture(scope='module')
def config_file(tmp_path_factory):
    """An isoplugin configuration file with fast polling, for the CLI."""
    path = tmp_path_factory.mktemp('conf') / 'isoplugin.conf'
    path.write_text('[isoplugin]\npoll_interval = 0.5\n'
                    'poll_max_interval = 2\n')
    return str(path)


@pytest.fixture
def leak_check(admin_conn):
    return base.LeakCheck(admin_conn)


@pytest.fixture(scope='module')
def volumes(devcloud, admin_conn, demo_conn):
    """Cinder and Ceph run: turned on for this module if they are off.

    Turned off again at the end in that case (the other modules run on a
    cloud without a volume service, as by default).
    """
    turned_on = not devcloud.pid('cinder-volume')
    if turned_on:
        devcloud.run('set', 'volumes=ceph')
        # new tokens: their catalog has the volume service now
        for conn in (admin_conn, demo_conn):
            conn.session.auth.invalidate()
    yield True
    if turned_on:
        devcloud.run('set', 'volumes=')
        for conn in (admin_conn, demo_conn):
            conn.session.auth.invalidate()


@pytest.fixture(scope='module')
def bfv_flavor(admin_conn, volumes):
    flavor = admin_conn.compute.create_flavor(
        name='bfv-%s' % uuid.uuid4().hex[:6], vcpus=1, ram=512, disk=0,
        is_public=True)
    yield flavor
    admin_conn.compute.delete_flavor(flavor.id, ignore_missing=True)


@pytest.fixture(scope='session')
def installer_iso():
    """The tiny unattended installer (built once, cached across runs)."""
    t = time.time()
    result = subprocess.run(
        [os.path.join(base.ROOT, 'tests', 'tools',
                      'build-installer-iso.sh')],
        capture_output=True, text=True, timeout=900,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path), result.stdout
    print('installer ISO %s (%d bytes), ready in %.1fs'
          % (path, os.path.getsize(path), time.time() - t), flush=True)
    return path
