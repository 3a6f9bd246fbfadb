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

"""The base class of install profiles, and the data they are made of.

A profile describes one installer family (Debian's d-i, Ubuntu's
subiquity, anaconda, AutoYaST, Windows Setup...): how to recognise its
media (:class:`Rule`, data), its answer-file template and variables
(:class:`Variable`, data), and what to change on a copy of the ISO so that
the installer runs unattended and powers off at the end
(:meth:`Profile.modify_iso`, working on a :class:`PrepareContext`).

A profile is handed an :class:`isoplugin.isoinfo.IsoFiles` and a
:class:`PrepareContext`, never the build pipeline: it can be tested with
an ISO file alone.
"""

import abc
import dataclasses
import gzip
import os
import posixpath
import re
import shlex
import shutil
import subprocess

from oslo_log import log as logging

from isoplugin import exception
from isoplugin.i18n import _
from isoplugin.profiles import bootcfg

LOG = logging.getLogger(__name__)

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'templates')

_PLACEHOLDER = re.compile(r'\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}')

#: Kernel arguments that send the installer's and the installed system's
#: console to the first serial port (Nova's console log).
SERIAL_ARGS = ('console=tty0', 'console=ttyS0,115200n8')


@dataclasses.dataclass(frozen=True)
class Variable(object):
    """A template variable.

    :ivar name: its name, as given to ``--set NAME=VALUE``.
    :ivar default: the value used when none is given.
    :ivar help: one line for ``openstack iso profile show``.
    :ivar secret: keep the value out of logs, properties and manifests.
    :ivar required: a value must be given (there is no usable default).
    :ivar kind: ``'str'``, ``'list'`` (given as a comma or space separated
        string, or a list) or ``'bool'``.
    """

    name: str
    default: object = ''
    help: str = ''
    secret: bool = False
    required: bool = False
    kind: str = 'str'


@dataclasses.dataclass(frozen=True)
class Rule(object):
    """One way to recognise a family's media: every condition given holds.

    :ivar label: a regular expression searched (case-insensitively) in the
        volume label.
    :ivar all_of: paths that must all exist on the image.
    :ivar any_of: paths of which at least one must exist.
    :ivar none_of: paths that must not exist.
    """

    label: str = None
    all_of: tuple = ()
    any_of: tuple = ()
    none_of: tuple = ()


@dataclasses.dataclass
class Match(object):
    """A profile's verdict on an image.

    :ivar profile: the profile's name.
    :ivar matched: one of its rules holds.
    :ivar score: how many conditions the best rule checked (a more
        specific match wins).
    :ivar looked_at: what was checked, e.g. ``"/casper: found"``.
    """

    profile: str
    matched: bool
    score: int = 0
    looked_at: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Change(object):
    """One file of the prepared ISO that differs from the source."""

    path: str
    action: str      # 'added' or 'replaced'
    note: str
    local: str = dataclasses.field(default=None, repr=False)


COMMON_VARIABLES = (
    Variable('locale', 'en_US.UTF-8', 'Installed system locale.'),
    Variable('keyboard', 'us', 'Keyboard layout.'),
    Variable('timezone', 'Etc/UTC', 'Time zone (tz database name).'),
    Variable('disk', '', 'Target disk (default: the first disk).'),
    Variable('disk_layout', 'plain',
             'plain (one root partition, no swap: growroot can grow it) '
             'or lvm.'),
    Variable('packages', (), 'Packages to install in addition to the '
             "profile's cloud set.", kind='list'),
    Variable('ssh_key', '', "SSH public key for root's first login; "
             "root's password is then locked."),
    Variable('password_hash', '', 'crypt(3) hash of the root password '
             '(default: root has no password).', secret=True),
    Variable('proxy', '', 'HTTP proxy for the installer, e.g. '
             'http://proxy:3128.'),
    Variable('mirror', '', 'Package mirror URL (default: the '
             "family's own, or the ISO)."),
    Variable('early_command', '', 'Shell command run at the start of '
             'the install.'),
    Variable('late_command', '', 'Shell command run at the end of the '
             'install, in the installed system.'),
    Variable('hostname', 'localhost', 'Host name during the install '
             '(cloud-init sets the real one).'),
)


