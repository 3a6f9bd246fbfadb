"""Unit tests for tests/tools/make_test_iso.py (checked with pycdlib)."""

import io
import os
import subprocess
import sys

import pytest

pycdlib = pytest.importorskip('pycdlib')

from tests.tools import make_test_iso as m  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _open(path):
    iso = pycdlib.PyCdlib()
    iso.open(path)
    return iso


def _read(iso, **kw):
    buf = io.BytesIO()
    iso.get_file_from_iso_fp(buf, **kw)
    return buf.getvalue()


def test_plain_iso(tmp_path):
    out = str(tmp_path / 'a.iso')
    m.make_iso(out, volume_id='TINYLINUX_1_0_AMD64',
               files={'/README.TXT': 'hello',
                      '/dir/sub/a.long-name.txt': b'x'})
    assert os.path.getsize(out) % 2048 == 0
    iso = _open(out)
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'TINYLINUX_1_0_AMD64'
        assert iso.has_joliet() and iso.has_rock_ridge() and not iso.has_udf()
        assert iso.eltorito_boot_catalog is None
        assert _read(iso, rr_path='/README.TXT') == b'hello'
        assert _read(iso, joliet_path='/dir/sub/a.long-name.txt') == b'x'
        assert _read(iso, rr_path='/dir/sub/a.long-name.txt') == b'x'
        assert _read(iso, iso_path='/DIR/SUB/A_LONG_NAME.TXT;1') == b'x'
    finally:
        iso.close()
    with open(out, 'rb') as f:
        f.seek(16 * 2048)
        assert f.read(6) == b'\x01CD001'


def test_disk_info_cfg_and_eltorito(tmp_path):
    out = str(tmp_path / 'b.iso')
    m.make_iso(out, volume_id='tinylinux_1_0_amd64',
               disk_info='Tiny Linux 1.0 amd64',
               isoplugin_cfg={'action': 'install', 'delay': 2,
                              'marker': 'M-1'},
               eltorito=True, efi=True)
    iso = _open(out)
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'TINYLINUX_1_0_AMD64'
        assert _read(iso, rr_path='/.disk/info') == b'Tiny Linux 1.0 amd64'
        assert _read(iso, joliet_path='/.disk/info') == b'Tiny Linux 1.0 amd64'
        assert _read(iso, iso_path='/_DISK/INFO.;1') == b'Tiny Linux 1.0 amd64'
        cfg = _read(iso, iso_path='/ISOPLUGIN.CFG;1')
        assert cfg == b'action=install\ndelay=2\nmarker=M-1\n'
        assert _read(iso, rr_path='/ISOPLUGIN.CFG') == cfg
        cat = iso.eltorito_boot_catalog
        assert cat is not None
        assert cat.initial_entry.boot_indicator == 0x88
        assert len(cat.sections) == 1
        assert cat.sections[0].platform_id == 0xef
        boot = _read(iso, iso_path='/BOOT.IMG;1')
        assert boot[510:512] == b'\x55\xaa'
    finally:
        iso.close()


def test_no_joliet_no_rock_ridge(tmp_path):
    out = str(tmp_path / 'c.iso')
    m.make_iso(out, joliet=False, rock_ridge=False, files={'/A.TXT': 'a'},
               eltorito=True)
    iso = _open(out)
    try:
        assert not iso.has_joliet() and not iso.has_rock_ridge()
        assert iso.eltorito_boot_catalog is not None
        assert _read(iso, iso_path='/A.TXT;1') == b'a'
    finally:
        iso.close()


def test_udf_bridge(tmp_path):
    out = str(tmp_path / 'd.iso')
    m.make_iso(out, udf=True, eltorito=True, disk_info='X 1 amd64',
               files={'/f.txt': 'u'})
    vds = [ident for _s, _t, ident in m.read_volume_descriptors(out)]
    assert vds[0] == 'CD001' and 'BEA01' in vds and 'TEA01' in vds
    assert vds.index('CD001') < vds.index('BEA01')
    iso = _open(out)
    try:
        assert iso.has_udf()
        jvid = iso.joliet_vd.volume_identifier.decode('utf-16-be')
        assert jvid.rstrip() == 'ISOPLUGIN_TEST'
        assert _read(iso, udf_path='/f.txt') == b'u'
        assert _read(iso, udf_path='/.disk/info') == b'X 1 amd64'
        assert _read(iso, rr_path='/f.txt') == b'u'
    finally:
        iso.close()


def test_udf_only(tmp_path):
    out = str(tmp_path / 'e.iso')
    m.make_iso(out, udf_only=True, eltorito=True, files={'/f.txt': 'u'})
    vds = m.read_volume_descriptors(out)
    assert [v[2] for v in vds][:3] == ['BEA01', 'NSR02', 'TEA01']
    assert [v[0] for v in vds][:3] == [16, 17, 18]
    with open(out, 'rb') as f:
        data = f.read(64 * 2048)
        f.seek(256 * 2048)
        anchor = f.read(2)
    assert b'CD001' not in data
    # UDF tag identifier 2: anchor volume descriptor pointer
    assert anchor == b'\x02\x00'
    with pytest.raises(pycdlib.pycdlibexception.PyCdlibException):
        _open(out)


