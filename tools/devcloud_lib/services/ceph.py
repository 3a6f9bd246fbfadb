"""Ceph: a one-node cluster for Cinder's RBD driver (one mon, mgr, OSD).

From Debian's packages (Ceph 16.2 Pacific on Debian 12), started by hand
like Ceph's own ``vstart.sh``: mon ``a`` on 127.0.0.1 (v2 3300, v1 6789),
mgr ``x``, OSD 0 with a file-backed BlueStore (a sparse 10 GiB file under
.devcloud/state/ceph/osd.0/, no block device, no kernel module), pools of
size 1, small caches. Everything lives under .devcloud/ (etc/ceph/,
state/ceph/, logs/ceph-*.log, run/ceph/ for the admin sockets) but for
client.cinder's keyring, also in /etc/ceph/ where os-brick reads it (Cinder's
volume upload; ``clean`` removes it); the daemons
run in the foreground (``-f``) under devcloud's supervision (pid files in
run/ like every other process). Guests reach the volumes in user space:
QEMU's librbd (``qemu-block-extra``), never ``rbd map``.

What others use: ``POOL`` (Cinder's volumes), client ``USER`` with
``rbd`` caps on it (its keyring in etc/ceph/), ``SECRET_UUID`` (the
libvirt secret holding that key, in Cinder's and Nova's ``rbd_secret_uuid``),
``CONF`` and ``wait_usable(c)``.
"""

import json
import os
import subprocess
import uuid

import common
import proc
from services import base

PACKAGES = ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'ceph-common',
            'python3-rados', 'python3-rbd', 'qemu-block-extra']
MON_PORTS = (3300, 6789)          # msgr v2, v1 (Nova/libvirt give QEMU v1)
POOL = 'volumes'
USER = 'cinder'                   # client.cinder
# the libvirt secret with client.cinder's key (Cinder's and Nova's
# rbd_secret_uuid); fixed, like the service passwords
SECRET_UUID = '5a4b6c1e-0d2f-4f51-9b3c-3c1f5d7e9a10'
BLOCK_SIZE = 10 * 1024 ** 3       # sparse: ~300 MiB used when empty

ETC = os.path.join(common.ETC, 'ceph')
CONF = os.path.join(ETC, 'ceph.conf')
DATA = os.path.join(common.STATE, 'ceph')
ASOK = os.path.join(common.RUN, 'ceph')
ADMIN_KEYRING = os.path.join(ETC, 'ceph.client.admin.keyring')
USER_KEYRING = os.path.join(ETC, 'ceph.client.%s.keyring' % USER)
# where os-brick (Cinder's volume upload, image download) looks for the
# key of the user in a connection's info: only there (deployments install
# it so; Cinder's rbd_keyring_conf is not an option any more, OSSN-0085)
HOST_KEYRING = '/etc/ceph/ceph.client.%s.keyring' % USER

# caps of the keys made once (imported by the mon's mkfs, so that no key
# has to be added later through the running mon)
KEYS = {
    'client.admin': {'mon': 'allow *', 'osd': 'allow *', 'mds': 'allow *',
                     'mgr': 'allow *'},
    'mgr.x': {'mon': 'allow profile mgr', 'osd': 'allow *',
              'mds': 'allow *'},
    'osd.0': {'mon': 'allow profile osd', 'mgr': 'allow profile osd',
              'osd': 'allow *'},
    # Cinder's user, as in Ceph's "Block Devices and OpenStack" guide
    'client.' + USER: {'mon': 'profile rbd',
                       'osd': 'profile rbd pool=%s' % POOL,
                       'mgr': 'profile rbd pool=%s' % POOL},
}

# the always-on mgr modules stay (disabling one is HEALTH_ERR
# MGR_MODULE_ERROR); the optional ones enabled by default (restful, nfs,
# iostat: cherrypy, pecan...) are what made the mgr 300 MiB instead of 150
MGR_DISABLED = ('alerts diskprediction_local influx insights iostat '
                'localpool mirroring nfs osd_perf_query osd_support '
                'prometheus restful selftest snap_schedule stats telegraf '
                'test_orchestrator zabbix')

