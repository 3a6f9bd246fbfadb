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

"""isoplugin.registration, request by request."""

import hashlib
import os
from unittest import mock
import urllib.parse

import testtools

from isoplugin import exception
from isoplugin import glance
from isoplugin import registration
from tests.unit import test_catalog
from tests.unit import test_glance

IMAGE_ID = test_catalog.IMAGE_ID


def _consume(received):
    """A requests-mock body callback that reads the streamed body."""
    def callback(request, context):
        received.append(b''.join(request.body))
        context.status_code = 204
        return ''
    return callback


def _fail(received, status=500):
    """A requests-mock body callback: read the body, answer ``status``."""
    def callback(request, context):
        received.append(b''.join(request.body))
        context.status_code = status
        return 'The server has either erred or is incapable'
    return callback


class RegistrationTestCase(test_catalog.CatalogTestCase):

    def setUp(self):
        super().setUp()
        self.reg = registration.Registration(self.cat)
        self.reg.parallel_checks = False

    def checked_and_posted(self):
        """The name and quota checks, the POST, the look for a twin."""
        return self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued'))] + self.no_twin()

    def uploaded(self, data):
        """Checked, posted, the data PUT, the image read back."""
        return self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(
                     os_hash_value=hashlib.sha512(data).hexdigest()))]

    def no_twin(self, **image):
        """The look for an image of the same name: only this one."""
        return self.list_uris('ubuntu', hidden_images=[self.image(**image)])

    def create(self, name, progress=None, notify=None, **fields):
        return self.reg.register(
            registration.RegistrationRequest(name, **fields),
            progress=progress, notify=notify)


