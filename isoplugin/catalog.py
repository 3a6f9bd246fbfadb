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

"""The catalog of installer ISOs, kept in Glance.

An ISO of the catalog is a Glance image with ``disk_format=iso``,
``container_format=bare`` and the property ``<prefix>media=installer-iso``
(prefix ``[glance] property_prefix``, default ``isoplugin_``). It carries
the properties that make Nova attach it as a CD-ROM (``hw_cdrom_bus``,
``hw_rescue_device=cdrom``, ``hw_rescue_bus``), the OS fields
(``os_type``, ``os_distro``, ``os_version``, ``architecture``) and the
portal flags ``<prefix>featured``, ``<prefix>extractable`` and
``<prefix>password_enabled``; it is hidden from ordinary image lists
(``os_hidden``) unless ``[glance] hide_isos`` is false.

The catalog reads, changes, shares, copies and deletes ISOs; registering
one is :mod:`isoplugin.registration` (:meth:`Catalog.create` is a
shortcut), showing one is :mod:`isoplugin.presentation`. Every call to
Glance goes through :mod:`isoplugin.glance`. Usage::

    from isoplugin import catalog, cloud, conf

    cat = catalog.Catalog(cloud.connect('mycloud'), conf.load_config())
    iso = cat.create('ubuntu-24.04', filename='ubuntu-24.04.1.iso')
    for iso in cat.list():
        print(iso.name, iso.id)

Every method raises :class:`isoplugin.exception.IsopluginException`
subclasses only; cloud errors keep the cloud's own message.
"""

import dataclasses
import datetime
import time
import typing

from oslo_log import log as logging

from isoplugin import cloud
from isoplugin import compute
from isoplugin import exception
from isoplugin import glance
from isoplugin.i18n import _
from isoplugin import isoinfo
from isoplugin import presentation

LOG = logging.getLogger(__name__)

MEDIA = 'installer-iso'
VISIBILITIES = presentation.VISIBILITIES
NAME_MAX = 255
#: Statuses of an ISO whose registration has not finished: no data yet,
#: data being received (saving, or uploading to the staging area), or
#: being imported by Glance.
INCOMPLETE_STATUSES = ('queued', 'saving', 'uploading', 'importing')


@dataclasses.dataclass
class IncompleteUpload(object):
    """An ISO of the catalog whose registration has not finished.

    :ivar id: the image's ID.
    :ivar name: the ISO's name.
    :ivar status: one of :data:`INCOMPLETE_STATUSES`.
    :ivar client: ``host:pid`` of the client that created it
        (``<prefix>client``), ``None`` for an image made before the marker
        existed.
    :ivar alive: whether that client still runs: ``True`` or ``False``
        when it ran on this host, ``None`` when that cannot be known.
    :ivar age: seconds since the image was created.
    :ivar created_at: when the image was created (Glance's time).
    """

    id: str
    name: str
    status: str
    client: typing.Optional[str]
    alive: typing.Optional[bool]
    age: int
    created_at: typing.Optional[str]


def check_fields(fields):
    """Validate and normalise an ISO's metadata, in place.

    :param fields: dict with (some of) ``visibility``, ``os_type``,
        ``os_distro``, ``architecture``, ``min_disk``, ``min_ram``;
        ``None`` values are not checked.
    :raises isoplugin.exception.InvalidInput: a value is not accepted.
    """
    if fields.get('visibility') is not None and \
            fields['visibility'] not in VISIBILITIES:
        raise exception.InvalidInput(
            reason=_("unknown visibility '%(v)s'; use one of "
                     "%(all)s") % {'v': fields['visibility'],
                                   'all': ', '.join(VISIBILITIES)})
    os_type = fields.get('os_type')
    if os_type is not None:
        if os_type.lower() not in isoinfo.OS_TYPES:
            raise exception.InvalidInput(
                reason=_("unknown os_type '%(t)s'; Nova accepts "
                         "%(all)s (set os_distro for anything "
                         "else)") % {'t': os_type,
                                     'all': ', '.join(isoinfo.OS_TYPES)})
        fields['os_type'] = os_type.lower()
    if fields.get('architecture'):
        fields['architecture'] = isoinfo.normalize_architecture(
            fields['architecture'])
    if fields.get('os_distro'):
        fields['os_distro'] = fields['os_distro'].lower()
    for key in ('min_disk', 'min_ram'):
        value = fields.get(key)
        if value is not None and (not isinstance(value, int) or
                                  value < 0):
            raise exception.InvalidInput(
                reason=_('%s must be a whole number >= 0') % key)


