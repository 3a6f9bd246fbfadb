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

"""Fixtures shared by the unit tests."""

import shutil

from oslo_config import cfg
import pytest

from isoplugin import conf as iso_conf
from tests.tools import make_distro_iso
from tests.tools import make_windows_iso


@pytest.fixture
def conf():
    """A ConfigOpts with isoplugin's options, parsed from no file."""
    c = cfg.ConfigOpts()
    iso_conf.register_opts(c)
    c(args=[], default_config_files=[])
    return c


@pytest.fixture(scope='session')
def distro_isos(tmp_path_factory):
    """ISOs in each installer family's layout (made once, read only)."""
    assert shutil.which('xorriso'), (
        'xorriso is not installed: apt-get install xorriso (CI installs '
        'it; the distribution-like test ISOs are made with it)')
    d = tmp_path_factory.mktemp('distro')
    return {f: make_distro_iso.make(f, str(d / ('%s.iso' % f)))
            for f in make_distro_iso.FAMILIES}


#: What the Windows-like ISO's El Torito entries load
#: (tests/tools/make_windows_iso.py).
WINDOWS_BOOT = make_windows_iso.WINDOWS_BOOT


@pytest.fixture(scope='session')
def windows_iso(tmp_path_factory):
    """An ISO laid out like Windows media (tests/tools/make_windows_iso.py)."""
    return make_windows_iso.make(
        str(tmp_path_factory.mktemp('windows') / 'windows.iso'))
