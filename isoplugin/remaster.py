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

"""Make the prepared copy of an installer ISO: answer file in, menus rewritten.

:func:`prepare` asks an install profile (:mod:`isoplugin.profiles`) what to
change, then writes a new ISO with xorriso::

    xorriso -indev SRC -outdev - -boot_image any replay \\
        -map NEW_FILE /PATH ... -end  > DST

Why xorriso and not pycdlib (pure Python, already used by the tests' ISO
tools): distributions ship hybrid images. ``-boot_image any replay`` keeps
what the source has as it was: every El Torito entry (BIOS and UEFI, hidden
ones too, boot info tables, GRUB2 boot info), the isohybrid MBR, the GPT
and APM, and EFI system partitions appended after the ISO 9660 image.
pycdlib rewrites the ISO 9660 structures but does not reproduce appended
partitions or a hybrid GPT (pycdlib issues #44 and #68), so the copy of a
Debian, Ubuntu or Fedora ISO would stop booting as a disk or under UEFI.
Copying the whole tree to a directory and rebuilding with mkisofs, as Oz
does, is slower and loses the same things. xorriso also copies the files
it keeps straight from the source image, so the work is one sequential
read and one sequential write.

xorriso writes the image to its standard output, which :func:`prepare`
sends to one temporary file (removed on every error); a later step can
send it to Glance instead.

xorriso writes ISO 9660 with Rock Ridge and Joliet, not UDF, and reads
only ISO 9660. Windows media keep their files in UDF (the ISO 9660 tree of
a bridge image holds a README only), and ``install.wim`` may exceed 4 GiB,
which ISO 9660 holds only as a multi-extent file. Media whose files are in
UDF are therefore written with pycdlib (:func:`write_udf`): it opens the
source, adds the new files to its UDF tree, and writes the copy with the
source's El Torito catalog (BIOS ``etfsboot.com`` and UEFI ``efisys.bin``
entries, with their load sizes) and files copied from the source image in
1 MiB blocks, never the whole image in memory. Such media have no hybrid
MBR or appended partitions to lose. pycdlib seeks back to write the
directories after the data, so that copy always goes to one temporary file
first (removed on every path), which a sink then reads.

Requires the ``xorriso`` program (Debian/Ubuntu ``xorriso``, Fedora/RHEL
``xorriso``); ``pycdlib`` (Python) for UDF media. ``mtools`` is needed
where a UEFI menu lives inside the EFI image (Fedora, RHEL and their
rebuilds); without it that menu is left as it was and the manifest says
so.
"""

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

from oslo_log import log as logging

from isoplugin import exception
from isoplugin import growing
from isoplugin.i18n import _
from isoplugin import isoinfo
from isoplugin import profiles
from isoplugin.profiles import base

LOG = logging.getLogger(__name__)


@contextlib.contextmanager
def timed(what):
    """Log at debug level how long the block took (the benchmark's phases)."""
    start = time.monotonic()
    try:
        yield
    finally:
        LOG.debug('%(what)s took %(s).2f s',
                  {'what': what, 's': time.monotonic() - start})


@dataclasses.dataclass
class Manifest(object):
    """What :func:`prepare` did. Holds no secret value.

    :ivar source: the source ISO's path.
    :ivar output: the prepared ISO's path.
    :ivar profile: the profile's name.
    :ivar detected: what detection looked at (empty when the profile was
        given).
    :ivar answer_kind: ``preseed``, ``kickstart``...
    :ivar answer_sha256: hash of the answer file (a cache key part).
    :ivar changes: ``[{'path', 'action', 'note', 'sha256'}]``.
    :ivar kernel_args: the extra kernel arguments asked for.
    :ivar variables: the variables used, secret ones shown as ``***``.
    :ivar properties: image properties for the images built from it.
    :ivar warnings: what the copy lacks, e.g. a UEFI menu inside an EFI
        image left as it was because mtools is missing.
    """

    source: str
    output: str
    profile: str
    detected: list
    answer_kind: str
    answer_sha256: str
    changes: list
    kernel_args: list
    variables: dict
    properties: dict
    warnings: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        return dataclasses.asdict(self)