class TestRegisterFile(RegistrationTestCase):

    def test_create_from_file(self):
        # sent chunked by default ([glance] chunked_upload), as
        # glanceclient does
        path = self.make_iso(eltorito=True)
        self._create_from_file(path, {'Transfer-Encoding': 'chunked'})

    def test_create_from_file_with_content_length(self):
        self.conf.set_override('chunked_upload', False, group='glance')
        path = self.make_iso(eltorito=True)
        self._create_from_file(
            path, {'Content-Length': str(os.path.getsize(path))})

    def _create_from_file(self, path, headers):
        data = open(path, 'rb').read()
        digest = hashlib.sha512(data).hexdigest()
        notes = []
        progress = []
        received = []
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued'),
                 validate=dict(json={
                     'name': 'ubuntu', 'disk_format': 'iso',
                     'container_format': 'bare', 'visibility': 'private',
                     'protected': False, 'os_hidden': True, 'tags': [],
                     'isoplugin_media': 'installer-iso',
                     'isoplugin_featured': 'false',
                     'isoplugin_extractable': 'true',
                     'isoplugin_password_enabled': 'false',
                     'hw_cdrom_bus': 'sata', 'hw_rescue_device': 'cdrom',
                     'hw_rescue_bus': 'sata', 'os_type': 'linux',
                     'os_distro': 'ubuntu', 'os_version': '24.04',
                     'architecture': 'x86_64', 'isoplugin_profile': 'none',
                     'isoplugin_bootable': 'true',
                     'isoplugin_client': glance.client_id()})),
        ] + self.no_twin(status='queued') + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume(received),
                 validate=dict(headers=dict(
                     headers, **{'Content-Type': 'application/octet-stream'}
                 ))),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=digest)),
        ] + self.no_twin())

        image = self.create('ubuntu', filename=path, notify=notes.append,
                            progress=lambda d, t: progress.append(d))

        self.assertEqual(IMAGE_ID, image.id)
        self.assertEqual(len(data), progress[-1])
        self.assertIn('Detected: os_type=linux, os_distro=ubuntu, '
                      'os_version=24.04, architecture=x86_64', notes)
        self.assertIn('Verified: Glance sha512 matches the client', notes)
        self.assertIn('Install profile: none (no install profile recognises '
                      'this ISO; an unattended build from it needs '
                      '--profile)', notes)
        self.assertEqual([data], received)
        self.assert_calls()

    def test_install_profile_detected_and_stored(self):
        # an Ubuntu live-server layout: /casper and /.disk/info
        path = self.make_iso(files={'/casper/vmlinuz': b'k'},
                             disk_info='Ubuntu-Server 24.04.1 LTS')
        data = open(path, 'rb').read()
        notes = []
        posted = []

        def post(request, context):
            posted.append(request.json())
            return self.image(status='queued')

        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'), json=post),
        ] + self.no_twin() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(
                     os_hash_value=hashlib.sha512(data).hexdigest())),
        ] + self.no_twin())

        self.create('ubuntu', filename=path, notify=notes.append)

        self.assertEqual('ubuntu', posted[0]['isoplugin_profile'])
        self.assertTrue([n for n in notes
                         if n.startswith('Install profile: ubuntu (')],
                        notes)
        self.assert_calls()

    def test_hash_mismatch_deletes_the_image(self):
        path = self.make_iso()
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value='0' * 128)),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(exception.ChecksumMismatch,
                                         '.*The image was deleted'):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_expected_checksum_mismatch_deletes_the_image(self):
        path = self.make_iso()
        digest = hashlib.sha512(open(path, 'rb').read()).hexdigest()
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=digest)),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.ChecksumMismatch,
                'Checksum mismatch for .*: expected sha256 0+'):
            self.create('ubuntu', filename=path,
                        checksum='sha256:' + '0' * 64)
        self.assert_calls()

    def test_upload_refused_deletes_the_image(self):
        path = self.make_iso()
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 status_code=413,
                 json={'message': 'Project is over a limit'}),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.OverQuota,
                r"^Glance refused the upload: over quota "
                r"\(Project is over a limit\)"):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_store_full_deletes_the_image(self):
        path = self.make_iso()
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 status_code=413,
                 json={'message': 'Image storage media is full: There is '
                                  'not enough disk space'}),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.StoreFull,
                r"^Glance's image store is full: it refused the upload "
                r"\(Image storage media is full: .*\)\. Nothing of it was "
                r"kept\..*--store\.$"):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_upload_sent_again_when_glance_kept_nothing(self):
        # a 500 (Keystone away: Glance cannot check the quota), the image
        # still queued: the whole file is sent again, and verified
        path = self.make_iso()
        data = open(path, 'rb').read()
        digest = hashlib.sha512(data).hexdigest()
        sent = []
        self.conf.set_override('connect_retry_delay', 0.01, group='glance')
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_fail(sent)),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status='queued')),
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume(sent)),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=digest)),
        ] + self.no_twin())

        self.create('ubuntu', filename=path)

        self.assertEqual([data, data], sent)
        self.assert_calls()

    def test_upload_not_sent_again_when_glance_kept_some(self):
        path = self.make_iso()
        self.conf.set_override('connect_retry_delay', 0.01, group='glance')
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_fail([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status='saving')),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(exception.CloudError):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_parallel_checks_refuse_duplicate(self):
        path = self.make_iso()
        self.reg.parallel_checks = True
        self.register_uris(self.list_uris(
            'ubuntu', hidden_images=[self.image()]) + [self.usage_uri()])

        with testtools.ExpectedException(exception.DuplicateISO):
            self.create('ubuntu', filename=path)
        methods = [(r.method, urllib.parse.urlsplit(r.url).path)
                   for r in self.adapter.request_history]
        self.assertIn(('GET', '/v2/info/usage'), methods)
        self.assertNotIn(('POST', '/v2/images'), methods)

    def test_duplicate_name_refused_before_upload(self):
        path = self.make_iso()
        self.register_uris(self.list_uris(
            'ubuntu', hidden_images=[self.image()]))

        with testtools.ExpectedException(exception.DuplicateISO,
                                         ".*named 'ubuntu'"):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_duplicate_unfinished_upload_says_how_to_delete_it(self):
        path = self.make_iso()
        self.register_uris(self.list_uris(
            'ubuntu', hidden_images=[self.image(status='queued')]))

        with testtools.ExpectedException(
                exception.DuplicateISO,
                ".*named 'ubuntu'.* It is an upload that has not finished "
                r"\(queued\): 'openstack iso delete --incomplete' deletes "
                "it once its client is gone."):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_over_quota_refused_before_upload(self):
        path = self.make_iso()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(count=(100, 100))])

        with testtools.ExpectedException(
                exception.QuotaExceeded,
                '.*image_count_total would be 101, the limit is 100'):
            self.create('ubuntu', filename=path)
        self.assert_calls()

    def test_public_as_member_gets_a_clear_message(self):
        path = self.make_iso()
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'), status_code=403,
                 headers={'Content-Type': 'text/html'},
                 text='<h1>403 Forbidden</h1> You are not authorized to '
                      'complete publicize_image action.'),
        ])

        with testtools.ExpectedException(
                exception.PermissionDenied,
                '.*only an administrator can make an ISO public.*'
                'publicize_image'):
            self.create('ubuntu', filename=path, visibility='public')
        self.assert_calls()

    def test_bad_arguments_make_no_request(self):
        path = self.make_iso()
        for kwargs, message in [
                ({'visibility': 'secret'}, "unknown visibility 'secret'"),
                ({'os_type': 'beos'}, "unknown os_type 'beos'"),
                ({'architecture': 'z80'}, "unknown architecture 'z80'"),
                ({'checksum': 'sha1:12'}, 'a sha1 digest is 40'),
                ({'min_ram': -1}, 'min_ram must be'),
                ({'url': 'http://x/y.iso'}, 'either a file or a URL')]:
            with testtools.ExpectedException(exception.InvalidInput,
                                             '.*' + message):
                self.create('ubuntu', filename=path, **kwargs)
        with testtools.ExpectedException(exception.InvalidInput,
                                         '.*Glance allows 255'):
            self.create('x' * 256, filename=path)
        with testtools.ExpectedException(exception.InvalidInput,
                                         '.*only http:// and https://'):
            self.create('ubuntu', url='file:///etc/passwd')
        # nothing reached the cloud
        self.assertEqual([], self.adapter.request_history)


