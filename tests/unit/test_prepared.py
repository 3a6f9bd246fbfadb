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

"""isoplugin.prepared: the prepared ISO's cache, download and upload.

Glance is isoplugin.glance's functions autospecced over a dict of images;
the ISO is a Debian-like image made by tests/tools/make_distro_iso.py and
the copy is really written by xorriso, then read back from what was
"uploaded".
"""

import hashlib
import io
import json
import os
import shutil
import threading
import time
from unittest import mock

from openstack.image.v2 import image as _image
import pytest

from isoplugin import exception
from isoplugin import glance
from isoplugin import isoinfo
from isoplugin import prepared
from isoplugin import profiles
from tests.tools import make_distro_iso

SECRET = '$6$unit$SECRETHASHVALUE'


@pytest.fixture(scope='module')
def debian_iso(tmp_path_factory):
    assert shutil.which('xorriso'), 'xorriso is needed (apt-get install)'
    d = tmp_path_factory.mktemp('src')
    return make_distro_iso.make('debian', str(d / 'debian.iso'))


@pytest.fixture(autouse=True)
def hash_dir(tmp_path, monkeypatch):
    """Local files' hashes are remembered in the test's directory."""
    d = tmp_path / 'source-hashes'
    monkeypatch.setattr(prepared, 'HASH_DIR', str(d))
    return d


@pytest.fixture
def tmpdir_only(tmp_path, monkeypatch):
    """Temporary files go to a directory the test checks is left empty."""
    d = tmp_path / 'tmp'
    d.mkdir()
    monkeypatch.setattr('tempfile.tempdir', str(d))
    return d


class FakeGlance(object):
    def __init__(self, source_path, usage=None):
        with open(source_path, 'rb') as f:
            self.source_data = f.read()
        self.source = _image.Image.existing(
            id='iso-1', name='debian-12', disk_format='iso', size=len(
                self.source_data), status='active', os_hash_algo='sha512',
            os_hash_value=hashlib.sha512(self.source_data).hexdigest(),
            properties={'hw_rescue_bus': 'usb'})
        self.cached = []
        self.uploaded = None
        self.corrupt_upload = False
        self.bodies = []
        self.deleted = []
        self._usage = usage or {}
        self.images = mock.create_autospec(glance.images,
                                           side_effect=self._images)
        self.download_data = mock.create_autospec(
            glance.download_data, side_effect=self._download)
        self.create_image = mock.create_autospec(
            glance.create_image, side_effect=self._create)
        self.upload_data = mock.create_autospec(
            glance.upload_data, side_effect=self._upload)
        self.get_image = mock.create_autospec(glance.get_image,
                                              side_effect=self._get)
        self.patch_image = mock.create_autospec(glance.patch_image,
                                                side_effect=self._patch)
        self.delete_image = mock.create_autospec(
            glance.delete_image,
            side_effect=lambda conn, i, **kw: self.deleted.append(i))
        self.usage = mock.create_autospec(glance.usage,
                                          return_value=self._usage)

    def _images(self, conn, **filters):
        wanted = {k: v for k, v in filters.items()
                  if k.startswith('isoplugin_') and k != 'isoplugin_role'}
        return iter([i for i in self.cached
                     if all(glance.flat(i).get(k) == v
                            for k, v in wanted.items())])

    def _download(self, conn, image, chunk_size=1024 * 1024):
        data = io.BytesIO(self.source_data)
        return iter(lambda: data.read(chunk_size), b'')

    def _create(self, conn, forbidden=None, **body):
        self.bodies.append(body)
        return _image.Image.existing(id='prep-1', status='queued', **body)

    def _upload(self, conn, image_id, data, store=None):
        self.uploaded = b''.join(data)

    def _get(self, conn, image_id, what=None):
        data = self.uploaded + (b'x' if self.corrupt_upload else b'')
        return _image.Image.existing(
            id=image_id, status='active', os_hash_algo='sha512',
            os_hash_value=hashlib.sha512(data).hexdigest())

    def _patch(self, conn, image_id, set=None, remove=(), current=None,
               forbidden=None):
        return _image.Image.existing(id=image_id, status='active',
                                     properties=dict(set or {}))


@pytest.fixture
def cloud(debian_iso):
    fake = FakeGlance(debian_iso)
    names = ('images', 'download_data', 'create_image', 'upload_data',
             'get_image', 'patch_image', 'delete_image', 'usage')
    with mock.patch.multiple(glance, **{n: getattr(fake, n)
                                        for n in names}):
        yield fake


