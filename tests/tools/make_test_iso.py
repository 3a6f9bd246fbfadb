#!/usr/bin/env python3
"""Write tiny but real ISO 9660 (and UDF) images for isoplugin's tests.

Importable (``from tests.tools import make_test_iso``) and runnable::

    python tests/tools/make_test_iso.py out.iso -V TINYLINUX_1_0_AMD64 \\
        --disk-info 'Tiny Linux 1.0 amd64' --eltorito \\
        --cfg action=install --cfg delay=2 --text /README.TXT='hello'
    python tests/tools/make_test_iso.py big.iso --padded 1G --fill random

Names: every file gets a Rock Ridge and a Joliet name equal to its path (for
example ``/.disk/info``), a UDF name too when UDF is on, and an ISO 9660 name
derived from it (upper case d-characters, at most 30 characters, ``;1``; a
leading dot becomes ``_``, as xorriso does: ``/_DISK/INFO.;1``). Readers
should look files up by their Rock Ridge or Joliet path; ``/ISOPLUGIN.CFG``
is also ``/ISOPLUGIN.CFG;1`` in ISO 9660 (interchange level 3).

UDF: ``udf=True`` writes a bridge image (pycdlib, UDF 2.60): sector 16 holds
the ISO 9660 primary volume descriptor (``CD001``), then the Joliet
supplementary descriptor if any, the El Torito boot record if any, the
``CD001`` set terminator, then the UDF volume recognition sequence
``BEA01``, ``NSR02`` (pycdlib writes NSR02 even for UDF 2.60), ``TEA01``;
the UDF anchor volume descriptor pointer is at sector 256. With El Torito
and Joliet that is::

    16 CD001 type 1 (primary)     17 CD001 type 0 (El Torito boot record)
    18 CD001 type 2 (Joliet)      19 CD001 type 255 (terminator)
    20 BEA01   21 NSR02   22 TEA01          256 UDF anchor

``udf_only=True`` rewrites that start so that no ``CD001`` descriptor is
left: sectors 16-18 become ``BEA01``/``NSR02``/``TEA01`` and the other old
descriptor sectors are zeroed (the ISO 9660 directory records stay as
unreferenced bytes; the El Torito catalog is unreachable). pycdlib cannot
open such an image (it needs a primary volume descriptor).
"""

import argparse
import io
import os
import random
import re
import sys

import pycdlib
from pycdlib import headervd as _headervd

SECTOR = 2048
VRS_START = 16  # first volume descriptor sector

CFG_KEYS = ('action', 'delay', 'marker', 'message', 'snapshot', 'poweroff')

__all__ = ['make_iso', 'make_padded_iso', 'format_cfg', 'parse_size',
           'read_volume_descriptors', 'main']


def format_cfg(cfg):
    """Return the text of an ISOPLUGIN.CFG file: ``key=value`` lines.

    ``cfg`` is a mapping or a sequence of pairs. Known keys (for the fake
    compute driver) are action=install|hang|fail, delay=SECONDS,
    marker=TEXT, message=TEXT, snapshot=fail and poweroff=no; others are
    written too.
    """
    items = cfg.items() if hasattr(cfg, 'items') else cfg
    lines = []
    for key, value in items:
        key = str(key).strip()
        value = str(value)
        if not key or '=' in key or '\n' in key or '\n' in value:
            raise ValueError('bad ISOPLUGIN.CFG entry %r=%r' % (key, value))
        lines.append('%s=%s\n' % (key, value))
    return ''.join(lines)


def parse_size(text):
    """'4G', '1GiB', '10M', '2048' -> bytes (binary units)."""
    m = re.fullmatch(r'\s*(\d+)\s*([kKmMgGtT]?)(i?[bB])?\s*', str(text))
    if not m:
        raise ValueError('bad size %r' % (text,))
    mult = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}
    return int(m.group(1)) * mult[m.group(2).lower()]


def _iso_component(name, is_dir, taken):
    """An ISO 9660 level-3 name for one path component, unique in ``taken``."""
    up = name.upper()
    if up.startswith('.'):
        up = '_' + up[1:]
    if is_dir:
        base, ext = re.sub(r'[^A-Z0-9_]', '_', up), None
    else:
        base, dot, ext = up.rpartition('.')
        if not dot:
            base, ext = up, ''
        base = re.sub(r'[^A-Z0-9_]', '_', base)
        ext = re.sub(r'[^A-Z0-9_]', '_', ext)[:8]
    base = base or '_'
    limit = 31 if is_dir else 30 - len(ext) - 1
    cand, n = base[:limit], 0
    while True:
        full = cand if is_dir else '%s.%s;1' % (cand, ext)
        if full not in taken:
            taken.add(full)
            return full
        n += 1
        suffix = '_%d' % n
        cand = base[:limit - len(suffix)] + suffix


