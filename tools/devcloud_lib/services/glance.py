"""Glance: images, with two file stores (fast, the default, and cheap).

gunicorn ``glance.wsgi.api`` on 127.0.0.1:29292, database devcloud_glance,
stores under .devcloud/state/glance/{fast,cheap,staging,tasks}, import
methods glance-direct, web-download (from 127.0.0.1 too) and copy-image,
unified limits (registered in Keystone by keystone.py from ``account``).
"""

import os

import common
import configs
import service_venv
from services import base
from services import keystone
from services import mariadb
import settings

PORT = 29292
PASSWORD = 'glance-secret'

GLANCE_CONF = """\
[DEFAULT]
log_file = %(logs)s/glance-api.log
public_endpoint = http://127.0.0.1:%(port_glance)s
worker_self_reference_url = http://127.0.0.1:%(port_glance)s
enabled_backends = fast:file, cheap:file%(small_backend)s
enabled_import_methods = [glance-direct,web-download,copy-image]
use_keystone_limits = true
show_image_direct_url = false
[database]
connection = %(db_url)s/devcloud_glance?charset=utf8
[glance_store]
default_backend = %(default_backend)s
[fast]
store_description = "Fast file store (default)"
filesystem_store_datadir = %(state)s/glance/fast/
[cheap]
store_description = "Cheap file store"
filesystem_store_datadir = %(state)s/glance/cheap/
%(small_section)s[os_glance_staging_store]
filesystem_store_datadir = %(state)s/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = %(state)s/glance/tasks/
[paste_deploy]
flavor = keystone
config_file = %(etc)s/glance/glance-api-paste.ini
[oslo_limit]
auth_url = %(keystone_url)s
auth_type = password
user_domain_name = Default
username = glance
password = %(pw_glance)s
system_scope = all
endpoint_id = %(glance_endpoint_id)s
[import_filtering_opts]
# web-download: loopback is refused unless the host is listed (then ONLY the
# listed hosts are allowed). An empty allowed_ports list means "no port
# restriction" (glance.common.utils.get_validated_address: a port is checked
# against the whitelist only when the whitelist is non-empty; disallowed_ports
# is empty by default). These ListOpts need the [brackets].
allowed_hosts = [127.0.0.1,localhost]
allowed_ports = []
[oslo_concurrency]
lock_path = %(state)s/glance/locks
[wsgi]
task_pool_threads = 4
""" + configs.AUTHTOKEN


SMALL = os.path.join(common.STATE, 'glance', 'small')
SMALL_SECTION = """\
[small]
store_description = "Small file store (tools/devcloud set glance_small_store)"
filesystem_store_datadir = %s/
"""


def mounted(path):
    """The options of the file system mounted at path, or None."""
    with open('/proc/mounts') as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                return fields[3]
    return None


def small_store(size):
    """The tmpfs of the store "small": mounted with ``size``, or none.

    :param size: e.g. '64M'; empty: unmount it.
    """
    opts = mounted(SMALL)
    if opts is not None and (not size or 'size=%s' % size.lower()
                             != _tmpfs_size(opts)):
        common.run(['umount', SMALL])
        common.log('glance: store "small" unmounted')
        opts = None
    if size and opts is None:
        os.makedirs(SMALL, exist_ok=True)
        common.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size,
                    'devcloud-glance-small', SMALL])
        common.log('glance: store "small" on a tmpfs of %s at %s'
                   % (size, SMALL))


def _tmpfs_size(opts):
    """'size=NNk' of tmpfs mount options, normalised as `mount` takes it."""
    for opt in opts.split(','):
        if opt.startswith('size='):
            kib = int(opt[5:].rstrip('k'))
            for unit, n in (('g', 1 << 20), ('m', 1 << 10)):
                if kib % n == 0:
                    return 'size=%d%s' % (kib // n, unit)
            return 'size=%dk' % kib
    return ''


class Glance(base.Service):
    name = 'glance'
    processes = ('glance',)
    apis = {'glance': base.API('glance', PORT, '/healthcheck')}
    databases = ('devcloud_glance',)
    account = {
        'password': PASSWORD,
        'type': 'image',
        'url': 'http://127.0.0.1:%d' % PORT,
        # Glance reads unified limits with a system-scoped token
        'system_reader': True,
        # registered limits (MiB for the sizes)
        'limits': {
            'image_size_total': 51200,
            'image_stage_total': 51200,
            'image_count_total': 200,
            'image_count_uploading': 20,
        },
    }

    def configure(self, c):
        self.state_dirs('glance/fast', 'glance/cheap', 'glance/staging',
                        'glance/tasks', 'glance/locks')
        size = settings.get('glance_small_store')
        small_store(size)
        service_venv.copy_file(
            'etc/glance/glance-api-paste.ini',
            os.path.join(common.ETC, 'glance/glance-api-paste.ini'),
        )
        common.write(
            os.path.join(common.ETC, 'glance/glance-api.conf'),
            GLANCE_CONF % c.vars(
                db_url=mariadb.DB_URL,
                keystone_url=keystone.URL,
                user='glance',
                password=PASSWORD,
                port_glance=PORT,
                pw_glance=PASSWORD,
                # known once keystone.py registered the catalog
                glance_endpoint_id=c.setup.get('glance_endpoint_id', ''),
                small_backend=', small:file' if size else '',
                small_section=SMALL_SECTION % SMALL if size else '',
                default_backend='small' if size else 'fast',
            ),
        )
        # an upload holds a thread for its whole length: ten nova-volume
        # builds (Cinder uploading ten volumes) took all 8 and the builds'
        # status requests timed out
        self.write_gunicorn_conf(
            'glance', 'glance.wsgi.api:application', 1,
            ['OS_GLANCE_CONFIG_DIR=%s/glance' % common.ETC], threads=32)

    def init(self, c):
        return self.schema_job(c, [[
            common.vbin('glance-manage'),
            '--config-file',
            os.path.join(common.ETC, 'glance/glance-api.conf'),
            'db_sync',
        ]])

    def start(self, c):
        # [oslo_limit]endpoint_id: Keystone's start has registered it now
        self.configure(c)
        super().start(c)

    def clean(self, c):
        """Unmount the small store's tmpfs (before .devcloud/ goes)."""
        if mounted(SMALL) is not None:
            common.run(['umount', SMALL])


SERVICE = Glance()
