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

"""Rewrite isolinux (BIOS) and GRUB (UEFI) menus for an unattended boot.

Both editors make one entry the default, boot it after one second (isolinux
``timeout 10``, GRUB ``set timeout=1``) and add kernel arguments to it; they
change nothing else, so a person inspecting the prepared ISO finds the
distribution's menu as it was, plus these edits.

Arguments come in two lists: ``before`` goes before d-i's ``---``
separator when the entry has one (the installer's own arguments), ``after``
at the end of the line (arguments the installer copies to the installed
system, such as the serial console).
"""

import posixpath
import re

ISOLINUX_TIMEOUT = 10   # tenths of a second
GRUB_TIMEOUT = 1        # seconds

_LABEL = re.compile(r'^\s*label\s+(\S+)', re.IGNORECASE)
_KERNEL = re.compile(r'^\s*(?:kernel|linux)\s+(\S+)', re.IGNORECASE)
_APPEND = re.compile(r'^(\s*append)(?:\s+(.*))?$', re.IGNORECASE)
_INITRD_LINE = re.compile(r'^\s*initrd\s+(\S+)', re.IGNORECASE)
_MENU_LABEL = re.compile(r'^\s*menu\s+label\s+(.*)$', re.IGNORECASE)
_MENU_DEFAULT = re.compile(r'^\s*menu\s+default\s*$', re.IGNORECASE)
_TIMEOUT = re.compile(r'^(\s*)timeout\s+\d+\s*$', re.IGNORECASE)
_DEFAULT = re.compile(r'^(\s*)default\s+\S.*$', re.IGNORECASE)

_ENTRY = re.compile(
    r'''^\s*(menuentry|submenu)\s+(?:--\S+\s+)*(?:(['"])(.*?)\2|(\S+))''')
_GLINUX = re.compile(r'^(\s*(?:linux|linuxefi|linux16)\s+\S+)(.*)$')
_GINITRD = re.compile(r'^\s*(?:initrd|initrdefi|initrd16)\s+(.*)$')
_GTIMEOUT = re.compile(r'^(\s*)(?:set\s+)?timeout=\S*\s*$')
_GDEFAULT = re.compile(r'^(\s*)(?:set\s+)?default=\S*\s*$')


def add_args(args, before, after, quote=False):
    """Return the argument string ``args`` with the new arguments added.

    Arguments already present are not added twice.
    """
    words = (args or '').split()
    if quote:
        before = [_grub_quote(a) for a in before]
        after = [_grub_quote(a) for a in after]
    new_before = [a for a in before if a not in words]
    new_after = [a for a in after if a not in words]
    if '---' in words:
        i = words.index('---')
        words = words[:i] + new_before + words[i:] + new_after
    else:
        words = words + new_before + new_after
    return ' '.join(words)


def _grub_quote(arg):
    if re.search(r'''[\s;$'"{}|&<>]''', arg):
        return "'%s'" % arg.replace("'", "'\\''")
    return arg


def _blocks(lines):
    """``[(label, start, end)]`` of the label blocks in ``lines``."""
    starts = [(i, m.group(1)) for i, line in enumerate(lines)
              for m in [_LABEL.match(line)] if m]
    out = []
    for n, (i, label) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        out.append((label, i, end))
    return out