CEPH_CONF = """\
[global]
fsid = %(fsid)s
mon_host = [v2:127.0.0.1:%(v2)d,v1:127.0.0.1:%(v1)d]
public_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
run_dir = %(asok)s
admin_socket = %(asok)s/$name.asok
log_file = %(logs)s/ceph-$name.log
mon_cluster_log_file = %(logs)s/ceph-cluster.log
crash_dir = %(data)s/crash
# one OSD: pools of size 1, everything on one host
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_delete = true
# the shared disk is often less than 30%% free (the default warning)
mon_data_avail_warn = 5
[mon]
mon_data = %(data)s/mon.$id
keyring = %(data)s/mon.$id/keyring
mon_memory_target = 268435456
[mgr]
mgr_data = %(data)s/mgr.$id
keyring = %(etc)s/ceph.$name.keyring
mgr_disabled_modules = %(mgr_disabled)s
[osd]
osd_data = %(data)s/osd.$id
keyring = %(etc)s/ceph.$name.keyring
osd_objectstore = bluestore
# file-backed BlueStore as vstart.sh does (created by ceph-osd --mkfs)
bluestore_block_path = %(data)s/osd.$id/block.file
bluestore_block_create = true
bluestore_block_size = %(block_size)d
bluestore_block_db_path =
bluestore_block_wal_path =
bluestore_fsck_on_mount = false
# fixed small cache; osd_memory_target only steers the autotuner, and
# values below its minimum (896 MiB) are ignored (the default 4 GiB stays)
bluestore_cache_autotune = false
bluestore_cache_size = 134217728
osd_memory_target = 939524096
[client]
keyring = %(etc)s/ceph.$name.keyring
# clients (the ceph CLI, Cinder, QEMU) make no admin sockets
admin_socket =
"""


def ceph(*args, check=True, timeout=30):
    """Run the ``ceph`` CLI as client.admin on this cluster."""
    return common.run(['ceph', '--conf', CONF, '--connect-timeout', '10']
                      + list(args), check=check, timeout=timeout)


def rbd(*args, check=True, timeout=60):
    """Run the ``rbd`` CLI as client USER on POOL (e.g. ``rbd('ls')``)."""
    return common.run(['rbd', '--conf', CONF, '--id', USER, '--pool', POOL]
                      + list(args), check=check, timeout=timeout)


def status_json():
    """``ceph status`` as a dict, or None while the mon does not answer."""
    try:
        p = ceph('status', '--format', 'json', check=False, timeout=15)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


