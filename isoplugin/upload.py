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

"""Streaming upload bodies that hash what they send, in the same pass.

:class:`HashingBody` is given to requests as the body of ``PUT
/v2/images/{id}/file``. It is an iterator of chunks (``[glance]
upload_chunk_size``, 64 KiB), which http.client writes to the socket as
they come; given as ``iter(body)`` requests sends them with
``Transfer-Encoding: chunked`` (as glanceclient does, and Glance reads that
faster), given as the body itself it has a length and requests sends a
``Content-Length`` instead. Every chunk is also handed to a hashing thread
through a small bounded queue: hashlib releases the GIL for big buffers, so
hashing overlaps the network I/O on another core, and memory stays at a few
chunks whatever the size of the file. :meth:`HashingBody.hexdigests`
refuses a body that was not sent completely or whose source changed size,
so a chunked upload (whose size Glance cannot check) is checked by the
client.
"""

import hashlib
import queue
import threading

from isoplugin import exception
from isoplugin.i18n import _

#: Chunks waiting for the hashing thread, at most. Hashing (~600 MB/s for
#: sha512) is much faster than Glance takes data in, so the queue is
#: nearly always empty; one slot bounds memory to about three chunks (the
#: one read, the one hashed, the one on the socket; a chunk sent and
#: hashed is the same bytes object).
QUEUE_DEPTH = 1

#: Algorithms a checksum may be given in, with their hex digest lengths.
CHECKSUM_ALGORITHMS = {'md5': 32, 'sha1': 40, 'sha256': 64, 'sha384': 96,
                       'sha512': 128}


def parse_checksum(text):
    """Parse an expected checksum given as ``ALGO:HEX``.

    :param text: e.g. ``"sha256:9f86d0..."``.
    :returns: ``(algorithm, lower-case hex digest)``.
    :raises isoplugin.exception.InvalidInput: the text is malformed or the
        algorithm is not one of md5, sha1, sha256, sha384, sha512.
    """
    algo, sep, digest = (text or '').partition(':')
    algo = algo.strip().lower()
    digest = digest.strip().lower()
    if not sep or algo not in CHECKSUM_ALGORITHMS:
        raise exception.InvalidInput(
            reason=_("checksum '%(text)s' must be ALGORITHM:HEX with "
                     "ALGORITHM one of %(algos)s") % {
                'text': text,
                'algos': ', '.join(CHECKSUM_ALGORITHMS)})
    if (len(digest) != CHECKSUM_ALGORITHMS[algo] or
            any(c not in '0123456789abcdef' for c in digest)):
        raise exception.InvalidInput(
            reason=_("checksum '%(text)s': a %(algo)s digest is "
                     "%(n)d hexadecimal digits") % {
                'text': text, 'algo': algo,
                'n': CHECKSUM_ALGORITHMS[algo]})
    return algo, digest


#: Algorithms by the length of their hex digest, for checksum lists.
_BY_LENGTH = {n: a for a, n in CHECKSUM_ALGORITHMS.items()}


