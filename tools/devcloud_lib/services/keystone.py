"""Keystone: identity, the catalog, and the accounts of every service.

gunicorn ``keystone.wsgi.api`` on 127.0.0.1:25000, fernet tokens, database
devcloud_keystone. ``start`` waits for it and registers, once, the users
admin/demo/other with their projects and, for every registered service
with an ``account``, its service user, catalog entry and registered
limits (venvtool.py keystone-init). ``configure`` also writes the client
files: .devcloud/clouds.yaml and <user>-openrc.
"""

import json
import os

import common
import configs
import proc
import service_venv
from services import base
from services import mariadb
import settings

PORT = 25000
URL = 'http://127.0.0.1:%d' % PORT   # what services use as auth_url
ADMIN_PASSWORD = 'admin-secret'
# clouds.yaml / openrc: cloud name -> (user, project, password); venvtool.py
# keystone-init makes demo and other (admin comes from the bootstrap)
USERS = {
    'admin': ('admin', 'admin', ADMIN_PASSWORD),
    'demo': ('demo', 'demo', 'demo-secret'),
    'other': ('other', 'other', 'other-secret'),
}

KEYSTONE_CONF = """\
[DEFAULT]
log_file = %(logs)s/keystone.log
[database]
connection = %(db_url)s/devcloud_keystone?charset=utf8
max_pool_size = 10
[token]
provider = fernet
expiration = %(token_expiration)s
[fernet_tokens]
key_repository = %(state)s/keystone/fernet-keys
[fernet_receipts]
key_repository = %(state)s/keystone/fernet-keys
[credential]
key_repository = %(state)s/keystone/credential-keys
[cache]
enabled = true
backend = dogpile.cache.memory
"""


class Keystone(base.Service):
    name = 'keystone'
    processes = ('keystone',)
    apis = {'keystone': base.API('keystone', PORT, '/v3')}
    databases = ('devcloud_keystone',)

    def configure(self, c):
        self.state_dirs('keystone/fernet-keys', 'keystone/credential-keys')
        common.write(os.path.join(common.ETC, 'keystone/keystone.conf'),
                     KEYSTONE_CONF % c.vars(
                         db_url=mariadb.DB_URL,
                         token_expiration=settings.get('token_expiration')))
        self.write_gunicorn_conf(
            'keystone', 'keystone.wsgi.api:application', 1,
            ['OS_KEYSTONE_CONFIG_DIR=%s/keystone' % common.ETC])
        self.write_client_files()

    def write_client_files(self):
        clouds = 'clouds:\n'
        for name, (user, project, password) in USERS.items():
            d = {
                'name': name,
                'user': user,
                'project': project,
                'password': password,
                'keystone_url': URL,
            }
            clouds += configs.CLOUD % d
            common.write(os.path.join(common.D, '%s-openrc' % name),
                         configs.OPENRC % d)
        common.write(os.path.join(common.D, 'clouds.yaml'), clouds)

    def init(self, c):
        """db_sync, fernet and credential keys, bootstrap (admin), once."""
        if c.done('keystone_bootstrap'):
            return None
        km = [
            common.vbin('keystone-manage'),
            '--config-file',
            os.path.join(common.ETC, 'keystone/keystone.conf'),
        ]
        owner = ['--keystone-user', 'root', '--keystone-group', 'root']
        url = URL + '/v3/'
        return proc.Job('keystone', [
            km + ['db_sync'],
            km + ['fernet_setup'] + owner,
            km + ['credential_setup'] + owner,
            km + [
                'bootstrap',
                '--bootstrap-password', ADMIN_PASSWORD,
                '--bootstrap-admin-url', url,
                '--bootstrap-internal-url', url,
                '--bootstrap-public-url', url,
                '--bootstrap-region-id', 'RegionOne',
            ],
        ], 'keystone_bootstrap')

    def start(self, c):
        """Start, wait, and register every service's account (once).

        The services after Keystone read what this registers (Glance: its
        endpoint id, in setup.json as <service>_endpoint_id).
        """
        super().start(c)
        self.wait_api('keystone')
        spec = {s.name: s.account for s in c.services if s.account}
        # a service turned off (volumes=none: Cinder) leaves the catalog:
        # clients would find its dead endpoint
        for key in sorted(c.setup):
            name = key[:-len('_endpoint_id')]
            if (key.endswith('_endpoint_id') and c.setup[key] and
                    name not in spec):
                service_venv.venvtool('keystone-remove', c.setup[key])
                c.mark(key, None)
                common.log('keystone: %s removed from the catalog' % name)
        # once, and again for a service added to an existing cloud
        # (volumes=ceph: Cinder); keystone-init keeps what exists
        if c.done('keystone_content') and all(
                c.done('%s_endpoint_id' % name) for name in spec):
            return
        service_venv.venvtool('keystone-init',
                              json.dumps(spec, sort_keys=True))
        kc = common.load_json(os.path.join(common.STATE, 'keystone.json'))
        for name, endpoint_id in sorted(kc['endpoints'].items()):
            c.mark('%s_endpoint_id' % name, endpoint_id)
        c.mark('keystone_content')
        common.log('keystone: projects, users, roles, catalog, registered '
                   'limits of %s' % ', '.join(sorted(spec)))

    def check(self, c):
        """Nothing more to wait for: ``start`` waited until it answered."""


SERVICE = Keystone()