class Ceph(base.Service):
    name = 'ceph'
    processes = ('ceph-mon', 'ceph-mgr', 'ceph-osd')

    def install(self, c):
        if not all(os.path.exists('/usr/bin/' + b) for b in
                   ('ceph-mon', 'ceph-mgr', 'ceph-osd', 'ceph', 'rbd')):
            common.apt_install(PACKAGES)

    def port_conflicts(self):
        return [('ceph-mon', port, proc.pid_listening(port))
                for port in MON_PORTS
                if not proc.running('ceph-mon') and proc.tcp_open(port)]

    def configure(self, c):
        if not c.setup.get('ceph_fsid'):
            c.mark('ceph_fsid', str(uuid.uuid4()))
        for d in (ETC, ASOK, DATA, os.path.join(DATA, 'crash'),
                  os.path.join(DATA, 'mon.a'), os.path.join(DATA, 'osd.0')):
            os.makedirs(d, exist_ok=True)
        common.write(CONF, CEPH_CONF % {
            'fsid': c.setup['ceph_fsid'],
            'v2': MON_PORTS[0],
            'v1': MON_PORTS[1],
            'asok': ASOK,
            'logs': common.LOGS,
            'data': DATA,
            'etc': ETC,
            'mgr_disabled': MGR_DISABLED,
            'block_size': BLOCK_SIZE,
        })

    def init(self, c):
        """Keys and the mon's store, once (offline, about a second)."""
        if c.done('ceph_mon'):
            return None
        init_keyring = os.path.join(DATA, 'mon-init.keyring')
        common.run(['ceph-authtool', '--create-keyring', init_keyring,
                    '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'])
        for entity, caps in KEYS.items():
            keyring = os.path.join(ETC, 'ceph.%s.keyring' % entity)
            cmd = ['ceph-authtool', '--create-keyring', keyring,
                   '--gen-key', '-n', entity]
            for kind, cap in caps.items():
                cmd += ['--cap', kind, cap]
            common.run(cmd)
            os.chmod(keyring, 0o600)
            common.run(['ceph-authtool', init_keyring, '--import-keyring',
                        keyring])
        monmap = os.path.join(DATA, 'monmap')
        common.run(['monmaptool', '--create', '--clobber', '--fsid',
                    c.setup['ceph_fsid'], '--addv', 'a',
                    '[v2:127.0.0.1:%d,v1:127.0.0.1:%d]' % MON_PORTS, monmap])
        common.run(['ceph-mon', '--conf', CONF, '--mkfs', '-i', 'a',
                    '--monmap', monmap, '--keyring', init_keyring],
                   log_name='ceph-setup.log')
        os.unlink(init_keyring)
        c.mark('ceph_mon')
        common.log('ceph: mon store and keys made')
        return None

    def command(self, c, name):
        daemon, ident = {'ceph-mon': ('ceph-mon', 'a'),
                         'ceph-mgr': ('ceph-mgr', 'x'),
                         'ceph-osd': ('ceph-osd', '0')}[name]
        return [daemon, '-f', '--conf', CONF, '-i', ident]

    def start(self, c):
        self.install_host_keyring()
        proc.start_process('ceph-mon', self.command(c, 'ceph-mon'))
        if not c.done('ceph_osd'):
            self.make_osd(c)
        proc.start_process('ceph-mgr', self.command(c, 'ceph-mgr'))
        proc.start_process('ceph-osd', self.command(c, 'ceph-osd'))

    def install_host_keyring(self):
        """client.USER's keyring in /etc/ceph/ (os-brick reads it there)."""
        with open(USER_KEYRING) as f:
            key = f.read()
        common.write(HOST_KEYRING, key, mode=0o600)

    def clean(self, c):
        """Remove /etc/ceph/'s keyring if it is this cluster's."""
        try:
            with open(HOST_KEYRING) as f, open(USER_KEYRING) as g:
                if f.read() == g.read():
                    os.unlink(HOST_KEYRING)
                    common.log('ceph: removed %s' % HOST_KEYRING)
        except OSError:
            pass

    def make_osd(self, c):
        """Register OSD 0 with the mon and make its BlueStore, once."""
        self.wait_mon()
        osd_uuid = c.setup.get('ceph_osd_uuid') or str(uuid.uuid4())
        c.mark('ceph_osd_uuid', osd_uuid)
        # its key came with the mon's mkfs: no secret to pass here
        ceph('osd', 'new', osd_uuid, '0')
        common.run(['ceph-osd', '--conf', CONF, '-i', '0', '--mkfs',
                    '--osd-uuid', osd_uuid], log_name='ceph-setup.log')
        c.mark('ceph_osd')
        common.log('ceph: OSD 0 made (file-backed BlueStore)')

    def wait_mon(self):
        def ok():
            if not proc.running('ceph-mon'):
                common.die('ceph-mon exited; see %s/ceph-mon.a.log'
                           % common.LOGS)
            return status_json() is not None
        proc.wait_for(ok, 60, 'the Ceph mon on 127.0.0.1:%d' % MON_PORTS[0],
                      0.5)

    def wait_usable(self, c):
        """Wait until RBD works in the pool (made once) as client USER.

        After a warm start the mon's and mgr's maps still show the OSD
        and the PGs of the last run as up for a few seconds, so the test
        is the OSD's own admin socket ("active") and an RBD call that
        needs the pool's PGs active.
        """
        self.wait_mon()

        def osd_active():
            for name in self.processes:
                if not proc.running(name):
                    common.die('%s exited; see %s/%s.*.log'
                               % (name, common.LOGS, name))
            p = common.run(['ceph', '--conf', CONF, 'daemon', 'osd.0',
                            'status'], check=False, timeout=10)
            try:
                return json.loads(p.stdout).get('state') == 'active'
            except ValueError:
                return False
        proc.wait_for(osd_active, 120, 'Ceph OSD 0 active', 0.5)
        if not c.done('ceph_pool'):
            ceph('osd', 'pool', 'create', POOL, '8', '8')
            ceph('osd', 'pool', 'application', 'enable', POOL, 'rbd')
            c.mark('ceph_pool')
            common.log('ceph: pool %s (size 1, 8 PGs)' % POOL)

        def rbd_works():
            try:
                return rbd('ls', check=False, timeout=10).returncode == 0
            except subprocess.TimeoutExpired:
                return False
        proc.wait_for(rbd_works, 120, 'RBD in pool %s' % POOL, 0.5)

    def check(self, c):
        self.wait_usable(c)
        st = status_json() or {}
        common.log('ceph: %s, pool %s on 127.0.0.1:%d'
                   % (st.get('health', {}).get('status'), POOL,
                      MON_PORTS[0]))

    def status(self, c):
        rows = super().status(c)
        if all(state == 'running' for _, state, _, _ in rows):
            health = (status_json() or {}).get('health', {}).get('status')
            name, _, pid, _ = rows[0]
            rows[0] = (name, 'running' if health else 'not answering', pid,
                       '127.0.0.1:%d (%s)' % (MON_PORTS[0], health))
        return rows


SERVICE = Ceph()
