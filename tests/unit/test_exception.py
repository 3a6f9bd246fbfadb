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

"""The exception hierarchy and its message templates."""

from isoplugin import exception


def test_template_filled_from_kwargs():
    e = exception.BackendNotFound(name='x', available='a, b')

    assert str(e) == ("No build backend named 'x' is installed. "
                      "Installed backends: a, b.")
    assert e.kwargs == {'name': 'x', 'available': 'a, b'}


def test_explicit_message_wins():
    e = exception.CloudError('plain message', reason='ignored')

    assert str(e) == 'plain message'


def test_missing_field_keeps_template():
    e = exception.InvalidInput(wrong='x')

    assert str(e) == exception.InvalidInput.msg_fmt


def test_hierarchy():
    assert issubclass(exception.PermissionDenied, exception.CloudError)
    assert issubclass(exception.CloudError, exception.IsopluginException)
    assert issubclass(exception.BackendNotFound,
                      exception.IsopluginException)
