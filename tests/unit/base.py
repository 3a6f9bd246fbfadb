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

"""Base class of the request-level unit tests.

openstacksdk's own test base (``register_uris`` / ``assert_calls``, a fake
clouds.yaml and service catalog, ``time.sleep`` patched out) is shipped in
the openstacksdk package, but it reads its fixture files relative to the
openstacksdk source tree. This subclass points it at the installed copy.
"""

import os

import openstack
from openstack.tests.unit import base as sdk_base

SDK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(
    openstack.__file__)))


class TestCase(sdk_base.TestCase):
    """openstacksdk's TestCase, usable outside the openstacksdk tree.

    ``self.cloud`` is an :class:`openstack.connection.Connection` whose
    requests go to requests-mock; register the expected ones in order with
    ``self.register_uris([...])`` and check them with
    ``self.assert_calls()``.
    """

    def setUp(self):
        cwd = os.getcwd()
        os.chdir(SDK_ROOT)
        try:
            super().setUp()
        finally:
            os.chdir(cwd)
        self.fixtures_directory = os.path.join(
            SDK_ROOT, 'openstack', 'tests', 'unit', 'fixtures')
