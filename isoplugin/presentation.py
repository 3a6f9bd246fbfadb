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

"""How an ISO of the catalog is shown: its fields, columns and values.

The one place that knows which fields people see, in which order, and the
values the catalog accepts for them; the OpenStackClient commands and any
other front end (a portal) import it. It imports nothing beyond the
standard library at module level, so that ``openstack --help`` stays fast.
"""

#: Visibilities an ISO can have.
VISIBILITIES = ('private', 'shared', 'community', 'public')

#: The fields of :func:`describe`, in the order they are shown.
SHOW_FIELDS = (
    'id', 'name', 'status', 'size', 'stores', 'visibility', 'protected',
    'hidden', 'retired', 'featured', 'extractable', 'password_enabled',
    'os_type', 'os_distro', 'os_version', 'architecture', 'description',
    'min_disk', 'min_ram', 'tags', 'checksum', 'hw_cdrom_bus',
    'hw_rescue_device', 'hw_rescue_bus', 'owner', 'created_at',
    'updated_at')

#: Columns of an ISO list.
LIST_COLUMNS = ('id', 'name', 'status', 'os_distro', 'os_version',
                'architecture')

#: Columns of a long ISO list.
LONG_LIST_COLUMNS = ('id', 'name', 'size', 'status', 'stores', 'os_type',
                     'os_distro', 'os_version', 'architecture',
                     'visibility', 'protected', 'hidden', 'retired',
                     'featured', 'extractable', 'password_enabled',
                     'created_at', 'owner')

#: Columns of the ISOs whose registration has not finished
#: (:class:`isoplugin.catalog.IncompleteUpload`).
INCOMPLETE_COLUMNS = ('id', 'name', 'status', 'client', 'alive', 'age',
                      'created_at')

#: Fields of an image member (a project an ISO is shared with).
MEMBER_FIELDS = ('image_id', 'member_id', 'status', 'created_at',
                 'updated_at')

#: Columns of the quota usage.
USAGE_COLUMNS = ('Resource', 'Usage', 'Limit', 'Unit')


def _bool(value):
    return str(value).lower() == 'true'


def headers(columns):
    """Return column titles for field names (``os_type`` -> ``OS Type``).

    :param columns: field names.
    :returns: a tuple of titles.
    """
    return tuple(c.replace('_', ' ').title().replace('Os ', 'OS ')
                 for c in columns)


def describe(image, prefix):
    """Return the fields of an ISO that people care about.

    :param image: an :class:`openstack.image.v2.image.Image` of the
        catalog.
    :param prefix: isoplugin's property prefix (``[glance]
        property_prefix``).
    :returns: a dict with the keys of :data:`SHOW_FIELDS`, flags as
        booleans, tags as a list.
    """
    from isoplugin import glance

    p = glance.flat(image)
    return {
        'id': p.get('id'),
        'name': p.get('name'),
        'status': p.get('status'),
        'size': p.get('size'),
        'stores': p.get('stores', ''),
        'visibility': p.get('visibility'),
        'protected': bool(p.get('protected')),
        'hidden': bool(p.get('os_hidden')),
        'retired': _bool(p.get(prefix + 'retired')),
        'featured': _bool(p.get(prefix + 'featured')),
        'extractable': _bool(p.get(prefix + 'extractable')),
        'password_enabled': _bool(p.get(prefix + 'password_enabled')),
        'os_type': p.get('os_type'),
        'os_distro': p.get('os_distro'),
        'os_version': p.get('os_version'),
        'architecture': p.get('architecture'),
        'description': p.get('description'),
        'min_disk': p.get('min_disk'),
        'min_ram': p.get('min_ram'),
        'tags': list(p.get('tags') or []),
        'checksum': ('%s:%s' % (p['os_hash_algo'], p['os_hash_value'])
                     if p.get('os_hash_value') else None),
        'hw_cdrom_bus': p.get('hw_cdrom_bus'),
        'hw_rescue_device': p.get('hw_rescue_device'),
        'hw_rescue_bus': p.get('hw_rescue_bus'),
        'owner': p.get('owner'),
        'created_at': p.get('created_at'),
        'updated_at': p.get('updated_at'),
    }


def incomplete_row(upload):
    """A row of :data:`INCOMPLETE_COLUMNS` for an incomplete upload.

    :param upload: an :class:`isoplugin.catalog.IncompleteUpload`.
    :returns: a tuple; ``alive`` as yes, no or unknown, ``age`` as a
        duration (``3h12m``).
    """
    alive = {True: 'yes', False: 'no'}.get(upload.alive, 'unknown')
    values = {'alive': alive,
              'age': format_duration(upload.age)}
    return tuple(values.get(c, getattr(upload, c))
                 for c in INCOMPLETE_COLUMNS)


#: Units of a duration, in seconds.
_DURATION_UNITS = (('d', 86400), ('h', 3600), ('m', 60), ('s', 1))


def parse_duration(text):
    """Seconds of a duration: ``90``, ``45s``, ``30m``, ``2h``, ``1d``.

    Units combine (``1h30m``); a bare number is seconds.

    :raises ValueError: not a duration (argparse reports it).
    """
    import re

    text = (text or '').strip().lower()
    if text.isdigit():
        return int(text)
    parts = re.findall(r'(\d+)([dhms])', text)
    if not parts or ''.join(n + u for n, u in parts) != text:
        raise ValueError('not a duration: %r (e.g. 90, 30m, 2h, 1d)'
                         % text)
    units = dict(_DURATION_UNITS)
    return sum(int(n) * units[u] for n, u in parts)


def format_duration(seconds):
    """``3h12m`` for 11520 seconds: the two largest units."""
    seconds = max(0, int(seconds))
    parts = []
    for unit, size in _DURATION_UNITS:
        if seconds >= size or (unit == 's' and not parts):
            parts.append('%d%s' % (seconds // size, unit))
            seconds %= size
    return ''.join(parts[:2])


def show_columns(info):
    """The fields of ``info`` in the order they are shown.

    :param info: a dict from :func:`describe`, perhaps with more keys
        (shown after the known ones, sorted).
    :returns: a tuple of keys.
    """
    return tuple(f for f in SHOW_FIELDS if f in info) + tuple(
        sorted(k for k in info if k not in SHOW_FIELDS))


def usage_rows(usage):
    """Rows of the quota usage, for :data:`USAGE_COLUMNS`.

    :param usage: ``{resource: {'usage': N, 'limit': N}}`` as
        :meth:`isoplugin.catalog.Catalog.usage` returns it.
    :returns: a list of ``(resource, usage, limit, unit)``, a negative or
        missing limit shown as ``unlimited``.
    """
    rows = []
    for resource in sorted(usage):
        entry = usage[resource]
        limit = entry.get('limit')
        unit = 'MiB' if resource.endswith(('_size_total',
                                           '_stage_total')) else ''
        rows.append((resource, entry.get('usage'),
                     'unlimited' if limit is None or limit < 0 else limit,
                     unit))
    return rows