def _read(data, path):
    with isoinfo.open_files(io.BytesIO(data), name='copy') as files:
        return files.read(path)


def test_prepares_streams_and_caches(cloud, conf, tmpdir_only):
    events = []
    result = prepared.prepare_iso(
        mock.sentinel.conn, conf, cloud.source, profile='debian',
        values={'password_hash': SECRET}, progress=events.append)

    assert not result.reused and result.profile == 'debian'
    assert result.image.id == 'prep-1'
    # the source was downloaded once, and the copy made from it
    cloud.download_data.assert_called_once()
    body, = cloud.bodies
    assert body['visibility'] == 'private' and body['os_hidden'] is True
    assert body['disk_format'] == 'iso'
    assert body['hw_rescue_device'] == 'cdrom'
    assert body['hw_rescue_bus'] == 'usb'  # kept from the source ISO
    assert body['isoplugin_role'] == 'prepared-iso'
    assert body['isoplugin_prepared_from'] == 'iso-1'
    assert body['isoplugin_profile'] == 'debian'
    assert body['isoplugin_cache_key'] == result.cache_key
    assert body['isoplugin_source_hash'] == 'sha512:' + \
        cloud.source.hash_value
    # the secret is in no property, no event, not in the cache key input
    assert SECRET not in json.dumps(body)
    assert SECRET not in repr(events)
    assert SECRET not in json.dumps(cloud.patch_image.call_args.kwargs)
    # the uploaded copy is an ISO whose d-i menu is rewritten
    menu = _read(cloud.uploaded, '/isolinux/txt.cfg').decode()
    assert 'auto=true' in menu and 'priority=critical' in menu
    # no temporary file is left
    assert os.listdir(tmpdir_only) == []
    assert [e['event'] for e in events] == ['downloading', 'prepared']

    # the same inputs again: the cached copy, nothing downloaded
    cloud.cached = [_image.Image.existing(
        id='prep-1', status='active',
        properties={'isoplugin_cache_key': result.cache_key,
                    'isoplugin_output_properties': json.dumps(
                        {'os_distro': 'debian'})})]
    again = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                 profile='debian',
                                 values={'password_hash': SECRET})
    assert again.reused and again.image.id == 'prep-1'
    assert again.cache_key == result.cache_key
    assert again.properties == {'os_distro': 'debian'}
    cloud.download_data.assert_called_once()
    assert len(cloud.bodies) == 1

    # other variables: another key
    other = prepared.cache_key(('sha512', cloud.source.hash_value),
                               profiles.get_profile('debian'), 'x', [], '')
    assert other != result.cache_key


def test_cache_key_ignores_a_generated_password():
    """A random Administrator password does not make another copy."""
    keys, texts = set(), set()
    for _ in range(2):
        prof = profiles.get_profile('windows')
        text = prepared._answer_text(prof, {}, None)
        texts.add(text)
        keys.add(prepared.cache_key(('sha256', 'ab'), prof, text, [], ''))
    assert len(texts) == 2
    assert len(keys) == 1
    # the user's own value is part of the key
    prof = profiles.get_profile('windows')
    text = prepared._answer_text(prof, {'admin_password': 'S3cret!'}, None)
    assert prepared.cache_key(('sha256', 'ab'), prof, text, [], '') not in keys


def test_detects_the_profile(cloud, conf, tmpdir_only):
    events = []
    result = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                  progress=events.append)
    assert result.profile == 'debian' and result.detected
    assert cloud.bodies[0]['isoplugin_detected'] == 'true'
    assert [e['event'] for e in events] == ['downloading', 'detected',
                                            'prepared']
    assert os.listdir(tmpdir_only) == []


def test_earlier_detection_finds_the_cache_without_download(cloud, conf):
    first = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source)
    cloud.cached = [_image.Image.existing(id='prep-1', status='active',
                                          properties=cloud.bodies[0])]
    events = []

    again = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                 progress=events.append)

    assert again.reused and again.cache_key == first.cache_key
    cloud.download_data.assert_called_once()  # by the first call only
    assert [e['event'] for e in events] == ['detected', 'reused']
    assert 'detected profile debian' in events[0]['message']


def test_registration_found_no_profile_costs_no_request(cloud, conf):
    cloud.source.properties['isoplugin_profile'] = prepared.NO_PROFILE

    with pytest.raises(exception.ProfileNotDetected) as e:
        prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source)

    assert 'the detection at registration (isoplugin_profile=none)' in \
        str(e.value)
    assert 'debian' in str(e.value)  # the profiles one could give
    # neither the cache nor the quota is asked, nothing is downloaded
    for fake in (cloud.images, cloud.usage, cloud.download_data,
                 cloud.create_image):
        fake.assert_not_called()


