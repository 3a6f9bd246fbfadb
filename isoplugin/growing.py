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

"""A prepared copy made by appending a session to the source ISO.

A prepared ISO differs from its source in a few small files (boot menus,
an initrd with the answer file). Writing the whole image again, as
xorriso's *modifying* mode does, copies gigabytes through a pipe for that.
ISO 9660 has a way to change an image by *growing* it: a new session,
written after the old one, holds a new directory tree whose unchanged
files point at their data in the old session, plus the new files; the
volume descriptors at the start of the image are rewritten to point at
the new tree. This is what ``xorriso -dev IMAGE ... -commit`` does in
place on a file.

The source must stay as it is (the user's file, or a downloaded copy in
Glance's cache), so the copy is put together instead of written:

1. xorriso writes the new session alone (*blind growing*, ``-grow_blindly
   NWA``): its addresses start at NWA, the source's size rounded up to 32
   blocks, where xorriso itself would append.
2. The new image is streamed as: the session's first blocks (system area
   and volume descriptors) with the fields that describe the whole image
   set to its full size (:func:`image_head`), then the source from there
   on, zeros up to NWA, then the session.

:func:`image_head` sets what xorriso sets when it grows a file itself: the
volume space size of the primary and supplementary descriptors, the MBR
partition that starts at sector 0 (an isohybrid MBR), and the GPT entry
that starts there, with the GPT's checksums. The unit tests check that
the result is byte for byte what ``xorriso -dev`` writes for every layout
this is used for.

Used only where that holds: the ISO 9660 image starts at sector 0
(``Partition offset : 0``) and has no partition appended after it (GRUB
hybrids such as Ubuntu's, where the appended EFI partition would have to
move). Other images are written whole, as before (:func:`can_grow`).
"""

import os
import re
import struct
import zlib

from isoplugin.i18n import _

BLOCK = 2048
#: the bytes of the image's head that can be replaced (system area and
#: the volume descriptors that follow it)
HEAD = 32 * BLOCK


class NotGrowable(ValueError):
    """The image's head has a layout :func:`image_head` does not handle."""


def can_grow(report):
    """Can the copy of this image be made by growing it?

    :param report: ``xorriso -report_el_torito plain -report_system_area
        plain`` of the source (:func:`isoplugin.remaster.boot_report`).
    """
    offset = re.search(r'^Partition offset\s*:\s*(\d+)', report, re.M)
    if offset and offset.group(1) != '0':
        return False
    return not re.search(r'append', report, re.I)


