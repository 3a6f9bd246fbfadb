"""libvirtd and virtlogd for the libvirt compute mode (tools/libvirt-host).

Only when the mode says ``libvirt = True`` (modes.LibvirtMode): ``start``
runs ``tools/libvirt-host up`` (installs QEMU and libvirt when missing,
starts virtlogd and libvirtd by hand, no systemd), installs the libvirt
binding into the service venv and makes the instances directory reachable
for QEMU. ``stop`` runs ``tools/libvirt-host down`` when it started them
(whatever the mode now is); ``clean`` first removes the domains whose files
are in this .devcloud/ (Nova's instances).
"""

import os
import shutil

import common
from services import base

BINDING = 'libvirt-python==12.8.0'
LV = os.path.join(common.D, 'libvirt')   # pid files and logs of the daemons


def libvirt_host(cmd):
    env = dict(os.environ, DEVCLOUD_STATE=common.D)
    p = common.run([os.path.join(common.REPO, 'tools', 'libvirt-host'), cmd],
                   check=False, env=env)
    for line in (p.stdout + p.stderr).splitlines():
        common.log(line)
    return p.returncode


class Libvirt(base.Service):
    name = 'libvirt'

    def start(self, c):
        """libvirtd + virtlogd up, the binding installed, dirs traversable."""
        if not c.mode.libvirt:
            return
        if libvirt_host('up') != 0:
            raise SystemExit('devcloud: tools/libvirt-host up failed')
        probe = [common.VPY, '-c', 'import libvirt']
        if common.run(probe, check=False).returncode != 0:
            common.log('installing %s into the service venv' % BINDING)
            common.run([common.VPY, '-m', 'pip', 'install', '-q', BINDING],
                       log_name='pip.log')
        # QEMU runs as libvirt-qemu: every directory down to the instances
        # must be traversable by "other" (/root is 0700: nothing there)
        inst = os.path.join(common.STATE, 'nova-libvirt', 'instances')
        os.makedirs(inst, exist_ok=True)
        path = inst
        while path != '/':
            mode = os.stat(path).st_mode
            if not mode & 0o001:
                os.chmod(path, mode | 0o001)
            path = os.path.dirname(path)

    def started(self):
        return os.path.exists(os.path.join(LV, 'libvirtd.pid'))

    def stop(self, c):
        """Stop libvirtd/virtlogd if tools/libvirt-host started them."""
        if self.started():
            libvirt_host('down')

    def clean(self, c):
        """Destroy and undefine the domains whose files are in .devcloud/.

        A later cold start makes a new compute service, and Nova refuses to
        start a new service on a hypervisor that already has instances.
        """
        if not self.started() or not shutil.which('virsh'):
            return
        uri = ['virsh', '-q', '-c', 'qemu:///system']
        p = common.run(uri + ['list', '--all', '--name'], check=False)
        for name in (p.stdout or '').split():
            xml = common.run(uri + ['dumpxml', name], check=False).stdout
            if common.D + '/' in (xml or ''):
                common.run(uri + ['destroy', name], check=False)
                common.run(uri + ['undefine', '--nvram', name], check=False)
                common.log('libvirt: removed domain %s' % name)


SERVICE = Libvirt()
