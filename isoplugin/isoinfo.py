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

"""Recognise installer ISO images from their first few kilobytes.

:func:`inspect` reads the volume recognition area of an image (sector 16
onwards, 2048-byte sectors), so that a file can be checked to be an
ISO 9660 or UDF image before any byte of it is sent to the cloud, and
guesses the operating system from the volume label and the El Torito boot
catalog. It reads at most a few sectors; a 10 GiB ISO is inspected as
quickly as a 10 MiB one.

What is recognised:

* ISO 9660: a primary volume descriptor (type 1, ``CD001``) at sector 16
  or later; its volume identifier, system identifier and volume space size
  (an image shorter than the volume it declares is *truncated*). A Joliet
  supplementary descriptor (type 2) gives a longer volume label when the
  primary one is cut short.
* UDF: the volume recognition sequence ``BEA01`` + ``NSR02``/``NSR03`` +
  ``TEA01``; without any ``CD001`` descriptor the image is UDF-only and its
  label is read from the UDF primary volume descriptor (anchor at sector
  256).
* El Torito: the boot record (type 0, ``EL TORITO SPECIFICATION``) and its
  boot catalog's platform ids (x86 BIOS, UEFI, PowerPC, Mac).

:class:`IsoFiles` (:func:`open_files`) goes one step further: it looks
files up by path (``.disk/info``, ``.treeinfo``, ``isolinux/isolinux.cfg``,
``sources/install.wim``...) by following the directory records from the
root record of the volume descriptors, and reads small files, so that an
install profile can recognise its installer family. It reads only the
directories on the way to the path asked for.
"""

import dataclasses
import io
import os
import re

from oslo_log import log as logging

from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

SECTOR = 2048
VRS_START = 16
VRS_MAX = 32  # volume descriptors looked at, at most
UDF_ANCHOR = 256
ELTORITO_ID = b'EL TORITO SPECIFICATION'

#: What Nova accepts in the ``os_type`` image property
#: (nova.objects.fields.OSType).
OS_TYPES = ('linux', 'windows')

#: Canonical architecture names (nova.objects.fields.Architecture) and the
#: aliases found in volume labels and given by people.
ARCH_ALIASES = {
    'x86_64': 'x86_64', 'amd64': 'x86_64', 'x64': 'x86_64',
    'x86-64': 'x86_64',
    'i386': 'i686', 'i486': 'i686', 'i586': 'i686', 'i686': 'i686',
    'x86': 'i686',
    'aarch64': 'aarch64', 'arm64': 'aarch64',
    'armhf': 'armv7l', 'armv7l': 'armv7l', 'armv7': 'armv7l',
    'ppc64le': 'ppc64le', 'ppc64el': 'ppc64le', 'ppc64': 'ppc64',
    's390x': 's390x', 'riscv64': 'riscv64', 'loongarch64': 'loongarch64',
}

_QCOW_MAGIC = b'QFI\xfb'
_VMDK_MAGIC = b'KDMV'
_VHDX_MAGIC = b'vhdxfile'

# (os_distro, os_type, label regex, version regex applied to the label)
# Version groups are joined with dots.
_DISTROS = (
    ('ubuntu', 'linux', r'ubuntu', r'(?<!\d)(\d{2})[._](\d{2})(?!\d)'),
    ('debian', 'linux', r'debian', r'(?<![\d.])(\d{1,2})(?:\.\d+)*(?!\d)'),
    ('fedora', 'linux', r'fedora', r'(?<!\d)(\d{2})(?!\d)'),
    ('centos', 'linux', r'centos', r'(?<![\d.])(\d{1,2})(?:[.-](\d+))?'),
    ('rhel', 'linux', r'rhel|red ?hat', r'(?<![\d.])(\d{1,2})[.-](\d+)'),
    ('rocky', 'linux', r'rocky', r'(?<![\d.])(\d{1,2})[.-](\d+)'),
    ('almalinux', 'linux', r'alma', r'(?<![\d.])(\d{1,2})[.-](\d+)'),
    ('opensuse', 'linux', r'opensuse', r'(?<![\d.])(\d{2})\.(\d)'),
    ('sles', 'linux', r'\bsle(?:s)?\b|sle-|sles', r'(?<!\d)(\d{2})-sp(\d)'),
    ('alpine', 'linux', r'alpine', r'(?<![\d.])(\d)\.(\d+)'),
    ('arch', 'linux', r'^arch[_ -]', None),
    ('freebsd', None, r'freebsd|_release_', r'(?<!\d)(\d{2})_(\d)_'),
    ('windows', 'windows', r'^(?:cccoma|ccsa|sss|ssss|cpba|cena|j?ccsa)_'
     r'|win(?:dows)?[ _-]?(?:1[01]|server|20\d\d)', None),
)


