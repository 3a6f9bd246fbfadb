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

"""The build pipeline against the local OpenStack (tools/devcloud).

Builds run as the demo user with the nova-rescue backend; the fake compute
driver plays the installer from /ISOPLUGIN.CFG. Every test checks that its
own build left nothing behind (by build id; other engineers share the
cloud), and the failure tests check the error names the phase and carries
the cloud's own fault message.
"""

import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from isoplugin import build as build_mod
from isoplugin import catalog
from isoplugin import exception
from tests.functional import base
from tests.tools import make_test_iso

PREFIX = 'bldft-%s-' % uuid.uuid4().hex[:6]
NOVA_API_LOG = os.path.join(base.Devcloud.logs_dir, 'nova-api.log')
NOVA_COMPUTE_LOG = os.path.join(base.Devcloud.logs_dir, 'nova-compute.log')


@pytest.fixture(scope='module')
def isos(demo_conn, conf, tmp_path_factory):
    """ISOs registered as demo, one per installer behaviour."""
    d = tmp_path_factory.mktemp('isos')
    kinds = {
        'install': {'action': 'install', 'delay': '2'},
        'slow': {'action': 'install', 'delay': '25'},
        'fail': {'action': 'fail', 'message': 'BLDFT-MEDIUM-BROKEN'},
        'hang': {'action': 'hang'},
        'snapfail': {'action': 'install', 'delay': '1',
                     'snapshot': 'fail'},
        'nomarker': {'action': 'install', 'delay': '1',
                     'marker': 'NOTHING-TO-SEE'},
    }
    out = base.register_test_isos(demo_conn, conf, d, PREFIX, kinds)
    yield out
    base.delete_images(demo_conn, PREFIX, out.values())


def _build(conn, conf, iso, **kwargs):
    kwargs.setdefault('flavor', 'm1.tiny')
    kwargs.setdefault('name', PREFIX + uuid.uuid4().hex[:6])
    return build_mod.Build(conn, conf, build_mod.BuildRequest(
        iso=iso, **kwargs))


def _nova_api_line(request_id):
    with open(NOVA_API_LOG) as f:
        for line in f:
            if request_id in line and 'microversion' in line:
                return line
    return None


# -- success ---------------------------------------------------------------

