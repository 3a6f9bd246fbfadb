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

"""The ISO catalog against the local OpenStack (tools/devcloud).

Every command runs as the real CLI, ``openstack iso ...`` of the tests'
virtualenv, with the clouds of .devcloud/clouds.yaml: ``devcloud-demo``
(member of project demo), ``devcloud-admin`` where Glance's policy needs
an admin (copy-image, deleting from one store) and ``devcloud-other`` for
sharing.
Every ISO of this module has a name starting with a per-run prefix; the
module deletes them at the end and only looks at its own images for leaks,
because other engineers use the same cloud at the same time.
"""

import functools
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid

import pytest

from tests.functional import base
from tests.tools import make_distro_iso
from tests.tools import make_test_iso

PREFIX = 'catft-%s-' % uuid.uuid4().hex[:8]
osc = base.osc
osc_json = base.osc_json


@pytest.fixture(scope='module', autouse=True)
def cleanup(admin_conn):
    """At the end: delete every image of this run, in every project."""
    yield
    for image in base.images(admin_conn, PREFIX):
        if image.is_protected:
            admin_conn.image.update_image(image, is_protected=False)
        admin_conn.image.delete_image(image, ignore_missing=True)
    assert base.images(admin_conn, PREFIX) == []


def _own_images(admin, name=None):
    """All images (hidden or not, any project) of this run."""
    return base.images(admin, PREFIX, name)


@pytest.fixture(scope='module')
def isodir(tmp_path_factory):
    d = tmp_path_factory.mktemp('isos')
    make_test_iso.make_iso(str(d / 'ubuntu.iso'),
                           volume_id='UBUNTU_24_04_1_AMD64', eltorito=True)
    make_test_iso.make_iso(str(d / 'plain.iso'), volume_id='ISOPLUGIN_FT')
    make_test_iso.make_iso(str(d / 'udf.iso'), volume_id='DEBIAN_12_ARM64',
                           udf=True)
    return d


@pytest.fixture(scope='module')
def web(isodir):
    """A local web server serving isodir on 127.0.0.1 (random port)."""
    handler = functools.partial(_QuietHandler, directory=str(isodir))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _name(suffix):
    return PREFIX + suffix


def _create(name, path, *extra, cloud='demo'):
    return osc_json('iso', 'create', name, '--file', str(path),
                    '--no-progress', *extra, cloud=cloud)


def _delete(name_or_id, cloud='demo'):
    osc('iso', 'delete', name_or_id, '--yes', cloud=cloud)


# -- register, list, show ---------------------------------------------------

def test_create_from_file_detects_and_marks(admin_conn, isodir):
    name = _name('ubuntu')
    result = osc('iso', 'create', name, '--file', str(isodir / 'ubuntu.iso'),
                 '--no-progress', '--description', 'Ubuntu server',
                 '--tag', 'lts', '--min-ram', '1024', '--featured',
                 '-f', 'json')
    iso = json.loads(result.stdout)
    assert 'Detected: os_type=linux, os_distro=ubuntu, os_version=24.04, ' \
           'architecture=x86_64' in result.stderr
    assert 'Verified: Glance sha512 matches the client' in result.stderr
    raw = base.image_json(admin_conn, iso['id'])
    assert raw['disk_format'] == 'iso'
    assert raw['container_format'] == 'bare'
    assert raw['os_hidden'] is True
    assert raw['isoplugin_media'] == 'installer-iso'
    assert raw['hw_rescue_device'] == 'cdrom'
    assert raw['hw_cdrom_bus'] == 'sata'
    assert raw['hw_rescue_bus'] == 'sata'
    assert raw['isoplugin_featured'] == 'true'
    assert raw['isoplugin_extractable'] == 'true'
    assert raw['isoplugin_password_enabled'] == 'false'
    assert raw['os_distro'] == 'ubuntu'
    assert raw['architecture'] == 'x86_64'
    assert raw['min_ram'] == 1024
    assert raw['tags'] == ['lts']
    assert raw['description'] == 'Ubuntu server'
    digest = hashlib.sha512(
        (isodir / 'ubuntu.iso').read_bytes()).hexdigest()
    assert raw['os_hash_value'] == digest
    assert raw['visibility'] == 'private'
    # a label alone is no installer layout: no install profile recognises it
    assert raw['isoplugin_profile'] == 'none'
    assert 'Install profile: none' in result.stderr

    listed = osc_json('iso', 'list', '--long')
    row = [r for r in listed if r['Id'] == iso['id']]
    assert row and row[0]['Hidden'] is True and row[0]['Stores'] == 'fast'
    # Hidden from ordinary image lists.
    images = osc_json('image', 'list')
    assert iso['id'] not in [i['ID'] for i in images]

    shown = osc_json('iso', 'show', name)
    assert shown['id'] == iso['id']
    assert shown['servers'] == ''
    assert shown['checksum'] == 'sha512:' + digest
    _delete(name)
    assert _own_images(admin_conn, name) == []


