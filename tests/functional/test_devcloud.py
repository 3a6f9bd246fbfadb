"""The local OpenStack itself (tools/devcloud) and its fake compute driver.

The fake driver contract these tests pin down is documented in
tools/devcloud_lib/README.rst; the build pipeline relies on it.
"""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.functional import base
from tests.tools import boot_sector

MV = '2.87'
GiB = 1024**3


def _server(conn, sid):
    r = conn.compute.get('/servers/%s' % sid, microversion=MV)
    return None if r.status_code == 404 else r.json()['server']


def _wait_server(conn, sid, pred, timeout=120, what='condition'):
    return base.poll(lambda: _server(conn, sid),
                     'server %s: %s' % (sid, what), timeout, until=pred)


def _st(s):
    return (
        s['status'],
        s['OS-EXT-STS:vm_state'],
        s['OS-EXT-STS:power_state'],
        s['OS-EXT-STS:task_state'],
    )


def _boot(conn, name, image_id, flavor='m1.tiny', count=1):
    fl = conn.compute.find_flavor(flavor, ignore_missing=False)
    body = {
        'name': name,
        'imageRef': image_id,
        'flavorRef': fl.id,
        'networks': 'none',
    }
    if count > 1:
        body.update(
            min_count=count, max_count=count, return_reservation_id=True
        )
    r = conn.compute.post('/servers', json={'server': body}, microversion=MV)
    assert r.status_code == 202, r.text
    return r.json()


def _action(conn, sid, body):
    r = conn.compute.post(
        '/servers/%s/action' % sid, json=body, microversion=MV
    )
    assert r.status_code in (200, 202), r.text
    return r


def _console(conn, sid):
    return _action(conn, sid, {'os-getConsoleOutput': {}}).json()['output']


def _wait_image(conn, image_id, timeout=120):
    return base.poll(
        lambda: conn.image.get_image(image_id),
        'image %s to be active, killed or deleted' % image_id, timeout,
        until=lambda im: im.status in ('active', 'killed', 'deleted'))


def _upload(conn, name, data, disk_format, **props):
    im = conn.image.create_image(
        name=name,
        data=io.BytesIO(data),
        disk_format=disk_format,
        container_format='bare',
        **props,
    )
    return _wait_image(conn, im.id)


def _delete_server(conn, sid):
    conn.compute.delete(f'/servers/{sid}', microversion=MV)


def _delete_all(conn, sids, image_ids=()):
    """Delete the servers, wait until they are gone, delete the images."""
    for sid in sids:
        _delete_server(conn, sid)
    for sid in sids:
        _wait_server(conn, sid, lambda s: s is None, what='deletion')
    for i in image_ids:
        if i:
            conn.image.delete_image(i, ignore_missing=True)


def _make_iso(cfg):
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3,
        joliet=3,
        rock_ridge='1.09',
        vol_ident='DEVCLOUDTEST',
    )
    if cfg is not None:
        d = cfg.encode()
        iso.add_fp(
            io.BytesIO(d),
            len(d),
            '/ISOPLUGIN.CFG;1',
            rr_name='ISOPLUGIN.CFG',
            joliet_path='/ISOPLUGIN.CFG',
        )
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


# ---------------------------------------------------------- basics


def test_cli_image_and_server_list(devcloud):
    for args in (('image', 'list'), ('server', 'list'), ('network', 'list')):
        devcloud.openstack(*args)
    p = devcloud.openstack(
        'image',
        'store',
        'list',
        '-f',
        'value',
        '-c',
        'ID',
        cloud='devcloud-admin',
    )
    assert set(p.stdout.split()) == {'fast', 'cheap'}


def test_catalog_and_glance_features(devcloud, demo_conn):
    types = {s['type'] for s in demo_conn.service_catalog}
    assert {'identity', 'image', 'compute', 'placement', 'network'} <= types
    info = demo_conn.image.get('/info/import').json()
    methods = set(info['import-methods']['value'])
    assert {'glance-direct', 'web-download', 'copy-image'} <= methods
    usage = demo_conn.image.get('/info/usage').json()['usage']
    assert usage['image_count_total']['limit'] > 0
    # Neutron is the real one
    exts = {e.alias for e in demo_conn.network.extensions()}
    assert 'security-group' in exts


