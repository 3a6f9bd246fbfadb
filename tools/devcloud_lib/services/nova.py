"""Nova: api, conductor, scheduler and the compute of the current mode.

nova-api is gunicorn ``nova.wsgi.osapi_compute`` on 127.0.0.1:28774 (2
workers); conductor (2 workers) and scheduler are the console scripts;
nova-compute is whatever the compute mode says (modes.py: the fake driver
of fakevirt.py, or libvirt/QEMU). Databases devcloud_nova_api,
devcloud_nova_cell0 and devcloud_nova (cell1). nova-compute gets its own
configuration file without the databases.
"""

import json
import os
import shutil

import common
import configs
import modes
import proc
import service_venv
from services import base
from services import keystone
from services import mariadb
from services import rabbitmq

PORT = 28774
# Nova's service_down_time: a service whose last report is older is down
DOWN_TIME = 60
PASSWORD = 'nova-secret'
COMPUTE_HOST = 'devcloud'   # nova.conf's host; a mode may override it
# flavors made once after the first start: name -> (vcpus, ram MB, disk GB)
FLAVORS = {
    'm1.tiny': (1, 512, 1),
    'm1.small': (1, 1024, 2),
    'm1.medium': (2, 2048, 4),
}

NOVA_COMMON = """\
[DEFAULT]
host = %(compute_host)s
my_ip = 127.0.0.1
state_path = %(state)s/nova
instances_path = %(state)s/nova/instances
compute_driver = %(compute_driver)s
transport_url = %(transport_url)s
enabled_apis = osapi_compute
concurrency_backend = threading
periodic_fuzzy_delay = 0
sync_power_state_interval = 10
heal_instance_info_cache_interval = -1
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = %(etc)s/nova/api-paste.ini
[oslo_concurrency]
lock_path = %(state)s/nova/locks
[conductor]
workers = %(conductor_workers)s
[scheduler]
workers = %(scheduler_workers)s
discover_hosts_in_cells_interval = 5
[filter_scheduler]
# one fake host: let all three concurrent builds land on it
host_subset_size = 1
[glance]
region_name = RegionOne
[oslo_messaging_notifications]
driver = noop
""" + rabbitmq.MESSAGING_CONF + configs.AUTHTOKEN

NOVA_DB = """\
[api_database]
connection = %(db_url)s/devcloud_nova_api?charset=utf8
[database]
connection = %(db_url)s/devcloud_nova?charset=utf8
"""

NOVA_API_EXTRA = """\
[DEFAULT]
log_file = %(logs)s/nova-api.log
"""


def reports():
    """Seconds since each Nova service last reported, from cell1's DB.

    :returns: {(binary, host): seconds}, None when the database cannot be
        read. The age is what Nova's servicegroup takes for "up"
        (last_seen_up, else updated_at, else created_at).
    """
    out = mariadb.mysql(
        "SELECT `binary`, host, TIMESTAMPDIFF(SECOND, COALESCE("
        "last_seen_up, updated_at, created_at), UTC_TIMESTAMP()) FROM "
        "devcloud_nova.services WHERE deleted = 0", check=False)
    if out is None:
        return None
    ages = {}
    for line in out.splitlines():
        binary, host, age = line.split('\t')
        ages[(binary, host)] = int(age)
    return ages


def instance_uuids():
    """UUIDs of the instances Nova's cell1 database has (not deleted).

    :returns: a set (empty when the database or its schema does not exist
        yet), or None when MariaDB cannot be asked.
    """
    n = mariadb.mysql(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = 'devcloud_nova' AND TABLE_NAME = 'instances'",
        check=False)
    if n is None:
        return None
    if n.strip() == '0':
        return set()
    out = mariadb.mysql('SELECT uuid FROM devcloud_nova.instances WHERE '
                        'deleted = 0', check=False)
    return None if out is None else set(out.split())


def compute_service_exists(host):
    """Does cell1 have the nova-compute service of ``host``?

    Nova checks, when it registers a compute service for the first time,
    that its hypervisor has no instances yet.
    """
    ages = reports()
    return ages is not None and ('nova-compute', host) in ages


