"""OVN: Neutron's data plane on Open vSwitch's userspace datapath (DRAFT).

DRAFT for issue 14, not registered in ``devcloud.py`` yet (see
shared/recipes/neutron-dataplane.md for what was verified and why). Driven
alone (install, configure, init, start, check, stop with DEVCLOUD_DIR set
to a scratch dir, next to a Neutron API with ML2_CONF): start 0.5 s, a
Neutron port bound to host ``devcloud`` got its DHCP lease, metadata and
HTTP from HOST_IP; stop left no process, bridge or namespace. Still to do
when wiring: register it before ``neutron`` in ``ALL_SERVICES``, Neutron's
ml2_conf.ini and gunicorn env (``ASGI_WORKERS``), Nova's metadata API and
``OS_VIF_CONF``, the provider network and subnet.

This machine has no openvswitch kernel module: every bridge is
``datapath_type=netdev`` (ovs-vswitchd switches the packets itself; veth
ends are read through AF_PACKET, internal ports are taps). Processes, all
in the foreground under devcloud's supervision, state under .devcloud/:

- ``ovsdb-server`` (state/ovs/conf.db) and ``ovs-vswitchd``, run dir
  run/ovs/ (OVS_RUNDIR; nothing in /var/run/openvswitch);
- ``ovn-nb-db`` and ``ovn-sb-db`` (two ovsdb-servers, TCP on 127.0.0.1),
  ``ovn-northd``, ``ovn-controller`` (it makes br-int, netdev);
- ``neutron-ovn-agent`` with the metadata extension (haproxy in an
  ovnmeta-<network> namespace per network, proxying to Nova's metadata
  API).

br-ex (netdev) carries the flat provider network PHYSNET and holds
HOST_IP: the one address of this machine that servers reach. Nothing is
routed further (the host does not forward, no NAT): traffic stays here.

What the other services take from here: ``ML2_CONF`` (Neutron's
ml2_conf.ini), ``OS_VIF_CONF`` (nova-compute.conf), ``OVSDB``.
"""

import glob
import os
import shutil
import signal

import common
import proc
from services import base

PACKAGES = ['openvswitch-switch', 'ovn-central', 'ovn-host', 'haproxy',
            'iptables']
NB_PORT, SB_PORT = 26641, 26642
NB_CONNECTION = 'tcp:127.0.0.1:%d' % NB_PORT
SB_CONNECTION = 'tcp:127.0.0.1:%d' % SB_PORT

RUN = os.path.join(common.RUN, 'ovs')
DATA = os.path.join(common.STATE, 'ovs')
OVSDB = 'unix:' + os.path.join(RUN, 'db.sock')
INT_BRIDGE = 'br-int'   # Neutron hands Nova 'br-int' whatever ovn-bridge is
EXT_BRIDGE = 'br-ex'
PHYSNET = 'physnet1'
HOST_IP = '10.231.0.1'
PREFIX_LEN = 24
NETWORK_CIDR = '10.231.0.0/24'
METADATA_PORT = 28775   # Nova's metadata API (nova.py serves it)
METADATA_SECRET = 'devcloud-metadata-secret'

ML2_CONF = """\
[ml2]
type_drivers = flat,geneve
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security
overlay_ip_version = 4
[ml2_type_flat]
flat_networks = %(physnet)s
[ml2_type_geneve]
vni_ranges = 1:1000
max_header_size = 38
[securitygroup]
enable_security_group = true
[ovn]
ovn_nb_connection = %(nb)s
ovn_sb_connection = %(sb)s
ovn_metadata_enabled = true
enable_distributed_floating_ip = false
# else Neutron puts the host's /etc/resolv.conf server (off this machine)
# into every DHCP answer
dns_servers = %(host_ip)s
""" % {'physnet': PHYSNET, 'nb': NB_CONNECTION, 'sb': SB_CONNECTION,
       'host_ip': HOST_IP}

# nova-compute.conf: os-vif plugs the taps into br-int through this OVSDB
# (its default is tcp:127.0.0.1:6640, where nothing listens)
OS_VIF_CONF = """\
[os_vif_ovs]
ovsdb_connection = %s
""" % OVSDB

# the privsep contexts of Neutron's agents (neutron/privileged/__init__.py)
PRIVSEP_SECTIONS = ('privsep', 'privsep_dhcp_release', 'privsep_ovs_vsctl',
                    'privsep_namespace', 'privsep_conntrack', 'privsep_link')

OVN_AGENT_CONF = """\
[DEFAULT]
log_file = %(logs)s/neutron-ovn-agent.log
state_path = %(state)s/neutron-ovn-agent
nova_metadata_host = 127.0.0.1
nova_metadata_port = %(metadata_port)d
metadata_proxy_shared_secret = %(secret)s
metadata_workers = 1
[agent]
extensions = metadata
root_helper =
[ovs]
ovsdb_connection = %(ovsdb)s
[ovn]
ovn_sb_connection = %(sb)s
[oslo_concurrency]
lock_path = %(state)s/neutron-ovn-agent/locks
"""