class _Builder(object):
    def __init__(self, iso, joliet, rock_ridge, udf):
        self.iso = iso
        self.joliet = joliet
        self.rr = rock_ridge
        self.udf = udf
        self.dirs = {'/': '/'}      # path -> iso path
        self.taken = {'/': set()}

    def _names(self, path, iso_path):
        kw = {'iso_path': iso_path}
        if self.rr:
            kw['rr_name'] = path.rsplit('/', 1)[1]
        if self.joliet:
            kw['joliet_path'] = path
        if self.udf:
            kw['udf_path'] = path
        return kw

    def mkdir(self, path):
        path = '/' + path.strip('/')
        if path in self.dirs:
            return self.dirs[path]
        parent = path.rsplit('/', 1)[0] or '/'
        parent_iso = self.mkdir(parent)
        comp = _iso_component(path.rsplit('/', 1)[1], True, self.taken[parent])
        iso_path = parent_iso.rstrip('/') + '/' + comp
        self.iso.add_directory(**self._names(path, iso_path))
        self.dirs[path] = iso_path
        self.taken[path] = set()
        return iso_path

    def add(self, path, data, iso_name=None):
        path = '/' + path.strip('/')
        if isinstance(data, str):
            data = data.encode('utf-8')
        parent = path.rsplit('/', 1)[0] or '/'
        parent_iso = self.mkdir(parent)
        name = path.rsplit('/', 1)[1]
        if iso_name and iso_name not in self.taken[parent]:
            self.taken[parent].add(iso_name)
            comp = iso_name
        else:
            comp = _iso_component(name, False, self.taken[parent])
        iso_path = parent_iso.rstrip('/') + '/' + comp
        self.iso.add_fp(io.BytesIO(data), len(data),
                        **self._names(path, iso_path))
        return iso_path


def _normalize_files(files):
    if files is None:
        return []
    items = files.items() if hasattr(files, 'items') else files
    out = []
    for path, data in items:
        if not str(path).startswith('/'):
            path = '/' + str(path)
        out.append((path, data))
    return out


def make_iso(path, volume_id='ISOPLUGIN_TEST', files=None, joliet=True,
             rock_ridge=True, eltorito=False, efi=False, disk_info=None,
             isoplugin_cfg=None, udf=False, udf_only=False, sys_ident='LINUX',
             app_ident='', pub_ident='', boot_data=None):
    """Write an ISO image to ``path`` and return ``path``.

    volume_id     ISO 9660 volume identifier (d-characters, <= 32 chars;
                  upper-cased); also the UDF volume id, and its first 16
                  characters the Joliet one.
    files         {"/dir/name": bytes|str} or a list of pairs.
    joliet        add a Joliet tree (level 3).
    rock_ridge    add Rock Ridge 1.09 names.
    eltorito      add an El Torito boot catalog (/BOOT.CAT) with a BIOS
                  no-emulation entry for a dummy boot file /BOOT.IMG (one
                  sector ending in 55 AA, or ``boot_data``).
    efi           with eltorito: also a UEFI entry (platform 0xef) for a
                  dummy /EFIBOOT.IMG.
    disk_info     text of /.disk/info (as on Debian and Ubuntu media).
    isoplugin_cfg mapping or pairs for /ISOPLUGIN.CFG (see format_cfg).
    udf           write a UDF 2.60 bridge image.
    udf_only      write a UDF image without ISO 9660 descriptors (implies
                  udf; see the module doc).
    """
    udf = bool(udf or udf_only)
    volume_id = volume_id.upper()
    if len(volume_id) > 32 or not re.fullmatch(r'[A-Z0-9_]*', volume_id):
        raise ValueError('volume id must be <= 32 of A-Z 0-9 _: %r'
                         % volume_id)
    iso = pycdlib.PyCdlib()
    # Joliet volume ids are UCS-2, 16 characters at most (xorriso truncates
    # them too); pycdlib would refuse longer ones, so only the Joliet copy is
    # cut. The primary and UDF volume ids keep them all.
    orig_factory = _headervd.joliet_vd_factory

    def joliet_factory(jol, sys_id, vol_id, *args, **kwargs):
        return orig_factory(jol, sys_id, vol_id[:16], *args, **kwargs)

    _headervd.joliet_vd_factory = joliet_factory
    try:
        iso.new(interchange_level=3, sys_ident=sys_ident, vol_ident=volume_id,
                app_ident_str=app_ident, pub_ident_str=pub_ident,
                joliet=3 if joliet else None,
                rock_ridge='1.09' if rock_ridge else None,
                udf='2.60' if udf else None)
    finally:
        _headervd.joliet_vd_factory = orig_factory
    b = _Builder(iso, joliet, rock_ridge, udf)
    for fpath, data in _normalize_files(files):
        b.add(fpath, data)
    if disk_info is not None:
        b.add('/.disk/info', disk_info)
    if isoplugin_cfg is not None:
        text = isoplugin_cfg if isinstance(isoplugin_cfg, (str, bytes)) \
            else format_cfg(isoplugin_cfg)
        b.add('/ISOPLUGIN.CFG', text, iso_name='ISOPLUGIN.CFG;1')
    if eltorito:
        if boot_data is None:
            boot_data = b'\xeb\xfe' + b'\0' * 508 + b'\x55\xaa'  # jmp $ ; sig
            boot_data += b'\0' * (SECTOR - len(boot_data))
        boot_iso = b.add('/BOOT.IMG', boot_data, iso_name='BOOT.IMG;1')
        kw = {'bootcatfile': '/BOOT.CAT;1'}
        if rock_ridge:
            kw['rr_bootcatname'] = 'BOOT.CAT'
        if joliet:
            kw['joliet_bootcatfile'] = '/BOOT.CAT'
        if udf:
            kw['udf_bootcatfile'] = '/BOOT.CAT'
        iso.add_eltorito(boot_iso, boot_load_size=4, **kw)
        if efi:
            efi_iso = b.add('/EFIBOOT.IMG', b'\0' * (64 * 1024),
                            iso_name='EFIBOOT.IMG;1')
            iso.add_eltorito(efi_iso, efi=True, platform_id=0xef)
    if hasattr(path, 'write'):
        if udf_only:
            raise ValueError('udf_only needs a file name')
        iso.write_fp(path)
    else:
        iso.write(path)
    iso.close()
    if udf_only:
        _strip_iso9660_descriptors(path)
    return path