def test_full_build_from_the_command_line(demo_conn, admin_conn, conf, isos):
    name = PREFIX + 'full'
    result = base.osc('iso', 'build', 'create', PREFIX + 'install',
                      '--name', name, '--flavor', 'm1.tiny', '--verify',
                      '--tag', 'bldft', '-f', 'json')
    # one ISO: one object (a ShowOne, or a Lister of one row)
    shown = base.one_row(json.loads(result.stdout))
    image = base.image_json(demo_conn, shown['id'])
    build_id = image['isoplugin_build_id']

    assert image['status'] == 'active'
    assert image['name'] == name
    assert image['tags'] == ['bldft']
    assert image['os_distro'] == 'debian'
    assert image['os_version'] == '12'
    assert image['os_type'] == 'linux'
    assert image['min_disk'] == 1
    assert image['hw_disk_bus'] == 'virtio'
    assert image['isoplugin_source_iso_id'] == isos['install']
    iso = base.image_json(demo_conn, isos['install'])
    assert image['isoplugin_source_iso_hash'] == '%s:%s' % (
        iso['os_hash_algo'], iso['os_hash_value'])
    assert image['isoplugin_backend'] == 'nova-rescue'
    assert image['isoplugin_version']
    assert image['isoplugin_build_time'].endswith('Z')
    assert image['isoplugin_verified'] == 'passed'
    for key in ('hw_rescue_device', 'hw_rescue_bus', 'hw_cdrom_bus',
                'isoplugin_media', 'isoplugin_role', 'instance_uuid',
                'base_image_ref'):
        assert key not in image, key
    # every phase on the terminal
    for phase in build_mod.PHASES:
        assert '%s %-8s phase-start' % (build_id, phase) in result.stderr
    base.assert_no_leftovers(demo_conn, conf, build_id)

    # Nova received a rescue with the ISO, at microversion 2.87: the build
    # server (deleted now) as admin, its instance actions, and nova-api's
    # log line for that very request.
    servers = list(admin_conn.compute.servers(
        all_projects=True, deleted=True,
        name='isoplugin-build-' + build_id))
    assert len(servers) == 1 and servers[0].status == 'DELETED'
    actions = admin_conn.compute.get(
        '/servers/%s/os-instance-actions' % servers[0].id,
        microversion='2.84').json()['instanceActions']
    names = [a['action'] for a in actions]
    assert names.count('rescue') == 1
    for expected in ('create', 'unrescue', 'stop', 'createImage',
                     'delete'):
        assert expected in names
    rescue = [a for a in actions if a['action'] == 'rescue'][0]
    url = '/servers/%s/os-instance-actions/%s' % (servers[0].id,
                                                  rescue['request_id'])
    detail = admin_conn.compute.get(url, microversion='2.84').json()[
        'instanceAction']
    assert [e['result'] for e in detail['events']] == ['Success']
    line = _nova_api_line(rescue['request_id'])
    assert line is not None and '/action' in line
    microversion = re.search(r'microversion: (\d+)\.(\d+)', line)
    assert (int(microversion.group(1)), int(microversion.group(2))) >= \
        (2, 87), line
    # the ISO was the rescue image: the fake driver logged it on the
    # console of the build server... which is gone; the compute log has it
    with open(NOVA_COMPUTE_LOG) as f:
        text = f.read()
    assert isos['install'] in text
    demo_conn.image.delete_image(image['id'])


# -- failures ----------------------------------------------------------------

def test_server_error_names_phase_and_fault(demo_conn, conf, isos):
    b = _build(demo_conn, conf, isos['fail'], verify=False)

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert e.value.kwargs['phase'] == 'install'
    assert 'BLDFT-MEDIUM-BROKEN' in str(e.value)
    assert 'cannot be rescued' in str(e.value)
    base.assert_no_leftovers(demo_conn, conf, b.id)


def test_install_timeout(demo_conn, conf, isos):
    b = _build(demo_conn, conf, isos['hang'], install_timeout=6,
               verify=False)

    with pytest.raises(exception.BuildTimeout) as e:
        b.run()

    assert e.value.kwargs['phase'] == 'install'
    assert 'RESCUE' in str(e.value)
    base.assert_no_leftovers(demo_conn, conf, b.id)


def test_snapshot_failure(demo_conn, conf, isos):
    b = _build(demo_conn, conf, isos['snapfail'], verify=False)

    with pytest.raises(exception.BuildFailed) as e:
        b.run()

    assert e.value.kwargs['phase'] == 'snapshot'
    assert 'createImage' in str(e.value)
    base.assert_no_leftovers(demo_conn, conf, b.id)
    assert demo_conn.image.find_image(b.request.name) is None


def test_verify_failure_deletes_the_image(demo_conn, conf, isos):
    conf.set_override('verify_timeout', 10, 'isoplugin')
    try:
        b = _build(demo_conn, conf, isos['nomarker'], verify=True)
        with pytest.raises(exception.VerifyFailed) as e:
            b.run()
    finally:
        conf.clear_override('verify_timeout', 'isoplugin')

    assert e.value.kwargs['phase'] == 'verify'
    base.assert_no_leftovers(demo_conn, conf, b.id)
    assert demo_conn.image.find_image(b.request.name) is None


def _driver(iso, pause='-', name=None):
    name = name or PREFIX + uuid.uuid4().hex[:6]
    proc, build_id = base.start_build_driver(iso, name, pause)
    return proc, build_id, name