class PrepareContext(object):
    """What a profile may do to the prepared copy of an ISO.

    The profile reads files of the source image through :attr:`files` and
    records new or replaced files with :meth:`put` / :meth:`put_file`;
    :mod:`isoplugin.remaster` then writes the copy.

    :ivar files: the source image, an :class:`isoplugin.isoinfo.IsoFiles`.
    :ivar workdir: a private directory for the new files' content.
    :ivar kernel_args: extra kernel arguments the user asked for.
    :ivar values: the profile's resolved variables (:meth:`Profile.resolve`).
    :ivar changes: the :class:`Change` list, in order.
    :ivar warnings: what could not be done, for the manifest and the user.
    """

    def __init__(self, files, workdir, kernel_args=(), values=None):
        self.files = files
        self.workdir = workdir
        self.kernel_args = tuple(kernel_args)
        self.values = values or {}
        self.changes = []
        self.warnings = []
        self._n = 0

    def _local(self, path):
        self._n += 1
        return os.path.join(self.workdir, '%03d-%s' % (
            self._n, os.path.basename(path.rstrip('/')) or 'file'))

    def warn(self, message):
        """Record something the copy lacks (it is still usable)."""
        LOG.warning('%(source)s: %(message)s',
                    {'source': self.files.name, 'message': message})
        self.warnings.append(message)

    def read_text(self, path):
        """The text of a file of the source image (UTF-8, lenient)."""
        return self.files.read(path).decode('utf-8', 'replace')

    def copy_out(self, path):
        """Copy a file of the source image to the work directory.

        :returns: the local path of the copy.
        """
        local = self._local(path)
        with open(local, 'wb') as f:
            self.files.copy(path, f)
        return local

    def put(self, path, data, note):
        """Add or replace ``path`` in the copy with ``data``."""
        local = self._local(path)
        with open(local, 'wb') as f:
            f.write(data.encode('utf-8') if isinstance(data, str) else data)
        self.put_file(path, local, note)

    def put_file(self, path, local, note):
        """Add or replace ``path`` in the copy with the file ``local``."""
        path = '/' + path.strip('/')
        self.changes = [c for c in self.changes if c.path != path]
        action = 'replaced' if self.files.exists(path) else 'added'
        self.changes.append(Change(path, action, note, local))


def newc_cpio(files):
    """A gzip'd newc cpio archive holding ``files``.

    :param files: ``{name: bytes}``; names without a leading slash.
    :returns: the compressed archive, ready to be appended to an initrd
        (the kernel unpacks concatenated archives in order, later files
        winning).
    """
    out = bytearray()

    def entry(name, data, mode):
        name_b = name.encode('utf-8') + b'\0'
        fields = (len(out), mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0,
                  len(name_b), 0)
        out.extend(b'070701' + b''.join(b'%08X' % v for v in fields))
        out.extend(name_b + b'\0' * (-(110 + len(name_b)) % 4))
        out.extend(data + b'\0' * (-len(data) % 4))

    dirs = set()
    for name, data in files.items():
        name = name.strip('/')
        parts = name.split('/')[:-1]
        for i in range(1, len(parts) + 1):
            d = '/'.join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                entry(d, b'', 0o040755)
        entry(name, data, 0o100644)
    entry('TRAILER!!!', b'', 0)
    return gzip.compress(bytes(out), mtime=0)


