# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Load on the local OpenStack (fake driver): races, parallel builds, latency.

Nothing here is a test: it prints tables, and the targets beside them.

1. **Registration races.** ``--creates`` (20) concurrent ``openstack iso
   create`` (the real CLI, one process each) of distinct names, then as
   many of one name. Target: exactly one ISO of each name, and nothing
   left once those are deleted (``tests/functional/base.LeakCheck``:
   servers, images, Placement allocations).
2. **Client memory.** Peak RSS (GNU time, as benchmarks/upload.py
   measures it) of ``openstack iso build create`` with one ISO, and with
   ``--builds`` (10) ISOs and ``--parallel 10``. Target: flat.
3. **Requests per minute per build while waiting**, for ``--builds``
   builds in parallel in this process: every HTTP request is counted per
   build thread (benchmarks/build.py's ``Meter``) between a wait's first
   poll and its end, over all waits and over the install wait.
   Target: at most one request per 10 s of a long wait.
4. **Detection latency per phase boundary**: from the moment the cloud
   changed state, by its own clock, to the client's next step (the build's
   ``waited`` event, or the next request as Nova recorded it). Median and
   max over one verified build and the parallel ones. Target: median
   <= 2 s. The cloud's moments:

   ==================  ===================================================
   boundary            the cloud's moment
   ==================  ===================================================
   prepare: blank      Glance ``updated_at`` of the blank disk image, read
   image active        when the client saw it active
   boot: server        finish of the ``create`` instance action's
   ACTIVE              ``compute__do_build_and_run_instance`` event
   install: installer  nova-compute.log's ``VM Stopped (Lifecycle Event)``
   powered off         (no instance action records it)
   detach: unrescued   ``unrescue`` action's event finish, to the end of
   -> os-stop          the client's wait for it (its os-stop request follows)
   detach: stopped     ``stop`` action's event finish
   snapshot: image     Glance ``updated_at`` of the output image, read when
   active              the client saw it active (before it is changed)
   verify: server      as boot, for the verify server
   ACTIVE
   ==================  ===================================================

   Nova's action times and Glance's ``updated_at`` have a resolution of
   one second: the database (MariaDB) truncates the fraction, so the
   moment lies in ``[stamp, stamp + 1)``. The client's own requests narrow
   that down: the change came after the start of the last poll that still
   saw the old state (or of the request that started the wait, when the
   first poll saw the change), and a Glance status change (the same write
   as ``updated_at``) before the client's step. So each such latency is
   given twice: its upper bound (from the earliest possible moment) and
   the middle of the interval the moment lies in, which is within half
   that interval of the truth. The install's moment has nova-compute.log's
   milliseconds, and the detach's unrescue -> os-stop boundary takes the
   client's step from its own clock (the wait's end, right before the
   os-stop request), no longer from the stop action's whole-second start.