def checksum_for(text, filename, source=None):
    """Find a file's checksum in a checksum list.

    Reads the lists distributions publish: GNU ``sha256sum`` lines
    (``HEX  name``, ``HEX *name`` in binary mode) and BSD-style tagged
    lines (``SHA256 (name) = HEX``), in a file that may be PGP
    clear-signed (other lines are ignored). The algorithm is the tag's,
    or told by the digest's length.

    :param text: the list's text.
    :param filename: the file name to look for (a ``./`` or directory
        prefix of a line is ignored).
    :param source: where the list came from, for the messages.
    :returns: ``(algorithm, lower-case hex digest)``.
    :raises isoplugin.exception.InvalidInput: no line for ``filename``, or
        lines that disagree.
    """
    import re

    gnu = re.compile(r'^\\?([0-9a-fA-F]{32,128}) [ *]([^\r\n]+)$')
    bsd = re.compile(r'^([A-Za-z0-9-]+) ?\((.+)\) ?= ?([0-9a-fA-F]{32,128})$')
    found = set()
    names = []
    for line in text.splitlines():
        line = line.strip()
        m = gnu.match(line)
        if m:
            digest, name, algo = m.group(1), m.group(2), None
        else:
            m = bsd.match(line)
            if not m:
                continue
            algo, name, digest = (m.group(1).lower().replace('-', ''),
                                  m.group(2), m.group(3))
        digest = digest.lower()
        algo = algo or _BY_LENGTH.get(len(digest))
        if CHECKSUM_ALGORITHMS.get(algo) != len(digest):
            continue
        names.append(name)
        if name.rpartition('/')[2] == filename:
            found.add((algo, digest))
    source = source or _('the checksum list')
    if not found:
        raise exception.InvalidInput(
            reason=_("%(source)s has no checksum for '%(name)s' (it lists "
                     "%(names)s)") % {
                'source': source, 'name': filename,
                'names': ', '.join(names[:10]) + (
                    ', ...' if len(names) > 10 else '') or _('nothing')})
    if len(found) > 1:
        raise exception.InvalidInput(
            reason=_("%(source)s has different checksums for "
                     "'%(name)s'") % {'source': source, 'name': filename})
    return found.pop()


class HashingBody(object):
    """An upload body that hashes its bytes in a thread while they are sent.

    :param read: ``read(n)`` of the source (a file's or a response's raw
        stream); it returns ``b''`` at the end.
    :param size: number of bytes the source holds (``None`` when
        unknown). Give requests the body itself to send it with this
        Content-Length (only when the size is known), or ``iter(body)``
        to send it chunked.
    :param algorithms: names of the hashlib algorithms to compute.
    :param chunk_size: bytes read at a time.
    :param progress: optional ``progress(sent, total)`` callable, called
        after each chunk.
    """

    def __init__(self, read, size, algorithms, chunk_size=1024 * 1024,
                 progress=None):
        self._read = read
        self._size = size
        self._algorithms = sorted(set(algorithms))
        self._chunk_size = chunk_size
        self._progress = progress
        self._hashers = {a: hashlib.new(a) for a in self._algorithms}
        self._queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self._thread = None
        self._error = None
        self.sent = 0
        self.finished = False

    @property
    def size(self):
        """Bytes the source holds, or ``None`` when unknown."""
        return self._size

    def __len__(self):
        return self._size

    def __bool__(self):
        # requests tests "if data:"; an empty file is still a body.
        return True

    def _hash(self):
        hashers = list(self._hashers.values())
        try:
            while True:
                chunk = self._queue.get()
                if chunk is None:
                    return
                for h in hashers:
                    h.update(chunk)
        except Exception as e:  # pragma: no cover - hashlib does not fail
            self._error = e

    def __iter__(self):
        self._thread = threading.Thread(target=self._hash,
                                        name='isoplugin-hash', daemon=True)
        self._thread.start()
        try:
            while True:
                chunk = self._read(self._chunk_size)
                if not chunk:
                    break
                self._queue.put(chunk)
                self.sent += len(chunk)
                if self._progress is not None:
                    self._progress(self.sent, self._size)
                yield chunk
            self.finished = True
        finally:
            self._queue.put(None)
            self._thread.join()

    def hexdigests(self):
        """Return ``{algorithm: hex digest}`` of everything sent.

        :raises isoplugin.exception.CloudError: the body was not sent
            completely.
        :raises isoplugin.exception.SourceUnreadable: the source changed
            size while it was read.
        """
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if not self.finished:
            raise exception.CloudError(
                reason=_('the upload stopped after %d bytes') % self.sent)
        if self._size is not None and self.sent != self._size:
            raise exception.SourceUnreadable(
                source=_('the source'),
                reason=_('it changed size while being uploaded (%(sent)d '
                         'bytes read, %(size)d expected)') % {
                    'sent': self.sent, 'size': self._size})
        return {a: h.hexdigest() for a, h in self._hashers.items()}