def test_profile_detected_at_registration_is_used(cloud, conf,
                                                  tmpdir_only):
    cloud.source.properties['isoplugin_profile'] = 'debian'
    events = []

    result = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                  progress=events.append)

    assert result.profile == 'debian'
    assert [e['event'] for e in events] == ['detected', 'downloading',
                                            'prepared']
    assert events[0]['message'] == ('detected profile debian (detected at '
                                    'registration)')
    # a detected profile, as far as the copy's properties say
    assert cloud.bodies[0]['isoplugin_detected'] == 'true'
    # the earlier-copy lookup was not needed: one query, on the cache key
    queried = [c.kwargs for c in cloud.images.call_args_list]
    assert [sorted(q) for q in queried] == [sorted(
        ['os_hidden', 'status', 'isoplugin_role', 'isoplugin_cache_key'])]


def test_an_explicit_profile_wins_over_registration(cloud, conf,
                                                    tmpdir_only):
    cloud.source.properties['isoplugin_profile'] = prepared.NO_PROFILE

    result = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                  profile='debian')

    assert result.profile == 'debian' and not result.reused


def test_upload_mismatch_deletes_the_copy(cloud, conf, tmpdir_only):
    cloud.corrupt_upload = True
    with pytest.raises(exception.ChecksumMismatch):
        prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                             profile='debian')
    assert cloud.deleted == ['prep-1']
    assert os.listdir(tmpdir_only) == []


def test_download_mismatch_creates_nothing(cloud, conf, tmpdir_only):
    cloud.source_data += b'corrupted'
    with pytest.raises(exception.ChecksumMismatch):
        prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                             profile='debian')
    cloud.create_image.assert_not_called()
    assert os.listdir(tmpdir_only) == []


def test_interrupted_upload_deletes_the_copy(cloud, conf, tmpdir_only):
    cloud.upload_data.side_effect = KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                             profile='debian')
    assert cloud.deleted == ['prep-1']
    assert os.listdir(tmpdir_only) == []


@pytest.mark.parametrize('kwargs,error,message', [
    ({'profile': 'slackware'}, exception.ProfileNotFound,
     "No install profile named 'slackware'"),
    ({'profile': 'debian', 'values': {'nosuch': '1'}},
     exception.TemplateVariableError, 'unknown variable(s) nosuch'),
    ({'profile': 'debian', 'answer': 'd-i only-two\n'},
     exception.AnswerFileInvalid, 'line 1 (d-i only-two)'),
    ({'profile': 'debian', 'add_files': ['/nonexistent/drivers']},
     exception.InvalidInput, '--add-files: /nonexistent/drivers is not '
     'found'),
])
def test_bad_input_touches_nothing(cloud, conf, tmpdir_only, kwargs, error,
                                   message):
    with pytest.raises(error) as e:
        prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                             **kwargs)
    assert message in str(e.value)
    cloud.download_data.assert_not_called()
    cloud.create_image.assert_not_called()


def test_over_quota_creates_nothing(cloud, conf, tmpdir_only):
    cloud.usage.return_value = {
        'image_size_total': {'usage': 1000, 'limit': 1000}}
    with pytest.raises(exception.QuotaExceeded) as e:
        prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                             profile='debian')
    needed = 1000 + -(-cloud.source.size // (1024 * 1024))
    assert ("The prepared copy of this ISO would exceed the project's "
            "image quota: image_size_total would be %d MiB" % needed) in \
        str(e.value)
    cloud.download_data.assert_not_called()
    cloud.create_image.assert_not_called()


def test_add_files_are_merged(cloud, conf, tmpdir_only, tmp_path):
    drivers = tmp_path / 'virtio-win'
    (drivers / 'amd64').mkdir(parents=True)
    (drivers / 'amd64' / 'viostor.inf').write_text('[Version]\n')
    first = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                 profile='debian',
                                 add_files=['%s:/$WinPEDriver$' % drivers])
    assert _read(cloud.uploaded,
                 '/$WinPEDriver$/amd64/viostor.inf') == b'[Version]\n'
    # the files are part of the cache key
    (drivers / 'amd64' / 'viostor.inf').write_text('[Version] 2\n')
    cloud.cached = [_image.Image.existing(
        id='prep-1', status='active',
        properties={'isoplugin_cache_key': first.cache_key})]
    second = prepared.prepare_iso(mock.sentinel.conn, conf, cloud.source,
                                  profile='debian',
                                  add_files=['%s:/$WinPEDriver$' % drivers])
    assert not second.reused and second.cache_key != first.cache_key


