"""libvirtd and virtlogd for the libvirt compute mode (tools/libvirt-host).

Only when the mode says ``libvirt = True`` (modes.LibvirtMode): ``start``
runs ``tools/libvirt-host up`` (installs QEMU and libvirt when missing,
starts virtlogd and libvirtd by hand, no systemd), installs the libvirt
binding into the service venv, makes the instances directory reachable
for QEMU and removes the domains Nova made that no devcloud database knows
(left by an interrupted run of this or another checkout: nova-compute
refuses to start as a new service on a hypervisor that has instances).
``stop`` runs ``tools/libvirt-host down`` when it started them (whatever
the mode now is); ``clean`` removes the domains of this devcloud's Nova
and the leftovers.
"""

import collections
import glob
import os
import shutil

import common
from services import base
from services import ceph
from services import mariadb
from services import nova
import settings

BINDING = 'libvirt-python==12.8.0'
LV = os.path.join(common.D, 'libvirt')   # pid files and logs of the daemons
URI = 'qemu:///system'
# Nova writes its instance metadata into every domain it defines
NOVA_XMLNS = 'http://openstack.org/xmlns/libvirt/nova/'
# where libvirtd keeps the persistent domain definitions
DEFINITIONS = '/etc/libvirt/qemu'

Domain = collections.namedtuple('Domain', 'uuid name xml')


def libvirt_host(cmd):
    env = dict(os.environ, DEVCLOUD_STATE=common.D)
    p = common.run([os.path.join(common.REPO, 'tools', 'libvirt-host'), cmd],
                   check=False, env=env)
    for line in (p.stdout + p.stderr).splitlines():
        common.log(line)
    return p.returncode


def virsh(*args):
    return common.run(['virsh', '-q', '-c', URI] + list(args), check=False)


def domains():
    """Every domain libvirt has, running or defined (Domain tuples)."""
    out = []
    for uuid in virsh('list', '--all', '--uuid').stdout.split():
        xml = virsh('dumpxml', uuid).stdout or ''
        name = xml.split('<name>', 1)[-1].split('</name>', 1)[0]
        out.append(Domain(uuid, name, xml))
    return out


def remove(domain, why):
    """Destroy (if running) and undefine a domain."""
    virsh('destroy', domain.uuid)
    p = virsh('undefine', '--nvram', domain.uuid)
    if p.returncode != 0:
        p = virsh('undefine', domain.uuid)
    if p.returncode != 0:
        common.die('libvirt: cannot remove domain %s (%s): %s'
                   % (domain.name, domain.uuid, p.stderr.strip()))
    common.log('libvirt: removed domain %s (%s): %s'
               % (domain.name, domain.uuid, why))


def leftovers(known):
    """Domains Nova made whose instance ``known`` does not have.

    :param known: instance UUIDs a devcloud database has.
    """
    return [d for d in domains() if NOVA_XMLNS in d.xml
            and d.uuid not in known]


class Libvirt(base.Service):
    name = 'libvirt'

    def start(self, c):
        """libvirtd + virtlogd up, the binding installed, dirs traversable.

        Then no domain may stop nova-compute: Nova's leftovers that no
        devcloud database knows are removed; other domains make ``up``
        stop with a clear message when nova-compute would register for the
        first time (Nova refuses to, on a hypervisor that has domains).
        """
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
        self.remove_leftovers(c)
        if settings.volumes_enabled():
            self.define_ceph_secret()

    def define_ceph_secret(self):
        """The libvirt secret QEMU authenticates to Ceph with (volumes=ceph).

        As deployments do (Ceph's "Block Devices and OpenStack"): a ceph
        secret of uuid ceph.SECRET_UUID, the ``rbd_secret_uuid`` Cinder
        puts into every volume's connection info, holding client.cinder's
        key; Nova's libvirt driver names it in the disk's <auth>.
        """
        key = common.run(['ceph-authtool', '-p', '-n',
                          'client.%s' % ceph.USER, ceph.USER_KEYRING]
                         ).stdout.strip()
        p = virsh('secret-get-value', ceph.SECRET_UUID)
        if p.returncode == 0 and p.stdout.strip() == key:
            return
        xml = os.path.join(common.RUN, 'ceph-secret.xml')
        common.write(xml, (
            "<secret ephemeral='no' private='no'>"
            '<uuid>%s</uuid><usage type=\'ceph\'>'
            '<name>client.%s secret</name></usage></secret>\n'
            % (ceph.SECRET_UUID, ceph.USER)), mode=0o600)
        for args in (['secret-define', xml],
                     ['secret-set-value', '--secret', ceph.SECRET_UUID,
                      '--base64', key]):
            p = virsh(*args)
            if p.returncode != 0:
                common.die('virsh %s failed: %s'
                           % (args[0], (p.stderr or p.stdout).strip()))
        common.log('libvirt: secret %s holds client.%s\'s key'
                   % (ceph.SECRET_UUID, ceph.USER))

    def remove_leftovers(self, c):
        known = nova.instance_uuids()
        if known is None:
            common.log('libvirt: MariaDB does not answer; leftover domains '
                       'not checked')
            return
        for d in leftovers(known):
            remove(d, 'a Nova instance that no devcloud database knows '
                      '(left by an interrupted run)')
        if nova.compute_service_exists(c.mode.compute_host):
            return
        others = [d.name for d in domains() if d.uuid not in known]
        if others:
            common.die(
                'libvirt (%s) has domains that are not devcloud\'s: %s. '
                'nova-compute refuses to register on a hypervisor that '
                'already has domains: remove them (virsh -c %s undefine '
                'NAME) or use --mode fake'
                % (URI, ', '.join(others), URI))

    def started(self):
        return os.path.exists(os.path.join(LV, 'libvirtd.pid'))

    def stop(self, c):
        """Stop libvirtd/virtlogd if tools/libvirt-host started them."""
        if self.started():
            libvirt_host('down')

    def clean(self, c):
        """Remove this devcloud's domains and Nova's leftovers.

        Every domain Nova made, except the instances of another checkout's
        databases (``clean`` drops only this checkout's), and any domain
        whose files are in this .devcloud/. libvirtd is started for that
        when it has definitions (``down`` stops it again).
        """
        if not shutil.which('virsh'):
            return
        if not self.started() and not glob.glob(DEFINITIONS + '/*.xml'):
            return
        if not self.started() and libvirt_host('up') != 0:
            common.log('libvirt: libvirtd does not start; domains not '
                       'removed')
            return
        known = set()
        if not mariadb.ours(c):
            known = nova.instance_uuids()
            if known is None:
                common.log('libvirt: MariaDB does not answer; domains not '
                           'removed')
                return
        for d in domains():
            if NOVA_XMLNS in d.xml and d.uuid not in known:
                remove(d, 'a Nova instance of this devcloud or of none')
            elif common.D + '/' in d.xml:
                remove(d, 'its files are in %s' % common.D)


SERVICE = Libvirt()
