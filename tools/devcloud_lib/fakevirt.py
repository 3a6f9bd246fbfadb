"""devcloud's fake compute driver: nova's FakeDriverWithoutFakeNodes whose
instances own real disk files, whose snapshots upload those disks to Glance
like libvirt, and whose rescue "boots" an installer ISO that is driven by a
file on the ISO itself (/ISOPLUGIN.CFG).

Loaded by nova_compute_fake.py as nova.virt.devcloud_fake
([DEFAULT]compute_driver = devcloud_fake.DevcloudFakeDriver).
The contract is documented in README.rst ("fake driver contract"); the
isoplugin build pipeline's functional tests depend on it.

Per instance, under [DEFAULT]instances_path/<uuid>/:
    disk          the root disk (raw, sparse, grown to flavor root_gb)
    cdrom.iso     the ISO when the server was booted from an iso image
    disk.eph0     flavor ephemeral disk (blank, sparse)
    rescue.iso    the rescue image while in rescue (any format, named .iso)
    console.log   what get_console_output returns
    instance.json state kept across nova-compute restarts

A server booted from a Cinder volume (devcloud with volumes=ceph) has no
local root disk: its root is the volume's RBD image, which the installer
writes and the boot reads, through librbd (Debian's rados/rbd bindings,
linked into the service venv) as the volume's connection info says (pool
and image name, Ceph user; the cluster is the devcloud's, etc/ceph/).
Volume attach and detach are Nova's fake ones (the attachment is real in
Cinder; no guest sees the disk).
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from oslo_log import log as logging

from nova.compute import power_state
from nova.compute import task_states
import nova.conf
from nova import exception
from nova.image import glance
from nova.virt import event as virtevent
from nova.virt import fake

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)

INSTALLED_MAGIC = b'ISOPLUGIN-FAKE-INSTALLED\n'
DEFAULT_MARKER = 'INSTALLED-SYSTEM-BOOTED'
CFG_PATH = '/ISOPLUGIN.CFG;1'
SNAPSHOT_FORMAT = 'qcow2'  # like libvirt's default (qcow2 image backend)
HEADER_SIZE = 4096


def ceph_conf():
    """The devcloud's ceph.conf (etc/ceph/ of the instances_path's D).

    [DEFAULT]instances_path is <.devcloud>/state/nova*/instances.
    """
    d = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(CONF.instances_path))))
    return os.path.join(d, 'etc', 'ceph', 'ceph.conf')


class RBDDisk:
    """An RBD image as the fake driver's root disk (read/write a header)."""

    def __init__(self, name, user):
        # connection_info data 'name' is "<pool>/<image>"
        self.pool, _, self.image = name.partition('/')
        self.user = user

    @contextlib.contextmanager
    def _open(self):
        import rados
        import rbd

        cluster = rados.Rados(conffile=ceph_conf(), rados_id=self.user)
        cluster.connect(timeout=10)
        try:
            ioctx = cluster.open_ioctx(self.pool)
            try:
                with rbd.Image(ioctx, self.image) as img:
                    yield img
            finally:
                ioctx.close()
        finally:
            cluster.shutdown()

    def read_header(self):
        with self._open() as img:
            return img.read(0, min(HEADER_SIZE, img.size()))

    def write_header(self, data):
        with self._open() as img:
            img.write(data, 0)
            img.flush()

    def __str__(self):
        return 'rbd:%s/%s' % (self.pool, self.image)


class FakeInstallerError(Exception):
    pass


class FakeSnapshotError(Exception):
    pass


def read_installed_header(path):
    """Parse the header the fake installer writes.

    :param path: a file, or an RBDDisk.
    :returns: {'marker': ..., 'snapshot': ...} when the disk carries an
        installed system written by the fake installer, else None.
    """
    try:
        if isinstance(path, RBDDisk):
            head = path.read_header()
        else:
            with open(path, 'rb') as f:
                head = f.read(HEADER_SIZE)
    except Exception as e:  # OSError, rados/rbd errors
        LOG.warning('devcloud_fake: cannot read %s: %s', path, e)
        return None
    if not head.startswith(INSTALLED_MAGIC):
        return None
    out = {}
    for line in head[len(INSTALLED_MAGIC):].split(b'\n'):
        line = line.decode('utf-8', 'replace')
        if '=' not in line or '\0' in line:
            break
        k, v = line.split('=', 1)
        out[k.strip()] = v.strip()
    out.setdefault('marker', DEFAULT_MARKER)
    return out


