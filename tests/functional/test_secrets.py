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

"""No password, token or secret variable in any output (issues 11, 12).

Fake compute mode. The real ``openstack`` CLI runs as the demo user with
``--debug`` and ``--log-file`` (oslo.log records of isoplugin at DEBUG
go to both): ``iso create``, ``iso prepare`` and ``iso build create``
(waiting, and ``--no-wait`` with its background log) with a secret
``--set password_hash=...`` for the anaconda profile, ``iso prepare``
with the user's own kickstart holding a plain password, ``iso list``,
``iso show``, ``iso build list``. Grepped for:

* demo's password, from the devcloud's clouds.yaml;
* every Keystone token the CLI processes got: each run's keystoneauth
  writes the tokens it obtains to a file (``TOKEN_HOOK`` wraps the CLI's
  own entry point); each one's ``{SHA256}`` digest, which keystoneauth
  logs in place of the token, must be in the ``--debug`` output, which
  proves that these are the tokens the requests carried;
* the secret variable's value and the answer file's password.

Looked in: every command's stdout and stderr, the ``--log-file`` files,
the background build's log, the lines the devcloud services logged
meanwhile (secret values only: a service may log a token digest), and
every property of every image the run made (the ISO, the prepared ISO,
the build record while the build runs, the output images).
"""

import glob
import hashlib
import io
import json
import os
import stat
import sys
import uuid

import pytest
import yaml

from isoplugin import background
from isoplugin import isoinfo
from tests.functional import base
from tests.tools import make_distro_iso
from tests.tools import make_test_iso

PREFIX = 'secft-%s-' % uuid.uuid4().hex[:6]
PASSWORD_HASH = '$6$secft$' + uuid.uuid4().hex
#: a secret in the user's own answer file (not a variable)
ANSWER_SECRET = 'secft-plain-' + uuid.uuid4().hex
KICKSTART = ('text\nlang en_US.UTF-8\nrootpw --plaintext %s\npoweroff\n'
             % ANSWER_SECRET)
LAYOUT = os.path.join(os.path.dirname(make_distro_iso.__file__),
                      'distro_layouts', 'anaconda')

#: the CLI's entry point, with keystoneauth telling which tokens it got
TOKEN_HOOK = r'''#!%(python)s
import os
import sys

from keystoneauth1.identity import base as _identity

_real = _identity.BaseIdentityPlugin.get_access
_seen = set()


def get_access(self, session, **kwargs):
    access = _real(self, session, **kwargs)
    token = access.auth_token
    if token and token not in _seen:
        _seen.add(token)
        with open(os.environ['SECFT_TOKENS'], 'a') as f:
            f.write(token + '\n')
    return access


_identity.BaseIdentityPlugin.get_access = get_access

from openstackclient.shell import main  # noqa: E402

sys.exit(main())
'''


class Run(object):
    """CLI runs with --debug and a log file; what they showed and got."""

    def __init__(self, tmp_path, config_file):
        self.dir = tmp_path
        self.config_file = config_file
        self.tokens_file = str(tmp_path / 'tokens')
        self.cli = str(tmp_path / 'openstack')
        with open(self.cli, 'w') as f:
            f.write(TOKEN_HOOK % {'python': sys.executable})
        os.chmod(self.cli, stat.S_IRWXU)
        self.outputs = []   # (what, text)
        self.count = 0

    def __call__(self, *args, check=True):
        self.count += 1
        log_file = str(self.dir / ('cli-%d.log' % self.count))
        env = base.osc_env(self.config_file, SECFT_TOKENS=self.tokens_file)
        result = base.osc('--debug', '--log-file', log_file, *args,
                          env=env, check=check, executable=self.cli)
        what = ' '.join(args[:3])
        self.outputs.append(('stdout of %s' % what, result.stdout))
        self.outputs.append(('stderr of %s' % what, result.stderr))
        with open(log_file) as f:
            self.outputs.append(('--log-file of %s' % what, f.read()))
        return result

    def tokens(self):
        with open(self.tokens_file) as f:
            return sorted(set(f.read().split()))

    def add_file(self, what, path):
        with open(path, errors='replace') as f:
            self.outputs.append((what, f.read()))


