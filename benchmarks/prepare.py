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

"""Benchmark: preparing + uploading a hybrid ISO vs. a plain upload.

Run (the local cloud must be up, any compute mode: nothing boots)::

    flock /tmp/isoplugin-devcloud.lock \\
        .tox/functional/bin/python benchmarks/prepare.py [--sizes 1G,4G]

A quick check that it works: ``--sizes 256M --runs 1``.

The ISOs: Debian's installer as ``tests/tools/build_debian_netboot_iso.py``
makes it from Debian's packages (isohybrid MBR + GPT, BIOS and UEFI El
Torito entries, a stock d-i menu), grown to the size asked by a
pseudo-random file *inside* the ISO 9660 tree (``/pad/filler.bin``, added
with xorriso's boot-image replay, so the hybrid layout stays). Padding
after the image would not do: the prepared copy only carries the files of
the tree. Made once per size under ``--dir``.

For every size and run, in this order (each step needs the one before),
each a fresh process under GNU time (wall clock, peak RSS):

* ``create``    ``openstack iso create NAME --file F`` (the baseline: one
  read of the file, hashed while it is uploaded)
* ``prepare``   ``openstack iso prepare F --profile debian --set ...``:
  the same file prepared (the preseed appended to the initrd, menus
  rewritten) and streamed into Glance as a private hidden image. This is
  the issue's comparison: preparing plus uploading the file against
  uploading it. The cache key needs the file's content hash, one extra
  read, done beside the copy. Every run starts with an empty ``HOME``, so
  that no hash remembered by an earlier run (``~/.cache/isoplugin``) hides
  that read: this is what the first prepare of a file costs.
* ``cached-file`` the same ``iso prepare F`` again (same ``HOME``): the
  file's hash is remembered, so the copy ``prepare`` made is found
  without reading the file (target: at most 2 s, as ``cached``).
* ``registered`` ``openstack iso prepare NAME ...``: the ISO registered by
  ``create``, downloaded from Glance (hash checked) to one temporary file,
  then prepared and uploaded: what the first unattended build of a
  registered ISO pays (a download more than ``prepare``)
* ``cached``    the same ``iso prepare NAME`` again: it finds the copy
  ``registered`` made (target: at most 2 s). The same lookup is also
  timed inside this process (``prepared.prepare_iso``, no OSC start-up):
  the ``lookup`` line.

Each command starts after ``sync``: the images Glance stored earlier are
written back to the disk first, not during the next command. Then every
image made is deleted. The table shows medians and the
targets: ``prepare`` within 1.15x of ``create``'s wall time; the client's
peak RSS the same at every size (it streams: memory does not grow with the
ISO); ``cached`` at most 2 s. Nothing here is a test: no pass/fail beyond
the printed targets. The ISO's El Torito and system-area layout is printed
first (xorriso), to show it is hybrid.
"""

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))

import upload  # noqa: E402  (run_measured, the size table)

BIN = os.path.dirname(sys.executable)
BUILD_TOOL = os.path.join(ROOT, 'tests', 'tools',
                          'build_debian_netboot_iso.py')
METHODS = ('create', 'prepare', 'cached-file', 'registered', 'cached')
#: the methods that find the copy an earlier one made
CACHED = {'cached-file': 'prepare', 'cached': 'registered',
          'lookup': 'registered'}
SIZES = dict(upload.SIZES, **{'256M': 256 << 20})
CHUNK = 4 << 20
VALUES = ('early_command=echo isoplugin-benchmark', 'hostname=bench')


def base_iso(directory):
    # its own cache: the shared one may hold a BIOS-only build (made
    # where mkfs.vfat was missing), and the e2e tests use that one
    env = dict(os.environ, ISOPLUGIN_CACHE=os.path.join(directory, 'cache'))
    out = subprocess.run([sys.executable, BUILD_TOOL], check=True, env=env,
                         stdout=subprocess.PIPE, universal_newlines=True)
    return out.stdout.strip().splitlines()[-1]


