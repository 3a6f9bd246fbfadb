#!/usr/bin/env python3
"""tools/devcloud: a real, local OpenStack (Keystone, Glance, Placement, Nova,
Neutron; Cinder on a one-node Ceph with `set volumes=ceph`) for isoplugin's
functional tests and demo.

Runs with the system python3 only (standard library); everything OpenStack
runs from a separate service virtualenv (default
~/.cache/isoplugin-devcloud/venv, override with DEVCLOUD_VENV).

    tools/devcloud up [--mode fake]  install what is missing, set up, start
    tools/devcloud status [--quiet]  what runs (exit 0 when all is up)
    tools/devcloud down              stop what devcloud started (by pid)
    tools/devcloud restart [SVC...]  stop the named services, then up
    tools/devcloud set [NAME=VALUE]  settings (volumes=ceph) and fault
                                     injection (list / set,
                                     NAME= for the default), restarting
                                     the services that read them
    tools/devcloud clean             down + drop its databases, rabbit
                                     vhost/user and .devcloud/
    tools/devcloud rss               memory of all devcloud processes
    tools/devcloud env               print export lines

See tools/devcloud_lib/README.rst.
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import modes  # noqa: E402
import proc  # noqa: E402
import service_venv  # noqa: E402
from services import base  # noqa: E402
from services import ceph  # noqa: E402
from services import cinder  # noqa: E402
from services import glance  # noqa: E402
from services import keystone  # noqa: E402
from services import libvirt  # noqa: E402
from services import mariadb  # noqa: E402
from services import neutron  # noqa: E402
from services import nova  # noqa: E402
from services import placement  # noqa: E402
from services import rabbitmq  # noqa: E402
import settings  # noqa: E402

# The services in start order (devstack's stack.sh order): `up` calls each
# verb (install, configure, init, start, check; see services/base.py) on
# all of them in this order, `down` and `clean` go in reverse. A new
# service is a module in services/ and one line here, after what it needs.
# Ceph starts early (its OSD comes up while Keystone and the others start);
# Cinder waits for it before its own start.
ALL_SERVICES = [
    mariadb.SERVICE,
    rabbitmq.SERVICE,
    ceph.SERVICE,
    keystone.SERVICE,
    glance.SERVICE,
    placement.SERVICE,
    neutron.SERVICE,
    cinder.SERVICE,
    libvirt.SERVICE,
    nova.SERVICE,
]


def services():
    """The services `up` runs: Ceph and Cinder only with volumes=ceph."""
    return [s for s in ALL_SERVICES
            if s.name not in settings.VOLUME_SERVICES
            or settings.volumes_enabled()]


def processes(every=False):
    """Names of the processes devcloud runs (`restart` takes these).

    :param every: also those of the services the settings leave out
        (`down`, `clean` and `set` stop them too).
    """
    return [name for s in (ALL_SERVICES if every else services())
            for name in s.processes]


# ---------------------------------------------------------------- commands


def cmd_up(args):
    t_start = time.time()
    for d in (common.LOGS, common.RUN, common.STATE):
        os.makedirs(d, exist_ok=True)
    old_mode = modes.current_name()
    mode_name = args.mode or old_mode or 'fake'
    mode = modes.get_mode(mode_name)
    nova.SERVICE.switch_mode(old_mode, mode)
    common.write(modes.MODE_FILE, mode_name + '\n')
    registry = services()
    for s in registry:
        for name, port, pid in s.port_conflicts():
            common.die(
                '127.0.0.1:%d (%s) is in use by another process (pid %s), '
                'maybe the devcloud of another checkout: run its '
                '`tools/devcloud down` first' % (port, name, pid))
    c = base.Context(mode, registry)
    for s in registry:
        s.install(c)
    service_venv.install()
    t_install = time.time()
    first = not c.done('done')
    for s in registry:
        s.configure(c)
    # one-time setup; the schema migrations run in the background, in
    # parallel, each waited for just before its service starts
    jobs = {s.name: s.init(c) for s in registry}
    for s in registry:
        if jobs[s.name]:
            jobs[s.name].wait(c)
        s.start(c)
    for s in registry:
        s.check(c)
    c.mark('done')
    t_end = time.time()
    common.log(
        'devcloud up (%s start, mode %s): %.1fs total '
        '(install/system checks %.1fs)'
        % (
            'cold' if first else 'warm',
            mode_name,
            t_end - t_start,
            t_install - t_start,
        )
    )
    common.log(
        'clouds: OS_CLIENT_CONFIG_FILE=%s/clouds.yaml '
        '(devcloud-admin, devcloud-demo, devcloud-other)' % common.D
    )


def cmd_status(args):
    registry = services()
    c = base.Context(None, registry)
    rows = [r for s in registry if not s.shared for r in s.status(c)]
    up = all(state == 'running' for _, state, _, _ in rows) and c.done('done')
    if args.quiet:
        sys.exit(0 if up else 3)
    rows += [r for s in registry if s.shared for r in s.status(c)]
    for name, state, pid, where in rows:
        print('%-15s %-14s %-8s %s' % (name, state, pid or '-', where))
    print('state %s  venv %s  mode %s'
          % (common.D, common.VENV, modes.current_name() or '-'))
    for name, value in sorted(settings.changed().items()):
        print('setting %s=%s (not the default; `tools/devcloud set %s=` '
              'resets it)' % (name, value, name))
    print('devcloud is %s' % ('UP' if up else 'NOT up'))
    sys.exit(0 if up else 3)


def cmd_restart(args):
    """Stop the named processes (all when none is named), then `up`."""
    known = processes()
    names = args.services or known
    bad = [n for n in names if n not in known]
    if bad:
        common.die('unknown service(s) %s (known: %s)'
                   % (bad, ', '.join(known)))
    pids = [proc.running(n) for n in names]
    proc.stop_pids(pids)
    for n, p in zip(names, pids):
        if p:
            common.log('stopped %s (pid %d)' % (n, p))
    args.mode = None
    cmd_up(args)


def cmd_set(args):
    """List the settings, or record NAME=VALUE and restart their readers."""
    if not args.assignments:
        for name, s in sorted(settings.SETTINGS.items()):
            print('%s=%s  (default %r) %s'
                  % (name, settings.get(name), s.default, s.doc))
        return
    volumes = settings.volumes_enabled()
    restart = settings.record(settings.parse(args.assignments))
    for name, value in sorted(settings.changed().items()):
        common.log('setting %s=%s' % (name, value))
    if volumes != settings.volumes_enabled():
        # Ceph and Cinder come (`up` starts them) or go (stopped here, out
        # of the catalog at the `up` below; their data stays until `clean`)
        if not settings.volumes_enabled():
            left = [s for s in ALL_SERVICES if s not in services()]
            for s in reversed(left):
                s.stop(base.Context(None, ALL_SERVICES))
            common.log('stopped %s' % ', '.join(s.name for s in left))
        restart = sorted(set(restart) | {'nova-api', 'nova-compute'})
    if not restart:
        common.log('settings unchanged')
    elif not any(proc.running(n) for n in processes(every=True)):
        common.log('devcloud is down: the next `up` applies the settings')
    else:
        args.services = restart
        cmd_restart(args)


def stop_processes():
    """Stop every devcloud process, then whatever they left behind.

    All at once: they shut down gracefully in parallel (SIGKILL after 30 s).
    """
    tree = proc.tagged_pids(processes(every=True))
    proc.stop_processes(processes(every=True))
    left = [p for p in tree if proc.proc_alive(p)]
    if left:
        common.log('stopping leftover devcloud processes %s' % left)
        proc.stop_pids(left, timeout=10)


def cmd_down(args):
    t = time.time()
    c = base.Context(None, ALL_SERVICES)
    stop_processes()
    for s in reversed(ALL_SERVICES):
        s.stop(c)
    common.log('devcloud down in %.1fs' % (time.time() - t))


def cmd_clean(args):
    c = base.Context(None, ALL_SERVICES)
    stop_processes()
    for s in reversed(ALL_SERVICES):
        s.clean(c)
    cmd_down(args)
    shutil.rmtree(common.D, ignore_errors=True)
    common.log('removed %s (the service venv %s is kept)'
               % (common.D, common.VENV))


def cmd_rss(args):
    tr = tp = 0
    print('%-8s %8s %8s  %s' % ('PID', 'RSS MiB', 'PSS MiB', 'COMMAND'))
    for pid in proc.tagged_pids(processes(every=True)):
        r, p = proc.rss_of(pid), proc.pss_of(pid)
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
    print('export OS_CLIENT_CONFIG_FILE=%s/clouds.yaml' % common.D)
    print('export PATH=%s/bin:$PATH' % common.VENV)


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
    p = sub.add_parser('set', help='fault-injection settings')
    p.add_argument('assignments', nargs='*', metavar='NAME=VALUE')
    sub.add_parser('clean')
    sub.add_parser('rss')
    sub.add_parser('env')
    args = ap.parse_args()
    if args.cmd in ('up', 'down', 'clean', 'restart') or (
            args.cmd == 'set' and args.assignments):
        proc.lock_or_wait()
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
        'set': cmd_set,
        'clean': cmd_clean,
        'rss': cmd_rss,
        'env': cmd_env,
    }[args.cmd](args)


if __name__ == '__main__':
    main()
