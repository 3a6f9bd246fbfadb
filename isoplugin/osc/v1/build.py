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

"""``openstack iso build create|list|show|delete|resume|finish``.

Thin commands: argument mapping and formatting; the pipeline is
:mod:`isoplugin.build`, the builds the cloud shows are
:mod:`isoplugin.records`, the background worker of ``--no-wait`` is
:mod:`isoplugin.background`.
"""

import argparse
import logging
import sys

from osc_lib.command import command

from isoplugin.osc import utils

LOG = logging.getLogger(__name__)


class _Progress(object):
    """Print one line per phase event to stderr; redraw on a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._open = False

    def __call__(self, event):
        kind = event.get('event')
        name = event.get('build_id')
        if kind == 'waiting':
            if not self.tty:
                return
            line = '%s %-8s waiting for %s: %s (%ss)' % (
                name, event.get('phase'), event.get('what'),
                event.get('status'), event.get('elapsed'))
            self.stream.write('\r\033[K' + line[:160])
            self._open = True
            self.stream.flush()
            return
        if kind in ('phase-end',):
            return
        if self._open:
            self.stream.write('\n')
            self._open = False
        text = {'phase-start': '...',
                'waited': 'done (%ss)' % event.get('elapsed'),
                'console': event.get('message'),
                'failed': event.get('message'),
                'done': 'image %s ready (%ss)' % (event.get('image_id'),
                                                  event.get('elapsed'))}.get(
            kind, event.get('message') or
            ' '.join('%s=%s' % (k, event[k]) for k in ('resource', 'id')
                     if k in event))
        self.stream.write('%s %-8s %s %s\n'
                          % (name, event.get('phase'), kind, text))
        self.stream.flush()


class _HiddenValues(list):
    """The ``--set`` items, whose values show as ``***``.

    osc-lib logs the parsed arguments with ``--debug``, and a template
    variable may be secret.
    """

    def __repr__(self):
        return '[%s]' % ', '.join(
            repr(item.partition('=')[0] + '=***') for item in self)


class _SetAction(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None):
        # a new list each time: the default is not to be changed
        items = _HiddenValues(getattr(namespace, self.dest, None) or ())
        items.append(value)
        setattr(namespace, self.dest, items)


def add_unattended_args(parser):
    """The prepared-ISO options of ``build create`` and ``prepare``."""
    parser.add_argument('--profile', metavar='<profile>',
                        help='Install profile (see "openstack iso profile '
                             'list"); detected from the ISO when not '
                             'given; "none" uses the ISO as it is')
    parser.add_argument('--answer-file', metavar='<file>',
                        help="Answer file to use instead of the profile's "
                             'template (checked to parse)')
    parser.add_argument('--set', metavar='<key=value>', action=_SetAction,
                        default=_HiddenValues(), dest='values',
                        help='Template variable (repeat; see "openstack '
                             'iso profile show"); secret ones are never '
                             'shown')
    parser.add_argument('--kernel-args', metavar='<args>',
                        help='Extra kernel arguments for the installer')
    parser.add_argument('--add-files', metavar='<src[:dest]>',
                        action='append', default=[],
                        help='Directory, file or ISO whose files are '
                             'merged into the prepared ISO at <dest> '
                             '(default /; repeat), e.g. virtio-win '
                             'drivers as /$WinPEDriver$')
    return parser


def parse_values(items):
    """``['KEY=VALUE', ...]`` as a dict."""
    from osc_lib import exceptions

    values = {}
    for item in items or ():
        key, sep, value = item.partition('=')
        if not sep or not key.strip():
            raise exceptions.CommandError(
                '--set takes KEY=VALUE, got %r' % key)
        values[key.strip()] = value
    return values


def _image_columns(image):
    data = image.to_dict(computed=False)
    props = data.pop('properties', None) or {}
    data.update(props)
    keys = sorted(k for k, v in data.items()
                  if v not in (None, '', [], {}) and k != 'location')
    return keys, [data[k] for k in keys]


class CreateBuild(command.ShowOne):
    """Build a bootable image from an installer ISO.

    One ISO shows the new image; several show one row per ISO.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('iso', metavar='<iso>', nargs='+',
                            help='ISO (name or ID) to build from; several '
                                 'ISOs build several images (each named '
                                 '<name>-<iso>)')
        parser.add_argument('--name', metavar='<image-name>', required=True,
                            help='Name of the new image')
        parser.add_argument('--flavor', metavar='<flavor>',
                            help='Flavor of the temporary server (default: '
                                 'configuration, else the smallest that '
                                 'fits)')
        parser.add_argument('--disk-size', metavar='<gb>', type=int,
                            help='System disk size in GiB')
        parser.add_argument('--network', metavar='<network>',
                            help='Network of the temporary server '
                                 '(default: none)')
        parser.add_argument('--backend', metavar='<backend>',
                            default='auto',
                            help='Build backend (see "openstack iso backend '
                                 'list"), or "auto" (default): nova-volume '
                                 'when the flavor has a 0 GiB root disk, '
                                 'else [isoplugin] backend')
        parser.add_argument('--interactive', action='store_true',
                            help='Print the console URL and wait for the '
                                 'server to power off or for "openstack iso '
                                 'build finish"')
        verify = parser.add_mutually_exclusive_group()
        verify.add_argument('--verify', dest='verify', action='store_true',
                            default=None,
                            help='Boot the new image and check its console '
                                 'log (default: configuration)')
        verify.add_argument('--no-verify', dest='verify',
                            action='store_false', help='Do not verify')
        parser.add_argument('--ignore-verify-failure', action='store_true',
                            help='Keep an image that failed verification '
                                 '(marked isoplugin_verified=failed)')
        parser.add_argument('--timeout', metavar='<seconds>', type=int,
                            help='Seconds the whole build may take')
        parser.add_argument('--install-timeout', metavar='<seconds>',
                            type=int,
                            help='Seconds the install may take')
        parser.add_argument('--install-estimate', metavar='<seconds>',
                            type=float,
                            help='Seconds the install is expected to take: '
                                 'the build polls every second around then '
                                 '(default: none)')
        parser.add_argument('--keep-on-error', action='store_true',
                            default=None,
                            help='Keep the temporary resources of a failed '
                                 'build for debugging')
        vis = parser.add_mutually_exclusive_group()
        for value in ('public', 'private', 'community', 'shared'):
            vis.add_argument('--' + value, dest='visibility',
                             action='store_const', const=value,
                             help='Make the image %s' % value)
        parser.add_argument('--tag', metavar='<tag>', action='append',
                            default=[], dest='tags',
                            help='Tag of the new image (repeat)')
        add_unattended_args(parser)
        parser.add_argument('--parallel', metavar='<n>', type=int,
                            help='Builds at once when several ISOs are '
                                 'given')
        wait = parser.add_mutually_exclusive_group()
        wait.add_argument('--wait', dest='wait', action='store_true',
                          default=True,
                          help='Drive the build here until it ends '
                               '(default)')
        wait.add_argument('--no-wait', dest='wait', action='store_false',
                          help='Print the build id and drive the build in '
                               'a detached background process')
        return parser

    def take_action(self, parsed_args):
        from osc_lib import exceptions

        from isoplugin import build as build_mod

        formatter = getattr(self, 'formatter', None)  # set by run()
        if (len(parsed_args.iso) > 1 and formatter is not None and
                not hasattr(formatter, 'emit_list')):
            # refused before anything is built
            raise exceptions.CommandError(
                '-f %s shows one build; with several ISOs use table, '
                'value, json or yaml' % parsed_args.formatter)
        values = parse_values(parsed_args.values)
        client = self.app.client_manager.iso
        conn, conf = client.conn, client.conf
        names = ([parsed_args.name] if len(parsed_args.iso) == 1 else
                 ['%s-%s' % (parsed_args.name, iso)
                  for iso in parsed_args.iso])
        requests = [build_mod.BuildRequest(
            iso=iso, name=name, flavor=parsed_args.flavor,
            disk_size=parsed_args.disk_size, network=parsed_args.network,
            backend=parsed_args.backend,
            interactive=parsed_args.interactive, verify=parsed_args.verify,
            verify_must_pass=(False if parsed_args.ignore_verify_failure
                              else None),
            timeout=parsed_args.timeout,
            install_timeout=parsed_args.install_timeout,
            install_estimate=parsed_args.install_estimate,
            visibility=parsed_args.visibility or 'private',
            tags=parsed_args.tags, keep_on_error=parsed_args.keep_on_error,
            profile=parsed_args.profile,
            answer_file=parsed_args.answer_file, values=values,
            kernel_args=(parsed_args.kernel_args or '').split(),
            add_files=parsed_args.add_files)
            for iso, name in zip(parsed_args.iso, names)]
        progress = _Progress()
        with utils.command_errors():
            if len(requests) == 1:
                build = build_mod.Build(conn, conf, requests[0],
                                        progress=progress)
                if not parsed_args.wait:
                    from isoplugin import background

                    pid, _log = background.run_in_background(
                        build, progress=_Progress)
                    return ('build_id', 'worker_pid'), (build.id, pid)
                image = build.run()
                return _image_columns(image)
            rows = []
            failed = []
            results = build_mod.build_images(
                conn, conf, requests, parallel=parsed_args.parallel,
                progress=progress)
            try:
                for request, result in results:
                    if isinstance(result, Exception):
                        failed.append('%s: %s' % (request.iso, result))
                        rows.append((request.iso, 'failed', str(result)))
                    else:
                        rows.append((request.iso, result.id, result.name))
            except KeyboardInterrupt:
                # SIGTERM or Ctrl-C: the running builds clean up first
                results.close()
                raise exceptions.CommandError(
                    'interrupted by a signal after %d of %d builds; the '
                    'running builds were stopped and cleaned up'
                    % (len(rows), len(requests)))
        for line in failed:
            sys.stderr.write(line + '\n')
        if failed:
            raise exceptions.CommandError('%d of %d builds failed'
                                          % (len(failed), len(requests)))
        return ('iso', 'image'), [r[:2] for r in rows]

    def produce_output(self, parsed_args, column_names, data):
        if len(parsed_args.iso) == 1:
            return super().produce_output(parsed_args, column_names, data)
        # several ISOs: one row per ISO, as a Lister shows them
        columns, selector = self._generate_columns_and_selector(
            parsed_args, column_names)
        if selector:
            data = [list(self._compress_iterable(row, selector))
                    for row in data]
        self.formatter.emit_list(columns, data, self.app.stdout,
                                 parsed_args)
        return 0