def test_sigint_during_install_cleans_up(demo_conn, conf, isos):
    proc, build_id, _name = _driver(isos['hang'])
    base.wait_phase(demo_conn, conf, build_id, 'install')

    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)

    assert proc.returncode != 0
    assert 'interrupted in phase install' in err
    base.assert_no_leftovers(demo_conn, conf, build_id)


def _kill_in(conn, conf, iso, phase):
    proc, build_id, name = _driver(iso, pause=phase)
    if phase == 'install':  # a real wait: the installer takes 25 s
        base.wait_phase(conn, conf, build_id, 'install')
        time.sleep(2)
    else:
        base.wait_paused(proc, build_id)
        if phase != 'prepare':  # prepare has no server yet: images only
            base.wait_phase(conn, conf, build_id, phase)
    base.kill_build_driver(conn, conf, proc, build_id)
    return build_id, name


@pytest.mark.parametrize('phase', base.KILL_PHASES)
def test_sigkill_then_delete_orphans(demo_conn, conf, isos, phase):
    iso = isos['slow'] if phase == 'install' else isos['install']
    build_id, name = _kill_in(demo_conn, conf, iso, phase)

    base.delete_orphans(demo_conn, conf, build_id, name)


@pytest.mark.parametrize('phase', base.KILL_PHASES)
def test_sigkill_then_resume(demo_conn, conf, isos, phase):
    iso = isos['slow'] if phase == 'install' else isos['install']
    build_id, name = _kill_in(demo_conn, conf, iso, phase)

    result = base.osc('iso', 'build', 'resume', build_id, '-f', 'json')

    shown = base.one_row(json.loads(result.stdout))
    image = base.image_json(demo_conn, shown['id'])
    assert image['status'] == 'active'
    assert image['name'] == name
    assert image['isoplugin_build_id'] == build_id
    assert image['isoplugin_verified'] == 'passed'
    assert 'isoplugin_role' not in image
    base.assert_no_leftovers(demo_conn, conf, build_id)
    demo_conn.image.delete_image(image['id'])


def test_build_list_show_and_finish(demo_conn, conf, isos, tmp_path):
    # An interactive install: the "installer" writes the disk and waits
    # for the person, who says it is done with `iso build finish`.
    path = str(tmp_path / 'human.iso')
    make_test_iso.make_iso(path, volume_id='BLDFT_HUMAN', eltorito=True,
                           isoplugin_cfg={'action': 'install', 'delay': 0,
                                          'poweroff': 'no'})
    iso = catalog.Catalog(demo_conn, conf).create(PREFIX + 'human',
                                                  filename=path)
    iso_id = getattr(iso, 'id', None) or iso['id']
    b = _build(demo_conn, conf, iso_id, verify=False, interactive=True)
    events = []
    b.progress = events.append
    import threading

    result = {}
    worker = threading.Thread(target=lambda: result.update(
        image=b.run()))
    worker.start()
    try:
        base.wait_phase(demo_conn, conf, b.id, 'install')
        listed = base.osc_json('iso', 'build', 'list')
        rows = {r['Build']: r for r in listed}
        assert rows[b.id]['Status'] == 'running'
        assert rows[b.id]['Phase'] == 'install'
        shown = base.osc_json('iso', 'build', 'show', b.id)
        assert shown['iso_id'] == iso_id
        base.osc('iso', 'build', 'finish', b.id)
        worker.join(180)
    finally:
        b.cancelled.set()
        worker.join(180)
        demo_conn.image.delete_image(iso_id, ignore_missing=True)
    console = [e for e in events if e['event'] in ('console', 'warning')]
    assert result.get('image') is not None, events[-3:]
    assert console  # the URL was offered (or why not)
    base.assert_no_leftovers(demo_conn, conf, b.id)
    demo_conn.image.delete_image(result['image'].id)


# -- issue 11: surprising input, signals -------------------------------------

def _one_line_error(result):
    """The CLI's error: its last stderr line, with no traceback before."""
    assert result.returncode != 0, result.stdout
    assert 'Traceback' not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def _build_ids(stderr):
    return sorted(set(re.findall(r'^(b-[0-9a-f]{10}) ', stderr, re.M)))