class Profile(object, metaclass=abc.ABCMeta):
    """Base class of install profiles.

    A profile is loaded by name from the ``isoplugin.profiles`` entry point
    group and instantiated without arguments; it registers nothing on
    import. A subclass sets the class attributes below (data) and
    implements :meth:`validate`; it overrides :meth:`context` to derive
    family-specific template fields and :meth:`modify_iso` when the answer
    file is not simply a file on the ISO.

    :cvar name: the profile's name (its entry point name).
    :cvar description: one line.
    :cvar answer_kind: what the answer file is (``preseed``,
        ``autoinstall``, ``kickstart``, ``autoyast``, ``autounattend``).
    :cvar template: file name of the answer-file template in
        :attr:`template_dir`; placeholders are ``{{name}}``.
    :cvar template_dir: the directory of the template (default
        ``isoplugin/profiles/templates``; a third-party profile points it at
        its own package).
    :cvar answer_path: where the answer file goes on the ISO.
    :cvar rules: the :class:`Rule` tuple that recognises the family.
    :cvar variables: the :class:`Variable` tuple the template accepts.
    :cvar kernel_args: arguments added to the install boot entry.
    :cvar boot_entry: regular expression for the label or title of the
        boot entry to make the default (the first entry with a kernel when
        none matches).
    :cvar isolinux_configs: isolinux/syslinux files (BIOS menus).
    :cvar grub_configs: GRUB files (UEFI menus, and BIOS on GRUB-only
        media).
    :cvar efi_image_configs: ``(EFI image, GRUB file inside it)`` pairs:
        menus that UEFI firmware reads from the El Torito EFI image (a FAT
        image) rather than from the ISO, as lorax makes them; rewritten
        with mtools when it is installed.
    :cvar os_type: ``linux`` or ``windows``.
    :cvar os_distro: ``os_distro`` when the ISO does not tell.
    :cvar properties_extra: image properties the family's output has.
    """

    name = None
    description = ''
    answer_kind = None
    template = None
    template_dir = TEMPLATE_DIR
    answer_path = None
    rules = ()
    variables = COMMON_VARIABLES
    kernel_args = ()
    boot_entry = None
    isolinux_configs = ('isolinux/isolinux.cfg',)
    grub_configs = ('boot/grub/grub.cfg',)
    efi_image_configs = ()
    os_type = 'linux'
    os_distro = None
    properties_extra = {'hw_qemu_guest_agent': 'yes'}

    # -- detection ---------------------------------------------------------

    def detect(self, files):
        """Check whether ``files`` holds this family's installer.

        :param files: an :class:`isoplugin.isoinfo.IsoFiles`.
        :returns: a :class:`Match` (``matched`` false when no rule holds).
        """
        label = files.info.volume_id or ''
        best = Match(self.name, False)
        for rule in self.rules:
            looked, ok, score = [], True, 0
            if rule.label is not None:
                hit = re.search(rule.label, label, re.IGNORECASE)
                looked.append("label %r ~ /%s/: %s" % (
                    label, rule.label, 'yes' if hit else 'no'))
                ok, score = ok and bool(hit), score + 1
            for path in rule.all_of:
                hit = files.exists(path)
                looked.append('/%s: %s' % (path, 'found' if hit
                                           else 'missing'))
                ok, score = ok and hit, score + 1
            if rule.any_of:
                hits = [p for p in rule.any_of if files.exists(p)]
                looked.append('one of %s: %s' % (
                    ', '.join('/' + p for p in rule.any_of),
                    ', '.join('/' + p for p in hits) or 'none'))
                ok, score = ok and bool(hits), score + 1
            for path in rule.none_of:
                hit = files.exists(path)
                looked.append('/%s absent: %s' % (path, 'no' if hit
                                                  else 'yes'))
                ok, score = ok and not hit, score + 1
            best.looked_at.extend(looked)
            if ok and score > best.score:
                best.matched, best.score = True, score
        return best

    # -- variables and rendering -------------------------------------------

    def variable_map(self):
        """``{name: Variable}`` of the variables this profile accepts."""
        return {v.name: v for v in self.variables}

    def secret_names(self):
        """Names of the variables whose values must not be shown."""
        return {v.name for v in self.variables if v.secret}

    def redact(self, values):
        """A copy of ``values`` with secret values replaced by ``***``."""
        secret = self.secret_names()
        return {k: ('***' if k in secret and v else v)
                for k, v in values.items()}

    def resolve(self, values=None):
        """Fill in defaults and check the given values.

        :param values: ``{name: value}``; strings for list variables are
            split on commas and white space; ``'true'``/``'false'`` for
            booleans.
        :returns: ``{name: value}`` for every variable.
        :raises isoplugin.exception.TemplateVariableError: an unknown
            variable, a required one missing, or a value of the wrong
            kind.
        """
        known = self.variable_map()
        values = dict(values or {})
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise exception.TemplateVariableError(
                profile=self.name,
                reason=_('unknown variable(s) %(names)s; known: '
                         '%(known)s') % {'names': ', '.join(unknown),
                                         'known': ', '.join(sorted(known))})
        out = {}
        for name, var in known.items():
            value = values.get(name, var.default)
            if var.kind == 'list':
                if isinstance(value, str):
                    value = [v for v in re.split(r'[,\s]+', value) if v]
                value = list(value or ())
            elif var.kind == 'bool' and isinstance(value, str):
                if value.lower() not in ('true', 'false', 'yes', 'no',
                                         '1', '0'):
                    raise exception.TemplateVariableError(
                        profile=self.name,
                        reason=_('%s must be true or false') % name)
                value = value.lower() in ('true', 'yes', '1')
            elif var.kind == 'str':
                value = '' if value is None else str(value)
            if var.required and not value:
                raise exception.TemplateVariableError(
                    profile=self.name,
                    reason=_('variable %s is required') % name)
            out[name] = value
        return out

    #: The ``disk_layout`` values the template knows.
    disk_layouts = ('plain', 'lvm')

    def check_values(self, values):
        """Check resolved values beyond their kind (called by render).

        :raises isoplugin.exception.TemplateVariableError: a bad value.
        """
        layout = values.get('disk_layout')
        if layout is not None and layout not in self.disk_layouts:
            raise exception.TemplateVariableError(
                profile=self.name,
                reason=_('disk_layout must be one of %s') %
                ', '.join(self.disk_layouts))

    def context(self, values):
        """Template fields from resolved values.

        The default passes strings through and joins lists with spaces;
        families override this to quote values for their file format and
        to derive fragments (root account, disk, commands).
        """
        return {k: (' '.join(v) if isinstance(v, list) else v)
                for k, v in values.items()}

    def load_template(self):
        """The text of this profile's answer-file template."""
        if not self.template:
            raise exception.TemplateVariableError(
                profile=self.name,
                reason=_('this profile has no template: give an answer '
                         'file'))
        with open(os.path.join(self.template_dir, self.template),
                  encoding='utf-8') as f:
            return f.read()

    def render(self, values=None):
        """Render the answer file.

        :param values: variable values (see :meth:`resolve`).
        :returns: the answer file's text, already validated.
        :raises isoplugin.exception.TemplateVariableError: see
            :meth:`resolve`; also a template field with no value.
        :raises isoplugin.exception.AnswerFileInvalid: the result does not
            parse (a value broke the file's syntax).
        """
        resolved = self.resolve(values)
        self.check_values(resolved)
        fields = self.context(resolved)
        text = self.load_template()
        missing = sorted({m for m in _PLACEHOLDER.findall(text)
                          if m not in fields})
        if missing:
            raise exception.TemplateVariableError(
                profile=self.name,
                reason=_('the template uses %s, which has no value') %
                ', '.join(missing))
        text = _PLACEHOLDER.sub(lambda m: str(fields[m.group(1)]), text)
        self.validate(text)
        return text

    def cache_text(self, text):
        """The answer file as the prepared ISO's cache key must see it.

        The text itself, except where this profile put a value it made at
        random for one rendering and tells nobody (Windows' default
        Administrator password): two renderings that differ only there
        install the same system, so a copy made with either is reusable.

        :param text: an answer file this profile instance rendered, or the
            user's own (then returned as it is).
        """
        for value in getattr(self, '_generated', ()):
            text = text.replace(value, '{{generated}}')
        return text

    def generated(self, value):
        """Remember a random value put into a rendering (see cache_text)."""
        if not hasattr(self, '_generated'):
            self._generated = set()
        self._generated.add(value)
        return value

    @abc.abstractmethod
    def validate(self, text):
        """Check that an answer file parses.

        :param text: the answer file's text.
        :raises isoplugin.exception.AnswerFileInvalid: it does not.
        """

    def invalid(self, reason):
        """An :class:`~isoplugin.exception.AnswerFileInvalid` to raise."""
        return exception.AnswerFileInvalid(kind=self.answer_kind,
                                           reason=reason)

    # -- the prepared ISO --------------------------------------------------

    def boot_args(self, ctx):
        """Kernel arguments for the install entry: ``(before, after)``.

        ``before`` go before d-i's ``---`` separator (installer only),
        ``after`` at the end (also kept by installers that copy them).
        """
        return list(self.kernel_args), list(SERIAL_ARGS) + list(
            ctx.kernel_args)

    def entry_regex(self, ctx):
        """The regular expression choosing the boot entry to change."""
        return self.boot_entry

    def modify_iso(self, ctx, answer):
        """Put the answer file in place and rewrite the boot menus.

        :param ctx: a :class:`PrepareContext`.
        :param answer: the answer file's text.
        :returns: the initrd paths of the entries that now boot by default.
        :raises isoplugin.exception.PrepareFailed: no boot entry found.
        """
        if self.answer_path:
            ctx.put(self.answer_path, answer, _('%s answer file') %
                    self.answer_kind)
        return self.rewrite_boot_menus(ctx)

    def rewrite_boot_menus(self, ctx):
        """Make the install entry the default, with no wait, in every menu.

        :returns: the initrd paths of the chosen entries.
        """
        before, after = self.boot_args(ctx)
        entry_re = self.entry_regex(ctx)
        initrds, edited = [], []
        iso_cfgs = [p for p in self.isolinux_configs if ctx.files.exists(p)]
        if iso_cfgs:
            texts = [ctx.read_text(p) for p in iso_cfgs]
            result = bootcfg.edit_isolinux(texts, entry_re, before, after)
            if result is not None:
                new_texts, label, found = result
                for path, old, new in zip(iso_cfgs, texts, new_texts):
                    if old != new:
                        ctx.put(path, new, _('BIOS menu: default %s, no '
                                             'wait, kernel arguments') %
                                label)
                base_dir = posixpath.dirname('/' + iso_cfgs[0])
                initrds += [posixpath.join(base_dir, p) for p in found]
                edited += iso_cfgs
        for path in self.grub_configs:
            if not ctx.files.exists(path):
                continue
            result = bootcfg.edit_grub(ctx.read_text(path), entry_re, before,
                                       after)
            if result is not None:
                new, title, found = result
                ctx.put(path, new, _('GRUB menu: default %s, no wait, '
                                     'kernel arguments') % title)
                initrds += found
                edited.append(path)
        for image, inner in self.efi_image_configs:
            if ctx.files.exists(image) and self._rewrite_efi_image(
                    ctx, image, inner, entry_re, before, after):
                edited.append('%s:%s' % (image, inner))
        looked = list(self.isolinux_configs) + list(self.grub_configs)
        if looked and not edited:
            raise exception.PrepareFailed(
                source=ctx.files.name,
                reason=_('no boot entry with a kernel in %s') %
                ', '.join('/' + p for p in looked))
        LOG.debug('Rewrote boot menus %(menus)s', {'menus': edited})
        return list(dict.fromkeys(initrds))

    def _rewrite_efi_image(self, ctx, image, inner, entry_re, before,
                           after):
        mtype, mcopy = shutil.which('mtype'), shutil.which('mcopy')
        if not (mtype and mcopy):
            ctx.warn(_('the UEFI menu inside /%s was not rewritten: mtools '
                       'is not installed') % image)
            return False
        env = dict(os.environ, MTOOLS_SKIP_CHECK='1')
        local = ctx.copy_out(image)
        proc = subprocess.run([mtype, '-i', local, '::/' + inner],
                              capture_output=True, env=env)
        result = None
        if proc.returncode == 0:
            result = bootcfg.edit_grub(proc.stdout.decode('utf-8', 'replace'),
                                       entry_re, before, after)
        if result is None:  # not FAT, no such file, or no kernel entry
            os.unlink(local)
            return False
        new, title, _found = result
        with open(local + '.cfg', 'w', encoding='utf-8') as f:
            f.write(new)
        proc = subprocess.run([mcopy, '-o', '-i', local, local + '.cfg',
                               '::/' + inner], capture_output=True, env=env)
        if proc.returncode != 0:
            raise exception.PrepareFailed(
                source=ctx.files.name,
                reason=_('cannot write /%(inner)s into /%(image)s: '
                         '%(err)s') % {'inner': inner, 'image': image,
                                       'err': proc.stderr.decode(
                                           'utf-8', 'replace').strip()})
        ctx.put_file(image, local, _('EFI image: its GRUB menu (%(inner)s):'
                                     ' default %(title)s, no wait, kernel '
                                     'arguments') % {'inner': inner,
                                                     'title': title})
        return True

    # -- description -------------------------------------------------------

    def describe(self):
        """What ``openstack iso profile show`` prints: plain data only."""
        def rule(r):
            parts = []
            if r.label is not None:
                parts.append('label ~ /%s/' % r.label)
            parts += ['/%s' % p for p in r.all_of]
            if r.any_of:
                parts.append('one of ' + ', '.join('/' + p for p in r.any_of))
            parts += ['no /%s' % p for p in r.none_of]
            return ' and '.join(parts)

        return {
            'name': self.name, 'description': str(self.description),
            'answer_kind': self.answer_kind,
            'answer_path': self.answer_path,
            'kernel_args': list(self.kernel_args),
            'detection': [rule(r) for r in self.rules],
            'variables': [{'name': v.name, 'default': v.default,
                           'secret': v.secret, 'required': v.required,
                           'kind': v.kind, 'help': v.help}
                          for v in self.variables],
        }

    # -- output ------------------------------------------------------------

    def image_properties(self, files, values=None):
        """Glance properties of the images built with this profile.

        :param files: the source image, an :class:`isoinfo.IsoFiles`.
        :param values: the resolved variables, if any (never copied into
            the properties).
        """
        info = files.info
        props = {'os_type': self.os_type,
                 'os_distro': info.os_distro or self.os_distro,
                 'os_version': info.os_version,
                 'architecture': info.architecture,
                 'isoplugin_profile': self.name}
        props.update(self.properties_extra)
        return {k: v for k, v in props.items() if v is not None}


def shell_join(words):
    """Quote words for a POSIX shell."""
    return ' '.join(shlex.quote(w) for w in words)
