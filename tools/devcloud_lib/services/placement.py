"""Placement: the resource providers Nova schedules on.

gunicorn ``placement.wsgi.api`` on 127.0.0.1:28778, database
devcloud_placement.
"""

import os

import common
import configs
from services import base
from services import keystone
from services import mariadb

PORT = 28778
PASSWORD = 'placement-secret'

PLACEMENT_CONF = """\
[DEFAULT]
log_file = %(logs)s/placement-api.log
[placement_database]
connection = %(db_url)s/devcloud_placement?charset=utf8
[api]
auth_strategy = keystone
""" + configs.AUTHTOKEN


class Placement(base.Service):
    name = 'placement'
    processes = ('placement',)
    apis = {'placement': base.API('placement', PORT, '/')}
    databases = ('devcloud_placement',)
    account = {
        'password': PASSWORD,
        'type': 'placement',
        'url': 'http://127.0.0.1:%d' % PORT,
    }

    def configure(self, c):
        common.write(
            os.path.join(common.ETC, 'placement/placement.conf'),
            PLACEMENT_CONF % c.vars(db_url=mariadb.DB_URL,
                                    keystone_url=keystone.URL,
                                    user='placement', password=PASSWORD),
        )
        self.write_gunicorn_conf(
            'placement', 'placement.wsgi.api:application', 1,
            ['OS_PLACEMENT_CONFIG_DIR=%s/placement' % common.ETC])

    def init(self, c):
        return self.schema_job(c, [[
            common.vbin('placement-manage'),
            '--config-file',
            os.path.join(common.ETC, 'placement/placement.conf'),
            'db',
            'sync',
        ]])


SERVICE = Placement()
