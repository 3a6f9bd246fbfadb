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

"""How isoplugin uses Glance: group ``[glance]``."""

from oslo_config import cfg

from isoplugin.conf import retries

GROUP = 'glance'

#: Default of ``property_prefix``.
DEFAULT_PREFIX = 'isoplugin_'

OPTS = [
    cfg.StrOpt('property_prefix',
               default=DEFAULT_PREFIX,
               help='Prefix of the image properties isoplugin owns: the '
                    'catalog flags (featured, extractable, '
                    'password_enabled, retired), the media marker and the '
                    'build provenance.'),
    cfg.BoolOpt('hide_isos',
                default=True,
                help='Register ISOs with os_hidden=true, so that ordinary '
                     'image lists do not show installer media.'),
    cfg.StrOpt('hw_cdrom_bus',
               default='sata',
               choices=['ide', 'sata', 'scsi', 'usb', 'virtio'],
               help='hw_cdrom_bus property given to registered ISOs: the '
                    'bus the hypervisor attaches the ISO to.'),
    cfg.StrOpt('hw_rescue_bus',
               default='sata',
               choices=['ide', 'sata', 'scsi', 'usb', 'virtio'],
               help='hw_rescue_bus property given to registered ISOs, used '
                    'when Nova attaches the ISO through stable device '
                    'rescue (hw_rescue_device=cdrom).'),
    cfg.StrOpt('default_hash_algorithm',
               default='sha512',
               choices=['md5', 'sha1', 'sha256', 'sha384', 'sha512'],
               help='Hash the client computes while uploading, to compare '
                    'with the os_hash_value Glance reports, when the cloud '
                    'does not tell which algorithm it uses.'),
    cfg.IntOpt('upload_chunk_size',
               default=64 * 1024, min=4096,
               help='Bytes read from the ISO file at a time while '
                    'uploading, and the size of each HTTP chunk when '
                    'chunked_upload is on; about three chunks are in '
                    'memory at once (read, hashed, sent). 64 KiB, as '
                    'glanceclient sends, keeps the client small; bigger '
                    'chunks do not make the upload faster (Glance is the '
                    'bottleneck) and uWSGI refuses chunks over its '
                    'chunked-input-limit.'),
    cfg.BoolOpt('chunked_upload',
                default=True,
                help='Send the bytes of an ISO to Glance with '
                     '"Transfer-Encoding: chunked", as glanceclient does, '
                     'rather than with a Content-Length. Glance reads a '
                     'chunked body faster (measured on gunicorn: 1 GiB in '
                     'about 5.2 s instead of 7.6 s); the client still '
                     'checks that every byte of the file was sent and '
                     'verifies the hash. Turn it off for a Glance behind a '
                     'proxy or WSGI server that refuses chunked request '
                     'bodies (for example mod_wsgi without '
                     'WSGIChunkedRequest On).'),
    cfg.IntOpt('import_timeout',
               default=3600, min=10,
               help='Seconds to wait for a web-download import (Glance '
                    'fetching an ISO from a URL) to finish.'),
    cfg.IntOpt('copy_timeout',
               default=3600, min=10,
               help='Seconds to wait for a copy-image import to reach '
                    'every requested store.'),
    cfg.IntOpt('url_timeout',
               default=30, min=1,
               help='Seconds to wait for a web server to answer when an '
                    'ISO URL is checked or streamed through the client.'),
    cfg.BoolOpt('use_web_download',
                default=True,
                help='Let Glance fetch ISOs registered from a URL itself '
                     '(web-download import) when the cloud offers that '
                     'import method; when false, or when the cloud does '
                     'not offer it, the client streams the URL to Glance.'),
    cfg.IntOpt('cleanup_timeout',
               default=300, min=0,
               help='Seconds to keep trying to delete the image of a '
                    'registration that failed, while Glance does not '
                    'answer (a Glance restart during the upload). After '
                    'that the image is left in queued or saving, and '
                    '"openstack iso delete --incomplete" deletes it.'),
    cfg.IntOpt('upload_retries',
               default=4, min=0,
               help='Times the data of an ISO is sent again from its '
                    'start when an upload failed on the server side (HTTP '
                    '5xx, for example while Keystone restarts and Glance '
                    'cannot check the quota) or the connection failed, and '
                    'Glance then shows the image still queued: it kept '
                    'none of the data. The tries are connect_retry_delay '
                    'apart, or 2 s doubling (4 retries: 30 s). An image '
                    'left in saving is never sent again: the upload fails '
                    'and the image is deleted.'),
] + retries.retry_opts(
    'Glance',
    'Creating an image is never retried, and sending its data is sent '
    'again only when Glance says it kept none of it (the image is still '
    'queued after a failure of the server): see upload_retries.')


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]
