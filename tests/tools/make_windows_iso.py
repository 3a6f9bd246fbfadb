#!/usr/bin/env python3
"""Write a small ISO laid out like Windows media, as Microsoft's oscdimg does.

UDF 1.02 holds the files; the ISO 9660 tree of the bridge holds only
``README.TXT``; El Torito has a BIOS entry (``boot/etfsboot.com``, no
emulation, load size 8) and a UEFI one (``efi/microsoft/boot/efisys.bin``);
no MBR. Written by genisoimage (another writer than pycdlib, which
prepares the copy).

Used by the unit tests (``windows_iso`` fixture) and the functional test
of a Windows prepare. From Python: ``make(path)``; as a script::

    python tests/tools/make_windows_iso.py out.iso
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

#: What the El Torito entries load (distinct bytes, so that a test can find
#: them at the addresses the catalog gives).
WINDOWS_BOOT = {'boot/etfsboot.com': b'ETFSBOOT' * 512,
                'efi/microsoft/boot/efisys.bin': b'EFISYS..' * 184320}

#: The volume label of Windows Server 2022 media.
VOLUME_ID = 'SSS_X64FREE_EN-US_DV9'

#: The files on the image, besides :data:`WINDOWS_BOOT`.
FILES = {'bootmgr': b'bootmgr\n', 'bootmgr.efi': b'MZ bootmgr\n',
         'setup.exe': b'MZ setup\n', 'boot/bcd': b'bcd\n',
         'sources/boot.wim': b'MSWIM\0\0\0boot',
         'sources/install.wim': b'MSWIM\0\0\0install' * 4096,
         'README.TXT': b'This disc contains a "UDF" file system.\r\n'}


def make(path):
    """Write the Windows-like ISO to ``path``; return ``path``.

    :raises AssertionError: genisoimage is not installed.
    """
    genisoimage = shutil.which('genisoimage')
    assert genisoimage, (
        'genisoimage is not installed: apt-get install genisoimage (the '
        'Windows-like test ISO, UDF with El Torito, is made with it)')
    with tempfile.TemporaryDirectory(prefix='windows-tree-') as tree:
        for rel, data in dict(WINDOWS_BOOT, **FILES).items():
            os.makedirs(os.path.join(tree, os.path.dirname(rel)),
                        exist_ok=True)
            with open(os.path.join(tree, rel), 'wb') as f:
                f.write(data)
        hide = []
        for name in ('boot', 'efi', 'sources', 'bootmgr', 'bootmgr.efi',
                     'setup.exe', 'boot.catalog'):
            hide += ['-hide', name]
        subprocess.run(
            [genisoimage, '-quiet', '-udf', '-iso-level', '3',
             '-allow-limited-size', '-V', VOLUME_ID,
             '-b', 'boot/etfsboot.com', '-no-emul-boot',
             '-boot-load-size', '8', '-eltorito-alt-boot',
             '-e', 'efi/microsoft/boot/efisys.bin', '-no-emul-boot'] +
            hide + ['-o', path, tree],
            check=True, capture_output=True)
    return path


def eltorito_images(path):
    """``[(platform, load size, first 16 bytes it loads)]`` of every entry.

    From xorriso's ``-report_el_torito plain``: for a test that checks a
    copy's entries still load what the source's loaded.
    """
    report = subprocess.run(
        ['xorriso', '-indev', path, '-report_el_torito', 'plain'],
        check=True, capture_output=True, universal_newlines=True).stdout
    out = []
    with open(path, 'rb') as f:
        for m in re.finditer(r'^El Torito boot img :\s+\d+\s+(\S+)\s+y\s+'
                             r'none\s+\S+\s+\S+\s+(\d+)\s+(\d+)$', report,
                             re.M):
            f.seek(int(m.group(3)) * 2048)
            out.append((m.group(1), int(m.group(2)), f.read(16)))
    return out


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: %s OUT.iso' % sys.argv[0])
    print(make(sys.argv[1]))