def test_expiry(conf):
    conf.set_override('prepared_iso_max_age', 24, group='isoplugin')
    old = _image.Image.existing(id='a', status='active', properties={
        'isoplugin_prepared_at': '2000-01-01T00:00:00Z'})
    new = _image.Image.existing(id='b', status='active', properties={
        'isoplugin_prepared_at': prepared._now()})
    assert prepared.expired(conf, old) and not prepared.expired(conf, new)
    conf.set_override('prepared_iso_max_age', 0, group='isoplugin')
    assert not prepared.expired(conf, old)


# A local file: hashed while it is prepared ------------------------------

def _sha256_of(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def local_iso(debian_iso, tmp_path):
    path = tmp_path / 'local.iso'
    shutil.copyfile(debian_iso, str(path))
    return str(path)


def test_local_file_is_keyed_once_hashed(cloud, conf, tmpdir_only,
                                         local_iso, monkeypatch):
    from isoplugin import remaster

    sha256 = remaster._sha256

    def after_the_creation(path):
        # the file's hash is done once the copy is being made (a small
        # file is hashed at once otherwise, before the copy is created)
        deadline = time.time() + 30
        while (os.fspath(path) == os.fspath(local_iso) and
               not cloud.bodies and time.time() < deadline):
            time.sleep(0.01)
        return sha256(path)
    monkeypatch.setattr(remaster, '_sha256', after_the_creation)
    result = prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                                  profile='debian')
    assert not result.reused
    cloud.download_data.assert_not_called()
    # created before its hash was known: no key, no lookup can find it
    body, = cloud.bodies
    assert body['name'] == 'isoplugin-prepared-local.iso-pending'
    assert 'isoplugin_cache_key' not in body
    assert 'isoplugin_source_hash' not in body
    # keyed by the file's content once the copy is made
    source = ('sha256', _sha256_of(local_iso))
    key = prepared.cache_key(source, profiles.get_profile('debian'),
                             profiles.get_profile('debian').render(None),
                             [], '')
    assert result.cache_key == key
    patched = cloud.patch_image.call_args.kwargs['set']
    assert patched['isoplugin_cache_key'] == key
    assert patched['isoplugin_source_hash'] == 'sha256:' + source[1]
    assert patched['name'] == 'isoplugin-prepared-local.iso-' + key[:12]
    assert cloud.deleted == []
    assert os.listdir(tmpdir_only) == []


def test_local_file_of_a_known_name_waits_for_its_hash(cloud, conf,
                                                       local_iso):
    first = prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                                 profile='debian')
    cloud.cached = [_image.Image.existing(
        id='prep-1', status='active', properties={
            'isoplugin_prepared_from': 'file:local.iso',
            'isoplugin_cache_key': first.cache_key})]
    again = prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                                 profile='debian')
    assert again.reused and again.image.id == 'prep-1'
    assert len(cloud.bodies) == 1  # nothing made the second time


def test_local_file_found_cached_meanwhile(cloud, conf, tmpdir_only,
                                           monkeypatch, local_iso):
    # the same content was prepared from a file of another name: the copy
    # being made is thrown away once the hash names the cached one
    from isoplugin import remaster

    created = threading.Event()
    create, sha256 = cloud.create_image.side_effect, remaster._sha256

    def create_image(*args, **kwargs):
        created.set()
        return create(*args, **kwargs)

    def slow_sha256(path):
        if path == local_iso:  # known once the upload has begun
            created.wait(30)
        return sha256(path)

    cloud.create_image.side_effect = create_image
    monkeypatch.setattr(remaster, '_sha256', slow_sha256)
    source = ('sha256', _sha256_of(local_iso))
    prof = profiles.get_profile('debian')
    key = prepared.cache_key(source, prof, prof.render(None), [], '')
    cloud.cached = [_image.Image.existing(
        id='cached-1', status='active', properties={
            'isoplugin_prepared_from': 'file:other-name.iso',
            'isoplugin_cache_key': key})]
    result = prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                                  profile='debian')
    assert result.reused and result.image.id == 'cached-1'
    assert result.cache_key == key
    assert cloud.deleted == ['prep-1']
    assert os.listdir(tmpdir_only) == []


