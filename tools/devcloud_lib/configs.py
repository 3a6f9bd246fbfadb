"""Config file templates of the devcloud services (rendered with %-dicts).

Every value that differs per checkout (paths, ports, passwords, endpoint ids)
comes from the dict built in devcloud.py; nothing here knows the mode of the
compute driver (see modes.py).
"""

KEYSTONE_CONF = """\
[DEFAULT]
log_file = %(logs)s/keystone.log
[database]
connection = %(db_url)s/devcloud_keystone?charset=utf8
max_pool_size = 10
[token]
provider = fernet
expiration = 14400
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

# keystonemiddleware / service users: the same block with another user
AUTHTOKEN = """\
[keystone_authtoken]
www_authenticate_uri = %(keystone_url)s
auth_url = %(keystone_url)s
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = %(user)s
password = %(password)s
region_name = RegionOne
memcached_servers =
"""


def auth_section(section, user, password, keystone_url, extra=''):
    return (
        "[%s]\nauth_url = %s\nauth_type = password\n"
        "project_domain_name = Default\nuser_domain_name = Default\n"
        "project_name = service\nusername = %s\npassword = %s\n"
        "region_name = RegionOne\n%s"
        % (section, keystone_url, user, password, extra)
    )


GLANCE_CONF = """\
[DEFAULT]
log_file = %(logs)s/glance-api.log
public_endpoint = http://127.0.0.1:%(port_glance)s
worker_self_reference_url = http://127.0.0.1:%(port_glance)s
enabled_backends = fast:file, cheap:file
enabled_import_methods = [glance-direct,web-download,copy-image]
use_keystone_limits = true
show_image_direct_url = false
[database]
connection = %(db_url)s/devcloud_glance?charset=utf8
[glance_store]
default_backend = fast
[fast]
store_description = "Fast file store (default)"
filesystem_store_datadir = %(state)s/glance/fast/
[cheap]
store_description = "Cheap file store"
filesystem_store_datadir = %(state)s/glance/cheap/
[os_glance_staging_store]
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
""" + AUTHTOKEN

PLACEMENT_CONF = """\
[DEFAULT]
log_file = %(logs)s/placement-api.log
[placement_database]
connection = %(db_url)s/devcloud_placement?charset=utf8
[api]
auth_strategy = keystone
""" + AUTHTOKEN

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
""" + AUTHTOKEN

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
[cinder]
os_region_name = RegionOne
[oslo_messaging_notifications]
driver = noop
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0
""" + AUTHTOKEN

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

GUNICORN_CONF = """\
# generated by tools/devcloud: start as `cd <this dir> && gunicorn` (no argv:
# the OpenStack WSGI apps parse sys.argv with oslo.config)
import sys
sys.argv[1:] = []
wsgi_app = %(wsgi_app)r
bind = "127.0.0.1:%(port)s"
workers = %(workers)s
worker_class = "gthread"
threads = %(threads)s
timeout = 600
graceful_timeout = 10
proc_name = "devcloud-%(name)s"
errorlog = %(logs)r + "/%(name)s-gunicorn.log"
accesslog = %(logs)r + "/%(name)s-access.log"
control_socket_disable = True
# keepalive=0: every answer says Connection: close (clients reusing a pooled
# connection just as gunicorn closes it got "Connection reset by peer")
keepalive = 0
raw_env = %(raw_env)r
"""

OPENRC = """\
# source me (glance CLI / curl benchmarks). Do not combine with --os-cloud.
export OS_AUTH_TYPE=password
export OS_AUTH_URL=%(keystone_url)s/v3
export OS_IDENTITY_API_VERSION=3
export OS_IMAGE_API_VERSION=2
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
export OS_USERNAME=%(user)s
export OS_PASSWORD=%(password)s
export OS_PROJECT_NAME=%(project)s
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
"""

CLOUD = """\
  devcloud-%(name)s:
    auth:
      auth_url: %(keystone_url)s/v3
      username: %(user)s
      password: %(password)s
      project_name: %(project)s
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    image_api_version: 2
    interface: public
"""