def test_create_detects_install_profile(admin_conn, tmp_path):
    # an ISO in the Debian installer's layout: the profile is found from
    # its directory entries and kept for the build pipeline
    path = make_distro_iso.make('debian', str(tmp_path / 'debian.iso'))
    name = _name('profile')
    result = osc('iso', 'create', name, '--file', path, '--no-progress',
                 '-f', 'json')
    iso = json.loads(result.stdout)
    assert 'Install profile: debian (' in result.stderr
    assert base.image_json(admin_conn, iso['id'])[
        'isoplugin_profile'] == 'debian'
    _delete(iso['id'])


def test_create_udf_with_checksum_and_overrides(isodir):
    name = _name('udf')
    path = isodir / 'udf.iso'
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    result = osc('iso', 'create', name, '--file', str(path), '--no-progress',
                 '--checksum', 'sha256:' + digest, '--os-version', '12.5',
                 '--unhidden', '--visibility', 'community', '-f', 'json')
    iso = json.loads(result.stdout)
    assert 'ISO9660+UDF image' in result.stderr
    assert 'Verified: sha256 matches the given checksum' in result.stderr
    assert iso['os_distro'] == 'debian'
    assert iso['os_version'] == '12.5'
    assert iso['architecture'] == 'aarch64'
    assert iso['hidden'] is False
    assert iso['visibility'] == 'community'
    _delete(iso['id'])


def test_create_with_content_length(admin_conn, isodir, tmp_path):
    # The default upload is chunked (test above); [glance] chunked_upload =
    # false sends a Content-Length instead, for a Glance that refuses
    # chunked bodies. Both reach the same verified image.
    config = tmp_path / 'isoplugin.conf'
    config.write_text('[glance]\nchunked_upload = false\n')
    name = _name('length')
    path = isodir / 'plain.iso'
    result = osc('iso', 'create', name, '--file', str(path), '--no-progress',
                 '-f', 'json', config_file=config)
    iso = json.loads(result.stdout)
    assert 'Verified: Glance sha512 matches the client' in result.stderr
    raw = base.image_json(admin_conn, iso['id'])
    assert raw['status'] == 'active'
    assert raw['size'] == path.stat().st_size
    assert raw['os_hash_value'] == hashlib.sha512(
        path.read_bytes()).hexdigest()
    _delete(iso['id'])


