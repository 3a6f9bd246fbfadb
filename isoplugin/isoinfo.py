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
"""

import dataclasses
import io
import os
import re

from isoplugin import exception
from isoplugin.i18n import _

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
