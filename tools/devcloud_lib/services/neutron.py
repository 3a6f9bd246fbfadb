"""Neutron: the real API server and database, no agents.

gunicorn ``neutron.wsgi.api`` on 127.0.0.1:29696, database
devcloud_neutron, ML2 without mechanism drivers: networks, subnets, ports
and security groups work through the real API and DB, no port is ever
bound (servers boot with networks='none'). Nova needs it in the catalog.
"""

import os

import common
import configs
import service_venv
from services import base
from services import keystone
from services import mariadb
from services import nova
from services import rabbitmq

PORT = 29696
PASSWORD = 'neutron-secret'

NEUTRON_CONF = """\
[DEFAULT]
log_file = %(logs)s/neutron-api.log
state_path = %(state)s/neutron
core_plugin = ml2
service_plugins =
auth_strategy = keystone
transport_url = %(transport_url)s
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_paste_config = %(etc)s/neutron/api-paste.ini
[database]
connection = %(db_url)s/devcloud_neutron?charset=utf8
[oslo_concurrency]
lock_path = %(state)s/neutron/locks
[oslo_messaging_notifications]
driver = noop
""" + rabbitmq.MESSAGING_CONF + configs.AUTHTOKEN

ML2_CONF = """\
[ml2]
# no agents and no mechanism drivers: the API, DB and policy are real Neutron;
# ports can be created but never bound (nova boots with networks='none').
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
[ml2_type_vxlan]
vni_ranges = 1:1000
"""


class Neutron(base.Service):
    name = 'neutron'
    processes = ('neutron',)
    apis = {'neutron': base.API('neutron', PORT, '/')}
    databases = ('devcloud_neutron',)
    account = {
        'password': PASSWORD,
        'type': 'network',
        'url': 'http://127.0.0.1:%d' % PORT,
    }

    def configure(self, c):
        etc = os.path.join(common.ETC, 'neutron')
        self.state_dirs('neutron/locks')
        service_venv.copy_file(
            'etc/neutron/api-paste.ini',
            os.path.join(etc, 'api-paste.ini'),
            [
                (
                    '/var/lib/neutron/healthcheck_disable',
                    common.STATE + '/neutron/healthcheck_disable',
                )
            ],
        )
        kurl = keystone.URL
        common.write(
            os.path.join(etc, 'neutron.conf'),
            NEUTRON_CONF % c.vars(db_url=mariadb.DB_URL,
                                  transport_url=rabbitmq.TRANSPORT_URL,
                                  keystone_url=kurl,
                                  user='neutron', password=PASSWORD)
            + configs.auth_section('nova', 'nova', nova.PASSWORD, kurl)
            + configs.auth_section('placement', 'neutron', PASSWORD, kurl),
        )
        common.write(os.path.join(etc, 'ml2_conf.ini'), ML2_CONF)
        self.write_gunicorn_conf(
            'neutron', 'neutron.wsgi.api:application', 1,
            [
                'OS_NEUTRON_CONFIG_DIR=%s/neutron' % common.ETC,
                'OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini',
            ])

    def init(self, c):
        return self.schema_job(c, [[
            common.vbin('neutron-db-manage'),
            '--config-file',
            os.path.join(common.ETC, 'neutron/neutron.conf'),
            '--config-file',
            os.path.join(common.ETC, 'neutron/ml2_conf.ini'),
            'upgrade',
            'heads',
        ]])


SERVICE = Neutron()