def find_xorriso():
    """Return the path of the xorriso program.

    :raises isoplugin.exception.PrepareFailed: it is not installed.
    """
    path = shutil.which('xorriso')
    if path is None:
        raise exception.PrepareFailed(
            source=_('the ISO'),
            reason=_('the xorriso program is not installed; install it '
                     '(apt-get install xorriso, or dnf install xorriso)'))
    return path


def _sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def boot_report(xorriso, path):
    """xorriso's report of an image's El Torito catalog and system area.

    Reads only the first sectors and the boot catalog.
    """
    proc = subprocess.run(
        [xorriso, '-indev', path, '-report_el_torito', 'plain',
         '-report_system_area', 'plain'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise exception.PrepareFailed(
            source=path, reason=_('xorriso cannot read its boot '
                                  'equipment: %s') % proc.stderr.decode(
                'utf-8', 'replace').strip()[-300:])
    return proc.stdout.decode('utf-8', 'replace')


def replay_options(report):
    """xorriso options that reproduce the source's boot equipment.

    ``-boot_image any replay`` alone turns an isolinux isohybrid MBR (an
    MBR partition 1 from sector 0 and the EFI image as partition 2, GPT
    entries on top: debian-cd's and lorax's ``-isohybrid-mbr`` and
    ``-isohybrid-gpt-basdat``) into a protective MBR with a GPT EFI
    partition; asking for the isohybrid table again keeps it as it was.
    GRUB hybrids (appended partitions, Ubuntu) replay as they are.
    """
    opts = ['-boot_image', 'any', 'replay']
    isohybrid = ('isohybrid-suitable' in report and re.search(
        r'^MBR partition\s*:\s*1\s+0x80\s+0x00\s+0\s', report, re.M))
    if isohybrid:
        opts += ['-boot_image', 'isolinux', 'partition_table=on',
                 '-boot_image', 'any', 'efi_boot_part=']
        if re.search(r'^GPT\s*:', report, re.M):
            opts += ['-boot_image', 'isolinux', 'partition_entry=gpt_basdat']
    return opts


def xorriso_command(xorriso, source, changes, joliet=True, report='',
                    session=None):
    """The xorriso command line that writes the copy to standard output.

    :param report: the source's :func:`boot_report`.
    :param session: ``(path, nwa)``: write only a new session for block
        ``nwa`` to ``path`` (:mod:`isoplugin.growing`).
    """
    cmd = [xorriso, '-abort_on', 'FAILURE', '-indev', source]
    if session:
        cmd += ['-outdev', 'stdio:' + session[0],
                '-grow_blindly', str(session[1])]
    else:
        cmd += ['-outdev', '-']
    if joliet:
        cmd += ['-joliet', 'on']
    cmd += replay_options(report)
    for change in changes:
        cmd += ['-map', change.local, change.path]
    return cmd + ['-end']


#: Bytes the pipe from xorriso holds (Linux; 64 KiB by default): xorriso
#: writes ahead while the upload sends, and the client reads a whole
#: chunk in one call instead of waking up for every few kilobytes.
PIPE_SIZE = 1 << 20


def _grow_pipe(pipe):
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or above fs.pipe-max-size: the default pipe


def _stream_xorriso(cmd, sink, source):
    """Run xorriso and hand its standard output to ``sink(read)``.

    xorriso is killed when the sink fails; its exit status is checked
    after the sink has read everything, so a copy it failed to write
    completely raises (the caller discards what the sink made of it).
    """
    LOG.debug('Running %(cmd)s', {'cmd': cmd})
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                    stdin=subprocess.DEVNULL)
        except OSError as e:
            raise exception.PrepareFailed(source=source,
                                          reason=e.strerror or e) from e
        _grow_pipe(proc.stdout)
        try:
            result = sink(proc.stdout.read)
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            rc = proc.wait()
        if rc != 0:
            err.seek(0)
            lines = err.read().decode('utf-8', 'replace').splitlines()
            bad = [ln for ln in lines if 'FAILURE' in ln or 'SORRY' in ln]
            raise exception.PrepareFailed(
                source=source,
                reason=_('xorriso exited with %(rc)d: %(msg)s') % {
                    'rc': rc, 'msg': ' / '.join((bad or lines)[-3:])})
    return result


def _run_xorriso(cmd, out, source):
    """Run xorriso, its standard output to the file ``out`` (or nowhere)."""
    LOG.debug('Running %(cmd)s', {'cmd': cmd})
    try:
        with (open(out, 'wb') if out else
              open(os.devnull, 'wb')) as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
    except OSError as e:
        raise exception.PrepareFailed(source=source,
                                      reason=e.strerror or e) from e
    if proc.returncode != 0:
        lines = proc.stderr.decode('utf-8', 'replace').splitlines()
        bad = [ln for ln in lines if 'FAILURE' in ln or 'SORRY' in ln]
        raise exception.PrepareFailed(
            source=source,
            reason=_('xorriso exited with %(rc)d: %(msg)s') % {
                'rc': proc.returncode,
                'msg': ' / '.join((bad or lines)[-3:])})


def _grown_copy(xorriso, source, changes, joliet, report, workdir, out,
                sink, name):
    """The copy as the source plus a new session (:mod:`growing`).

    :returns: ``(True, what sink returned or out once written)``, or
        ``(False, None)`` when the session's head is not laid out as
        expected (the caller writes the whole copy instead).
    """
    nwa = growing.next_writable(source)
    session = os.path.join(workdir, 'session.iso')
    _run_xorriso(xorriso_command(xorriso, source, changes, joliet, report,
                                 session=(session, nwa)), None, name)
    try:
        image = growing.GrownImage(source, session, nwa)
    except growing.NotGrowable as e:
        LOG.info('Writing the whole copy of %(src)s: %(why)s',
                 {'src': name, 'why': e})
        return False, None
    try:
        LOG.debug('Copy of %(src)s: the source, then a new session of '
                  '%(n)d bytes at block %(nwa)d',
                  {'src': name, 'n': os.path.getsize(session), 'nwa': nwa})
        if sink is not None:
            return True, sink(image.read)
        with open(out, 'wb') as f:
            shutil.copyfileobj(image, f, 1 << 20)
        return True, out
    finally:
        image.close()


def add_files_changes(ctx, add_files):
    """Record ``--add-files`` merges: ``[(source, dest)]`` into the copy.

    A directory is merged into ``dest`` (default ``/``); a file goes to
    ``dest`` (default ``/<its name>``); an ISO (a file ending in ``.iso``)
    has its whole tree merged into ``dest`` (default ``/``), extracted
    with xorriso.

    :raises isoplugin.exception.InvalidInput: a source is not found.
    """
    for src, dest in add_files or ():
        if not os.path.exists(src):
            raise exception.InvalidInput(
                reason=_('--add-files: %s is not found') % src)
        if os.path.isdir(src):
            ctx.put_file(dest or '/', os.path.abspath(src),
                         _('merged from %s') % os.path.basename(
                             os.path.abspath(src)))
        elif src.lower().endswith('.iso'):
            tree = tempfile.mkdtemp(prefix='add-', dir=ctx.workdir)
            proc = subprocess.run(
                [find_xorriso(), '-osirrox', 'on', '-indev', src,
                 '-extract', '/', tree], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise exception.InvalidInput(
                    reason=_('--add-files: cannot read the ISO %s') % src)
            ctx.put_file(dest or '/', tree,
                         _('merged from %s') % os.path.basename(src))
        else:
            ctx.put_file(dest or '/' + os.path.basename(src),
                         os.path.abspath(src),
                         _('added from %s') % os.path.basename(src))


#: pycdlib's copy block: the source's files go through memory this much
#: at a time.
UDF_BLOCK = 1 << 20


def uses_udf(files):
    """Whether the image's files are read from its UDF tree (Windows media).

    :param files: an :class:`isoplugin.isoinfo.IsoFiles`.
    """
    return files.tree == 'udf'


def _pycdlib(source):
    try:
        import pycdlib
    except ImportError as e:
        raise exception.PrepareFailed(
            source=source,
            reason=_('its files are in UDF (Windows media), which are '
                     'written with the pycdlib Python package: install it '
                     '(pip install pycdlib)')) from e
    return pycdlib


def _udf_children(iso, path):
    return {entry.file_identifier().decode('utf-8', 'replace').lower():
            entry for entry in iso.list_children(udf_path=path or '/')
            if entry is not None}


def _udf_path(iso, path):
    """``(spelling on the image, is_dir)`` of ``path`` in the UDF tree.

    ``is_dir`` is ``None`` when it does not exist. Names are compared
    without case, as Windows does; missing directories above the last name
    are made.
    """
    parts = [p for p in path.split('/') if p]
    cur = ''
    for n, part in enumerate(parts):
        entry = _udf_children(iso, cur).get(part.lower())
        last = n == len(parts) - 1
        if entry is None:
            if last:
                return cur + '/' + part, None
            iso.add_directory(udf_path=cur + '/' + part)
            cur += '/' + part
            continue
        cur += '/' + entry.file_identifier().decode('utf-8', 'replace')
        if last:
            return cur, entry.is_dir()
    return cur or '/', True


def _udf_put(iso, path, local, source):
    target, is_dir = _udf_path(iso, path)
    if os.path.isdir(local):
        if is_dir is None:
            iso.add_directory(udf_path=target)
        elif not is_dir:
            raise exception.PrepareFailed(
                source=source, reason=_('%s is a file on the image, not a '
                                        'directory') % target)
        for name in sorted(os.listdir(local)):
            _udf_put(iso, target + '/' + name, os.path.join(local, name),
                     source)
        return
    if is_dir:
        raise exception.PrepareFailed(
            source=source, reason=_('%s is a directory on the image, not a '
                                    'file') % target)
    if is_dir is not None:
        iso.rm_file(udf_path=target)
    iso.add_file(local, udf_path=target)


def write_udf(source, changes, out, name=None):
    """Write the copy of media whose files are in UDF, with pycdlib.

    The source's El Torito catalog and entries are kept; its files are
    copied from the source in :data:`UDF_BLOCK` pieces; the new files go to
    the UDF tree (where Windows Setup reads them), names compared without
    case.

    :param source: path of the source image; it needs its ISO 9660 bridge
        descriptors (Windows media have them).
    :param changes: :class:`~isoplugin.profiles.base.Change` list.
    :param out: a writable, seekable binary file object.
    :param name: the source's name for messages.
    :raises isoplugin.exception.PrepareFailed: pycdlib is missing, or
        cannot read the source or write the copy.
    """
    name = name or source
    pycdlib = _pycdlib(name)
    iso = pycdlib.PyCdlib()
    opened = False
    try:
        iso.open(source)
        opened = True
        for change in changes:
            _udf_put(iso, change.path, change.local, name)
        LOG.debug('Writing the UDF copy of %(src)s with pycdlib',
                  {'src': name})
        iso.write_fp(out, blocksize=UDF_BLOCK)
    except pycdlib.pycdlibexception.PyCdlibException as e:
        reason = (_('pycdlib cannot write a copy of it: %s') if opened else
                  _('pycdlib cannot read it: %s'))
        raise exception.PrepareFailed(source=name, reason=reason % e) from e
    except OSError as e:
        raise exception.PrepareFailed(source=name,
                                      reason=e.strerror or e) from e
    finally:
        if opened:
            iso.close()


def _write_udf_copy(source, changes, out, sink, name, output_dir):
    if sink is None:
        with open(out, 'wb') as f:
            write_udf(source, changes, f, name)
        return out
    with tempfile.TemporaryFile(prefix='isoplugin-prepared-',
                                dir=output_dir) as f:
        write_udf(source, changes, f, name)
        f.flush()
        f.seek(0)
        return sink(f.read)


def _tree_sha256(path):
    if not os.path.isdir(path):
        return _sha256(path)
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            h.update(os.path.relpath(full, path).encode() + b'\0')
            h.update(_sha256(full).encode())
    return h.hexdigest()


def prepare(source, profile=None, values=None, answer=None, kernel_args=(),
            output_dir=None, add_files=(), sink=None):
    """Write a prepared copy of an installer ISO.

    :param source: path of the source ISO.
    :param profile: a profile name, a
        :class:`~isoplugin.profiles.base.Profile`, or ``None`` to detect
        it.
    :param values: the profile's template variables (``{name: value}``).
    :param answer: the answer file's text, to use instead of the template
        (it is validated).
    :param kernel_args: extra kernel arguments for the install entry (a
        list, or a string split on white space).
    :param output_dir: where to write the copy (default: the system's
        temporary directory).
    :param add_files: ``[(source path, destination in the copy or None)]``
        merged into the copy (see :func:`add_files_changes`).
    :param sink: ``sink(read)``, given the copy as it is written instead
        of writing a file (e.g. an upload): xorriso's standard output, or
        for UDF media a temporary file that is removed afterwards.
    :returns: ``(path of the copy, Manifest)``; the caller removes the copy.
        With ``sink``: ``(what sink returned, Manifest)``.
    :raises isoplugin.exception.ProfileNotFound: unknown profile name.
    :raises isoplugin.exception.ProfileNotDetected: no profile recognises
        the ISO.
    :raises isoplugin.exception.TemplateVariableError: unknown or missing
        variable.
    :raises isoplugin.exception.AnswerFileInvalid: the answer does not
        parse.
    :raises isoplugin.exception.PrepareFailed: xorriso (pycdlib for UDF
        media) is missing or failed, or the ISO has no boot entry to
        change.
    :raises isoplugin.exception.NotAnISO: the source is not an ISO.
    """
    if isinstance(kernel_args, str):
        kernel_args = kernel_args.split()
    with isoinfo.open_files(source) as files:
        looked_at = []
        if profile is None:
            profile, match = profiles.detect(files)
            looked_at = match.looked_at
        elif isinstance(profile, str):
            profile = profiles.get_profile(profile)
        resolved = profile.resolve(values)
        if answer is None:
            answer = profile.render(values)
        else:
            profile.validate(answer)
        out = None
        if sink is None:
            fd, out = tempfile.mkstemp(prefix='isoplugin-prepared-',
                                       suffix='.iso', dir=output_dir)
            os.close(fd)
        workdir = tempfile.mkdtemp(prefix='isoplugin-prepare-')
        try:
            ctx = base.PrepareContext(files, workdir, kernel_args, resolved)
            with timed('changing the boot files'):
                profile.modify_iso(ctx, answer)
                add_files_changes(ctx, add_files)
            changes = [{'path': c.path, 'action': c.action, 'note': c.note,
                        'sha256': _tree_sha256(c.local)}
                       for c in ctx.changes]
            if uses_udf(files):
                if files.info.format == 'udf':
                    raise exception.PrepareFailed(
                        source=files.name,
                        reason=_('it is UDF only, without the ISO 9660 '
                                 'bridge that Windows media have, and the '
                                 'UDF writer (pycdlib) needs it'))
                out = _write_udf_copy(os.fspath(source), ctx.changes, out,
                                      sink, files.name, output_dir)
            else:
                xorriso = find_xorriso()
                with timed('reading the boot equipment'):
                    report = boot_report(xorriso, os.fspath(source))
                grown, result = False, None
                if growing.can_grow(report):
                    grown, result = _grown_copy(
                        xorriso, os.fspath(source), ctx.changes,
                        files.has_joliet, report, workdir, out, sink,
                        files.name)
                if grown:
                    out = result
                else:
                    cmd = xorriso_command(xorriso, os.fspath(source),
                                          ctx.changes,
                                          joliet=files.has_joliet,
                                          report=report)
                    if sink is None:
                        _run_xorriso(cmd, out, files.name)
                    else:
                        out = _stream_xorriso(cmd, sink, files.name)
            properties = profile.image_properties(files, resolved)
            warnings = list(ctx.warnings)
        except BaseException:
            if sink is None:
                os.unlink(out)
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    manifest = Manifest(
        source=os.fspath(source),
        output=out if sink is None else '', profile=profile.name,
        detected=looked_at, answer_kind=profile.answer_kind,
        answer_sha256=hashlib.sha256(answer.encode('utf-8')).hexdigest(),
        changes=changes, kernel_args=list(kernel_args),
        variables=profile.redact(resolved), properties=properties,
        warnings=warnings)
    LOG.info('Prepared %(out)s from %(src)s with profile %(profile)s: '
             '%(n)d file(s) changed',
             {'out': out, 'src': source, 'profile': profile.name,
              'n': len(changes)})
    return out, manifest
