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

"""Benchmark of the build pipeline against the local OpenStack.

Counts the HTTP requests of one build and of N builds in parallel, and
measures the orchestration overhead of each build: its wall time minus the
time its thread spent in HTTP requests and in the pipeline's sleeps
(waiting on the cloud). A third run builds from an ISO whose installer
takes ``--slow-install`` seconds and reports the status requests made after
the first minute of the install wait (target: at most one per 10 s).

Every run is made once per backend of ``--backends`` (default
nova-rescue and, when the cloud has a Block Storage service, nova-volume:
``tools/devcloud set volumes=ceph``), side by side in one report.

Usage (the devcloud must be up)::

    .venv/bin/python benchmarks/build.py [--parallel 10] [--slow-install 100]
        [--backends nova-rescue,nova-volume]

Targets: at most 2 s of overhead per build; after the first minute of
waiting, at most one status request per 10 s.
"""

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('OS_CLIENT_CONFIG_FILE',
                      os.path.join(ROOT, '.devcloud', 'clouds.yaml'))

import openstack  # noqa: E402
import requests  # noqa: E402

from isoplugin import build as build_mod  # noqa: E402
from isoplugin import catalog  # noqa: E402
from isoplugin import conf as iso_conf  # noqa: E402
from isoplugin import records  # noqa: E402
from isoplugin import volume  # noqa: E402
from tests.tools import make_test_iso  # noqa: E402

PREFIX = 'bldbench-%s-' % uuid.uuid4().hex[:6]


