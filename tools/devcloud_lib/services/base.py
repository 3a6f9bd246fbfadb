"""What a devcloud service is: the verbs ``devcloud.py`` calls, in order.

``tools/devcloud up`` calls, for every service of ``devcloud.SERVICES`` in
order, phase by phase:

1. ``install(c)``: what the host needs, outside the service venv (Debian
   packages; MariaDB and RabbitMQ also get started here when nothing
   listens on their port, as the shared system daemons of every checkout).
   Then the service venv is installed (service_venv.py).
2. ``configure(c)``: write the configuration under .devcloud/etc/ and
   make the state directories. Runs on every ``up``; ``common.write`` only
   rewrites what changed.
3. ``init(c)``: one-time setup recorded in .devcloud/state/setup.json
   (``c.done``/``c.mark``): databases, schema migrations, keys. May return
   a ``proc.Job`` running in the background: the migrations of all
   services run in parallel.
4. ``start(c)``: start its processes (``up`` has waited for its init
   job). Returns at once, unless a later service needs this one answering
   (Keystone: the accounts of every service are registered here).
5. ``check(c)``: wait until the service answers; die with a pointer to
   its log otherwise. One-time steps that need the running service come
   after the wait (Nova: flavors).

``down`` stops every process at once, then calls ``stop(c)`` in reverse
order; ``clean`` calls ``clean(c)`` in reverse order (drop what the
service keeps outside .devcloud/) before that; ``status`` prints
``status(c)``.

The defaults below do what an OpenStack service of processes needs:
a service lists its processes in ``processes`` and its APIs (served by
gunicorn from .devcloud/etc/<dir>/gunicorn.conf.py) in ``apis``, and
implements ``command`` for the processes that are not APIs.
"""

import collections
import os
import time

import common
import configs
import proc

# an API process: gunicorn started in etc/<etc_dir>, health check URL path
API = collections.namedtuple('API', 'etc_dir port path')


def report_state(name, age, down_time):
    """What the report of an OpenStack service process says of it.

    Nova's and Cinder's services (not their APIs) write a report to their
    database every few seconds; one that has not reported for
    ``down_time`` seconds (their ``service_down_time``) since it started is
    not running, however alive its process is.

    :param name: the process, for its start time.
    :param age: seconds since its last report, None if it never reported.
    :returns: ``running``, ``starting`` or why it is neither.
    """
    up_for = time.time() - (proc.started_at(name) or 0)
    if age is not None and age <= min(down_time, up_for + 1):
        return 'running'
    if up_for < down_time:
        return 'starting'
    return 'not reporting (last report: %s)' % (
        'never' if age is None else '%ds ago' % age)


class Context:
    """What the verbs get: the compute mode, the registry, setup.json.

    :param mode: the compute mode (modes.py), None for down/clean/status.
    :param services: the registry (``devcloud.SERVICES``), in order.
    """

    setup_file = os.path.join(common.STATE, 'setup.json')

    def __init__(self, mode, services):
        self.mode = mode
        self.services = services
        self.setup = common.load_json(self.setup_file, {})
        # setup.json written before the services had modules: one flag for
        # the schemas of these four
        if self.setup.pop('schemas', None):
            for name in ('glance', 'placement', 'nova', 'neutron'):
                self.setup['%s_schema' % name] = True

    def done(self, key):
        """Is the one-time step ``key`` done (recorded in setup.json)?"""
        return bool(self.setup.get(key))

    def mark(self, key, value=True):
        """Record the one-time step ``key`` (or a value) in setup.json."""
        self.setup[key] = value
        common.save_json(self.setup_file, self.setup)

    def vars(self, **extra):
        """Paths every config template may use, plus ``extra``."""
        return dict({
            'etc': common.ETC,
            'logs': common.LOGS,
            'state': common.STATE,
            'run': common.RUN,
            'venv_python': common.VPY,
            'devcloud_dir': common.D,
        }, **extra)


