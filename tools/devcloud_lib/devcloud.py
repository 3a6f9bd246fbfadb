#!/usr/bin/env python3
"""tools/devcloud: a real, local OpenStack (Keystone, Glance, Placement, Nova,
Neutron) for isoplugin's functional tests and demo.

Runs with the system python3 only (standard library); everything OpenStack
runs from a separate service virtualenv (default
~/.cache/isoplugin-devcloud/venv, override with DEVCLOUD_VENV).

    tools/devcloud up [--mode fake]  install what is missing, set up, start
    tools/devcloud status [--quiet]  what runs (exit 0 when all is up)
    tools/devcloud down              stop what devcloud started (by pid)
    tools/devcloud restart [SVC...]  stop the named services, then up
    tools/devcloud clean             down + drop its databases, rabbit
                                     vhost/user and .devcloud/
    tools/devcloud rss               memory of all devcloud processes
    tools/devcloud env               print export lines

See tools/devcloud_lib/README.rst.
"""

import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import configs  # noqa: E402
import modes  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
D = os.environ.get('DEVCLOUD_DIR') or os.path.join(REPO, '.devcloud')
ETC, LOGS, RUN, STATE = (
    os.path.join(D, x) for x in ('etc', 'logs', 'run', 'state')
)
VENV = os.environ.get('DEVCLOUD_VENV') or os.path.join(
    os.path.expanduser('~'), '.cache', 'isoplugin-devcloud', 'venv'
)
VPY = os.path.join(VENV, 'bin', 'python')
CONSTRAINTS = os.path.join(HERE, 'constraints.txt')
REQUIREMENTS = [
    'nova==34.0.0',
    'keystone==30.0.0',
    'glance==33.0.0',
    'openstack-placement==16.0.0',
    'neutron==29.0.0',
    'python-openstackclient',
    'openstacksdk',
    'pycdlib',
    'gunicorn',
    'PyMySQL',
    'python-memcached',
]
TAG = 'DEVCLOUD_ID'  # env var put on every process devcloud starts

PORTS = {
    'keystone': 25000,
    'glance': 29292,
    'placement': 28778,
    'nova': 28774,
    'neutron': 29696,
}
DB_USER, DB_PASSWORD = 'devcloud', 'devcloud-db-secret'
RABBIT_USER, RABBIT_PASSWORD, RABBIT_VHOST = (
    'devcloud',
    'devcloud-rabbit-secret',
    'devcloud',
)
DATABASES = [
    'devcloud_keystone',
    'devcloud_glance',
    'devcloud_placement',
    'devcloud_nova_api',
    'devcloud_nova_cell0',
    'devcloud_nova',
    'devcloud_neutron',
]
PASSWORDS = {
    'admin': 'admin-secret',
    'demo': 'demo-secret',
    'other': 'other-secret',
    'glance': 'glance-secret',
    'nova': 'nova-secret',
    'placement': 'placement-secret',
    'neutron': 'neutron-secret',
}
COMPUTE_HOST = 'devcloud'

T0 = time.time()
STARTED = {}  # services started by this command: name -> epoch


def log(msg):
    print('[devcloud %6.1fs] %s' % (time.time() - T0, msg), flush=True)


def die(msg):
    print('devcloud: ERROR: %s' % msg, file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------- helpers


def tcp_open(port, host='127.0.0.1', timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url, timeout=2):
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except urllib.error.HTTPError as e:
        return e.code < 500
    except Exception:
        return False


def wait_for(pred, timeout, what, interval=0.25):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(interval)
    die('timeout (%ds) waiting for %s' % (timeout, what))


def run(cmd, log_name=None, check=True, env=None, ok_codes=(0,), **kw):
    if log_name:
        with open(os.path.join(LOGS, log_name), 'ab') as f:
            f.write(('\n$ %s\n' % ' '.join(cmd)).encode())
            f.flush()
            p = subprocess.run(
                cmd,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                **kw
            )
    else:
        p = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
            **kw
        )
    if check and p.returncode not in ok_codes:
        where = (
            ('see %s/%s' % (LOGS, log_name))
            if log_name
            else (p.stdout or '') + (p.stderr or '')
        )
        die(
            'command failed (rc %s): %s\n%s'
            % (p.returncode, ' '.join(cmd), where)
        )
    return p


def venv_env(extra=None):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith('OS_'):
            del env[k]
    env['PATH'] = os.path.join(VENV, 'bin') + os.pathsep + env.get('PATH', '')
    env['PYTHONWARNINGS'] = 'ignore'
    env[TAG] = D
    env.pop('VIRTUAL_ENV', None)
    env.pop('PYTHONPATH', None)
    if extra:
        env.update(extra)
    return env


def vbin(name):
    return os.path.join(VENV, 'bin', name)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = None
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
    if old != text:
        with open(path, 'w') as f:
            f.write(text)
    os.chmod(path, mode)


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def save_json(path, data):
    write(path, json.dumps(data, indent=2, sort_keys=True) + '\n')


# ---------------------------------------------------------------- processes