def read_iso_cfg(path):
    """(volume id, dict of /ISOPLUGIN.CFG or None when absent)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        volid = iso.pvd.volume_identifier.decode('ascii', 'replace').strip()
        buf = io.BytesIO()
        try:
            iso.get_file_from_iso_fp(buf, iso_path=CFG_PATH)
        except pycdlib.pycdlibexception.PyCdlibException:
            return volid, None
    finally:
        iso.close()
    cfg = {}
    for line in buf.getvalue().decode('utf-8', 'replace').splitlines():
        line = line.strip()
        if line and not line.startswith('#') and '=' in line:
            k, v = line.split('=', 1)
            cfg[k.strip()] = v.strip()
    return volid, cfg


class DevcloudFakeDriver(fake.FakeDriverWithoutFakeNodes):

    capabilities = dict(
        fake.FakeDriverWithoutFakeNodes.capabilities,
        supports_image_type_qcow2=True,
        supports_image_type_iso=True,
        # stable rescue of volume-backed servers (the nova-volume backend)
        supports_bfv_rescue=True,
    )

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only=read_only)
        self._image_api = glance.API()
        self._lock = threading.RLock()
        # uuid -> generation of the current rescue; a background installer
        # only acts while its generation is still the current one
        self._rescue_gen = {}

    # ------------------------------------------------------------ files
    def _dir(self, uuid):
        return os.path.join(CONF.instances_path, uuid)

    def _path(self, uuid, name):
        return os.path.join(self._dir(uuid), name)

    def _console(self, uuid, line):
        stamp = time.strftime('%H:%M:%S')
        with self._lock, open(self._path(uuid, 'console.log'), 'a') as f:
            f.write('[%s] %s\n' % (stamp, line))

    def _save(self, uuid, **extra):
        with self._lock:
            inst = self.instances.get(uuid)
            if inst is None:
                return
            p = self._path(uuid, 'instance.json')
            data = {}
            if os.path.exists(p):
                with open(p) as f:
                    data = json.load(f)
            data.update(extra)
            data.update(
                {'uuid': uuid, 'name': inst.name, 'power_state': inst.state}
            )
            tmp = p + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(data, f)
            os.replace(tmp, p)

    def _meta(self, uuid):
        try:
            with open(self._path(uuid, 'instance.json')) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _set_state(self, uuid, state, **extra):
        with self._lock:
            if uuid in self.instances:
                self.instances[uuid].state = state
                self._save(uuid, **extra)

    @staticmethod
    def _grow(path, gb):
        size = gb * 1024**3
        if size and os.path.getsize(path) < size:
            with open(path, 'r+b') as f:
                f.truncate(size)

    @staticmethod
    def _blank(path, gb):
        with open(path, 'wb') as f:
            f.truncate(max(gb, 0) * 1024**3)

    def _download_raw(self, context, image_id, disk_format, dest):
        """Download an image to dest as raw (qemu-img convert if needed)."""
        if disk_format in (None, 'raw', 'iso'):
            self._image_api.download(context, image_id, dest_path=dest)
            return
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix='.dl-')
        os.close(fd)
        try:
            self._image_api.download(context, image_id, dest_path=tmp)
            subprocess.run(
                ['qemu-img', 'convert', '-O', 'raw', tmp, dest],
                check=True,
                capture_output=True,
            )
        finally:
            os.unlink(tmp)

    def _root(self, uuid):
        """The root disk: the boot volume's RBDDisk, else the file."""
        rbd_root = self._meta(uuid).get('root_rbd')
        if rbd_root:
            return RBDDisk(rbd_root['name'], rbd_root['user'])
        return self._path(uuid, 'disk')

    @staticmethod
    def _boot_volume(block_device_info):
        """{'name', 'user'} of an RBD boot volume, or None."""
        for bdm in (block_device_info or {}).get('block_device_mapping') or []:
            info = bdm.get('connection_info') or {}
            if bdm.get('boot_index') == 0 and (
                    info.get('driver_volume_type') == 'rbd'):
                data = info.get('data') or {}
                return {'name': data.get('name'),
                        'user': data.get('auth_username')}
        return None

    def _boot_disk(self, uuid, how):
        """Console lines of a guest booting its root disk."""
        self._console(uuid, 'fake BIOS: booting from %s' % how)
        if how == 'disk':
            hdr = read_installed_header(self._root(uuid))
            if hdr:
                self._console(uuid, hdr['marker'])

    # ------------------------------------------------------------ lifecycle
    def init_host(self, host):
        super().init_host(host)
        base = CONF.instances_path
        n = 0
        if os.path.isdir(base):
            for uuid in os.listdir(base):
                meta = self._meta(uuid)
                if not meta:
                    continue
                state = meta.get('power_state', power_state.RUNNING)
                self.instances[uuid] = fake.FakeInstance(
                    meta.get('name', uuid), state, uuid
                )
                fl = meta.get('flavor') or {}
                self.resources.claim(
                    vcpus=fl.get('vcpus', 0),
                    mem=fl.get('memory_mb', 0),
                    disk=fl.get('root_gb', 0),
                )
                n += 1
        LOG.info('devcloud_fake: restored %d instance(s) from %s', n, base)

    def spawn(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        allocations,
        network_info=None,
        block_device_info=None,
        power_on=True,
        accel_info=None,
    ):
        uuid = instance.uuid
        d = self._dir(uuid)
        os.makedirs(d, exist_ok=True)
        image_id = image_meta.id if image_meta.obj_attr_is_set('id') else None
        fmt = (
            image_meta.disk_format
            if image_meta.obj_attr_is_set('disk_format')
            else None
        )
        flavor = instance.flavor
        disk = os.path.join(d, 'disk')
        boot_from = 'disk'
        root_rbd = self._boot_volume(block_device_info)
        if root_rbd:  # boot from a Ceph volume: the root is its RBD image
            self._blank(disk, 0)
        elif image_id and fmt == 'iso':
            self._image_api.download(
                context, image_id, dest_path=os.path.join(d, 'cdrom.iso')
            )
            self._blank(disk, flavor.root_gb)
            boot_from = 'cdrom'
        elif image_id:
            self._download_raw(context, image_id, fmt, disk)
            self._grow(disk, flavor.root_gb)
        else:  # boot from volume: no local root disk
            self._blank(disk, 0)
        if flavor.ephemeral_gb:
            self._blank(os.path.join(d, 'disk.eph0'), flavor.ephemeral_gb)
        super().spawn(
            context,
            instance,
            image_meta,
            injected_files,
            admin_password,
            allocations,
            network_info=network_info,
            block_device_info=block_device_info,
            power_on=power_on,
            accel_info=accel_info,
        )
        self._save(
            uuid,
            flavor={
                'vcpus': flavor.vcpus,
                'memory_mb': flavor.memory_mb,
                'root_gb': flavor.root_gb,
            },
            image_id=image_id,
            boot=boot_from,
            rescue=False,
            root_rbd=root_rbd,
        )
        if power_on:
            self._boot_disk(uuid, boot_from)
        LOG.info(
            'devcloud_fake: spawned from %s image %s: %s',
            fmt,
            image_id,
            sorted(os.listdir(d)),
            instance=instance,
        )

    def power_off(self, instance, timeout=0, retry_interval=0):
        super().power_off(instance, timeout, retry_interval)
        self._save(instance.uuid)
        self._console(instance.uuid, 'fake ACPI: power off')

    def power_on(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        accel_info=None,
        share_info=None,
    ):
        super().power_on(
            context,
            instance,
            network_info,
            block_device_info=block_device_info,
            accel_info=accel_info,
            share_info=share_info,
        )
        self._save(instance.uuid)
        self._boot_disk(
            instance.uuid, self._meta(instance.uuid).get('boot', 'disk')
        )

    def reboot(
        self,
        context,
        instance,
        network_info,
        reboot_type,
        block_device_info=None,
        bad_volumes_callback=None,
        accel_info=None,
        share_info=None,
    ):
        if instance.uuid in self.instances:
            self._console(
                instance.uuid, 'fake ACPI: %s reboot' % reboot_type.lower()
            )
        super().reboot(
            context,
            instance,
            network_info,
            reboot_type,
            block_device_info=block_device_info,
            bad_volumes_callback=bad_volumes_callback,
            accel_info=accel_info,
            share_info=share_info,
        )

    def destroy(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        destroy_disks=True,
        destroy_secrets=True,
    ):
        with self._lock:
            self._rescue_gen.pop(instance.uuid, None)
        super().destroy(
            context,
            instance,
            network_info,
            block_device_info=block_device_info,
            destroy_disks=destroy_disks,
            destroy_secrets=destroy_secrets,
        )
        if destroy_disks:
            shutil.rmtree(self._dir(instance.uuid), ignore_errors=True)

    def get_console_output(self, context, instance):
        try:
            with open(self._path(instance.uuid, 'console.log'), 'rb') as f:
                return f.read()
        except FileNotFoundError:
            return b''

    # ------------------------------------------------------------ rescue
    def rescue(
        self,
        context,
        instance,
        network_info,
        image_meta,
        rescue_password,
        block_device_info,
        share_info,
    ):
        uuid = instance.uuid
        props = image_meta.properties
        image_id = image_meta.id if image_meta.obj_attr_is_set('id') else None
        fmt = (
            image_meta.disk_format
            if image_meta.obj_attr_is_set('disk_format')
            else None
        )
        LOG.info(
            'devcloud_fake: rescue image %s disk_format=%s '
            'hw_rescue_device=%s hw_rescue_bus=%s',
            image_id,
            fmt,
            props.get('hw_rescue_device'),
            props.get('hw_rescue_bus'),
            instance=instance,
        )
        rescue_file = self._path(uuid, 'rescue.iso')
        if image_id:
            self._image_api.download(context, image_id, dest_path=rescue_file)
        with self._lock:
            gen = self._rescue_gen.get(uuid, 0) + 1
            self._rescue_gen[uuid] = gen
        self._set_state(uuid, power_state.RUNNING, rescue=True)
        if fmt != 'iso' or not image_id:
            self._console(
                uuid, 'fake BIOS: booting rescue image %s' % image_id
            )
            return
        self._console(
            uuid,
            'fake BIOS: booting from cdrom (rescue image %s, '
            'hw_rescue_device=%s hw_rescue_bus=%s)'
            % (
                image_id,
                props.get('hw_rescue_device'),
                props.get('hw_rescue_bus'),
            ),
        )
        try:
            volid, cfg = read_iso_cfg(rescue_file)
        except Exception as e:
            self._console(uuid, 'fake installer: cannot read the ISO: %s' % e)
            LOG.warning(
                'devcloud_fake: cannot read ISO %s: %s',
                image_id,
                e,
                instance=instance,
            )
            return
        if cfg is None:
            self._console(
                uuid,
                'fake installer: %s started, no /ISOPLUGIN.CFG: '
                'waiting for a human' % volid,
            )
            return
        action = cfg.get('action', 'install')
        self._console(
            uuid, 'fake installer: %s started (action=%s)' % (volid, action)
        )
        if action == 'fail':
            msg = cfg.get('message', 'fake installer failed')
            self._console(uuid, 'fake installer: %s failed: %s' % (volid, msg))
            raise FakeInstallerError(msg)
        if action == 'hang':
            self._console(
                uuid, 'fake installer: %s hangs (action=hang)' % volid
            )
            return
        if action != 'install':
            self._console(
                uuid, 'fake installer: unknown action %r: waiting' % action
            )
            return
        try:
            delay = float(cfg.get('delay', 2))
        except ValueError:
            delay = 2.0
        t = threading.Thread(
            target=self._install,
            name='fake-installer-' + uuid,
            args=(uuid, gen, volid, cfg, delay),
            daemon=True,
        )
        t.start()

    def _install(self, uuid, gen, volid, cfg, delay):
        try:
            self._console(
                uuid, 'fake installer: %s installing, %.1fs' % (volid, delay)
            )
            time.sleep(delay)
            with self._lock:
                if (
                    self._rescue_gen.get(uuid) != gen
                    or uuid not in self.instances
                ):
                    LOG.info(
                        'devcloud_fake: install on %s abandoned '
                        '(unrescued or deleted)',
                        uuid,
                    )
                    return
                hdr = (
                    INSTALLED_MAGIC
                    + (
                        'marker=%s\n' % cfg.get('marker', DEFAULT_MARKER)
                    ).encode()
                )
                if cfg.get('snapshot') == 'fail':
                    hdr += b'snapshot=fail\n'
                root = self._root(uuid)
                if isinstance(root, RBDDisk):
                    root.write_header(hdr)
                else:
                    with open(root, 'r+b') as f:
                        f.write(hdr)
                        f.flush()
                        os.fsync(f.fileno())
                if cfg.get('poweroff') == 'no':
                    # an interactive install: the person at the console
                    # says when it is done (openstack iso build finish)
                    self._console(
                        uuid,
                        'fake installer: %s wrote the system to disk, '
                        'waiting for a human' % volid,
                    )
                    return
                self._console(
                    uuid,
                    'fake installer: %s wrote the system to disk, '
                    'powering off' % volid,
                )
                self._set_state(uuid, power_state.SHUTDOWN, installed=True)
            LOG.info(
                'devcloud_fake: fake installer finished on %s; emitting '
                'EVENT_LIFECYCLE_STOPPED',
                uuid,
            )
            self.emit_event(
                virtevent.LifecycleEvent(
                    uuid, virtevent.EVENT_LIFECYCLE_STOPPED
                )
            )
        except Exception:
            LOG.exception('devcloud_fake: fake installer failed on %s', uuid)

    def unrescue(self, context, instance):
        uuid = instance.uuid
        with self._lock:
            self._rescue_gen[uuid] = self._rescue_gen.get(uuid, 0) + 1
        super().unrescue(context, instance)
        try:
            os.unlink(self._path(uuid, 'rescue.iso'))
        except FileNotFoundError:
            pass
        self._save(uuid, rescue=False)
        self._boot_disk(uuid, 'disk')

    # ------------------------------------------------------------ snapshot
    def snapshot(self, context, instance, image_id, update_task_state):
        uuid = instance.uuid
        if uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=uuid)
        snapshot = self._image_api.get(context, image_id)
        disk = self._path(uuid, 'disk')
        hdr = read_installed_header(disk)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        if hdr and hdr.get('snapshot') == 'fail':
            raise FakeSnapshotError(
                'fake snapshot failure requested by the '
                'installed disk (snapshot=fail)'
            )
        image_meta = instance.image_meta
        metadata = {
            'status': 'active',
            'name': snapshot['name'],
            'disk_format': SNAPSHOT_FORMAT,
            'container_format': (
                image_meta.container_format
                if image_meta.obj_attr_is_set('container_format')
                else 'bare'
            ),
            'properties': {
                'image_location': 'snapshot',
                'image_state': 'available',
                'owner_id': instance.project_id,
            },
        }
        for k in ('kernel_id', 'ramdisk_id', 'os_type'):
            if getattr(instance, k, None):
                metadata['properties'][k] = getattr(instance, k)
        if metadata['container_format'] not in ('bare', 'ovf'):
            metadata['container_format'] = 'bare'
        fd, out = tempfile.mkstemp(dir=self._dir(uuid), prefix='.snap-')
        os.close(fd)
        try:
            subprocess.run(
                [
                    'qemu-img',
                    'convert',
                    '-f',
                    'raw',
                    '-O',
                    SNAPSHOT_FORMAT,
                    disk,
                    out,
                ],
                check=True,
                capture_output=True,
            )
            update_task_state(
                task_state=task_states.IMAGE_UPLOADING,
                expected_state=task_states.IMAGE_PENDING_UPLOAD,
            )
            with open(out, 'rb') as f:
                self._image_api.update(context, image_id, metadata, f)
            LOG.info(
                'devcloud_fake: uploaded %s as %s (%d bytes) to image %s',
                disk,
                SNAPSHOT_FORMAT,
                os.path.getsize(out),
                image_id,
                instance=instance,
            )
        finally:
            os.unlink(out)