class TestRace(RegistrationTestCase):
    """Two registrations of one name at the same moment: one gives way."""

    EARLIER = 'a1b2c3d4-0000-4000-8000-000000000000'
    LATER = 'a1b2c3d4-0000-4000-8000-000000000002'

    def setUp(self):
        super().setUp()
        self.path = self.make_iso()
        self.data = open(self.path, 'rb').read()

    def mine(self, **kw):
        return self.image(created_at='2026-11-29T19:00:00Z', **kw)

    def twin(self, image_id, created_at='2026-11-29T19:00:00Z'):
        return self.image(id=image_id, created_at=created_at,
                          status='queued')

    def test_the_later_image_gives_way_before_uploading(self):
        self.register_uris(self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='POST', uri=self.url('images'),
                 json=self.mine(status='queued')),
        ] + self.list_uris('ubuntu', hidden_images=[
            self.twin(self.LATER, '2026-11-29T18:59:59Z'),
            self.mine(status='queued')]) + [
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.RegistrationRace,
                "Another client registered an ISO named 'ubuntu' "
                r"\(%s\) at the same moment; this registration gave way "
                "and deleted its own image" % self.LATER):
            self.create('ubuntu', filename=self.path)
        self.assert_calls()

    def test_same_second_the_smaller_id_stays(self):
        # created in the same second: the ID decides, the same way for both
        digest = hashlib.sha512(self.data).hexdigest()
        self.register_uris(self.checked_and_posted()[:-2] +
                           self.list_uris('ubuntu', hidden_images=[
                               self.mine(status='queued'),
                               self.twin(self.LATER)]) + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.mine(os_hash_value=digest)),
        ] + self.list_uris('ubuntu', hidden_images=[
            self.mine(), self.twin(self.LATER)]))

        image = self.create('ubuntu', filename=self.path)

        self.assertEqual(IMAGE_ID, image.id)
        self.assert_calls()

    def test_a_twin_created_after_the_first_look_is_seen_at_the_end(self):
        # The twin was POSTed after this image's first look, in the same
        # second, with a smaller ID: it stays (its own look saw this one
        # as later), so this one gives way at its last look, after the
        # upload, and deletes itself.
        digest = hashlib.sha512(self.data).hexdigest()
        self.register_uris(self.checked_and_posted()[:-2] +
                           self.list_uris('ubuntu', hidden_images=[
                               self.mine(status='queued')]) + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.mine(os_hash_value=digest)),
        ] + self.list_uris('ubuntu', hidden_images=[
            self.mine(), self.twin(self.EARLIER)]) + [
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(exception.RegistrationRace):
            self.create('ubuntu', filename=self.path)
        self.assert_calls()

    def test_the_last_look_waits_for_glance_time_to_move_on(self):
        digest = hashlib.sha512(self.data).hexdigest()
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume([])),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=digest)),
        ] + self.no_twin())
        clock = iter([100.0, 100.5])

        with mock.patch.object(registration.time, 'monotonic',
                               lambda: next(clock)), \
                mock.patch.object(registration.time, 'sleep') as sleep:
            self.create('ubuntu', filename=self.path)

        sleep.assert_called_once_with(registration.RACE_SETTLE - 0.5)
        self.assert_calls()


