"""MariaDB: the databases of every service (a shared system daemon).

If something listens on 127.0.0.1:3306, devcloud uses it and never stops
it; else it installs and starts mariadb-server and stops it on ``down``.
One database per entry of ``Service.databases`` of the registered
services, owned by the user devcloud; each database's COMMENT names the
.devcloud that made it (one devcloud per machine: see ``init``).
"""

import os
import shutil

import common
import proc
from services import base

DB_USER, DB_PASSWORD = 'devcloud', 'devcloud-db-secret'
# what services put in [database]connection, + '/<database>?charset=utf8'
DB_URL = 'mysql+pymysql://%s:%s@127.0.0.1' % (DB_USER, DB_PASSWORD)
PORT = 3306
OWNER = 'devcloud:' + common.D     # database COMMENT: which checkout made it


def mysql(sql, check=True):
    """Run sql as MariaDB's root (socket first, then TCP)."""
    for args in (['mysql', '-uroot'], ['mysql', '-uroot', '-h127.0.0.1']):
        p = common.run(args + ['-N', '-B', '-e', sql], check=False)
        if p.returncode == 0:
            return p.stdout
    if check:
        common.die('mysql as root failed: %s' % (p.stderr or p.stdout))
    return None


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


def ours(c):
    """Are the shared databases (and so the rabbit vhost) this checkout's?

    True when this .devcloud has a setup or MariaDB holds databases of it,
    and none of another checkout.
    """
    mine = os.path.exists(c.setup_file)
    if proc.tcp_open(PORT):
        dbs = devcloud_databases()
        other = foreign(dbs)
        mine = (mine or any(n not in other for n in dbs)) and not other
    return mine


class MariaDB(base.SharedDaemon):
    name = 'mariadb'
    port = PORT

    def databases_of(self, c):
        return [d for s in c.services for d in s.databases]

    def install(self, c):
        if not shutil.which('mysql'):
            common.apt_install(['mariadb-client'])
        if proc.tcp_open(PORT):
            return
        if not os.path.exists('/usr/sbin/mariadbd'):
            common.apt_install(['mariadb-server', 'mariadb-client'])
        self.start(c)

    def start(self, c):
        if proc.tcp_open(PORT):
            return
        common.log('starting MariaDB (not running; devcloud will stop it '
                   'on down)')
        os.makedirs('/run/mysqld', exist_ok=True)
        shutil.chown('/run/mysqld', 'mysql', 'mysql')
        common.run(
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
        proc.wait_for(lambda: proc.tcp_open(PORT), 60,
                      'MariaDB on 127.0.0.1:%d' % PORT)
        pid = None
        try:
            pid = int(open('/run/mysqld/mysqld.pid').read().strip())
        except (OSError, ValueError):
            pass
        if not pid:
            pid = proc.pid_listening(PORT)
        self.record_started(pid)

    def init(self, c):
        """The databases and their user, once; refuse foreign ones.

        With a record of the databases in setup.json they must still be
        this checkout's. Without one, databases of that name are leftovers
        of a .devcloud/ deleted without `clean` (their fernet keys, image
        files and compute node identity are gone): drop them and start
        over; another checkout's only with DEVCLOUD_TAKEOVER=1.
        """
        wanted = self.databases_of(c)
        dbs = devcloud_databases()
        other = foreign(dbs)
        if c.done('databases'):
            if other:
                # another checkout took them over (DEVCLOUD_TAKEOVER=1):
                # they no longer match this checkout's fernet keys, image
                # files and compute node identity (nova-compute would refuse
                # to start)
                common.die(
                    'the databases %s of this checkout were taken over by '
                    'another checkout (%s): the state in %s no longer '
                    'matches them. Run `tools/devcloud clean` here, then '
                    '`tools/devcloud up` (with DEVCLOUD_TAKEOVER=1 to drop '
                    "the other checkout's databases)"
                    % (', '.join(sorted(other)),
                       sorted(set(other.values())), common.D))
            # mark databases made before ownership comments existed
            unmarked = [n for n, cm in dbs.items() if not cm and n in wanted]
            if unmarked:
                mysql('; '.join("ALTER DATABASE `%s` COMMENT '%s'"
                                % (n, OWNER.replace("'", "''"))
                                for n in unmarked))
            # a service added to an existing cloud (volumes=ceph: Cinder)
            made = c.setup['databases']
            missing = [d for d in wanted if d not in made]
            if missing:
                mysql('; '.join(
                    "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8 "
                    "COMMENT '%s'" % (d, OWNER.replace("'", "''"))
                    for d in missing))
                c.mark('databases', made + missing)
                common.log('MariaDB: databases %s added' % ', '.join(missing))
            return None
        if other and not os.environ.get('DEVCLOUD_TAKEOVER'):
            common.die(
                'the databases %s belong to another checkout (%s); run '
                '`tools/devcloud clean` there (or set DEVCLOUD_TAKEOVER=1 '
                'to drop them)' % (', '.join(sorted(other)),
                                   sorted(set(other.values()))))
        old = sorted(dbs)
        if old:
            common.log('dropping leftover databases without .devcloud '
                       'state: %s' % ', '.join(old))
        stmts = ['DROP DATABASE IF EXISTS `%s`' % d for d in old]
        stmts += [
            "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8 "
            "COMMENT '%s'" % (d, OWNER.replace("'", "''"))
            for d in wanted
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
        c.mark('databases', wanted)
        common.log('MariaDB: databases %s, user %s'
                   % (', '.join(wanted), DB_USER))
        return None

    def clean(self, c):
        """Drop this checkout's databases (and the user, if no other's)."""
        if not proc.tcp_open(PORT):
            common.log('MariaDB not running: databases not dropped')
            return
        dbs = devcloud_databases()
        other = foreign(dbs)
        mine = sorted(n for n in dbs if n not in other)
        if other:
            common.log('MariaDB: not touching %s (made by %s)'
                       % (', '.join(sorted(other)),
                          sorted(set(other.values()))))
        stmts = ['DROP DATABASE IF EXISTS `%s`' % d for d in mine]
        if not other:
            stmts += [
                "DROP USER IF EXISTS '%s'@'%s'" % (DB_USER, h)
                for h in ('localhost', '127.0.0.1')
            ]
        if stmts:
            mysql('; '.join(stmts), check=False)
        common.log('MariaDB: dropped %s%s'
                   % (', '.join(mine) or 'no databases',
                      '' if other else ' and user %s' % DB_USER))


SERVICE = MariaDB()
