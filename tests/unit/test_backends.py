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

"""The backend factory: loading by name through stevedore."""

from oslo_config import cfg
import pytest

from isoplugin import backends
from isoplugin.backends import base
from isoplugin import exception
from tests.unit import fake_backend


@pytest.fixture
def test_backends():
    with fake_backend.registered_backends():
        yield


def test_loads_backend_by_name(conf, test_backends):
    backend = backends.get_backend(conf, 'unit-fake')

    assert isinstance(backend, fake_backend.FakeBackend)
    assert backend.conf is conf
    # the backend registered its own options on the conf it was given
    assert conf.backend_unit_fake.install_polls == 2
    assert backend.options.install_polls == 2


def test_default_name_comes_from_configuration(conf, test_backends):
    conf.set_override('backend', 'unit-fake', group='isoplugin')

    backend = backends.get_backend(conf)

    assert backend.NAME == 'unit-fake'


def test_backend_options_not_registered_globally(conf, test_backends):
    backends.get_backend(conf, 'unit-fake')

    assert 'backend_unit_fake' not in cfg.CONF


def test_unknown_name_lists_installed_backends(conf, test_backends):
    with pytest.raises(exception.BackendNotFound) as e:
        backends.get_backend(conf, 'no-such-backend')

    message = str(e.value)
    assert "'no-such-backend'" in message
    assert 'nova-rescue' in message
    assert 'unit-fake' in message


def test_unknown_name_without_test_backends(conf):
    with pytest.raises(exception.BackendNotFound) as e:
        backends.get_backend(conf, 'unit-fake')

    assert 'unit-fake' not in str(e.value).split('Installed backends:')[1]
    assert 'nova-rescue' in str(e.value)


def test_backend_that_fails_to_import(conf, test_backends):
    with pytest.raises(exception.BackendLoadError) as e:
        backends.get_backend(conf, 'unit-broken')

    assert 'unit-broken' in str(e.value)
    assert 'no_such_module' in str(e.value)


def test_object_that_is_not_a_backend(conf, test_backends):
    with pytest.raises(exception.BackendLoadError) as e:
        backends.get_backend(conf, 'unit-not-a-backend')

    assert 'NotABackend is not a BuildBackend' in str(e.value)


def test_available_backends_reads_entry_points_only(test_backends):
    names = backends.available_backends()

    assert names == sorted(names)
    assert {'nova-rescue', 'unit-fake', 'unit-broken'} <= set(names)


def test_backend_classes_skips_broken_ones(test_backends):
    found = dict(backends.backend_classes())

    assert found['unit-fake'] is fake_backend.FakeBackend
    assert 'unit-broken' not in found


def test_config_group_and_capabilities():
    assert fake_backend.FakeBackend.config_group() == 'backend_unit_fake'
    backend_cls = fake_backend.FakeBackend
    assert backend_cls.CAPABILITIES & base.Capabilities.DISK_SIZE
    assert not backend_cls.CAPABILITIES & \
        base.Capabilities.INTERACTIVE_INSTALL


def test_supports(conf, test_backends):
    backend = backends.get_backend(conf, 'unit-fake')

    assert backend.supports(base.Capabilities.UNATTENDED_INSTALL)
    assert not backend.supports(base.Capabilities.INTERACTIVE_INSTALL)


def test_default_console_url_is_unsupported(conf, test_backends):
    backend = backends.get_backend(conf, 'unit-fake')

    with pytest.raises(exception.CloudUnsupported) as e:
        backend.console_url(ctx=None)
    assert 'unit-fake backend has no remote console' in str(e.value)


def test_default_check_request_accepts_and_looks_at_nothing(
        conf, test_backends):
    backend = backends.get_backend(conf, 'unit-fake')
    ctx = base.BuildContext(
        build_id='b-1', conn=None, conf=conf, request=None, iso=None,
        resources=base.BuildResources(), wait=None, record_fields=None)

    # no connection, no wait: a default that looked would fail here
    assert backend.check_request(ctx) is None
    assert backend.release(ctx) is None
    assert ctx.resources == base.BuildResources()


