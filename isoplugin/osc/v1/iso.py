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

"""``openstack iso ...``: the catalog of installer ISOs.

Thin commands over :class:`isoplugin.catalog.Catalog` and
:mod:`isoplugin.registration`: argument mapping and formatting only; the
fields and columns come from :mod:`isoplugin.presentation`, which is light.
The rest of the library is imported inside ``take_action`` so that
``openstack --help`` stays fast.
"""

import sys

from osc_lib.command import command

from isoplugin.osc import utils
from isoplugin import presentation


def _catalog(app):
    from isoplugin import catalog

    client = app.client_manager.iso
    return catalog.Catalog(client.conn, client.conf)


def _show(info):
    """ShowOne's (columns, values) for a dict of describe()."""
    info = dict(info, tags=', '.join(info['tags']))
    columns = presentation.show_columns(info)
    return columns, tuple(info[c] for c in columns)


def _say(text):
    sys.stderr.write(text + '\n')


class _ProgressBar(object):
    """A one-line progress bar on stderr."""

    def __init__(self, label):
        self.label = label
        self.last = -1

    def __call__(self, done, total):
        if total:
            pct = int(done * 100 / total)
            if pct == self.last:
                return
            self.last = pct
            bar = '#' * (pct // 4)
            sys.stderr.write('\r%s [%-25s] %3d%% %d/%d MiB' % (
                self.label, bar, pct, done >> 20, total >> 20))
        else:
            sys.stderr.write('\r%s %d MiB' % (self.label, done >> 20))
        if total and done >= total:
            sys.stderr.write('\n')
        sys.stderr.flush()


def _add_metadata_args(parser, create):
    parser.add_argument('--description', metavar='<text>',
                        help='Description of the ISO')
    parser.add_argument('--os-type', metavar='<os-type>',
                        help='linux or windows (detected from the ISO when '
                             'not given)' if create else 'linux or windows')
    parser.add_argument('--os-distro', metavar='<distro>',
                        help='OS distribution, e.g. ubuntu' +
                             (' (detected)' if create else ''))
    parser.add_argument('--os-version', metavar='<version>',
                        help='OS version, e.g. 24.04' +
                             (' (detected)' if create else ''))
    parser.add_argument('--architecture', metavar='<arch>',
                        help='CPU architecture, e.g. x86_64' +
                             (' (detected)' if create else ''))
    parser.add_argument('--visibility', metavar='<visibility>',
                        default='private' if create else None,
                        help='private (default), shared, community or '
                             'public (public needs the admin role)'
                        if create else
                        'private, shared, community or public')
    prot = parser.add_mutually_exclusive_group()
    prot.add_argument('--protected', action='store_true', default=None,
                      help='Protect the ISO against deletion')
    prot.add_argument('--unprotected', dest='protected',
                      action='store_false',
                      help='Allow the ISO to be deleted')
    hid = parser.add_mutually_exclusive_group()
    hid.add_argument('--hidden', action='store_true', default=None,
                     help='Hide the ISO from ordinary image lists (the '
                          'default for new ISOs: [glance] hide_isos)')
    hid.add_argument('--unhidden', dest='hidden', action='store_false',
                     help='Show the ISO in ordinary image lists')
    for flag, text in (('featured', 'Featured in the portal'),
                       ('extractable', 'Download allowed'),
                       ('password-enabled', 'Password setting enabled')):
        dest = flag.replace('-', '_')
        group = parser.add_mutually_exclusive_group()
        group.add_argument('--%s' % flag, dest=dest, action='store_true',
                           default=None, help=text)
        group.add_argument('--no-%s' % flag, dest=dest,
                           action='store_false',
                           help='Unset: %s' % text.lower())
    parser.add_argument('--min-disk', metavar='<GiB>', type=int,
                        help='Minimum disk size, in GiB, of a server built '
                             'from the ISO')
    parser.add_argument('--min-ram', metavar='<MiB>', type=int,
                        help='Minimum RAM, in MiB, of a server built from '
                             'the ISO')
    parser.add_argument('--tag', metavar='<tag>', action='append',
                        dest='tags', default=[],
                        help='Tag to add (repeat for several)')


class CreateIso(command.ShowOne):
    """Register an installer ISO from a local file or a URL."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('name', metavar='<name>',
                            help='Name of the ISO (unique in the project)')
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument('--file', metavar='<path>',
                            help='Local ISO 9660 or UDF image to upload')
        source.add_argument('--url', metavar='<url>',
                            help='http(s) URL of the ISO; Glance fetches it '
                                 '(web-download) when the cloud allows')
        checksum = parser.add_mutually_exclusive_group()
        checksum.add_argument('--checksum', metavar='<algo:hex>',
                              help='Expected checksum (md5, sha1, sha256, '
                                   'sha384 or sha512), e.g. '
                                   'sha256:9f86...; a mismatch deletes '
                                   'the ISO')
        checksum.add_argument('--checksum-url', metavar='<url>',
                              help='URL (or local path) of the checksum '
                                   'list the distribution publishes '
                                   '(SHA256SUMS, SHA512SUMS...); the '
                                   "line of the ISO's file name is the "
                                   'expected checksum')
        parser.add_argument('--store', metavar='<store>',
                            help='Glance store to upload into')
        imp = parser.add_mutually_exclusive_group()
        imp.add_argument('--import', dest='use_import', action='store_true',
                         default=None,
                         help='With --url: make Glance download the URL '
                              '(web-download)')
        imp.add_argument('--no-import', dest='use_import',
                         action='store_false',
                         help='With --url: stream the URL through this '
                              'client')
        prog = parser.add_mutually_exclusive_group()
        prog.add_argument('--progress', action='store_true', default=None,
                          help='Show a progress bar (default on a '
                               'terminal)')
        prog.add_argument('--no-progress', dest='progress',
                          action='store_false', help='No progress bar')
        _add_metadata_args(parser, create=True)
        return parser

    def take_action(self, parsed_args):
        a = parsed_args
        show_progress = a.progress
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        with utils.command_errors():
            from isoplugin import registration

            cat = _catalog(self.app)
            request = registration.RegistrationRequest(
                a.name, filename=a.file, url=a.url,
                description=a.description, os_type=a.os_type,
                os_distro=a.os_distro, os_version=a.os_version,
                architecture=a.architecture, visibility=a.visibility,
                protected=bool(a.protected), tags=a.tags,
                min_disk=a.min_disk, min_ram=a.min_ram,
                featured=bool(a.featured),
                extractable=True if a.extractable is None else a.extractable,
                password_enabled=bool(a.password_enabled), hidden=a.hidden,
                checksum=a.checksum, checksum_url=a.checksum_url,
                store=a.store, use_import=a.use_import)
            image = registration.Registration(cat).register(
                request,
                progress=_ProgressBar('Uploading') if show_progress
                else None,
                notify=_say)
            return _show(cat.describe(image))


class ListIso(command.Lister):
    """List the installer ISOs of the catalog."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--long', action='store_true',
                            help='Also list size, status, stores, OS '
                                 'fields, visibility, flags, registration '
                                 'date and owner')
        parser.add_argument('--all-projects', action='store_true',
                            help='ISOs of every project (admin only)')
        parser.add_argument('--visibility', metavar='<visibility>',
                            choices=presentation.VISIBILITIES,
                            help='Only ISOs with this visibility')
        parser.add_argument('--name', metavar='<name>',
                            help='Only ISOs with this name')
        parser.add_argument('--tag', metavar='<tag>',
                            help='Only ISOs with this tag')
        parser.add_argument('--limit', metavar='<n>', type=int,
                            help='At most this many ISOs')
        parser.add_argument('--incomplete', action='store_true',
                            help='Only ISOs whose registration has not '
                                 'finished (queued, saving, importing), '
                                 'with the client that created them and '
                                 'whether it still runs')
        return parser

    def take_action(self, parsed_args):
        a = parsed_args
        if a.incomplete:
            with utils.command_errors():
                uploads = _catalog(self.app).incomplete()
            return (presentation.headers(presentation.INCOMPLETE_COLUMNS),
                    [presentation.incomplete_row(u) for u in uploads])
        with utils.command_errors():
            cat = _catalog(self.app)
            images = cat.list(all_projects=a.all_projects, name=a.name,
                              visibility=a.visibility, tag=a.tag,
                              limit=a.limit)
            rows = [cat.describe(i) for i in images]
        columns = (presentation.LONG_LIST_COLUMNS if a.long
                   else presentation.LIST_COLUMNS)
        return (presentation.headers(columns),
                [tuple(r[c] for c in columns) for r in rows])