def test_an_iso_that_cannot_boot_is_refused_at_once(demo_conn, conf,
                                                    leak_check, tmp_path):
    # a data-only ISO: no El Torito boot record (issue 11, finding 4)
    path = str(tmp_path / 'data.iso')
    make_test_iso.make_iso(path, volume_id='BLDFT_DATA',
                           isoplugin_cfg={'action': 'hang'})
    base.osc('iso', 'create', PREFIX + 'data', '--file', path)
    iso = base.images(demo_conn, name=PREFIX + 'data')[0]
    try:
        # registration read the boot catalog and says so
        assert base.image_json(demo_conn, iso.id)[
            'isoplugin_bootable'] == 'false'

        result = base.osc('iso', 'build', 'create', PREFIX + 'data',
                          '--name', PREFIX + 'from-data', '--flavor',
                          'm1.tiny', '--no-verify', check=False)

        error = _one_line_error(result)
        assert 'failed in phase prepare' in error
        assert 'has no El Torito boot record' in error
        # refused before the build made anything: no record, no server
        assert 'boot     phase-start' not in result.stderr
        for build_id in _build_ids(result.stderr):
            base.assert_no_leftovers(demo_conn, conf, build_id)
    finally:
        demo_conn.image.delete_image(iso.id, ignore_missing=True)
    leak_check.assert_clean()


def test_a_second_build_of_the_same_name_is_refused(demo_conn, conf, isos,
                                                    leak_check):
    # issue 11, finding 6
    name = PREFIX + 'twice'
    args = ('iso', 'build', 'create', PREFIX + 'install', '--name', name,
            '--flavor', 'm1.tiny', '--no-verify')
    first = base.one_row(base.osc_json(*args))
    try:
        result = base.osc(*args, check=False)

        error = _one_line_error(result)
        assert ("already has an image named '%s' (%s)" % (name, first['id'])
                in error), error
        assert 'openstack image delete %s' % first['id'] in error
        assert 'failed in phase prepare' in error
        # refused before anything was made; one image of that name
        assert 'boot     phase-start' not in result.stderr
        assert [i.id for i in base.images(demo_conn, name=name)] == [
            first['id']]
    finally:
        demo_conn.image.delete_image(first['id'], ignore_missing=True)
    leak_check.assert_clean()


def test_a_build_of_the_name_another_build_makes_is_refused(demo_conn, conf,
                                                            isos):
    name = PREFIX + 'racing'
    first = _build(demo_conn, conf, isos['hang'], name=name, verify=False)
    import threading

    worker = threading.Thread(target=lambda: pytest.raises(
        exception.BuildInterrupted, first.run))
    worker.start()
    try:
        base.wait_phase(demo_conn, conf, first.id, 'install')
        second = _build(demo_conn, conf, isos['install'], name=name,
                        verify=False)
        with pytest.raises(exception.BuildFailed) as e:
            second.run()
    finally:
        first.cancelled.set()
        worker.join(180)

    assert e.value.kwargs['phase'] == 'prepare'
    assert ("build %s is already making an image named '%s'"
            % (first.id, name)) in str(e.value)
    assert 'openstack iso build delete %s' % first.id in str(e.value)
    for b in (first, second):
        base.assert_no_leftovers(demo_conn, conf, b.id)