def proc_tagged(pid):
    """Is pid alive and started by this devcloud (pid reuse guard)?

    Its cwd is inside .devcloud/ (every service is started there; the
    gunicorn masters in .devcloud/etc/<svc>) and its command line names the
    venv or devcloud, or it carries DEVCLOUD_ID in its environment
    (setproctitle may clobber that, hence the cwd check).
    """
    if not proc_alive(pid):
        return False
    try:
        cwd = os.readlink('/proc/%d/cwd' % pid)
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmd = f.read()
        if (cwd == D or cwd.startswith(D + '/')) and (
            VENV.encode() in cmd or b'devcloud' in cmd
        ):
            return True
        with open('/proc/%d/environ' % pid, 'rb') as f:
            env = f.read().split(b'\0')
    except OSError:
        return False
    return ('%s=%s' % (TAG, D)).encode() in env


def children_map():
    kids = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    return kids


def tagged_pids():
    """The running services (by pid file) and all their descendants."""
    kids = children_map()
    out = set()
    todo = [running(n) for n in SERVICES]
    while todo:
        p = todo.pop()
        if p and p not in out and proc_alive(p):
            out.add(p)
            todo.extend(kids.get(p, []))
    return sorted(out)


def read_pid(name):
    try:
        with open(os.path.join(RUN, name + '.pid')) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(name):
    pid = read_pid(name)
    return pid if pid and proc_tagged(pid) else None