Usage (the devcloud up, in fake mode, under the team's lock)::

    flock /tmp/isoplugin-devcloud.lock .tox/functional/bin/python \\
        benchmarks/load.py [--creates 20] [--builds 10] [--install-delay 60]
        [--install-estimate S | --learn]

``--learn`` builds every ISO once before the measured runs, as an operator
rebuilding an ISO has done before: the measured builds then take the
install's expected end from that build (no ``--install-estimate``).
"""

import argparse
import collections
import datetime
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from isoplugin import build as build_mod  # noqa: E402
from isoplugin import catalog  # noqa: E402
from isoplugin import conf as iso_conf  # noqa: E402
from isoplugin import glance  # noqa: E402
from tests.functional import base  # noqa: E402
from tests.tools import make_test_iso  # noqa: E402

PREFIX = 'loadbench-%s-' % uuid.uuid4().hex[:6]
NOVA_COMPUTE_LOG = os.path.join(base.Devcloud.logs_dir, 'nova-compute.log')
LOG_TIME = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ')


def _load(name):
    """A sibling benchmark module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(
        'bench_' + name, os.path.join(ROOT, 'benchmarks', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _epoch(text):
    """Seconds since the epoch of a cloud timestamp (UTC, ISO 8601)."""
    text = text.rstrip('Z').replace(' ', 'T')
    fmt = '%Y-%m-%dT%H:%M:%S.%f' if '.' in text else '%Y-%m-%dT%H:%M:%S'
    return datetime.datetime.strptime(text, fmt).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def _stats(values):
    if not values:
        return '-', '-'
    return '%.2f' % statistics.median(values), '%.2f' % max(values)


def _table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    print('\n'.join(lines), flush=True)


def _delete_prefixed(admin, prefix):
    for image in base.images(admin, prefix):
        admin.image.delete_image(image.id, ignore_missing=True)


def _left(leak):
    """What LeakCheck still finds after 60 s, {} when nothing."""
    try:
        leak.assert_clean(timeout=60)
    except AssertionError:
        return leak.left()
    return {}


# -- 1. registration races ---------------------------------------------------

def races(admin, count, iso_path):
    leak = base.LeakCheck(admin)
    rows = []
    for label, names in (
            ('distinct names', ['%srace-%02d' % (PREFIX, i)
                                for i in range(count)]),
            ('one name', ['%srace-same' % PREFIX] * count)):
        t = time.monotonic()
        procs = [subprocess.Popen(
            base.osc_command('iso', 'create', name, '--file', iso_path,
                             '--no-progress', '-f', 'value', '-c', 'id'),
            env=base.osc_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in names]
        results = [(p.returncode, err) for p in procs
                   for _out, err in [p.communicate()]]
        wall = time.monotonic() - t
        per_name = {name: [i.status for i in base.images(admin, name=name)]
                    for name in set(names)}
        errors = collections.Counter(
            [x for x in err.splitlines() if x.strip()][-1][:100]
            for rc, err in results if rc)
        rows.append((label, count, '%.1f' % wall,
                     sum(1 for rc, _e in results if rc == 0),
                     sum(1 for rc, _e in results if rc),
                     '%d / %d' % (sum(1 for s in per_name.values()
                                      if s == ['active']), len(per_name)),
                     max(len(s) for s in per_name.values()),
                     '; '.join('%dx %s' % (n, e) for e, n in
                               errors.most_common(2)) or '-'))
    _delete_prefixed(admin, PREFIX + 'race-')
    left = _left(leak)
    print('\n== 1. Concurrent `openstack iso create` (target: one ISO per '
          'name, nothing left)')
    _table(('run', 'CLIs', 'wall s', 'exit 0', 'exit 1',
            'names with exactly one active ISO', 'most ISOs of one name',
            'errors (count x last line)'), rows)
    print('left after deleting them: %s' % (left or 'nothing'))
    return rows, left


# -- 2. client peak RSS -------------------------------------------------------

def client_rss(admin, iso_names, count):
    run_measured = _load('upload').run_measured
    rows = []
    for k in (1, count):
        name = '%srss%d' % (PREFIX, k)
        cmd = base.osc_command(
            'iso', 'build', 'create', *iso_names[:k], '--name', name,
            '--flavor', 'm1.tiny', '--no-verify', '--parallel', str(k),
            '-f', 'json')
        rc, wall, rss, out = run_measured(cmd, base.osc_env())
        made = base.images(admin, name)
        rows.append((k, rc, '%.1f' % wall, '%.1f' % (rss / 1024.0),
                     sum(1 for i in made if i.status == 'active')))
        if rc:
            print(out[-1500:])
        _delete_prefixed(admin, name)
    print('\n== 2. Client peak RSS of `openstack iso build create` '
          '(target: flat)')
    _table(('builds (--parallel)', 'exit', 'wall s', 'peak RSS MiB',
            'images active'), rows)
    print('ratio peak RSS %d builds / 1 build: %.2f'
          % (count, float(rows[1][3]) / float(rows[0][3])))
    return rows


# -- 3 and 4. in-process builds: requests while waiting, latency --------------

class Recorder:
    """The events of every build, by the client's clock.

    With them, Glance's ``updated_at`` of the blank disk and the output
    image, read at the moment the client saw them active.
    ``requests``: the build thread's request start times (the client's
    clock), from the :class:`Meter` (set after the run).
    """

    def __init__(self, admin, conf):
        self.admin = admin
        self.conf = conf
        self.lock = threading.Lock()
        self.builds = collections.defaultdict(
            lambda: {'tid': None, 'events': [], 'glance': {},
                     'requests': []})

    def __call__(self, event):
        now = time.time()
        b = self.builds[event['build_id']]
        b['tid'] = threading.get_ident()
        b['events'].append((now, event['phase'], event['event'],
                            event.get('what')))
        if (event['event'] == 'waited' and
                event['phase'] in ('prepare', 'snapshot') and
                event['phase'] not in b['glance']):
            # the phase's first wait: the blank disk, the output image
            # (not the build server's deletion, after the image changed)
            # read in another thread: the Meter counts the build's own
            fetch = threading.Thread(target=self._updated_at,
                                     args=(event['build_id'],
                                           event['phase']))
            fetch.start()
            fetch.join()

    def _updated_at(self, build_id, phase):
        prefix = self.conf.glance.property_prefix
        role = (build_mod.ROLE_BLANK if phase == 'prepare'
                else build_mod.ROLE_OUTPUT)
        for image in glance.images(self.admin, **{
                prefix + 'build_id': build_id, prefix + 'role': role}):
            fields = glance.flat(image)
            with self.lock:
                self.builds[build_id]['glance'][phase] = _epoch(
                    fields['updated_at'])


def _actions(admin, server_id):
    """{action: (start, [(event, start, finish)])} of a (deleted) server."""
    out = {}
    url = '/servers/%s/os-instance-actions' % server_id
    for a in admin.compute.get(url, microversion='2.84').json()[
            'instanceActions']:
        detail = admin.compute.get(
            '%s/%s' % (url, a['request_id']),
            microversion='2.84').json()['instanceAction']
        out[a['action']] = (_epoch(a['start_time']), [
            (e['event'], _epoch(e['start_time']),
             _epoch(e['finish_time']) if e.get('finish_time') else None)
            for e in detail.get('events') or ()])
    return out


def _event_finish(actions, action, event=None):
    events = actions.get(action, (None, []))[1]
    done = [f for name, _s, f in events
            if f and (event is None or name == event)]
    return max(done) if done else None


def _powered_off(server_id):
    """nova-compute.log's time of the server's "VM Stopped" (local time)."""
    needle = '[instance: %s] VM Stopped (Lifecycle Event)' % server_id
    with open(NOVA_COMPUTE_LOG) as f:
        for line in f:
            m = LOG_TIME.match(line)
            if m and needle in line:
                return time.mktime(time.strptime(
                    m.group(1).split('.')[0], '%Y-%m-%d %H:%M:%S')) + \
                    float('0.' + m.group(1).split('.')[1])
    return None


def _server_id(admin, name):
    found = list(admin.compute.servers(all_projects=True, deleted=True,
                                       name='^%s$' % name))
    return found[0].id if found else None


def _wait_of(events, phase, first=False, what=None):
    """(start, negative polls, end) of the phase's first or last wait.

    By the client's clock: ``start`` is the phase's previous event (the
    end of the step before the wait), ``negative polls`` the times of its
    ``waiting`` events (each right after a poll that saw no change),
    ``end`` its ``waited`` event (the client's next step follows).
    """
    waits = []
    start = None
    polls = []
    for t, p, e, w in events:
        if p != phase:
            continue
        if e == 'waiting':
            polls.append(t)
        elif e == 'waited':
            if what is None or w == what:
                waits.append((start, polls, t))
            polls = []
        if e != 'waiting':
            start = t
    if not waits:
        return None
    return waits[0] if first else waits[-1]


def _waited(events, phase, first=False, what=None):
    """The end of the phase's first or last wait, by the client's clock."""
    found = _wait_of(events, phase, first, what)
    return found[2] if found else None


def _bounds(rec, wait, stamp, seen_by_poll):
    """(earliest, latest) moment of a change Nova or Glance stamped.

    ``stamp`` is whole seconds, truncated: the moment is in
    ``[stamp, stamp + 1)``. It also came after the start of the request
    whose answer still showed the old state: the last poll before the
    last ``waiting`` event, or when there is none the request before the
    wait's only poll (the one that caused the change). When the poll saw
    the stamped write itself (``seen_by_poll``: Glance's status and
    ``updated_at``), it came before the client's step.
    """
    _start, negatives, end = wait
    starts = sorted(rec['requests'])
    if negatives:
        before = [t for t in starts if t < negatives[-1]]
    else:
        before = [t for t in starts if t < end][:-1]
    earliest = stamp
    if before:
        earliest = max(stamp, before[-1])
    latest = stamp + 1
    if seen_by_poll:
        latest = min(latest, end)
    if latest < earliest:  # the clocks disagree: keep the stamp alone
        return stamp, stamp + 1
    return earliest, latest


def latencies(admin, conf, build_id, rec):
    """{boundary: (upper bound, estimate)} in seconds, of one build.

    The estimate is the middle of the interval the cloud's moment lies in
    (:func:`_bounds`); where the cloud's clock has milliseconds both are
    the same figure.
    """
    events = rec['events']
    out = {}

    def add(boundary, phase, stamp, seen_by_poll=False, first=False,
            what=None, precise=False, client=None):
        wait = _wait_of(events, phase, first, what)
        if stamp is None or wait is None:
            return
        end = wait[2] if client is None else client
        if precise:
            out[boundary] = (end - stamp, end - stamp)
            return
        earliest, latest = _bounds(rec, wait, stamp, seen_by_poll)
        out[boundary] = (end - earliest, end - (earliest + latest) / 2.0)

    add('prepare: blank image active', 'prepare',
        rec['glance'].get('prepare'), seen_by_poll=True)
    add('snapshot: image active', 'snapshot',
        rec['glance'].get('snapshot'), seen_by_poll=True, first=True)
    server = _server_id(admin, 'isoplugin-build-' + build_id)
    if server:
        acts = _actions(admin, server)
        add('boot: server ACTIVE', 'boot', _event_finish(
            acts, 'create', 'compute__do_build_and_run_instance'))
        add('install: installer powered off', 'install',
            _powered_off(server), precise=True)
        add('detach: unrescued -> os-stop', 'detach',
            _event_finish(acts, 'unrescue'),
            what='the build server to leave rescue')
        add('detach: stopped', 'detach', _event_finish(acts, 'stop'))
    verify = _server_id(admin, '%sverify-%s' % (
        conf.glance.property_prefix.replace('_', '-'), build_id))
    if verify:
        add('verify: server ACTIVE', 'verify', _event_finish(
            _actions(admin, verify), 'create',
            'compute__do_build_and_run_instance'), first=True)
    return out


def _wait_windows(events):
    """[(phase, start, end)] of every wait: first poll to its end."""
    windows = []
    start = None
    for t, phase, event, _what in events:
        if event == 'waiting' and start is None:
            start = t
        elif event == 'waited' and start is not None:
            windows.append((phase, start, t))
            start = None
        elif event == 'waited':
            start = None
    return windows


def request_rates(rec):
    """Requests per minute of one build's waits.

    :returns: ``{label: requests/min}`` over all waits, the install wait,
        its first minute and the rest of it (``None`` where it was not
        10 s long).
    """
    requests = rec['requests']
    rates = {}
    for label, phases, lo, hi in (
            ('all', None, 0, None), ('install', ('install',), 0, None),
            ('install, first 60 s', ('install',), 0, 60),
            ('install, after 60 s', ('install',), 60, None)):
        n = 0
        span = 0.0
        for phase, start, end in _wait_windows(rec['events']):
            if phases and phase not in phases:
                continue
            a = start + lo
            b = end if hi is None else min(end, start + hi)
            if b <= a:
                continue
            span += b - a
            n += sum(1 for t in requests if a <= t <= b)
        rates[label] = 60.0 * n / span if span >= 10 else None
    return rates


def run_builds(conn, conf, iso_ids, verify, recorder, estimate=None,
               keep=False):
    """Build each of ``iso_ids`` at once; delete the outputs unless keep."""
    extra = {'install_estimate': estimate} if estimate else {}
    requests = [build_mod.BuildRequest(
        iso=iso, name='%sbuild-%s' % (PREFIX, uuid.uuid4().hex[:6]),
        flavor='m1.tiny', verify=verify, **extra) for iso in iso_ids]
    t = time.monotonic()
    results = list(build_mod.build_images(
        conn, conf, requests, parallel=len(requests), progress=recorder))
    wall = time.monotonic() - t
    failed = [str(r) for _req, r in results if isinstance(r, Exception)]
    for _req, r in results:
        if not isinstance(r, Exception) and not keep:
            conn.image.delete_image(r.id, ignore_missing=True)
    return wall, failed


def builds(conn, admin, conf, iso_ids, count, estimate=None, learn=False):
    if learn:
        # the estimate a build learns: the install time of this project's
        # last build of the same ISO (its output, kept until the end)
        wall, failed = run_builds(conn, conf, iso_ids[:count], False,
                                  lambda event: None, keep=True)
        print('\nlearning round: %d builds in %.0f s, %d failed'
              % (count, wall, len(failed)))
        estimate_text = 'learned from an earlier build of each ISO'
    else:
        estimate_text = '%s s' % estimate if estimate else 'none'
    meter = _load('build').Meter()
    meter.install()
    runs = []
    for label, isos, verify in (('1 build, verified', iso_ids[:1], True),
                                ('%d builds in parallel' % count,
                                 iso_ids[:count], False)):
        recorder = Recorder(admin, conf)
        meter.reset()
        wall, failed = run_builds(conn, conf, isos, verify, recorder,
                                  estimate)
        offset = time.time() - time.monotonic()  # Meter uses monotonic
        for rec in recorder.builds.values():
            rec['requests'] = sorted(
                t + offset for t, _m, _u in meter.requests[rec['tid']])
        runs.append((label, wall, failed, recorder,
                     {bid: request_rates(rec)
                      for bid, rec in recorder.builds.items()}))
    print('\n== 3. Requests per minute per build while waiting (target: '
          '<= 6 per minute in a long wait; install estimate: %s)'
          % estimate_text)
    rows = []
    for label, wall, failed, recorder, rates in runs:
        for key in ('all', 'install', 'install, first 60 s',
                    'install, after 60 s'):
            values = [r[key] for r in rates.values() if r[key] is not None]
            med, top = _stats(values)
            rows.append((label, 'all waits' if key == 'all' else
                         key.replace('install', 'install wait'),
                         len(recorder.builds), '%.0f' % wall,
                         len(failed), med, top))
        for message in failed[:3]:
            print('  failed: %s' % message)
    _table(('run', 'waits', 'builds', 'wall s', 'failed',
            'req/min median', 'req/min max'), rows)

    print('\n== 4. Detection latency per phase boundary, s (target: '
          'median <= 2)')
    per = collections.defaultdict(list)
    detail = {}
    for _label, _wall, _failed, recorder, rates in runs:
        for build_id, rec in recorder.builds.items():
            found = latencies(admin, conf, build_id, rec)
            detail[build_id] = {'latency': found, 'rates': rates[build_id],
                                'events': rec['events']}
            for boundary, value in found.items():
                per[boundary].append(value)
    rows = []
    for boundary in ('prepare: blank image active', 'boot: server ACTIVE',
                     'install: installer powered off',
                     'detach: unrescued -> os-stop', 'detach: stopped',
                     'snapshot: image active', 'verify: server ACTIVE'):
        found = per.get(boundary) or []
        upper = [u for u, _e in found]
        middle = [e for _u, e in found]
        med, top = _stats(upper)
        est_med, est_top = _stats(middle)
        rows.append((boundary, len(found), med, top, est_med, est_top,
                     '-' if not found else
                     'met' if statistics.median(upper) <= 2 else
                     'estimate met' if statistics.median(middle) <= 2
                     else 'NOT met'))
    _table(('boundary', 'samples', 'upper bound median', 'upper bound max',
            'estimate median', 'estimate max', 'median <= 2 s'), rows)
    print("(whole-second stamps of Nova and Glance: the estimate is the "
          'middle of the interval the moment lies in, the upper bound its '
          'start; the install has milliseconds: both are the same)')
    schedule()
    return detail, per


def schedule():
    """Requests of the wait schedule by wait length (computed, not timed).

    The schedule is deterministic: this replays it with a clock that
    jumps (a heartbeat every ``heartbeat_interval``, as the wait writes
    it), for lengths no benchmark run can afford.
    """
    if not hasattr(build_mod, 'PollSchedule'):
        return
    conf = iso_conf.load_config(config_files=[])
    opts = conf.isoplugin
    print('\n== 5. The wait schedule, computed (defaults: poll_interval %s '
          's, poll_max_interval %s s, heartbeat every %s s)'
          % (opts.poll_interval, opts.poll_max_interval,
             opts.heartbeat_interval))
    rows = []
    for expected in (None, 60):
        for length in (5, 20, 60, 65, 300, 900, 1800, 3600):
            sched = build_mod.PollSchedule(opts, expected)
            t, polls, beats, last_beat = 0.0, [], 0, 0.0
            while True:
                sched.count()
                polls.append(t)
                if t >= length:
                    break
                if t - last_beat >= opts.heartbeat_interval:
                    sched.count()
                    beats += 1
                    last_beat = t
                t += sched.pause(t)
            first = sum(1 for x in polls if x <= 60)
            rows.append(('%s s' % expected if expected else 'none', length,
                         '%.1f' % (polls[-1] - length), len(polls), beats,
                         first, '%.2f' % (60.0 * (len(polls) + beats) /
                                          max(polls[-1], 60))))
    _table(('expected end', 'wait ends at s', 'seen after s', 'polls',
            'heartbeats', 'polls in the first minute',
            'requests/min over the wait'), rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--creates', type=int, default=20)
    parser.add_argument('--builds', type=int, default=10)
    parser.add_argument('--install-delay', type=int, default=60,
                        help='Seconds the fake installer takes')
    parser.add_argument('--skip', action='append', default=[],
                        choices=('races', 'rss', 'builds'))
    parser.add_argument('--install-estimate', type=float,
                        help='Give the builds this install estimate '
                             '(BuildRequest.install_estimate, seconds); '
                             'default: none')
    parser.add_argument('--learn', action='store_true',
                        help='Build every ISO once first (not measured) '
                             'and keep the outputs, so that the measured '
                             'builds learn their install estimate from '
                             'them, as a rebuild of an ISO does')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args()

    os.environ['OS_CLIENT_CONFIG_FILE'] = base.CLOUDS_YAML
    conn = base.connect('demo')
    admin = base.connect('admin')
    conf = iso_conf.load_config(config_files=[])  # the defaults users get
    tmp = tempfile.mkdtemp()
    small = make_test_iso.make_iso(os.path.join(tmp, 'race.iso'),
                                   volume_id='LOADBENCH_RACE', eltorito=True)
    figures = {}
    iso_ids, iso_names = [], []
    try:
        if 'races' not in args.skip:
            figures['races'] = races(admin, args.creates, small)
        cat = catalog.Catalog(conn, conf)
        for i in range(args.builds):
            path = make_test_iso.make_iso(
                os.path.join(tmp, 'b%d.iso' % i),
                volume_id='LOADBENCH_%d' % i, eltorito=True,
                isoplugin_cfg={'action': 'install',
                               'delay': str(args.install_delay)})
            name = '%siso%02d' % (PREFIX, i)
            iso_ids.append(glance.flat(cat.create(name, filename=path))['id'])
            iso_names.append(name)
        if 'rss' not in args.skip:
            figures['rss'] = client_rss(admin, iso_names, args.builds)
        if 'builds' not in args.skip:
            figures['builds'], per = builds(conn, admin, conf, iso_ids,
                                            args.builds,
                                            args.install_estimate,
                                            args.learn)
            figures['latency'] = dict(per)
    finally:
        _delete_prefixed(admin, PREFIX)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=1, default=str)


if __name__ == '__main__':
    main()