def vsctl(*args, check=True):
    """ovs-vsctl on devcloud's OVSDB."""
    return common.run(['ovs-vsctl', '--db=' + OVSDB, '--timeout=10']
                      + list(args), check=check)


def ovs_env():
    """Environment of the OVS/OVN daemons: their run dir is run/ovs/."""
    return common.venv_env({'OVS_RUNDIR': RUN, 'OVN_RUNDIR': RUN,
                            'OVS_LOGDIR': common.LOGS, 'OVS_DBDIR': DATA})


def db_server(db, sock, tcp_port=None, remotes=()):
    """ovsdb-server command line for the database file db."""
    cmd = ['ovsdb-server', os.path.join(DATA, db),
           '--remote=punix:' + os.path.join(RUN, sock),
           '--unixctl=' + os.path.join(RUN, sock.replace('.sock', '.ctl')),
           '--log-file=%s/%s.log' % (common.LOGS, db.split('.')[0]),
           '-vconsole:off']
    if tcp_port:
        cmd.append('--remote=ptcp:%d:127.0.0.1' % tcp_port)
    return cmd + ['--remote=' + r for r in remotes]


class OVN(base.Service):
    name = 'ovn'
    processes = ('ovsdb-server', 'ovs-vswitchd', 'ovn-nb-db', 'ovn-sb-db',
                 'ovn-northd', 'ovn-controller', 'neutron-ovn-agent')

    def install(self, c):
        if not all(shutil.which(b) for b in
                   ('ovs-vswitchd', 'ovn-northd', 'ovn-controller',
                    'haproxy', 'iptables-save')):
            common.apt_install(PACKAGES)

    def port_conflicts(self):
        return [(name, port, proc.pid_listening(port))
                for name, port in (('ovn-nb-db', NB_PORT),
                                   ('ovn-sb-db', SB_PORT))
                if not proc.running(name) and proc.tcp_open(port)]

    def configure(self, c):
        for d in (RUN, DATA, os.path.join(common.STATE, 'neutron-ovn-agent',
                                          'locks')):
            os.makedirs(d, exist_ok=True)
        conf = os.path.join(common.ETC, 'neutron', 'ovn_agent.ini')
        helper = '%s --config-file %s' % (common.vbin('privsep-helper'),
                                          conf)
        common.write(conf, OVN_AGENT_CONF % c.vars(
            metadata_port=METADATA_PORT, secret=METADATA_SECRET,
            ovsdb=OVSDB, sb=SB_CONNECTION) + ''.join(
                '[%s]\nhelper_command = %s\n' % (s, helper)
                for s in PRIVSEP_SECTIONS))

    def init(self, c):
        """The three databases, once (ovsdb-tool, well under a second)."""
        if c.done('ovn_dbs'):
            return None
        for db, schema in (
                ('conf.db', '/usr/share/openvswitch/vswitch.ovsschema'),
                ('ovnnb_db.db', '/usr/share/ovn/ovn-nb.ovsschema'),
                ('ovnsb_db.db', '/usr/share/ovn/ovn-sb.ovsschema')):
            path = os.path.join(DATA, db)
            if not os.path.exists(path):
                common.run(['ovsdb-tool', 'create', path, schema])
        c.mark('ovn_dbs')
        return None

    def command(self, c, name):
        if name == 'ovsdb-server':
            return db_server('conf.db', 'db.sock', remotes=(
                'db:Open_vSwitch,Open_vSwitch,manager_options',))
        if name == 'ovs-vswitchd':
            return ['ovs-vswitchd', OVSDB, '--log-file=%s/ovs-vswitchd.log'
                    % common.LOGS, '-vconsole:off']
        if name == 'ovn-nb-db':
            return db_server('ovnnb_db.db', 'ovnnb_db.sock', NB_PORT)
        if name == 'ovn-sb-db':
            return db_server('ovnsb_db.db', 'ovnsb_db.sock', SB_PORT)
        if name == 'ovn-northd':
            return ['ovn-northd',
                    '--ovnnb-db=unix:' + os.path.join(RUN, 'ovnnb_db.sock'),
                    '--ovnsb-db=unix:' + os.path.join(RUN, 'ovnsb_db.sock'),
                    '--unixctl=' + os.path.join(RUN, 'ovn-northd.ctl'),
                    '--log-file=%s/ovn-northd.log' % common.LOGS,
                    '-vconsole:off']
        if name == 'ovn-controller':
            # no --unixctl in 23.03: it makes ovn-controller.<pid>.ctl in
            # OVN_RUNDIR, and finds br-int.mgmt through OVS_RUNDIR
            return ['ovn-controller', OVSDB,
                    '--log-file=%s/ovn-controller.log' % common.LOGS,
                    '-vconsole:off']
        if name == 'neutron-ovn-agent':
            etc = os.path.join(common.ETC, 'neutron')
            return [common.vbin('neutron-ovn-agent'),
                    '--config-file', os.path.join(etc, 'neutron.conf'),
                    '--config-file', os.path.join(etc, 'ovn_agent.ini')]
        raise NotImplementedError(name)

    def start_one(self, c, name):
        proc.start_process(name, self.command(c, name), env=ovs_env())

    def start(self, c):
        self.start_one(c, 'ovsdb-server')
        # (ovs-vsctl would sit out its whole --timeout on a missing socket)
        proc.wait_for(lambda: os.path.exists(OVSDB[len('unix:'):]), 30,
                      'ovsdb-server on %s' % OVSDB)
        # read by ovs-vswitchd when it starts: without userspace TSO, TCP
        # over veth and tap ports hangs (partial checksums read through
        # AF_PACKET); the chassis name is the compute host Neutron binds
        # ports to
        host = c.mode.compute_host if c.mode else 'devcloud'
        vsctl('--no-wait', 'init')
        vsctl('--no-wait', 'set', 'Open_vSwitch', '.',
              'other_config:userspace-tso-enable=true',
              'external_ids:system-id=devcloud',
              'external_ids:hostname=' + host,
              'external_ids:ovn-remote=' + SB_CONNECTION,
              'external_ids:ovn-encap-type=geneve',
              'external_ids:ovn-encap-ip=127.0.0.1',
              'external_ids:ovn-bridge=' + INT_BRIDGE,
              'external_ids:ovn-bridge-datapath-type=netdev',
              'external_ids:ovn-bridge-mappings=%s:%s' % (PHYSNET,
                                                          EXT_BRIDGE))
        for name in ('ovs-vswitchd', 'ovn-nb-db', 'ovn-sb-db', 'ovn-northd',
                     'ovn-controller'):
            self.start_one(c, name)
        vsctl('--may-exist', 'add-br', EXT_BRIDGE, '--', 'set', 'bridge',
              EXT_BRIDGE, 'datapath_type=netdev')
        self.wait_link(EXT_BRIDGE)
        common.run(['ip', 'addr', 'replace',
                    '%s/%d' % (HOST_IP, PREFIX_LEN), 'dev', EXT_BRIDGE])
        common.run(['ip', 'link', 'set', EXT_BRIDGE, 'up'])
        if os.path.exists(os.path.join(common.ETC, 'neutron',
                                       'neutron.conf')):
            self.start_one(c, 'neutron-ovn-agent')

    @staticmethod
    def wait_link(dev):
        proc.wait_for(
            lambda: os.path.exists('/sys/class/net/%s' % dev), 30,
            'the %s device' % dev)

    def chassis_up(self):
        """Does the SB database list devcloud's chassis?"""
        p = common.run(['ovn-sbctl', '--db=' + SB_CONNECTION, '--timeout=5',
                        '--bare', '--columns=name', 'list', 'Chassis'],
                       check=False)
        return p.returncode == 0 and 'devcloud' in p.stdout.split()

    def check(self, c):
        def ok():
            for name in self.processes[:-1]:
                if not proc.running(name):
                    common.die('%s exited; see %s/%s.log'
                               % (name, common.LOGS, name))
            return (self.chassis_up() and
                    os.path.exists('/sys/class/net/%s' % INT_BRIDGE))
        proc.wait_for(ok, 60, 'the OVN chassis and %s' % INT_BRIDGE, 0.5)
        common.log('ovn: chassis up, %s and %s (%s/%d) on the userspace '
                   'datapath' % (INT_BRIDGE, EXT_BRIDGE, HOST_IP,
                                 PREFIX_LEN))

    def stop(self, c):
        # ovn-controller first: it re-creates br-int while it runs
        proc.stop_processes(['neutron-ovn-agent', 'ovn-controller'])
        for pidfile in glob.glob(os.path.join(
                common.STATE, 'neutron-ovn-agent', 'external', 'pids',
                '*.pid.haproxy')):
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().split()[0]), signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                pass
        proc.stop_processes(['ovn-northd', 'ovn-nb-db', 'ovn-sb-db',
                             'ovs-vswitchd', 'ovsdb-server'])
        # the netdev datapath's taps outlive ovs-vswitchd
        for dev in (INT_BRIDGE, EXT_BRIDGE, 'ovs-netdev'):
            if os.path.exists('/sys/class/net/%s' % dev):
                common.run(['ip', 'link', 'del', dev], check=False)
        p = common.run(['ip', 'netns', 'list'], check=False)
        for line in p.stdout.splitlines():
            ns = line.split()[0] if line.split() else ''
            if ns.startswith('ovnmeta-'):
                common.run(['ip', 'netns', 'del', ns], check=False)

    def clean(self, c):
        shutil.rmtree(DATA, ignore_errors=True)


SERVICE = OVN()
