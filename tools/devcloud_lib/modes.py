"""Compute modes of the devcloud: which virt driver nova-compute runs.

A mode is the only piece that knows about the hypervisor: the value of
[DEFAULT]compute_driver, extra nova.conf lines for nova-compute, the
command line that starts nova-compute, the compute service's host name and
what the host needs first (system packages; ``libvirt = True``: the
libvirt service of services/libvirt.py starts libvirtd and virtlogd).
`tools/devcloud up --mode NAME` picks one; the choice is remembered in
.devcloud/mode, and `up` without --mode keeps it.

* fake: Nova's fake driver extended with real disk files (fakevirt.py),
  compute host "devcloud".
* libvirt: Nova's libvirt driver with QEMU software emulation
  (virt_type=qemu), compute host "devcloud-libvirt", libvirtd and virtlogd
  started by tools/libvirt-host (no systemd).

Each mode has its own compute host name and its own nova state_path (the
stable compute node UUID lives in <state_path>/compute_id), so the two
computes are two Nova services and two resource providers; `up` enables the
current mode's compute service and disables the other one, so that the
scheduler never picks the stopped one.
"""

import os
import sys

import common
import settings

HERE = os.path.dirname(os.path.abspath(__file__))
MODE_FILE = os.path.join(common.D, 'mode')   # the current mode's name


class FakeMode:
    """Nova's fake driver extended with real disk files (fakevirt.py)."""

    name = 'fake'
    compute_host = 'devcloud'
    compute_driver = 'devcloud_fake.DevcloudFakeDriver'
    apt_packages = ['qemu-utils']  # qemu-img: qcow2 <-> raw
    required_binaries = ['qemu-img']
    libvirt = False  # services/libvirt.py: no libvirtd

    def compute_config(self, ctx):
        # the fake installer's power-off reaches nova as a lifecycle event
        return "[workarounds]\nhandle_virt_lifecycle_events = true\n"

    def compute_command(self, ctx):
        return [
            ctx['venv_python'],
            os.path.join(HERE, 'nova_compute_fake.py'),
            '--config-file',
            '%(etc)s/nova/nova-compute.conf' % ctx,
            '--log-file',
            '%(logs)s/nova-compute.log' % ctx,
        ]


LIBVIRT_CONF = """\
# libvirt mode (tools/devcloud_lib/modes.py); these override the lines above
[DEFAULT]
host = %(compute_host)s
state_path = %(state)s/nova-libvirt
instances_path = %(state)s/nova-libvirt/instances
compute_driver = libvirt.LibvirtDriver
# rescue and stop first ask the guest to shut down (ACPI) and wait this
# long: the build server's blank disk never answers (no OS on it), so every
# rescue would wait the full default of 60 s; the installers power off by
# themselves anyway. 0 = power off at once.
shutdown_timeout = 0
# SIGTERM: nova-compute waits up to 160 s for its tasks by default, while it
# still takes RPC casts (that it then drops): stop quickly
graceful_shutdown_timeout = 5
[libvirt]
# /dev/kvm exists on these machines but KVM guests hang: always TCG
virt_type = qemu
connection_uri = qemu:///system
cpu_mode = none
[vnc]
enabled = false
[spice]
enabled = false
%(serial_console)s[workarounds]
handle_virt_lifecycle_events = true
# nova-compute runs as root: its privsep daemons need no sudo (whose
# secure_path lacks the venv), just the venv's privsep-helper
[nova_sys_admin]
helper_command = %(helper)s
[privsep_osbrick]
helper_command = %(helper)s
[vif_plug_linux_bridge_privileged]
helper_command = %(helper)s
[vif_plug_ovs_privileged]
helper_command = %(helper)s
"""


# Nova's default: each guest's serial port is a pty whose output virtlogd
# writes to <instance>/console.log; Nova reads the log through the pty's
# path, which only a running domain has (a stopped guest: 404 "Guest does
# not have a console available"). tools/devcloud set serial_console=true:
# a TCP serial port logged by virtlogd, read through the <log file=> that
# the stopped domain keeps. No proxy runs: nobody attaches to the sockets.
SERIAL_CONSOLE_OFF = """\
[serial_console]
enabled = false
"""
SERIAL_CONSOLE_ON = """\
[serial_console]
enabled = true
proxyclient_address = 127.0.0.1
port_range = 26100:26199
"""


class LibvirtMode:
    """Nova's libvirt driver, QEMU software emulation (virt_type=qemu)."""

    name = 'libvirt'
    compute_host = 'devcloud-libvirt'
    compute_driver = 'libvirt.LibvirtDriver'
    # tools/libvirt-host up installs QEMU, libvirt and libvirt-dev; these
    # build the Python binding in the service venv
    apt_packages = ['qemu-utils', 'gcc', 'python3-dev', 'pkg-config']
    required_binaries = ['qemu-img', 'gcc', 'pkg-config']
    libvirt = True  # services/libvirt.py starts libvirtd and virtlogd

    def compute_config(self, ctx):
        helper = '%s/privsep-helper --config-file %s' % (
            os.path.dirname(ctx['venv_python']),
            os.path.join(ctx['etc'], 'nova', 'nova-compute.conf'))
        serial = (SERIAL_CONSOLE_ON if settings.get('serial_console') ==
                  'true' else SERIAL_CONSOLE_OFF)
        return LIBVIRT_CONF % dict(ctx, compute_host=self.compute_host,
                                   helper=helper, serial_console=serial)

    def compute_command(self, ctx):
        return [
            os.path.join(os.path.dirname(ctx['venv_python']), 'nova-compute'),
            '--config-file',
            '%(etc)s/nova/nova-compute.conf' % ctx,
            '--log-file',
            '%(logs)s/nova-compute.log' % ctx,
        ]


MODES = {'fake': FakeMode, 'libvirt': LibvirtMode}


def get_mode(name):
    try:
        return MODES[name]()
    except KeyError:
        raise SystemExit(
            'unknown mode %r (known: %s)' % (name, ', '.join(sorted(MODES)))
        )


def current():
    """The mode .devcloud/mode names (fake when there is none yet)."""
    return get_mode(current_name() or 'fake')


def current_name():
    """The name in .devcloud/mode, or None."""
    try:
        with open(MODE_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


def other_hosts(mode):
    """Compute host names of the modes other than ``mode``."""
    return sorted(m.compute_host for m in MODES.values()
                  if m.compute_host != mode.compute_host)


if __name__ == '__main__':
    print(get_mode(sys.argv[1]).compute_host)