def test_flavors(admin_conn, devcloud):
    for name, (vcpus, ram, disk) in devcloud.flavors.items():
        f = admin_conn.compute.find_flavor(name, ignore_missing=False)
        assert (f.vcpus, f.ram, f.disk) == (vcpus, ram, disk)


# ---------------------------------------------------------- snapshot


def test_boot_snapshot_same_bytes(demo_conn, leak_check, tmp_path):
    """Boot from a small raw image, snapshot, compare the guest-visible bytes.

    The fake driver grows the root disk to the flavor's root_gb (1 GiB for
    m1.tiny) like libvirt and uploads snapshots as qcow2, so the snapshot,
    converted back to raw, is the source followed by zeros up to 1 GiB.
    """
    c = demo_conn
    src = os.urandom(1024 * 1024) + b'\0' * (1024 * 1024) + os.urandom(4096)
    name = 'dc-snap-%s' % uuid.uuid4().hex[:6]
    image = _upload(c, name + '-src', src, 'raw')
    sid = None
    snap_id = None
    try:
        assert image.status == 'active'
        sid = _boot(c, name, image.id)['server']['id']
        s = _wait_server(c, sid, lambda s: s['status'] in ('ACTIVE', 'ERROR'))
        assert s['status'] == 'ACTIVE', s.get('fault')
        r = _action(c, sid, {'createImage': {'name': name + '-snap'}})
        snap_id = r.json()['image_id']
        snap = _wait_image(c, snap_id)
        assert snap.status == 'active'
        assert snap.disk_format == 'qcow2'
        assert snap.virtual_size == 1 * GiB
        assert snap.properties.get('image_type') == 'snapshot'
        qcow = tmp_path / 'snap.qcow2'
        with open(qcow, 'wb') as f:
            for chunk in c.image.download_image(
                snap, stream=True
            ).iter_content(1 << 20):
                f.write(chunk)
        raw = tmp_path / 'snap.raw'
        subprocess.run(
            [
                'qemu-img',
                'convert',
                '-f',
                'qcow2',
                '-O',
                'raw',
                str(qcow),
                str(raw),
            ],
            check=True,
        )
        want = hashlib.sha256(src)
        zeros = b'\0' * (1 << 20)
        left = GiB - len(src)
        while left:
            n = min(left, len(zeros))
            want.update(zeros[:n])
            left -= n
        got = hashlib.sha256()
        with open(raw, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                got.update(chunk)
        assert got.hexdigest() == want.hexdigest()
        # the head of the guest disk is exactly the source image
        with open(raw, 'rb') as f:
            assert (
                hashlib.sha256(f.read(len(src))).hexdigest()
                == hashlib.sha256(src).hexdigest()
            )
    finally:
        if sid:
            _delete_server(c, sid)
            _wait_server(c, sid, lambda s: s is None, what='deletion')
        for i in (snap_id, image.id):
            if i:
                c.image.delete_image(i, ignore_missing=True)
    leak_check.assert_clean()


# ---------------------------------------------------------- concurrency


def test_three_servers_at_once_five_rounds(demo_conn, leak_check):
    c = demo_conn
    image = _upload(c, 'dc-stress-src', b'\0' * (1024 * 1024), 'raw')
    try:
        for rnd in range(5):
            name = 'dc-stress-%d-%s' % (rnd, uuid.uuid4().hex[:4])
            _boot(c, name, image.id, count=3)
            ss = base.poll(
                lambda: list(c.compute.servers(name='^%s' % name)),
                'three servers %s ACTIVE or ERROR' % name, 120,
                until=lambda ss: len(ss) == 3 and all(
                    s.status in ('ACTIVE', 'ERROR') for s in ss),
                interval=1)
            assert sorted(s.status for s in ss) == ['ACTIVE'] * 3, [
                (s.name, s.status, s.fault) for s in ss
            ]
            for s in ss:
                _delete_server(c, s.id)
            for s in ss:
                _wait_server(
                    c,
                    s.id,
                    lambda x: x is None or x['status'] == 'ERROR',
                    what='deletion',
                )
                assert _server(c, s.id) is None
    finally:
        c.image.delete_image(image.id, ignore_missing=True)
    leak_check.assert_clean()


# ---------------------------------------------------------- fake driver


@pytest.fixture
def iso_images(demo_conn):
    made = {}

    def make(cfg, name=None):
        data = _make_iso(cfg)
        im = _upload(
            demo_conn,
            name or 'dc-iso-%s' % uuid.uuid4().hex[:6],
            data,
            'iso',
            hw_rescue_device='cdrom',
            hw_rescue_bus='sata',
        )
        made[im.id] = im
        return im

    yield make
    for i in made:
        demo_conn.image.delete_image(i, ignore_missing=True)


def test_fake_installer_install_snapshot_verify(
    demo_conn, iso_images, leak_check
):
    """The pipeline's path through the fake driver.

    Rescue with an ISO whose /ISOPLUGIN.CFG says install -> power_state
    SHUTDOWN (4) while still RESCUE -> unrescue -> the console shows the
    marker -> snapshot -> a server booted from the snapshot shows it too.
    """
    c = demo_conn
    iso = iso_images('action=install\ndelay=1\nmarker=DEVCLOUD-OK-42\n')
    blank = _upload(c, 'dc-blank', b'\0' * (1024 * 1024), 'raw')
    sids = []
    snap_id = None
    try:
        sid = _boot(c, 'dc-install', blank.id)['server']['id']
        sids.append(sid)
        _wait_server(c, sid, lambda s: s['status'] == 'ACTIVE')
        r = _action(c, sid, {'rescue': {'rescue_image_ref': iso.id}})
        assert r.status_code == 200
        s = _wait_server(
            c,
            sid,
            lambda s: s['status'] == 'RESCUE'
            and s['OS-EXT-STS:power_state'] == 4,
            60,
            'installer power-off',
        )
        assert _st(s) == ('RESCUE', 'rescued', 4, None)
        out = _console(c, sid)
        assert 'fake installer: DEVCLOUDTEST' in out
        assert 'DEVCLOUD-OK-42' not in out
        _action(c, sid, {'unrescue': None})
        s = _wait_server(
            c,
            sid,
            lambda s: s['status'] == 'ACTIVE'
            and s['OS-EXT-STS:task_state'] is None,
        )
        assert s['OS-EXT-STS:power_state'] == 1
        assert _console(c, sid).rstrip().endswith('DEVCLOUD-OK-42')
        _action(c, sid, {'os-stop': None})
        _wait_server(c, sid, lambda s: s['status'] == 'SHUTOFF')
        snap_id = _action(
            c, sid, {'createImage': {'name': 'dc-installed'}}
        ).json()['image_id']
        snap = _wait_image(c, snap_id)
        assert snap.status == 'active'
        vid = _boot(c, 'dc-verify', snap_id)['server']['id']
        sids.append(vid)
        _wait_server(c, vid, lambda s: s['status'] == 'ACTIVE')
        assert 'DEVCLOUD-OK-42' in _console(c, vid)
    finally:
        _delete_all(c, sids, (snap_id, blank.id))


def test_fake_installer_fail_and_snapshot_fail(
        demo_conn, admin_conn, iso_images):
    c = demo_conn
    fail = iso_images(
        'action=fail\nmessage=disk not found by fake installer\n'
    )
    snapfail = iso_images('action=install\ndelay=0\nsnapshot=fail\n')
    blank = _upload(c, 'dc-blank2', b'\0' * 65536, 'raw')
    sids = []
    try:
        a = _boot(c, 'dc-fail', blank.id)['server']['id']
        b = _boot(c, 'dc-snapfail', blank.id)['server']['id']
        sids += [a, b]
        for sid in sids:
            _wait_server(c, sid, lambda s: s['status'] == 'ACTIVE')
        _action(c, a, {'rescue': {'rescue_image_ref': fail.id}})
        s = _wait_server(c, a, lambda s: s['status'] == 'ERROR', 60)
        assert 'disk not found by fake installer' in s['fault']['message']
        _action(c, b, {'rescue': {'rescue_image_ref': snapfail.id}})
        _wait_server(c, b, lambda s: s['OS-EXT-STS:power_state'] == 4, 60)
        _action(c, b, {'unrescue': None})
        _wait_server(
            c,
            b,
            lambda s: s['status'] == 'ACTIVE'
            and s['OS-EXT-STS:task_state'] is None,
        )
        snap_id = _action(
            c, b, {'createImage': {'name': 'dc-snapfail'}}
        ).json()['image_id']
        # nova deletes it
        base.poll(lambda: c.image.find_image(snap_id),
                  'snapshot %s to be deleted by nova' % snap_id, 60,
                  until=lambda image: image is None)
        s = _wait_server(c, b, lambda s: s['OS-EXT-STS:task_state'] is None)
        assert s['status'] == 'ACTIVE'
        # nova 34 runs the snapshot as a task after the RPC handler
        # returned: the createImage action's event says Success; the failure
        # shows only as the deleted image (and in nova-compute.log)
        acts = admin_conn.compute.get('/servers/%s/os-instance-actions' % b,
                                      microversion=MV).json()
        assert 'createImage' in [a['action'] for a in acts['instanceActions']]
    finally:
        _delete_all(c, sids, (blank.id,))


def test_spawn_disks_iso_and_qcow2(devcloud, demo_conn, iso_images,
                                   leak_check, tmp_path):
    """Spawn: ISO -> cdrom.iso + blank root disk; qcow2 -> raw disk.

    Both root disks are grown (sparse) to the flavor's root_gb.
    """
    c = demo_conn
    iso = iso_images(None)
    head = os.urandom(65536)
    raw = tmp_path / 'src.raw'
    raw.write_bytes(head + b'\0' * 65536)
    qcow = tmp_path / 'src.qcow2'
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                    str(raw), str(qcow)], check=True)
    q = _upload(c, 'dc-qcow2', qcow.read_bytes(), 'qcow2')
    sids = []
    try:
        a = _boot(c, 'dc-from-iso', iso.id, flavor='m1.small')['server']['id']
        b = _boot(c, 'dc-from-qcow2', q.id)['server']['id']
        sids += [a, b]
        for sid in sids:
            s = _wait_server(
                c, sid, lambda s: s['status'] in ('ACTIVE', 'ERROR'))
            assert s['status'] == 'ACTIVE', s.get('fault')
        da = os.path.join(devcloud.instances_dir, a)
        assert os.path.getsize(os.path.join(da, 'disk')) == 2 * GiB
        with open(os.path.join(da, 'cdrom.iso'), 'rb') as f:
            assert f.read(32768 + 6)[-5:] == b"CD001"   # an ISO 9660
        assert 'booting from cdrom' in _console(c, a)
        db = os.path.join(devcloud.instances_dir, b)
        assert os.path.getsize(os.path.join(db, 'disk')) == 1 * GiB
        with open(os.path.join(db, 'disk'), 'rb') as f:
            assert f.read(len(head)) == head
        assert 'booting from disk' in _console(c, b)
    finally:
        _delete_all(c, sids, (q.id,))
    for sid in sids:
        assert not os.path.exists(os.path.join(devcloud.instances_dir, sid))


