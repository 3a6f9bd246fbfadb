"""Compute modes of the devcloud: which virt driver nova-compute runs.

A mode is the only piece that knows about the hypervisor: the value of
[DEFAULT]compute_driver, extra nova.conf lines for nova-compute, and the
command line that starts nova-compute. `tools/devcloud up --mode NAME` picks
one; the choice is remembered in .devcloud/mode (change it with down + up
--mode, or clean).

Only "fake" exists today. A later "libvirt" mode adds an entry here (driver
libvirt.LibvirtDriver, [libvirt] virt_type=qemu, ..., command
[venv/bin/nova-compute]) and whatever system packages it needs.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))


class FakeMode:
    """Nova's fake driver extended with real disk files (fakevirt.py)."""

    name = 'fake'
    compute_driver = 'devcloud_fake.DevcloudFakeDriver'
    apt_packages = ['qemu-utils']  # qemu-img: qcow2 <-> raw
    required_binaries = ['qemu-img']

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


MODES = {'fake': FakeMode}


def get_mode(name):
    try:
        return MODES[name]()
    except KeyError:
        raise SystemExit(
            'unknown mode %r (known: %s)' % (name, ', '.join(sorted(MODES)))
        )
