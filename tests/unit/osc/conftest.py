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

"""Fixtures shared by the tests of the OpenStackClient commands."""

import io
from unittest import mock

from openstack import connection
import pytest

from isoplugin.osc import plugin


@pytest.fixture
def app():
    """An OSC app whose iso client has a specced connection."""
    a = mock.Mock(spec=['client_manager', 'stdout', 'options'])
    client = mock.Mock(spec=plugin.IsoClient)
    client.conn = mock.Mock(spec=connection.Connection)
    client.conf = mock.sentinel.conf
    a.client_manager.iso = client
    a.stdout = io.StringIO()
    return a
