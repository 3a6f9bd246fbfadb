"""Fixtures of the functional tests: the local OpenStack of tools/devcloud.

* ``devcloud`` (session): runs ``tools/devcloud up`` unless
  ``tools/devcloud status --quiet`` says it is up, points
  OS_CLIENT_CONFIG_FILE at .devcloud/clouds.yaml, returns a ``Devcloud``
  with the paths (clouds.yaml, service venv, state folder).
* ``admin_conn``, ``demo_conn``, ``other_conn`` (session): openstacksdk
  connections for the clouds devcloud-admin, devcloud-demo, devcloud-other.
* ``leak_check`` (function): ``leak_check.assert_clean()`` at the end of a
  test asserts that no server, image or Placement allocation was left that
  was not there when the test started (``leak_check.snapshot()`` gives the
  raw lists, ``leak_check.baseline`` what was there before).

Only generic fixtures live here; test modules add their own.
"""

import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
DEVCLOUD = os.path.join(ROOT, 'tools', 'devcloud')
STATE_DIR = os.environ.get('DEVCLOUD_DIR') or os.path.join(ROOT, '.devcloud')
CLOUDS = {
    'admin': 'devcloud-admin',
    'demo': 'devcloud-demo',
    'other': 'devcloud-other',
}


class Devcloud:
    root = ROOT
    command = DEVCLOUD
    state_dir = STATE_DIR
    clouds_yaml = os.path.join(STATE_DIR, 'clouds.yaml')
    venv_bin = os.path.join(STATE_DIR, 'venv', 'bin')
    instances_dir = os.path.join(STATE_DIR, 'state', 'nova', 'instances')
    clouds = CLOUDS
    flavors = {
        'm1.tiny': (1, 512, 1),
        'm1.small': (1, 1024, 2),
        'm1.medium': (2, 2048, 4),
    }
    stores = ('fast', 'cheap')  # Glance file stores; fast is the default

    def run(self, *args, check=True, timeout=900):
        """Run tools/devcloud ARGS; output goes to the test's stdout."""
        p = subprocess.run(
            [DEVCLOUD] + list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        sys.stdout.write(p.stdout + p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(
                'tools/devcloud %s failed (rc %d):\n%s%s'
                % (' '.join(args), p.returncode, p.stdout, p.stderr)
            )
        return p

    def is_up(self):
        return (
            subprocess.run(
                [DEVCLOUD, 'status', '--quiet'], capture_output=True
            ).returncode
            == 0
        )

    def openstack(self, *args, cloud='devcloud-demo', check=True):
        """The `openstack` CLI of the service venv, for one cloud."""
        env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
        env['OS_CLIENT_CONFIG_FILE'] = self.clouds_yaml
        p = subprocess.run(
            [os.path.join(self.venv_bin, 'openstack'), '--os-cloud', cloud]
            + list(args),
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if check and p.returncode != 0:
            raise AssertionError(
                'openstack %s failed (rc %d):\n%s%s'
                % (' '.join(args), p.returncode, p.stdout, p.stderr)
            )
        return p

    def connect(self, name):
        import openstack.config
        import openstack.connection

        cfg = openstack.config.OpenStackConfig(
            config_files=[self.clouds_yaml], load_envvars=False
        )
        return openstack.connection.Connection(
            config=cfg.get_one(cloud=CLOUDS.get(name, name))
        )


@pytest.fixture(scope='session')
def devcloud():
    dc = Devcloud()
    if not dc.is_up():
        t = time.time()
        dc.run('up')
        print('tools/devcloud up took %.1fs' % (time.time() - t))
    # clouds.yaml wins over any OS_* of the caller's shell
    for k in [k for k in os.environ if k.startswith('OS_')]:
        del os.environ[k]
    os.environ['OS_CLIENT_CONFIG_FILE'] = dc.clouds_yaml
    return dc


@pytest.fixture(scope='session')
def admin_conn(devcloud):
    return devcloud.connect('admin')


@pytest.fixture(scope='session')
def demo_conn(devcloud):
    return devcloud.connect('demo')


@pytest.fixture(scope='session')
def other_conn(devcloud):
    return devcloud.connect('other')


class LeakCheck:
    """What a test left behind.

    Servers (all projects), images (all visible to admin), Placement
    allocations (consumers) and volumes (None: the devcloud has no Cinder).
    """

    def __init__(self, conn):
        self.conn = conn
        self.baseline = self.snapshot()

    def snapshot(self):
        c = self.conn
        out = {
            'servers': {
                s.id: '%s (%s)' % (s.name, s.status)
                for s in c.compute.servers(all_projects=True)
            },
            'images': {
                i.id: '%s (%s)' % (i.name, i.status) for i in c.image.images()
            },
            'allocations': {},
            'volumes': None,
        }
        rps = c.placement.get('/resource_providers', microversion='1.39')
        for rp in rps.json()['resource_providers']:
            a = c.placement.get(
                '/resource_providers/%s/allocations' % rp['uuid'],
                microversion='1.39',
            ).json()['allocations']
            for consumer in a:
                out['allocations'][consumer] = rp['name']
        if c.has_service('block-storage') or c.has_service('volumev3'):
            out['volumes'] = {
                v.id: v.name
                for v in c.block_storage.volumes(all_projects=True)
            }
        return out

    def new_since_baseline(self):
        now = self.snapshot()
        return {
            k: {
                i: v
                for i, v in (now[k] or {}).items()
                if i not in (self.baseline[k] or {})
            }
            for k in now
        }

    def assert_clean(self, timeout=60):
        """Wait up to timeout seconds for everything new to disappear."""
        end = time.time() + timeout
        while True:
            left = {k: v for k, v in self.new_since_baseline().items() if v}
            if not left or time.time() > end:
                break
            time.sleep(1)
        assert not left, 'left behind: %r' % left


@pytest.fixture
def leak_check(admin_conn):
    return LeakCheck(admin_conn)
