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

"""isoplugin.upload: checksums and the hashing upload body."""

import hashlib
import io

import pytest
import requests

from isoplugin import exception
from isoplugin import upload


@pytest.mark.parametrize('text,expected', [
    ('sha256:' + 'A' * 64, ('sha256', 'a' * 64)),
    ('MD5:' + 'f' * 32, ('md5', 'f' * 32)),
    ('sha512:' + '0' * 128, ('sha512', '0' * 128)),
    ('sha1:' + '1' * 40, ('sha1', '1' * 40)),
])
def test_parse_checksum(text, expected):
    assert upload.parse_checksum(text) == expected


@pytest.mark.parametrize('text,message', [
    ('abc', 'must be ALGORITHM:HEX'),
    ('crc32:00', 'must be ALGORITHM:HEX'),
    ('sha256:xyz', 'a sha256 digest is 64 hexadecimal digits'),
    ('md5:' + 'g' * 32, 'a md5 digest is 32 hexadecimal digits'),
])
def test_parse_checksum_malformed(text, message):
    with pytest.raises(exception.InvalidInput) as e:
        upload.parse_checksum(text)
    assert message in str(e.value)


def test_hashing_body_streams_hashes_and_reports_progress():
    data = bytes(range(256)) * 10000
    seen = []
    body = upload.HashingBody(io.BytesIO(data).read, len(data),
                              ['sha512', 'sha256'], chunk_size=65536,
                              progress=lambda d, t: seen.append((d, t)))
    assert len(body) == len(data)
    chunks = list(body)
    assert b''.join(chunks) == data
    assert max(len(c) for c in chunks) == 65536
    assert body.hexdigests() == {
        'sha512': hashlib.sha512(data).hexdigest(),
        'sha256': hashlib.sha256(data).hexdigest()}
    assert seen[-1] == (len(data), len(data))


def test_hashing_body_sent_with_content_length():
    data = b'x' * 1000
    body = upload.HashingBody(io.BytesIO(data).read, len(data), ['md5'])
    prepared = requests.Request('PUT', 'http://glance.example/v2/x',
                                data=body).prepare()
    assert prepared.headers['Content-Length'] == '1000'
    assert 'Transfer-Encoding' not in prepared.headers


def test_hashing_body_sent_chunked_as_an_iterator():
    data = b'x' * 1000
    body = upload.HashingBody(io.BytesIO(data).read, len(data), ['md5'],
                              chunk_size=300)
    prepared = requests.Request('PUT', 'http://glance.example/v2/x',
                                data=iter(body)).prepare()
    assert prepared.headers['Transfer-Encoding'] == 'chunked'
    assert 'Content-Length' not in prepared.headers
    assert b''.join(prepared.body) == data
    assert body.size == 1000
    assert body.hexdigests() == {'md5': hashlib.md5(data).hexdigest()}


def test_hashing_body_incomplete():
    data = b'x' * 1000
    body = upload.HashingBody(io.BytesIO(data).read, 2000, ['md5'],
                              chunk_size=100)
    it = iter(body)
    next(it)
    it.close()
    with pytest.raises(exception.CloudError) as e:
        body.hexdigests()
    assert 'stopped after 100 bytes' in str(e.value)


def test_hashing_body_source_changed_size():
    data = b'x' * 1000
    body = upload.HashingBody(io.BytesIO(data).read, 2000, ['md5'])
    list(body)
    with pytest.raises(exception.SourceUnreadable) as e:
        body.hexdigests()
    assert 'changed size' in str(e.value)


SUMS = '''-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

%s *ubuntu-24.04.1-live-server-amd64.iso
%s  ./sub/debian-12.iso
SHA512 (Fedora-40.iso) = %s
-----BEGIN PGP SIGNATURE-----
iQIzBAEBCAAdFiEE
''' % ('a' * 64, 'B' * 64, 'c' * 128)


@pytest.mark.parametrize('name,expected', [
    ('ubuntu-24.04.1-live-server-amd64.iso', ('sha256', 'a' * 64)),
    ('debian-12.iso', ('sha256', 'b' * 64)),
    ('Fedora-40.iso', ('sha512', 'c' * 128)),
])
def test_checksum_for_reads_distribution_lists(name, expected):
    assert upload.checksum_for(SUMS, name) == expected


def test_checksum_for_names_what_it_lists():
    with pytest.raises(exception.InvalidInput) as e:
        upload.checksum_for(SUMS, 'u.iso', source='https://m/SHA256SUMS')
    assert str(e.value) == (
        "Invalid input: https://m/SHA256SUMS has no checksum for 'u.iso' "
        "(it lists ubuntu-24.04.1-live-server-amd64.iso, "
        "./sub/debian-12.iso, Fedora-40.iso)")


def test_checksum_for_refuses_disagreeing_lines():
    text = '%s  u.iso\n%s  u.iso\n' % ('a' * 64, 'b' * 64)
    with pytest.raises(exception.InvalidInput) as e:
        upload.checksum_for(text, 'u.iso')
    assert 'different checksums' in str(e.value)
