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

"""Install profiles, loaded by name through stevedore.

A profile (:class:`isoplugin.profiles.base.Profile`) knows one installer
family: how to recognise its ISOs, its answer file, and how to make a copy
of the ISO install unattended and power off. Third parties add one by
publishing an entry point in the ``isoplugin.profiles`` group that names a
subclass of that base class::

    [entry_points]
    isoplugin.profiles =
        alpine = my_package.alpine:AlpineProfile
"""

from oslo_log import log as logging

from isoplugin import exception
from isoplugin.i18n import _

LOG = logging.getLogger(__name__)

NAMESPACE = 'isoplugin.profiles'


def available_profiles():
    """The sorted names of the installed profiles (nothing is imported)."""
    from stevedore import extension

    mgr = extension.ExtensionManager(NAMESPACE, invoke_on_load=False)
    return sorted({ep.name for ep in mgr.list_entry_points()})


def get_profile(name):
    """Load and return the profile called ``name``.

    :returns: an instance of :class:`isoplugin.profiles.base.Profile`.
    :raises isoplugin.exception.ProfileNotFound: no such profile, or it
        cannot be loaded; the message lists the installed ones.
    """
    from stevedore import driver

    from isoplugin.profiles import base

    available = available_profiles()
    if name not in available:
        raise exception.ProfileNotFound(
            name=name, available=', '.join(available) or _('none'))
    try:
        mgr = driver.DriverManager(NAMESPACE, name, invoke_on_load=True)
    except Exception as e:
        LOG.error('Failed to load install profile %(name)s', {'name': name},
                  exc_info=True)
        raise exception.ProfileNotFound(
            name=name, available=', '.join(available)) from e
    if not isinstance(mgr.driver, base.Profile):
        raise exception.ProfileNotFound(
            name=name, available=', '.join(available))
    return mgr.driver


def get_profiles():
    """Every installed profile that loads, sorted by name."""
    out = []
    for name in available_profiles():
        try:
            out.append(get_profile(name))
        except exception.ProfileNotFound:
            LOG.warning('Install profile %(name)s could not be loaded; '
                        'ignored', {'name': name})
    return out


def detect(files, profiles=None):
    """Find the profile whose rules recognise an image.

    :param files: an :class:`isoplugin.isoinfo.IsoFiles`.
    :param profiles: the profiles to try (default: every installed one).
    :returns: ``(profile, match)``: the profile whose matching rule checked
        the most conditions, and its :class:`~base.Match` (what was looked
        at).
    :raises isoplugin.exception.ProfileNotDetected: no profile matches;
        the message says what was looked at.
    """
    profiles = get_profiles() if profiles is None else list(profiles)
    results = [(p, p.detect(files)) for p in profiles]
    matched = sorted((r for r in results if r[1].matched),
                     key=lambda r: (-r[1].score, r[0].name))
    if matched:
        profile, match = matched[0]
        LOG.debug('Detected profile %(name)s: %(why)s',
                  {'name': profile.name, 'why': '; '.join(match.looked_at)})
        return profile, match
    looked = ['volume label %r' % (files.info.volume_id or '')]
    for _p, match in results:
        looked += [x for x in match.looked_at
                   if not x.startswith('label ') and x not in looked]
    raise exception.ProfileNotDetected(
        source=files.name,
        available=', '.join(p.name for p in profiles) or _('none'),
        looked_at='; '.join(looked))