class TestGlanceGoesAway(RegistrationTestCase):
    """Glance restarted during the upload: clear error, nothing left."""

    def setUp(self):
        super().setUp()
        self.conf.set_override('connect_retries', 1, group='glance')
        self.conf.set_override('connect_retry_delay', 0.01, group='glance')
        self.path = self.make_iso()

    def glance_down(self):
        """The look at the image after the failed upload, and its retry.

        Both refused: the upload is not sent again.
        """
        return [dict(method='GET', uri=self.url('images', IMAGE_ID),
                     text=test_glance.raising(test_glance.refused))] * 2

    def test_cleanup_waits_for_glance_then_says_so(self):
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=test_glance.raising(test_glance.disconnected,
                                          drain=True)),
        ] + self.glance_down() + [
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 text=test_glance.raising(test_glance.refused))] * 4 + [
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.ConnectionLost,
                r'^Glance closed the connection during the upload of '
                r'%s, after 0 of 1 MiB \(before answering\)\. The '
                r'incomplete image %s was deleted; run the command '
                r'again\.$' % (self.path, IMAGE_ID)):
            self.create('ubuntu', filename=self.path)
        self.assert_calls()

    def test_cleanup_gives_up_and_says_what_to_do(self):
        self.conf.set_override('cleanup_timeout', 0, group='glance')
        self.register_uris(self.checked_and_posted() + [
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=test_glance.raising(test_glance.disconnected,
                                          drain=True)),
        ] + self.glance_down() + [
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 text=test_glance.raising(test_glance.refused))] * 2)

        with testtools.ExpectedException(
                exception.ConnectionLost,
                r".* The incomplete image %s could not be deleted \(Glance "
                r"did not answer \(connection refused\).*\); delete it "
                r"with 'openstack iso delete --incomplete'\.$" % IMAGE_ID):
            self.create('ubuntu', filename=self.path)
        self.assert_calls()