def _demo_password():
    with open(base.CLOUDS_YAML) as f:
        clouds = yaml.safe_load(f)['clouds']
    return clouds[base.CLOUDS['demo']]['auth']['password']


def _service_logs_since(offsets):
    """The lines each devcloud service logged since ``offsets``."""
    out = {}
    for path in glob.glob(os.path.join(base.Devcloud.logs_dir, '*')):
        start = offsets.get(path, 0)
        try:
            with open(path, 'rb') as f:
                if os.fstat(f.fileno()).st_size < start:
                    start = 0  # the service was restarted: a new log
                f.seek(start)
                out[path] = f.read().decode('utf-8', 'replace')
        except OSError:
            pass
    return out


def _log_offsets():
    return {path: os.path.getsize(path) for path in
            glob.glob(os.path.join(base.Devcloud.logs_dir, '*'))}


@pytest.fixture
def iso_path(tmp_path):
    """A bootable ISO with anaconda's boot menus and the fake installer.

    The anaconda profile rewrites its menus and adds its kickstart; the
    fake compute driver installs from /ISOPLUGIN.CFG, which the prepared
    copy keeps.
    """
    files = {'/isolinux/vmlinuz': b'kernel stand-in\n',
             '/isolinux/initrd.img': make_distro_iso.cpio_gz(
                 {'init': b'#!/bin/sh\n'})}
    for rel in ('isolinux/isolinux.cfg', 'EFI/BOOT/grub.cfg'):
        with open(os.path.join(LAYOUT, rel)) as f:
            files['/' + rel] = f.read()
    return make_test_iso.make_iso(
        str(tmp_path / 'secft.iso'), volume_id='SECFT', files=files,
        eltorito=True, isoplugin_cfg={'action': 'install', 'delay': '1'})


def _images_of_run(conn, baseline, iso_id):
    """The images made since ``baseline`` that this run made.

    Named with PREFIX, made from the ISO (the prepared ISO, outputs), or
    of one of those builds (records, blank disks): another engineer's
    benchmark may make images meanwhile.
    """
    made = {}
    for image in base.images(conn):
        if image.id in baseline:
            continue
        shown = conn.image.get('/images/%s' % image.id)
        if shown.status_code != 404:  # a record or blank disk just went
            made[image.id] = shown.json()
    builds = {i.get('isoplugin_build_id') for i in made.values()
              if PREFIX in json.dumps(i) or iso_id in json.dumps(i)}
    return {k: i for k, i in made.items()
            if PREFIX in json.dumps(i) or iso_id in json.dumps(i) or
            i.get('isoplugin_build_id') in builds - {None}}


def _answer_file(conn, image_id, path):
    """A file of an ISO image, read from Glance."""
    data = b''.join(conn.image.download_image(image_id, stream=True)
                    .iter_content(1 << 20))
    with isoinfo.open_files(io.BytesIO(data), name=image_id) as files:
        return files.read(path).decode()


def _find(secrets, outputs):
    """[(secret name, where)] for every secret found in ``outputs``."""
    return [(name, what) for what, text in outputs
            for name, value in secrets.items() if value and value in text]