class Service:
    """A service of the devcloud; the verbs do nothing unless overridden."""

    #: short name (logs, setup.json keys)
    name = None
    #: names of the processes it runs, in start order (pid files
    #: .devcloud/run/<name>.pid; `tools/devcloud restart NAME` takes these)
    processes = ()
    #: process name -> API(etc_dir, port, health path) for gunicorn APIs
    apis = {}
    #: a system daemon shared by every checkout (MariaDB, RabbitMQ): shown
    #: apart by `status`, not counted for "devcloud is UP"
    shared = False
    #: databases it needs (created by the mariadb service)
    databases = ()
    #: its Keystone service user, password, catalog entry and extras (see
    #: keystone.Keystone.accounts); None for no Keystone account
    account = None

    def install(self, c):
        """Debian packages and system daemons it needs."""

    def configure(self, c):
        """Write its configuration files under .devcloud/etc/."""

    def init(self, c):
        """One-time setup; may return a proc.Job running in background."""
        return None

    def schema_job(self, c, cmds):
        """For ``init``: a Job running cmds (the migrations) once.

        :param cmds: as for ``proc.Job``.
        :returns: the Job, or None when <name>_schema is in setup.json.
        """
        key = '%s_schema' % self.name
        if c.done(key):
            return None
        return proc.Job(self.name, cmds, key)

    def start(self, c):
        """Start its processes that do not run, or run but do not serve.

        A process is judged by ``broken``, not by its pid alone: one that
        is alive but does not serve (a nova-compute whose start failed
        stays alive) is stopped and started again.
        """
        for name in self.processes:
            pid = proc.running(name)
            why = pid and self.broken(c, name, pid)
            if why:
                common.log('%s (pid %d) runs but %s: restarting it'
                           % (name, pid, why))
                proc.stop_processes([name])
            if name in self.apis:
                self.start_api(name)
            else:
                proc.start_process(name, self.command(c, name))

    def state(self, c, name, pid):
        """'running', 'starting', or what is wrong with a live process.

        Default: an API must answer its health URL; other processes are
        taken as running while they are alive (a service whose processes
        report somewhere overrides this).
        """
        if name not in self.apis:
            return 'running'
        api = self.apis[name]
        url = 'http://127.0.0.1:%d%s' % (api.port, api.path)
        return 'running' if proc.http_ok(url, timeout=3) else 'not answering'

    def log_file(self, name):
        """The log file of process ``name``."""
        return os.path.join(common.LOGS, name + '.log')

    def wait_reported(self, c, name, timeout=90):
        """Until ``state`` calls the process running; die if it fails."""
        end = time.time() + timeout
        while True:
            pid = proc.running(name)
            state = self.state(c, name, pid) if pid else 'stopped'
            if state == 'running':
                return
            if state != 'starting' or time.time() > end:
                common.die('%s is %s; see %s'
                           % (name, state, self.log_file(name)))
            time.sleep(1)

    def broken(self, c, name, pid):
        """Why the live process must be restarted, or None.

        Default: an API whose port nothing listens on for 15 s (gunicorn's
        master restarts its workers itself; a busy API that answers slowly
        is left alone); other processes when ``state`` is neither running
        nor starting.
        """
        if name in self.apis:
            port = self.apis[name].port
            end = time.time() + 15
            while not proc.tcp_open(port):
                if time.time() > end:
                    return 'nothing listens on port %d' % port
                time.sleep(0.5)
            return None
        state = self.state(c, name, pid)
        return None if state in ('running', 'starting') else state

    def command(self, c, name):
        """The command line of the process ``name`` (not an API)."""
        raise NotImplementedError(name)

    def check(self, c):
        """Wait until its APIs answer."""
        for name in self.apis:
            self.wait_api(name)

    def stop(self, c):
        """Stop its processes."""
        proc.stop_processes(self.processes)

    def clean(self, c):
        """Drop what it keeps outside .devcloud/ (databases, vhosts...)."""

    def status(self, c):
        """Rows (name, state, pid, where); state 'running' if all is well."""
        rows = []
        for name in self.processes:
            pid = proc.running(name)
            state = self.state(c, name, pid) if pid else 'stopped'
            where = ''
            if name in self.apis:
                where = 'http://127.0.0.1:%d' % self.apis[name].port
            rows.append((name, state, pid, where))
        return rows

    # ------------------------------------------------------ API helpers

    def port_conflicts(self):
        """(name, port, pid) of its APIs whose port another process holds."""
        return [(name, api.port, proc.pid_listening(api.port))
                for name, api in self.apis.items()
                if not proc.running(name) and proc.tcp_open(api.port)]

    def start_api(self, name):
        api = self.apis[name]
        if not proc.running(name) and proc.tcp_open(api.port):
            common.die(
                'port 127.0.0.1:%d is taken by another process (pid %s); '
                'cannot start %s' % (api.port, proc.pid_listening(api.port),
                                     name)
            )
        return proc.start_process(
            name, [common.vbin('gunicorn')],
            cwd=os.path.join(common.ETC, api.etc_dir)
        )

    def wait_api(self, name):
        api = self.apis[name]
        url = 'http://127.0.0.1:%d%s' % (api.port, api.path)

        def ok():
            if not proc.running(name):
                common.die('%s exited; see %s/%s*' % (name, common.LOGS,
                                                      name))
            return proc.http_ok(url)

        proc.wait_for(ok, 180, '%s at %s' % (name, url))
        common.log('%s answers at %s' % (name, url))

    def write_gunicorn_conf(self, name, app, workers, raw_env, threads=8):
        """etc/<etc_dir>/gunicorn.conf.py of the API process ``name``.

        :param threads: requests each worker serves at once.
        """
        api = self.apis[name]
        common.write(
            os.path.join(common.ETC, api.etc_dir, 'gunicorn.conf.py'),
            configs.GUNICORN_CONF % {
                'wsgi_app': app,
                'port': api.port,
                'workers': workers,
                'threads': threads,
                'name': name,
                'logs': common.LOGS,
                'raw_env': raw_env,
            },
        )

    def state_dirs(self, *dirs):
        """Make .devcloud/state/<dir> for each of dirs."""
        for d in dirs:
            os.makedirs(os.path.join(common.STATE, d), exist_ok=True)


