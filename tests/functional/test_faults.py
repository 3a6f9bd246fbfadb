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

"""Faults of a real cloud during uploads and builds (the fault suite).

Every case runs the real CLI (``openstack iso create``, ``openstack iso
build create``) against the local OpenStack in fake mode, breaks the cloud
at a chosen moment, and asserts the outcome the user sees: an automatic
recovery (exit 0, the image active) or one clear line naming the problem
(exit 1, no traceback), then zero servers, images and allocations left
after the documented cleanup command (``base.LeakCheck``).

The cases: Glance, Keystone, Nova's API and RabbitMQ restarted at the
first wait of every build phase they take part in (one build each),
Glance and Keystone restarted during an upload, nova-compute restarted
during the install, Nova's API answering nothing during the install
(``[isoplugin] api_timeout``), a Keystone token that expires during an
upload and during a build (``tools/devcloud set token_expiration=15``),
the client SIGKILLed during an upload then ``iso delete --incomplete``,
Glance's store full during an upload (``tools/devcloud set
glance_small_store=64M``), the image quota full at the snapshot and at
``iso prepare`` (a Keystone unified limit of the demo project).

The moment is made deterministic by :data:`HOOK`: the CLI runs in a child
whose upload stops after a few chunks, and whose build stops at the first
wait of the phases named, until the test says go. The test restarts a
service with ``tools/devcloud restart SERVICE``, lets the CLI go on as soon
as the service is down (so that the CLI meets the outage, not only a
fresh service), then waits until ``tools/devcloud`` says everything is up
again. The suite stops services of the shared cloud: run it under
``flock /tmp/isoplugin-devcloud.lock`` like every functional test.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.functional import base
from tests.tools import make_test_iso

PREFIX = 'faultft-%s-' % uuid.uuid4().hex[:6]
MARK = '@@isoplugin-faultft-stop'

# The CLI, stopping where ISOPLUGIN_FT_STOPS says ("upload" after the 4th
# chunk of an upload, or a build phase at its first wait): it prints MARK
# and the place on stderr and reads a line from stdin before going on.
HOOK = r'''
import os
import sys

from isoplugin import build
from isoplugin import upload

stops = [s for s in os.environ['ISOPLUGIN_FT_STOPS'].split(',') if s]


def stop(where):
    sys.stderr.write('%s %s\n' % (os.environ['ISOPLUGIN_FT_MARK'], where))
    sys.stderr.flush()
    sys.stdin.readline()


iterate = upload.HashingBody.__iter__


def chunks(self):
    for n, chunk in enumerate(iterate(self)):
        if n == 4 and 'upload' in stops:
            stops.remove('upload')
            stop('upload')
        yield chunk


upload.HashingBody.__iter__ = chunks
wait = build.Build.wait


def stopping_wait(self, probe, what, timeout, *args, **kwargs):
    if self.phase in stops:
        stops.remove(self.phase)
        stop('%s %s' % (self.phase, self.id))
    return wait(self, probe, what, timeout, *args, **kwargs)


build.Build.wait = stopping_wait
from openstackclient import shell  # noqa: E402
sys.exit(shell.main(sys.argv[1:]))
'''


def _pump(stream, into):
    for line in iter(stream.readline, ''):
        into.put(line)
    into.put(None)


class StoppingCLI:
    """``openstack ARGS`` in a child that stops at ``stops`` (see HOOK).

    :param stops: ``'upload'`` and/or build phases.
    :param config_file: isoplugin configuration file.
    """

    def __init__(self, *args, stops=(), config_file=None):
        cmd = [sys.executable, '-c', HOOK] + base.osc_command(*args)[1:]
        env = base.osc_env(config_file, PYTHONPATH=base.ROOT,
                           ISOPLUGIN_FT_STOPS=','.join(stops),
                           ISOPLUGIN_FT_MARK=MARK)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=base.interruptible)
        self._err = queue.Queue()
        self._out = queue.Queue()
        self.err_lines = []
        for stream, into in ((self.proc.stderr, self._err),
                             (self.proc.stdout, self._out)):
            threading.Thread(target=_pump, args=(stream, into),
                             daemon=True).start()

    def stopped(self, timeout=180):
        """Wait for the next stop; return its place, None if it exited."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self._err.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                self._err.put(None)
                return None
            if line.startswith(MARK):
                return line[len(MARK):].split()
            self.err_lines.append(line)
        raise AssertionError('the CLI did not stop within %ss; stderr so '
                             'far:\n%s' % (timeout, ''.join(self.err_lines)))

    def go(self):
        self.proc.stdin.write('\n')
        self.proc.stdin.flush()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def finish(self, timeout=600):
        """Wait for the exit; return (returncode, stdout, stderr)."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.kill()
        while self.stopped(timeout=60) is not None:
            self.go()  # a stop the test did not expect: let it go on
        out = []
        for line in iter(self._out.get, None):
            out.append(line)
        return self.proc.returncode, ''.join(out), ''.join(self.err_lines)


class Restart:
    """``tools/devcloud restart SERVICE``, running in the background."""

    def __init__(self, service):
        self.service = service
        self.proc = subprocess.Popen(
            [base.DEVCLOUD, 'restart', service], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines),
                         daemon=True).start()

    def _next(self, end):
        line = self.lines.get(timeout=max(end - time.monotonic(), 0.1))
        if line is not None:
            self.output.append(line)
        return line

    def wait_down(self, timeout=90):
        """Until devcloud says the service is stopped."""
        end = time.monotonic() + timeout
        needle = 'stopped %s ' % self.service
        while True:
            line = self._next(end)
            if line is None or needle in line:
                assert line is not None, ''.join(self.output)
                return

    def wait_up(self, timeout=400):
        """Until the restart is over and every service is up."""
        self.proc.wait(timeout)
        end = time.monotonic() + 30
        while self._next(end) is not None:
            pass
        assert self.proc.returncode == 0, ''.join(self.output)
        base.poll(base.Devcloud().is_up, 'tools/devcloud status: all up',
                  120, interval=2)


class RabbitRestart(Restart):
    """RabbitMQ's broker stopped and started (``rabbitmqctl``).

    RabbitMQ is a system daemon devcloud shares rather than runs, so
    ``tools/devcloud restart`` does not take it: the broker application is
    stopped and started inside its running node, which closes every AMQP
    connection as a restart does (Nova's services reconnect). The
    devcloud's services use quorum queues, as deployments do: a message
    sent while the service that takes it reconnects waits in its queue
    (with classic queues it was routed to none and dropped). It is stopped
    once the build's servers have no task under way: the outage is meant
    for the CLI's next requests, which Nova's API can only serve through
    RabbitMQ, and for the actions they start while the services
    reconnect.
    """

    PAUSE = 5  # seconds the broker stays down

    def __init__(self, service='rabbitmq', build_id=None):
        self.service = service
        self.build_id = build_id
        self.output = []

    def _ctl(self, action):
        done = subprocess.run(['rabbitmqctl', '-q', action], text=True,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120)
        self.output.append(done.stdout)
        assert done.returncode == 0, ''.join(self.output)

    def _settled(self):
        conn = base.connect('demo')
        return [s for s in conn.compute.servers(
                    name='^isoplugin-.*-%s$' % self.build_id)
                if s.task_state or s.status == 'BUILD']

    def wait_down(self, timeout=90):
        if self.build_id:
            base.poll(self._settled, 'the build servers without a task',
                      timeout, until=lambda busy: not busy)
        self._ctl('stop_app')

    def wait_up(self, timeout=400):
        time.sleep(self.PAUSE)  # the CLI meets the outage
        self._ctl('start_app')
        base.poll(base.Devcloud().is_up, 'tools/devcloud status: all up',
                  120, interval=2)


def restarter(service, where=None):
    """How ``service`` is restarted when the CLI stopped at ``where``."""
    if service == 'rabbitmq':
        return RabbitRestart(service, where[1] if where and len(where) > 1
                             else None)
    return Restart(service)


def restart_at(cli, service, stops):
    """At each of ``stops`` of ``cli``, restart ``service`` as it waits.

    :returns: the places the CLI stopped at (fewer when it exited early).
    """
    seen = []
    for _expected in stops:
        where = cli.stopped()
        if where is None:
            break
        seen.append(where)
        restart = restarter(service, where)
        try:
            restart.wait_down()
        finally:
            cli.go()
            restart.wait_up()
    return seen


def last_line(err):
    """The last line of stderr: the error of a failed command."""
    lines = [x for x in err.splitlines() if x.strip()]
    return lines[-1] if lines else ''


def assert_clear_error(rc, err, *words):
    """Exit 1, no traceback, the last line names the problem."""
    assert rc == 1, err
    assert 'Traceback' not in err, err
    line = last_line(err)
    for word in words:
        assert word in line, (word, line)
    return line


# -- fixtures ----------------------------------------------------------------

@pytest.fixture(scope='module')
def isos(devcloud, tmp_path_factory):
    """ISOs registered as demo: a 2 s installer, an 8 s one, a big file."""
    d = tmp_path_factory.mktemp('isos')
    out = {}
    for kind, delay in (('fast', '2'), ('slow', '8')):
        path = str(d / ('%s.iso' % kind))
        make_test_iso.make_iso(path, volume_id='FAULTFT_' + kind.upper(),
                               eltorito=True,
                               isoplugin_cfg={'action': 'install',
                                              'delay': delay})
        out[kind] = base.osc_json('iso', 'create', PREFIX + kind, '--file',
                                  path, '--no-progress')['id']
    big = str(d / 'big.iso')
    make_test_iso.make_iso(big, volume_id='FAULTFT_BIG')
    os.truncate(big, 256 << 20)  # sparse
    out['big-file'] = big
    yield out
    admin = base.connect('admin')
    for image in base.images(admin, PREFIX):
        admin.image.delete_image(image.id, ignore_missing=True)


def _build_args(iso, name, verify):
    return ('iso', 'build', 'create', iso, '--name', name, '--flavor',
            'm1.tiny', '--verify' if verify else '--no-verify', '-f', 'json')


def _name(what):
    return '%s%s-%s' % (PREFIX, what, uuid.uuid4().hex[:4])


# -- service restarts ---------------------------------------------------------

#: the build phases each service takes part in (the client's requests, or
#: the cloud's own work: Nova downloads images from Glance and uploads the
#: snapshot, every request is checked against Keystone; RabbitMQ carries
#: every server action from Nova's API to nova-compute and nova-compute's
#: calls to the conductor).
TOUCHES = {
    'glance': ('prepare', 'boot', 'install', 'snapshot', 'verify'),
    'keystone': ('prepare', 'boot', 'install', 'detach', 'snapshot',
                 'verify'),
    'nova-api': ('boot', 'install', 'detach', 'snapshot', 'verify'),
    'rabbitmq': ('boot', 'install', 'detach', 'snapshot', 'verify'),
}


@pytest.mark.parametrize('service', sorted(TOUCHES))
def test_restart_during_every_phase(service, isos, config_file, leak_check,
                                    demo_conn):
    # One build; the service is restarted at each phase it takes part in.
    stops = TOUCHES[service]
    cli = StoppingCLI(*_build_args(isos['fast'], _name(service), True),
                      stops=stops, config_file=config_file)
    seen = restart_at(cli, service, stops)
    rc, out, err = cli.finish()

    assert [w[0] for w in seen] == list(stops), (seen, err)
    assert rc == 0, err
    image = base.one_row(json.loads(out))
    assert demo_conn.image.get_image(image['id']).status == 'active'
    demo_conn.image.delete_image(image['id'])
    leak_check.assert_clean()


def test_glance_restart_during_upload(isos, leak_check):
    cli = StoppingCLI('iso', 'create', _name('upload-glance'), '--file',
                      isos['big-file'], '--no-progress', '-f', 'json',
                      stops=['upload'])
    restart_at(cli, 'glance', ['upload'])
    rc, _out, err = cli.finish()

    assert_clear_error(rc, err, 'Glance')
    leak_check.assert_clean()


def test_keystone_restart_during_upload(isos, leak_check, demo_conn):
    cli = StoppingCLI('iso', 'create', _name('upload-keystone'), '--file',
                      isos['big-file'], '--no-progress', '-f', 'json',
                      stops=['upload'])
    restart_at(cli, 'keystone', ['upload'])
    rc, out, err = cli.finish()

    assert rc == 0, err
    image_id = json.loads(out)['id']
    assert demo_conn.image.get_image(image_id).status == 'active'
    base.osc('iso', 'delete', image_id, '--yes')
    leak_check.assert_clean()


def _build_server(conn, build_id):
    servers = list(conn.compute.servers(name='^isoplugin-build-%s$'
                                        % build_id))
    return servers[0] if servers else None


def test_nova_compute_restart_during_install(isos, config_file, leak_check,
                                             demo_conn):
    # The fake driver's installer is a thread of nova-compute: it does not
    # survive the restart (a real guest would), so the install never ends
    # and the build must end with its install timeout, cleaned up.
    cli = StoppingCLI(*_build_args(isos['slow'], _name('compute'), False),
                      '--install-timeout', '30', stops=['install'],
                      config_file=config_file)
    where = cli.stopped()
    assert where and where[0] == 'install', cli.err_lines
    base.poll(lambda: _build_server(demo_conn, where[1]),
              'the build server in RESCUE', 60,
              until=lambda s: s and s.status == 'RESCUE' and
              not s.task_state)
    restart = Restart('nova-compute')
    try:
        restart.wait_down()
    finally:
        cli.go()
        restart.wait_up()
    rc, _out, err = cli.finish()

    line = assert_clear_error(rc, err, where[1], 'install')
    assert 'RESCUE' in line, line
    leak_check.assert_clean()


def _freeze(name):
    """SIGSTOP the devcloud process ``name`` and its children.

    A stopped server still accepts connections (the kernel queues them)
    and never answers: a service stuck on RabbitMQ or its database.
    """
    master = base.Devcloud().pid(name)
    assert master, name
    children = subprocess.run(['pgrep', '-P', str(master)], text=True,
                              stdout=subprocess.PIPE).stdout.split()
    pids = [master] + [int(p) for p in children]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def _thaw(pids):
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def test_nova_api_hangs_during_install(isos, tmp_path, leak_check):
    # Nova's API takes requests and answers none (as when it waits for
    # RabbitMQ): each request ends after api_timeout, is retried once,
    # and the build fails in one line instead of waiting for ever. Its
    # cleanup cannot reach Nova either: "iso build delete" finishes it.
    conf = tmp_path / 'isoplugin.conf'
    conf.write_text('[isoplugin]\npoll_interval = 0.5\n'
                    'poll_max_interval = 2\napi_timeout = 3\n'
                    '[compute]\nconnect_retries = 1\n'
                    'connect_retry_delay = 1\n')
    cli = StoppingCLI(*_build_args(isos['fast'], _name('hang'), False),
                      stops=['install'], config_file=str(conf))
    where = cli.stopped()
    assert where and where[0] == 'install', cli.err_lines
    pids = _freeze('nova-api')
    try:
        cli.go()
        rc, _out, err = cli.finish(timeout=300)
    finally:
        _thaw(pids)

    assert_clear_error(rc, err, where[1], 'install', 'Nova did not answer',
                       'api_timeout')
    # one short line per series of retries, keystoneauth's own not shown
    assert 'Retrying in' not in err, err
    assert 'retrying, 1 tries left' in err, err
    base.osc('iso', 'build', 'delete', where[1])
    leak_check.assert_clean()


def test_sigkill_during_upload_then_delete_incomplete(isos, leak_check):
    name = _name('sigkill')
    cli = StoppingCLI('iso', 'create', name, '--file', isos['big-file'],
                      '--no-progress', stops=['upload'])
    assert cli.stopped() == ['upload'], cli.err_lines
    cli.kill()

    listed = base.osc_json('iso', 'list', '--incomplete')
    assert name in [row['Name'] for row in listed], listed
    result = base.osc('iso', 'delete', '--incomplete')

    assert name in result.stdout
    leak_check.assert_clean()


def _devcloud_set(assignment):
    base.Devcloud().run('set', assignment)
    base.poll(base.Devcloud().is_up, 'tools/devcloud status: all up', 120,
              interval=2)


class TestTokenExpires:
    """Keystone tokens that live 15 s (tools/devcloud set)."""

    LIFETIME = 15

    @pytest.fixture(scope='class', autouse=True)
    def short_tokens(self, devcloud):
        _devcloud_set('token_expiration=%d' % self.LIFETIME)
        yield
        _devcloud_set('token_expiration=')

    def _expire(self, cli, stop):
        where = cli.stopped()
        assert where and where[0] == stop, cli.err_lines
        time.sleep(self.LIFETIME + 2)  # the token of the request expires
        cli.go()
        return cli.finish()

    def test_during_upload(self, isos, leak_check):
        cli = StoppingCLI('iso', 'create', _name('token'), '--file',
                          isos['big-file'], '--no-progress', '-f', 'json',
                          stops=['upload'])
        rc, out, err = self._expire(cli, 'upload')

        assert rc == 0, err
        base.osc('iso', 'delete', json.loads(out)['id'], '--yes')
        leak_check.assert_clean()

    def test_during_build(self, isos, config_file, leak_check, demo_conn):
        cli = StoppingCLI(*_build_args(isos['slow'], _name('token'), False),
                          stops=['install'], config_file=config_file)
        rc, out, err = self._expire(cli, 'install')

        assert rc == 0, err
        demo_conn.image.delete_image(base.one_row(json.loads(out))['id'])
        leak_check.assert_clean()


class TestGlanceStoreFull:
    """Glance's default store a 64 MiB tmpfs (tools/devcloud set)."""

    @pytest.fixture(scope='class', autouse=True)
    def small_store(self, devcloud):
        _devcloud_set('glance_small_store=64M')
        yield
        _devcloud_set('glance_small_store=')

    def test_upload(self, isos, leak_check):
        result = base.osc('iso', 'create', _name('full'), '--file',
                          isos['big-file'], '--no-progress', check=False)

        line = assert_clear_error(result.returncode, result.stderr,
                                  'store', 'full')
        assert 'quota' not in line, line
        leak_check.assert_clean()


class TestImageQuota:
    """A full image quota (Keystone unified limits).

    The demo project's image_count_total is set to the images it has, so
    that the next image Glance is asked to create is refused.
    """

    @pytest.fixture
    def full_quota(self, admin_conn, demo_conn):
        idn = admin_conn.identity
        service = next(s for s in idn.services() if s.type == 'image')
        project = demo_conn.current_project_id
        made = []

        def fill():
            count = sum(len(list(demo_conn.image.images(
                owner=project, is_hidden=hidden))) for hidden in (False, True))
            made.append(idn.create_limit(
                service_id=service.id, project_id=project,
                region_id='RegionOne', resource_name='image_count_total',
                resource_limit=count))
            return count

        yield fill
        for limit in made:
            idn.delete_limit(limit)

    def test_snapshot(self, isos, config_file, leak_check, full_quota):
        cli = StoppingCLI(*_build_args(isos['fast'], _name('quota'), False),
                          stops=['detach'], config_file=config_file)
        where = cli.stopped()
        assert where and where[0] == 'detach', cli.err_lines
        full_quota()
        cli.go()
        rc, _out, err = cli.finish()

        assert_clear_error(rc, err, 'snapshot', 'quota')
        leak_check.assert_clean()

    def test_prepared_iso(self, devcloud, tmp_path, leak_check, full_quota):
        from tests.tools import make_distro_iso

        path = make_distro_iso.make('debian', str(tmp_path / 'debian.iso'))
        iso = base.osc_json('iso', 'create', _name('quota-debian'),
                            '--file', path, '--no-progress')
        leak_check.baseline['images'][iso['id']] = iso['name']
        try:
            full_quota()
            result = base.osc('iso', 'prepare', iso['id'], '--profile',
                              'debian', check=False)
        finally:
            base.osc('iso', 'delete', iso['id'], '--yes', check=False)

        assert_clear_error(result.returncode, result.stderr, 'quota')
        leak_check.assert_clean()