def read_volume_descriptors(path, limit=64):
    """List the volume recognition area.

    Returns [(sector, type byte, 5-char identifier)] from sector 16 until
    the first empty or unknown sector.
    """
    out = []
    with open(path, 'rb') as f:
        for sector in range(VRS_START, VRS_START + limit):
            f.seek(sector * SECTOR)
            head = f.read(7)
            if len(head) < 7:
                break
            ident = head[1:6].decode('latin-1')
            if ident not in ('CD001', 'BEA01', 'NSR02', 'NSR03', 'TEA01',
                             'BOOT2', 'CDW02'):
                break
            out.append((sector, head[0], ident))
    return out


def _strip_iso9660_descriptors(path):
    """Turn a pycdlib UDF bridge image into a UDF-only image in place."""
    vds = read_volume_descriptors(path)
    udf_vrs = [v for v in vds if v[2] in ('BEA01', 'NSR02', 'NSR03', 'TEA01')]
    if not udf_vrs:
        raise RuntimeError('%s has no UDF volume recognition sequence' % path)
    last = vds[-1][0]
    with open(path, 'r+b') as f:
        blocks = []
        for sector, _type, _ident in udf_vrs:
            f.seek(sector * SECTOR)
            blocks.append(f.read(SECTOR))
        for sector in range(VRS_START, last + 1):
            f.seek(sector * SECTOR)
            f.write(b'\0' * SECTOR)
        for i, block in enumerate(blocks):
            f.seek((VRS_START + i) * SECTOR)
            f.write(block)


def _set_volume_space_size(head, sectors):
    """Patch the volume space size of every PVD/SVD in ``head``.

    ``head`` is a bytearray; the field is a both-endian uint32 at byte 80
    of the descriptor.
    """
    for sector in range(VRS_START, VRS_START + 64):
        off = sector * SECTOR
        if head[off + 1:off + 6] != b'CD001' or head[off] == 255:
            break
        if head[off] in (1, 2):
            head[off + 80:off + 88] = (sectors.to_bytes(4, 'little')
                                       + sectors.to_bytes(4, 'big'))


