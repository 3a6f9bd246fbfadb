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

"""Registering an installer ISO in the catalog, from a file or a URL.

A :class:`RegistrationRequest` says what to register; a
:class:`Registration` checks it, then runs the one upload path::

    check the input -> probe the source (is it an ISO? how big?) ->
    check the name and the quota -> POST the image record ->
    give way to an image of the same name created earlier ->
    send the data (PUT through the client, or a Glance import) ->
    verify the hashes -> give way again -> protect (only once verified)

Glance has no unique names: two clients registering one name at the same
moment both pass the name check. Each then looks again after its POST, and
the one whose image was created later (``created_at``, then the ID)
deletes its image and fails with
:class:`~isoplugin.exception.RegistrationRace`.

Any failure after the record was created deletes it, trying again for
``[glance] cleanup_timeout`` seconds while Glance does not answer. Usage::

    from isoplugin import catalog, cloud, conf, registration

    cat = catalog.Catalog(cloud.connect('mycloud'), conf.load_config())
    request = registration.RegistrationRequest(
        'ubuntu-24.04', filename='ubuntu-24.04.1.iso')
    iso = registration.Registration(cat).register(request)
"""

import contextlib
import dataclasses
import functools
import os
import stat
import time
import typing
import urllib.parse

from oslo_log import log as logging

from isoplugin import catalog
from isoplugin import exception
from isoplugin import glance
from isoplugin.i18n import _
from isoplugin import isoinfo
from isoplugin import upload

LOG = logging.getLogger(__name__)

MIB = 1024 * 1024

#: First pause, in seconds, before an upload Glance kept nothing of is
#: sent again (then doubling), when ``[glance] connect_retry_delay`` is
#: unset.
UPLOAD_RETRY_DELAY = 2.0
#: Bytes of a URL read to check that it is an ISO: the volume descriptors
#: and the UDF anchor (sector 256) with the descriptors after it.
URL_HEAD_BYTES = 272 * isoinfo.SECTOR
#: Descriptors Glance's format inspection accepts in sector 16.
GLANCE_ISO_SIGNATURES = ('CD001', 'NSR02', 'NSR03')
#: Value of ``<prefix>profile`` when no install profile recognises the ISO.
NO_PROFILE = 'none'
#: Seconds between the POST of an image and the last look for an image of
#: the same name created earlier. Glance's ``created_at`` has whole
#: seconds; an image created after that look is sure to have a later
#: ``created_at``, so it gives way (its own look sees this one).
RACE_SETTLE = 2.0
#: Largest checksum list (SHA256SUMS...) read from a --checksum-url.
SUMS_MAX_BYTES = 1024 * 1024