class ShowIso(command.ShowOne):
    """Show an ISO and the servers using it."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', help='ISO name or ID')
        return parser

    def take_action(self, parsed_args):
        with utils.command_errors():
            info = _catalog(self.app).show(parsed_args.iso)
        info['servers'] = ', '.join('%(name)s (%(id)s)' % s
                                    for s in info['servers'])
        info['projects'] = ', '.join('%(member_id)s (%(status)s)' % m
                                     for m in info['projects'])
        return _show(info)


class SetIso(command.Command):
    """Change an ISO's metadata, or retire or restore it."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', help='ISO name or ID')
        parser.add_argument('--name', metavar='<name>', help='New name')
        _add_metadata_args(parser, create=False)
        parser.add_argument('--remove-tag', metavar='<tag>',
                            action='append', default=[],
                            help='Tag to remove (repeat for several)')
        life = parser.add_mutually_exclusive_group()
        life.add_argument('--retire', action='store_true',
                          help='Hide and deactivate the ISO: servers '
                               'using it keep working, new builds refuse '
                               'it')
        life.add_argument('--restore', action='store_true',
                          help='Undo --retire')
        return parser

    def take_action(self, parsed_args):
        a = parsed_args
        with utils.command_errors():
            _catalog(self.app).update(
                a.iso, name=a.name, description=a.description,
                os_type=a.os_type, os_distro=a.os_distro,
                os_version=a.os_version, architecture=a.architecture,
                visibility=a.visibility, protected=a.protected,
                hidden=a.hidden, featured=a.featured,
                extractable=a.extractable,
                password_enabled=a.password_enabled, min_disk=a.min_disk,
                min_ram=a.min_ram, add_tags=a.tags,
                remove_tags=a.remove_tag, retire=a.retire,
                restore=a.restore)