def make_iso(directory, label, size, base):
    """The Debian hybrid ISO grown to about ``size`` bytes (made once)."""
    path = os.path.join(directory, 'prepare-%s.iso' % label)
    stamp = path + '.base'
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == base:
                return path
    pad_size = max(size - os.path.getsize(base) - (1 << 20), CHUNK)
    print('writing %s (about %d bytes)' % (path, size), flush=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        pad = os.path.join(tmp, 'filler.bin')
        block = bytearray(random.Random(0).getrandbits(8 * CHUNK).to_bytes(
            CHUNK, 'little'))
        with open(pad, 'wb') as f:
            n, left = 0, pad_size
            while left > 0:
                block[0:8] = n.to_bytes(8, 'little')
                f.write(memoryview(block)[:min(CHUNK, left)])
                left -= CHUNK
                n += 1
        subprocess.run(['xorriso', '-indev', base, '-outdev', path + '.part',
                        '-boot_image', 'any', 'replay',
                        '-map', pad, '/pad/filler.bin', '-end'],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    os.replace(path + '.part', path)
    with open(stamp, 'w') as f:
        f.write(base)
    return path


class Bench(object):

    def __init__(self, args):
        import openstack

        self.args = args
        os.environ['OS_CLIENT_CONFIG_FILE'] = args.clouds_yaml
        self.conn = openstack.connect(cloud=args.cloud)
        self.admin = openstack.connect(cloud=args.admin_cloud)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith('OS_') and
                    k != 'ISOPLUGIN_CONFIG_FILE'}
        self.env['OS_CLIENT_CONFIG_FILE'] = args.clouds_yaml
        self.prefix = 'bench-prep-%s-' % uuid.uuid4().hex[:6]
        self.made = []

    def command(self, method, name, path):
        osc = [os.path.join(BIN, 'openstack'), '--os-cloud',
               self.args.cloud, 'iso']
        if method == 'create':
            return osc + ['create', name, '--file', path, '--no-progress',
                          '-f', 'value', '-c', 'id']
        sets = []
        for value in VALUES:
            sets += ['--set', value]
        # every run starts with no prepared copy in Glance (cleanup), so
        # 'prepare' and 'registered' make one each (their sources' hashes
        # differ: the file's sha256, Glance's os_hash_value) and 'cached'
        # finds the one 'registered' made
        return osc + ['prepare', path if method in ('prepare', 'cached-file')
                      else name,
                      '--profile', 'debian'] + sets + [
            '-f', 'value', '-c', 'id']

    def lookup(self, name):
        """Seconds the library takes to find the cached copy of ``name``."""
        import time

        from oslo_config import cfg

        from isoplugin import conf as iso_conf
        from isoplugin import prepared

        conf = cfg.ConfigOpts()
        iso_conf.register_opts(conf)
        conf(args=[], default_config_files=[])
        values = dict(v.split('=', 1) for v in VALUES)
        start = time.monotonic()
        found = prepared.prepare_iso(self.conn, conf, name, profile='debian',
                                     values=values)
        wall = time.monotonic() - start
        return {'method': 'lookup', 'wall': wall, 'rss_kib': 0,
                'ok': found.reused, 'image_id': found.image.id}

    def one(self, method, label, path, name, home):
        cmd = self.command(method, name, path)
        # every command starts with the page cache clean: Glance writes
        # the image it stored back to the disk after the command ended,
        # which would slow the next one down (always 'prepare', after
        # 'create')
        os.sync()
        rc, wall, rss, out = upload.run_measured(cmd, dict(self.env,
                                                           HOME=home))
        # the id printed last (-f value -c id), after any progress line
        ids = re.findall(r'\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-'
                         r'[0-9a-f]{4}-[0-9a-f]{12}\b', out)
        image_id = ids[-1] if rc == 0 and ids else None
        ok = rc == 0 and bool(image_id)
        if ok:
            image = self.conn.image.get('/images/%s' % image_id).json()
            ok = image['status'] == 'active'
            if method != 'create':
                ok = ok and image['visibility'] == 'private' and \
                    image['os_hidden'] is True
            if image_id not in self.made:
                self.made.append(image_id)
        if not ok:
            print('  FAILED %s rc=%s\n%s' % (method, rc, out[-2000:]),
                  flush=True)
        return {'method': method, 'size': label, 'wall': wall,
                'rss_kib': rss, 'ok': ok, 'image_id': image_id}

    def cleanup(self):
        for image_id in self.made:
            self.admin.image.delete_image(image_id, ignore_missing=True)
        self.made = []


def summarize(results, sizes):
    med = {}
    for r in results:
        med.setdefault((r['size'], r['method']), []).append(r)
    lines = ['%-6s %-10s %10s %12s %8s' % (
        'size', 'method', 'wall s', 'peak RSS MiB', 'ratio')]
    rss = {}
    for label in sizes:
        base = statistics.median(r['wall'] for r in
                                 med.get((label, 'create'), [])) \
            if med.get((label, 'create')) else None
        for method in METHODS + ('lookup',):
            rows = med.get((label, method))
            if not rows:
                continue
            wall = statistics.median(r['wall'] for r in rows)
            mib = statistics.median(r['rss_kib'] for r in rows) / 1024.0
            rss[(label, method)] = mib
            lines.append('%-6s %-10s %10.2f %12s %8s' % (
                label, method, wall, '%.1f' % mib if mib else '-',
                upload.ratio(wall, base, '%.3fx')
                if method in ('prepare', 'registered') else ''))
        if base and med.get((label, 'prepare')):
            wall = statistics.median(r['wall'] for r in
                                     med[(label, 'prepare')])
            lines.append('  %s: prepare+upload / create = %.3f (target <= '
                         '1.15: %s)' % (label, wall / base, 'MET' if
                                        wall / base <= 1.15 else 'NOT MET'))
        if base and med.get((label, 'registered')):
            wall = statistics.median(r['wall'] for r in
                                     med[(label, 'registered')])
            lines.append('  %s: download+prepare+upload / create = %.3f '
                         '(information: a download more)' % (label,
                                                             wall / base))
        for method, what in (('cached-file', 'openstack iso prepare FILE'),
                             ('cached', 'openstack iso prepare NAME'),
                             ('lookup', 'the library call')):
            if med.get((label, method)):
                walls = [r['wall'] for r in med[(label, method)]]
                lines.append('  %s: cached prepared ISO found by %s in '
                             '%.2f s median, %.2f s worst (target <= 2 s: '
                             '%s)' % (label, what, statistics.median(walls),
                                      max(walls), 'MET' if max(walls) <= 2
                                      else 'NOT MET'))
    for method in ('create', 'prepare', 'registered'):
        seen = [rss[(label, method)] for label in sizes
                if (label, method) in rss]
        if len(seen) > 1:
            spread = max(seen) - min(seen)
            lines.append('peak RSS of %s across sizes: %s MiB (spread %.1f '
                         'MiB; target: the same, within 2 MiB: %s)' % (
                             method, ' / '.join('%.1f' % s for s in seen),
                             spread, 'MET' if spread <= 2 else 'NOT MET'))
    return '\n'.join(lines)


def main(argv=None):
    parser = upload.common_parser(__doc__, runs=2)
    parser.add_argument('--keep-files', action='store_true',
                        help='keep the big ISOs for the next run')
    parser.add_argument('--methods', default=','.join(METHODS),
                        help='a subset of %s, in that order (cached-file '
                        'needs prepare; cached needs registered)' %
                        ','.join(METHODS))
    args = parser.parse_args(argv)
    methods = [m for m in METHODS if m in args.methods.split(',')]
    sizes = args.sizes.split(',')
    os.makedirs(args.dir, exist_ok=True)
    if not shutil.which('xorriso'):
        sys.exit('xorriso is needed')
    import compileall
    compileall.compile_dir(os.path.join(ROOT, 'isoplugin'), quiet=1,
                           force=False)
    base = base_iso(args.dir)
    report = subprocess.run(
        ['xorriso', '-indev', base, '-report_el_torito', 'plain',
         '-report_system_area', 'plain'], check=True, capture_output=True,
        universal_newlines=True).stdout
    layout = [line for line in report.splitlines() if line.startswith((
        'El Torito boot img', 'MBR partition ', 'GPT partname'))]
    print('the ISO (%s):\n%s' % (base, '\n'.join(layout)), flush=True)
    if not any(' UEFI ' in line for line in layout):
        print('NOTE: no UEFI El Torito entry (install mtools and dosfstools '
              'for it)', flush=True)
    bench = Bench(args)
    results = []
    try:
        for label in sizes:
            path = make_iso(args.dir, label, SIZES[label], base)
            subprocess.run(['cat', path], stdout=subprocess.DEVNULL,
                           check=True)   # warm the page cache for both
            for n in range(args.runs):
                name = '%s%s-%s' % (bench.prefix, label, uuid.uuid4().hex[:6])
                home = tempfile.mkdtemp(prefix='home-', dir=args.dir)
                for method in methods:
                    r = bench.one(method, label, path, name, home)
                    results.append(r)
                    r['load'] = os.getloadavg()[0]
                    print('%s run %d %-8s wall %7.2f s  peak RSS %7.1f MiB '
                          'load %.2f %s' % (label, n + 1, method, r['wall'],
                                            r['rss_kib'] / 1024.0, r['load'],
                                            'ok' if r['ok'] else 'FAILED'),
                          flush=True)
                if 'registered' in methods:
                    look = bench.lookup(name)
                    look['size'] = label
                    results.append(look)
                    print('%s run %d lookup   wall %7.2f s (in process)' % (
                        label, n + 1, look['wall']), flush=True)
                run = {r['method']: r for r in results[-len(methods) - 1:]}
                for again, first in CACHED.items():
                    if again not in run or first not in run:
                        continue
                    if run[again]['image_id'] != run[first]['image_id']:
                        print('  NOTE: %s gave %s, not %s: not a cache hit'
                              % (again, run[again]['image_id'],
                                 run[first]['image_id']))
                        run[again]['ok'] = False
                bench.cleanup()
                shutil.rmtree(home, ignore_errors=True)
            if not args.keep_files:
                os.unlink(path)
    finally:
        bench.cleanup()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    print()
    print(summarize(results, sizes))
    return 0 if all(r['ok'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