_ARCH_RE = r'(?<![a-z0-9])(?:%s)(?![a-z0-9])' % '|'.join(
    re.escape(a) for a in sorted(ARCH_ALIASES, key=len, reverse=True))


@dataclasses.dataclass
class IsoInfo(object):
    """What :func:`inspect` found in an image.

    :ivar volume_id: the volume label (Joliet's when longer, else the
        primary descriptor's; UDF's for a UDF-only image).
    :ivar format: ``'iso9660'`` or ``'udf'`` (UDF-only).
    :ivar size: size of the file in bytes.
    :ivar volume_size: size the volume declares, in bytes (ISO 9660) or
        ``None`` (UDF-only).
    :ivar udf: the image also carries a UDF file system (bridge image).
    :ivar bootable: an El Torito boot record is present.
    :ivar boot_platforms: platforms of the boot catalog entries, e.g.
        ``['bios', 'uefi']`` (empty when the catalog could not be read).
    :ivar os_type: ``linux`` or ``windows`` or ``None``.
    :ivar os_distro: e.g. ``ubuntu`` or ``None``.
    :ivar os_version: e.g. ``24.04`` or ``None``.
    :ivar architecture: e.g. ``x86_64`` or ``None``.
    :ivar first_descriptor: identifier of the descriptor in sector 16
        (``CD001``, ``BEA01``...), what Glance's format inspection checks.
    :ivar detected: ``{field: source}`` of the OS fields that were guessed,
        the source being ``'volume label'`` or ``'boot catalog'``.
    """

    volume_id: str
    format: str
    size: int
    volume_size: int = None
    udf: bool = False
    bootable: bool = False
    boot_platforms: list = dataclasses.field(default_factory=list)
    os_type: str = None
    os_distro: str = None
    os_version: str = None
    architecture: str = None
    first_descriptor: str = None
    detected: dict = dataclasses.field(default_factory=dict)


def normalize_architecture(name):
    """Return the canonical architecture name for ``name``.

    :param name: an architecture as written by people or in labels
        (``amd64``, ``arm64``...).
    :returns: the canonical name (``x86_64``, ``aarch64``...).
    :raises isoplugin.exception.InvalidInput: the name is not known.
    """
    canonical = ARCH_ALIASES.get((name or '').strip().lower())
    if canonical is None:
        raise exception.InvalidInput(
            reason=_("unknown architecture '%(arch)s'; use one of "
                     "%(known)s") % {
                'arch': name,
                'known': ', '.join(sorted(set(ARCH_ALIASES.values())))})
    return canonical