class Meter(object):
    """Per-thread accounting of HTTP requests and pipeline sleeps."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.defaultdict(list)  # thread -> [(t, m, u)]
        self.http_time = collections.defaultdict(float)
        self.sleep_time = collections.defaultdict(float)

    def install(self):
        meter = self
        send = requests.Session.send
        sleep = build_mod._sleep

        def counted_send(session, request, **kwargs):
            t = time.monotonic()
            try:
                return send(session, request, **kwargs)
            finally:
                tid = threading.get_ident()
                with meter.lock:
                    meter.requests[tid].append((t, request.method,
                                                request.url))
                    meter.http_time[tid] += time.monotonic() - t

        def counted_sleep(event, seconds):
            t = time.monotonic()
            try:
                return sleep(event, seconds)
            finally:
                with meter.lock:
                    meter.sleep_time[threading.get_ident()] += \
                        time.monotonic() - t

        requests.Session.send = counted_send
        # the pipeline's waits, and the wait for deleted servers at cleanup
        build_mod._sleep = counted_sleep
        records._sleep = counted_sleep

    def reset(self):
        self.requests.clear()
        self.http_time.clear()
        self.sleep_time.clear()


def run_builds(conn, conf, iso_id, count, parallel, verify, meter,
               backend=None):
    """Build ``count`` images with ``backend``; return per-build stats."""
    stats = {}
    lock = threading.Lock()

    def progress(event):
        with lock:
            st = stats.setdefault(event['build_id'], {
                'tid': threading.get_ident(), 'start': time.monotonic(),
                'install_start': None, 'install_end': None})
            if event['phase'] == 'install' and \
                    event['event'] == 'phase-start':
                st['install_start'] = time.monotonic()
            if event['phase'] == 'install' and event['event'] == 'waited':
                st['install_end'] = time.monotonic()
            if event['event'] in ('done', 'failed'):
                st['end'] = time.monotonic()
                st['result'] = event['event']
                st['message'] = event.get('message')

    requests_ = (build_mod.BuildRequest(
        iso=iso_id, name='%s%d' % (PREFIX, i), flavor='m1.tiny',
        verify=verify, backend=backend) for i in range(count))
    meter.reset()
    t0 = time.monotonic()
    images = []
    for _request, result in build_mod.build_images(
            conn, conf, requests_, parallel=parallel, progress=progress):
        if not isinstance(result, Exception):
            images.append(result.id)
    wall = time.monotonic() - t0
    for image_id in images:
        conn.image.delete_image(image_id, ignore_missing=True)
    return wall, stats


def report(title, wall, stats, meter):
    total = sum(len(v) for v in meter.requests.values())
    print('== %s: %d build(s), wall %.1f s, %d HTTP requests in all'
          % (title, len(stats), wall, total))
    for build_id, st in sorted(stats.items()):
        tid = st['tid']
        bwall = st.get('end', time.monotonic()) - st['start']
        http = meter.http_time[tid]
        slept = meter.sleep_time[tid]
        reqs = meter.requests[tid]
        by_method = collections.Counter(m for _t, m, _u in reqs)
        print('  %s %-6s wall %6.1f s  http %6.1f s  sleep %6.1f s  '
              'overhead %5.2f s  requests %3d %s%s'
              % (build_id, st.get('result'), bwall, http, slept,
                 bwall - http - slept, len(reqs), dict(by_method),
                 ('  ' + st['message']) if st.get('message') else ''))


def late_polls(stats, meter):
    """Status requests after the first 60 s of the install wait."""
    for build_id, st in stats.items():
        start, end = st['install_start'], st['install_end']
        if not start or not end:
            continue
        polls = sorted(t for t, m, u in meter.requests[st['tid']]
                       if m == 'GET' and '/servers/' in u and
                       start + 60 <= t <= end)
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        print('  %s install wait %.0f s; after the first minute: %d status '
              'requests over %.0f s, smallest gap %s s'
              % (build_id, end - start, len(polls), end - start - 60,
                 '%.1f' % min(gaps) if gaps else '-'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cloud', default='devcloud-demo')
    parser.add_argument('--parallel', type=int, default=10)
    parser.add_argument('--slow-install', type=int, default=100)
    parser.add_argument('--backends', default=None,
                        help='comma-separated backends to compare (default: '
                             'nova-rescue, and nova-volume when the cloud '
                             'has a volume service)')
    parser.add_argument('--no-verify-parallel', action='store_true',
                        help='Skip verification in the parallel run (each '
                             'verifying build holds two servers for a '
                             'while; mind the instance quota)')
    args = parser.parse_args()

    conf = iso_conf.load_config(config_files=[])
    conn = openstack.connect(cloud=args.cloud)
    meter = Meter()
    meter.install()
    cat = catalog.Catalog(conn, conf)
    tmp = tempfile.mkdtemp()
    isos = {}
    for kind, delay in (('fast', 2), ('slow', args.slow_install)):
        path = os.path.join(tmp, kind + '.iso')
        # bootable (El Torito), registered: the ISO says no profile
        # recognises it, so the build uses it as it is without a download
        make_test_iso.make_iso(path, volume_id='BENCH_' + kind.upper(),
                               isoplugin_cfg={'action': 'install',
                                              'delay': str(delay)},
                               eltorito=True)
        isos[kind] = cat.create(PREFIX + kind, filename=path,
                                os_distro='bench').id
    if args.backends:
        backends = args.backends.split(',')
    else:
        backends = ['nova-rescue'] + (['nova-volume']
                                      if volume.has_service(conn) else [])
        if len(backends) == 1:
            print('(no volume service: nova-volume not measured; run '
                  '`tools/devcloud set volumes=ceph` first)')
    try:
        for backend in backends:
            wall, stats = run_builds(conn, conf, isos['fast'], 1, 1, True,
                                     meter, backend)
            report('%s: one build (verify)' % backend, wall, stats, meter)
            wall, stats = run_builds(conn, conf, isos['fast'], args.parallel,
                                     args.parallel,
                                     not args.no_verify_parallel, meter,
                                     backend)
            report('%s: %d builds in parallel' % (backend, args.parallel),
                   wall, stats, meter)
            wall, stats = run_builds(conn, conf, isos['slow'], 1, 1, False,
                                     meter, backend)
            title = '%s: one build, %d s install' % (
                backend, args.slow_install)
            report(title, wall, stats, meter)
            late_polls(stats, meter)
    finally:
        for image_id in isos.values():
            conn.image.delete_image(image_id, ignore_missing=True)


if __name__ == '__main__':
    main()
