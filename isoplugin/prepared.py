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

"""Prepared ISOs in Glance: the unattended copy a build boots from.

:func:`prepare_iso` turns an ISO of the catalog into its prepared copy
(:mod:`isoplugin.remaster`: answer file in, boot menus rewritten) and keeps
that copy in Glance as a cache::

    check the inputs (profile, answer file, variables, --add-files) ->
    take the profile registration detected (the ISO's ``<prefix>profile``)
    when none is given -> look the copy up (one query on its cache key) ->
    reuse it, or: check the quota -> download the source ISO (one temporary
    file, hash checked) -> detect the profile if still unknown -> xorriso's
    output streamed into a new image (hashed on the way, checked against
    Glance's hash)

An ISO whose registration recognised no profile (``<prefix>profile`` is
``none``) is never downloaded to look again: with no profile given,
:func:`prepare_iso` raises :class:`~isoplugin.exception.ProfileNotDetected`
at once.

The copy is a private, hidden image (``os_hidden``): it holds the answer
file and so any secret given as a variable. Its properties say where it
comes from (``<prefix>role=prepared-iso``, ``<prefix>prepared_from``,
``<prefix>profile``, ``<prefix>cache_key``, ``<prefix>prepared_at``) and
keep what makes Nova use it as a CD-ROM rescue device. The cache key is a
hash of the source ISO's hash, the profile, the answer file as rendered,
the extra kernel arguments and the files merged with ``--add-files``.

Secret values never reach a property, a log line or an event: only the
profile's :meth:`~isoplugin.profiles.base.Profile.redact` form is shown.
"""

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import tempfile
import threading
import time

from oslo_log import log as logging

from isoplugin import exception
from isoplugin import glance
from isoplugin.i18n import _
from isoplugin.remaster import timed

LOG = logging.getLogger(__name__)

#: ``<prefix>role`` of a prepared ISO.
ROLE_PREPARED = 'prepared-iso'
#: profile name that means "use the ISO as it is".
NO_PROFILE = 'none'
MIB = 1024 * 1024


@dataclasses.dataclass
class Prepared(object):
    """The prepared copy of an ISO, as :func:`prepare` found or made it.

    :ivar image: the prepared ISO, an
        :class:`openstack.image.v2.image.Image`.
    :ivar profile: the profile's name.
    :ivar source: the source ISO.
    :ivar cache_key: the cache key.
    :ivar reused: whether the cached copy was reused.
    :ivar detected: what detection looked at (empty when the profile was
        given or the copy reused).
    :ivar properties: image properties for the images built from it.
    """

    image: object
    profile: str
    source: object
    cache_key: str
    reused: bool
    detected: list = dataclasses.field(default_factory=list)
    properties: dict = dataclasses.field(default_factory=dict)


def parse_add_files(specs):
    """``['SRC[:DEST]', ...]`` as ``[(SRC, DEST or None)]``; SRC checked.

    :raises isoplugin.exception.InvalidInput: a source is not found.
    """
    out = []
    for spec in specs or ():
        if isinstance(spec, (tuple, list)):
            src, dest = spec
        else:
            src, sep, dest = spec.partition(':')
            if sep and not dest.startswith('/'):
                # a path holding a colon, not a destination
                src, dest = spec, ''
        if not os.path.exists(src):
            raise exception.InvalidInput(
                reason=_('--add-files: %s is not found') % src)
        out.append((src, dest or None))
    return out


def read_answer_file(path):
    """The text of an answer file.

    :raises isoplugin.exception.InvalidInput: it cannot be read.
    """
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise exception.InvalidInput(
            reason=_('cannot read the answer file %(path)s: %(err)s') % {
                'path': path, 'err': getattr(e, 'strerror', None) or e})


def _digest_add_files(add_files):
    from isoplugin import remaster

    h = hashlib.sha256()
    for src, dest in add_files:
        h.update(('%s\0' % (dest or '')).encode())
        h.update(remaster._tree_sha256(src).encode())
    return h.hexdigest()


def _source_hash(iso):
    fields = glance.flat(iso)
    algo, value = fields.get('os_hash_algo'), fields.get('os_hash_value')
    if not value:
        raise exception.InvalidInput(
            reason=_('the ISO %s has no hash in Glance (os_hash_value): '
                     'it has no data yet') % iso.id)
    return algo, value