def guess_os(label):
    """Guess the operating system from a volume label.

    :param label: a volume label, e.g. ``"Ubuntu-Server 24.04.1 LTS amd64"``.
    :returns: a dict with some of ``os_type``, ``os_distro``,
        ``os_version``, ``architecture`` (only what the label tells).
    """
    found = {}
    text = (label or '').strip()
    low = text.lower()
    if not low:
        return found
    for distro, os_type, pattern, version_re in _DISTROS:
        if re.search(pattern, low):
            found['os_distro'] = distro
            if os_type:
                found['os_type'] = os_type
            if version_re:
                # Drop architecture names first (x86_64 holds "86").
                bare = re.sub(_ARCH_RE, ' ', low)
                m = re.search(version_re, bare)
                if m:
                    found['os_version'] = '.'.join(
                        g for g in m.groups() if g is not None)
            break
    # Architecture: longest alias first so that x86_64 wins over x86.
    for alias in sorted(ARCH_ALIASES, key=len, reverse=True):
        if re.search(r'(?<![a-z0-9])%s(?![a-z0-9])' % re.escape(alias), low):
            found['architecture'] = ARCH_ALIASES[alias]
            break
    else:
        # Windows media: CCCOMA_X64FRE_EN-US_DV9, SSS_A64FRE_...
        m = re.search(r'(?<![a-z0-9])(x64|x86|a64)fre', low)
        if m:
            found['architecture'] = {'x64': 'x86_64', 'x86': 'i686',
                                     'a64': 'aarch64'}[m.group(1)]
    return found


def _open(path_or_fileobj):
    """Return (file object, size, whether we opened it)."""
    if hasattr(path_or_fileobj, 'read'):
        f = path_or_fileobj
        pos = f.tell()
        f.seek(0, io.SEEK_END)
        size = f.tell()
        f.seek(pos)
        return f, size, False
    path = os.fspath(path_or_fileobj)
    f = open(path, 'rb')
    try:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            # block devices report 0 in st_size
            size = f.seek(0, io.SEEK_END)
    except OSError:
        f.close()
        raise
    return f, size, True


def _read_at(f, offset, length):
    f.seek(offset)
    return f.read(length)


def _strip(raw):
    return raw.decode('latin-1').strip(' \x00')


def _dstring(raw):
    """Decode an OSTA compressed-unicode dstring (UDF 2.1.1)."""
    if not raw:
        return ''
    length = raw[-1]
    comp = raw[0]
    data = raw[1:length] if 0 < length <= len(raw) - 1 else raw[1:-1]
    if comp == 16:
        return data.decode('utf-16-be', 'replace').strip(' \x00')
    return data.decode('latin-1').strip(' \x00')


def _boot_platforms(f, catalog_lba, size):
    """Platforms named by an El Torito boot catalog."""
    names = {0: 'bios', 1: 'ppc', 2: 'mac', 0xef: 'uefi'}
    offset = catalog_lba * SECTOR
    if catalog_lba <= 0 or offset + 32 > size:
        return []
    data = _read_at(f, offset, SECTOR)
    if len(data) < 32 or data[0] != 1 or data[30:32] != b'\x55\xaa':
        return []
    platforms = [names.get(data[1], 'other')]
    # Section headers (0x90 more follow, 0x91 last) carry further
    # platforms; entries between them are 32 bytes each.
    for pos in range(64, len(data) - 31, 32):
        kind = data[pos]
        if kind in (0x90, 0x91):
            name = names.get(data[pos + 1], 'other')
            if name not in platforms:
                platforms.append(name)
        elif kind == 0 and not any(data[pos:pos + 32]):
            break
    return platforms