@dataclasses.dataclass
class RegistrationRequest(object):
    """What to register: the source and the ISO's metadata.

    :ivar name: the ISO's name, unique among the project's ISOs.
    :ivar filename: path of a local ISO file (or block device).
    :ivar url: http(s) URL of an ISO (give a file or a URL).
    :ivar description: free text, stored as property ``description``.
    :ivar os_type: ``linux`` or ``windows``; detected when ``None``.
    :ivar os_distro: e.g. ``ubuntu``; detected when ``None``.
    :ivar os_version: e.g. ``24.04``; detected when ``None``.
    :ivar architecture: e.g. ``x86_64``; detected when ``None``.
    :ivar visibility: private, shared, community or public.
    :ivar protected: protect the ISO against deletion (set once the
        upload is verified).
    :ivar tags: list of tags.
    :ivar min_disk: minimum disk (GiB) of a server built from it.
    :ivar min_ram: minimum RAM (MiB) of a server built from it.
    :ivar featured: portal flag ``<prefix>featured``.
    :ivar extractable: portal flag ``<prefix>extractable`` (download
        allowed).
    :ivar password_enabled: portal flag ``<prefix>password_enabled``.
    :ivar hidden: ``os_hidden``; default ``[glance] hide_isos``.
    :ivar checksum: expected checksum ``ALGO:HEX`` (md5, sha1, sha256,
        sha384, sha512).
    :ivar checksum_url: URL (or local path) of a checksum list as
        distributions publish them (``SHA256SUMS``, ``SHA512SUMS``); the
        expected checksum is the line of the ISO's file name.
    :ivar store: Glance store to upload into (default store if ``None``).
    :ivar use_import: for URLs: ``True`` forces web-download, ``False``
        streams through the client, ``None`` decides from the cloud's
        import methods and ``[glance] use_web_download``.
    """

    name: str
    filename: typing.Optional[str] = None
    url: typing.Optional[str] = None
    description: typing.Optional[str] = None
    os_type: typing.Optional[str] = None
    os_distro: typing.Optional[str] = None
    os_version: typing.Optional[str] = None
    architecture: typing.Optional[str] = None
    visibility: str = 'private'
    protected: bool = False
    tags: typing.Sequence[str] = ()
    min_disk: typing.Optional[int] = None
    min_ram: typing.Optional[int] = None
    featured: bool = False
    extractable: bool = True
    password_enabled: bool = False
    hidden: typing.Optional[bool] = None
    checksum: typing.Optional[str] = None
    checksum_url: typing.Optional[str] = None
    store: typing.Optional[str] = None
    use_import: typing.Optional[bool] = None


class _FileSource(object):
    """A local file: checked on open, read as it is sent."""

    def __init__(self, filename):
        self.label = filename
        self.basename = os.path.basename(filename)
        try:
            st = os.stat(filename)
        except OSError as e:
            raise exception.SourceUnreadable(
                source=filename, reason=e.strerror) from e
        if stat.S_ISDIR(st.st_mode):
            raise exception.SourceUnreadable(
                source=filename, reason=_('it is a directory'))
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise exception.SourceUnreadable(
                source=filename,
                reason=_('it is not a regular file or a block device'))
        try:
            self.fileobj = open(filename, 'rb')
        except OSError as e:
            raise exception.SourceUnreadable(
                source=filename, reason=e.strerror) from e
        try:
            self.size = self.fileobj.seek(0, os.SEEK_END)
            self.fileobj.seek(0)
            self.info = isoinfo.inspect(self.fileobj, name=filename)
        except BaseException:
            self.fileobj.close()
            raise

    @contextlib.contextmanager
    def reader(self, timeout):
        """Yield ``read(n)`` of the data, from its start."""
        self.fileobj.seek(0)
        yield self.fileobj.read

    def close(self):
        self.fileobj.close()


class _URLSource(object):
    """An http(s) URL: its first bytes checked, fetched again to send."""

    fileobj = None

    def __init__(self, url, timeout):
        import io

        self.label = url
        parts = urllib.parse.urlsplit(url)
        self.basename = urllib.parse.unquote(parts.path.rpartition('/')[2])
        if parts.scheme not in ('http', 'https') or not parts.netloc:
            raise exception.InvalidInput(
                reason=_("'%s': only http:// and https:// URLs can be "
                         "registered") % url)
        with _http_get(url, timeout, headers={
                'Range': 'bytes=0-%d' % (URL_HEAD_BYTES - 1)}) as resp:
            size = None
            if resp.status_code == 206:
                total = resp.headers.get('Content-Range', '').rpartition(
                    '/')[2]
                size = int(total) if total.isdigit() else None
            elif resp.headers.get('Content-Length', '').isdigit():
                size = int(resp.headers['Content-Length'])
            head = resp.raw.read(URL_HEAD_BYTES, decode_content=True)
        self.info = isoinfo.inspect(io.BytesIO(head), name=url,
                                    size=size or len(head))
        self.info.size = size
        self.size = size

    @contextlib.contextmanager
    def reader(self, timeout):
        """GET the URL; yield ``read(n)`` of the body."""
        with _http_get(self.label, timeout) as resp:
            yield functools.partial(resp.raw.read, decode_content=True)

    def close(self):
        pass