# ---------------------------------------------------------- glance

def test_web_download_any_port_and_copy_image(demo_conn, admin_conn,
                                              leak_check):
    """web-download from 127.0.0.1 on an ephemeral port; copy to cheap."""
    import functools
    import http.server
    import tempfile
    import threading

    data = _make_iso('action=hang\n')
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'w.iso'), 'wb') as f:
            f.write(data)
        handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=d)
        srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        im = demo_conn.image.create_image(name='dc-webdl', disk_format='iso',
                                          container_format='bare')
        try:
            demo_conn.image.import_image(
                im, method='web-download',
                uri='http://127.0.0.1:%d/w.iso' % srv.server_address[1])
            im = _wait_image(demo_conn, im.id)
            assert im.status == 'active'
            assert im.size == len(data)
            assert im.properties.get('stores') == 'fast'
            admin_conn.image.import_image(im, method='copy-image',
                                          stores=['cheap'])
            base.poll(
                lambda: admin_conn.image.get_image(im.id).properties.get(
                    'stores'),
                'image %s in the stores fast,cheap' % im.id, 60,
                until=lambda stores: stores == 'fast,cheap')
        finally:
            srv.shutdown()
            demo_conn.image.delete_image(im.id, ignore_missing=True)
    leak_check.assert_clean()