class Nova(base.Service):
    name = 'nova'
    processes = ('nova-api', 'nova-conductor', 'nova-scheduler',
                 'nova-compute')
    apis = {'nova-api': base.API('nova', PORT, '/')}
    databases = ('devcloud_nova_api', 'devcloud_nova_cell0', 'devcloud_nova')
    account = {
        'password': PASSWORD,
        'type': 'compute',
        'url': 'http://127.0.0.1:%d/v2.1' % PORT,
    }

    def vars(self, c):
        """The template values of nova's configs (and the mode's)."""
        return c.vars(
            db_url=mariadb.DB_URL,
            transport_url=rabbitmq.TRANSPORT_URL,
            keystone_url=keystone.URL,
            user='nova',
            password=PASSWORD,
            compute_host=COMPUTE_HOST,
            compute_driver=c.mode.compute_driver,
            conductor_workers=2,
            scheduler_workers=1,
        )

    def install(self, c):
        """What the mode's compute needs on the host (qemu-img...)."""
        missing = [b for b in c.mode.required_binaries
                   if not shutil.which(b)]
        if missing:
            common.apt_install(c.mode.apt_packages)

    def switch_mode(self, old, new):
        """Stop nova-compute when the mode changes from ``old`` to ``new``.

        Only nova-compute changes (its own host name and state); `up`
        starts the new one.
        """
        pid = proc.running('nova-compute')
        if old and old != new.name and pid:
            proc.stop_pids([pid])
            common.log('mode %s -> %s: stopped nova-compute (pid %d, host '
                       '%s)' % (old, new.name, pid,
                                modes.get_mode(old).compute_host))

    def configure(self, c):
        etc = os.path.join(common.ETC, 'nova')
        v = self.vars(c)
        kurl = keystone.URL
        self.state_dirs('nova/instances', 'nova/locks')
        service_venv.copy_file('etc/nova/api-paste.ini',
                               os.path.join(etc, 'api-paste.ini'))
        nova = NOVA_COMMON % v
        nova += (
            '\n[service_user]\nsend_service_user_token = true\n'
            + configs.auth_section(
                'service_user', 'nova', PASSWORD, kurl
            ).split('\n', 1)[1]
        )
        nova += configs.auth_section('placement', 'nova', PASSWORD, kurl)
        nova += configs.auth_section('neutron', 'nova', PASSWORD, kurl)
        # volumes=ceph: Nova's admin calls to Cinder (attachment cleanup);
        # the catalog gives the endpoint (volumev3)
        nova += configs.auth_section('cinder', 'nova', PASSWORD, kurl,
                                     'os_region_name = RegionOne\n')
        common.write(os.path.join(etc, 'nova.conf'), nova + NOVA_DB % v)
        # nova-compute must not see the databases
        common.write(os.path.join(etc, 'nova-compute.conf'),
                     nova + '\n' + c.mode.compute_config(v))
        common.write(os.path.join(etc, 'nova-api.conf'), NOVA_API_EXTRA % v)
        self.write_gunicorn_conf(
            'nova-api', 'nova.wsgi.osapi_compute:application', 2,
            [
                'OS_NOVA_CONFIG_DIR=%s/nova' % common.ETC,
                'OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-api.conf',
            ])

    def init(self, c):
        """Schemas of the API DB and both cells, cell0 and cell1 mapped."""
        nm = [common.vbin('nova-manage'), '--config-file',
              os.path.join(common.ETC, 'nova/nova.conf')]
        return self.schema_job(c, [
            nm + ['api_db', 'sync'],
            nm + ['cell_v2', 'map_cell0', '--database_connection',
                  mariadb.DB_URL + '/devcloud_nova_cell0?charset=utf8'],
            # exits 2 when the cell exists (re-run after a half-finished
            # setup)
            (nm + ['cell_v2', 'create_cell', '--name', 'cell1',
                   '--verbose'], 2),
            nm + ['db', 'sync'],
        ])

    def command(self, c, name):
        if name == 'nova-compute':
            return c.mode.compute_command(self.vars(c))
        return [
            common.vbin(name),
            '--config-file',
            os.path.join(common.ETC, 'nova/nova.conf'),
            '--log-file',
            os.path.join(common.LOGS, name + '.log'),
        ]

    def state(self, c, name, pid):
        """APIs answer; conductor, scheduler and compute must report.

        A process that failed to start (its log says so) or has not
        reported to Nova for DOWN_TIME seconds since it started does not
        count as running, however alive it is.
        """
        if name in self.apis:
            return super().state(c, name, pid)
        err = proc.startup_error(self.log_file(name), pid,
                                 proc.started_at(name) or 0)
        if err:
            return 'failed to start (%s)' % err
        ages = reports()
        if ages is None:
            return 'running'   # MariaDB does not answer: cannot tell
        host = COMPUTE_HOST
        if name == 'nova-compute':
            host = (c.mode or modes.current()).compute_host
        age = ages.get((name, host))
        return base.report_state(name, age, DOWN_TIME)

    def check(self, c):
        """Wait for nova-api and the mode's compute; make the flavors.

        The mode's compute must have reported and be the only enabled one.
        """
        super().check(c)
        mode = c.mode
        others = modes.other_hosts(mode)
        # the other mode's compute: forced down and disabled now; this
        # mode's: no longer forced down (else it never shows 'up'); enabled
        # once up
        service_venv.venvtool('compute-services', '--prepare',
                              mode.compute_host, *others)
        # a compute started just now must report in (a stopped one still
        # shows 'up' for service_down_time seconds)
        started = [proc.STARTED[n] for n in self.processes[1:]
                   if n in proc.STARTED]
        # ends at once when nova-compute exits or logs that it failed to
        # start (it stays alive then), instead of waiting out the timeout
        service_venv.venvtool('wait-nova', mode.compute_host,
                              '%.0f' % (min(started) if started else 0),
                              str(proc.running('nova-compute') or 0),
                              self.log_file('nova-compute'))
        # wait-nova goes by the API's "up", which a compute restarted within
        # service_down_time still is from its predecessor's report: wait for
        # a report of these processes, as `status` judges them
        for name in self.processes[1:]:
            self.wait_reported(c, name)
        # the scheduler must never pick the other mode's (stopped) compute
        service_venv.venvtool('compute-services', mode.compute_host, *others)
        common.log(
            'nova: conductor, scheduler, compute up; host %s (mode %s) '
            'mapped to cell1 and enabled; %s disabled'
            % (mode.compute_host, mode.name, ', '.join(others))
        )
        if not c.done('flavors'):
            service_venv.venvtool('flavors', json.dumps(FLAVORS))
            c.mark('flavors')


SERVICE = Nova()