def edit_isolinux(texts, entry_re, before, after):
    """Rewrite a set of isolinux files (a main file and its includes).

    :param texts: the files' texts; the first is the main file (new
        ``timeout``/``default`` lines go there when none exists).
    :param entry_re: regular expression for the label, then the menu label,
        of the entry to boot; ``None``: the first entry with a kernel.
    :returns: ``(new texts, label, initrd paths)``, or ``None`` when no
        file has an entry with a kernel. Relative initrd paths are returned
        as they are written.
    """
    files = [t.splitlines() for t in texts]
    candidates = []
    for fi, lines in enumerate(files):
        for label, start, end in _blocks(lines):
            body = lines[start:end]
            kernel = [m.group(1) for ln in body for m in [_KERNEL.match(ln)]
                      if m]
            if kernel and not kernel[0].lower().endswith('.c32'):
                menu = [m.group(1) for ln in body
                        for m in [_MENU_LABEL.match(ln)] if m]
                candidates.append((fi, label, start, end,
                                   menu[0] if menu else ''))
    if not candidates:
        return None
    chosen = candidates[0]
    if entry_re:
        for key in (1, 4):
            hits = [c for c in candidates
                    if re.search(entry_re, c[key].replace('^', ''), re.I)]
            if hits:
                chosen = hits[0]
                break
    fi, label, start, end, _menu = chosen

    initrds = []
    lines = files[fi]
    body = lines[start:end]
    has_append = False
    for i, line in enumerate(body):
        m = _APPEND.match(line)
        if m:
            has_append = True
            args = m.group(2) or ''
            initrds += [p for w in args.split() if w.startswith('initrd=')
                        for p in w[len('initrd='):].split(',') if p]
            body[i] = '%s %s' % (m.group(1), add_args(args, before, after))
        m = _INITRD_LINE.match(line)
        if m:
            initrds.append(m.group(1))
    if not has_append:
        k = next(i for i, ln in enumerate(body) if _KERNEL.match(ln))
        body.insert(k + 1, '  append %s' % add_args('', before, after))
    body = [ln for ln in body if not _MENU_DEFAULT.match(ln)]
    body.insert(1, '  menu default')
    files[fi] = ([ln for ln in lines[:start] if not _MENU_DEFAULT.match(ln)]
                 + body +
                 [ln for ln in lines[end:] if not _MENU_DEFAULT.match(ln)])

    seen_timeout = seen_default = False
    for n, lines in enumerate(files):
        out = []
        for line in lines:
            m = _TIMEOUT.match(line)
            if m:
                seen_timeout = True
                line = '%stimeout %d' % (m.group(1), ISOLINUX_TIMEOUT)
            m = _DEFAULT.match(line)
            if m:
                seen_default = True
                line = '%sdefault %s' % (m.group(1), label)
            if n != fi and _MENU_DEFAULT.match(line):
                continue
            out.append(line)
        files[n] = out
    head = []
    if not seen_default:
        head.append('default %s' % label)
    if not seen_timeout:
        head.append('timeout %d' % ISOLINUX_TIMEOUT)
    files[0] = head + files[0]
    return (['\n'.join(lines) + '\n' for lines in files], label,
            [posixpath.normpath(p) for p in initrds])


def _depth_change(line):
    stripped = re.sub(r'''(['"]).*?\1''', '', line.split('#', 1)[0])
    return stripped.count('{') - stripped.count('}')


def edit_grub(text, entry_re, before, after):
    """Rewrite a GRUB configuration file.

    :param entry_re: regular expression for the title of the top-level
        entry to boot; ``None``: the first entry with a ``linux`` line.
    :returns: ``(new text, title, initrd paths)``, or ``None`` when the
        file has no top-level entry with a kernel (a file that only sources
        another one).
    """
    lines = text.splitlines()
    entries, depth, index, current = [], 0, -1, None
    for i, line in enumerate(lines):
        m = _ENTRY.match(line)
        if m and depth == 0:
            index += 1
            current = {'index': index, 'title': m.group(3) or m.group(4),
                       'kind': m.group(1), 'linux': None, 'initrd': []}
            entries.append(current)
        elif current is not None and depth > 0:
            if _GLINUX.match(line) and current['linux'] is None:
                current['linux'] = i
            m2 = _GINITRD.match(line)
            if m2:
                current['initrd'] += m2.group(1).split()
        depth = max(0, depth + _depth_change(line))
        if depth == 0:
            current = None
    usable = [e for e in entries
              if e['kind'] == 'menuentry' and e['linux'] is not None]
    if not usable:
        return None
    chosen = usable[0]
    if entry_re:
        hits = [e for e in usable if re.search(entry_re, e['title'], re.I)]
        chosen = hits[0] if hits else chosen
    m = _GLINUX.match(lines[chosen['linux']])
    lines[chosen['linux']] = '%s %s' % (
        m.group(1), add_args(m.group(2), before, after, quote=True))
    seen_timeout = seen_default = False
    for i, line in enumerate(lines):
        m = _GTIMEOUT.match(line)
        if m:
            seen_timeout = True
            lines[i] = '%sset timeout=%d' % (m.group(1), GRUB_TIMEOUT)
        m = _GDEFAULT.match(line)
        if m:
            seen_default = True
            lines[i] = '%sset default=%d' % (m.group(1), chosen['index'])
    head = []
    if not seen_default:
        head.append('set default=%d' % chosen['index'])
    if not seen_timeout:
        head.append('set timeout=%d' % GRUB_TIMEOUT)
    return ('\n'.join(head + lines) + '\n', chosen['title'],
            [posixpath.normpath(p) for p in chosen['initrd']])
