"""Process supervision of tools/devcloud: pid files, start, stop, waits.

Every process devcloud starts has a pid file .devcloud/run/<name>.pid and
is checked against pid reuse (proc_tagged) before devcloud trusts it. Also
the one-time setup jobs that run in the background (schema migrations) and
the lock that serialises up/down/clean.
"""

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import common

STARTED = {}  # processes started by this command: name -> epoch


# ---------------------------------------------------------------- probes


def tcp_open(port, host='127.0.0.1', timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url, timeout=2):
    """Does url answer (any status below 500)?"""
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
    common.die('timeout (%ds) waiting for %s' % (timeout, what))


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


# ---------------------------------------------------------------- processes


def proc_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


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
        if (cwd == common.D or cwd.startswith(common.D + '/')) and (
            common.VENV.encode() in cmd or b'devcloud' in cmd
        ):
            return True
        with open('/proc/%d/environ' % pid, 'rb') as f:
            env = f.read().split(b'\0')
    except OSError:
        return False
    return ('%s=%s' % (common.TAG, common.D)).encode() in env


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


def tagged_pids(names):
    """The running processes ``names`` (by pid file) and their descendants."""
    kids = children_map()
    out = set()
    todo = [running(n) for n in names]
    while todo:
        p = todo.pop()
        if p and p not in out and proc_alive(p):
            out.add(p)
            todo.extend(kids.get(p, []))
    return sorted(out)


def read_pid(name):
    try:
        with open(os.path.join(common.RUN, name + '.pid')) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(name):
    """pid of the devcloud process ``name`` if it runs, else None."""
    pid = read_pid(name)
    return pid if pid and proc_tagged(pid) else None


def started_at(name):
    """When the process ``name`` was started (its pid file's mtime)."""
    try:
        return os.path.getmtime(os.path.join(common.RUN, name + '.pid'))
    except OSError:
        return None


def startup_error(log_file, pid, since=0):
    """What process ``pid`` logged when it failed to start, or None.

    An oslo.service process whose service raised while starting (Nova's
    ``init_host`` refusing to run, say) can stay alive: with the threading
    backend it logs ``CRITICAL ... Unhandled error: <the exception>``, with
    eventlet ``Error starting thread.`` and the traceback. Its log lines
    carry its pid (``<date> <time> <pid> <LEVEL> <logger> <text>``).

    :param since: when it started (epoch): older lines are of an earlier
        process that had the same pid.
    :returns: the exception (one line), or None.
    """
    try:
        with open(log_file, 'rb') as f:
            f.seek(max(0, os.path.getsize(log_file) - (4 << 20)))
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return None
    failed = None
    for line in text.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or fields[2] != str(pid):
            continue
        try:
            when = time.mktime(time.strptime(
                fields[0] + ' ' + fields[1][:8], '%Y-%m-%d %H:%M:%S'))
        except ValueError:
            continue
        if when < since - 1:
            continue
        level, msg = fields[3], fields[5]
        if msg.startswith('[') and '] ' in msg:
            msg = msg.split('] ', 1)[1]
        msg = msg.strip()
        if level == 'CRITICAL':
            return msg.replace('Unhandled error: ', '', 1)
        if level == 'ERROR' and msg.startswith('Error starting'):
            failed = ''
        elif level == 'ERROR' and failed is not None and msg:
            failed = msg   # the traceback's last line is the exception
    return failed or None


def start_process(name, cmd, cwd=None, env=None):
    """Start ``name`` in the background unless it runs; output to logs/."""
    pid = running(name)
    if pid:
        return pid
    out = open(os.path.join(common.LOGS, name + '.out'), 'ab')
    p = subprocess.Popen(
        cmd,
        cwd=cwd or common.D,
        env=env or common.venv_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    common.write(os.path.join(common.RUN, name + '.pid'),
                 '%d\n' % p.pid)
    STARTED[name] = time.time()
    common.log('started %s (pid %d)' % (name, p.pid))
    return p.pid


def stop_pids(pids, timeout=30):
    """SIGTERM all at once, SIGKILL what is still alive after timeout."""
    pids = [p for p in pids if p]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
            # a stopped (SIGSTOP) process acts on the TERM only once
            # continued
            os.kill(p, signal.SIGCONT)
        except OSError:
            pass
    end = time.time() + timeout
    while time.time() < end and any(proc_alive(p) for p in pids):
        time.sleep(0.2)
    for p in pids:
        if proc_alive(p):
            common.log('pid %d still alive after %ds: SIGKILL'
                       % (p, timeout))
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def stop_processes(names):
    """Stop the devcloud processes ``names`` (in parallel), drop pid files."""
    pids = {name: running(name) for name in names}
    stop_pids(list(pids.values()))
    for name in names:
        if pids[name]:
            common.log('stopped %s (pid %d)' % (name, pids[name]))
        try:
            os.unlink(os.path.join(common.RUN, name + '.pid'))
        except OSError:
            pass


def _kib(path, field):
    """The value in KiB of ``field`` in a /proc file, 0 if unreadable."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_of(pid):
    return _kib('/proc/%d/status' % pid, 'VmRSS:')


def pss_of(pid):
    return _kib('/proc/%d/smaps_rollup' % pid, 'Pss:')


# ---------------------------------------------------------------- jobs


class Job:
    """Commands run one after the other in the background (a bash chain).

    The schema migrations of the services are independent: each service's
    ``init`` returns a Job and ``up`` waits for it before starting that
    service. Output goes to logs/setup-<name>.log.

    :param name: the service; names the log file.
    :param cmds: argv lists, or (argv, rc) pairs where exit code rc also
        counts as success (e.g. "already exists").
    :param done: the setup.json key recorded when all succeeded.
    """

    def __init__(self, name, cmds, done):
        self.name = name
        self.done = done
        parts = []
        for cmd in cmds:
            also_ok = None
            if isinstance(cmd, tuple):
                cmd, also_ok = cmd
            sh = ' '.join(shlex.quote(x) for x in cmd)
            if also_ok is not None:
                sh = '{ %s || [ $? -eq %d ]; }' % (sh, also_ok)
            parts.append(sh)
        logfile = os.path.join(common.LOGS, 'setup-%s.log' % name)
        with open(logfile, 'ab') as f:
            self.popen = subprocess.Popen(
                ['bash', '-c', ' && '.join(parts)],
                env=common.venv_env(),
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait(self, ctx):
        """Wait; die on failure, else record ``done`` in setup.json."""
        if self.popen.wait() != 0:
            common.die('schema setup of %s failed: see %s/setup-%s.log'
                       % (self.name, common.LOGS, self.name))
        ctx.mark(self.done)
        common.log('%s: one-time setup done (%s)'
                   % (self.name, self.done))


# ---------------------------------------------------------------- lock

LOCKS = []


def lock_or_wait():
    """One up/down/clean at a time per .devcloud.

    Tests of several sessions may call `up` at once: an exclusive flock,
    held until this process exits.
    """
    import fcntl

    os.makedirs(common.RUN, exist_ok=True)
    f = open(os.path.join(common.RUN, 'devcloud.lock'), 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        common.log('another tools/devcloud up/down/clean runs here; '
                   'waiting for it')
        fcntl.flock(f, fcntl.LOCK_EX)
    LOCKS.append(f)