class Catalog(object):
    """The installer ISOs of a cloud, seen by one connection.

    :param conn: an :class:`openstack.connection.Connection`.
    :param conf: a ConfigOpts with isoplugin's options registered
        (:func:`isoplugin.conf.load_config`).
    """

    def __init__(self, conn, conf):
        self._conn = conn
        self._retries_set = False
        self.conf = conf
        self.prefix = conf.glance.property_prefix

    @property
    def conn(self):
        """The connection, its image proxy given the retry settings.

        :func:`isoplugin.glance.use_retries` is applied at the first use
        (making the image proxy may ask the cloud for its versions).
        """
        if not self._retries_set:
            glance.use_retries(self._conn, self.conf)
            self._retries_set = True
        return self._conn

    # -- helpers ---------------------------------------------------------

    def prop(self, name):
        """Return the full name of one of isoplugin's properties.

        :param name: e.g. ``'featured'``.
        :returns: e.g. ``'isoplugin_featured'``.
        """
        return self.prefix + name

    def _fetch(self, image_id):
        return glance.get_image(self.conn, image_id)

    def project_id(self):
        """The ID of the project the connection is scoped to."""
        return self.conn.current_project_id

    def is_admin(self):
        """Whether the caller's token has the admin role.

        :returns: ``True`` or ``False``.
        """
        try:
            access = self.conn.session.auth.get_access(self.conn.session)
            return 'admin' in (access.role_names or [])
        except Exception:  # an auth plugin without an access info
            LOG.debug('Cannot tell whether the caller is admin',
                      exc_info=True)
            return False

    # -- reading ---------------------------------------------------------

    def list(self, all_projects=False, include_hidden=True, name=None,
             owner=None, limit=None, page_size=100, **filters):
        """List the ISOs of the catalog.

        The query filters on the server (``disk_format=iso`` and the media
        property) and follows Glance's pagination. Hidden ISOs (the
        default for installer media) are listed with a second query, since
        Glance leaves hidden images out unless asked for them.

        :param all_projects: admins only: the ISOs of every project (by
            default an admin sees the ISOs of the current project, like a
            member, plus public and shared ones).
        :param include_hidden: also list ISOs hidden from image lists.
        :param name: only ISOs with this exact name.
        :param owner: only ISOs owned by this project ID.
        :param limit: stop after this many ISOs.
        :param page_size: images asked per request.
        :param filters: further Glance filters (``visibility``,
            ``status``, ``tag``, ``member_status``...).
        :returns: a list of :class:`openstack.image.v2.image.Image`,
            sorted by name.
        """
        params = {'disk_format': 'iso', self.prop('media'): MEDIA,
                  'limit': page_size, 'sort': 'name:asc,created_at:asc'}
        params.update({k: v for k, v in filters.items() if v is not None})
        if name is not None:
            params['name'] = name
        if owner is not None:
            params['owner'] = owner
        elif not all_projects and self.is_admin():
            # Glance shows an admin every image of every project.
            params['owner'] = self.project_id()
        hidden = ['false', 'true'] if include_hidden else ['false']
        found = {}
        for value in hidden:
            params['os_hidden'] = value
            for image in glance.images(self.conn, **params):
                found[image.id] = image
        images = sorted(found.values(),
                        key=lambda i: ((i.name or ''), i.created_at or ''))
        return images[:limit] if limit is not None else images

    def get(self, name_or_id):
        """Return one ISO of the catalog.

        :param name_or_id: an ISO's ID, or its name (the project's own ISO
            first, then one shared with or published to the project).
        :returns: an :class:`openstack.image.v2.image.Image`.
        :raises isoplugin.exception.ISONotFound: no such ISO is visible.
        :raises isoplugin.exception.Conflict: the name matches several ISOs
            of other projects.
        """
        if not name_or_id:
            raise exception.ISONotFound(iso=name_or_id)
        image = glance.find_image(self.conn, name_or_id)
        if image is not None:
            if self._is_iso(image):
                return image
            raise exception.ISONotFound(iso=name_or_id)
        matches = self.list(name=name_or_id, all_projects=True)
        own = [i for i in matches if i.owner == self.project_id()]
        if len(own) == 1:
            return own[0]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise exception.ISONotFound(iso=name_or_id)
        raise exception.Conflict(
            reason=_("%(n)d ISOs are named '%(name)s' (%(ids)s); give the "
                     "ID") % {'n': len(matches), 'name': name_or_id,
                              'ids': ', '.join(i.id for i in matches)})

    def _is_iso(self, image):
        props = glance.flat(image)
        return (props.get('disk_format') == 'iso' and
                props.get(self.prop('media')) == MEDIA)

    def usage(self):
        """Return the project's image quota and usage (unified limits).

        :returns: ``{resource: {'usage': N, 'limit': N}}`` as Glance reports
            it in ``/v2/info/usage`` (sizes in MiB; a limit of -1 means
            unlimited), or ``{}`` when the cloud does not report usage.
        """
        return glance.usage(self.conn)

    def stores(self):
        """Return the IDs of the cloud's Glance stores.

        :returns: a list of store IDs (the default one first), empty when
            the cloud has no multi-store configuration.
        """
        return glance.stores(self.conn)

    def import_methods(self):
        """Return the import methods the cloud offers (``/v2/info/import``).

        :returns: a list such as ``['glance-direct', 'web-download']``.
        """
        return glance.import_methods(self.conn)

    def servers_using(self, image, project_id=None):
        """Return the servers that use an ISO.

        A server uses an ISO when it was booted from it, or when it carries
        the metadata ``<prefix>iso_id`` (a build server rescued with it).
        An admin sees the servers of every project, others those of their
        own project only.

        :param image: an Image or an image ID.
        :param project_id: only servers of this project.
        :returns: a list of :class:`openstack.compute.v2.server.Server`.
        """
        image_id = getattr(image, 'id', image)
        key = self.prop('iso_id')
        query = {}
        if self.is_admin():
            query['all_projects'] = True
        if project_id and query:
            query['project_id'] = project_id
        with cloud.translate_errors():
            servers = list(compute.servers(self.conn, **query))
        out = []
        for server in servers:
            server_image = server.image.id if server.image else None
            if (server_image == image_id or
                    (server.metadata or {}).get(key) == image_id):
                if project_id and server.project_id not in (None,
                                                            project_id):
                    continue
                out.append(server)
        return out

    def check_name(self, name):
        """Refuse a name that is empty, too long, or taken in the project.

        :param name: the ISO's name.
        :raises isoplugin.exception.InvalidInput: empty or too long.
        :raises isoplugin.exception.DuplicateISO: the project has an ISO of
            that name.
        """
        if not name or not name.strip():
            raise exception.InvalidInput(reason=_('the ISO needs a name'))
        if len(name) > NAME_MAX:
            raise exception.InvalidInput(
                reason=_('the name is %(n)d characters long; Glance allows '
                         '%(max)d at most') % {'n': len(name),
                                               'max': NAME_MAX})
        for image in self.list(name=name, owner=self.project_id()):
            error = exception.DuplicateISO(name=name, id=image.id)
            if image.status in INCOMPLETE_STATUSES:
                error = exception.DuplicateISO(
                    '%s %s' % (error, _("It is an upload that has not "
                                        "finished (%s): 'openstack iso "
                                        "delete --incomplete' deletes it "
                                        "once its client is gone.")
                               % image.status), name=name, id=image.id)
            raise error

    def create(self, name, progress=None, notify=None, **fields):
        """Register an installer ISO from a local file or a URL.

        A shortcut for :meth:`isoplugin.registration.Registration.register`
        with a :class:`isoplugin.registration.RegistrationRequest` made of
        ``name`` and ``fields`` (``filename`` or ``url``, and the
        metadata).

        :returns: the new ISO, an :class:`openstack.image.v2.image.Image`.
        """
        from isoplugin import registration

        request = registration.RegistrationRequest(name=name, **fields)
        return registration.Registration(self).register(
            request, progress=progress, notify=notify)

    # -- changing --------------------------------------------------------

    def update(self, iso, name=None, description=None, os_type=None,
               os_distro=None, os_version=None, architecture=None,
               visibility=None, protected=None, hidden=None, featured=None,
               extractable=None, password_enabled=None, min_disk=None,
               min_ram=None, add_tags=None, remove_tags=None, retire=False,
               restore=False):
        """Change an ISO's metadata; retire or restore it.

        Arguments left ``None`` are not changed. Retiring hides and
        deactivates the ISO and marks it ``<prefix>retired=true``: servers
        that already use it keep working, new builds refuse it. Restoring
        reactivates it, removes the mark and sets ``os_hidden`` back to
        ``[glance] hide_isos``.

        :param iso: name or ID of the ISO.
        :param name: new name (unique among the project's ISOs).
        :param description: new description (``''`` removes it).
        :param os_type: linux or windows.
        :param os_distro: OS distribution.
        :param os_version: OS version.
        :param architecture: CPU architecture.
        :param visibility: private, shared, community or public.
        :param protected: protect against deletion.
        :param hidden: hide from ordinary image lists.
        :param featured: portal flag.
        :param extractable: portal flag (download allowed).
        :param password_enabled: portal flag.
        :param min_disk: minimum disk in GiB.
        :param min_ram: minimum RAM in MiB.
        :param add_tags: tags to add.
        :param remove_tags: tags to remove.
        :param retire: retire the ISO.
        :param restore: restore a retired ISO.
        :returns: the updated Image.
        :raises isoplugin.exception.InvalidInput: bad values.
        :raises isoplugin.exception.DuplicateISO: the new name is taken.
        :raises isoplugin.exception.PermissionDenied: policy refused.
        """
        if retire and restore:
            raise exception.InvalidInput(
                reason=_('retire and restore exclude each other'))
        fields = {'os_type': os_type, 'os_distro': os_distro,
                  'os_version': os_version, 'architecture': architecture,
                  'visibility': visibility, 'min_disk': min_disk,
                  'min_ram': min_ram}
        check_fields(fields)
        image = self.get(iso)
        current = glance.flat(image)
        if name is not None and name != image.name:
            self.check_name(name)
        changes = {'name': name, 'visibility': visibility,
                   'protected': protected, 'min_disk': min_disk,
                   'min_ram': min_ram}
        for key in ('os_type', 'os_distro', 'os_version', 'architecture'):
            changes[key] = fields[key]
        if description is not None:
            changes['description'] = description or _REMOVE
        if hidden is not None:
            changes['os_hidden'] = bool(hidden)
        for flag, value in (('featured', featured),
                            ('extractable', extractable),
                            ('password_enabled', password_enabled)):
            if value is not None:
                changes[self.prop(flag)] = str(bool(value)).lower()
        if retire:
            changes[self.prop('retired')] = 'true'
            changes['os_hidden'] = True
        if restore:
            changes[self.prop('retired')] = _REMOVE
            changes['os_hidden'] = self.conf.glance.hide_isos
        set_fields = {}
        remove = []
        for key, value in changes.items():
            if value is _REMOVE:
                remove.append(key)
            elif value is not None:
                set_fields[key] = value
        tags = list(current.get('tags') or [])
        new_tags = [t for t in tags if t not in (remove_tags or [])]
        for tag in add_tags or []:
            if tag not in new_tags:
                new_tags.append(tag)
        if new_tags != tags:
            set_fields['tags'] = new_tags
        if restore and current.get('status') == 'deactivated':
            glance.reactivate_image(
                self.conn, image.id,
                forbidden=_("%(reason)s (reactivating an image needs the "
                            "admin role or the owner's member role)"))
        image = glance.patch_image(
            self.conn, image.id, set=set_fields, remove=remove,
            current=current,
            forbidden=_("%(reason)s (making an ISO public needs the admin "
                        "role, policy publicize_image)")
            if set_fields.get('visibility') == 'public' else None
        ) or self._fetch(image.id)
        if retire and glance.flat(image).get('status') == 'active':
            glance.deactivate_image(
                self.conn, image.id,
                forbidden=_("%(reason)s (deactivating an image needs the "
                            "admin role or the owner's member role)"))
            image = self._fetch(image.id)
        return image

    def _resolve_project(self, project):
        """A project name or ID -> ID.

        Glance accepts any string as a member, so a name that cannot be
        resolved (members usually may not look projects up) is refused
        rather than shared with a project that does not exist.
        """
        import re

        if project == self.project_id():
            return project
        try:
            with cloud.translate_errors():
                found = self.conn.identity.find_project(
                    project, ignore_missing=True)
        except exception.IsopluginException:
            LOG.debug('Cannot look up project %(p)s', {'p': project},
                      exc_info=True)
            found = None
        if found is not None:
            return found.id
        if re.fullmatch(r'[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}', project):
            return project
        raise exception.InvalidInput(
            reason=_("project '%s' could not be found (a name can only be "
                     "used when your role may look projects up); give the "
                     "project ID") % project)

    def add_project(self, iso, project, accept=False):
        """Share an ISO with a project (an image member).

        A private ISO becomes ``shared`` first (Glance only lets shared
        images have members). With ``accept``, the membership is also
        accepted, which only a user of ``project`` can do: run by such a
        user, ``add_project`` accepts an ISO already shared with them.

        :param iso: name or ID of the ISO.
        :param project: project name or ID.
        :param accept: accept the membership (caller in ``project``).
        :returns: the member, a dict with ``member_id`` and ``status``.
        :raises isoplugin.exception.PermissionDenied: the caller may not
            share (not the owner) or accept (not in the project).
        """
        image = self.get(iso)
        project_id = self._resolve_project(project)
        own = self.project_id()
        member = None
        if image.owner != own:
            if not (accept and project_id == own):
                raise exception.PermissionDenied(
                    reason=_("ISO '%(iso)s' belongs to project %(owner)s; "
                             "only its owner can share it") % {
                        'iso': iso, 'owner': image.owner})
        else:
            if image.visibility == 'private':
                glance.patch_image(self.conn, image.id,
                                   set={'visibility': 'shared'},
                                   current=glance.flat(image))
            elif image.visibility not in ('shared',):
                raise exception.InvalidInput(
                    reason=_("ISO '%(iso)s' is %(vis)s: every project "
                             "sees it already; only private or shared "
                             "ISOs are shared with projects") % {
                        'iso': iso, 'vis': image.visibility})
            member = glance.add_member(self.conn, image.id, project_id)
        if accept:
            if project_id != own:
                raise exception.PermissionDenied(
                    reason=_('only a user of project %s can accept the '
                             'ISO; run this again as that user with '
                             '--accept') % project_id)
            member = glance.update_member(self.conn, image.id, project_id,
                                          'accepted')
        return member

    def remove_project(self, iso, project):
        """Stop sharing an ISO with a project.

        Refused while servers of that project use the ISO (an admin sees
        every project's servers; others only their own).

        :param iso: name or ID of the ISO.
        :param project: project name or ID.
        :raises isoplugin.exception.ISOInUse: servers of the project use it.
        :raises isoplugin.exception.NotFound: the project is not a member.
        """
        image = self.get(iso)
        iso = image.name or image.id
        project_id = self._resolve_project(project)
        servers = self.servers_using(image, project_id=project_id)
        if servers:
            raise exception.ISOInUse(
                iso=iso, count=len(servers), servers=_server_list(servers),
                hint=_('Delete or rebuild them before removing project '
                       '%s.') % project)
        glance.remove_member(
            self.conn, image.id, project_id,
            what=_('Project %(p)s as a member of ISO %(iso)s') % {
                'p': project, 'iso': iso})

    def members(self, iso):
        """Return the projects an ISO is shared with.

        :param iso: name or ID.
        :returns: a list of dicts with ``member_id`` and ``status``.
        """
        image = self.get(iso)
        return glance.members(self.conn, image.id)

    # -- unfinished registrations ----------------------------------------

    def incomplete(self):
        """Return the ISOs whose registration has not finished.

        Those in one of :data:`INCOMPLETE_STATUSES`, with the client that
        created them (the ``<prefix>client`` marker every image gets in
        its first request) and whether it still runs. A client killed
        during an upload leaves its ISO queued or saving.

        :returns: a list of :class:`IncompleteUpload`, oldest first.
        """
        from isoplugin import records

        now = time.time()
        out = []
        for image in self.list(status='in:' + ','.join(INCOMPLETE_STATUSES)):
            p = glance.flat(image)
            client = p.get(self.prop(glance.CLIENT_PROPERTY))
            out.append(IncompleteUpload(
                id=image.id, name=image.name, status=p.get('status'),
                client=client, alive=records.client_alive(client),
                age=int(now - _epoch(p.get('created_at'))),
                created_at=p.get('created_at')))
        return sorted(out, key=lambda u: -u.age)

    def delete_incomplete(self, older_than=0):
        """Delete the ISOs a client left unfinished.

        Skipped: uploads whose client still runs on this host, and those
        younger than ``older_than``. From another host a running upload
        cannot be told from an abandoned one: give ``older_than`` longer
        than the longest upload there.

        :param older_than: seconds; only ISOs created at least this long
            ago.
        :returns: the deleted :class:`IncompleteUpload` list.
        """
        deleted = []
        for upload in self.incomplete():
            if upload.alive or upload.age < older_than:
                LOG.debug('Keeping %(id)s (client alive: %(alive)s, '
                          '%(age)d s old)', dataclasses.asdict(upload))
                continue
            glance.delete_image(self.conn, upload.id,
                                what=_('ISO %s') % upload.id)
            deleted.append(upload)
        return deleted

    # -- copying and deleting --------------------------------------------

    def copy(self, iso, stores=None, all_stores=False, wait=True,
             progress=None):
        """Copy an ISO into more Glance stores (copy-image import).

        :param iso: name or ID.
        :param stores: store IDs to copy into.
        :param all_stores: copy into every store that lacks the ISO.
        :param wait: wait for the copies to finish.
        :param progress: ``progress(store, state)`` callable, state being
            ``copying``, ``done`` or ``failed``.
        :returns: the updated Image.
        :raises isoplugin.exception.InvalidInput: unknown or no stores.
        :raises isoplugin.exception.PermissionDenied: copy-image is
            refused (admin only by Glance's default policy).
        :raises isoplugin.exception.ImportFailed: a copy failed.
        """
        image = self.get(iso)
        known = self.stores()
        have = _stores_of(image)
        if all_stores:
            wanted = [s for s in known if s not in have]
        else:
            unknown = [s for s in stores or [] if s not in known]
            if unknown:
                raise exception.InvalidInput(
                    reason=_("unknown store(s) %(bad)s; this cloud has "
                             "%(known)s") % {'bad': ', '.join(unknown),
                                             'known': ', '.join(known)})
            wanted = [s for s in stores or [] if s not in have]
        if not stores and not all_stores:
            raise exception.InvalidInput(
                reason=_('give at least one store or all stores'))
        if not wanted:
            return image
        glance.import_image(
            self.conn, image, 'copy-image', stores=wanted,
            all_stores_must_succeed=False,
            forbidden=_("%(reason)s (Glance's copy_image policy allows "
                        "administrators only by default)"))
        for store in wanted:
            if progress is not None:
                progress(store, 'copying')
        if not wait:
            return self._fetch(image.id)
        return self._wait_copy(image.id, wanted, progress)

    def _wait_copy(self, image_id, wanted, progress):
        state = {s: 'copying' for s in wanted}

        def check(image):
            props = glance.flat(image)
            have = (props.get('stores') or '').split(',')
            failed = (props.get('os_glance_failed_import') or '').split(',')
            importing = (props.get('os_glance_importing_to_stores') or ''
                         ).split(',')
            for store in wanted:
                new = ('done' if store in have else
                       'failed' if store in failed and
                       store not in importing else state[store])
                if new != state[store]:
                    state[store] = new
                    if progress is not None:
                        progress(store, new)
            if any(s == 'copying' for s in state.values()):
                return None
            bad = [s for s, v in state.items() if v == 'failed']
            if bad:
                raise exception.ImportFailed(
                    what=_('copies of %s') % image_id,
                    reason=_('failed for store(s) %s') % ', '.join(bad))
            return image

        return glance.wait_for_image(
            self.conn, image_id, check, self.conf.glance.copy_timeout,
            lambda: _('copies to %s') % ', '.join(
                s for s, v in state.items() if v == 'copying'),
            interval=self.conf.isoplugin.poll_interval,
            max_interval=self.conf.isoplugin.poll_max_interval)

    def delete(self, iso, stores=None):
        """Delete an ISO, entirely or from some stores only.

        :param iso: name or ID.
        :param stores: delete the ISO's data from these stores only; the
            ISO stays registered with its other copies.
        :returns: the remaining Image when ``stores`` were given, else
            ``None``.
        :raises isoplugin.exception.ISOProtected: the ISO is protected.
        :raises isoplugin.exception.ISOInUse: servers use the ISO.
        :raises isoplugin.exception.InvalidInput: a store does not hold
            the ISO, or the stores given hold every copy.
        """
        image = self.get(iso)
        iso = image.name or image.id
        if image.is_protected:
            raise exception.ISOProtected(iso=iso)
        if not stores:
            servers = self.servers_using(image)
            if servers:
                raise exception.ISOInUse(
                    iso=iso, count=len(servers),
                    servers=_server_list(servers),
                    hint=_('Delete them first, or retire the ISO '
                           "('openstack iso set --retire %s') to stop new "
                           'builds.') % iso)
            glance.delete_image(self.conn, image.id, ignore_missing=False,
                                what=_("ISO '%s'") % iso)
            return None
        have = _stores_of(image)
        missing = [s for s in stores if s not in have]
        if missing:
            raise exception.InvalidInput(
                reason=_("ISO '%(iso)s' is not in store(s) %(bad)s; it is "
                         "in %(have)s") % {'iso': iso,
                                           'bad': ', '.join(missing),
                                           'have': ', '.join(have) or '-'})
        if set(have) <= set(stores):
            raise exception.InvalidInput(
                reason=_("store(s) %(stores)s hold every copy of ISO "
                         "'%(iso)s'; delete it without --store to delete "
                         "it entirely") % {'stores': ', '.join(stores),
                                           'iso': iso})
        for store in stores:
            glance.delete_image(
                self.conn, image.id, store=store, ignore_missing=False,
                forbidden=_("%(reason)s (deleting an image from one store "
                            "is allowed to administrators only by Glance's "
                            "default policy)"))
        return self._fetch(image.id)

    # -- presenting ------------------------------------------------------

    def describe(self, image):
        """Return the fields of an ISO that people care about.

        :param image: an Image of the catalog.
        :returns: a dict (field -> value), flags as booleans; see
            :func:`isoplugin.presentation.describe`.
        """
        return presentation.describe(image, self.prefix)

    def show(self, iso):
        """Return an ISO's fields, the servers using it and its projects.

        The projects an ISO is shared with are listed to its owner only
        (Glance's policy); for others the list is empty.

        :param iso: name or ID.
        :returns: the dict of :meth:`describe`, plus ``servers`` (a list
            of dicts with ``id`` and ``name``) and ``projects`` (the
            members, dicts with ``member_id`` and ``status``).
        :raises isoplugin.exception.ISONotFound: no such ISO is visible.
        """
        image = self.get(iso)
        servers = self.servers_using(image)
        members = []
        if image.visibility == 'shared':
            try:
                members = glance.members(self.conn, image.id)
            except exception.PermissionDenied:
                LOG.debug('Not the owner of %(id)s: no members listed',
                          {'id': image.id})
        info = self.describe(image)
        info['servers'] = [{'id': s.id, 'name': s.name} for s in servers]
        info['projects'] = members
        return info


class _Remove(object):
    def __repr__(self):
        return '<remove>'


_REMOVE = _Remove()


def _epoch(stamp):
    """Seconds since the epoch of a Glance time (0 when unknown)."""
    try:
        return datetime.datetime.fromisoformat(
            stamp.replace('Z', '+00:00')).timestamp()
    except (AttributeError, ValueError):
        return 0.0


def _stores_of(image):
    """The stores that hold an image's data."""
    return [s for s in (glance.flat(image).get('stores') or '').split(',')
            if s]


def _server_list(servers, limit=5):
    names = ['%s (%s, project %s)' % (s.name, s.id, s.project_id)
             for s in servers[:limit]]
    if len(servers) > limit:
        names.append(_('and %d more') % (len(servers) - limit))
    return ', '.join(names)
