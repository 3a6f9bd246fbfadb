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

"""isoplugin.growing: the copy as the source plus a new session.

The oracle is xorriso itself: ``xorriso -dev COPY ... -commit`` grows a
copy of the source in place. With the same options and the same time
(``SOURCE_DATE_EPOCH``: xorriso's dates and GUIDs follow it), the image
isoplugin puts together from the blind-grown session must be the same,
byte for byte, for every family layout it is used for.
"""

import os
import shutil
import struct
import subprocess
import time
from unittest import mock

import pytest

from isoplugin import growing
from isoplugin import remaster

GROWN_FAMILIES = ('debian', 'anaconda', 'suse')


@pytest.fixture
def fixed_time(monkeypatch):
    """xorriso's clock stands still: the two runs write the same dates.

    SOURCE_DATE_EPOCH fixes the volume dates and the GPT GUIDs,
    ``-iso_nowtime`` the directory records xorriso writes anew, and
    ``-alter_date`` the times of the directory the files are added to
    (its modification time is the clock's when its content changes).
    """
    monkeypatch.setenv('SOURCE_DATE_EPOCH', '1796000000')
    command = remaster.xorriso_command

    def fixed(*args, **kwargs):
        cmd = command(*args, **kwargs)
        return cmd[:-1] + ['-iso_nowtime', '=1796000000',
                           '-alter_date', 'b', '=1796000000', '/isolinux',
                           '--', '-alter_date', 'c', '=1796000000',
                           '/isolinux', '--', '-end']
    monkeypatch.setattr(remaster, 'xorriso_command', fixed)


def _changes(tmp_path):
    new = tmp_path / 'new.cfg'
    new.write_text('menu entry changed by the test\n' * 100)
    big = tmp_path / 'big.bin'
    big.write_bytes(os.urandom(300 * 1024))
    for path in (new, big):
        # Rock Ridge records the files' atime too: an atime after the
        # mtime is not changed by the reads (relatime), so both xorriso
        # runs see the same one
        os.utime(path, (time.time(), time.time() - 3600))
    return [mock.Mock(local=str(new), path='/isolinux/added.cfg'),
            mock.Mock(local=str(big), path='/isolinux/big.bin')]


