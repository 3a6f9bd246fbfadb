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

"""A 512-byte boot sector that prints a line on COM1, then powers off.

The smallest guest that shows a console log and stops by itself (with
one partition in its table, so that Glance accepts it as a raw disk): for
``tools/libvirt-host check`` (plain QEMU and libvirt) and the devcloud's
libvirt-mode tests (a Nova server booted from it goes SHUTOFF).

    python3 tests/tools/boot_sector.py [--debug-exit] OUT MESSAGE

Power-off: APM through the BIOS (SeaBIOS: connect, driver version 1.2,
set power state "off" for all devices), which QEMU's ``pc`` machine turns
into an ACPI soft-off. ``--debug-exit`` first writes 0x10 to the
isa-debug-exit port 0xf4 (plain QEMU started with that device then exits
with status 33; without the device the write does nothing).
"""

import argparse
import struct

MOV_DX_COM1 = b'\xba\xf8\x03'                     # mov dx, 0x3f8
DEBUG_EXIT = b'\xb0\x10\xe6\xf4'                  # mov al, 0x10 ; out 0xf4
APM_OFF = (
    b'\xb8\x01\x53\x31\xdb\xcd\x15'               # ax=5301 bx=0: connect
    b'\xb8\x0e\x53\x31\xdb\xb9\x02\x01\xcd\x15'   # ax=530e cx=0102: v1.2
    b'\xb8\x07\x53\xbb\x01\x00\xb9\x03\x00\xcd\x15'  # ax=5307 bx=1 cx=3
)
HALT = b'\xfa\xf4\xeb\xfd'                        # cli ; hlt ; jmp hlt
# one partition table entry (type 0x83, LBA 1..2047): Glance's format
# inspector refuses a raw image whose MBR signature comes with no partition
# ("GPT MBR has no partitions defined")
PARTITION = struct.pack('<B3sB3sII', 0, b'\0\x02\0', 0x83, b'\0\0\0', 1,
                        2047)


def boot_sector(message, debug_exit=False):
    """The sector: print ``\\r\\n<message>\\r\\n`` on COM1, power off."""
    code = MOV_DX_COM1
    for c in b'\r\n' + message.encode('ascii') + b'\r\n':
        code += b'\xb0' + bytes([c]) + b'\xee'    # mov al, c ; out dx, al
    code += (DEBUG_EXIT if debug_exit else b'') + APM_OFF + HALT
    if len(code) > 446:
        raise ValueError('message too long for a boot sector: %r' % message)
    return code.ljust(446, b'\0') + PARTITION + b'\0' * 48 + b'\x55\xaa'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--debug-exit', action='store_true')
    ap.add_argument('out')
    ap.add_argument('message')
    args = ap.parse_args()
    with open(args.out, 'wb') as f:
        f.write(boot_sector(args.message, args.debug_exit))


if __name__ == '__main__':
    main()