def test_abstract_base_cannot_be_instantiated(conf):
    with pytest.raises(TypeError):
        base.BuildBackend(conf)


def test_backends_import_nothing_of_the_pipeline():
    """A backend module can be loaded without the pipeline or catalog."""
    import ast
    import pathlib

    import isoplugin.backends

    forbidden = {'isoplugin.build', 'isoplugin.catalog', 'isoplugin.records'}
    package = pathlib.Path(isoplugin.backends.__file__).parent
    for path in package.glob('*.py'):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + ['%s.%s' % (node.module, a.name)
                                         for a in node.names]
            assert not forbidden & set(names), (path.name, names)


def test_fake_backend_uses_only_the_public_contract():
    import ast
    import pathlib

    allowed = {'isoplugin.backends.base', 'isoplugin.exception',
               'isoplugin.compute', 'isoplugin.glance'}
    tree = ast.parse(pathlib.Path(fake_backend.__file__).read_text())
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith('isoplugin'):
            used |= {'%s.%s' % (node.module, a.name) for a in node.names}
        elif isinstance(node, ast.Import):
            used |= {a.name for a in node.names
                     if a.name.startswith('isoplugin')}
    assert used and used <= allowed, used


# -- --backend auto --------------------------------------------------------

def _conn_with_flavor(flavor):
    from unittest import mock

    from openstack.compute.v2 import _proxy as compute_proxy
    from openstack.compute.v2 import flavor as _flavor
    from openstack import connection
    from openstack.test import fakes

    conn = mock.Mock(spec=connection.Connection)
    conn.compute = mock.Mock(spec=compute_proxy.Proxy)
    conn.compute.find_flavor.return_value = (
        fakes.generate_fake_resource(_flavor.Flavor, **flavor)
        if flavor else None)
    return conn


def test_auto_picks_nova_volume_for_a_0_gib_root_flavor(conf):
    conn = _conn_with_flavor({'name': 'bfv.small', 'disk': 0})

    name, why = backends.select_backend(conn, conf, 'auto', 'bfv.small')

    assert name == 'nova-volume'
    assert 'bfv.small' in why and '0 GiB' in why
    conn.compute.find_flavor.assert_called_once_with(
        'bfv.small', ignore_missing=True)


def test_auto_picks_the_configured_default_for_a_root_disk(conf):
    conf.set_override('backend', 'unit-fake', group='isoplugin')
    conn = _conn_with_flavor({'name': 'm1.tiny', 'disk': 1})

    name, why = backends.select_backend(conn, conf, 'auto', 'm1.tiny')

    assert name == 'unit-fake'
    assert 'm1.tiny' in why


def test_auto_without_a_flavor_is_the_configured_default(conf):
    conn = _conn_with_flavor(None)
    conf.set_override('backend', 'auto', group='isoplugin')

    name, why = backends.select_backend(conn, conf)

    assert name == backends.FALLBACK
    assert why
    conn.compute.find_flavor.assert_not_called()


def test_a_backend_named_is_taken_as_it_is(conf):
    conn = _conn_with_flavor({'name': 'bfv.small', 'disk': 0})

    assert backends.select_backend(conn, conf, 'nova-rescue',
                                   'bfv.small') == ('nova-rescue', None)
    conn.compute.find_flavor.assert_not_called()


def test_get_backend_auto_asks_the_flavor_when_given_a_connection(conf):
    conn = _conn_with_flavor({'name': 'bfv.small', 'disk': 0})

    backend = backends.get_backend(conf, 'auto', conn=conn,
                                   flavor='bfv.small')

    assert backend.NAME == 'nova-volume'
    assert 'bfv.small' in backend.chosen_because


def test_get_backend_auto_without_a_connection_is_the_default(conf):
    backend = backends.get_backend(conf, 'auto')

    assert backend.NAME == 'nova-rescue'
    assert backend.chosen_because is None
