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

"""``openstack iso prepare`` and the profile commands on the local cloud.

Any compute mode (nothing boots): a Debian-like ISO made in the test
(``tests/tools/make_distro_iso.py``: isolinux + EFI image, isohybrid MBR
and GPT) is registered, prepared through the real Glance, found again in
the cache, checked for its properties and privacy, and deleted with
``build delete --prepared``. Every bad input ends with a one-line error,
a non-zero exit and nothing new in Glance; a secret variable is never in
``--debug`` output nor in the image.

A Windows-like ISO (``tests/tools/make_windows_iso.py``: files in UDF, BIOS
and UEFI El Torito entries) is prepared with the windows profile and
``--add-files``, and the copy is read back from Glance.
"""

import json
import os
import uuid
from xml.etree import ElementTree

import pytest

from isoplugin import isoinfo
from isoplugin import profiles
from tests.functional import base
from tests.tools import make_distro_iso
from tests.tools import make_test_iso
from tests.tools import make_windows_iso

PREFIX = 'prepft-%s-' % uuid.uuid4().hex[:6]
SECRET = '$6$isopluginft$' + uuid.uuid4().hex
P = 'isoplugin_'


def _register(path, name):
    return base.osc_json('iso', 'create', name, '--file', str(path),
                         '--no-progress')