def test_interrupted_upload_leaves_nothing(admin_conn, devcloud, tmp_path):
    # Ctrl-C while Glance is receiving the bytes: the CLI exits non-zero
    # without a traceback, and neither the image nor its partial data in
    # the store is left. The store folders are the ones Glance's own
    # configuration names; the partial file is seen there during the upload,
    # so that the last check looks where Glance writes.
    stores = devcloud.glance_store_dirs()
    assert 'fast' in stores, stores
    for store, directory in stores.items():
        assert os.path.isdir(directory), (store, directory)
    path = tmp_path / 'big.iso'
    make_test_iso.make_iso(str(path), volume_id='INTERRUPTED')
    os.truncate(str(path), 1 << 30)  # sparse: a few seconds of upload
    name = _name('interrupted')
    proc = subprocess.Popen(
        base.osc_command('iso', 'create', name, '--file', str(path),
                         '--no-progress'),
        env=base.osc_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=base.interruptible)
    try:
        image = base.poll(
            lambda: [i for i in _own_images(admin_conn, name)
                     if i.status == 'saving'],
            'the upload to reach Glance (status saving)', 120)
        store_files = [os.path.join(d, image[0].id) for d in stores.values()]

        def in_store():
            return [f for f in store_files if os.path.exists(f)]

        base.poll(in_store, 'the partial data in a Glance store', 60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, out
    assert 'Traceback' not in err, err
    base.poll(lambda: _own_images(admin_conn, name), 'the image to be gone',
              60, until=lambda left: left == [])
    base.poll(in_store, 'the partial data to be gone from the stores', 60,
              until=lambda left: left == [])


def test_usage():
    rows = osc_json('iso', 'usage')
    by_name = {r['Resource']: r for r in rows}
    assert 'image_count_total' in by_name
    assert by_name['image_size_total']['Unit'] == 'MiB'
    assert isinstance(by_name['image_count_total']['Usage'], int)


# -- change, retire, restore ------------------------------------------------

def _set(iso, *args, cloud='demo'):
    """``iso set`` (it prints nothing), then ``iso show`` of the ISO."""
    result = osc('iso', 'set', iso, *args, cloud=cloud)
    assert result.stdout == '', result.stdout
    return osc_json('iso', 'show', iso, cloud=cloud)


def test_set_prints_nothing(isodir):
    # issue 11 #11a: `openstack iso set` printed the whole ISO
    name = _name('set-quiet')
    iso = _create(name, isodir / 'plain.iso')
    result = osc('iso', 'set', name, '--description', 'quiet')
    assert (result.returncode, result.stdout) == (0, '')
    assert osc_json('iso', 'show', iso['id'])['description'] == 'quiet'
    _delete(iso['id'])


def test_set_retire_restore(admin_conn, isodir):
    name = _name('set')
    iso = _create(name, isodir / 'plain.iso')
    new = _name('set-renamed')
    osc('iso', 'set', name, '--name', new, '--description', 'd',
        '--os-type', 'linux', '--os-distro', 'fedora',
        '--os-version', '40', '--architecture', 'amd64',
        '--no-extractable', '--password-enabled', '--tag', 'a',
        '--tag', 'b', '--visibility', 'shared', '--protected')
    out = osc_json('iso', 'show', iso['id'])
    assert out['name'] == new
    assert out['architecture'] == 'x86_64'
    assert out['extractable'] is False
    assert out['password_enabled'] is True
    assert sorted(out['tags'].split(', ')) == ['a', 'b']
    assert out['visibility'] == 'shared'
    assert out['protected'] is True
    out = _set(new, '--remove-tag', 'a', '--unprotected')
    assert out['tags'] == 'b' and out['protected'] is False

    out = _set(new, '--unhidden')
    assert out['hidden'] is False
    out = _set(new, '--retire')
    assert out['retired'] is True
    assert out['hidden'] is True
    assert out['status'] == 'deactivated'
    raw = base.image_json(admin_conn, iso['id'])
    assert raw['isoplugin_retired'] == 'true'
    out = _set(new, '--restore')
    assert out['retired'] is False
    assert out['status'] == 'active'
    assert out['hidden'] is True
    assert 'isoplugin_retired' not in base.image_json(admin_conn, iso['id'])
    _delete(new)


def test_public_as_member_is_refused_clearly(admin_conn, isodir):
    name = _name('public')
    result = osc('iso', 'create', name, '--file', str(isodir / 'plain.iso'),
                 '--no-progress', '--visibility', 'public', check=False)
    assert result.returncode != 0
    assert 'only an administrator can make an ISO public' in result.stderr
    assert 'publicize_image' in result.stderr
    assert _own_images(admin_conn, name) == []
    # and on an existing ISO
    _create(name, isodir / 'plain.iso')
    result = osc('iso', 'set', name, '--visibility', 'public', check=False)
    assert result.returncode != 0
    assert 'publicize_image' in result.stderr
    assert _image_by_name(admin_conn, name).visibility == 'private'
    # an admin may
    out = _set(_image_by_name(admin_conn, name).id, '--visibility',
               'public', cloud='admin')
    assert out['visibility'] == 'public'
    _delete(name)


def _image_by_name(admin, name):
    images = _own_images(admin, name)
    assert len(images) == 1, images
    return images[0]


# -- delete -----------------------------------------------------------------

def test_protected_delete_refused(admin_conn, isodir):
    name = _name('protected')
    _create(name, isodir / 'plain.iso', '--protected')
    result = osc('iso', 'delete', name, '--yes', check=False)
    assert result.returncode != 0
    assert "ISO '%s' is protected" % name in result.stderr
    assert '--unprotected' in result.stderr
    assert len(_own_images(admin_conn, name)) == 1
    osc('iso', 'set', name, '--unprotected')
    _delete(name)
    assert _own_images(admin_conn, name) == []


def test_in_use_delete_refused(admin_conn, demo_conn, isodir):
    name = _name('inuse')
    iso = _create(name, isodir / 'plain.iso')
    flavor = sorted(demo_conn.compute.flavors(), key=lambda f: f.ram)[0]
    server = demo_conn.compute.create_server(
        name=_name('server'), image_id=iso['id'], flavor_id=flavor.id,
        networks='none', metadata={'isoplugin_iso_id': iso['id']})
    try:
        shown = osc_json('iso', 'show', name)
        assert server.id in shown['servers']
        result = osc('iso', 'delete', name, '--yes', check=False)
        assert result.returncode != 0
        assert 'is in use by 1 server(s)' in result.stderr
        assert server.id in result.stderr
        assert len(_own_images(admin_conn, name)) == 1
    finally:
        demo_conn.compute.delete_server(server)
        demo_conn.compute.wait_for_delete(server, wait=300)
    _delete(name)
    assert _own_images(admin_conn, name) == []


def test_copy_to_second_store_then_delete_one(admin_conn, isodir):
    name = _name('copy')
    iso = _create(name, isodir / 'ubuntu.iso')
    assert iso['stores'] == 'fast'
    # copy-image is admin only by default: a member gets a clear message
    result = osc('iso', 'copy', name, '--store', 'cheap', check=False)
    assert result.returncode != 0
    assert 'copy_image' in result.stderr
    result = osc('iso', 'copy', iso['id'], '--store', 'cheap', '-f', 'json',
                 cloud='admin')
    assert 'store cheap: done' in result.stderr
    assert sorted(json.loads(result.stdout)['stores'].split(',')) == [
        'cheap', 'fast']
    # deleting the only... refused when it would remove every copy
    result = osc('iso', 'delete', iso['id'], '--store', 'fast', '--store',
                 'cheap', '--yes', cloud='admin', check=False)
    assert result.returncode != 0
    assert 'hold every copy' in result.stderr
    osc('iso', 'delete', iso['id'], '--store', 'fast', '--yes',
        cloud='admin')
    raw = base.image_json(admin_conn, iso['id'])
    assert raw['stores'] == 'cheap'
    assert raw['status'] == 'active'
    shown = osc_json('iso', 'show', name)
    assert shown['stores'] == 'cheap'
    _delete(name)
    assert _own_images(admin_conn, name) == []


def test_copy_all_stores(isodir):
    name = _name('copyall')
    iso = _create(name, isodir / 'plain.iso')
    out = osc_json('iso', 'copy', iso['id'], '--all-stores', cloud='admin')
    assert sorted(out['stores'].split(',')) == ['cheap', 'fast']
    _delete(name)


# -- sharing ----------------------------------------------------------------

def test_share_with_other_project(other_conn, isodir):
    name = _name('shared')
    iso = _create(name, isodir / 'plain.iso')
    other_project = other_conn.current_project_id
    # not visible before sharing
    result = osc('iso', 'show', iso['id'], cloud='other', check=False)
    assert result.returncode != 0
    assert 'No ISO named or with ID' in result.stderr
    # a name that the member cannot resolve is refused, not shared
    result = osc('iso', 'add', 'project', name, 'other', check=False)
    assert result.returncode != 0
    assert 'give the project ID' in result.stderr
    member = osc_json('iso', 'add', 'project', name, other_project)
    assert member['status'] == 'pending'
    assert member['member_id'] == other_project
    assert osc_json('iso', 'show', name)['visibility'] == 'shared'
    # visible by ID now; listed once accepted
    assert osc_json('iso', 'show', iso['id'], cloud='other')['name'] == name
    listed = osc_json('iso', 'list', cloud='other')
    assert iso['id'] not in [r['Id'] for r in listed]
    member = osc_json('iso', 'add', 'project', iso['id'], other_project,
                      '--accept', cloud='other')
    assert member['status'] == 'accepted'
    listed = osc_json('iso', 'list', cloud='other')
    assert iso['id'] in [r['Id'] for r in listed]
    # the other project cannot re-share or delete it
    result = osc('iso', 'delete', iso['id'], '--yes', cloud='other',
                 check=False)
    assert result.returncode != 0
    osc('iso', 'remove', 'project', name, other_project)
    result = osc('iso', 'show', iso['id'], cloud='other', check=False)
    assert result.returncode != 0
    _delete(name)


def test_remove_project_with_servers_refused(other_conn, isodir):
    name = _name('sharedinuse')
    iso = _create(name, isodir / 'plain.iso')
    osc('iso', 'add', 'project', name, other_conn.current_project_id)
    osc('iso', 'add', 'project', iso['id'], other_conn.current_project_id,
        '--accept', cloud='other')
    flavor = sorted(other_conn.compute.flavors(), key=lambda f: f.ram)[0]
    server = other_conn.compute.create_server(
        name=_name('other-server'), image_id=iso['id'], flavor_id=flavor.id,
        networks='none')
    try:
        # the owner (a member of demo) cannot see project other's servers;
        # an admin can, and is refused
        result = osc('iso', 'remove', 'project', iso['id'],
                     other_conn.current_project_id, cloud='admin',
                     check=False)
        assert result.returncode != 0
        assert 'in use by 1 server(s)' in result.stderr
        assert server.id in result.stderr
    finally:
        other_conn.compute.delete_server(server)
        other_conn.compute.wait_for_delete(server, wait=300)
    osc('iso', 'remove', 'project', iso['id'], other_conn.current_project_id,
        cloud='admin')
    _delete(name)


# -- URLs -------------------------------------------------------------------

def test_create_from_url_web_download(admin_conn, web, isodir):
    name = _name('web')
    result = osc('iso', 'create', name, '--url', web + '/ubuntu.iso',
                 '--no-progress', '-f', 'json')
    iso = json.loads(result.stdout)
    assert 'Importing with Glance web-download' in result.stderr
    assert iso['status'] == 'active'
    assert iso['os_distro'] == 'ubuntu'
    digest = hashlib.sha512(
        (isodir / 'ubuntu.iso').read_bytes()).hexdigest()
    assert iso['checksum'] == 'sha512:' + digest
    # a URL is not looked into for its install profile
    assert 'isoplugin_profile' not in base.image_json(admin_conn, iso['id'])
    _delete(name)


def test_create_from_url_streamed(web, isodir):
    name = _name('webstream')
    digest = hashlib.sha256((isodir / 'plain.iso').read_bytes()).hexdigest()
    result = osc('iso', 'create', name, '--url', web + '/plain.iso',
                 '--no-import', '--no-progress', '--checksum',
                 'sha256:' + digest, '-f', 'json')
    iso = json.loads(result.stdout)
    assert 'Streaming the URL through the client' in result.stderr
    assert 'Verified: Glance sha512 matches the client' in result.stderr
    assert iso['status'] == 'active'
    _delete(name)


# -- bad input: a clear error, non-zero exit, no image left -----------------

def _bad_files(tmp, quota_mib):
    """Make the files of the bad-input table; return {case: path}."""
    paths = {}
    p = tmp / 'random.iso'
    p.write_bytes(os.urandom(200 * 1024))
    paths['not-an-iso'] = p
    p = tmp / 'udfonly.iso'
    make_test_iso.make_iso(str(p), volume_id='UDFONLY', udf_only=True)
    paths['udf-only'] = p
    p = tmp / 'disk.iso'
    # a qcow2 header named .iso
    p.write_bytes(b'QFI\xfb\x00\x00\x00\x03' + b'\0' * (100 * 1024))
    paths['qcow2'] = p
    p = tmp / 'empty.iso'
    p.write_bytes(b'')
    paths['empty'] = p
    good = tmp / 'full.iso'
    make_test_iso.make_iso(str(good), volume_id='TRUNCATED',
                           files={'/BIG.BIN': os.urandom(512 * 1024)})
    data = good.read_bytes()
    p = tmp / 'truncated.iso'
    p.write_bytes(data[:len(data) // 2])
    paths['truncated'] = p
    d = tmp / 'dir.iso'
    d.mkdir()
    paths['directory'] = d
    p = tmp / 'unreadable.iso'
    shutil.copy(str(good), str(p))
    os.chmod(str(p), 0)
    paths['unreadable'] = p
    paths['missing'] = tmp / 'missing.iso'
    p = tmp / 'huge.iso'
    make_test_iso.make_iso(str(p), volume_id='HUGE')
    # sparse, 1 GiB more than the project's whole image_size_total limit
    os.truncate(str(p), (quota_mib + 1024) * 1024 * 1024)
    paths['huge'] = p
    p = tmp / 'ok.iso'
    make_test_iso.make_iso(str(p), volume_id='OK')
    paths['ok'] = p
    return paths


@pytest.fixture(scope='module')
def bad(web, demo_conn):
    # Not under pytest's tmp dir (mode 0700): the unreadable-file case runs
    # as an unprivileged user who must reach the file and find exactly the
    # file itself unreadable.
    tmp = pathlib.Path(tempfile.mkdtemp(prefix='isoplugin-catft-'))
    os.chmod(str(tmp), 0o755)
    usage = demo_conn.image.get('/info/usage').json()['usage']
    limit = usage['image_size_total']['limit']
    assert limit >= 0, 'the over-quota case needs an image_size_total limit'
    paths = _bad_files(tmp, limit)
    yield paths
    shutil.rmtree(str(tmp), ignore_errors=True)


BAD_CASES = [
    # (case, args after NAME, expected message part)
    ('not-an-iso', ['--file', '{not-an-iso}'],
     'is not an ISO 9660 or UDF image: no ISO 9660 or UDF volume '
     'descriptor at byte 32768'),
    ('qcow2-named-iso', ['--file', '{qcow2}'],
     'is not an ISO 9660 or UDF image: it is a qcow2 image, not an ISO'),
    ('udf-only', ['--file', '{udf-only}'],
     'it is a UDF-only image starting with a BEA01 descriptor'),
    ('empty-file', ['--file', '{empty}'],
     'is not an ISO 9660 or UDF image: the file is empty'),
    ('truncated-iso', ['--file', '{truncated}'], 'it is truncated'),
    ('directory', ['--file', '{directory}'], 'it is a directory'),
    ('unreadable-file', ['--file', '{unreadable}'],
     'Cannot read {unreadable}: Permission denied'),
    ('missing-file', ['--file', '{missing}'],
     'Cannot read {missing}: No such file or directory'),
    ('bad-url-scheme', ['--url', 'ftp://127.0.0.1/x.iso'],
     'only http:// and https:// URLs can be registered'),
    ('unreachable-url', ['--url', 'http://127.0.0.1:9/x.iso'],
     'Cannot fetch http://127.0.0.1:9/x.iso'),
    ('404-url', ['--url', '{web}/nothing-here.iso'],
     'the server answered HTTP 404'),
    ('duplicate-name', ['--file', '{ok}'],
     'This project already has an ISO named'),
    ('over-long-name', ['--file', '{ok}'],
     'characters long; Glance allows 255 at most'),
    ('unknown-visibility', ['--file', '{ok}', '--visibility', 'secret'],
     "unknown visibility 'secret'"),
    ('unknown-os-type', ['--file', '{ok}', '--os-type', 'beos'],
     "unknown os_type 'beos'"),
    ('malformed-checksum', ['--file', '{ok}', '--checksum', 'sha256:xyz'],
     'a sha256 digest is 64 hexadecimal digits'),
    ('unknown-checksum-algo', ['--file', '{ok}', '--checksum', 'crc32:00'],
     'must be ALGORITHM:HEX'),
    ('checksum-mismatch', ['--file', '{ok}', '--checksum',
                           'sha256:' + '0' * 64],
     'Checksum mismatch for'),
    ('over-quota', ['--file', '{huge}'],
     "would exceed the project's image quota: image_size_total"),
]


@pytest.fixture(scope='module')
def duplicate(bad):
    name = _name('dup')
    _create(name, bad['ok'])
    yield name
    _delete(name)


@pytest.mark.parametrize('case,args,message', BAD_CASES,
                         ids=[c[0] for c in BAD_CASES])
def test_bad_input(admin_conn, bad, web, duplicate, case, args,
                   message):
    subst = {k: str(v) for k, v in bad.items()}
    subst['web'] = web
    args = [a.format(**subst) for a in args]
    message = message.format(**subst)
    if case == 'duplicate-name':
        name = duplicate
    elif case == 'over-long-name':
        name = PREFIX + 'x' * 256
    else:
        name = _name('bad-' + case)
    kwargs = {}
    if case == 'unreadable-file':
        # We run as root, who reads any file: run this case without the
        # capabilities that let root ignore the file's mode (000).
        kwargs = {'drop_dac': True}
    result = osc('iso', 'create', name, '--no-progress', *args,
                 check=False, **kwargs)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr
    # one line of error, no stack
    left = _own_images(admin_conn, name)
    if case == 'duplicate-name':
        assert len(left) == 1
    else:
        assert left == [], left


# -- races, faults and unfinished uploads (issue 11) -------------------------

# Holds every `iso create` of a race just before its POST until all of them
# got there: both passed the name check, as when two people start at the
# same moment. Loaded by Python at start-up from PYTHONPATH (sitecustomize).
_BARRIER = '''
import os
import time

if os.environ.get('ISOPLUGIN_TEST_BARRIER'):
    from isoplugin import glance

    _create_image = glance.create_image

    def create_image(conn, *args, **kwargs):
        folder = os.environ['ISOPLUGIN_TEST_BARRIER']
        parties = int(os.environ['ISOPLUGIN_TEST_PARTIES'])
        open(os.path.join(folder, str(os.getpid())), 'w').close()
        deadline = time.monotonic() + 120
        while (len(os.listdir(folder)) < parties and
               time.monotonic() < deadline):
            time.sleep(0.01)
        return _create_image(conn, *args, **kwargs)

    glance.create_image = create_image
'''


def _start(*args, env=None):
    return subprocess.Popen(
        base.osc_command(*args), env=env or base.osc_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=base.interruptible)


def test_same_name_at_the_same_moment(admin_conn, isodir, tmp_path):
    # issue 11 #1: both passed the name check, both POST at once; exactly
    # one ISO of the name is left and the other client says it gave way
    hook = tmp_path / 'hook'
    hook.mkdir()
    (hook / 'sitecustomize.py').write_text(_BARRIER)
    barrier = tmp_path / 'barrier'
    barrier.mkdir()
    # the hook first, then whatever PYTHONPATH the tests run with
    path = [str(hook)] + [p for p in os.environ.get(
        'PYTHONPATH', '').split(os.pathsep) if p]
    env = base.osc_env(PYTHONPATH=os.pathsep.join(path),
                       ISOPLUGIN_TEST_BARRIER=str(barrier),
                       ISOPLUGIN_TEST_PARTIES='2')
    name = _name('race')
    procs = [_start('iso', 'create', name, '--file',
                    str(isodir / 'plain.iso'), '--no-progress', '-f',
                    'json', env=env) for _n in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert len(os.listdir(barrier)) == 2  # both reached the POST
    won = [r for r in results if r[2] == 0]
    lost = [r for r in results if r[2] != 0]
    assert len(won) == 1 and len(lost) == 1, results
    winner = json.loads(won[0][0])
    assert ("Another client registered an ISO named '%s' (%s) at the same "
            "moment; this registration gave way" % (name, winner['id'])
            in lost[0][1]), lost[0][1]
    assert 'Traceback' not in lost[0][1]
    left = _own_images(admin_conn, name)
    assert [i.id for i in left] == [winner['id']], left
    assert left[0].status == 'active'
    _delete(winner['id'])


def _saving(admin, name):
    """Wait until the upload of ISO ``name`` reached Glance's store."""
    return base.poll(
        lambda: [i for i in _own_images(admin, name) if i.status == 'saving'],
        'the upload of %s to reach Glance (status saving)' % name, 120)[0]


def test_glance_restart_during_upload(admin_conn, devcloud, leak_check,
                                      tmp_path):
    # issue 11 #2: Glance restarted while it receives the data: one line
    # that says what happened, the image deleted once Glance is back
    path = tmp_path / 'big.iso'
    make_test_iso.make_iso(str(path), volume_id='RESTARTED')
    os.truncate(str(path), 3 << 30)  # sparse: many seconds of upload
    name = _name('restart')
    proc = _start('iso', 'create', name, '--file', str(path),
                  '--no-progress')
    try:
        image = _saving(admin_conn, name)
        devcloud.run('restart', 'glance')
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    assert 'Traceback' not in err, err
    error = err.strip().splitlines()[-1]
    assert error.startswith(
        'Glance closed the connection during the upload of %s, after '
        % path), err
    assert error.endswith('The incomplete image %s was deleted; run the '
                          'command again.' % image.id), err
    assert 'The cloud refused the request' not in err
    assert 'openstack image delete' not in err
    leak_check.assert_clean()


def test_killed_client_then_delete_incomplete(admin_conn, leak_check,
                                              tmp_path):
    # A client SIGKILLed during its upload leaves a queued or saving ISO;
    # `iso list --incomplete` finds it by its marker (the dead client) and
    # `iso delete --incomplete` removes it.
    path = tmp_path / 'big.iso'
    make_test_iso.make_iso(str(path), volume_id='KILLED')
    os.truncate(str(path), 1 << 30)
    name = _name('killed')
    proc = _start('iso', 'create', name, '--file', str(path),
                  '--no-progress')
    try:
        image = _saving(admin_conn, name)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raw = base.image_json(admin_conn, image.id)
    assert raw['isoplugin_client'].endswith(':%d' % proc.pid), raw
    listed = osc_json('iso', 'list', '--incomplete')
    row = [r for r in listed if r['Id'] == image.id]
    assert row and row[0]['Alive'] == 'no', listed
    assert row[0]['Status'] in ('queued', 'saving'), row
    # too young for --older-than 1h: kept
    result = osc('iso', 'delete', '--incomplete', '--older-than', '1h')
    assert image.id not in result.stdout
    assert _own_images(admin_conn, name) != []
    result = osc('iso', 'delete', '--incomplete')
    assert 'deleted %s (%s, ' % (image.id, name) in result.stdout
    leak_check.assert_clean()


def _sums(isodir, name, algo='sha256'):
    """Write a checksum list of the served ISOs as distributions do."""
    lines = ['%s *%s' % (hashlib.new(algo, p.read_bytes()).hexdigest(),
                         p.name) for p in sorted(isodir.glob('*.iso'))]
    (isodir / name).write_text('\n'.join(lines) + '\n')
    return name


def test_url_import_unverified_says_so_once(web):
    # issue 11 #3: no garbled warning; one line that says how to verify
    name = _name('web-unverified')
    result = osc('iso', 'create', name, '--url', web + '/ubuntu.iso',
                 '--import', '--no-progress', '-f', 'json')
    iso = json.loads(result.stdout)
    notes = [line for line in result.stderr.splitlines()
             if 'verified' in line.lower()]
    assert len(notes) == 1, result.stderr
    assert notes[0].startswith('Not verified: Glance fetched %s/ubuntu.iso '
                               'itself' % web), notes
    assert '--checksum-url' in notes[0]
    assert 'the client computed :' not in result.stderr
    _delete(iso['id'])


@pytest.mark.parametrize('source', ['--url', '--file'])
def test_checksum_url(admin_conn, web, isodir, source):
    # a SHA256SUMS list as distributions publish it: Glance's import (which
    # hashes with sha512) and a file upload are both checked against it
    sums = web + '/' + _sums(isodir, 'SHA256SUMS')
    name = _name('sums' + source)
    # --import: Glance fetches the URL itself (not streamed by the client)
    where, extra = ((web + '/ubuntu.iso', ['--import']) if source == '--url'
                    else (str(isodir / 'ubuntu.iso'), []))
    result = osc('iso', 'create', name, source, where, '--checksum-url',
                 sums, '--no-progress', '-f', 'json', *extra)
    assert 'Expected sha256 of ubuntu.iso from %s' % sums in result.stderr
    assert 'Verified: sha256 matches the given checksum' in result.stderr
    _delete(json.loads(result.stdout)['id'])
    # a list whose line for the file is wrong: refused, nothing left
    (isodir / 'BAD256SUMS').write_text('%s  ubuntu.iso\n' % ('0' * 64))
    result = osc('iso', 'create', name, source, where, '--checksum-url',
                 web + '/BAD256SUMS', '--no-progress', *extra, check=False)
    assert result.returncode == 1
    assert 'Checksum mismatch for' in result.stderr
    assert 'Traceback' not in result.stderr
    assert _own_images(admin_conn, name) == []
