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

"""How much slower ``openstack --help`` gets with the isoplugin plugin.

OpenStackClient imports every plugin and, for ``--help``, every command
class, so the plugin must import lightly. This script runs ``openstack
--help`` ten times with isoplugin installed and ten times in an otherwise
identical virtualenv without it, alternating, and prints the medians and the
difference (target: no more than 50 ms).

Usage: python benchmarks/osc_help.py [--runs 10]

Both virtualenvs are made under ~/.cache/isoplugin/ from the packages of
the virtualenv that runs this script (``pip freeze``, from the pip cache).
isoplugin is installed into the first one as a user installs it (a wheel
built from this tree, not an editable install: setuptools' editable finder
alone costs about 45 ms at every interpreter start).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

CACHE = os.path.expanduser(os.environ.get('ISOPLUGIN_CACHE',
                                          '~/.cache/isoplugin'))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIP = ['-m', 'pip', 'install', '-q', '--disable-pip-version-check']


def _pip(python, args):
    subprocess.run([python] + PIP + args, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_venv(name, with_plugin):
    """A virtualenv with this one's packages, with or without isoplugin."""
    path = os.path.join(CACHE, name)
    python = os.path.join(path, 'bin', 'python')
    if not os.path.exists(os.path.join(path, 'bin', 'openstack')):
        freeze = subprocess.run([sys.executable, '-m', 'pip', 'freeze',
                                 '--exclude-editable'],
                                check=True, capture_output=True,
                                text=True).stdout
        reqs = [line for line in freeze.splitlines()
                if line and not line.lower().startswith('isoplugin')]
        subprocess.run([sys.executable, '-m', 'venv', path], check=True)
        _pip(python, reqs)
    if with_plugin:
        # always the current tree
        _pip(python, ['--no-deps', '--force-reinstall', ROOT])
    return os.path.join(path, 'bin')


def run_help(bindir):
    env = dict(os.environ)
    env.pop('OS_CLOUD', None)
    start = time.perf_counter()
    subprocess.run([os.path.join(bindir, 'openstack'), '--help'],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10)
    args = parser.parse_args()
    without = make_venv('bench-osc-noplugin', with_plugin=False)
    with_ = make_venv('bench-osc-plugin', with_plugin=True)
    check = subprocess.run([os.path.join(without, 'openstack'), 'iso',
                            '--help'], capture_output=True, text=True)
    assert check.returncode != 0, 'the plugin-less venv has the plugin'
    check = subprocess.run([os.path.join(with_, 'openstack'), 'iso',
                            'backend', 'list', '--help'],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # warm the page cache and stevedore's entry point caches of both
    run_help(with_)
    run_help(without)
    times = {'with': [], 'without': []}
    for _ in range(args.runs):
        times['with'].append(run_help(with_))
        times['without'].append(run_help(without))
    med_with = statistics.median(times['with'])
    med_without = statistics.median(times['without'])
    print('openstack --help, median of %d runs, alternating' % args.runs)
    print('  without isoplugin: %7.1f ms' % (med_without * 1000))
    print('  with isoplugin:    %7.1f ms' % (med_with * 1000))
    print('  difference:        %+7.1f ms (target: <= 50 ms)'
          % ((med_with - med_without) * 1000))
    print('  ratio:             %7.3f' % (med_with / med_without))


if __name__ == '__main__':
    main()