def test_local_file_changed_while_prepared_is_refused(cloud, conf,
                                                      tmpdir_only, local_iso):
    upload = cloud.upload_data.side_effect

    def upload_and_change(conn, image_id, data, store=None):
        upload(conn, image_id, data, store)
        before = os.stat(local_iso)
        with open(local_iso, 'r+b') as f:
            f.seek(40000)
            f.write(b'changed')
        # same size, modification time set back: the change time tells
        os.utime(local_iso, ns=(before.st_atime_ns, before.st_mtime_ns))

    cloud.upload_data.side_effect = upload_and_change
    with pytest.raises(exception.SourceUnreadable) as e:
        prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                             profile='debian')
    assert 'changed while it was being prepared' in str(e.value)
    assert cloud.deleted == ['prep-1']
    cloud.patch_image.assert_not_called()


def test_local_hash_is_remembered_until_the_file_changes(tmp_path,
                                                         monkeypatch,
                                                         local_iso):
    memo = tmp_path / 'hashes'
    # every file counts as written long ago
    monkeypatch.setattr(prepared, 'RACY_SECONDS', -3600)
    first = prepared.LocalHash(local_iso, directory=str(memo)).result()
    assert first == ('sha256', _sha256_of(local_iso))
    assert len(os.listdir(memo)) == 1

    again = prepared.LocalHash(local_iso, directory=str(memo))
    assert again.done()  # known at once: the file is not read
    assert again.result() == first

    # the same size and modification time, other bytes: hashed again
    before = os.stat(local_iso)
    with open(local_iso, 'r+b') as f:
        f.seek(40000)
        f.write(b'changed')
    os.utime(local_iso, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = prepared.LocalHash(local_iso, directory=str(memo))
    assert changed.result() == ('sha256', _sha256_of(local_iso))
    assert changed.result() != first
    # and what was hashed before the change is refused
    with pytest.raises(exception.SourceUnreadable):
        again.result()


def test_a_file_just_written_is_not_remembered(tmp_path, local_iso):
    memo = tmp_path / 'hashes'
    prepared.LocalHash(local_iso, directory=str(memo)).result()
    assert not memo.exists()


def test_remembered_file_changed_while_copied_is_refused(
        cloud, conf, tmpdir_only, monkeypatch, local_iso):
    # the hash is known before the copy (remembered): the file is still
    # checked once the copy is made
    monkeypatch.setattr(prepared, 'RACY_SECONDS', -3600)
    prepared.LocalHash(local_iso).result()
    upload = cloud.upload_data.side_effect

    def upload_and_change(conn, image_id, data, store=None):
        upload(conn, image_id, data, store)
        with open(local_iso, 'r+b') as f:
            f.seek(40000)
            f.write(b'changed')

    cloud.upload_data.side_effect = upload_and_change
    with pytest.raises(exception.SourceUnreadable):
        prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                             profile='debian')
    # created with its key: the hash was known at once
    assert 'isoplugin_cache_key' in cloud.bodies[0]
    assert cloud.deleted == ['prep-1']
    cloud.patch_image.assert_not_called()


def test_remembered_file_finds_its_copy_with_one_query(cloud, conf,
                                                       monkeypatch,
                                                       local_iso):
    monkeypatch.setattr(prepared, 'RACY_SECONDS', -3600)
    first = prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                                 profile='debian')
    cloud.cached = [_image.Image.existing(
        id='prep-1', status='active', properties={
            'isoplugin_cache_key': first.cache_key})]
    cloud.images.reset_mock()
    cloud.usage.reset_mock()
    again = prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                                 profile='debian')
    assert again.reused and again.image.id == 'prep-1'
    # the cache-key query only: no quota, no look for an earlier copy
    assert [c.kwargs['isoplugin_cache_key'] for c in
            cloud.images.call_args_list] == [first.cache_key]
    cloud.usage.assert_not_called()


def test_local_file_over_quota_is_not_read(cloud, conf, monkeypatch,
                                           local_iso):
    from isoplugin import remaster

    read = mock.Mock(side_effect=remaster._sha256)
    monkeypatch.setattr(remaster, '_sha256', read)
    cloud.usage.return_value = {
        'image_size_total': {'usage': 1000, 'limit': 1000}}
    with pytest.raises(exception.QuotaExceeded):
        prepared.prepare_iso(mock.sentinel.conn, conf, local_iso,
                             profile='debian')
    read.assert_not_called()
    cloud.create_image.assert_not_called()