def test_no_secret_in_output_logs_or_images(devcloud, demo_conn,
                                            admin_conn, config_file,
                                            iso_path, leak_check,
                                            tmp_path):
    run = Run(tmp_path, config_file)
    offsets = _log_offsets()
    baseline = {i.id for i in base.images(admin_conn)}
    seen_images = {}
    name = PREFIX + 'iso'
    unattended = ['--profile', 'anaconda',
                  '--set', 'password_hash=' + PASSWORD_HASH,
                  '--set', 'hostname=secft']
    background_log = iso = None
    try:
        iso = json.loads(run('iso', 'create', name, '--file', iso_path,
                             '--no-progress', '-f', 'json').stdout)
        prepared = json.loads(run('iso', 'prepare', name, *(unattended + [
            '-f', 'json'])).stdout)
        answer = tmp_path / 'ks.cfg'
        answer.write_text(KICKSTART)
        own = json.loads(run('iso', 'prepare', name, '--profile',
                             'anaconda', '--answer-file', str(answer),
                             '-f', 'json').stdout)
        built = json.loads(run(
            'iso', 'build', 'create', name, '--name', PREFIX + 'out',
            '--flavor', 'm1.tiny', '--no-verify', *(unattended + [
                '-f', 'json'])).stdout)
        # in the background: the build record is read while it exists
        shown = json.loads(run(
            'iso', 'build', 'create', name, '--name', PREFIX + 'bg',
            '--flavor', 'm1.tiny', '--no-verify', '--no-wait',
            *(unattended + ['-f', 'json'])).stdout)
        background_log = background.log_path(shown['build_id'])

        def done():
            now = _images_of_run(admin_conn, baseline, iso['id'])
            seen_images.update(now)
            out = base.images(demo_conn, name=PREFIX + 'bg')
            return out and out[0].status == 'active' and not any(
                i.get('isoplugin_role') == 'build-record' and
                i.get('isoplugin_build_id') == shown['build_id']
                for i in now.values())
        base.poll(done, 'the background build %s' % shown['build_id'],
                  300, interval=0.5)
        run('iso', 'list', '--long', '-f', 'json')
        run('iso', 'show', iso['id'], '-f', 'json')
        run('iso', 'build', 'list', '--prepared', '-f', 'json')
        seen_images.update(_images_of_run(admin_conn, baseline, iso['id']))
        run.add_file('background build log', background_log)
        for path, text in _service_logs_since(offsets).items():
            run.outputs.append(('devcloud log ' + os.path.basename(path),
                                text))

        tokens = run.tokens()
        debug = '\n'.join(text for what, text in run.outputs
                          if what.startswith(('stderr', '--log-file')))
        # the recorded tokens are those the requests carried
        assert tokens
        for token in tokens:
            digest = hashlib.sha256(token.encode()).hexdigest()
            assert '{SHA256}' + digest in debug, 'token not used?'
        # the checks look at real material: the secret is in the
        # prepared ISO's kickstart (its data, private), the builds used
        # that profile, the build record was seen, isoplugin logged
        assert prepared['profile'] == 'anaconda'
        assert PASSWORD_HASH in _answer_file(demo_conn, prepared['id'],
                                             'ks.cfg')
        assert ANSWER_SECRET in _answer_file(demo_conn, own['id'], 'ks.cfg')
        assert built['isoplugin_profile'] == 'anaconda'
        roles = {i.get('isoplugin_role') for i in seen_images.values()}
        assert {'prepared-iso', 'build-record'} <= roles, roles
        assert 'isoplugin.' in debug, 'no isoplugin log record'

        secrets = {'demo password': _demo_password(),
                   'password_hash': PASSWORD_HASH,
                   'answer-file secret': ANSWER_SECRET}
        secrets.update(('token %d' % n, t) for n, t in enumerate(tokens))
        images = [('image %s (%s) properties' % (i['id'], i['name']),
                   json.dumps(i)) for i in seen_images.values()]
        service_logs = [o for o in run.outputs
                        if o[0].startswith('devcloud log')]
        client = [o for o in run.outputs if o not in service_logs]
        assert _find(secrets, client + images) == []
        assert _find({'password_hash': PASSWORD_HASH,
                      'answer-file secret': ANSWER_SECRET},
                     service_logs) == []
    finally:
        for image in base.images(demo_conn, PREFIX):
            demo_conn.image.delete_image(image.id, ignore_missing=True)
        for image in _images_of_run(admin_conn, baseline,
                                    iso['id'] if iso else PREFIX).values():
            admin_conn.image.delete_image(image['id'], ignore_missing=True)
        if background_log and os.path.exists(background_log):
            os.remove(background_log)
    leak_check.assert_clean()