# ---------------------------------------------------------- libvirt mode


@pytest.mark.libvirt
def test_console_log_of_a_stopped_guest(devcloud, demo_conn, leak_check):
    """The console log Nova's libvirt driver gives for a guest that stopped.

    The guest prints a line on its serial port and powers off. virtlogd
    keeps ``console.log`` in both configurations. With Nova's default (a
    pty serial port) the API has nothing for the stopped guest: 404 "Guest
    does not have a console available" (the driver finds the log through
    the pty's path, which only a running domain has). With the serial
    console enabled (a TCP serial port, ``tools/devcloud set
    serial_console=true``) the stopped domain keeps its ``<log file=>``
    and the API returns the log.
    """
    c = demo_conn
    marker = 'DEVCLOUD-CONSOLE-%s' % uuid.uuid4().hex[:6]
    image = _upload(c, 'dc-console', boot_sector.boot_sector(marker).ljust(
        1 << 20, b'\0'), 'raw')
    instances = os.path.join(devcloud.state_dir, 'state', 'nova-libvirt',
                             'instances')
    try:
        for serial, readable in (('false', False), ('true', True)):
            devcloud.run('set', 'serial_console=%s' % serial)
            sid = _boot(c, 'dc-console-%s' % serial, image.id)['server']['id']
            try:
                s = _wait_server(c, sid, lambda s: s['status'] in (
                    'SHUTOFF', 'ERROR'), 180, 'the guest to power off')
                assert s['status'] == 'SHUTOFF', s.get('fault')
                with open(os.path.join(instances, sid, 'console.log')) as f:
                    assert marker in f.read()
                r = c.compute.post('/servers/%s/action' % sid, json={
                    'os-getConsoleOutput': {}}, microversion=MV)
                if readable:
                    assert r.status_code == 200, r.text
                    assert marker in r.json()['output']
                else:
                    assert r.status_code == 404, r.text
                    assert 'does not have a console available' in r.text
            finally:
                _delete_server(c, sid)
                _wait_server(c, sid, lambda s: s is None, what='deletion')
    finally:
        devcloud.run('set', 'serial_console=')
        c.image.delete_image(image.id, ignore_missing=True)
    leak_check.assert_clean()