def test_long_volume_id_joliet_and_udf(tmp_path):
    out = str(tmp_path / 'l.iso')
    m.make_iso(out, volume_id='TINYLINUX_1_0_AMD64', udf=True)
    iso = _open(out)
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'TINYLINUX_1_0_AMD64'
        jvid = iso.joliet_vd.volume_identifier.decode('utf-16-be')
        assert jvid.rstrip() == 'TINYLINUX_1_0_AM'
    finally:
        iso.close()
    with open(out, 'rb') as f:
        data = f.read(300 * 2048)
    # UDF dstrings (8-bit, compression id 8) carry the full id
    assert b'\x08TINYLINUX_1_0_AMD64' in data


@pytest.mark.parametrize('fill', ['zero', 'random', 'urandom'])
def test_padded(tmp_path, fill):
    out = str(tmp_path / 'p.iso')
    size = 8 * 1024 * 1024 + 2048
    m.make_padded_iso(out, size, fill=fill, chunk_size=1 << 20,
                      disk_info='Padded 1 amd64')
    st = os.stat(out)
    assert st.st_size == size
    assert st.st_blocks * 512 >= size - 4096  # not sparse
    iso = _open(out)
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'ISOPLUGIN_PADDED'
        assert iso.pvd.space_size == size // 2048
        assert _read(iso, rr_path='/.disk/info') == b'Padded 1 amd64'
        assert _read(iso, rr_path='/README.TXT').startswith(b'isoplugin')
    finally:
        iso.close()
    with open(out, 'rb') as f:
        f.seek(size - 1024 * 1024)
        tail = f.read()
    if fill == 'zero':
        assert tail.count(0) == len(tail)
    else:
        assert tail.count(0) < len(tail) // 100


def test_padded_random_chunks_differ(tmp_path):
    out = str(tmp_path / 'r.iso')
    m.make_padded_iso(out, '4M', fill='random', chunk_size=1 << 20)
    with open(out, 'rb') as f:
        f.seek(1 << 20)
        a = f.read(1 << 20)
        b = f.read(1 << 20)
    assert a != b


def test_padded_too_small(tmp_path):
    with pytest.raises(ValueError):
        m.make_padded_iso(str(tmp_path / 'x.iso'), 2048)


def test_parse_size_and_cfg():
    assert m.parse_size('1G') == 1 << 30
    assert m.parse_size('4GiB') == 4 << 30
    assert m.parse_size('10M') == 10 << 20
    assert m.parse_size('2048') == 2048
    with pytest.raises(ValueError):
        m.parse_size('lots')
    assert m.format_cfg([('action', 'fail'), ('message', 'a b')]) == \
        'action=fail\nmessage=a b\n'
    with pytest.raises(ValueError):
        m.format_cfg({'a': 'x\ny'})


def test_bad_volume_id(tmp_path):
    with pytest.raises(ValueError):
        m.make_iso(str(tmp_path / 'x.iso'), volume_id='has space')
    with pytest.raises(ValueError):
        m.make_iso(str(tmp_path / 'x.iso'), volume_id='A' * 33)


def test_cli(tmp_path):
    local = tmp_path / 'local.bin'
    local.write_bytes(b'LOCAL')
    out = str(tmp_path / 'cli.iso')
    subprocess.run(
        [sys.executable, os.path.join(HERE, 'make_test_iso.py'), out,
         '-V', 'CLI_TEST', '--eltorito', '--disk-info', 'Cli 2 arm64',
         '--cfg', 'action=hang', '--cfg', 'delay=5', '--text', '/T.TXT=text',
         '--file', '/bin/local.bin=%s' % local],
        check=True, stdout=subprocess.PIPE)
    iso = _open(out)
    try:
        assert iso.pvd.volume_identifier.rstrip(b' ') == b'CLI_TEST'
        assert _read(iso, rr_path='/bin/local.bin') == b'LOCAL'
        assert _read(iso, rr_path='/T.TXT') == b'text'
        cfg = _read(iso, rr_path='/ISOPLUGIN.CFG')
        assert cfg == b'action=hang\ndelay=5\n'
        assert iso.eltorito_boot_catalog is not None
    finally:
        iso.close()
    padded = str(tmp_path / 'pad.iso')
    subprocess.run(
        [sys.executable, os.path.join(HERE, 'make_test_iso.py'), padded,
         '--padded', '3M', '--fill', 'random'],
        check=True, stdout=subprocess.PIPE)
    assert os.path.getsize(padded) == 3 << 20