def test_an_install_that_writes_nothing_fails_at_once(demo_conn, conf, isos,
                                                      leak_check):
    """Finding 7: the server powers off, the disk was never written.

    The fake installer always writes the disk; a live CD's power-off is
    played here through the API: the build server leaves rescue (the
    installer is gone) and is stopped, so the build sees a server powered
    off after install and snapshots a disk nobody wrote.
    """
    conf.set_override('verify_timeout', 60, 'isoplugin')
    b = _build(demo_conn, conf, isos['hang'], verify=True)
    import threading

    result = {}

    def run():
        try:
            result['image'] = b.run()
        except exception.BuildFailed as e:
            result['error'] = e

    worker = threading.Thread(target=run)
    worker.start()
    try:
        base.wait_phase(demo_conn, conf, b.id, 'install')
        server = base.poll(
            lambda: b.resources.server_id and demo_conn.compute.get_server(
                b.resources.server_id),
            'the build server in RESCUE', 60,
            until=lambda s: s and s.status == 'RESCUE' and not s.task_state)
        demo_conn.compute.unrescue_server(server)
        demo_conn.compute.wait_for_server(server, status='ACTIVE', wait=60)
        demo_conn.compute.stop_server(server)
        worker.join(240)
    finally:
        b.cancelled.set()
        worker.join(60)
        conf.clear_override('verify_timeout', 'isoplugin')

    error = result.get('error')
    assert error is not None, result
    assert error.kwargs['phase'] == 'snapshot', error
    assert 'without writing anything to the system disk' in str(error)
    base.assert_no_leftovers(demo_conn, conf, b.id)
    assert demo_conn.image.find_image(b.request.name) is None
    leak_check.assert_clean()


def _cli_until_install(*args, count=1):
    """Start ``openstack iso build create ARGS`` and read its progress.

    :returns: the process and its build ids, once ``count`` builds show
        the install phase, and the progress lines read so far.
    """
    proc = subprocess.Popen(
        base.osc_command('iso', 'build', 'create', *args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=base.osc_env(), stdin=subprocess.DEVNULL,
        preexec_fn=base.interruptible)
    seen = []
    installing = set()
    while len(installing) < count:
        line = proc.stderr.readline()
        assert line, 'the command ended early:\n' + ''.join(seen)
        seen.append(line)
        match = re.match(r'(b-[0-9a-f]{10}) install +phase-start', line)
        if match:
            installing.add(match.group(1))
    return proc, sorted(installing), ''.join(seen)


@pytest.mark.parametrize('signum,isos_given', [
    (signal.SIGTERM, 1), (signal.SIGTERM, 2), (signal.SIGINT, 2)])
def test_a_signal_to_the_cli_cleans_up(demo_conn, conf, isos, leak_check,
                                       signum, isos_given):
    """SIGTERM or Ctrl-C during the install: every build cleans up.

    One ISO runs its build in the command's main thread, several in a
    thread pool: both must clean up (issue 11, the SIGTERM orphan).
    """
    # the hanging installer's ISO by name, and by id: two output names
    proc, build_ids, before = _cli_until_install(
        *[PREFIX + 'hang', isos['hang']][:isos_given], '--name',
        PREFIX + uuid.uuid4().hex[:6], '--flavor', 'm1.tiny', '--no-verify',
        count=isos_given)

    proc.send_signal(signum)
    _out, err = proc.communicate(timeout=240)

    assert proc.returncode != 0
    for build_id in build_ids:
        assert '%s was interrupted in phase install' % build_id in err, \
            before + err
        assert 'Traceback' not in err
        base.assert_no_leftovers(demo_conn, conf, build_id)
    leak_check.assert_clean()


def test_sigterm_to_a_background_build_cleans_up(demo_conn, conf, isos,
                                                 leak_check):
    shown = base.osc_json('iso', 'build', 'create', PREFIX + 'hang',
                          '--name', PREFIX + uuid.uuid4().hex[:6],
                          '--flavor', 'm1.tiny', '--no-verify', '--no-wait')
    build_id, pid = shown['build_id'], shown['worker_pid']
    base.wait_phase(demo_conn, conf, build_id, 'install')

    os.kill(pid, signal.SIGTERM)
    base.poll(lambda: build_mod.find_resources(demo_conn, conf, build_id),
              'build %s to clean up' % build_id, 180,
              until=lambda left: not left)

    leak_check.assert_clean()