def make_padded_iso(path, size, fill='zero', volume_id='ISOPLUGIN_PADDED',
                    seed=0, chunk_size=4 << 20, **iso_kwargs):
    """Write a ``size``-byte ISO: a real image, then padding.

    The image is made by make_iso with ``iso_kwargs``; non-sparse data
    follows up to ``size``.

    fill: 'zero' (zero bytes), 'random' (a seeded pseudo-random chunk with a
    chunk counter in its first 8 bytes: fast, does not compress, not
    cryptographic) or 'urandom' (os.urandom, slower). The primary and Joliet
    descriptors' volume space size is set to size // 2048 so that the file
    is one consistent ISO. Memory use is one chunk. Returns ``path``.
    """
    size = parse_size(size) if isinstance(size, str) else int(size)
    if fill not in ('zero', 'random', 'urandom'):
        raise ValueError('fill must be zero, random or urandom')
    buf = io.BytesIO()
    iso_kwargs.setdefault('files',
                          {'/README.TXT': 'isoplugin padded test image\n'})
    make_iso(buf, volume_id=volume_id, **iso_kwargs)
    head = bytearray(buf.getvalue())
    if size < len(head):
        raise ValueError('size %d is smaller than the ISO header (%d bytes)'
                         % (size, len(head)))
    rng = random.Random(seed)
    if fill == 'random':
        block = bytearray(
            rng.getrandbits(8 * chunk_size).to_bytes(chunk_size, 'little'))
    else:
        block = bytearray(chunk_size)
    with open(path, 'wb') as f:
        _set_volume_space_size(head, size // SECTOR)
        f.write(head)
        remaining, n = size - len(head), 0
        view = memoryview(block)
        while remaining > 0:
            k = min(chunk_size, remaining)
            if fill == 'random':
                block[0:8] = n.to_bytes(8, 'little')
                f.write(view[:k])
            elif fill == 'urandom':
                f.write(os.urandom(k))
            else:
                f.write(view[:k])
            remaining -= k
            n += 1
    return path


def _parse_kv(text, what):
    if '=' not in text:
        raise argparse.ArgumentTypeError('%s must be KEY=VALUE: %r'
                                         % (what, text))
    return tuple(text.split('=', 1))


def main(argv=None):
    p = argparse.ArgumentParser(
        description='Write a tiny real ISO 9660 / UDF image for tests.')
    p.add_argument('output')
    p.add_argument('-V', '--volume-id', default=None,
                   help='ISO 9660 volume id (default ISOPLUGIN_TEST, or '
                        'ISOPLUGIN_PADDED with --padded)')
    p.add_argument('--file', action='append', default=[],
                   metavar='ISO_PATH=LOCAL_FILE',
                   type=lambda s: _parse_kv(s, '--file'),
                   help='add a local file')
    p.add_argument('--text', action='append', default=[],
                   metavar='ISO_PATH=TEXT',
                   type=lambda s: _parse_kv(s, '--text'),
                   help='add a file with this text')
    p.add_argument('--no-joliet', dest='joliet', action='store_false')
    p.add_argument('--no-rock-ridge', dest='rock_ridge', action='store_false')
    p.add_argument('--eltorito', action='store_true',
                   help='add an El Torito boot catalog')
    p.add_argument('--efi', action='store_true',
                   help='with --eltorito: add a UEFI entry')
    p.add_argument('--disk-info', help='text of /.disk/info')
    p.add_argument('--cfg', action='append', default=[], metavar='KEY=VALUE',
                   type=lambda s: _parse_kv(s, '--cfg'),
                   help='a line of /ISOPLUGIN.CFG (action=install|hang|'
                        'fail, delay=SECONDS, marker=TEXT, message=TEXT, '
                        'snapshot=fail)')
    p.add_argument('--udf', action='store_true', help='UDF 2.60 bridge image')
    p.add_argument('--udf-only', action='store_true',
                   help='UDF image without CD001 descriptors')
    p.add_argument('--padded', metavar='SIZE',
                   help='pad the file to SIZE (e.g. 1G, 4GiB)')
    p.add_argument('--fill', choices=('zero', 'random', 'urandom'),
                   default='zero')
    a = p.parse_args(argv)
    files = [(k, v) for k, v in a.text]
    for iso_path, local in a.file:
        with open(local, 'rb') as f:
            files.append((iso_path, f.read()))
    kwargs = dict(files=files or None, joliet=a.joliet,
                  rock_ridge=a.rock_ridge,
                  eltorito=a.eltorito, efi=a.efi, disk_info=a.disk_info,
                  isoplugin_cfg=a.cfg or None, udf=a.udf, udf_only=a.udf_only)
    if a.padded:
        if a.udf_only:
            p.error('--padded cannot be combined with --udf-only')
        if kwargs['files'] is None:
            del kwargs['files']
        make_padded_iso(a.output, parse_size(a.padded), fill=a.fill,
                        volume_id=a.volume_id or 'ISOPLUGIN_PADDED', **kwargs)
    else:
        make_iso(a.output, volume_id=a.volume_id or 'ISOPLUGIN_TEST', **kwargs)
    print(a.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
