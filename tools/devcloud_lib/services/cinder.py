"""Cinder: volumes on the devcloud's Ceph (RBD driver), api/scheduler/volume.

Runs only with ``tools/devcloud set volumes=ceph`` (settings.py), after
Ceph (services/ceph.py); registered in the catalog as ``volumev3``.

cinder-api is gunicorn ``cinder.wsgi.api`` on 127.0.0.1:28776 (1 worker);
cinder-scheduler and cinder-volume are the console scripts. Database
devcloud_cinder, RabbitMQ as for Nova. One backend ``ceph``
(``cinder.volume.drivers.rbd.RBDDriver``) on ceph.POOL as client
ceph.USER; the volume type ``__DEFAULT__`` (made by Cinder) lands there.

The RBD driver imports Debian's ``rados``/``rbd`` bindings (python3-rados,
python3-rbd: there is no PyPI package). They are built for CPython 3.11
(``cpython-311-x86_64-linux-gnu``), the ABI of the service venv's pyenv
3.11.7 too, so ``configure`` links the two extension modules into the
venv's site-packages (only them: the rest of Debian's dist-packages stays
out of the venv).

cinder-api reads its configuration the way oslo.config finds it without
arguments (``cinder.wsgi.wsgi`` calls ``CONF(sys.argv[1:])`` and
gunicorn.conf.py empties argv): ``HOME`` is etc/cinder for the API only,
so it reads etc/cinder/cinder.conf and etc/cinder/cinder.conf.d/api.conf
(its log file); the other processes get ``--config-file``.
"""

import os
import time

import common
import configs
import service_venv
from services import base
from services import ceph
from services import keystone
from services import mariadb
from services import rabbitmq

PORT = 28776
DOWN_TIME = 60   # Cinder's service_down_time
PASSWORD = 'cinder-secret'
# what goes into service_venv.REQUIREMENTS (cinder 29 is the release of
# nova 34 / glance 33 / keystone 30; it resolves with constraints.txt as
# it is and adds distro, oslo.vmware, pyudev, rtslib-fb, suds-community,
# tabulate, zstd)
REQUIREMENT = 'cinder==29.0.0'
BINDINGS = ('rados', 'rbd')
DEBIAN_DIST = '/usr/lib/python3/dist-packages'
SOABI = 'cpython-311-x86_64-linux-gnu'

CINDER_CONF = """\
[DEFAULT]
host = devcloud
my_ip = 127.0.0.1
state_path = %(state)s/cinder
transport_url = %(transport_url)s
auth_strategy = keystone
api_paste_config = %(etc)s/cinder/api-paste.ini
# the filters each list accepts (metadata, name...): without the file
# Cinder accepts none ("Invalid filters ... are found in query options")
resource_query_filters_file = %(etc)s/cinder/resource_filters.json
enabled_backends = ceph
default_volume_type = __DEFAULT__
glance_api_servers = http://127.0.0.1:29292
# uploads to Glance: qcow2 or raw as the request says; never force-upload
# an attached volume (the isoplugin backend detaches first)
enable_force_upload = false
image_conversion_dir = %(state)s/cinder/conversion
[database]
connection = %(db_url)s/devcloud_cinder?charset=utf8
[oslo_concurrency]
lock_path = %(state)s/cinder/locks
[oslo_messaging_notifications]
driver = noop
""" + rabbitmq.MESSAGING_CONF + """\
[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = %(pool)s
rbd_ceph_conf = %(ceph_conf)s
rbd_user = %(ceph_user)s
rbd_secret_uuid = %(secret_uuid)s
rbd_flatten_volume_from_snapshot = false
rbd_max_clone_depth = 5
rados_connect_timeout = 10
image_volume_cache_enabled = false
# cinder runs as root: privsep daemons without sudo (as nova-compute)
[cinder_sys_admin]
helper_command = %(privsep)s
[privsep_osbrick]
helper_command = %(privsep)s
""" + configs.AUTHTOKEN + """\
# Nova's volume calls (attachment delete...) must carry its service token
service_token_roles = service
service_token_roles_required = true
"""

API_CONF = """\
[DEFAULT]
log_file = %(logs)s/cinder-api.log
"""