def _grown_by_xorriso(src, changes, report, tmp_path):
    """What ``xorriso -dev`` makes of a copy of ``src`` (the oracle)."""
    copy = str(tmp_path / 'oracle.iso')
    shutil.copyfile(src, copy)
    cmd = remaster.xorriso_command('xorriso', src, changes, report=report)
    # the same options, growing the copy in place instead of writing a
    # new image to standard output
    at = cmd.index('-outdev')
    cmd = cmd[:cmd.index('-indev')] + ['-dev', copy] + cmd[at + 2:]
    subprocess.run(cmd, check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    with open(copy, 'rb') as f:
        return f.read()


def _grown_by_isoplugin(src, changes, report, tmp_path):
    workdir = tmp_path / 'work'
    workdir.mkdir()
    done, data = remaster._grown_copy(
        'xorriso', src, changes, True, report, str(workdir), None,
        lambda read: b''.join(iter(lambda: read(100000), b'')), src)
    assert done
    return data


@pytest.mark.parametrize('family', GROWN_FAMILIES)
def test_same_image_as_xorriso_growing_it(distro_isos, family, tmp_path,
                                          fixed_time):
    src = distro_isos[family]
    report = remaster.boot_report('xorriso', src)
    assert growing.can_grow(report)
    changes = _changes(tmp_path)
    ours = _grown_by_isoplugin(src, changes, report, tmp_path)
    theirs = _grown_by_xorriso(src, changes, report, tmp_path)
    assert len(ours) == len(theirs)
    differ = [hex(i) for i in range(len(ours)) if ours[i] != theirs[i]]
    assert differ == []
    # the source's blocks follow the new head unchanged, the new session
    # after them
    nwa = growing.next_writable(src)
    head = growing.image_head(ours[nwa * growing.BLOCK:], nwa)
    assert ours[:len(head)] == head
    with open(src, 'rb') as f:
        source = f.read()
    assert ours[len(head):len(source)] == source[len(head):]
    assert len(ours) > nwa * growing.BLOCK >= len(source)


def test_the_source_data_is_not_copied_by_xorriso(distro_isos, tmp_path):
    """The session xorriso writes holds the new files, not the old ones."""
    # the Debian layout with 8 MiB more data in its tree
    pad = tmp_path / 'pad.bin'
    pad.write_bytes(os.urandom(8 << 20))
    src = str(tmp_path / 'large.iso')
    report = remaster.boot_report('xorriso', distro_isos['debian'])
    subprocess.run(remaster.xorriso_command(
        'xorriso', distro_isos['debian'],
        [mock.Mock(local=str(pad), path='/pad.bin')], report=report)[:-1] +
        ['-outdev', src, '-end'], check=True, capture_output=True)
    nwa = growing.next_writable(src)
    session = str(tmp_path / 'session.iso')
    subprocess.run(remaster.xorriso_command(
        'xorriso', src, _changes(tmp_path), report=report,
        session=(session, nwa)), check=True, capture_output=True)
    assert os.path.getsize(src) > 10 << 20
    # the new files (300 KiB) and the tree, aligned to 1 MiB
    assert os.path.getsize(session) < 2 << 20


def test_ubuntu_layout_is_written_whole(distro_isos):
    """An image at a partition offset, with an appended EFI partition.

    (A GRUB hybrid: growing would have to move that partition.)
    """
    report = remaster.boot_report('xorriso', distro_isos['ubuntu'])
    assert not growing.can_grow(report)


@pytest.mark.parametrize('report, expected', [
    ('System area summary: MBR cyl-align-on GPT\n'
     'Partition offset   : 0\n', True),
    ('Partition offset   : 16\n', False),
    ('Partition offset   : 0\nGPT partname local :   2  Appended2\n', False),
    ('El Torito catalog  : 72  1\n', True),
])
def test_can_grow(report, expected):
    assert growing.can_grow(report) is expected


def test_prepare_writes_the_whole_copy_when_the_head_is_unexpected(
        distro_isos, tmp_path):
    """A session head that image_head cannot read: the whole copy.

    It is written as for layouts that cannot grow, and boots the same way.
    """
    src = distro_isos['debian']
    with mock.patch.object(growing, 'image_head', autospec=True,
                           side_effect=growing.NotGrowable('test')) as head:
        out, _manifest = remaster.prepare(src, output_dir=str(tmp_path))
    head.assert_called_once()
    nwa = growing.next_writable(src)
    report = remaster.boot_report('xorriso', out)
    assert 'isohybrid' in report
    # a whole copy: not the source followed by a session
    with open(out, 'rb') as f, open(src, 'rb') as g:
        assert f.read(nwa * growing.BLOCK) != g.read(nwa * growing.BLOCK)
    assert os.path.getsize(out) < os.path.getsize(src) + \
        growing.BLOCK * 4096


def test_prepare_grows_a_hybrid_image(distro_isos, tmp_path):
    src = distro_isos['debian']
    out, _manifest = remaster.prepare(src, output_dir=str(tmp_path))
    nwa = growing.next_writable(src)
    with open(out, 'rb') as f, open(src, 'rb') as g:
        head = growing.HEAD
        f.seek(head)
        g.seek(head)
        # the source from its 64th KiB on, unchanged, then the session
        size = nwa * growing.BLOCK - head
        assert f.read(size) == g.read()[:size].ljust(size, b'\0')


def test_head_that_is_not_an_iso_is_refused():
    with pytest.raises(growing.NotGrowable):
        growing.image_head(bytes(growing.HEAD), 1024)
    head = bytearray(growing.HEAD)
    head[16 * 2048:16 * 2048 + 6] = b'\x01CD001'
    with pytest.raises(growing.NotGrowable, match='terminator'):
        growing.image_head(bytes(head), 1024)
    with pytest.raises(growing.NotGrowable, match='shorter'):
        growing.image_head(b'\0' * 100, 1024)


def _image(tmp_path, source_size, session_size, nwa):
    src = tmp_path / 'src.iso'
    data = bytearray(bytes(range(256)) * (source_size // 256))
    # a PVD and its terminator, as the session has
    data[16 * 2048:16 * 2048 + 6] = b'\x01CD001'
    data[17 * 2048:17 * 2048 + 6] = b'\xffCD001'
    src.write_bytes(bytes(data))
    head = bytearray(growing.HEAD)
    head[16 * 2048:16 * 2048 + 6] = b'\x01CD001'
    head[16 * 2048 + 80:16 * 2048 + 84] = struct.pack(
        '<I', session_size // 2048)
    head[17 * 2048:17 * 2048 + 6] = b'\xffCD001'
    session = tmp_path / 'session.iso'
    session.write_bytes(bytes(head) + b'S' * (session_size - len(head)))
    return str(src), str(session)


def test_stream_is_head_source_zeros_session(tmp_path):
    src, session = _image(tmp_path, 100 * 2048, 40 * 2048, 128)
    image = growing.GrownImage(src, session, 128)
    data = b''.join(iter(lambda: image.read(7777), b''))
    image.close()
    assert image.size == len(data) == 128 * 2048 + 40 * 2048
    head = growing.image_head(open(session, 'rb').read(), 128)
    assert len(head) == 18 * 2048
    assert data[:len(head)] == head
    # the head says how large the whole image is (both byte orders)
    assert struct.unpack('<I', data[16 * 2048 + 80:16 * 2048 + 84]) == (
        168,)
    assert struct.unpack('>I', data[16 * 2048 + 84:16 * 2048 + 88]) == (
        168,)
    source = open(src, 'rb').read()
    assert data[len(head):len(source)] == source[len(head):]
    assert data[len(source):128 * 2048] == bytes(128 * 2048 - len(source))
    assert data[128 * 2048:] == open(session, 'rb').read()


def test_more_descriptors_than_the_source_has_is_not_grown(tmp_path):
    # the source: a PVD and its terminator at blocks 16 and 17
    src, session = _image(tmp_path, 100 * 2048, 40 * 2048, 128)
    assert growing.GrownImage(src, session, 128).size
    # the new session: PVD, a boot record, then the terminator
    with open(session, 'r+b') as f:
        f.seek(17 * 2048)
        f.write(b'\x00CD001')
        f.seek(18 * 2048)
        f.write(b'\xffCD001')
    with pytest.raises(growing.NotGrowable, match='more blocks'):
        growing.GrownImage(src, session, 128)


def test_source_that_shrinks_while_read_is_an_error(tmp_path):
    src, session = _image(tmp_path, 100 * 2048, 40 * 2048, 128)
    image = growing.GrownImage(src, session, 128)
    image.read(1000)
    with open(src, 'r+b') as f:
        f.truncate(50 * 2048)
    with pytest.raises(OSError, match='changed while it was read'):
        while image.read(1 << 20):
            pass
    image.close()


def test_next_writable_rounds_up_to_32_blocks(tmp_path):
    src, _session = _image(tmp_path, 100 * 2048, 40 * 2048, 128)
    with open(src, 'r+b') as f:
        f.seek(16 * 2048)
        f.write(b'\x01CD001')
        f.seek(16 * 2048 + 80)
        f.write(struct.pack('<I', 100))
    assert growing.next_writable(src) == 128
    with open(src, 'r+b') as f:
        f.seek(16 * 2048 + 80)
        f.write(struct.pack('<I', 130))  # the volume is larger than the file
    assert growing.next_writable(src) == 160