class SharedDaemon(Service):
    """A system daemon shared by every checkout (MariaDB, RabbitMQ).

    Used as it is when something listens on ``port``. Otherwise ``install``
    installs and starts it, and records that in run/<name>.started: only
    then does ``stop`` (``down``) stop it again.
    """

    shared = True
    port = None
    stop_timeout = 60

    @property
    def started_file(self):
        return os.path.join(common.RUN, self.name + '.started')

    def record_started(self, pid):
        """Remember that devcloud started it (pid or None: not found)."""
        if pid:
            common.write(self.started_file, '%d\n' % pid)

    def before_stop(self):
        """A graceful shutdown command to run before the SIGTERM."""

    def stop(self, c):
        """Stop it only if devcloud started it."""
        if not os.path.exists(self.started_file):
            return
        pid = int(open(self.started_file).read().strip())
        if proc.proc_alive(pid):
            self.before_stop()
            proc.stop_pids([pid], timeout=self.stop_timeout)
            common.log('stopped %s (pid %d, started by devcloud)'
                       % (self.name, pid))
        os.unlink(self.started_file)

    def status(self, c):
        return [(self.name,
                 'running' if proc.tcp_open(self.port) else 'stopped', None,
                 '127.0.0.1:%d (%s)' % (
                     self.port, 'started by devcloud'
                     if os.path.exists(self.started_file)
                     else 'shared, not managed'))]