def _hash_file(fileobj, algo, chunk_size=4 * MIB):
    import hashlib

    h = hashlib.new(algo)
    fileobj.seek(0)
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            break
        h.update(chunk)
    return {algo: h.hexdigest()}


class Registration(object):
    """Registers ISOs in a catalog.

    :param cat: the :class:`isoplugin.catalog.Catalog` to register into.
    """

    #: Run the pre-upload checks' requests in parallel (tests turn this
    #: off to get the requests in a fixed order).
    parallel_checks = True

    def __init__(self, cat):
        self.catalog = cat
        self.conf = cat.conf

    @property
    def conn(self):
        return self.catalog.conn

    def register(self, request, progress=None, notify=None):
        """Register an installer ISO from a local file or a URL.

        A file is checked to be an ISO 9660 or UDF image before anything
        is sent, then streamed to Glance (chunked, or with a
        Content-Length: ``[glance] chunked_upload``) while it is hashed in
        the same pass; when Glance is done the client compares its hash
        with the image's ``os_hash_value`` (and with ``checksum`` when
        given). A URL is checked (scheme, reachability, size, the first
        bytes being an ISO), then imported by Glance itself (web-download)
        when the cloud offers that, or streamed through the client. Any
        failure after the image record was created deletes it.

        :param request: a :class:`RegistrationRequest`.
        :param progress: ``progress(done, total)`` callable for uploads
            through the client (``total`` may be ``None``).
        :param notify: ``notify(text)`` callable told what was detected
            and how the ISO is being registered.
        :returns: the new ISO, an :class:`openstack.image.v2.image.Image`.
        :raises isoplugin.exception.InvalidInput: bad arguments, not an
            ISO, unreadable file, unusable URL.
        :raises isoplugin.exception.DuplicateISO: the name is taken.
        :raises isoplugin.exception.QuotaExceeded: over the image quota.
        :raises isoplugin.exception.ChecksumMismatch: hash mismatch (the
            image was deleted).
        :raises isoplugin.exception.CloudError: Glance refused or failed.
        """
        fields = {'os_type': request.os_type,
                  'os_distro': request.os_distro,
                  'os_version': request.os_version,
                  'architecture': request.architecture,
                  'visibility': request.visibility,
                  'min_disk': request.min_disk, 'min_ram': request.min_ram}
        catalog.check_fields(fields)
        if (request.filename is None) == (request.url is None):
            raise exception.InvalidInput(
                reason=_('give either a file or a URL'))
        if request.checksum and request.checksum_url:
            raise exception.InvalidInput(
                reason=_('give a checksum or a checksum URL, not both'))
        expected = (upload.parse_checksum(request.checksum)
                    if request.checksum else None)
        name = request.name
        if not name or len(name) > catalog.NAME_MAX:
            self.catalog.check_name(name)

        if request.filename is not None:
            source = _FileSource(request.filename)
        else:
            source = _URLSource(request.url, self.conf.glance.url_timeout)
        try:
            self._check_source(source, fields, notify)
            if request.checksum_url:
                expected = self._checksum_from_list(
                    request.checksum_url, source.basename, notify)
            profile = self._detect_profile(source, notify)
            self._check_name_and_quota(name, source.size)
            body = self._image_body(request, fields, profile)
            return self._upload(request, body, source, expected, progress,
                                notify)
        finally:
            source.close()

    # -- checks -----------------------------------------------------------

    def _check_source(self, source, fields, notify):
        """Refuse what Glance would refuse; fill in the detected fields."""
        info = source.info
        if info.first_descriptor not in GLANCE_ISO_SIGNATURES:
            # oslo.utils' ISOInspector, used by Glance to check that
            # uploads match disk_format, looks at sector 16 only.
            raise exception.NotAnISO(
                source=source.label,
                reason=_('it is a UDF-only image starting with a %s '
                         'descriptor; Glance recognises ISO images '
                         'by a CD001, NSR02 or NSR03 descriptor in '
                         'sector 16 and would refuse it (write it '
                         'as a UDF bridge image, e.g. xorriso/mkisofs '
                         '-udf)') % info.first_descriptor)
        # builds refuse an ISO with no El Torito boot record at once
        fields['bootable'] = info.bootable
        detected = {}
        for field in ('os_type', 'os_distro', 'os_version', 'architecture'):
            if fields[field] is None and getattr(info, field):
                fields[field] = getattr(info, field)
                detected[field] = getattr(info, field)
        _notify(notify, _('%(source)s: %(fmt)s image, volume label '
                          '"%(label)s"%(boot)s'),
                source=source.label,
                fmt=info.format.upper() + ('+UDF' if info.udf and
                                           info.format != 'udf' else ''),
                label=info.volume_id,
                boot=_(', bootable (%s)') % ', '.join(
                    info.boot_platforms or ['El Torito'])
                if info.bootable else '')
        if detected:
            _notify(notify, _('Detected: %(fields)s'),
                    fields=', '.join('%s=%s' % kv
                                     for kv in detected.items()))

    def _detect_profile(self, source, notify):
        """The install profile that recognises a local file, or ``none``.

        Only directory entries are looked up (the profiles' detection
        rules), so this costs a few sector reads. A URL is not looked into
        (``None``: no property).
        """
        if source.fileobj is None:
            return None
        from isoplugin import profiles

        try:
            with isoinfo.open_files(source.fileobj,
                                    name=source.label) as files:
                profile, match = profiles.detect(files)
        except exception.ProfileNotDetected as e:
            LOG.debug('No install profile recognises %(src)s: %(why)s',
                      {'src': source.label, 'why': e})
            _notify(notify, _('Install profile: none (no install profile '
                              'recognises this ISO; an unattended build '
                              'from it needs --profile)'))
            return NO_PROFILE
        except exception.InvalidInput as e:
            # a directory tree the reader cannot follow: the upload may
            # still be fine, only the family is unknown
            LOG.warning('Cannot look into %(src)s for its installer family: '
                        '%(why)s', {'src': source.label, 'why': e})
            return NO_PROFILE
        finally:
            source.fileobj.seek(0)
        _notify(notify, _('Install profile: %(profile)s (%(why)s)'),
                profile=profile.name, why='; '.join(match.looked_at))
        return profile.name

    def _checksum_from_list(self, url, basename, notify):
        """The expected checksum of ``basename`` in a checksum list."""
        text = _read_checksum_list(url, self.conf.glance.url_timeout)
        algo, value = upload.checksum_for(text, basename, source=url)
        _notify(notify, _('Expected %(algo)s of %(name)s from %(url)s'),
                algo=algo, name=basename, url=url)
        return algo, value

    def _check_quota(self, size):
        usage = self.catalog.usage()

        def over(resource, delta):
            entry = usage.get(resource)
            if not entry:
                return None
            limit = entry.get('limit')
            if limit is None or limit < 0:
                return None
            needed = entry.get('usage', 0) + delta
            if needed > limit:
                return needed, limit
            return None

        checks = [('image_count_total', 1)]
        if size is not None:
            checks.append(('image_size_total', -(-size // MIB)))
        for resource, delta in checks:
            result = over(resource, delta)
            if result:
                unit = ' MiB' if resource == 'image_size_total' else ''
                raise exception.QuotaExceeded(
                    resource=resource, needed='%d%s' % (result[0], unit),
                    limit='%d%s' % (result[1], unit))

    def _check_name_and_quota(self, name, size):
        """Both checks before an upload, their requests in parallel.

        ``/v2/info/usage`` is slow with unified limits (Glance asks
        Keystone for every limit), so the duplicate-name queries run while
        it is answered.
        """
        from concurrent import futures

        if not self.parallel_checks:
            self.catalog.check_name(name)
            self._check_quota(size)
            return
        with futures.ThreadPoolExecutor(max_workers=2) as pool:
            quota = pool.submit(self._check_quota, size)
            try:
                self.catalog.check_name(name)
            finally:
                # the quota answer is needed (or its error shown) either way
                quota_error = quota.exception()
        if quota_error is not None:
            raise quota_error

    # -- the upload -------------------------------------------------------

    def _image_body(self, request, fields, profile=None):
        conf = self.conf.glance
        prop = self.catalog.prop
        body = {
            'name': request.name,
            'disk_format': 'iso',
            'container_format': 'bare',
            'visibility': fields['visibility'] or 'private',
            'protected': False,
            'os_hidden': (conf.hide_isos if request.hidden is None
                          else bool(request.hidden)),
            'tags': list(request.tags or []),
            prop('media'): catalog.MEDIA,
            prop('featured'): str(bool(request.featured)).lower(),
            prop('extractable'): str(bool(request.extractable)).lower(),
            prop('password_enabled'): str(
                bool(request.password_enabled)).lower(),
            'hw_cdrom_bus': conf.hw_cdrom_bus,
            'hw_rescue_device': 'cdrom',
            'hw_rescue_bus': conf.hw_rescue_bus,
        }
        for key in ('os_type', 'os_distro', 'os_version', 'architecture'):
            if fields.get(key):
                body[key] = fields[key]
        for key in ('min_disk', 'min_ram'):
            if fields.get(key) is not None:
                body[key] = fields[key]
        if request.description:
            body['description'] = request.description
        if fields.get('bootable') is not None:
            body[prop('bootable')] = str(fields['bootable']).lower()
        if profile is not None:
            body[prop('profile')] = profile
        return body

    def _use_import(self, request, expected):
        """Whether Glance imports the URL itself (web-download)."""
        if request.url is None:
            return False
        if request.use_import is not None:
            return request.use_import
        use_import = (self.conf.glance.use_web_download and
                      'web-download' in self.catalog.import_methods())
        if expected and expected[0] not in (
                self.conf.glance.default_hash_algorithm, 'md5'):
            # Glance only reports md5 and its own hash: stream through
            # the client to compute the expected one.
            use_import = False
        return use_import

    def _upload(self, request, body, source, expected, progress, notify):
        """POST -> data (import or PUT) -> verify -> protect."""
        use_import = self._use_import(request, expected)
        if use_import:
            _notify(notify, _('Importing with Glance web-download'))
        elif request.url is not None:
            _notify(notify, _('Streaming the URL through the client'))
        forbidden = None
        if body['visibility'] == 'public':
            forbidden = _("only an administrator can make an ISO public "
                          "(Glance policy publicize_image); register it "
                          "as private, shared or community, or ask an "
                          "administrator. Glance said: %(reason)s")
        image = glance.create_image(self.conn, forbidden=forbidden,
                                    prefix=self.catalog.prefix, **body)
        created = time.monotonic()
        with self._cleanup_on_error(image.id):
            self._give_way(image)
            if use_import:
                glance.import_image(
                    self.conn, image, 'web-download', uri=request.url,
                    stores=[request.store] if request.store else None)
                image = self._wait_import(image.id, request.url,
                                          self.conf.glance.import_timeout)
                digests = None
            else:
                digests = self._put(image.id, source, request.store,
                                    expected, progress)
                image = glance.get_image(self.conn, image.id)
            self._verify(image, digests, expected, fileobj=source.fileobj,
                         notify=notify, source=source.label)
            time.sleep(max(0, created + RACE_SETTLE - time.monotonic()))
            self._give_way(image)
            if request.protected:
                image = glance.patch_image(
                    self.conn, image.id, set={'protected': True},
                    current=glance.flat(image)) or image
        return image

    def _give_way(self, image):
        """Fail if an image of the same name was created before this one.

        The optimistic check after creation: of two images of one name,
        the one created later (``created_at``, then the ID) gives way; the
        caller deletes it (:meth:`_cleanup_on_error`).

        :raises isoplugin.exception.RegistrationRace: this one gives way.
        """
        mine = (image.created_at or '', image.id)
        for other in self.catalog.list(name=image.name,
                                       owner=self.catalog.project_id()):
            if other.id != image.id and (other.created_at or '',
                                         other.id) < mine:
                LOG.info('Image %(other)s of the same name was created '
                         'before %(id)s: giving way',
                         {'other': other.id, 'id': image.id})
                raise exception.RegistrationRace(name=image.name,
                                                 id=other.id)

    def _put(self, image_id, source, store, expected, progress):
        """Stream the source to Glance, hashing it; return the digests.

        An upload that failed on Glance's side (HTTP 5xx, a connection
        lost) is sent again from the start, ``[glance] upload_retries``
        times, when Glance shows the image still queued afterwards: it kept
        none of the data (Glance puts an image back in queued when it
        fails to store it, for example while Keystone restarts and the
        quota cannot be checked). An image left in saving is not.
        """
        opts = self.conf.glance
        delay = opts.connect_retry_delay or UPLOAD_RETRY_DELAY
        for attempt in range(opts.upload_retries + 1):
            try:
                return self._put_once(image_id, source, store, expected,
                                      progress)
            except exception.CloudError as e:
                if (attempt >= opts.upload_retries or
                        not _server_side(e) or
                        not self._still_queued(image_id)):
                    raise
                LOG.warning('The upload of %(src)s failed (%(error)s) and '
                            'Glance kept none of it: sending it again in '
                            '%(delay)s s', {'src': source.label,
                                            'error': e, 'delay': delay})
                time.sleep(delay)
                delay = min(delay * 2, 60)

    def _still_queued(self, image_id):
        """Whether Glance shows the image queued (False when unknown)."""
        try:
            image = glance.get_image(self.conn, image_id)
        except exception.IsopluginException:
            LOG.debug('Cannot read image %(id)s after a failed upload',
                      {'id': image_id}, exc_info=True)
            return False
        return image.status == 'queued'

    def _put_once(self, image_id, source, store, expected, progress):
        """One upload of the whole source; return the digests."""
        algorithms = {self.conf.glance.default_hash_algorithm}
        if expected:
            algorithms.add(expected[0])
        with source.reader(self.conf.glance.url_timeout) as read:
            data = upload.HashingBody(
                read, source.size, algorithms,
                chunk_size=self.conf.glance.upload_chunk_size,
                progress=progress)
            try:
                glance.upload_data(self.conn, image_id, self._body(data),
                                   store=store)
            except exception.ConnectionLost as e:
                raise exception.ConnectionLost(
                    service=e.kwargs['service'], reason=e.kwargs['reason'],
                    during=_('the upload of %(src)s, after %(sent)d of '
                             '%(size)s MiB') % {
                        'src': source.label, 'sent': data.sent // MIB,
                        'size': '?' if source.size is None
                        else -(-source.size // MIB)}) from e
        return data.hexdigests()

    def _body(self, data):
        """What requests is given to send a HashingBody.

        A bare iterator is sent chunked (``[glance] chunked_upload``, and
        always when the size is unknown); the body itself has a length and
        is sent with a Content-Length.
        """
        if self.conf.glance.chunked_upload or data.size is None:
            return iter(data)
        return data

    @contextlib.contextmanager
    def _cleanup_on_error(self, image_id):
        """Delete the image when the registration fails, patiently.

        While Glance does not answer (it restarts), the delete is tried
        again for ``[glance] cleanup_timeout`` seconds. The error raised
        says what became of the image when that is not obvious.
        """
        try:
            yield
        except BaseException as error:
            LOG.info('Registration failed, deleting image %(id)s',
                     {'id': image_id})
            outcome = None
            try:
                glance.delete_patiently(
                    self.conn, image_id, self.conf.glance.cleanup_timeout,
                    interval=self.conf.isoplugin.poll_interval,
                    max_interval=self.conf.isoplugin.poll_max_interval)
                if isinstance(error, exception.ServiceUnavailable):
                    outcome = _('The incomplete image %s was deleted; run '
                                'the command again.') % image_id
            except exception.IsopluginException as e:
                LOG.debug('Deleting image %(id)s failed', {'id': image_id},
                          exc_info=True)
                outcome = _("The incomplete image %(id)s could not be "
                            "deleted (%(error)s); delete it with "
                            "'openstack iso delete --incomplete'.") % {
                    'id': image_id, 'error': e}
            if outcome and isinstance(error, exception.IsopluginException):
                error.msg = '%s %s' % (error.msg, outcome)
                error.args = (error.msg,)
            elif outcome:
                LOG.warning('%s', outcome)
            raise

    def _wait_import(self, image_id, what, timeout):
        """Wait for an import into an image to finish."""

        def check(image):
            props = glance.flat(image)
            if props.get('status') == 'active' and not props.get(
                    'os_glance_importing_to_stores'):
                failed = props.get('os_glance_failed_import')
                if failed:
                    raise exception.ImportFailed(
                        what=what, reason=_('failed for stores %s') % failed)
                return image
            if props.get('status') in ('queued', 'killed', 'deleted') and \
                    (props.get('os_glance_failed_import') or
                     self._task_failed(image_id)):
                raise exception.ImportFailed(
                    what=what, reason=self._task_failed(image_id) or
                    props.get('os_glance_failed_import'))
            return None

        return glance.wait_for_image(
            self.conn, image_id, check, timeout,
            _('the import of %s') % what,
            interval=self.conf.isoplugin.poll_interval,
            max_interval=self.conf.isoplugin.poll_max_interval)

    def _task_failed(self, image_id):
        """The message of the image's last failed import task, if any."""
        try:
            tasks = glance.image_tasks(self.conn, image_id)
        except exception.IsopluginException:
            return None
        for task in tasks:
            if task.get('status') == 'failure':
                return task.get('message') or _('the import task failed')
        return None

    def _verify(self, image, digests, expected, fileobj=None, notify=None,
                source=None):
        """Compare the client's hashes with Glance's and the expected one.

        :param digests: what the client computed while sending; ``None``
            when Glance fetched the data itself (web-download).
        """
        props = glance.flat(image)
        status = props.get('status')
        if status != 'active':
            raise exception.CloudError(
                reason=_('the image %(id)s is %(status)s after the upload, '
                         'not active') % {'id': image.id, 'status': status})
        glance_algo = props.get('os_hash_algo')
        glance_value = props.get('os_hash_value')
        imported = digests is None
        digests = digests or {}
        if glance_algo and glance_value and not imported:
            if glance_algo not in digests and fileobj is not None:
                LOG.warning('Glance hashes with %(algo)s, not %(ours)s; '
                            'hashing the file again to compare (set '
                            '[glance] default_hash_algorithm = %(algo)s)',
                            {'algo': glance_algo,
                             'ours': ', '.join(digests)})
                digests = dict(digests)
                digests.update(_hash_file(fileobj, glance_algo))
            if glance_algo not in digests:
                _notify(notify, _('Transfer not verified: Glance hashes '
                                  'with %(algo)s, the client computed '
                                  '%(ours)s (set [glance] '
                                  'default_hash_algorithm = %(algo)s)'),
                        level=logging.WARNING, algo=glance_algo,
                        ours=', '.join(sorted(digests)))
            else:
                if digests[glance_algo] != glance_value:
                    raise exception.ChecksumMismatch(
                        what=_('the upload of %s') % image.id,
                        algo=glance_algo, expected=digests[glance_algo],
                        actual=glance_value + _(' (Glance)'))
                _notify(notify, _('Verified: Glance %(algo)s matches the '
                                  'client'), algo=glance_algo)
        if not expected:
            if imported:
                _notify(notify, _('Not verified: Glance fetched %(src)s '
                                  'itself and no checksum was given to '
                                  'compare it with (Glance computed '
                                  '%(algo)s %(value)s). To verify, give '
                                  '--checksum ALGO:HEX or --checksum-url '
                                  'with the distribution\'s SHA256SUMS'),
                        level=logging.WARNING, src=source,
                        algo=glance_algo, value=glance_value)
            return
        algo, value = expected
        if algo in digests:
            actual = digests[algo]
        elif algo == glance_algo and glance_value:
            actual = glance_value
        elif algo == 'md5' and props.get('checksum'):
            actual = props['checksum']
        else:
            # Glance fetched the data and reports another hash: read back
            # what it stored
            _notify(notify, _('Reading the image back from Glance to '
                              'compute its %s'), algo)
            actual = self._hash_stored(image, algo)
        if actual != value:
            raise exception.ChecksumMismatch(
                what=image.id, algo=algo, expected=value, actual=actual)
        _notify(notify, _('Verified: %(algo)s matches the given '
                          'checksum'), algo=algo)

    def _hash_stored(self, image, algo):
        """Hash the data Glance stored for an image (streamed)."""
        import hashlib

        h = hashlib.new(algo)
        for chunk in glance.download_data(
                self.conn, image,
                chunk_size=self.conf.glance.upload_chunk_size):
            h.update(chunk)
        return h.hexdigest()


def _server_side(error):
    """Whether an upload failed on the server's side or on the way.

    A service that did not answer or closed the connection, or a 5xx
    answer; not a refusal (4xx: a full store, a quota, a bad request).
    """
    if isinstance(error, exception.ServiceUnavailable):
        return True
    status = getattr(error.__cause__, 'status_code', None)
    return isinstance(status, int) and status >= 500


@contextlib.contextmanager
def _http_get(url, timeout, **kwargs):
    """GET a URL, streamed; yield the response (an error status raises).

    :raises isoplugin.exception.SourceUnavailable: no answer, or an HTTP
        error status.
    """
    import requests

    try:
        resp = requests.get(url, stream=True, timeout=timeout, **kwargs)
    except requests.RequestException as e:
        raise exception.SourceUnavailable(source=url, reason=e) from e
    with resp:
        if resp.status_code >= 400:
            raise exception.SourceUnavailable(
                source=url,
                reason=_('the server answered HTTP %(code)d '
                         '%(reason)s') % {'code': resp.status_code,
                                          'reason': resp.reason})
        yield resp


def _read_checksum_list(url, timeout):
    """The text of a checksum list: an http(s) URL or a local file."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ('http', 'https'):
        with _http_get(url, timeout) as resp:
            data = resp.raw.read(SUMS_MAX_BYTES + 1, decode_content=True)
    elif parts.scheme in ('', 'file'):
        path = urllib.parse.unquote(parts.path) if parts.scheme else url
        try:
            with open(path, 'rb') as f:
                data = f.read(SUMS_MAX_BYTES + 1)
        except OSError as e:
            raise exception.SourceUnreadable(source=path,
                                             reason=e.strerror) from e
    else:
        raise exception.InvalidInput(
            reason=_("'%s': a checksum list is read from an http(s) URL or "
                     "a local file") % url)
    if len(data) > SUMS_MAX_BYTES:
        raise exception.InvalidInput(
            reason=_('%(url)s is over %(n)d KiB: not a checksum list') % {
                'url': url, 'n': SUMS_MAX_BYTES // 1024})
    return data.decode('utf-8', 'replace')


def _notify(notify, message, *args, level=logging.INFO, **kwargs):
    """Tell the caller (``notify``) and the log.

    Without a ``notify``, a warning goes to the log as a warning; with
    one, the caller shows it, and the log gets it at INFO.
    """
    values = args or kwargs
    text = message % values if values else message
    LOG.log(level if notify is None else logging.INFO, message,
            values or {})
    if notify is not None:
        notify(text)