def cache_key(source_hash, prof, answer, kernel_args, add_digest):
    """The cache key of a prepared ISO (64 hex digits).

    :param prof: the :class:`~isoplugin.profiles.base.Profile` that
        rendered ``answer``: its name and what of the answer a copy depends
        on (:meth:`~isoplugin.profiles.base.Profile.cache_text`: a value the
        profile made at random, such as Windows' default Administrator
        password, does not make another copy).
    """
    data = json.dumps({'source': '%s:%s' % source_hash,
                       'profile': prof.name,
                       'answer': hashlib.sha256(prof.cache_text(
                           answer).encode('utf-8')).hexdigest(),
                       'kernel_args': list(kernel_args),
                       'add_files': add_digest}, sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def find_cached(conn, conf, key):
    """The active prepared ISO with this cache key, or ``None`` (one GET)."""
    p = conf.glance.property_prefix
    for image in glance.images(conn, os_hidden='true', status='active',
                               **{p + 'role': ROLE_PREPARED,
                                  p + 'cache_key': key}):
        return image
    return None


def _profile_of_source(conn, conf, source_hash):
    """The profile an earlier prepare detected for this content, if any."""
    p = conf.glance.property_prefix
    for image in glance.images(conn, os_hidden='true', status='active',
                               **{p + 'role': ROLE_PREPARED,
                                  p + 'source_hash': '%s:%s' % source_hash,
                                  p + 'detected': 'true'}):
        return glance.flat(image).get(p + 'profile')
    return None


def _registered_profile(conf, iso):
    """The profile registration detected, from ``<prefix>profile``.

    Registration stores the name of the profile that recognises the ISO,
    or :data:`NO_PROFILE` when none does; ISOs registered before that, or
    by URL, have no such property.

    :returns: the profile name, or ``None`` when the ISO does not say.
    :raises isoplugin.exception.ProfileNotDetected: registration found no
        profile (nothing is downloaded to look again).
    """
    from isoplugin import profiles

    if isinstance(iso, LocalISO):
        return None
    key = conf.glance.property_prefix + 'profile'
    name = glance.flat(iso).get(key)
    if name != NO_PROFILE:
        return name or None
    raise exception.ProfileNotDetected(
        source=iso.name or iso.id,
        available=', '.join(profiles.available_profiles()) or _('none'),
        looked_at=_('the detection at registration (%s=none)') % key)


def _prepared_from(conn, conf, iso):
    """Whether a prepared copy of a source of this id exists (one GET)."""
    p = conf.glance.property_prefix
    for _image in glance.images(conn, os_hidden='true', status='active',
                                limit=1, **{p + 'role': ROLE_PREPARED,
                                            p + 'prepared_from': iso.id}):
        return True
    return False


def list_prepared(conn, conf):
    """Every prepared ISO of the project, any status."""
    p = conf.glance.property_prefix
    return list(glance.images(conn, os_hidden='true',
                              **{p + 'role': ROLE_PREPARED}))


def _notify(progress, event, message, **fields):
    LOG.info('%(message)s', {'message': message})
    if progress is not None:
        progress(dict(fields, event=event, phase='prepare',
                      message=message))


def _check_quota(conn, size):
    usage = glance.usage(conn)
    checks = [('image_count_total', 1),
              ('image_size_total', -(-(size or 0) // MIB))]
    for resource, delta in checks:
        entry = usage.get(resource) or {}
        limit = entry.get('limit')
        if limit is None or limit < 0:
            continue
        needed = entry.get('usage', 0) + delta
        if needed > limit:
            unit = ' MiB' if resource == 'image_size_total' else ''
            kwargs = {'resource': resource,
                      'needed': '%d%s' % (needed, unit),
                      'limit': '%d%s' % (limit, unit)}
            raise exception.QuotaExceeded(_(
                "The prepared copy of this ISO would exceed the project's "
                "image quota: %(resource)s would be %(needed)s, the limit "
                "is %(limit)s (see 'openstack iso usage'; delete old "
                "prepared ISOs with 'openstack iso build delete "
                "--prepared').") % kwargs, **kwargs)


@dataclasses.dataclass
class LocalISO(object):
    """A source ISO given as a local file (``iso prepare FILE``)."""

    path: str
    id: str
    name: str
    size: int


def _local_iso(path):
    name = os.path.basename(path)
    return LocalISO(path=path, id='file:' + name, name=name,
                    size=os.path.getsize(path))


def _identity(path):
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns)


#: Where the hashes of local source files are remembered.
HASH_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'isoplugin',
                        'source-hashes')
#: A file changed less than this long before it is hashed is not
#: remembered: a change in the same tick of the file system's clock
#: could leave its times as they were.
RACY_SECONDS = 2


class LocalHash(object):
    """The sha256 of a local source ISO, computed in a thread.

    The cache key needs the content hash of the file, which is one more
    read of it. That read runs beside the work that reads the file anyway
    (xorriso copying it into the upload), not before it: the file's pages
    come from the disk once, and the hash costs no wall time where a core
    is free.

    The file's identity (device, inode, size, modification and change
    times: the change time cannot be set back by anyone) is taken before
    the hash and compared at every :meth:`result`, which the caller asks
    for again once the copy is made: a file changed meanwhile is refused,
    so a key always describes the bytes its copy was made from.

    The hash is remembered under that identity in :data:`HASH_DIR` (as
    git and ccache remember theirs), so the same file prepared again is
    not read to find its copy. Any write to the file changes its change
    time, so a changed file is hashed again; a file changed within
    :data:`RACY_SECONDS` before it was hashed is not remembered.

    :param path: the file.
    :param directory: where hashes are remembered (default
        :data:`HASH_DIR`); ``''`` remembers nothing.
    :param start: start hashing now when the hash is not remembered
        (else at :meth:`start`).
    """

    def __init__(self, path, directory=None, start=True):
        self.path = path
        self._identity = _identity(path)
        self._memo = None
        directory = HASH_DIR if directory is None else directory
        if directory:
            self._memo = os.path.join(directory, hashlib.sha256(repr(
                (os.path.realpath(path),) + self._identity).encode(
                    'utf-8')).hexdigest())
        self._value = self._remembered()
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='isoplugin-source-hash')
        if start:
            self.start()

    def start(self):
        """Start hashing, unless the hash is remembered or started."""
        if self._value is None and self._thread.ident is None:
            self._thread.start()

    def _remembered(self):
        if not self._memo:
            return None
        try:
            with open(self._memo) as f:
                algo, _sep, value = f.read().strip().partition(':')
        except OSError:
            return None
        if algo == 'sha256' and len(value) == 64:
            LOG.debug('Hash of %(path)s remembered in %(memo)s',
                      {'path': self.path, 'memo': self._memo})
            return algo, value
        return None

    def _remember(self, started):
        ino, size, mtime, ctime = self._identity[1:]
        if not self._memo or max(mtime, ctime) > (
                started - RACY_SECONDS) * 10 ** 9:
            return
        try:
            os.makedirs(os.path.dirname(self._memo), exist_ok=True)
            tmp = '%s.%d.tmp' % (self._memo, os.getpid())
            with open(tmp, 'w') as f:
                f.write('%s:%s\n' % self._value)
            os.replace(tmp, self._memo)
        except OSError as e:
            LOG.debug('Cannot remember the hash of %(path)s: %(err)s',
                      {'path': self.path, 'err': e})

    def _run(self):
        from isoplugin import remaster

        started = time.time()
        try:
            with timed('hashing the source file'):
                self._value = ('sha256', remaster._sha256(self.path))
            if _identity(self.path) == self._identity:
                self._remember(started)
        except OSError as e:
            self._error = e

    def done(self):
        """Whether the hash is known (or failed)."""
        if self._error is not None:
            return True
        return self._value is not None and not self._thread.is_alive()

    def result(self):
        """``('sha256', hex digest)``, waiting for it.

        :raises isoplugin.exception.SourceUnreadable: the file cannot be
            read, or changed since the hash began.
        """
        self.start()
        if self._thread.ident is not None:
            self._thread.join()
        if self._error is not None:
            raise exception.SourceUnreadable(
                source=self.path,
                reason=self._error.strerror or self._error)
        try:
            same = _identity(self.path) == self._identity
        except OSError as e:
            raise exception.SourceUnreadable(source=self.path,
                                             reason=e.strerror or e) from e
        if not same:
            raise exception.SourceUnreadable(
                source=self.path,
                reason=_('it changed while it was being prepared; prepare '
                         'it again once it is written'))
        return self._value


class _FoundMeanwhile(Exception):
    """The cache key, known during the upload, names an existing copy."""

    def __init__(self, image):
        super().__init__(image.id)
        self.image = image


def _fields(iso):
    if isinstance(iso, LocalISO):
        return {'id': iso.id, 'name': iso.name, 'size': iso.size}
    return glance.flat(iso)


@contextlib.contextmanager
def _downloaded(conn, conf, iso, source_hash):
    """The source ISO in one temporary file, its hash checked; removed."""
    if isinstance(iso, LocalISO):
        yield iso.path
        return
    algo, value = source_hash
    h = hashlib.new(algo or 'sha512')
    fd, path = tempfile.mkstemp(prefix='isoplugin-source-', suffix='.iso')
    try:
        with os.fdopen(fd, 'wb') as f, timed('downloading the source'):
            for chunk in glance.download_data(
                    conn, iso, chunk_size=conf.glance.upload_chunk_size):
                h.update(chunk)
                f.write(chunk)
        if algo and h.hexdigest() != value:
            raise exception.ChecksumMismatch(
                what=_('the download of %s') % iso.id, algo=algo,
                expected=value, actual=h.hexdigest())
        yield path
    finally:
        os.unlink(path)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def _name(conf, iso, key):
    return '%sprepared-%s-%s' % (conf.glance.property_prefix.replace('_', '-'),
                                 _fields(iso).get('name') or iso.id,
                                 key[:12])


def _keyed(conf, source_hash, key):
    """The properties that depend on the source's hash."""
    p = conf.glance.property_prefix
    return {p + 'source_hash': '%s:%s' % source_hash, p + 'cache_key': key}


def _body(conf, iso, profile, key, source_hash, detected, properties):
    """The new image; ``key`` is ``None`` while a local file is hashed.

    Without its key the image is named ``...-pending`` and has no
    ``cache_key``: no lookup finds it before it is complete and keyed.
    """
    p = conf.glance.property_prefix
    src = _fields(iso)
    body = {
        'name': (_name(conf, iso, key) if key else
                 '%sprepared-%s-pending' % (p.replace('_', '-'),
                                            src.get('name') or iso.id)),
        'disk_format': 'iso',
        'container_format': 'bare',
        'visibility': 'private',
        'os_hidden': True,
        'hw_cdrom_bus': src.get('hw_cdrom_bus') or conf.glance.hw_cdrom_bus,
        'hw_rescue_device': 'cdrom',
        'hw_rescue_bus': (src.get('hw_rescue_bus') or
                          conf.glance.hw_rescue_bus),
        p + 'role': ROLE_PREPARED,
        p + 'prepared_from': iso.id,
        p + 'profile': profile,
        p + 'detected': 'true' if detected else 'false',
        p + 'prepared_at': _now(),
        p + 'output_properties': json.dumps(properties, sort_keys=True)[:255],
    }
    if key:
        body.update(_keyed(conf, source_hash, key))
    for k in ('min_ram', 'min_disk'):
        if src.get(k):
            body[k] = src[k]
    for k in ('os_type', 'os_distro', 'os_version', 'architecture'):
        if properties.get(k) or src.get(k):
            body[k] = properties.get(k) or src.get(k)
    return body


def _upload(conn, conf, image_id, read):
    from isoplugin import upload

    algo = conf.glance.default_hash_algorithm
    data = upload.HashingBody(read, None, {algo},
                              chunk_size=conf.glance.upload_chunk_size)
    glance.upload_data(conn, image_id, iter(data))
    return data.hexdigests()


def _verify(conn, image_id, digests):
    image = glance.get_image(conn, image_id)
    fields = glance.flat(image)
    if fields.get('status') != 'active':
        raise exception.CloudError(
            reason=_('the prepared ISO %(id)s is %(status)s after the '
                     'upload, not active') % {'id': image_id,
                                              'status': fields.get('status')})
    algo, value = fields.get('os_hash_algo'), fields.get('os_hash_value')
    if algo in digests and digests[algo] != value:
        raise exception.ChecksumMismatch(
            what=_('the upload of %s') % image_id, algo=algo,
            expected=digests[algo], actual=value + _(' (Glance)'))
    return image


def prepare_iso(conn, conf, iso, profile=None, values=None, answer=None,
                kernel_args=None, add_files=None, progress=None):
    """Find or make the prepared copy of an ISO in Glance.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: the parsed isoplugin ConfigOpts.
    :param iso: the ISO's name or id, or its Image; or the path of a
        local ISO file (prepared from the file, nothing else uploaded).
    :param profile: a profile name; ``None`` takes the one registration
        detected (the ISO's ``<prefix>profile`` property; ``none``: no
        profile recognised it, nothing is downloaded), else detects it
        from the ISO's content.
    :param values: the profile's variables (``{name: value}``).
    :param answer: an answer file's text, used instead of the template
        (it is checked to parse).
    :param kernel_args: extra kernel arguments (a list or a string).
    :param add_files: ``['SRC[:DEST]', ...]`` or ``[(SRC, DEST)]`` merged
        into the copy.
    :param progress: callable given event dicts (``event``, ``message``).
    :returns: a :class:`Prepared` (``.image`` is the prepared ISO).
    :raises isoplugin.exception.ProfileNotFound: unknown profile.
    :raises isoplugin.exception.ProfileNotDetected: no profile given and
        none recognises the ISO (or none did at its registration).
    :raises isoplugin.exception.TemplateVariableError: unknown or missing
        variable.
    :raises isoplugin.exception.AnswerFileInvalid: the answer does not
        parse.
    :raises isoplugin.exception.InvalidInput: ``--add-files`` not found.
    :raises isoplugin.exception.QuotaExceeded: no room for the copy.
    :raises isoplugin.exception.PrepareFailed: xorriso failed.
    :raises isoplugin.exception.ChecksumMismatch: a download or upload
        was corrupted (nothing is left in Glance).
    """
    from isoplugin import build
    from isoplugin import profiles
    from isoplugin import remaster

    if isinstance(kernel_args, str):
        kernel_args = kernel_args.split()
    kernel_args = list(kernel_args or ())
    add_files = parse_add_files(add_files)
    hashing = None
    remembered = False
    if isinstance(iso, str) and os.path.isfile(iso):
        iso = _local_iso(iso)
        hashing = LocalHash(iso.path, start=False)
        source_hash = None
        remembered = hashing.done()
        if not remembered:
            # the size is known at once: refuse before reading a big file
            _check_quota(conn, iso.size)
    else:
        if isinstance(iso, str):
            iso = build.resolve_iso(conn, conf, iso)
        source_hash = _source_hash(iso)
    add_digest = _digest_add_files(add_files) if add_files else ''
    detected = profile is None
    if profile is None:
        profile = _registered_profile(conf, iso)
        if profile is not None:
            _notify(progress, 'detected',
                    _('detected profile %s (detected at registration)')
                    % profile, profile=profile)
    prof = text = key = None
    if profile is not None:
        prof = profiles.get_profile(profile)
        text = _answer_text(prof, values, answer)
    if hashing is not None:
        hashing.start()
        if hashing.done() or _prepared_from(conn, conf, iso):
            # remembered; or a copy of a file of this name exists, likely
            # of this one: wait for the hash rather than upload a copy to
            # throw away
            source_hash = hashing.result()
    if profile is None and source_hash is not None:
        profile = _profile_of_source(conn, conf, source_hash)
        if profile is not None:
            _notify(progress, 'detected',
                    _('detected profile %s (as for an earlier prepared '
                      'copy of the same ISO content)') % profile,
                    profile=profile)
            prof = profiles.get_profile(profile)
            text = _answer_text(prof, values, answer)
    if prof is not None and source_hash is not None:
        key = cache_key(source_hash, prof, text, kernel_args, add_digest)
        with timed('looking up the prepared copy'):
            found = find_cached(conn, conf, key)
        if found is not None:
            return _reused(conf, found, iso, prof.name, key, progress)
    if remembered:
        _check_quota(conn, iso.size)  # not checked: the hash was known
    if not isinstance(iso, LocalISO):
        _check_quota(conn, _fields(iso).get('size'))
        _notify(progress, 'downloading',
                _('downloading ISO %s to prepare a copy') % iso.id)
    with _downloaded(conn, conf, iso, source_hash) as path:
        looked_at = []
        if prof is None:
            from isoplugin import isoinfo

            with isoinfo.open_files(path, name=iso.name or iso.id) as files:
                prof, match = profiles.detect(files)
            looked_at = match.looked_at
            _notify(progress, 'detected',
                    _('detected profile %(profile)s (%(why)s)') % {
                        'profile': prof.name,
                        'why': '; '.join(looked_at)},
                    profile=prof.name)
            text = _answer_text(prof, values, answer)
            if source_hash is not None:
                key = cache_key(source_hash, prof, text, kernel_args,
                                add_digest)
                found = find_cached(conn, conf, key)
                if found is not None:
                    return _reused(conf, found, iso, prof.name, key,
                                   progress)
        state = {'key': key}

        def lookup():
            """Once the local file's hash is known: its key, and a copy."""
            if 'found' not in state:
                state['key'] = cache_key(hashing.result(), prof, text,
                                         kernel_args, add_digest)
                state['found'] = find_cached(conn, conf, state['key'])
            if state['found'] is not None:
                raise _FoundMeanwhile(state['found'])

        def watched(read):
            def watched_read(size):
                if 'found' not in state and hashing.done():
                    lookup()
                return read(size)
            return watched_read

        def sink(read):
            image = glance.create_image(conn, **_body(
                conf, iso, prof.name, key, source_hash, detected, {}))
            state['id'] = image.id
            if key is None:
                read = watched(read)
            with timed('streaming xorriso\'s output into Glance'):
                return _upload(conn, conf, image.id, read)

        try:
            with timed('preparing and uploading the copy'):
                digests, manifest = remaster.prepare(
                    path, profile=prof, values=values, answer=text,
                    kernel_args=kernel_args, add_files=add_files, sink=sink)
            extra = {}
            if hashing is not None:
                # the file must not have changed while it was copied
                hashing.result()
            if key is None:
                lookup()
                key = state['key']
                source_hash = hashing.result()
                extra = dict(_keyed(conf, source_hash, key),
                             name=_name(conf, iso, key))
            with timed('verifying the upload'):
                image = _verify(conn, state['id'], digests)
            extra.update({k: v for k, v in manifest.properties.items()
                          if k in ('os_type', 'os_distro', 'os_version',
                                   'architecture')})
            extra[conf.glance.property_prefix + 'output_properties'] = \
                json.dumps(manifest.properties, sort_keys=True)[:255]
            image = glance.patch_image(
                conn, image.id, current=glance.flat(image),
                set=extra) or image
        except BaseException as e:
            if state.get('id'):
                LOG.info('Preparing failed, deleting the prepared ISO '
                         '%(id)s', {'id': state['id']})
                try:
                    glance.delete_image(conn, state['id'])
                except exception.IsopluginException:
                    LOG.warning('Could not delete the incomplete prepared '
                                'ISO %(id)s', {'id': state['id']},
                                exc_info=True)
            if isinstance(e, _FoundMeanwhile):
                return _reused(conf, e.image, iso, prof.name, state['key'],
                               progress)
            raise
    _notify(progress, 'prepared',
            _('prepared ISO %(id)s with profile %(profile)s: %(changes)s') % {
                'id': image.id, 'profile': prof.name,
                'changes': ', '.join('%s %s' % (c['action'], c['path'])
                                     for c in manifest.changes)},
            image_id=image.id, profile=prof.name)
    for warning in manifest.warnings:
        _notify(progress, 'warning', warning)
    return Prepared(image=image, profile=prof.name, source=iso,
                    cache_key=key, reused=False, detected=looked_at,
                    properties=manifest.properties)


def _answer_text(prof, values, answer):
    if answer is None:
        return prof.render(values)
    prof.resolve(values)
    prof.validate(answer)
    return answer


def _reused(conf, image, iso, profile, key, progress):
    fields = glance.flat(image)
    try:
        props = json.loads(fields.get(
            conf.glance.property_prefix + 'output_properties') or '{}')
    except ValueError:
        props = {}
    _notify(progress, 'reused',
            _('reusing the prepared ISO %(id)s (profile %(profile)s)') % {
                'id': image.id, 'profile': profile},
            image_id=image.id, profile=profile)
    return Prepared(image=image, profile=profile, source=iso,
                    cache_key=key, reused=True, properties=props)


def _age_hours(fields, prefix):
    stamp = fields.get(prefix + 'prepared_at') or fields.get('created_at')
    if not stamp:
        return 0.0
    try:
        when = datetime.datetime.fromisoformat(stamp.replace('Z', '+00:00'))
    except ValueError:
        return 0.0
    now = datetime.datetime.now(datetime.timezone.utc)
    return (now - when).total_seconds() / 3600.0


def expired(conf, image):
    """Whether a prepared ISO is past ``[isoplugin] prepared_iso_max_age``.

    An upload that never finished (not active) expires after
    ``orphan_timeout``.
    """
    fields = glance.flat(image)
    p = conf.glance.property_prefix
    age = _age_hours(fields, p)
    if fields.get('status') != 'active':
        return age * 3600 > conf.isoplugin.orphan_timeout
    max_age = conf.isoplugin.prepared_iso_max_age
    return bool(max_age) and age > max_age


def delete_prepared(conn, conf, expired_only=True):
    """Delete prepared ISOs: the expired ones, or all of them.

    :returns: the deleted images' ids.
    """
    deleted = []
    for image in list_prepared(conn, conf):
        if expired_only and not expired(conf, image):
            continue
        glance.delete_image(conn, image.id)
        deleted.append(image.id)
    return deleted
