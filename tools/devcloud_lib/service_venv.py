"""The service virtualenv: every OpenStack service runs from it.

Default ~/.cache/isoplugin-devcloud/venv (DEVCLOUD_VENV overrides): outside
the repository so every checkout on the machine shares it, apart from
isoplugin's own venv so the services' pins never fight the library's.
Installed with the pins of constraints.txt; reinstalled when they or
REQUIREMENTS change (stamp file in the venv). A new service adds its PyPI
package to REQUIREMENTS (and its pins to constraints.txt).
"""

import hashlib
import os
import shutil
import sys
import time

import common
import settings

CONSTRAINTS = os.path.join(common.HERE, 'constraints.txt')
REQUIREMENTS = [
    'nova==34.0.0',
    'keystone==30.0.0',
    'glance==33.0.0',
    'openstack-placement==16.0.0',
    'neutron==29.0.0',
    'python-openstackclient',
    'openstacksdk',
    'pycdlib',
    'gunicorn',
    'PyMySQL',
    'python-memcached',
]
#: what the services of a setting add (volumes=ceph: Cinder)
OPTIONAL = {
    'volumes': ['cinder==29.0.0'],
}


def requirements():
    """REQUIREMENTS plus those of the optional services that are on."""
    extra = OPTIONAL['volumes'] if settings.volumes_enabled() else []
    return REQUIREMENTS + extra


def constraints_hash():
    return hashlib.sha256(open(CONSTRAINTS, 'rb').read()).hexdigest()


def install():
    """Create or update the service venv; link it as .devcloud/venv."""
    ensure()
    link = os.path.join(common.D, 'venv')
    if os.path.realpath(link) != os.path.realpath(common.VENV):
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(common.VENV, link)


def ensure():
    """Create or update the service venv unless its stamp covers it.

    The stamp (JSON) holds the hash of constraints.txt and what was
    installed with it: the venv is current when the hash is the same and
    it holds every requirement wanted now.
    """
    stamp_file = os.path.join(common.VENV, '.devcloud-stamp')
    wanted = requirements()
    have = common.load_json(stamp_file, None) if os.path.exists(
        common.VPY) else None
    if not isinstance(have, dict) or (
            have.get('constraints') != constraints_hash()):
        have = {'requirements': []}
    if set(wanted) <= set(have['requirements']):
        return
    t = time.time()
    common.log(
        'installing the service venv %s (pip, a few minutes the first time)'
        % common.VENV
    )
    os.makedirs(os.path.dirname(common.VENV), exist_ok=True)
    os.makedirs(common.LOGS, exist_ok=True)
    if not os.path.exists(common.VPY):
        p = common.run([sys.executable, '-m', 'venv', common.VENV],
                       check=False)
        if p.returncode != 0:
            common.apt_install(['python3-venv'])
            shutil.rmtree(common.VENV, ignore_errors=True)
            common.run([sys.executable, '-m', 'venv', common.VENV])
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK='1')
    env.pop('PIP_REQUIRE_VIRTUALENV', None)
    common.run(
        [common.VPY, '-m', 'pip', 'install', '-U', 'pip', 'setuptools',
         'wheel'],
        log_name='pip.log',
        env=env,
    )
    common.run(
        [common.VPY, '-m', 'pip', 'install', '-c', CONSTRAINTS] + wanted,
        log_name='pip.log',
        env=env,
    )
    common.save_json(stamp_file, {
        'constraints': constraints_hash(),
        'requirements': sorted(set(wanted) | set(have['requirements'])),
    })
    common.log('service venv ready in %.0fs' % (time.time() - t))


def copy_file(rel, dest, edits=()):
    """Copy a file shipped in the venv (e.g. etc/glance/*-paste.ini)."""
    src = os.path.join(common.VENV, rel)
    text = open(src).read()
    for a, b in edits:
        text = text.replace(a, b)
    common.write(dest, text)


def venvtool(*args, check=True):
    """Run venvtool.py (the helpers that need OpenStack libraries)."""
    env = common.venv_env(
        {
            'OS_CLIENT_CONFIG_FILE': os.path.join(common.D, 'clouds.yaml'),
            'DEVCLOUD_DIR': common.D,
        }
    )
    env.pop(common.TAG)  # short-lived helper, not a service
    p = common.run(
        [common.VPY, os.path.join(common.HERE, 'venvtool.py')]
        + list(args),
        log_name='venvtool.log',
        env=env,
        check=False,
    )
    if check and p.returncode != 0:
        # its last line says why (SystemExit messages end up there)
        with open(os.path.join(common.LOGS, 'venvtool.log')) as f:
            last = ([line.strip() for line in f if line.strip()]
                    or ['?'])[-1]
        common.die('%s: %s (see %s/venvtool.log)'
                   % (args[0], last, common.LOGS))
    return p