def _duration(text):
    """argparse type of a duration (90, 30m, 2h, 1d)."""
    import argparse

    try:
        return presentation.parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


class DeleteIso(command.Command):
    """Delete an ISO entirely, or its copies in some stores only.

    With --incomplete, delete the ISOs whose registration a client left
    unfinished instead.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', nargs='?',
                            help='ISO name or ID')
        parser.add_argument('--incomplete', action='store_true',
                            help='Delete the ISOs whose registration did '
                                 'not finish (see "iso list '
                                 '--incomplete"), except those whose '
                                 'client still runs on this host')
        parser.add_argument('--older-than', metavar='<duration>',
                            type=_duration, default=0,
                            help='With --incomplete: only those created '
                                 'at least this long ago (90, 30m, 2h, '
                                 '1d); from another host, give more than '
                                 'the longest upload takes')
        parser.add_argument('--store', metavar='<store>', action='append',
                            dest='stores', default=[],
                            help='Delete the copy in this store only '
                                 '(repeat for several)')
        parser.add_argument('--yes', action='store_true',
                            help='Do not ask for confirmation')
        return parser

    def take_action(self, parsed_args):
        from osc_lib import exceptions

        a = parsed_args
        if a.incomplete == bool(a.iso):
            raise exceptions.CommandError(
                'give an ISO or --incomplete (not both)')
        if a.incomplete:
            with utils.command_errors():
                for upload in _catalog(self.app).delete_incomplete(
                        older_than=a.older_than):
                    self.app.stdout.write('deleted %s (%s, %s)\n' % (
                        upload.id, upload.name, upload.status))
            return
        with utils.command_errors():
            cat = _catalog(self.app)
            image = cat.get(a.iso)
            if not a.yes and sys.stdin.isatty():
                where = (' from store(s) %s' % ', '.join(a.stores)
                         if a.stores else '')
                sys.stderr.write('Delete ISO %s (%s)%s? Type its name to '
                                 'confirm: ' % (image.name, image.id, where))
                sys.stderr.flush()
                answer = sys.stdin.readline().strip()
                if answer != image.name:
                    raise exceptions.CommandError(
                        'Not confirmed; nothing was deleted.')
            cat.delete(image.id, stores=a.stores or None)


class CopyIso(command.ShowOne):
    """Copy an ISO into more Glance stores (copy-image import)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', help='ISO name or ID')
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument('--store', metavar='<store>', action='append',
                           dest='stores',
                           help='Store to copy into (repeat for several)')
        where.add_argument('--all-stores', action='store_true',
                           help='Copy into every store lacking the ISO')
        parser.add_argument('--no-wait', dest='wait', action='store_false',
                            help='Return once Glance accepted the copy')
        return parser

    def take_action(self, parsed_args):
        a = parsed_args

        def progress(store, state):
            _say('store %s: %s' % (store, state))

        with utils.command_errors():
            cat = _catalog(self.app)
            image = cat.copy(a.iso, stores=a.stores,
                             all_stores=a.all_stores, wait=a.wait,
                             progress=progress)
            return _show(cat.describe(image))


class ShowIsoUsage(command.Lister):
    """Show the project's image quota and usage."""

    def take_action(self, parsed_args):
        with utils.command_errors():
            cat = _catalog(self.app)
            usage = cat.usage()
        return presentation.USAGE_COLUMNS, presentation.usage_rows(usage)


class AddProjectToIso(command.ShowOne):
    """Share an ISO with a project."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', help='ISO name or ID')
        parser.add_argument('project', metavar='<project>',
                            help='Project name or ID to share with')
        parser.add_argument('--accept', action='store_true',
                            help='Accept the ISO (only a user of '
                                 '<project> can)')
        return parser

    def take_action(self, parsed_args):
        a = parsed_args
        with utils.command_errors():
            cat = _catalog(self.app)
            member = cat.add_project(a.iso, a.project, accept=a.accept)
        columns = presentation.MEMBER_FIELDS
        return columns, tuple(member.get(c) for c in columns)


class RemoveProjectFromIso(command.Command):
    """Stop sharing an ISO with a project."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', help='ISO name or ID')
        parser.add_argument('project', metavar='<project>',
                            help='Project name or ID')
        return parser

    def take_action(self, parsed_args):
        with utils.command_errors():
            cat = _catalog(self.app)
            cat.remove_project(parsed_args.iso, parsed_args.project)
