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

"""Helpers shared by the ``openstack iso`` commands."""

import contextlib


@contextlib.contextmanager
def command_errors():
    """Turn isoplugin's errors into OSC ``CommandError`` (one line, exit 1).

    Input errors and cloud refusals alike reach the user as the library's
    own message, which names the problem and what to do.
    """
    from osc_lib import exceptions

    from isoplugin import exception

    try:
        yield
    except exception.IsopluginException as e:
        raise exceptions.CommandError(str(e)) from e
