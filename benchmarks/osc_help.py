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

The virtualenv without the plugin is made once (same packages, from the
pip cache) under ~/.cache/isoplugin/bench-osc-noplugin.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

WITH = os.path.dirname(sys.executable)
CACHE = os.path.expanduser(os.environ.get('ISOPLUGIN_CACHE',
                                          '~/.cache/isoplugin'))
NOPLUGIN = os.path.join(CACHE, 'bench-osc-noplugin')


def make_noplugin_venv():
    python = os.path.join(NOPLUGIN, 'bin', 'python')
    if os.path.exists(os.path.join(NOPLUGIN, 'bin', 'openstack')):
        return os.path.join(NOPLUGIN, 'bin')
    freeze = subprocess.run([sys.executable, '-m', 'pip', 'freeze',
                             '--exclude-editable'],
                            check=True, capture_output=True,
                            text=True).stdout
    reqs = [line for line in freeze.splitlines()
            if line and not line.lower().startswith('isoplugin')]
    subprocess.run([sys.executable, '-m', 'venv', NOPLUGIN], check=True)
    subprocess.run([python, '-m', 'pip', 'install', '-q',
                    '--disable-pip-version-check'] + reqs, check=True)
    return os.path.join(NOPLUGIN, 'bin')


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
    without = make_noplugin_venv()
    check = subprocess.run([os.path.join(without, 'openstack'), 'iso',
                            '--help'], capture_output=True, text=True)
    assert check.returncode != 0, 'the plugin-less venv has the plugin'
    # warm the page cache and stevedore's entry point caches of both
    run_help(WITH)
    run_help(without)
    times = {'with': [], 'without': []}
    for _ in range(args.runs):
        times['with'].append(run_help(WITH))
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