class Cinder(base.Service):
    name = 'cinder'
    processes = ('cinder-api', 'cinder-scheduler', 'cinder-volume')
    apis = {'cinder-api': base.API('cinder', PORT, '/healthcheck')}
    databases = ('devcloud_cinder',)
    account = {
        'password': PASSWORD,
        # Nova's [cinder]catalog_info looks for volumev3; openstacksdk
        # takes it for block-storage
        'type': 'volumev3',
        'url': 'http://127.0.0.1:%d/v3' % PORT,
    }

    def configure(self, c):
        self.state_dirs('cinder/locks', 'cinder/conversion')
        etc = os.path.join(common.ETC, 'cinder')
        service_venv.copy_file(
            'etc/cinder/api-paste.ini', os.path.join(etc, 'api-paste.ini'),
            edits=[('/etc/cinder/healthcheck_disable',
                    os.path.join(common.RUN, 'cinder-healthcheck-disable'))])
        service_venv.copy_file(
            'etc/cinder/resource_filters.json',
            os.path.join(etc, 'resource_filters.json'))
        v = c.vars(
            db_url=mariadb.DB_URL,
            transport_url=rabbitmq.TRANSPORT_URL,
            keystone_url=keystone.URL,
            user='cinder',
            password=PASSWORD,
            pool=ceph.POOL,
            ceph_conf=ceph.CONF,
            ceph_user=ceph.USER,
            secret_uuid=ceph.SECRET_UUID,
            privsep='%s --config-file %s/cinder/cinder.conf' % (
                common.vbin('privsep-helper'), common.ETC),
        )
        text = CINDER_CONF % v
        # Cinder calls Nova (volume events) with its own service user
        text += configs.auth_section('nova', 'cinder', PASSWORD,
                                     keystone.URL)
        common.write(os.path.join(etc, 'cinder.conf'), text)
        common.write(os.path.join(etc, 'cinder.conf.d', 'api.conf'),
                     API_CONF % v)
        self.write_gunicorn_conf(
            'cinder-api', 'cinder.wsgi.api:application', 1,
            ['HOME=%s' % etc])
        self.link_bindings()

    def link_bindings(self):
        """Debian's rados and rbd extension modules, into the venv."""
        site = common.run([common.VPY, '-c', 'import sysconfig; '
                           'print(sysconfig.get_paths()["purelib"])'
                           ]).stdout.strip()
        for mod in BINDINGS:
            so = '%s.%s.so' % (mod, SOABI)
            src = os.path.join(DEBIAN_DIST, so)
            dst = os.path.join(site, so)
            if not os.path.exists(src):
                common.die('%s is missing: apt-get install python3-%s'
                           % (src, mod))
            if os.path.realpath(dst) != src:
                if os.path.lexists(dst):
                    os.unlink(dst)
                os.symlink(src, dst)
        probe = [common.VPY, '-c', 'import rados, rbd']
        p = common.run(probe, check=False)
        if p.returncode != 0:
            common.die('the service venv cannot import Debian\'s rados/rbd '
                       'bindings: %s' % (p.stderr.strip().splitlines()
                                         or ['?'])[-1])

    def init(self, c):
        return self.schema_job(c, [[
            common.vbin('cinder-manage'), '--config-file',
            os.path.join(common.ETC, 'cinder/cinder.conf'), 'db', 'sync',
        ]])

    def command(self, c, name):
        return [
            common.vbin(name),
            '--config-file', os.path.join(common.ETC, 'cinder/cinder.conf'),
            '--log-file', os.path.join(common.LOGS, name + '.log'),
        ]

    def start(self, c):
        # cinder-volume's driver connects to Ceph once, at its start
        ceph.SERVICE.wait_usable(c)
        super().start(c)

    def state(self, c, name, pid):
        """The API answers; scheduler and volume report (as Nova's)."""
        if name in self.apis:
            return super().state(c, name, pid)
        ages = reports()
        if ages is None:
            return 'running'   # MariaDB does not answer: cannot tell
        age = ages.get(name)
        return base.report_state(name, age, DOWN_TIME)

    def check(self, c):
        """The API answers; scheduler and volume have reported since start.

        cinder-volume reports only once its RBD driver has connected to
        Ceph and is initialised.
        """
        super().check(c)
        end = time.time() + 120   # for both
        for name in self.processes[1:]:
            self.wait_reported(c, name, max(end - time.time(), 0))
        common.log('cinder: scheduler and volume (backend ceph) up')


def reports():
    """Seconds since each Cinder service last reported: {binary: age}.

    None when MariaDB cannot be asked; the age counts from updated_at (or
    created_at), as Cinder's service_down_time does.
    """
    out = mariadb.mysql(
        "SELECT `binary`, TIMESTAMPDIFF(SECOND, COALESCE(updated_at, "
        "created_at), UTC_TIMESTAMP()) FROM devcloud_cinder.services "
        "WHERE deleted = 0", check=False)
    if out is None:
        return None
    ages = {}
    for line in out.splitlines():
        binary, age = line.split('\t')
        ages[binary] = min(int(age), ages.get(binary, int(age)))
    return ages


SERVICE = Cinder()
