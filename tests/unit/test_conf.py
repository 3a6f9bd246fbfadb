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

"""Configuration: registration, list_opts() and the sample file."""

import os
import subprocess
import sys

from oslo_config import cfg
from oslo_config import generator
import pytest

from isoplugin import conf as iso_conf
from isoplugin.conf import cloud
from isoplugin.conf import core
from isoplugin.conf import glance
from isoplugin import exception

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, 'etc', 'isoplugin', 'isoplugin.conf.sample')


def test_import_registers_nothing():
    code = ('from oslo_config import cfg\n'
            'before = set(cfg.CONF)\n'
            'import isoplugin.conf, isoplugin.backends, isoplugin.cloud\n'
            'import isoplugin.conf.core, isoplugin.conf.glance\n'
            'import isoplugin.conf.cloud, isoplugin.osc.plugin\n'
            'print(sorted(set(cfg.CONF) - before))\n')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout

    assert out.strip() == '[]'


def test_register_opts_on_given_conf():
    conf = cfg.ConfigOpts()
    iso_conf.register_opts(conf)
    conf(args=[], default_config_files=[])

    assert conf.isoplugin.backend == 'nova-rescue'
    assert conf.glance.property_prefix == 'isoplugin_'
    assert conf.cloud.interface == 'public'
    assert 'isoplugin' not in cfg.CONF


def test_list_opts_sorted_original_objects():
    result = iso_conf.list_opts()
    groups = [group for group, _ in result]

    assert groups == sorted(groups)
    assert {'isoplugin', 'glance', 'cloud'} <= set(groups)
    by_group = dict(result)
    for opts in by_group.values():
        names = [o.name for o in opts]
        assert names == sorted(names)
    # the very objects the modules declare, not copies
    assert all(any(o is p for p in by_group['isoplugin'])
               for o in core.OPTS)
    assert all(any(o is p for p in by_group['glance'])
               for o in glance.OPTS)
    assert all(any(o is p for p in by_group['cloud'])
               for o in cloud.OPTS)


def test_list_opts_includes_backends_without_instantiating(monkeypatch):
    from isoplugin.backends import base

    def no_init(self, conf):
        raise AssertionError('list_opts instantiated a backend')

    monkeypatch.setattr(base.BuildBackend, '__init__', no_init)
    by_group = dict(iso_conf.list_opts())

    assert 'backend_nova_rescue' in by_group
    assert by_group['backend_nova_rescue']


def test_cloud_group_has_keystoneauth_options():
    names = {o.dest for o in dict(iso_conf.list_opts())['cloud']}

    assert {'auth_type', 'auth_url', 'username', 'password',
            'project_name', 'cafile', 'timeout', 'region_name'} <= names
    assert len(names) == len(dict(iso_conf.list_opts())['cloud'])


def test_sample_file_is_current(tmp_path):
    out = tmp_path / 'isoplugin.conf.sample'
    conf = cfg.ConfigOpts()
    generator.register_cli_opts(conf)
    conf(['--namespace', 'isoplugin', '--wrap-width', '79',
          '--output-file', str(out)])
    generator.generate(conf)

    with open(SAMPLE) as committed:
        assert out.read_text() == committed.read(), (
            'etc/isoplugin/isoplugin.conf.sample is stale: '
            'run "tox -e genconfig" and commit the result')


def test_load_config_reads_file(tmp_path):
    path = tmp_path / 'isoplugin.conf'
    path.write_text('[isoplugin]\nbackend = other\nparallel = 7\n')

    conf = iso_conf.load_config(config_files=[str(path)])

    assert conf.isoplugin.backend == 'other'
    assert conf.isoplugin.parallel == 7


def test_load_config_bad_value(tmp_path):
    path = tmp_path / 'isoplugin.conf'
    path.write_text('[isoplugin]\nparallel = zero\n')

    conf = iso_conf.load_config(config_files=[str(path)])
    with pytest.raises(ValueError):
        conf.isoplugin.parallel


def test_load_config_missing_file(tmp_path):
    with pytest.raises(exception.ConfigurationError) as e:
        iso_conf.load_config(config_files=[str(tmp_path / 'nope.conf')])

    assert 'nope.conf' in str(e.value)
