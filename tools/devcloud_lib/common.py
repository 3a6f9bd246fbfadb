"""Paths, progress lines and small helpers shared by all of tools/devcloud.

Standard library only: this runs with the system python3.
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
D = os.environ.get('DEVCLOUD_DIR') or os.path.join(REPO, '.devcloud')
ETC, LOGS, RUN, STATE = (
    os.path.join(D, x) for x in ('etc', 'logs', 'run', 'state')
)
VENV = os.environ.get('DEVCLOUD_VENV') or os.path.join(
    os.path.expanduser('~'), '.cache', 'isoplugin-devcloud', 'venv'
)
VPY = os.path.join(VENV, 'bin', 'python')
TAG = 'DEVCLOUD_ID'  # env var put on every process devcloud starts

T0 = time.time()


def log(msg):
    print('[devcloud %6.1fs] %s' % (time.time() - T0, msg), flush=True)


def die(msg):
    print('devcloud: ERROR: %s' % msg, file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd, log_name=None, check=True, env=None, ok_codes=(0,), **kw):
    """Run cmd; output to logs/<log_name> (else captured); die on failure."""
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


_apt_updated = []


#: apt-get waits this long for another apt-get or dpkg on the machine (a
#: second checkout's devcloud, an unattended upgrade) instead of failing
APT = ['apt-get', '-o', 'DPkg::Lock::Timeout=600']


def apt_install(pkgs):
    """apt-get install pkgs (one apt-get update per devcloud command)."""
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    if not _apt_updated:
        log('apt-get update')
        run(APT + ['update'], log_name='apt.log', env=env)
        _apt_updated.append(1)
    log('apt-get install %s' % ' '.join(pkgs))
    run(
        APT + ['install', '-y', '--no-install-recommends'] + pkgs,
        log_name='apt.log',
        env=env,
    )


def venv_env(extra=None):
    """Environment of a service: the service venv first, no OS_*, tagged."""
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
    """A console script of the service venv."""
    return os.path.join(VENV, 'bin', name)


def write(path, text, mode=0o644):
    """Write text to path, only when it changed (configs keep their mtime)."""
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