class ListBuild(command.Lister):
    """List builds the cloud shows (running, failed, orphaned)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--prepared', action='store_true',
                            help='List the prepared ISOs (the cache of '
                                 'unattended copies) instead')
        return parser

    def take_action(self, parsed_args):
        from isoplugin import records

        client = self.app.client_manager.iso
        if parsed_args.prepared:
            with utils.command_errors():
                items = records.list_prepared(client.conn, client.conf)
            return (('ID', 'Profile', 'Source ISO', 'Status', 'Prepared at',
                     'Expired', 'Size'),
                    [(p['id'], p['profile'], p['prepared_from'],
                      p['status'], p['prepared_at'], p['expired'],
                      p['size']) for p in items])
        with utils.command_errors():
            builds = records.list_builds(client.conn, client.conf)
        return (('Build', 'Status', 'Phase', 'ISO', 'Image name', 'Client',
                 'Heartbeat age', 'Resources'),
                [(b.id, b.status, b.phase, b.record.get('iso_id'),
                  b.record.get('image_name'), b.record.get('client'),
                  int(b.age), len(b.resources)) for b in builds])


def _with_build_id(parser):
    parser.add_argument('build', metavar='<build>', help='Build id')
    return parser


class ShowBuild(command.ShowOne):
    """Show one build: its record and its resources."""

    def get_parser(self, prog_name):
        return _with_build_id(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        from isoplugin import records

        client = self.app.client_manager.iso
        with utils.command_errors():
            info = records.show_build(client.conn, client.conf,
                                      parsed_args.build)
        data = dict(info.record)
        data.update({'build_id': info.id, 'status': info.status,
                     'phase': info.phase, 'heartbeat_age': int(info.age),
                     'resources': ', '.join(
                         '%s %s (%s, %s)' % (r.kind, r.id, r.role, r.status)
                         for r in info.resources)})
        keys = sorted(data)
        return keys, [data[k] for k in keys]


class DeleteBuild(command.Command):
    """Delete what builds left: one build's, or every orphan's."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('build', metavar='<build>', nargs='*',
                            help='Build id(s)')
        parser.add_argument('--orphans', action='store_true',
                            help='Delete the leftovers of every orphaned '
                                 'or failed build')
        parser.add_argument('--prepared', action='store_true',
                            help='Delete every prepared ISO (the cache of '
                                 'unattended copies); --orphans deletes '
                                 'only the expired ones ([isoplugin] '
                                 'prepared_iso_max_age)')
        parser.add_argument('--older-than', metavar='<seconds>', type=int,
                            default=0,
                            help='With --orphans: only builds whose last '
                                 'heartbeat is older than this')
        return parser

    def take_action(self, parsed_args):
        from osc_lib import exceptions

        from isoplugin import records

        if not (parsed_args.build or parsed_args.orphans or
                parsed_args.prepared):
            raise exceptions.CommandError(
                'give build ids, --orphans or --prepared')
        client = self.app.client_manager.iso
        with utils.command_errors():
            for build_id in parsed_args.build:
                records.delete_build(client.conn, client.conf, build_id)
            if parsed_args.orphans:
                deleted = records.delete_orphans(
                    client.conn, client.conf, parsed_args.older_than)
                for build_id in deleted:
                    self.app.stdout.write('deleted %s\n' % build_id)
            if parsed_args.prepared or parsed_args.orphans:
                for image_id in records.delete_prepared(
                        client.conn, client.conf,
                        expired_only=not parsed_args.prepared):
                    self.app.stdout.write('deleted prepared ISO %s\n'
                                          % image_id)


class ResumeBuild(command.ShowOne):
    """Continue a build whose client died, from the phase the cloud shows."""

    def get_parser(self, prog_name):
        return _with_build_id(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        from isoplugin import build as build_mod

        client = self.app.client_manager.iso
        with utils.command_errors():
            image = build_mod.resume_build(client.conn, client.conf,
                                           parsed_args.build,
                                           progress=_Progress())
        if image is None:
            return ('build_id', 'result'), (parsed_args.build, 'cleaned up')
        return _image_columns(image)


class FinishBuild(command.Command):
    """Tell an interactive build that the install is finished."""

    def get_parser(self, prog_name):
        return _with_build_id(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        from isoplugin import records

        client = self.app.client_manager.iso
        with utils.command_errors():
            records.finish_build(client.conn, client.conf,
                                 parsed_args.build)
