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

"""tools/libvirt-host's package install, as tools/demo runs it.

Issue 11, finding 11b: the demo flooded the terminal with apt's output. The
install must say in one line what it installs, keep apt's output in a log
file, and show the log's end only when apt fails. The script's own
``install_packages`` function runs here with a stand-in ``apt-get`` that
prints as much as the real one does.
"""

import os
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'tools', 'libvirt-host')

#: apt-get as a stand-in: 400 lines per call, exit status from the env
FAKE_APT = '''#!/bin/sh
i=0
while [ $i -lt 400 ]; do echo "Get:$i http://deb.debian.org bookworm pkg$i"; \
i=$((i+1)); done
exit ${FAKE_APT_RC:-0}
'''


def _function(name):
    """The text of one shell function of tools/libvirt-host."""
    with open(SCRIPT) as f:
        lines = f.read().splitlines()
    start = lines.index('%s() {' % name)
    end = lines.index('}', start)
    return '\n'.join(lines[start:end + 1])


def _install(tmp_path, rc=0):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    apt = bindir / 'apt-get'
    apt.write_text(FAKE_APT)
    apt.chmod(apt.stat().st_mode | stat.S_IEXEC)
    # the script's own say/die and install_packages; one package missing
    program = '\n'.join([
        'set -euo pipefail',
        'LV=%s' % tmp_path,
        "say() { printf 'libvirt-host: %s\\n' \"$*\" >&2; }",
        'die() { say "$*"; exit 1; }',
        "missing_packages() { echo ' qemu-system-x86'; }",
        'id() { echo 0; }',
        _function('install_packages'),
        'install_packages',
    ])
    env = dict(os.environ, PATH='%s:%s' % (bindir, os.environ['PATH']),
               FAKE_APT_RC=str(rc))
    return subprocess.run(['bash', '-c', program], capture_output=True,
                          text=True, env=env, timeout=60)


def test_apt_output_goes_to_a_log_file(tmp_path):
    done = _install(tmp_path)

    assert done.returncode == 0, done.stderr
    shown = (done.stdout + done.stderr).splitlines()
    assert len(shown) <= 2, shown
    assert 'installing Debian packages: qemu-system-x86' in shown[0]
    assert str(tmp_path / 'apt.log') in shown[0]
    log = (tmp_path / 'apt.log').read_text()
    assert log.count('Get:') == 800   # update and install, both kept


@pytest.mark.parametrize('rc', [1, 100])
def test_a_failed_apt_shows_the_end_of_its_log(tmp_path, rc):
    done = _install(tmp_path, rc=rc)

    assert done.returncode == 1
    shown = (done.stdout + done.stderr).splitlines()
    assert 'apt-get failed (log: %s)' % (tmp_path / 'apt.log') in shown[-1]
    assert 20 <= len(shown) <= 23, shown   # the log's last 20 lines