def next_writable(path):
    """The block where a new session of the image at ``path`` starts.

    The end of the image (the larger of the file's size and the primary
    volume descriptor's volume space size) rounded up to 32 blocks, as
    xorriso appends to an image in a file.
    """
    with open(path, 'rb') as f:
        f.seek(16 * BLOCK)
        pvd = f.read(BLOCK)
    if pvd[1:6] != b'CD001':
        raise NotGrowable(_('no primary volume descriptor at block 16'))
    blocks = max(struct.unpack('<I', pvd[80:84])[0],
                 -(-os.path.getsize(path) // BLOCK))
    return -(-blocks // 32) * 32


def _descriptors_end(head):
    """Where an image's volume descriptor set ends (0: it has none)."""
    for i in range(16, len(head) // BLOCK):
        at = i * BLOCK
        if head[at + 1:at + 6] != b'CD001':
            return 0
        if head[at] == 255:
            return at + BLOCK
    return 0


def _volume_descriptors(head, total):
    """Set every PVD/SVD's volume space size; the end of the descriptors."""
    end = _descriptors_end(head)
    if not end:
        raise NotGrowable(_('no volume descriptor set terminator'))
    for at in range(16 * BLOCK, end, BLOCK):
        if head[at] in (1, 2):
            head[at + 80:at + 88] = (struct.pack('<I', total) +
                                     struct.pack('>I', total))
    return end


def _mbr(head, shift):
    """The MBR partition from sector 0 (isohybrid) spans the whole image."""
    if head[510:512] != b'\x55\xaa':
        return
    for n in range(4):
        at = 446 + 16 * n
        start, size = struct.unpack('<II', head[at + 8:at + 16])
        if start != 0 or not size or head[at + 4] == 0xee:
            continue
        size += shift
        head[at + 12:at + 16] = struct.pack('<I', size)
        # CHS of the last sector, in the 64 heads x 32 sectors geometry
        # of isohybrid images (the cylinder saturates at 1023)
        cylinder = min(1023, (size - 1) // (64 * 32))
        head[at + 5:at + 8] = bytes((63, 32 | ((cylinder >> 2) & 0xc0),
                                     cylinder & 0xff))


def _gpt(head, shift):
    """The GPT entry from sector 0 ends where the usable sectors end."""
    if head[512:520] != b'EFI PART':
        return
    header_size = struct.unpack('<I', head[524:528])[0]
    last_usable = struct.unpack('<Q', head[560:568])[0]
    entries_lba, count, entry_size = struct.unpack('<QII', head[584:600])
    first_entry = entries_lba * 512
    end = first_entry + count * entry_size
    if end > len(head) or header_size > 512:
        raise NotGrowable(_('the GPT entries are not in the first 64 KiB'))
    for n in range(count):
        at = first_entry + n * entry_size
        first, last = struct.unpack('<QQ', head[at + 32:at + 48])
        if first == 0 and last:
            head[at + 40:at + 48] = struct.pack(
                '<Q', min(last + shift, last_usable - 1))
    head[600:604] = struct.pack('<I', zlib.crc32(bytes(head[first_entry:
                                                            end])))
    head[528:532] = b'\0\0\0\0'
    head[528:532] = struct.pack('<I', zlib.crc32(bytes(
        head[512:512 + header_size])))


def image_head(session_head, nwa):
    """The head of the grown image, made from the new session's head.

    :param session_head: the first :data:`HEAD` bytes of the session
        xorriso wrote for block ``nwa``.
    :returns: the bytes that replace the start of the source image (up to
        the end of the volume descriptors).
    :raises NotGrowable: the head is not laid out as expected.
    """
    if len(session_head) < HEAD:
        raise NotGrowable(_('the new session is shorter than its head'))
    head = bytearray(session_head[:HEAD])
    pvd = 16 * BLOCK
    if head[pvd:pvd + 6] != b'\x01CD001':
        raise NotGrowable(_('no primary volume descriptor at block 16'))
    session_blocks = struct.unpack('<I', head[pvd + 80:pvd + 84])[0]
    end = _volume_descriptors(head, nwa + session_blocks)
    shift = nwa * (BLOCK // 512)
    _mbr(head, shift)
    _gpt(head, shift)
    return bytes(head[:end])


class GrownImage(object):
    """The grown copy as one stream: ``read(size)`` as a file has it.

    :param source: the source ISO's path.
    :param session: the path of the session xorriso wrote for ``nwa``.
    :param nwa: the block where the session starts.
    """

    def __init__(self, source, session, nwa):
        with open(session, 'rb') as f:
            head = image_head(f.read(HEAD), nwa)
        with open(source, 'rb') as f:
            source_head = f.read(HEAD)
        if len(head) > _descriptors_end(source_head):
            # more descriptors than the source has: the blocks after its
            # terminator (path tables, directories, in some images file
            # data) would be overwritten
            raise NotGrowable(_('the new volume descriptors take more '
                                'blocks than the source\'s'))
        size = os.path.getsize(source)
        body = min(size, nwa * BLOCK) - len(head)
        self._parts = [('bytes', head, 0, len(head)),
                       ('file', source, len(head), body),
                       ('zeros', None, 0, nwa * BLOCK - len(head) - body),
                       ('file', session, 0, os.path.getsize(session))]
        self.size = sum(p[3] for p in self._parts)
        self._file = None
        self._left = 0

    def _next(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        while self._parts:
            kind, what, offset, length = self._parts.pop(0)
            if not length:
                continue
            self._kind, self._what, self._left = kind, what, length
            if kind == 'file':
                self._file = open(what, 'rb')
                self._file.seek(offset)
            return True
        return False

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.size
        while not self._left:
            if not self._next():
                return b''
        n = min(size, self._left)
        if self._kind == 'bytes':
            data, self._what = self._what[:n], self._what[n:]
        elif self._kind == 'zeros':
            data = bytes(n)
        else:
            data = self._file.read(n)
            if len(data) != n:
                raise OSError(_('%s changed while it was read') %
                              self._what)
        self._left -= n
        return data

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self._parts = []
        self._left = 0
