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

"""What every functional test uses to reach the local OpenStack.

The fixtures of conftest.py are built on these; test modules import the
plain functions from here (a conftest is not meant to be imported):

* :class:`Devcloud`: the paths of tools/devcloud and its state folder, and
  the Glance store folders as Glance's own configuration names them.
* :func:`connect`: an openstacksdk connection for ``admin``, ``demo`` or
  ``other``.
* :func:`osc`, :func:`osc_json`, :func:`osc_command`, :func:`osc_env`: run
  the ``openstack`` CLI (this virtualenv's, with isoplugin) as one of them.
* :func:`poll`: the one bounded wait for what the SDK has no wait for.
* :func:`images`: the images of a name prefix, hidden ones included.
* :class:`LeakCheck`: what a test left behind.
"""

import configparser
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile

import openstack.config
import openstack.connection
from openstack import exceptions as sdk_exc
from openstack import utils as sdk_utils

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
DEVCLOUD = os.path.join(ROOT, 'tools', 'devcloud')
STATE_DIR = os.environ.get('DEVCLOUD_DIR') or os.path.join(ROOT, '.devcloud')
CLOUDS_YAML = os.path.join(STATE_DIR, 'clouds.yaml')
CLOUDS = {
    'admin': 'devcloud-admin',
    'demo': 'devcloud-demo',
    'other': 'devcloud-other',
}
# isoplugin's CLI: the `openstack` of the virtualenv running the tests
OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')
# The tests run as root, who may read any file thanks to these capabilities:
# without them, root is held to a file's permission bits like anyone else.
DAC_CAPS = ('dac_override', 'dac_read_search')


class Devcloud:
    """The local OpenStack of tools/devcloud: its command and folders."""

    root = ROOT
    command = DEVCLOUD
    state_dir = STATE_DIR
    clouds_yaml = CLOUDS_YAML
    logs_dir = os.path.join(STATE_DIR, 'logs')
    venv_bin = os.path.join(STATE_DIR, 'venv', 'bin')
    instances_dir = os.path.join(STATE_DIR, 'state', 'nova', 'instances')
    glance_conf = os.path.join(STATE_DIR, 'etc', 'glance', 'glance-api.conf')
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

    def mode(self):
        """The compute mode the devcloud runs in (fake, libvirt), or None."""
        try:
            with open(os.path.join(self.state_dir, 'mode')) as f:
                return f.read().strip() or None
        except OSError:
            return None

    def pid(self, name):
        """The pid of the devcloud process ``name`` if it is alive."""
        try:
            with open(os.path.join(self.state_dir, 'run', name + '.pid')) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def is_up(self):
        return (
            subprocess.run(
                [DEVCLOUD, 'status', '--quiet'], capture_output=True
            ).returncode
            == 0
        )

    def openstack(self, *args, cloud='devcloud-demo', check=True):
        """The `openstack` CLI of the service venv (no isoplugin)."""
        return osc(*args, cloud=cloud, check=check, timeout=300,
                   executable=os.path.join(self.venv_bin, 'openstack'))

    def connect(self, name):
        return connect(name)

    def glance_store_dirs(self):
        """{store: folder} of Glance's file stores, read from its config.

        Every enabled file backend and the staging store, as the running
        glance-api reads them (``filesystem_store_datadir``).
        """
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        assert parser.read(self.glance_conf), (
            'no Glance configuration at %s' % self.glance_conf)
        out = {}
        enabled = parser.get('DEFAULT', 'enabled_backends')
        for item in enabled.split(','):
            store, _sep, kind = item.strip().partition(':')
            if kind.strip() == 'file':
                out[store] = parser.get(store, 'filesystem_store_datadir')
        out['os_glance_staging_store'] = parser.get(
            'os_glance_staging_store', 'filesystem_store_datadir')
        return {k: v.rstrip('/') for k, v in out.items()}


# One functional test session at a time on a machine: tests stop and
# restart services of the machine's one devcloud (and switch its mode), which
# breaks whatever another session is doing with it at that moment.
SESSION_LOCK = os.path.join(tempfile.gettempdir(),
                            'isoplugin-functional-tests.lock')
SESSION_ENV = 'ISOPLUGIN_TEST_SESSION'   # set in a session holding the lock


