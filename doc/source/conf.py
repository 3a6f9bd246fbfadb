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

"""Sphinx configuration of isoplugin's documentation."""

extensions = [
    'sphinx.ext.autodoc',
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'oslo_config.sphinxconfiggen',
    'cliff.sphinxext',
]

config_generator_config_file = [
    ('../../etc/oslo-config-generator/isoplugin.conf',
     '_static/isoplugin'),
]
sample_config_basename = '_static/isoplugin'

openstackdocs_repo_name = 'openstack/isoplugin'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_bug_project = 'isoplugin'
openstackdocs_bug_tag = 'doc'

project = 'isoplugin'
copyright = '2026, The isoplugin Authors'
master_doc = 'index'
source_suffix = {'.rst': 'restructuredtext'}
exclude_patterns = ['_build']
pygments_style = 'native'
html_theme = 'openstackdocs'
html_static_path = ['_static']

autoprogram_cliff_application = 'openstack'
autodoc_member_order = 'bysource'