def _udf_label(f, size):
    """The volume identifier of a UDF image's primary volume descriptor."""
    anchor = _read_at(f, UDF_ANCHOR * SECTOR, 512)
    if len(anchor) < 24 or int.from_bytes(anchor[0:2], 'little') != 2:
        return ''
    length = int.from_bytes(anchor[16:20], 'little')
    location = int.from_bytes(anchor[20:24], 'little')
    for i in range(min(length // SECTOR, 32)):
        desc = _read_at(f, (location + i) * SECTOR, 512)
        if len(desc) < 56:
            break
        tag = int.from_bytes(desc[0:2], 'little')
        if tag == 1:  # primary volume descriptor
            return _dstring(desc[24:56])
        if tag == 8:  # terminating descriptor
            break
    return ''


def inspect(path_or_fileobj, name=None, size=None):
    """Check that a file is an ISO 9660 or UDF image and describe it.

    :param path_or_fileobj: a path, or a seekable binary file object (its
        position is restored).
    :param name: how to call the file in error messages (default: the
        path, or ``"the image"``).
    :param size: the size of the whole image when ``path_or_fileobj``
        holds only its beginning (e.g. the first bytes of a URL); default:
        the size of the file.
    :returns: an :class:`IsoInfo`.
    :raises isoplugin.exception.NotAnISO: the data is not an ISO 9660 or
        UDF image, is empty or is shorter than the volume it declares.
    :raises isoplugin.exception.SourceUnreadable: the file cannot be opened
        or read.
    """
    if name is None:
        name = (path_or_fileobj if not hasattr(path_or_fileobj, 'read')
                else _('the image'))
    try:
        f, file_size, opened = _open(path_or_fileobj)
    except OSError as e:
        raise exception.SourceUnreadable(
            source=name, reason=e.strerror or e) from e
    pos = None if opened else f.tell()
    if size is None:
        size = file_size
    try:
        return _inspect(f, size, name)
    except OSError as e:
        raise exception.SourceUnreadable(
            source=name, reason=e.strerror or e) from e
    finally:
        if opened:
            f.close()
        else:
            f.seek(pos)


def _inspect(f, size, name):
    if size == 0:
        raise exception.NotAnISO(source=name, reason=_('the file is empty'))
    magic = _read_at(f, 0, 8)
    vrs = _read_at(f, VRS_START * SECTOR, VRS_MAX * SECTOR)
    if len(vrs) < 7:
        kind = None
        if magic.startswith(_QCOW_MAGIC):
            kind = 'qcow2'
        reason = (_('it is a %s image, not an ISO') % kind if kind else
                  _('it is %(size)d bytes long, too short for an ISO 9660 '
                    'or UDF image (volume descriptors start at byte '
                    '32768)') % {'size': size})
        raise exception.NotAnISO(source=name, reason=reason)

    pvd = joliet = None
    boot_lba = None
    udf_ids = set()
    for i in range(len(vrs) // SECTOR or 1):
        d = vrs[i * SECTOR:(i + 1) * SECTOR]
        if len(d) < 7:
            break
        ident = d[1:6]
        if ident == b'CD001':
            if d[0] == 1 and pvd is None:
                pvd = d
            elif d[0] == 2 and joliet is None and d[88:91] in (
                    b'%/@', b'%/C', b'%/E'):
                joliet = d
            elif d[0] == 0 and d[7:7 + len(ELTORITO_ID)] == ELTORITO_ID:
                boot_lba = int.from_bytes(d[71:75], 'little')
        elif ident in (b'BEA01', b'NSR02', b'NSR03', b'TEA01', b'BOOT2',
                       b'CDW02'):
            udf_ids.add(ident)
        else:
            break
    udf = ({b'BEA01', b'TEA01'} <= udf_ids and
           bool(udf_ids & {b'NSR02', b'NSR03'}))

    if pvd is None and not udf:
        if magic.startswith(_QCOW_MAGIC):
            reason = _('it is a qcow2 image, not an ISO')
        elif magic.startswith(_VMDK_MAGIC):
            reason = _('it is a VMDK image, not an ISO')
        elif magic.startswith(_VHDX_MAGIC):
            reason = _('it is a VHDX image, not an ISO')
        else:
            reason = _('no ISO 9660 or UDF volume descriptor at byte 32768')
        raise exception.NotAnISO(source=name, reason=reason)

    if pvd is not None:
        block = int.from_bytes(pvd[128:130], 'little') or SECTOR
        volume_size = int.from_bytes(pvd[80:84], 'little') * block
        if volume_size > size:
            raise exception.NotAnISO(
                source=name,
                reason=_('it is truncated: the volume declares %(vol)d '
                         'bytes but the file has %(size)d') % {
                    'vol': volume_size, 'size': size})
        label = _strip(pvd[40:72])
        if joliet is not None:
            jlabel = joliet[40:72].decode('utf-16-be', 'replace').strip(
                ' \x00')
            if len(jlabel) > len(label):
                label = jlabel
        fmt = 'iso9660'
    else:
        volume_size = None
        label = _udf_label(f, size)
        fmt = 'udf'

    info = IsoInfo(volume_id=label, format=fmt, size=size,
                   volume_size=volume_size, udf=udf,
                   bootable=boot_lba is not None,
                   first_descriptor=vrs[1:6].decode('latin-1'))
    if boot_lba is not None:
        info.boot_platforms = _boot_platforms(f, boot_lba, size)
    for field, value in guess_os(label).items():
        setattr(info, field, value)
        info.detected[field] = 'volume label'
    if info.architecture is None and 'bios' in info.boot_platforms:
        # An x86 BIOS boot entry: an x86 installer, today 64-bit.
        info.architecture = 'x86_64'
        info.detected['architecture'] = 'boot catalog'
    return info


# Directory entries ----------------------------------------------------------

#: Largest file :meth:`IsoFiles.read` returns (boot menus, .treeinfo...).
MAX_READ = 4 << 20
_MAX_DIR = 16 << 20  # a directory larger than this is treated as corrupt
_CHUNK = 1 << 20


@dataclasses.dataclass
class DirEntry(object):
    """One file or directory of an image.

    :ivar name: its name as the tree in use spells it.
    :ivar is_dir: a directory.
    :ivar size: size in bytes (for a directory: of its records).
    :ivar extents: ``[(byte offset, byte length)]`` of its data in the
        image, in order.
    """

    name: str
    is_dir: bool
    size: int
    extents: list = dataclasses.field(default_factory=list)


def _fold(name):
    """Compare names the way ISO 9660 level names were made from them."""
    return re.sub(r'[^A-Z0-9_]', '_', name.upper())


class IsoFiles(object):
    """Look files up in an image by path, reading only what is asked.

    Opens the image, runs :func:`inspect` (available as :attr:`info`) and
    reads directories lazily, starting from the root directory record of
    the volume descriptors. Names come from, in order of preference: Rock
    Ridge (``NM`` entries, the names distributions wrote), Joliet, or ISO
    9660 level names (``.disk`` then matches ``_DISK``); lookups fall back
    to a case-insensitive match. An image whose files are only in UDF (a
    UDF-only image, or a bridge image whose ISO 9660 tree has no
    directory, as Windows media are made) is read through its UDF file
    set, when it uses a plain (type 1) partition map; UDF 2.50 metadata
    partitions are not read.

    Use as a context manager, or call :meth:`close`.

    :ivar info: the :class:`IsoInfo` of the image.
    :ivar tree: which names are used: ``'rock_ridge'``, ``'joliet'``,
        ``'iso9660'``, ``'udf'`` or ``None`` (no readable tree).
    :ivar has_joliet: the image has a Joliet tree.
    """

    def __init__(self, path_or_fileobj, name=None):
        self.name = name or (path_or_fileobj if not hasattr(
            path_or_fileobj, 'read') else _('the image'))
        self.info = inspect(path_or_fileobj, name=self.name)
        try:
            self._f, self._size, self._opened = _open(path_or_fileobj)
        except OSError as e:
            raise exception.SourceUnreadable(
                source=self.name, reason=e.strerror or e) from e
        self._dirs = {}
        self.tree = None
        self.has_joliet = False
        self._root = None
        self._udf_start = 0
        try:
            self._choose_tree()
        except OSError as e:
            self.close()
            raise exception.SourceUnreadable(
                source=self.name, reason=e.strerror or e) from e

    def close(self):
        if self._opened and not self._f.closed:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- public lookups --------------------------------------------------

    def lookup(self, path):
        """Return the :class:`DirEntry` at ``path``, or ``None``.

        :param path: a path such as ``'/isolinux/isolinux.cfg'`` or
            ``'casper'`` (leading and trailing slashes do not matter).
        """
        entry = self._root
        for part in [p for p in str(path).split('/') if p]:
            if entry is None or not entry.is_dir:
                return None
            entry = self._child(entry, part)
        return entry

    def exists(self, path):
        """Whether ``path`` is a file or a directory of the image."""
        return self.lookup(path) is not None

    def isdir(self, path):
        """Whether ``path`` is a directory of the image."""
        entry = self.lookup(path)
        return entry is not None and entry.is_dir

    def listdir(self, path='/'):
        """Sorted names in the directory ``path``.

        :raises isoplugin.exception.SourceUnreadable: not a directory.
        """
        entry = self.lookup(path)
        if entry is None or not entry.is_dir:
            raise exception.SourceUnreadable(
                source='%s:%s' % (self.name, path),
                reason=_('no such directory'))
        return sorted(self._entries(entry))

    def read(self, path, limit=MAX_READ):
        """Return the content of the file ``path``.

        :param limit: refuse files larger than this many bytes.
        :raises isoplugin.exception.SourceUnreadable: no such file, a
            directory, or a file larger than ``limit``.
        """
        entry = self._file(path)
        if entry.size > limit:
            raise exception.SourceUnreadable(
                source='%s:%s' % (self.name, path),
                reason=_('it is %(size)d bytes, more than %(limit)d') % {
                    'size': entry.size, 'limit': limit})
        out = io.BytesIO()
        self.copy(path, out)
        return out.getvalue()

    def copy(self, path, fileobj):
        """Write the content of the file ``path`` to ``fileobj``, in chunks.

        :returns: the number of bytes written.
        :raises isoplugin.exception.SourceUnreadable: no such file.
        """
        entry = self._file(path)
        written = 0
        try:
            for offset, length in entry.extents:
                self._f.seek(offset)
                while length > 0:
                    data = self._f.read(min(_CHUNK, length))
                    if not data:
                        raise OSError(_('the image ends inside %s') % path)
                    fileobj.write(data)
                    length -= len(data)
                    written += len(data)
        except OSError as e:
            raise exception.SourceUnreadable(
                source='%s:%s' % (self.name, path),
                reason=getattr(e, 'strerror', None) or e) from e
        return written

    # -- internals -------------------------------------------------------

    def _file(self, path):
        entry = self.lookup(path)
        if entry is None or entry.is_dir:
            raise exception.SourceUnreadable(
                source='%s:%s' % (self.name, path),
                reason=_('no such file'))
        return entry

    def _child(self, entry, part):
        entries = self._entries(entry)
        if part in entries:
            return entries[part]
        low = part.lower()
        for name, child in entries.items():
            if name.lower() == low:
                return child
        if self.tree == 'iso9660':
            folded = _fold(part)
            for name, child in entries.items():
                if _fold(name) == folded:
                    return child
        return None

    def _entries(self, entry):
        key = entry.extents[0][0] if entry.extents else id(entry)
        if key not in self._dirs:
            try:
                if self.tree == 'udf':
                    self._dirs[key] = self._udf_entries(entry)
                else:
                    self._dirs[key] = self._iso_entries(entry)
            except (IndexError, ValueError):
                # malformed records: an empty directory rather than a crash
                LOG.debug('Unreadable directory in %(name)s', {
                    'name': self.name})
                self._dirs[key] = {}
        return self._dirs[key]

    def _choose_tree(self):
        descs = _read_at(self._f, VRS_START * SECTOR, VRS_MAX * SECTOR)
        pvd = joliet = None
        for i in range(len(descs) // SECTOR):
            d = descs[i * SECTOR:(i + 1) * SECTOR]
            if d[1:6] != b'CD001' or d[0] == 255:
                break
            if d[0] == 1 and pvd is None:
                pvd = d
            elif d[0] == 2 and joliet is None and d[88:91] in (
                    b'%/@', b'%/C', b'%/E'):
                joliet = d
        self.has_joliet = joliet is not None
        if pvd is not None:
            root = self._root_record(pvd)
            self.tree, self._root = 'iso9660', root
            if self._rock_ridge(root):
                self.tree = 'rock_ridge'
            elif joliet is not None:
                self.tree, self._root = 'joliet', self._root_record(joliet)
            self._dirs.clear()
            has_dirs = any(e.is_dir
                           for e in self._entries(self._root).values())
            if has_dirs or not self.info.udf:
                return
        udf_root = None
        if self.info.udf or pvd is None:
            try:
                udf_root = self._udf_root()
            except (IndexError, ValueError):
                udf_root = None
        if udf_root is not None:
            self._dirs.clear()
            self.tree, self._root = 'udf', udf_root

    # ISO 9660 / Joliet / Rock Ridge

    @staticmethod
    def _root_record(desc):
        rec = desc[156:190]
        return DirEntry('/', True, int.from_bytes(rec[10:14], 'little'),
                        [(int.from_bytes(rec[2:6], 'little') * SECTOR,
                          int.from_bytes(rec[10:14], 'little'))])

    def _records(self, entry):
        offset, length = entry.extents[0]
        if length > _MAX_DIR:
            return
        data = _read_at(self._f, offset, length)
        pos = 0
        while pos < len(data):
            rlen = data[pos]
            if rlen == 0:
                pos = (pos // SECTOR + 1) * SECTOR
                continue
            if rlen < 34:
                return
            yield data[pos:pos + rlen]
            pos += rlen

    @staticmethod
    def _sua(rec):
        lfi = rec[32]
        return rec[33 + lfi + (0 if lfi % 2 else 1):]

    def _rock_ridge(self, root):
        for rec in self._records(root):
            sua = self._sua(rec)
            return sua[:2] == b'SP' and sua[4:6] == b'\xbe\xef'
        return False

    def _rr_name(self, sua):
        name, found, areas, hops = b'', False, [sua], 0
        while areas and hops < 16:
            area, i, hops = areas.pop(0), 0, hops + 1
            while i + 4 <= len(area):
                sig, ln = area[i:i + 2], area[i + 2]
                if ln < 4:
                    break
                if sig == b'NM' and ln >= 5 and not area[i + 4] & 0x06:
                    name += area[i + 5:i + ln]
                    found = True
                elif sig == b'CE' and ln >= 28:
                    where = (int.from_bytes(area[i + 4:i + 8], 'little')
                             * SECTOR
                             + int.from_bytes(area[i + 12:i + 16], 'little'))
                    areas.append(_read_at(
                        self._f, where,
                        min(int.from_bytes(area[i + 20:i + 24], 'little'),
                            SECTOR)))
                elif sig == b'ST':
                    break
                i += ln
        return name.decode('utf-8', 'replace') if found else None

    def _iso_entries(self, entry):
        out, pending = {}, None
        for rec in self._records(entry):
            ident = rec[33:33 + rec[32]]
            if ident in (b'\x00', b'\x01'):
                continue
            flags = rec[25]
            extent = (int.from_bytes(rec[2:6], 'little') * SECTOR,
                      int.from_bytes(rec[10:14], 'little'))
            if pending is not None:
                # a further extent of a multi-extent file
                pending.extents.append(extent)
                pending.size += extent[1]
                if not flags & 0x80:
                    pending = None
                continue
            if self.tree == 'joliet':
                name = ident.decode('utf-16-be', 'replace')
            else:
                name = None
                if self.tree == 'rock_ridge':
                    name = self._rr_name(self._sua(rec))
                if name is None:
                    name = ident.decode('latin-1')
            if self.tree != 'rock_ridge' or ';' in name:
                name = name.split(';', 1)[0]
                if not flags & 0x02 and name.endswith('.'):
                    name = name[:-1]
            child = DirEntry(name, bool(flags & 0x02), extent[1], [extent])
            out[name] = child
            if flags & 0x80:
                pending = child
        return out

    # UDF (type 1 partition maps only)

    def _udf_root(self):
        anchor = _read_at(self._f, UDF_ANCHOR * SECTOR, 512)
        if len(anchor) < 24 or int.from_bytes(anchor[0:2], 'little') != 2:
            return None
        length = int.from_bytes(anchor[16:20], 'little')
        location = int.from_bytes(anchor[20:24], 'little')
        parts, fsd, block = {}, None, SECTOR
        for i in range(min(length // SECTOR, 64)):
            d = _read_at(self._f, (location + i) * SECTOR, SECTOR)
            tag = int.from_bytes(d[0:2], 'little')
            if tag == 5:  # partition descriptor
                parts[int.from_bytes(d[22:24], 'little')] = int.from_bytes(
                    d[188:192], 'little')
            elif tag == 6:  # logical volume descriptor
                block = int.from_bytes(d[212:216], 'little') or SECTOR
                fsd = int.from_bytes(d[252:256], 'little')
                nmaps = int.from_bytes(d[268:272], 'little')
                maps, pos = [], 440
                for _n in range(nmaps):
                    if d[pos] != 1:
                        return None  # virtual, sparable or metadata map
                    maps.append(int.from_bytes(d[pos + 4:pos + 6], 'little'))
                    pos += d[pos + 1]
            elif tag == 8:
                break
        if fsd is None or not parts or block != SECTOR:
            return None
        self._udf_start = parts[min(parts)]
        d = _read_at(self._f, (self._udf_start + fsd) * SECTOR, 512)
        if int.from_bytes(d[0:2], 'little') != 256:
            return None
        root = self._udf_entry('/', int.from_bytes(d[404:408], 'little'))
        return root if root is not None and root.is_dir else None

    def _udf_entry(self, name, lbn):
        d = _read_at(self._f, (self._udf_start + lbn) * SECTOR, SECTOR)
        tag = int.from_bytes(d[0:2], 'little')
        if tag == 261:
            l_ea, l_ad, ads = (int.from_bytes(d[168:172], 'little'),
                               int.from_bytes(d[172:176], 'little'), 176)
        elif tag == 266:
            l_ea, l_ad, ads = (int.from_bytes(d[208:212], 'little'),
                               int.from_bytes(d[212:216], 'little'), 216)
        else:
            return None
        size = int.from_bytes(d[56:64], 'little')
        ad_type = int.from_bytes(d[34:36], 'little') & 7
        start = ads + l_ea
        extents = []
        if ad_type == 3:  # data embedded in the file entry
            where = (self._udf_start + lbn) * SECTOR + start
            extents.append((where, min(l_ad, size)))
        else:
            step = 8 if ad_type == 0 else 16
            for pos in range(start, start + l_ad - step + 1, step):
                raw = int.from_bytes(d[pos:pos + 4], 'little')
                ext_len, kind = raw & 0x3fffffff, raw >> 30
                if ext_len == 0:
                    break
                if kind == 0:
                    where = int.from_bytes(d[pos + 4:pos + 8], 'little')
                    extents.append(((self._udf_start + where) * SECTOR,
                                    ext_len))
        return DirEntry(name, d[27] == 4, size, extents)

    def _udf_entries(self, entry):
        if entry.size > _MAX_DIR:
            return {}
        data = b''.join(_read_at(self._f, off, ln)
                        for off, ln in entry.extents)[:entry.size]
        out, pos = {}, 0
        while pos + 38 <= len(data):
            if int.from_bytes(data[pos:pos + 2], 'little') != 257:
                break
            chars, l_fi = data[pos + 18], data[pos + 19]
            lbn = int.from_bytes(data[pos + 24:pos + 28], 'little')
            l_iu = int.from_bytes(data[pos + 36:pos + 38], 'little')
            raw = data[pos + 38 + l_iu:pos + 38 + l_iu + l_fi]
            pos += (38 + l_iu + l_fi + 3) & ~3
            if chars & 0x0c or not raw:  # parent or deleted
                continue
            name = (raw[1:].decode('utf-16-be', 'replace') if raw[0] == 16
                    else raw[1:].decode('latin-1'))
            child = self._udf_entry(name, lbn)
            if child is not None:
                out[name] = child
        return out


def open_files(path_or_fileobj, name=None):
    """Return an :class:`IsoFiles` for an image (use it with ``with``).

    :raises isoplugin.exception.NotAnISO: not an ISO 9660 or UDF image.
    :raises isoplugin.exception.SourceUnreadable: it cannot be read.
    """
    return IsoFiles(path_or_fileobj, name=name)