class TestChecksumList(RegistrationTestCase):

    def setUp(self):
        super().setUp()
        self.path = self.make_iso()
        self.data = open(self.path, 'rb').read()
        self.sums = self.path + '.SHA256SUMS'

    def write_sums(self, digest, name='u.iso'):
        with open(self.sums, 'w') as f:
            f.write('%s *%s\n%s  other.iso\n' % (digest, name, '0' * 64))

    def test_file_checked_against_its_line(self):
        notes = []
        self.write_sums(hashlib.sha256(self.data).hexdigest())
        self.register_uris(self.uploaded(self.data) + self.no_twin())

        self.create('ubuntu', filename=self.path, checksum_url=self.sums,
                    notify=notes.append)

        self.assertIn('Expected sha256 of u.iso from %s' % self.sums, notes)
        self.assertIn('Verified: sha256 matches the given checksum', notes)
        self.assert_calls()

    def test_mismatch_deletes_the_image(self):
        self.write_sums('1' * 64)
        self.register_uris(self.uploaded(self.data) + [
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.ChecksumMismatch, '.*expected sha256 1+, got'):
            self.create('ubuntu', filename=self.path, checksum_url=self.sums)
        self.assert_calls()

    def test_no_line_for_the_file_is_refused_before_any_request(self):
        self.write_sums('1' * 64, name='ubuntu-22.04.iso')

        with testtools.ExpectedException(
                exception.InvalidInput,
                r"Invalid input: %s has no checksum for 'u.iso' \(it "
                r"lists ubuntu-22.04.iso, other.iso\)" % self.sums):
            self.create('ubuntu', filename=self.path, checksum_url=self.sums)
        self.assertEqual([], self.adapter.request_history)

    def test_checksum_and_list_exclude_each_other(self):
        with testtools.ExpectedException(
                exception.InvalidInput, '.*a checksum or a checksum URL'):
            self.create('ubuntu', filename=self.path, checksum_url=self.sums,
                        checksum='md5:' + '0' * 32)


class TestRegisterURL(RegistrationTestCase):

    URL = 'https://mirror.example.com/u.iso'

    def setUp(self):
        super().setUp()
        self.data = open(self.make_iso(eltorito=True), 'rb').read()
        self.digest = hashlib.sha512(self.data).hexdigest()

    def head_uri(self):
        head = self.data[:registration.URL_HEAD_BYTES]
        return dict(method='GET', uri=self.URL, status_code=206,
                    content=head,
                    headers={'Content-Range': 'bytes 0-%d/%d' % (
                        len(head) - 1, len(self.data))},
                    request_headers={'Range': 'bytes=0-%d' % (
                        registration.URL_HEAD_BYTES - 1)})

    def test_web_download_then_protect(self):
        notes = []
        self.register_uris([self.head_uri()] + self.list_uris('ubuntu') + [
            self.usage_uri(),
            dict(method='GET', uri=self.url('info', 'import'),
                 json={'import-methods': {
                     'value': ['glance-direct', 'web-download']}}),
            dict(method='POST', uri=self.url('images'),
                 json=self.image(status='queued')),
        ] + self.no_twin() + [
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=202,
                 validate=dict(json={
                     'method': {'name': 'web-download', 'uri': self.URL},
                     'stores': ['fast']})),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status='importing',
                                 os_glance_importing_to_stores='fast')),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=self.digest)),
        ] + self.no_twin() + [
            dict(method='PATCH', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=self.digest, protected=True),
                 validate=dict(json=[{'op': 'replace',
                                      'path': '/protected',
                                      'value': True}])),
        ])

        image = self.create('ubuntu', url=self.URL, store='fast',
                            protected=True, notify=notes.append,
                            checksum='sha512:' + self.digest)

        self.assertTrue(image.is_protected)
        self.assertIn('Importing with Glance web-download', notes)
        self.assertIn('Verified: sha512 matches the given checksum', notes)
        # a URL is not looked into for its install profile
        posted = [r.json() for r in self.adapter.request_history
                  if r.method == 'POST' and r.path == '/v2/images']
        self.assertNotIn('isoplugin_profile', posted[0])
        self.assert_calls()

    def web_download(self):
        """The requests of a web-download import that works."""
        return [self.head_uri()] + self.checked_and_posted() + [
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=202),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=self.digest)),
        ]

    def test_web_download_without_checksum_says_it_is_unverified(self):
        notes = []
        self.register_uris(self.web_download() + self.no_twin())

        self.create('ubuntu', url=self.URL, use_import=True,
                    notify=notes.append)

        unverified = [n for n in notes if 'verified' in n.lower()]
        self.assertEqual([
            "Not verified: Glance fetched %s itself and no checksum was "
            "given to compare it with (Glance computed sha512 %s). To "
            "verify, give --checksum ALGO:HEX or --checksum-url with the "
            "distribution's SHA256SUMS" % (self.URL, self.digest)],
            unverified)
        self.assert_calls()

    def test_web_download_checked_against_a_checksum_list(self):
        # a sha256 list, Glance hashes with sha512: the client reads the
        # stored data back to hash it
        notes = []
        sums = 'https://mirror.example.com/SHA256SUMS'
        self.register_uris(
            [self.head_uri(),
             dict(method='GET', uri=sums, text='%s  u.iso\n' % (
                 hashlib.sha256(self.data).hexdigest()))] +
            self.web_download()[1:] + [
                # openstacksdk reads the image before its data
                dict(method='GET', uri=self.url('images', IMAGE_ID),
                     json=self.image(os_hash_value=self.digest)),
                dict(method='GET', uri=self.url('images', IMAGE_ID, 'file'),
                     content=self.data,
                     headers={'Content-Type': 'application/octet-stream'}),
            ] + self.no_twin())

        self.create('ubuntu', url=self.URL, use_import=True,
                    checksum_url=sums, notify=notes.append)

        self.assertIn('Reading the image back from Glance to compute its '
                      'sha256', notes)
        self.assertIn('Verified: sha256 matches the given checksum', notes)
        self.assert_calls()

    def test_web_download_failure_deletes_the_image(self):
        self.register_uris([self.head_uri()] + self.checked_and_posted() + [
            dict(method='POST', uri=self.url('images', IMAGE_ID, 'import'),
                 status_code=202),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(status='queued')),
            dict(method='GET', uri=self.url('images', IMAGE_ID, 'tasks'),
                 json={'tasks': [{'id': 't', 'image_id': IMAGE_ID,
                                  'status': 'failure',
                                  'message': 'URL unreachable'}]}),
            dict(method='GET', uri=self.url('images', IMAGE_ID, 'tasks'),
                 json={'tasks': [{'id': 't', 'image_id': IMAGE_ID,
                                  'status': 'failure',
                                  'message': 'URL unreachable'}]}),
            dict(method='DELETE', uri=self.url('images', IMAGE_ID),
                 status_code=204),
        ])

        with testtools.ExpectedException(
                exception.ImportFailed,
                'Glance could not import .*: URL unreachable'):
            self.create('ubuntu', url=self.URL, use_import=True)
        self.assert_calls()

    def test_streamed_through_the_client(self):
        notes = []
        received = []
        self.register_uris([self.head_uri()] + self.checked_and_posted() + [
            dict(method='GET', uri=self.URL, content=self.data),
            dict(method='PUT', uri=self.url('images', IMAGE_ID, 'file'),
                 text=_consume(received),
                 validate=dict(headers={
                     'Content-Type': 'application/octet-stream',
                     'Transfer-Encoding': 'chunked'})),
            dict(method='GET', uri=self.url('images', IMAGE_ID),
                 json=self.image(os_hash_value=self.digest)),
        ] + self.no_twin())

        image = self.create('ubuntu', url=self.URL, use_import=False,
                            notify=notes.append)

        self.assertEqual(IMAGE_ID, image.id)
        self.assertEqual([self.data], received)
        self.assertIn('Streaming the URL through the client', notes)
        self.assertIn('Verified: Glance sha512 matches the client', notes)
        self.assert_calls()


class TestCatalogCreate(test_catalog.CatalogTestCase):

    def test_create_is_a_shortcut_for_a_registration(self):
        notify = object()
        with mock.patch.object(registration.Registration, 'register',
                               autospec=True) as register:
            result = self.cat.create('ubuntu', filename='/x.iso',
                                     notify=notify, protected=True)

        reg, request = register.call_args.args
        self.assertIs(register.return_value, result)
        self.assertIs(self.cat, reg.catalog)
        self.assertEqual(registration.RegistrationRequest(
            'ubuntu', filename='/x.iso', protected=True), request)
        self.assertEqual({'progress': None, 'notify': notify},
                         register.call_args.kwargs)