# ---------------------------------------------------------- modes

MODE_CONFTEST = """\
from tests.functional.conftest import *  # noqa
"""
MODE_TESTS = """\
import pytest


@pytest.mark.libvirt
def test_needs_libvirt(devcloud):
    pass


def test_needs_fake(devcloud):
    pass


def test_needs_no_cloud():
    pass
"""


def _pytest(devcloud, where, *args):
    """A pytest session on ``where`` with the functional fixtures."""
    return subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-W', 'ignore::pytest.PytestUnknownMarkWarning',
         '--rootdir', str(where), str(where)] + list(args),
        capture_output=True, text=True, timeout=300, cwd=devcloud.root,
        env=dict(os.environ, PYTHONPATH=devcloud.root))


def test_tests_check_the_mode_they_need(devcloud, tmp_path):
    """Tests in the wrong compute mode stop at once and say which to use.

    The devcloud runs in fake mode here: the libvirt tests must not run
    (they would fail one after the other, each after its timeouts).
    """
    assert devcloud.mode() == 'fake'
    (tmp_path / 'conftest.py').write_text(MODE_CONFTEST)
    (tmp_path / 'test_modes.py').write_text(MODE_TESTS)
    p = _pytest(devcloud, tmp_path, '-m', 'libvirt')
    assert p.returncode == pytest.ExitCode.USAGE_ERROR, p.stdout
    assert ('1 selected test(s) need the local OpenStack in libvirt mode, '
            'but it runs in fake mode: run `tools/devcloud up --mode '
            'libvirt` first') in p.stdout
    assert 'passed' not in p.stdout
    p = _pytest(devcloud, tmp_path)
    assert p.returncode == pytest.ExitCode.USAGE_ERROR, p.stdout
    assert ('the selected tests need two compute modes (1 fake, 1 libvirt)'
            in p.stdout)
    p = _pytest(devcloud, tmp_path, '-m', 'not libvirt')
    assert p.returncode == 0, p.stdout
    assert '2 passed' in p.stdout


# ---------------------------------------------------------- restarts
# (these stop services of the shared devcloud, so they run in CI (CI set) or
# with DEVCLOUD_TEST_DOWN=1; they are the last tests of this module)

disruptive = pytest.mark.skipif(
    not (os.environ.get('CI') or os.environ.get('DEVCLOUD_TEST_DOWN')),
    reason='stops the shared devcloud: set CI or DEVCLOUD_TEST_DOWN=1')


