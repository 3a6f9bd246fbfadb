"""Settings of a devcloud that tests change for a while (fault injection).

``tools/devcloud set NAME=VALUE`` records a value in
.devcloud/state/settings.json and restarts the processes that read it;
``NAME=`` (empty) goes back to the default. Every ``up`` writes the
configuration from the recorded values, so a setting survives ``down``/``up``
until it is set back. ``tools/devcloud set`` lists them; ``status`` shows
those that differ from their default.
"""

import collections
import os
import re

import common

# default: the value when none is recorded; processes: restarted by `set`;
# check: a regular expression a value must match (fullmatch)
Setting = collections.namedtuple('Setting', 'default processes check doc')

SETTINGS = {
    'token_expiration': Setting(
        '14400', ('keystone',), r'[1-9][0-9]*',
        'lifetime of a Keystone token in seconds ([token]expiration)'),
    'glance_small_store': Setting(
        '', ('glance',), r'([1-9][0-9]*[KMG])?',
        'size of an extra Glance file store "small" on a tmpfs of that size '
        '(e.g. 64M), made the default store; empty: none'),
    'serial_console': Setting(
        'false', ('nova-compute',), r'true|false',
        "libvirt mode: Nova's serial console ([serial_console]enabled): "
        'the console is a TCP socket logged by virtlogd, and the console '
        'log of a stopped guest stays readable through the API'),
    'volumes': Setting(
        'none', (), r'none|ceph',
        'ceph: Cinder (api, scheduler, volume) on a one-node Ceph (RBD), '
        'a volumev3 service in the catalog; none: no volume service. '
        '`set` starts or stops them'),
}
FILE = os.path.join(common.STATE, 'settings.json')
#: the services that run only with volumes=ceph (devcloud.services())
VOLUME_SERVICES = ('ceph', 'cinder')


def volumes_enabled():
    """Does the devcloud run Ceph and Cinder (``volumes=ceph``)?"""
    return get('volumes') == 'ceph'


def get(name):
    """The recorded value of setting ``name``, else its default."""
    return common.load_json(FILE, {}).get(name, SETTINGS[name].default)


def changed():
    """{name: value} of the settings that differ from their default."""
    return {n: get(n) for n in sorted(SETTINGS)
            if get(n) != SETTINGS[n].default}


def parse(assignments):
    """{name: value} from NAME=VALUE strings; die on a bad one."""
    out = {}
    for a in assignments:
        name, sep, value = a.partition('=')
        if not sep or name not in SETTINGS:
            common.die('%r: expected NAME=VALUE with NAME one of %s'
                       % (a, ', '.join(sorted(SETTINGS))))
        value = value or SETTINGS[name].default
        if not re.fullmatch(SETTINGS[name].check, value):
            common.die('%s=%s: the value must match %s (%s)'
                       % (name, value, SETTINGS[name].check,
                          SETTINGS[name].doc))
        out[name] = value
    return out


def record(values):
    """Record values; return the processes to restart for the changes."""
    data = common.load_json(FILE, {})
    restart = []
    for name, value in sorted(values.items()):
        if get(name) != value:
            restart += [p for p in SETTINGS[name].processes
                        if p not in restart]
        if value == SETTINGS[name].default:
            data.pop(name, None)
        else:
            data[name] = value
    os.makedirs(common.STATE, exist_ok=True)
    common.save_json(FILE, data)
    return restart