def session_lock():
    """Wait until no other functional test session runs on this machine.

    :returns: the open lock file (held until it is closed), or None in a
        session started by a test of a session that holds it.
    """
    if os.environ.get(SESSION_ENV):
        return None
    f = open(SESSION_LOCK, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        sys.stderr.write('waiting for the functional test session %s that '
                         'uses the local OpenStack\n' % f.read().strip())
        fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    f.truncate()
    f.write('pid %d (%s)\n' % (os.getpid(), ' '.join(sys.argv)))
    f.flush()
    os.environ[SESSION_ENV] = str(os.getpid())
    return f


def mode_needed(item):
    """The devcloud mode a collected test needs, None if it needs no cloud.

    Tests marked ``libvirt`` need the libvirt mode, the other tests that
    use the ``devcloud`` fixture (directly or through another fixture) the
    fake mode.
    """
    if 'devcloud' not in item.fixturenames:
        return None
    return 'libvirt' if item.get_closest_marker('libvirt') else 'fake'


def mode_mismatch(needed, mode):
    """Why tests that need the modes ``needed`` cannot run, or None.

    :param needed: {mode: number of selected tests that need it}.
    :param mode: the mode the devcloud runs in.
    """
    if len(needed) > 1:
        return ('the selected tests need two compute modes (%s): run them '
                'in two passes, -m libvirt with `tools/devcloud up --mode '
                'libvirt` and -m "not libvirt" with `tools/devcloud up '
                '--mode fake`, as tools/run-tests does'
                % ', '.join('%d %s' % (n, m) for m, n in sorted(
                    needed.items())))
    want = next(iter(needed), mode)
    if want == mode:
        return None
    return ('%d selected test(s) need the local OpenStack in %s mode, but '
            'it runs in %s mode: run `tools/devcloud up --mode %s` first'
            '%s' % (needed[want], want, mode, want,
                    ' (or deselect them: -m "not libvirt")'
                    if want == 'libvirt' else
                    ' (or select the libvirt tests: -m libvirt)'))


def connect(name):
    """An openstacksdk connection to the devcloud as ``name``.

    :param name: admin, demo, other, or a cloud name of clouds.yaml.

    Only the devcloud's clouds.yaml counts: nothing of the caller's OS_*
    environment (OS_CLOUD, OS_PASSWORD, another OS_CLIENT_CONFIG_FILE).
    """
    cfg = openstack.config.OpenStackConfig(
        config_files=[CLOUDS_YAML], load_envvars=False)
    return openstack.connection.Connection(
        config=cfg.get_one(cloud=CLOUDS.get(name, name)))


def osc_env(config_file=None, **extra):
    """The environment of a CLI run: the devcloud's clouds.yaml, no OS_*.

    :param config_file: isoplugin configuration file, or None for none.
    :param extra: further variables.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('OS_') and k != 'ISOPLUGIN_CONFIG_FILE'}
    env['OS_CLIENT_CONFIG_FILE'] = CLOUDS_YAML
    if config_file:
        env['ISOPLUGIN_CONFIG_FILE'] = str(config_file)
    env.update(extra)
    return env


def interruptible():
    """``preexec_fn`` for a child the test will stop with SIGINT (Ctrl-C).

    A shell without job control starts background commands with SIGINT
    ignored, and Python keeps an inherited "ignore": started that way (as
    by ``nohup bash .ci/run &``), the child would never see the Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def osc_command(*args, cloud='demo', drop_dac=False, executable=OPENSTACK):
    """``openstack --os-cloud devcloud-<cloud> ARGS`` as an argv list.

    :param drop_dac: run it without root's power to read every file.
    """
    cmd = [executable, '--os-cloud', CLOUDS.get(cloud, cloud)] + list(args)
    if drop_dac:
        caps = ','.join('-' + cap for cap in DAC_CAPS)
        cmd = ['setpriv', '--bounding-set=' + caps,
               '--inh-caps=' + caps] + cmd
    return cmd


def osc(*args, cloud='demo', check=True, env=None, config_file=None,
        drop_dac=False, timeout=600, executable=OPENSTACK):
    """Run the ``openstack`` CLI as ``cloud``; return the CompletedProcess.

    :param check: raise AssertionError (with the command's output) when it
        exits non-zero.
    :param env: the environment (default: :func:`osc_env`).
    :param config_file: an isoplugin configuration file.
    """
    cmd = osc_command(*args, cloud=cloud, drop_dac=drop_dac,
                      executable=executable)
    result = subprocess.run(cmd, capture_output=True, text=True,
                            env=env or osc_env(config_file),
                            stdin=subprocess.DEVNULL, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError('%s failed (rc %d):\n%s\n%s' % (
            ' '.join(cmd), result.returncode, result.stdout,
            result.stderr))
    return result


def osc_json(*args, **kwargs):
    """:func:`osc` with ``-f json``; return the parsed output."""
    return json.loads(osc(*(list(args) + ['-f', 'json']), **kwargs).stdout)


def one_row(parsed):
    """The one object a command printed with ``-f json``.

    A ShowOne prints a dict; a Lister of one row a list of one dict whose
    column names ("ID", "Name") are normalised here to the show form
    ("id", "name").
    """
    if isinstance(parsed, list):
        assert len(parsed) == 1, parsed
        return {k.lower().replace(' ', '_'): v
                for k, v in parsed[0].items()}
    return parsed


def poll(fetch, what, timeout=60, until=bool, interval=0.5):
    """Call ``fetch()`` until ``until(value)``; return that value.

    :param what: what is awaited, for the message when it does not come.
    :raises AssertionError: after ``timeout`` seconds, with the last value.
    """
    value = None
    try:
        for _count in sdk_utils.iterate_timeout(timeout, what, interval):
            value = fetch()
            if until(value):
                return value
    except sdk_exc.ResourceTimeout:
        pass
    raise AssertionError('timed out after %ss waiting for %s; last seen: %r'
                         % (timeout, what, value))


def image_json(conn, image_id):
    """The image as Glance shows it: extra properties at the top level."""
    return conn.image.get('/images/%s' % image_id).json()


def images(conn, prefix='', name=None):
    """Images (hidden or not) whose name starts with ``prefix``.

    :param name: only those of exactly this name.
    """
    query = {} if name is None else {'name': name}
    return [image for hidden in (False, True)
            for image in conn.image.images(is_hidden=hidden, **query)
            if (image.name or '').startswith(prefix)]


def register_test_isos(conn, conf, directory, prefix, kinds):
    """Register a bootable test installer ISO per kind, as ``conn``'s user.

    :param directory: where the ISO files are written.
    :param prefix: of the image names (``prefix + kind``); the volume ids
        are the upper-cased kinds.
    :param kinds: ``{kind: isoplugin.cfg dict}`` (tests/tools/
        make_test_iso.py: what the installer does).
    :returns: ``{kind: image id}``.
    """
    from isoplugin import catalog
    from tests.tools import make_test_iso

    cat = catalog.Catalog(conn, conf)
    out = {}
    for kind, cfg in kinds.items():
        path = os.path.join(str(directory), '%s.iso' % kind)
        # bootable (El Torito): a build refuses an ISO that is not
        make_test_iso.make_iso(path, volume_id='FT_' + kind.upper(),
                               isoplugin_cfg=cfg, eltorito=True)
        image = cat.create(prefix + kind, filename=path, os_type='linux',
                           os_distro='debian', os_version='12')
        out[kind] = getattr(image, 'id', None) or image['id']
    return out


def delete_images(conn, prefix, ids=()):
    """Delete the images ``ids`` and every other one named ``prefix*``."""
    for image_id in ids:
        conn.image.delete_image(image_id, ignore_missing=True)
    for image in images(conn, prefix):
        conn.image.delete_image(image.id, ignore_missing=True)


def assert_no_leftovers(conn, conf, build_id):
    """Nothing of build ``build_id`` is left (its build record included)."""
    from isoplugin import records

    left = records.find_resources(conn, conf, build_id)
    assert left == [], 'build %s left %r' % (build_id, left)


def start_build_driver(iso, name, pause='-', backend=None,
                       cloud='devcloud-demo'):
    """A child process driving one build (tests/functional/build_driver.py).

    :param pause: the phase at whose first wait it stops, ``-`` for none.
    :returns: ``(process, build id)``, once the build exists.
    """
    args = [sys.executable, '-m', 'tests.functional.build_driver', cloud,
            iso, name, pause] + ([backend] if backend else [])
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=osc_env(PYTHONPATH=ROOT), preexec_fn=interruptible)
    first = proc.stdout.readline().split()
    assert first and first[0] == 'BUILD', proc.stderr.read()
    return proc, first[1]


#: the phases a test kills a build's client in (all but the cleanup)
KILL_PHASES = ('prepare', 'boot', 'install', 'detach', 'snapshot', 'verify')


def wait_paused(proc, build_id):
    """Wait until the build driver of :func:`start_build_driver` pauses."""
    line = proc.stdout.readline().split()
    if line != ['PAUSED', build_id]:
        proc.kill()
        raise AssertionError('the build did not pause: %r\n%s'
                             % (line, proc.stderr.read()))


def assert_install_times_out(conn, conf, request):
    """The build of ``request`` times out in its install, leaving nothing.

    :param request: a :class:`isoplugin.build.BuildRequest` whose
        ``install_timeout`` is shorter than its installer takes.
    """
    from isoplugin import build
    from isoplugin import exception

    b = build.Build(conn, conf, request)
    try:
        b.run()
    except exception.BuildTimeout as e:
        assert e.kwargs['phase'] == 'install', e
    else:
        raise AssertionError('build %s did not time out' % b.id)
    assert_no_leftovers(conn, conf, b.id)


def kill_build_driver(conn, conf, proc, build_id):
    """SIGKILL the build driver; its build is then orphaned."""
    from isoplugin import records

    proc.kill()
    proc.wait()
    assert records.show_build(conn, conf, build_id).status == 'orphaned'


def delete_orphans(conn, conf, build_id, name):
    """``openstack iso build delete --orphans`` takes all of ``build_id``.

    :param name: the name of the build's output image: none is left.
    """
    result = osc('iso', 'build', 'delete', '--orphans')
    assert 'deleted %s' % build_id in result.stdout
    assert_no_leftovers(conn, conf, build_id)
    assert conn.image.find_image(name) is None


def wait_phase(conn, conf, build_id, phase, timeout=120):
    """Wait until the build record of ``build_id`` shows ``phase``."""
    from isoplugin import records

    builds = poll(
        lambda: records.list_builds(conn, conf, build_id),
        'build %s to show phase %s' % (build_id, phase), timeout,
        until=lambda builds: builds and builds[0].phase == phase)
    return builds[0]


CEPH_CONF = os.path.join(STATE_DIR, 'etc', 'ceph', 'ceph.conf')
CEPH_POOL, CEPH_USER = 'volumes', 'cinder'   # services/ceph.py


def assert_volume_output(conn, image_id):
    """The output of a nova-volume build: standalone, verified, clean.

    :returns: the image's fields (:func:`image_json`).
    """
    image = image_json(conn, image_id)
    assert image['status'] == 'active'
    # the data is in Glance: not a zero-byte image of Cinder snapshots
    assert image['size'] > 0
    assert 'block_device_mapping' not in image
    assert 'bdm_v2' not in image
    assert image['isoplugin_backend'] == 'nova-volume'
    assert image['isoplugin_verified'] == 'passed'
    for key in ('isoplugin_role', 'isoplugin_volume_state'):
        assert key not in image, key
    return image


def rbd_images():
    """The RBD images in Ceph's volume pool (``rbd ls``), as Cinder's user.

    :returns: a list of names (``volume-<id>``...); empty when the
        devcloud runs no Ceph.
    """
    if not os.path.exists(CEPH_CONF):
        return []
    p = subprocess.run(['rbd', '--conf', CEPH_CONF, '--id', CEPH_USER,
                        '--pool', CEPH_POOL, 'ls'],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError('rbd ls failed: %s' % p.stderr)
    return p.stdout.split()


class LeakCheck:
    """What a test left behind.

    Servers (all projects), images (all visible to admin, hidden ones
    included), Placement allocations (consumers), and with Cinder
    (``tools/devcloud set volumes=ceph``) volumes, volume snapshots and
    the RBD images of Ceph's volume pool (None: the devcloud has no
    Cinder).
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
                i.id: '%s (%s)' % (i.name, i.status) for i in images(c)
            },
            'allocations': {},
            'volumes': None,
            'volume_snapshots': None,
            'rbd_images': None,
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
            out['volume_snapshots'] = {
                s.id: s.name
                for s in c.block_storage.snapshots(all_projects=True)
            }
            out['rbd_images'] = {name: name for name in rbd_images()}
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

    def left(self):
        """What is new since the baseline, by kind (kinds with none out)."""
        return {k: v for k, v in self.new_since_baseline().items() if v}

    def assert_clean(self, timeout=60):
        """Wait up to timeout seconds for everything new to disappear."""
        poll(self.left, 'nothing left behind', timeout,
             until=lambda left: not left, interval=1)