def start_process(name, cmd, cwd=None, env=None):
    pid = running(name)
    if pid:
        return pid
    out = open(os.path.join(LOGS, name + '.out'), 'ab')
    p = subprocess.Popen(
        cmd,
        cwd=cwd or D,
        env=env or venv_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    write(os.path.join(RUN, name + '.pid'), '%d\n' % p.pid)
    STARTED[name] = time.time()
    log('started %s (pid %d)' % (name, p.pid))
    return p.pid


def stop_pids(pids, timeout=30):
    pids = [p for p in pids if p]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    end = time.time() + timeout
    while time.time() < end and any(proc_alive(p) for p in pids):
        time.sleep(0.2)
    for p in pids:
        if proc_alive(p):
            log('pid %d still alive after %ds: SIGKILL' % (p, timeout))
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def proc_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


# ---------------------------------------------------------------- system deps

_apt_updated = []


def apt_install(pkgs):
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    if not _apt_updated:
        log('apt-get update')
        run(['apt-get', 'update'], log_name='apt.log', env=env)
        _apt_updated.append(1)
    log('apt-get install %s' % ' '.join(pkgs))
    run(
        ['apt-get', 'install', '-y', '--no-install-recommends'] + pkgs,
        log_name='apt.log',
        env=env,
    )


def ensure_binaries(mode):
    missing = [b for b in mode.required_binaries if not shutil.which(b)]
    if missing:
        apt_install(mode.apt_packages)


def ensure_mariadb():
    if not shutil.which('mysql'):
        apt_install(['mariadb-client'])
    if tcp_open(3306):
        return
    if not os.path.exists('/usr/sbin/mariadbd'):
        apt_install(['mariadb-server', 'mariadb-client'])
    if tcp_open(3306):
        return
    log('starting MariaDB (not running; devcloud will stop it on down)')
    os.makedirs('/run/mysqld', exist_ok=True)
    shutil.chown('/run/mysqld', 'mysql', 'mysql')
    run(
        [
            'start-stop-daemon',
            '--start',
            '--oknodo',
            '--background',
            '--exec',
            '/usr/sbin/mariadbd',
            '--',
            '--user=mysql',
            '--bind-address=127.0.0.1',
        ],
        log_name='mariadb-start.log',
    )
    wait_for(lambda: tcp_open(3306), 60, 'MariaDB on 127.0.0.1:3306')
    pid = None
    for pf in ('/run/mysqld/mysqld.pid',):
        try:
            pid = int(open(pf).read().strip())
        except (OSError, ValueError):
            pass
    if not pid:
        pid = pid_listening(3306)
    if pid:
        write(os.path.join(RUN, 'mariadb.started'), '%d\n' % pid)


def ensure_rabbitmq():
    if tcp_open(5672):
        return
    if not shutil.which('rabbitmq-server'):
        apt_install(['rabbitmq-server'])
    if tcp_open(5672):
        return
    log('starting RabbitMQ (not running; devcloud will stop it on down)')
    # loopback only, like the rest of the devcloud
    env = dict(os.environ, RABBITMQ_NODE_IP_ADDRESS='127.0.0.1',
               ERL_EPMD_ADDRESS='127.0.0.1')
    run(['rabbitmq-server', '-detached'], log_name='rabbitmq-start.log',
        env=env)
    wait_for(lambda: tcp_open(5672), 120, 'RabbitMQ on 127.0.0.1:5672', 0.5)
    pid = pid_listening(5672)
    if pid:
        write(os.path.join(RUN, 'rabbitmq.started'), '%d\n' % pid)


def pid_listening(port):
    """pid of the process listening on 127.0.0.1:port (via /proc, no ss)."""
    inodes = set()
    for tbl in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(tbl) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if (
                        parts[3] == '0A'
                        and int(parts[1].split(':')[1], 16) == port
                    ):
                        inodes.add(parts[9])
        except OSError:
            pass
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            for fd in os.listdir('/proc/%s/fd' % name):
                link = os.readlink('/proc/%s/fd/%s' % (name, fd))
                if link.startswith('socket:[') and link[8:-1] in inodes:
                    return int(name)
        except OSError:
            continue
    return None


def mysql(sql, check=True):
    for args in (['mysql', '-uroot'], ['mysql', '-uroot', '-h127.0.0.1']):
        p = run(args + ['-N', '-B', '-e', sql], check=False)
        if p.returncode == 0:
            return p.stdout
    if check:
        die('mysql as root failed: %s' % (p.stderr or p.stdout))
    return None


OWNER = 'devcloud:' + D     # database COMMENT: which checkout made it


def devcloud_databases():
    """{name: owner comment} of the devcloud_* databases in MariaDB."""
    out = mysql("SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM "
                "information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                "'devcloud\\_%'", check=False) or ''
    dbs = {}
    for line in out.splitlines():
        name, _, comment = line.partition('\t')
        if name:
            dbs[name] = comment.strip()
    return dbs


def foreign(dbs):
    """Databases made by another checkout's devcloud (one per machine)."""
    return {n: c for n, c in dbs.items() if c and c != OWNER}


def rabbitmqctl(*args, check=True):
    return run(['rabbitmqctl', '-q'] + list(args), check=check)


def setup_db_and_broker(setup):
    if setup.get('databases'):
        dbs = devcloud_databases()
        other = foreign(dbs)
        if other:
            # another checkout took them over (DEVCLOUD_TAKEOVER=1): they
            # no longer match this checkout's fernet keys, image files and
            # compute node identity (nova-compute would refuse to start)
            die('the databases %s of this checkout were taken over by '
                'another checkout (%s): the state in %s no longer matches '
                'them. Run `tools/devcloud clean` here, then `tools/devcloud '
                'up` (with DEVCLOUD_TAKEOVER=1 to drop the other '
                "checkout's databases)"
                % (', '.join(sorted(other)), sorted(set(other.values())), D))
        # mark databases made before ownership comments existed
        unmarked = [n for n, c in dbs.items() if not c and n in DATABASES]
        if unmarked:
            mysql('; '.join("ALTER DATABASE `%s` COMMENT '%s'"
                            % (n, OWNER.replace("'", "''"))
                            for n in unmarked))
    if not setup.get('databases'):
        # no record of them in .devcloud/state: databases of that name are
        # leftovers of a .devcloud/ deleted without `clean` (their fernet
        # keys, image files and compute node identity are gone): start over
        dbs = devcloud_databases()
        other = foreign(dbs)
        if other and not os.environ.get('DEVCLOUD_TAKEOVER'):
            die('the databases %s belong to another checkout (%s); run '
                '`tools/devcloud clean` there (or set DEVCLOUD_TAKEOVER=1 to '
                'drop them)' % (', '.join(sorted(other)),
                                sorted(set(other.values()))))
        old = sorted(dbs)
        if old:
            log('dropping leftover databases without .devcloud state: %s'
                % ', '.join(old))
        stmts = ['DROP DATABASE IF EXISTS `%s`' % d for d in old]
        stmts += [
            "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8 "
            "COMMENT '%s'" % (d, OWNER.replace("'", "''"))
            for d in DATABASES
        ]
        for host in ('localhost', '127.0.0.1'):
            stmts.append(
                "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'"
                % (DB_USER, host, DB_PASSWORD)
            )
            stmts.append(
                "GRANT ALL PRIVILEGES ON `devcloud\\_%%`.* TO '%s'@'%s'"
                % (DB_USER, host)
            )
        mysql('; '.join(stmts))
        setup['databases'] = DATABASES
        save_setup(setup)
        log('MariaDB: databases %s, user %s' % (', '.join(DATABASES), DB_USER))
    if not setup.get('rabbit'):
        vhosts = rabbitmqctl('list_vhosts').stdout.split()
        if RABBIT_VHOST not in vhosts:
            rabbitmqctl('add_vhost', RABBIT_VHOST)
        users = [
            line.split()[0]
            for line in rabbitmqctl('list_users').stdout.splitlines()
            if line.strip()
        ]
        if RABBIT_USER not in users:
            rabbitmqctl('add_user', RABBIT_USER, RABBIT_PASSWORD)
        else:
            rabbitmqctl('change_password', RABBIT_USER, RABBIT_PASSWORD)
        rabbitmqctl(
            'set_permissions',
            '-p',
            RABBIT_VHOST,
            RABBIT_USER,
            '.*',
            '.*',
            '.*',
        )
        setup['rabbit'] = True
        save_setup(setup)
        log('RabbitMQ: vhost %s, user %s' % (RABBIT_VHOST, RABBIT_USER))


# ---------------------------------------------------------------- venv


def venv_stamp():
    h = hashlib.sha256()
    h.update(open(CONSTRAINTS, 'rb').read())
    h.update(' '.join(REQUIREMENTS).encode())
    return h.hexdigest()


def ensure_venv():
    stamp_file = os.path.join(VENV, '.devcloud-stamp')
    want = venv_stamp()
    if (
        os.path.exists(VPY)
        and os.path.exists(stamp_file)
        and open(stamp_file).read().strip() == want
    ):
        return
    t = time.time()
    log(
        'installing the service venv %s (pip, a few minutes the first time)'
        % VENV
    )
    os.makedirs(os.path.dirname(VENV), exist_ok=True)
    os.makedirs(LOGS, exist_ok=True)
    if not os.path.exists(VPY):
        p = run([sys.executable, '-m', 'venv', VENV], check=False)
        if p.returncode != 0:
            apt_install(['python3-venv'])
            shutil.rmtree(VENV, ignore_errors=True)
            run([sys.executable, '-m', 'venv', VENV])
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    env.pop('PIP_REQUIRE_VIRTUALENV', None)
    run(
        [VPY, '-m', 'pip', 'install', '-U', 'pip', 'setuptools', 'wheel'],
        log_name='pip.log',
        env=env,
    )
    run(
        [VPY, '-m', 'pip', 'install', '-c', CONSTRAINTS] + REQUIREMENTS,
        log_name='pip.log',
        env=env,
    )
    write(stamp_file, want + '\n')
    log('service venv ready in %.0fs' % (time.time() - t))


# ---------------------------------------------------------------- config


def ctx_for(mode, setup):
    db_url = 'mysql+pymysql://%s:%s@127.0.0.1' % (DB_USER, DB_PASSWORD)
    return {
        'etc': ETC,
        'logs': LOGS,
        'state': STATE,
        'run': RUN,
        'db_url': db_url,
        'transport_url': 'rabbit://%s:%s@127.0.0.1:5672/%s'
        % (RABBIT_USER, RABBIT_PASSWORD, RABBIT_VHOST),
        'keystone_url': 'http://127.0.0.1:%d' % PORTS['keystone'],
        'port_glance': PORTS['glance'],
        'pw_glance': PASSWORDS['glance'],
        'glance_endpoint_id': setup.get('glance_endpoint_id', ''),
        'compute_host': COMPUTE_HOST,
        'compute_driver': mode.compute_driver,
        'conductor_workers': 2,
        'scheduler_workers': 1,
        'venv_python': VPY,
        'devcloud_dir': D,
    }


def gunicorn_conf(name, app, port, workers, threads, raw_env):
    return configs.GUNICORN_CONF % {
        'wsgi_app': app,
        'port': port,
        'workers': workers,
        'threads': threads,
        'name': name,
        'logs': LOGS,
        'raw_env': raw_env,
    }


def copy_from_venv(rel, dest, edits=()):
    src = os.path.join(VENV, rel)
    text = open(src).read()
    for a, b in edits:
        text = text.replace(a, b)
    write(dest, text)


def write_configs(mode, setup):
    c = ctx_for(mode, setup)
    kurl = c['keystone_url']
    for d in (
        'keystone/fernet-keys',
        'keystone/credential-keys',
        'glance/fast',
        'glance/cheap',
        'glance/staging',
        'glance/tasks',
        'glance/locks',
        'nova/instances',
        'nova/locks',
        'neutron/locks',
    ):
        os.makedirs(os.path.join(STATE, d), exist_ok=True)

    def authtoken(user):
        return dict(c, user=user, password=PASSWORDS[user])

    # keystone
    write(
        os.path.join(ETC, 'keystone/keystone.conf'), configs.KEYSTONE_CONF % c
    )
    write(
        os.path.join(ETC, 'keystone/gunicorn.conf.py'),
        gunicorn_conf(
            'keystone',
            'keystone.wsgi.api:application',
            PORTS['keystone'],
            1,
            8,
            ['OS_KEYSTONE_CONFIG_DIR=%s/keystone' % ETC],
        ),
    )
    # glance
    copy_from_venv(
        'etc/glance/glance-api-paste.ini',
        os.path.join(ETC, 'glance/glance-api-paste.ini'),
    )
    write(
        os.path.join(ETC, 'glance/glance-api.conf'),
        configs.GLANCE_CONF % authtoken('glance'),
    )
    write(
        os.path.join(ETC, 'glance/gunicorn.conf.py'),
        gunicorn_conf(
            'glance',
            'glance.wsgi.api:application',
            PORTS['glance'],
            1,
            8,
            ['OS_GLANCE_CONFIG_DIR=%s/glance' % ETC],
        ),
    )
    # placement
    write(
        os.path.join(ETC, 'placement/placement.conf'),
        configs.PLACEMENT_CONF % authtoken('placement'),
    )
    write(
        os.path.join(ETC, 'placement/gunicorn.conf.py'),
        gunicorn_conf(
            'placement',
            'placement.wsgi.api:application',
            PORTS['placement'],
            1,
            8,
            ['OS_PLACEMENT_CONFIG_DIR=%s/placement' % ETC],
        ),
    )
    # neutron
    copy_from_venv(
        'etc/neutron/api-paste.ini',
        os.path.join(ETC, 'neutron/api-paste.ini'),
        [
            (
                '/var/lib/neutron/healthcheck_disable',
                STATE + '/neutron/healthcheck_disable',
            )
        ],
    )
    write(
        os.path.join(ETC, 'neutron/neutron.conf'),
        configs.NEUTRON_CONF % authtoken('neutron')
        + configs.auth_section('nova', 'nova', PASSWORDS['nova'], kurl)
        + configs.auth_section(
            'placement', 'neutron', PASSWORDS['neutron'], kurl
        ),
    )
    write(os.path.join(ETC, 'neutron/ml2_conf.ini'), configs.ML2_CONF)
    write(
        os.path.join(ETC, 'neutron/gunicorn.conf.py'),
        gunicorn_conf(
            'neutron',
            'neutron.wsgi.api:application',
            PORTS['neutron'],
            1,
            8,
            [
                'OS_NEUTRON_CONFIG_DIR=%s/neutron' % ETC,
                'OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini',
            ],
        ),
    )
    # nova
    copy_from_venv(
        'etc/nova/api-paste.ini', os.path.join(ETC, 'nova/api-paste.ini')
    )
    nova = configs.NOVA_COMMON % authtoken('nova')
    nova += (
        '\n[service_user]\nsend_service_user_token = true\n'
        + configs.auth_section(
            'service_user', 'nova', PASSWORDS['nova'], kurl
        ).split('\n', 1)[1]
    )
    nova += configs.auth_section('placement', 'nova', PASSWORDS['nova'], kurl)
    nova += configs.auth_section('neutron', 'nova', PASSWORDS['nova'], kurl)
    write(os.path.join(ETC, 'nova/nova.conf'), nova + configs.NOVA_DB % c)
    # nova-compute must not see the databases
    write(
        os.path.join(ETC, 'nova/nova-compute.conf'),
        nova + '\n' + mode.compute_config(c),
    )
    write(os.path.join(ETC, 'nova/nova-api.conf'), configs.NOVA_API_EXTRA % c)
    write(
        os.path.join(ETC, 'nova/gunicorn.conf.py'),
        gunicorn_conf(
            'nova-api',
            'nova.wsgi.osapi_compute:application',
            PORTS['nova'],
            2,
            8,
            [
                'OS_NOVA_CONFIG_DIR=%s/nova' % ETC,
                'OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-api.conf',
            ],
        ),
    )
    write_client_files()


USERS = {
    'admin': ('admin', 'admin'),
    'demo': ('demo', 'demo'),
    'other': ('other', 'other'),
}


def write_client_files():
    kurl = 'http://127.0.0.1:%d' % PORTS['keystone']
    clouds = 'clouds:\n'
    for name, (user, project) in USERS.items():
        d = {
            'name': name,
            'user': user,
            'project': project,
            'password': PASSWORDS[user],
            'keystone_url': kurl,
        }
        clouds += configs.CLOUD % d
        write(os.path.join(D, '%s-openrc' % name), configs.OPENRC % d)
    write(os.path.join(D, 'clouds.yaml'), clouds)
    link = os.path.join(D, 'venv')
    if os.path.realpath(link) != os.path.realpath(VENV):
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(VENV, link)


# ---------------------------------------------------------------- setup


def load_setup():
    return load_json(os.path.join(STATE, 'setup.json'), {})


def save_setup(s):
    save_json(os.path.join(STATE, 'setup.json'), s)


SERVICES = [
    'keystone',
    'glance',
    'placement',
    'neutron',
    'nova-api',
    'nova-conductor',
    'nova-scheduler',
    'nova-compute',
]
WSGI = {
    'keystone': ('keystone', PORTS['keystone'], '/v3'),
    'glance': ('glance', PORTS['glance'], '/healthcheck'),
    'placement': ('placement', PORTS['placement'], '/'),
    'neutron': ('neutron', PORTS['neutron'], '/'),
    'nova-api': ('nova', PORTS['nova'], '/'),
}


def start_service(name, mode, ctx):
    if name in WSGI:
        d, port, _ = WSGI[name]
        if not running(name) and tcp_open(port):
            die(
                'port 127.0.0.1:%d is taken by another process (pid %s); '
                'cannot start %s' % (port, pid_listening(port), name)
            )
        return start_process(
            name, [vbin('gunicorn')], cwd=os.path.join(ETC, d)
        )
    if name in ('nova-conductor', 'nova-scheduler'):
        return start_process(
            name,
            [
                vbin(name),
                '--config-file',
                os.path.join(ETC, 'nova/nova.conf'),
                '--log-file',
                os.path.join(LOGS, name + '.log'),
            ],
        )
    if name == 'nova-compute':
        return start_process(name, mode.compute_command(ctx))
    raise ValueError(name)


def wait_http(name):
    _, port, path = WSGI[name]
    url = 'http://127.0.0.1:%d%s' % (port, path)

    def ok():
        if not running(name):
            die('%s exited; see %s/%s*' % (name, LOGS, name))
        return http_ok(url)

    wait_for(ok, 180, '%s at %s' % (name, url))
    log('%s answers at %s' % (name, url))


def db_schemas(setup):
    """Run the schema migrations in parallel (they are independent)."""
    if setup.get('schemas'):
        return
    env = venv_env()
    nconf = ['--config-file', os.path.join(ETC, 'nova/nova.conf')]
    db_url = 'mysql+pymysql://%s:%s@127.0.0.1' % (DB_USER, DB_PASSWORD)
    nm = [vbin('nova-manage')] + nconf
    jobs = {
        'glance': [
            [
                vbin('glance-manage'),
                '--config-file',
                os.path.join(ETC, 'glance/glance-api.conf'),
                'db_sync',
            ]
        ],
        'placement': [
            [
                vbin('placement-manage'),
                '--config-file',
                os.path.join(ETC, 'placement/placement.conf'),
                'db',
                'sync',
            ]
        ],
        'nova': [
            nm + ['api_db', 'sync'],
            nm
            + [
                'cell_v2',
                'map_cell0',
                '--database_connection',
                db_url + '/devcloud_nova_cell0?charset=utf8',
            ],
            nm + ['cell_v2', 'create_cell', '--name', 'cell1', '--verbose'],
            nm + ['db', 'sync'],
        ],
        'neutron': [
            [
                vbin('neutron-db-manage'),
                '--config-file',
                os.path.join(ETC, 'neutron/neutron.conf'),
                '--config-file',
                os.path.join(ETC, 'neutron/ml2_conf.ini'),
                'upgrade',
                'heads',
            ]
        ],
    }
    # a small shell chain per service, run concurrently; "create_cell" exits 2
    # when the cell already exists (re-run after a half-finished setup)
    procs = {}
    for name, cmds in jobs.items():
        parts = []
        for cmd in cmds:
            sh = ' '.join(shlex.quote(x) for x in cmd)
            if 'create_cell' in cmd:
                sh = '{ %s || [ $? -eq 2 ]; }' % sh
            parts.append(sh)
        script = ' && '.join(parts)
        f = open(os.path.join(LOGS, 'setup-%s.log' % name), 'ab')
        procs[name] = (
            subprocess.Popen(
                ['bash', '-c', script],
                env=env,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            ),
            time.time(),
        )
        f.close()
    return procs


def keystone_setup(setup):
    if setup.get('keystone_bootstrap'):
        return
    env = venv_env()
    km = [
        vbin('keystone-manage'),
        '--config-file',
        os.path.join(ETC, 'keystone/keystone.conf'),
    ]
    url = 'http://127.0.0.1:%d/v3/' % PORTS['keystone']
    for cmd in (
        km + ['db_sync'],
        km
        + [
            'fernet_setup',
            '--keystone-user',
            'root',
            '--keystone-group',
            'root',
        ],
        km
        + [
            'credential_setup',
            '--keystone-user',
            'root',
            '--keystone-group',
            'root',
        ],
        km
        + [
            'bootstrap',
            '--bootstrap-password',
            PASSWORDS['admin'],
            '--bootstrap-admin-url',
            url,
            '--bootstrap-internal-url',
            url,
            '--bootstrap-public-url',
            url,
            '--bootstrap-region-id',
            'RegionOne',
        ],
    ):
        run(cmd, log_name='setup-keystone.log', env=env)
    setup['keystone_bootstrap'] = True
    save_setup(setup)
    log('keystone: db_sync, fernet keys, bootstrap')


def venvtool(*args, check=True):
    env = venv_env(
        {
            'OS_CLIENT_CONFIG_FILE': os.path.join(D, 'clouds.yaml'),
            'DEVCLOUD_DIR': D,
        }
    )
    env.pop(TAG)  # short-lived helper, not a service
    return run(
        [VPY, os.path.join(HERE, 'venvtool.py')] + list(args),
        log_name='venvtool.log',
        env=env,
        check=check,
    )


# ---------------------------------------------------------------- commands


def cmd_up(args):
    t_start = time.time()
    os.makedirs(LOGS, exist_ok=True)
    os.makedirs(RUN, exist_ok=True)
    os.makedirs(STATE, exist_ok=True)
    mode_file = os.path.join(D, 'mode')
    old_mode = (
        open(mode_file).read().strip() if os.path.exists(mode_file) else None
    )
    mode_name = args.mode or old_mode or 'fake'
    mode = modes.get_mode(mode_name)
    if old_mode and old_mode != mode_name and running('nova-compute'):
        # switch: only nova-compute changes (its own host name and state)
        pid = running('nova-compute')
        stop_pids([pid])
        log('mode %s -> %s: stopped nova-compute (pid %d, host %s)'
            % (old_mode, mode_name, pid,
               modes.get_mode(old_mode).compute_host))
    write(mode_file, mode_name + '\n')
    for name, (_, port, _) in WSGI.items():
        if not running(name) and tcp_open(port):
            die('127.0.0.1:%d (%s) is in use by another process (pid %s), '
                'maybe the devcloud of another checkout: run its '
                '`tools/devcloud down` first'
                % (port, name, pid_listening(port)))
    ensure_binaries(mode)
    ensure_mariadb()
    ensure_rabbitmq()
    ensure_venv()
    t_install = time.time()
    setup = load_setup()
    first = not setup.get('done')
    write_configs(mode, setup)
    setup_db_and_broker(setup)
    ctx = ctx_for(mode, setup)
    mode.prepare(ctx, log)
    procs = db_schemas(setup)
    keystone_setup(setup)
    start_service('keystone', mode, ctx)
    wait_http('keystone')
    if not setup.get('keystone_content'):
        venvtool('keystone-init')
        kc = load_json(os.path.join(STATE, 'keystone.json'))
        setup['glance_endpoint_id'] = kc['glance_endpoint_id']
        setup['keystone_content'] = True
        save_setup(setup)
        write_configs(mode, setup)
        log('keystone: projects, users, roles, catalog, '
            'glance registered limits')
    if procs:
        for name, (p, t) in procs.items():
            if p.wait() != 0:
                die(
                    'schema setup of %s failed: see %s/setup-%s.log'
                    % (name, LOGS, name)
                )
        setup['schemas'] = True
        save_setup(setup)
        log('schemas of glance, placement, nova (api, cell0, cell1), '
            'neutron ready')
    for name in SERVICES[1:]:
        start_service(name, mode, ctx)
    for name in ('glance', 'placement', 'neutron', 'nova-api'):
        wait_http(name)
    # the other mode's compute: forced down and disabled now; this mode's:
    # no longer forced down (else it never shows 'up'); enabled once up
    venvtool('compute-services', '--prepare', mode.compute_host,
             *modes.other_hosts(mode))
    # a compute started just now must report in (a stopped one still shows
    # 'up' for service_down_time seconds)
    venvtool(
        'wait-nova',
        mode.compute_host,
        '%.0f'
        % (
            min(STARTED.get(n, 0) or 9e9 for n in SERVICES[5:])
            if any(n in STARTED for n in SERVICES[5:])
            else 0
        ),
    )
    # the scheduler must never pick the other mode's (stopped) compute
    venvtool('compute-services', mode.compute_host, *modes.other_hosts(mode))
    log(
        'nova: conductor, scheduler, compute up; host %s (mode %s) mapped '
        'to cell1 and enabled; %s disabled'
        % (mode.compute_host, mode_name, ', '.join(modes.other_hosts(mode)))
    )
    if not setup.get('flavors'):
        venvtool('flavors')
        setup['flavors'] = True
    setup['done'] = True
    save_setup(setup)
    t_end = time.time()
    log(
        'devcloud up (%s start, mode %s): %.1fs total '
        '(install/system checks %.1fs)'
        % (
            'cold' if first else 'warm',
            mode_name,
            t_end - t_start,
            t_install - t_start,
        )
    )
    log(
        'clouds: OS_CLIENT_CONFIG_FILE=%s/clouds.yaml '
        '(devcloud-admin, devcloud-demo, devcloud-other)' % D
    )


def service_status():
    out = {}
    for name in SERVICES:
        pid = running(name)
        state = 'running' if pid else 'stopped'
        if pid and name in WSGI:
            _, port, path = WSGI[name]
            if not http_ok('http://127.0.0.1:%d%s' % (port, path), timeout=3):
                state = 'not answering'
        out[name] = (state, pid)
    return out


def cmd_status(args):
    st = service_status()
    setup = load_setup()
    up = all(s == 'running' for s, _ in st.values()) and setup.get('done')
    if args.quiet:
        sys.exit(0 if up else 3)
    for name, (s, pid) in st.items():
        extra = ''
        if name in WSGI:
            extra = 'http://127.0.0.1:%d' % WSGI[name][1]
        print('%-15s %-14s %-8s %s' % (name, s, pid or '-', extra))
    for svc, port in (('mariadb', 3306), ('rabbitmq', 5672)):
        ours = os.path.exists(os.path.join(RUN, svc + '.started'))
        print(
            '%-15s %-14s %-8s 127.0.0.1:%d (%s)'
            % (
                svc,
                'running' if tcp_open(port) else 'stopped',
                '-',
                port,
                'started by devcloud' if ours else 'shared, not managed',
            )
        )
    print(
        'state %s  venv %s  mode %s'
        % (
            D,
            VENV,
            (
                open(os.path.join(D, 'mode')).read().strip()
                if os.path.exists(os.path.join(D, 'mode'))
                else '-'
            ),
        )
    )
    print('devcloud is %s' % ('UP' if up else 'NOT up'))
    sys.exit(0 if up else 3)


def cmd_restart(args):
    """Stop the named services (all when none is named), then `up`."""
    names = args.services or SERVICES
    bad = [n for n in names if n not in SERVICES]
    if bad:
        die('unknown service(s) %s (known: %s)' % (bad, ', '.join(SERVICES)))
    pids = [running(n) for n in names]
    stop_pids(pids)
    for n, p in zip(names, pids):
        if p:
            log('stopped %s (pid %d)' % (n, p))
    args.mode = None
    cmd_up(args)


def cmd_down(args, quiet=False):
    t = time.time()
    # all at once (they shut down gracefully in parallel); SIGKILL after 30 s
    pids = {name: running(name) for name in SERVICES}
    tree = tagged_pids()
    stop_pids(list(pids.values()))
    for name in SERVICES:
        if pids[name]:
            log('stopped %s (pid %d)' % (name, pids[name]))
        try:
            os.unlink(os.path.join(RUN, name + '.pid'))
        except OSError:
            pass
    left = [p for p in tree if proc_alive(p)]
    if left:
        log('stopping leftover devcloud processes %s' % left)
        stop_pids(left, timeout=10)
    libvirt_down(undefine=getattr(args, 'undefine', False))
    for svc in ('mariadb', 'rabbitmq'):
        f = os.path.join(RUN, svc + '.started')
        if getattr(args, 'keep_system', False) or not os.path.exists(f):
            continue
        pid = int(open(f).read().strip())
        if proc_alive(pid):
            if svc == 'rabbitmq':
                rabbitmqctl('shutdown', check=False)
            stop_pids([pid], timeout=60)
            log('stopped %s (pid %d, started by devcloud)' % (svc, pid))
        os.unlink(f)
    log('devcloud down in %.1fs' % (time.time() - t))


def libvirt_down(undefine=False):
    """Stop libvirtd/virtlogd of tools/libvirt-host, if it started them.

    With ``undefine`` first destroy and undefine the domains whose files
    are in this devcloud (Nova's instances): a later cold start makes a new
    compute service, and Nova refuses to start a new service on a
    hypervisor that already has instances.
    """
    lv = os.path.join(D, 'libvirt')
    if not os.path.exists(os.path.join(lv, 'libvirtd.pid')):
        return
    if undefine and shutil.which('virsh'):
        uri = ['virsh', '-q', '-c', 'qemu:///system']
        p = run(uri + ['list', '--all', '--name'], check=False)
        for name in (p.stdout or '').split():
            xml = run(uri + ['dumpxml', name], check=False).stdout or ''
            if D + '/' in xml:
                run(uri + ['destroy', name], check=False)
                run(uri + ['undefine', '--nvram', name], check=False)
                log('libvirt: removed domain %s' % name)
    env = dict(os.environ, DEVCLOUD_STATE=D)
    p = run([os.path.join(REPO, 'tools', 'libvirt-host'), 'down'],
            check=False, env=env)
    for line in (p.stdout + p.stderr).splitlines():
        log(line)


def cmd_clean(args):
    args.keep_system = True
    args.undefine = True
    cmd_down(args)
    ours = os.path.exists(os.path.join(STATE, 'setup.json'))
    if tcp_open(3306):
        dbs = devcloud_databases()
        other = foreign(dbs)
        mine = sorted(n for n in dbs if n not in other)
        if other:
            log('MariaDB: not touching %s (made by %s)'
                % (', '.join(sorted(other)), sorted(set(other.values()))))
        stmts = ['DROP DATABASE IF EXISTS `%s`' % d for d in mine]
        if not other:
            stmts += [
                "DROP USER IF EXISTS '%s'@'%s'" % (DB_USER, h)
                for h in ('localhost', '127.0.0.1')
            ]
        if stmts:
            mysql('; '.join(stmts), check=False)
        log('MariaDB: dropped %s%s'
            % (', '.join(mine) or 'no databases',
               '' if other else ' and user %s' % DB_USER))
        ours = ours or bool(mine)
        ours = ours and not other
    else:
        log('MariaDB not running: databases not dropped')
    if tcp_open(5672) and ours:
        rabbitmqctl('delete_vhost', RABBIT_VHOST, check=False)
        rabbitmqctl('delete_user', RABBIT_USER, check=False)
        log(
            'RabbitMQ: deleted vhost %s and user %s'
            % (RABBIT_VHOST, RABBIT_USER)
        )
    args.keep_system = False
    args.undefine = False
    cmd_down(args)
    shutil.rmtree(D, ignore_errors=True)
    log('removed %s (the service venv %s is kept)' % (D, VENV))


def rss_of(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_of(pid):
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_rss(args):
    tr = tp = 0
    print('%-8s %8s %8s  %s' % ('PID', 'RSS MiB', 'PSS MiB', 'COMMAND'))
    for pid in tagged_pids():
        r, p = rss_of(pid), pss_of(pid)
        tr += r
        tp += p
        cmd = open('/proc/%d/cmdline' % pid, 'rb').read().replace(b'\0', b' ')
        print(
            '%-8d %8.0f %8.0f  %s'
            % (pid, r / 1024, p / 1024, cmd.decode(errors='replace')[:90])
        )
    print(
        'TOTAL devcloud services: RSS %.0f MiB, PSS %.0f MiB '
        '(shared MariaDB/RabbitMQ not included)' % (tr / 1024, tp / 1024)
    )


def cmd_env(args):
    print('export OS_CLIENT_CONFIG_FILE=%s/clouds.yaml' % D)
    print('export PATH=%s/bin:$PATH' % VENV)


def lock_or_wait():
    """One up/down/clean at a time per .devcloud.

    Tests of several sessions may call `up` at once: an exclusive flock,
    held until this process exits.
    """
    import fcntl

    os.makedirs(RUN, exist_ok=True)
    f = open(os.path.join(RUN, 'devcloud.lock'), 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log('another tools/devcloud up/down/clean runs here; waiting for it')
        fcntl.flock(f, fcntl.LOCK_EX)
    LOCKS.append(f)


LOCKS = []


def main():
    ap = argparse.ArgumentParser(
        prog='tools/devcloud',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('up')
    p.add_argument('--mode', choices=sorted(modes.MODES))
    p = sub.add_parser('status')
    p.add_argument('--quiet', '-q', action='store_true')
    sub.add_parser('down')
    p = sub.add_parser('restart', help='restart services (all if none given)')
    p.add_argument('services', nargs='*', metavar='SERVICE')
    sub.add_parser('clean')
    sub.add_parser('rss')
    sub.add_parser('env')
    args = ap.parse_args()
    if args.cmd in ('up', 'down', 'clean', 'restart'):
        lock_or_wait()
    if os.geteuid() != 0 and args.cmd in ('up', 'clean'):
        print(
            'devcloud: warning: not root; '
            'installing system packages will fail',
            file=sys.stderr,
        )
    {
        'up': cmd_up,
        'status': cmd_status,
        'down': cmd_down,
        'restart': cmd_restart,
        'clean': cmd_clean,
        'rss': cmd_rss,
        'env': cmd_env,
    }[args.cmd](args)


if __name__ == '__main__':
    main()
