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

"""Benchmark: uploading an ISO to the local Glance with six clients.

Run (the local cloud must be up: tools/devcloud up)::

    .venv/bin/python benchmarks/upload.py [--sizes 1G,4G] [--runs 3]

A quick check that it works: ``--sizes 64M --runs 1``.

For every size, a file that starts with a real ISO 9660 image (made by
tests.tools.make_test_iso.make_padded_iso, pseudo-random filler) is
uploaded as the demo user, ``disk_format=iso``, ``container_format=bare``:

* ``iso-cli``   ``openstack iso create NAME --file F --no-progress`` (the
  real CLI: ISO check, duplicate-name and quota checks, upload with sha512
  computed in the same pass, verification against Glance's os_hash_value)
* ``iso-lib``   the same through the library from a tiny Python process
  (``Catalog(conn, conf).create(...)``), without OSC's start-up
* ``osc``       ``openstack image create --disk-format iso ... --file F``
* ``glance``    ``glance image-create --disk-format iso ... --file F``
* ``curl``      ``curl`` POST /v2/images then ``curl -T F`` PUT of the data
  with a Content-Length (``-H 'Expect:'``), with a token fetched beforehand
  (not timed)
* ``curl-chunked`` the same, but the data read from stdin (``curl -T - <
  F``) and sent with ``Transfer-Encoding: chunked``, as isoplugin sends it
  by default (it hashes while it sends): the fair limit for ``iso-cli`` and
  ``iso-lib``

Runs alternate between the methods (the order rotates every round). Each
run is a fresh process; wall time covers the whole command (interpreter
start, authentication, every request); peak RSS is the maximum resident
set size GNU time reports for that process (for curl: the largest of bash
and the two curl processes). After each run the image is
checked (active, os_hash_value equal to the file's sha512) and deleted, so
quota and disk do not fill up. The table shows medians; wall-time ratios
are to curl and to curl-chunked, peak RSS is compared with curl and, in
MiB, with ``openstack image create`` (osc). Targets: wall within 5 % of
curl; CLI peak RSS flat across sizes and within 2 MiB of ``openstack image
create``. Nothing here is a test: no pass/fail beyond the printed targets.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BIN = os.path.dirname(sys.executable)
METHODS = ('iso-cli', 'iso-lib', 'osc', 'glance', 'curl', 'curl-chunked')
SIZES = {'64M': 64 << 20, '1G': 1 << 30, '4G': 4 << 30}
# The PUT of the image data by curl: with a Content-Length (curl -T FILE),
# or chunked (the data from stdin, whose size curl does not know).
CURL_PUT = {
    'curl': 'curl -sf -T "$FILE" -X PUT -H "Expect:" ',
    'curl-chunked': ('curl -sf -T - -X PUT -H "Expect:" '
                     '-H "Transfer-Encoding: chunked" '),
}
CURL_STDIN = {'curl': '', 'curl-chunked': ' < "$FILE"'}

LIB_SCRIPT = (
    'import sys\n'
    'from isoplugin import catalog, cloud, conf\n'
    'c = catalog.Catalog(cloud.connect(sys.argv[1]),\n'
    '                    conf.load_config(config_files=[]))\n'
    'print(c.create(sys.argv[2], filename=sys.argv[3]).id)\n')


def make_file(directory, label, size):
    """Create (once) a padded ISO of ``size`` bytes; return path, sha512."""
    from tests.tools import make_test_iso

    path = os.path.join(directory, 'bench-%s.iso' % label)
    if not os.path.exists(path) or os.path.getsize(path) != size:
        print('writing %s (%d bytes)' % (path, size), flush=True)
        make_test_iso.make_padded_iso(path, size, fill='random',
                                      volume_id='BENCH_%s' % label)
    digest_path = path + '.sha512'
    if (os.path.exists(digest_path) and
            os.path.getmtime(digest_path) >= os.path.getmtime(path)):
        with open(digest_path) as f:
            return path, f.read().strip()
    h = hashlib.sha512()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(4 << 20), b''):
            h.update(chunk)
    with open(digest_path, 'w') as f:
        f.write(h.hexdigest())
    return path, h.hexdigest()


def run_measured(cmd, env):
    """Run cmd; return (returncode, wall seconds, peak RSS KiB, output).

    The command runs under GNU time (``/usr/bin/time -f %M``), a small C
    program, so that the peak RSS is the command's own: a child forked from
    this (big) Python process would carry our RSS until it execs.
    """
    with tempfile.TemporaryFile() as out, \
            tempfile.NamedTemporaryFile('r') as rss_file:
        start = time.monotonic()
        proc = subprocess.run(
            ['/usr/bin/time', '-f', '%M', '-o', rss_file.name] + cmd,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env)
        wall = time.monotonic() - start
        out.seek(0)
        text = out.read().decode('utf-8', 'replace')
        lines = [x for x in rss_file.read().split() if x.isdigit()]
    return proc.returncode, wall, int(lines[-1]) if lines else 0, text


class Bench(object):

    def __init__(self, args):
        import openstack

        self.args = args
        self.clouds = args.clouds_yaml
        os.environ['OS_CLIENT_CONFIG_FILE'] = self.clouds
        self.conn = openstack.connect(cloud=args.cloud)
        self.admin = openstack.connect(cloud=args.admin_cloud)
        self.endpoint = self.conn.image.get_endpoint().rstrip('/')
        if not self.endpoint.endswith('/v2'):
            self.endpoint += '/v2'
        self.token = self.conn.session.get_token()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith('OS_')}
        self.env['OS_CLIENT_CONFIG_FILE'] = self.clouds
        auth = self.conn.config.config['auth']
        self.glance_env = dict(self.env)
        self.glance_env.update({
            'OS_AUTH_URL': auth['auth_url'],
            'OS_USERNAME': auth['username'],
            'OS_PASSWORD': auth['password'],
            'OS_PROJECT_NAME': auth['project_name'],
            'OS_USER_DOMAIN_NAME': auth.get('user_domain_name', 'Default'),
            'OS_PROJECT_DOMAIN_NAME': auth.get('project_domain_name',
                                               'Default'),
            'OS_IMAGE_API_VERSION': '2'})
        self.prefix = 'bench-%s-' % uuid.uuid4().hex[:6]

    def command(self, method, name, path):
        osc = [os.path.join(BIN, 'openstack'), '--os-cloud',
               self.args.cloud]
        if method == 'iso-cli':
            return osc + ['iso', 'create', name, '--file', path,
                          '--no-progress', '-f', 'value', '-c', 'id'], \
                self.env
        if method == 'iso-lib':
            return [sys.executable, '-c', LIB_SCRIPT, self.args.cloud, name,
                    path], self.env
        if method == 'osc':
            return osc + ['image', 'create', '--disk-format', 'iso',
                          '--container-format', 'bare', '--file', path,
                          name, '-f', 'value', '-c', 'id'], self.env
        if method == 'glance':
            return [os.path.join(BIN, 'glance'), 'image-create',
                    '--disk-format', 'iso', '--container-format', 'bare',
                    '--file', path, '--name', name], self.glance_env
        if method in CURL_PUT:
            script = (
                'set -e\n'
                'id=$(curl -sf -X POST "$EP/images" '
                '-H "X-Auth-Token: $TOKEN" '
                '-H "Content-Type: application/json" '
                '-d "{\\"name\\":\\"$NAME\\",\\"disk_format\\":\\"iso\\",'
                '\\"container_format\\":\\"bare\\"}" '
                '| sed -e \'s/.*"id": *"\\([^"]*\\)".*/\\1/\')\n'
                + CURL_PUT[method] +
                '-H "X-Auth-Token: $TOKEN" '
                '-H "Content-Type: application/octet-stream" '
                '"$EP/images/$id/file"' + CURL_STDIN[method] + '\n'
                'echo $id\n')
            env = dict(self.env, EP=self.endpoint, TOKEN=self.token,
                       NAME=name, FILE=path)
            return ['bash', '-c', script], env
        raise ValueError(method)

    def cleanup(self, name):
        """Check and delete the images of one run; return their state."""
        found = []
        for hidden in ('false', 'true'):
            body = self.admin.image.get(
                '/images', params={'name': name, 'os_hidden': hidden}
            ).json()
            found += body['images']
        for image in found:
            self.admin.image.delete_image(image['id'], ignore_missing=True)
        return found

    def one(self, method, label, path, digest):
        name = '%s%s-%s-%s' % (self.prefix, method, label,
                               uuid.uuid4().hex[:4])
        cmd, env = self.command(method, name, path)
        rc, wall, rss, out = run_measured(cmd, env)
        images = self.cleanup(name)
        ok = (rc == 0 and len(images) == 1 and
              images[0]['status'] == 'active' and
              images[0]['os_hash_value'] == digest)
        if not ok:
            print('  FAILED %s rc=%s images=%s\n%s' % (
                method, rc, [(i['id'], i['status']) for i in images],
                out[-2000:]), flush=True)
        return {'method': method, 'size': label, 'wall': wall,
                'rss_kib': rss, 'ok': ok}


def ratio(a, b, fmt='%.3f'):
    """a / b formatted, or '-' without b."""
    return fmt % (a / b) if b else '-'


def summarize(results, sizes, methods):
    lines = []
    med = {}
    for label in sizes:
        for method in methods:
            rows = [r for r in results if r['size'] == label and
                    r['method'] == method and r['ok']]
            if not rows:
                continue
            walls = [r['wall'] for r in rows]
            rss = [r['rss_kib'] / 1024.0 for r in rows]
            med[label, method] = (statistics.median(walls),
                                  statistics.median(rss),
                                  min(walls), max(walls), max(rss),
                                  len(rows))
    header = ('| size | method | runs ok | wall median s (min-max) | '
              'wall / curl | wall / curl-chunked | '
              'peak RSS median MiB (max) | RSS / curl | RSS - osc MiB |')
    lines.append(header)
    lines.append('|---|---|---|---|---|---|---|---|---|')
    for label in sizes:
        curl = med.get((label, 'curl'))
        chunked = med.get((label, 'curl-chunked'))
        osc = med.get((label, 'osc'))
        for method in methods:
            m = med.get((label, method))
            if m is None:
                lines.append('| %s | %s | 0 | - | - | - | - | - | - |' % (
                    label, method))
                continue
            lines.append('| %s | %s | %d | %.2f (%.2f-%.2f) | %s | %s | '
                         '%.1f (%.1f) | %s | %s |' % (
                             label, method, m[5], m[0], m[2], m[3],
                             ratio(m[0], curl and curl[0]),
                             ratio(m[0], chunked and chunked[0]),
                             m[1], m[4],
                             ratio(m[1], curl and curl[1], '%.1f'),
                             '%+.1f' % (m[1] - osc[1]) if osc else '-'))
    lines.append('')
    for method in ('iso-cli', 'iso-lib'):
        for label in sizes:
            m = med.get((label, method))
            for limit in ('curl', 'curl-chunked'):
                c = med.get((label, limit))
                if m and c:
                    lines.append(
                        'target %s %s wall <= 1.05 x %s: %.3f %s' % (
                            method, label, limit, m[0] / c[0],
                            'MET' if m[0] <= 1.05 * c[0] else 'NOT MET'))
        if len(sizes) >= 2:
            a, b = (med.get((sizes[0], method)),
                    med.get((sizes[-1], method)))
            if a and b:
                lines.append(
                    'target %s peak RSS %s vs %s within 5 MiB: %.1f vs %.1f '
                    'MiB (max %.1f vs %.1f) %s' % (
                        method, sizes[0], sizes[-1], a[1], b[1], a[4], b[4],
                        'MET' if abs(a[4] - b[4]) <= 5 else 'NOT MET'))
    # The CLI against the CLI it extends: same interpreter, same OSC
    # start-up; the library alone has neither, so only the CLI has a target.
    for label in sizes:
        m, o = med.get((label, 'iso-cli')), med.get((label, 'osc'))
        if m and o:
            lines.append(
                'target iso-cli %s peak RSS within 2 MiB of openstack image '
                'create: %.1f vs %.1f MiB, difference %+.1f MiB '
                '(maxima %+.1f) %s' % (
                    label, m[1], o[1], m[1] - o[1], m[4] - o[4],
                    'MET' if abs(m[1] - o[1]) <= 2 else 'NOT MET'))
    return '\n'.join(lines)


def common_parser(doc, runs):
    """The options the upload and prepare benchmarks share."""
    parser = argparse.ArgumentParser(description=doc.split('\n')[0])
    parser.add_argument('--sizes', default='1G,4G')
    parser.add_argument('--runs', type=int, default=runs)
    parser.add_argument('--dir', default=os.path.join(ROOT, '.cache',
                                                      'bench'))
    parser.add_argument('--cloud', default='devcloud-demo')
    parser.add_argument('--admin-cloud', default='devcloud-admin')
    parser.add_argument('--clouds-yaml',
                        default=os.path.join(ROOT, '.devcloud',
                                             'clouds.yaml'))
    parser.add_argument('--json', help='also write the raw results here')
    return parser


def main(argv=None):
    parser = common_parser(__doc__, runs=3)
    parser.add_argument('--methods', default=','.join(METHODS))
    args = parser.parse_args(argv)
    sizes = args.sizes.split(',')
    methods = args.methods.split(',')
    os.makedirs(args.dir, exist_ok=True)
    # An installed isoplugin has byte-compiled modules (pip compiles them),
    # as OSC and glanceclient have; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would compile isoplugin at every start, which
    # costs the CLI about 3 MiB of peak RSS and 100 ms. Compile it first.
    import compileall
    compileall.compile_dir(os.path.join(ROOT, 'isoplugin'), quiet=1,
                           force=False)
    bench = Bench(args)
    files = {label: make_file(args.dir, label, SIZES[label])
             for label in sizes}
    results = []
    for label in sizes:
        path, digest = files[label]
        # warm the page cache so the first run is not penalised
        subprocess.run(['cat', path], stdout=subprocess.DEVNULL, check=True)
        for n in range(args.runs):
            order = methods[n % len(methods):] + methods[:n % len(methods)]
            for method in order:
                r = bench.one(method, label, path, digest)
                results.append(r)
                print('%s run %d %-12s wall %7.2f s  peak RSS %7.1f MiB %s'
                      % (label, n + 1, method, r['wall'],
                         r['rss_kib'] / 1024.0, 'ok' if r['ok'] else
                         'FAILED'), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    print()
    print(summarize(results, sizes, methods))
    return 0 if all(r['ok'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