@pytest.fixture(scope='module')
def isos(devcloud, demo_conn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('prepare')
    debian = make_distro_iso.make('debian', str(tmp / 'debian.iso'))
    # bootable: a build refuses an ISO with no El Torito boot record
    # before it looks at the profile
    plain = make_test_iso.make_iso(str(tmp / 'plain.iso'),
                                   volume_id='NOTHING_KNOWN', eltorito=True)
    made = {'debian': _register(debian, PREFIX + 'debian'),
            'plain': _register(plain, PREFIX + 'plain'),
            'tmp': tmp}
    yield made
    for key in ('debian', 'plain'):
        base.osc('iso', 'delete', made[key]['id'], check=False)


def _prepared(conn):
    return [i for i in base.images(conn)
            if (i.properties or {}).get(P + 'role') == 'prepared-iso']


def test_profile_list_and_show(devcloud):
    rows = base.osc_json('iso', 'profile', 'list')
    assert [r['Name'] for r in rows] == ['anaconda', 'custom', 'debian',
                                         'suse', 'ubuntu', 'windows']
    show = base.osc_json('iso', 'profile', 'show', 'debian')
    names = {v['name']: v for v in show['variables']}
    assert names['password_hash']['secret'] is True
    assert names['locale']['default']
    assert any('isolinux' in rule or '.disk' in rule
               for rule in show['detection']), show['detection']


def test_prepare_cache_properties_privacy(isos, demo_conn):
    iso = isos['debian']
    args = ['iso', 'prepare', iso['name'], '--profile', 'debian',
            '--set', 'password_hash=' + SECRET, '--set', 'hostname=ft']
    first = base.osc(*(['--debug'] + args + ['-f', 'json']))
    out = json.loads(first.stdout)
    try:
        assert out['reused'] == 'no'
        assert out['profile'] == 'debian'
        # the secret is in none of the output, --debug included
        assert SECRET not in first.stdout + first.stderr
        image = base.image_json(demo_conn, out['id'])
        assert SECRET not in json.dumps(image)
        assert image['visibility'] == 'private'
        assert image['os_hidden'] is True
        assert image['status'] == 'active'
        assert image['disk_format'] == 'iso'
        assert image['hw_rescue_device'] == 'cdrom'
        assert image[P + 'role'] == 'prepared-iso'
        assert image[P + 'prepared_from'] == iso['id']
        assert image[P + 'profile'] == 'debian'
        assert image[P + 'cache_key'] == out['cache_key']
        assert json.loads(image[P + 'output_properties'])[
            'hw_qemu_guest_agent'] == 'yes'

        # same inputs: the cached copy, found by one query
        again = base.osc_json(*args)
        assert (again['id'], again['reused']) == (out['id'], 'yes')
        # the profile detected (no --profile): still the same copy
        detected = base.osc(*(args[:3] + args[5:] + ['-f', 'json']))
        assert json.loads(detected.stdout)['id'] == out['id']
        assert 'debian' in detected.stderr
        # other inputs: another copy
        other = base.osc_json(*(args + ['--kernel-args', 'quiet']))
        assert other['id'] != out['id'] and other['reused'] == 'no'

        listed = base.osc_json('iso', 'build', 'list', '--prepared')
        assert {out['id'], other['id']} <= {r['ID'] for r in listed}
    finally:
        base.osc('iso', 'build', 'delete', '--prepared')
    assert _prepared(demo_conn) == []


def test_windows_prepare_with_add_files(devcloud, demo_conn, tmp_path):
    source = make_windows_iso.make(str(tmp_path / 'windows.iso'))
    iso = _register(source, PREFIX + 'windows')
    drivers = tmp_path / 'virtio-win'
    (drivers / 'viostor').mkdir(parents=True)
    (drivers / 'viostor' / 'viostor.inf').write_bytes(b'[Version]\n')
    msi = tmp_path / 'CloudbaseInitSetup_x64.msi'
    msi.write_bytes(b'MSI cloudbase-init\n')
    password = 'Ft-' + uuid.uuid4().hex
    prepared_id = None
    try:
        out = base.osc_json(
            'iso', 'prepare', iso['name'], '--profile', 'windows',
            '--set', 'admin_password=' + password,
            '--set', 'cloudbase_init=cloudbase/CloudbaseInitSetup_x64.msi',
            '--add-files', '%s:/$WinPEDriver$' % drivers,
            '--add-files', '%s:/cloudbase/CloudbaseInitSetup_x64.msi' % msi)
        prepared_id = out['id']
        assert (out['profile'], out['reused']) == ('windows', 'no')
        image = base.image_json(demo_conn, prepared_id)
        assert image['visibility'] == 'private'
        assert image['os_hidden'] is True
        assert image['status'] == 'active'
        assert image[P + 'role'] == 'prepared-iso'
        assert image[P + 'profile'] == 'windows'
        assert image[P + 'prepared_from'] == iso['id']
        assert password not in json.dumps(image)

        copy = str(tmp_path / 'prepared.iso')
        with open(copy, 'wb') as f:
            for chunk in demo_conn.image.download_image(
                    prepared_id, stream=True).iter_content(1 << 20):
                f.write(chunk)
        with isoinfo.open_files(copy) as files, \
                isoinfo.open_files(source) as src:
            assert files.tree == 'udf'  # where Windows Setup reads
            answer = files.read('Autounattend.xml').decode('utf-8')
            root = ElementTree.fromstring(answer)
            assert root.tag == '{urn:schemas-microsoft-com:unattend}unattend'
            profiles.get_profile('windows').validate(answer)
            # the secret is in the private copy only, where Setup needs it
            assert '<Value>%s</Value>' % password in answer
            assert 'cloudbase\\CloudbaseInitSetup_x64.msi' in answer
            # --add-files content
            assert files.read('$WinPEDriver$/viostor/viostor.inf') == \
                b'[Version]\n'
            assert files.read('cloudbase/CloudbaseInitSetup_x64.msi') == \
                b'MSI cloudbase-init\n'
            for path in ('sources/install.wim', 'bootmgr', 'README.TXT'):
                assert files.read(path) == src.read(path), path
        # both El Torito entries kept, each loading what it loaded before
        images = make_windows_iso.eltorito_images(copy)
        assert images == [
            ('BIOS', 8, make_windows_iso.WINDOWS_BOOT[
                'boot/etfsboot.com'][:16]),
            ('UEFI', 2880, make_windows_iso.WINDOWS_BOOT[
                'efi/microsoft/boot/efisys.bin'][:16])]
        assert images == make_windows_iso.eltorito_images(source)
    finally:
        if prepared_id:
            base.osc('image', 'delete', prepared_id, check=False)
        base.osc('iso', 'delete', iso['id'], check=False)
    assert base.images(demo_conn, PREFIX + 'windows') == []
    assert [i.id for i in _prepared(demo_conn) if i.properties.get(
        P + 'prepared_from') == iso['id']] == []


def _write(tmp, name, text):
    path = tmp / name
    path.write_text(text)
    return str(path)


BAD = [
    # (case, args after ISO, message part)
    ('unknown-profile', ['--profile', 'slackware'],
     "No install profile named 'slackware' is installed"),
    ('undetectable', ['{plain}', '--set', 'hostname=x'],
     'could not be detected; give a profile'),
    ('bad-answer-file', ['--profile', 'debian', '--answer-file', '{bad}'],
     'The preseed answer file is not valid: line 1'),
    ('unknown-variable', ['--profile', 'debian', '--set', 'nosuch=1'],
     'unknown variable(s) nosuch'),
    ('missing-add-files', ['--profile', 'debian', '--add-files',
                           '/nonexistent/virtio-win'],
     '--add-files: /nonexistent/virtio-win is not found'),
    ('bad-autounattend', ['--profile', 'windows', '--answer-file',
                          '{bad_xml}'],
     'The autounattend answer file is not valid: XML does not parse'),
    ('over-quota', ['{huge}', '--profile', 'debian'],
     "would exceed the project's image quota"),
]


@pytest.mark.parametrize('case,args,message', BAD, ids=[b[0] for b in BAD])
def test_bad_input(isos, demo_conn, admin_conn, leak_check, case, args,
                   message):
    tmp = isos['tmp']
    paths = {'plain': isos['plain']['name'],
             'bad': _write(tmp, 'bad.cfg', 'd-i debian-installer/locale\n'),
             'bad_xml': _write(tmp, 'Autounattend.xml',
                               '<unattend xmlns="urn:schemas-microsoft-com:'
                               'unattend">\n  <settings>\n</unattend>\n')}
    if case == 'over-quota':
        usage = demo_conn.image.get('/info/usage').json()['usage']
        limit = usage['image_size_total']['limit']
        assert limit >= 0, 'the over-quota case needs a size limit'
        huge = tmp / 'huge.iso'
        make_distro_iso.make('debian', str(huge))
        os.truncate(str(huge), (limit + 1024) * 1024 * 1024)
        paths['huge'] = str(huge)
    args = [a.format(**paths) for a in args]
    if not args[0].startswith('-'):
        cmd = ['iso', 'prepare'] + args
    else:
        cmd = ['iso', 'prepare', isos['debian']['name']] + args
    result = base.osc(*cmd, check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert message in last, result.stderr[-2000:]
    assert leak_check.left().get('images', {}) == {}
    # the same refusal from build create, before anything is made
    if case != 'over-quota':
        build = base.osc('iso', 'build', 'create', '--name',
                         PREFIX + 'never', *cmd[2:], check=False)
        assert build.returncode != 0
        assert message in build.stderr, build.stderr[-2000:]
        assert leak_check.left().get('images', {}) == {}