@disruptive
def test_compute_restart_remembers_instances(devcloud, demo_conn, iso_images,
                                             leak_check):
    c = demo_conn
    iso = iso_images('action=install\ndelay=0\nmarker=AFTER-RESTART\n')
    blank = _upload(c, 'dc-restart', b'\0' * 65536, 'raw')
    sids = []
    snap_id = None
    try:
        a = _boot(c, 'dc-restart-a', blank.id)['server']['id']
        b = _boot(c, 'dc-restart-b', blank.id)['server']['id']
        sids += [a, b]
        for sid in sids:
            _wait_server(c, sid, lambda s: s['status'] == 'ACTIVE')
        _action(c, a, {'os-stop': None})
        _wait_server(c, a, lambda s: s['status'] == 'SHUTOFF')
        _action(c, b, {'rescue': {'rescue_image_ref': iso.id}})
        _wait_server(c, b, lambda s: s['status'] == 'RESCUE'
                     and s['OS-EXT-STS:power_state'] == 4, 60)
        devcloud.run('restart', 'nova-compute')
        # after the restart: the states are kept (the periodic power sync
        # would otherwise stop/flag them), and every operation works
        time.sleep(12)
        assert _st(_server(c, a))[:3] == ('SHUTOFF', 'stopped', 4)
        assert _st(_server(c, b))[:3] == ('RESCUE', 'rescued', 4)
        _action(c, a, {'os-start': None})
        _wait_server(c, a, lambda s: s['status'] == 'ACTIVE'
                     and s['OS-EXT-STS:task_state'] is None)
        _action(c, b, {'unrescue': None})
        _wait_server(c, b, lambda s: s['status'] == 'ACTIVE'
                     and s['OS-EXT-STS:task_state'] is None)
        assert 'AFTER-RESTART' in _console(c, b)
        snap_id = _action(c, b, {'createImage': {'name': 'dc-restart-snap'}}) \
            .json()['image_id']
        assert _wait_image(c, snap_id).status == 'active'
    finally:
        _delete_all(c, sids, (snap_id, blank.id))
    for sid in sids:
        assert not os.path.exists(os.path.join(devcloud.instances_dir, sid))


def _compute_service(conn, host):
    services = list(conn.compute.services(binary='nova-compute', host=host))
    return services[0] if services else None


def _forget_compute(conn, host):
    """Delete the compute service of ``host``, as a fresh database has none.

    Its next start registers it anew, and Nova then checks that its
    hypervisor has no instances.
    """
    service = _compute_service(conn, host)
    if service:
        conn.compute.delete_service(service)


@disruptive
def test_compute_that_failed_to_start_is_restarted(devcloud, admin_conn):
    """A nova-compute that failed to start stays alive; nobody waits for it.

    The libvirt compute is given the fake compute's node identity (its
    ``compute_id``), so Nova refuses to start it ("My node ... has host
    'devcloud' but my host is 'devcloud-libvirt'; Possible rename detected,
    refusing to start!"), and the process stays alive, as it does on
    "My hypervisor has existing instances". ``up`` must say so at once,
    ``status`` must not call the live process running, and the next ``up``
    must restart it instead of waiting for a compute that never reports.
    """
    state = os.path.join(devcloud.state_dir, 'state')
    libvirt_id = os.path.join(state, 'nova-libvirt', 'compute_id')
    saved = None
    if os.path.exists(libvirt_id):
        with open(libvirt_id) as f:
            saved = f.read()
    os.makedirs(os.path.dirname(libvirt_id), exist_ok=True)
    shutil.copyfile(os.path.join(state, 'nova', 'compute_id'), libvirt_id)
    try:
        t = time.time()
        p = devcloud.run('up', '--mode', 'libvirt', check=False)
        assert p.returncode != 0
        assert time.time() - t < 120   # not the 240 s registration wait
        assert 'Possible rename detected' in p.stderr
        failed = devcloud.pid('nova-compute')
        assert failed, 'the failed nova-compute is expected alive'
        p = devcloud.run('status', check=False)
        assert p.returncode == 3
        assert 'nova-compute    failed to start' in p.stdout
        p = devcloud.run('up', check=False)
        assert p.returncode != 0
        assert ('nova-compute (pid %d) runs but failed to start' % failed
                in p.stdout)
        _restore(libvirt_id, saved)
        p = devcloud.run('up')   # restarts the failed compute: it works now
        assert 'runs but failed to start' in p.stdout
        service = _compute_service(admin_conn, 'devcloud-libvirt')
        assert (service.status, service.state) == ('enabled', 'up')
    finally:
        _restore(libvirt_id, saved)
        devcloud.run('up', '--mode', 'fake')
    assert devcloud.is_up()


def _restore(path, text):
    """Write text back to path, or remove path when text is None."""
    if text is None:
        if os.path.exists(path):
            os.unlink(path)
    else:
        with open(path, 'w') as f:
            f.write(text)


LEFTOVER_DOMAIN = """<domain type='qemu'>
  <name>instance-%(num)s</name>
  <uuid>%(uuid)s</uuid>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>left-by-an-interrupted-run</nova:name>
    </nova:instance>
  </metadata>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/tmp/another-checkout/.devcloud/state/nova-libvirt/\
instances/%(uuid)s/disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""


def _virsh(*args, check=True):
    return subprocess.run(['virsh', '-q', '-c', 'qemu:///system'] + list(args),
                          capture_output=True, text=True, check=check)


@disruptive
def test_up_removes_leftover_libvirt_domains(devcloud, admin_conn, tmp_path):
    """A domain of an interrupted run does not stop a later devcloud.

    A shut-off Nova domain that no devcloud database knows (here: defined
    as another checkout's run would have left it) is still defined in the
    machine's libvirt; the libvirt compute registers anew (a fresh
    database). ``up --mode libvirt`` removes the domain and starts.
    """
    lv = subprocess.run(
        [os.path.join(devcloud.root, 'tools', 'libvirt-host'), 'up'],
        capture_output=True, text=True,
        env=dict(os.environ, DEVCLOUD_STATE=devcloud.state_dir))
    assert lv.returncode == 0, lv.stderr
    dom = str(uuid.uuid4())
    xml = tmp_path / 'leftover.xml'
    xml.write_text(LEFTOVER_DOMAIN % {'uuid': dom, 'num': dom[:8]})
    _virsh('define', str(xml))
    try:
        _forget_compute(admin_conn, 'devcloud-libvirt')
        p = devcloud.run('up', '--mode', 'libvirt', check=False)
        assert p.returncode == 0, p.stdout + p.stderr
        assert 'removed domain instance-%s (%s)' % (dom[:8], dom) in p.stdout
        assert dom not in _virsh('list', '--all', '--uuid').stdout
        service = _compute_service(admin_conn, 'devcloud-libvirt')
        assert (service.status, service.state) == ('enabled', 'up')
    finally:
        if dom in _virsh('list', '--all', '--uuid').stdout:
            _virsh('undefine', dom, check=False)
        devcloud.run('up', '--mode', 'fake')
    assert devcloud.mode() == 'fake'


# ---------------------------------------------------------- down / up
# (last in this module: it stops and restarts the whole cloud, so it would
# break the runs of other sessions sharing this machine's devcloud; it runs in
# CI (CI set) or with DEVCLOUD_TEST_DOWN=1)


@disruptive
def test_down_stops_everything_then_warm_up(devcloud):
    state = devcloud.state_dir
    venv = os.path.realpath(os.path.join(state, 'venv'))
    devcloud.run('down')
    assert not devcloud.is_up()
    left = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink('/proc/%s/cwd' % pid)
        except OSError:
            continue
        try:
            cmd = open('/proc/%s/cmdline' % pid).read()
        except OSError:
            continue
        if (cwd == state or cwd.startswith(state + '/')) and (
            venv in cmd or 'devcloud' in cmd
        ):
            left.append((pid, cmd))
    assert not left, left
    # the shared MariaDB and RabbitMQ are still there
    import socket

    for port in (3306, 5672):
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
    t = time.time()
    devcloud.run('up')
    warm = time.time() - t
    print('warm start: %.1fs' % warm)
    assert devcloud.is_up()
    assert warm < 60


def test_fake_mode_compute_is_the_only_enabled_one(devcloud, admin_conn):
    """In fake mode only host 'devcloud' takes servers.

    After a `tools/devcloud up --mode libvirt` and back (as tools/run-tests
    does), the libvirt compute 'devcloud-libvirt' is stopped and disabled,
    so the scheduler cannot pick it.
    """
    with open(os.path.join(os.path.dirname(devcloud.clouds_yaml),
                           'mode')) as f:
        assert f.read().strip() == 'fake'
    computes = {s.host: (s.status, s.state)
                for s in admin_conn.compute.services(binary='nova-compute')}
    assert computes['devcloud'] == ('enabled', 'up'), computes
    enabled = [h for h, (status, _) in computes.items()
               if status == 'enabled']
    assert enabled == ['devcloud'], computes
