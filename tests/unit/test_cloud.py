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

"""Connections from configuration and the translation of cloud errors."""

import http.client

from keystoneauth1 import exceptions as ks_exc
from openstack import connection
from openstack import exceptions as sdk_exc
from oslo_config import cfg
import pytest
import requests
import testtools
import urllib3

from isoplugin import cloud
from isoplugin import conf as iso_conf
from isoplugin import exception
from tests.unit import base


def _conf(tmp_path, text):
    path = tmp_path / 'isoplugin.conf'
    path.write_text(text)
    return iso_conf.load_config(config_files=[str(path)])


def test_connection_from_conf_uses_keystoneauth_options(tmp_path):
    conf = _conf(tmp_path, '[cloud]\n'
                           'auth_type = password\n'
                           'auth_url = http://keystone.example/v3\n'
                           'username = svc\npassword = secret\n'
                           'project_name = service\n'
                           'user_domain_name = Default\n'
                           'project_domain_name = Default\n'
                           'region_name = RegionTwo\n'
                           'timeout = 42\n')

    conn = cloud.connection_from_conf(conf)

    assert isinstance(conn, connection.Connection)
    assert conn.session.auth.auth_url == 'http://keystone.example/v3'
    assert conn.session.timeout == 42
    assert conn.config.region_name == 'RegionTwo'


def test_connection_from_conf_without_auth(tmp_path):
    conf = _conf(tmp_path, '[cloud]\nregion_name = RegionOne\n')

    with pytest.raises(exception.ConfigurationError) as e:
        cloud.connection_from_conf(conf)

    assert 'auth_type is not set' in str(e.value)


def test_connection_from_conf_incomplete_auth(tmp_path):
    conf = _conf(tmp_path, '[cloud]\nauth_type = password\n')

    with pytest.raises(exception.ConfigurationError) as e:
        cloud.connection_from_conf(conf)

    assert 'auth_url' in str(e.value)


def test_connect_unknown_cloud(monkeypatch, tmp_path):
    clouds = tmp_path / 'clouds.yaml'
    clouds.write_text('clouds:\n  here:\n    auth:\n'
                      '      auth_url: http://keystone.example/v3\n')
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(clouds))

    with pytest.raises(exception.ConfigurationError) as e:
        cloud.connect('not-there')

    assert 'not-there' in str(e.value)


@pytest.mark.parametrize('error, expected, text', [
    (sdk_exc.ForbiddenException('Forbidden', details='policy says no'),
     exception.PermissionDenied, 'Permission denied: policy says no'),
    (sdk_exc.ForbiddenException('Forbidden: no body'),
     exception.PermissionDenied, 'Permission denied: Forbidden: no body'),
    (sdk_exc.NotFoundException('No image'),
     exception.NotFound, "ISO 'x' could not be found."),
    (sdk_exc.ConflictException('Image is in use'),
     exception.Conflict, 'Conflict: Image is in use'),
    (sdk_exc.HttpException('Internal error', details='boom'),
     exception.CloudError, 'The cloud refused the request: boom'),
    (sdk_exc.HttpException('Internal error',
                           details='Unexpected API Error.\n  <class x>'),
     exception.CloudError, 'The cloud refused the request: Unexpected API '
                           'Error. <class x>'),
    (sdk_exc.HttpException('Too large', details='a<br />b',
                           http_status=413),
     exception.CloudError, 'The cloud refused the request: too large: '
                           'a b'),
    (sdk_exc.HttpException('Too large', http_status=413, details=(
        'Image storage media is full: There is not enough disk space on '
        'the image storage media.')),
     exception.StoreFull, "The cloud's image store is full: it refused the "
                          'request (Image storage media is full: There'),
    (sdk_exc.HttpException('Too large', http_status=413, details=(
        'Project 1a2b is over a limit for [Resource image_count_total is '
        'over limit of 3 due to current usage 3 and delta 1]')),
     exception.OverQuota, 'The cloud refused the request: over quota '
                          '(Project 1a2b is over a limit'),
    (ks_exc.ConnectFailure('Unable to establish connection'),
     exception.ConnectionLost, 'The cloud closed the connection during '
                               'the request (Unable to establish '
                               'connection).'),
    (ks_exc.ConnectFailure('Unable to establish connection to '
                           'http://127.0.0.1:28774/v2.1/servers/x: refused'),
     exception.ConnectionLost, 'Nova closed the connection during the '
                               'request'),
    (ks_exc.ConnectFailure('Unable to establish connection to '
                           'http://glance.example/v2/images/x/file: gone'),
     exception.ConnectionLost, 'Glance closed the connection'),
    (ks_exc.ConnectTimeout('Request to http://127.0.0.1:28774/v2.1/servers/'
                           'x timed out'),
     exception.ServiceTimeout, 'Nova did not answer the request in time, '
                               'even when asked again ([isoplugin] '
                               'api_timeout); check that it runs'),
    (sdk_exc.HttpException('Unavailable', details='restarting',
                           http_status=503),
     exception.ServiceUnavailable, 'The cloud did not answer (HTTP 503: '
                                   'restarting); check that it runs'),
])
def test_translate_errors(error, expected, text):
    with pytest.raises(expected) as e:
        with cloud.translate_errors("ISO 'x'"):
            raise error

    assert text in str(e.value)
    assert e.value.__cause__ is error


def _failure(cause):
    """A keystoneauth1 ConnectFailure raised while handling ``cause``."""
    try:
        try:
            raise cause
        except Exception as e:
            raise ks_exc.ConnectFailure('Unable to establish connection: %s'
                                        % e)
    except ks_exc.ConnectFailure as failure:
        return failure


@pytest.mark.parametrize('cause, exc, text', [
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        'Connection aborted.',
        http.client.RemoteDisconnected('Remote end closed'))),
     exception.ConnectionLost,
     'Glance closed the connection during the upload (before answering).'),
    (requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError(
        'Connection aborted.', ConnectionResetError(104, 'reset'))),
     exception.ConnectionLost,
     'Glance closed the connection during the upload (connection reset).'),
    (requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, '/v2', urllib3.exceptions.NewConnectionError(
            None, 'refused'))),
     exception.ConnectionLost, None),
    (requests.exceptions.ConnectionError(
        ConnectionRefusedError(111, 'Connection refused')),
     exception.ServiceUnavailable,
     'Glance did not answer (connection refused); check that it runs, '
     'then try again.'),
])
def test_translate_connection_failures(cause, exc, text):
    failure = _failure(cause)
    with pytest.raises(exc) as e:
        with cloud.translate_errors(service='Glance', during='the upload'):
            raise failure
    if text:
        assert str(e.value) == text
    assert '\n' not in str(e.value)


def test_translate_errors_forbidden_template():
    error = sdk_exc.ForbiddenException('Forbidden', details='policy says no')

    with pytest.raises(exception.PermissionDenied) as e:
        with cloud.translate_errors(forbidden='%(reason)s (ask an admin)'):
            raise error

    assert str(e.value) == 'Permission denied: policy says no (ask an admin)'


def test_translate_errors_keeps_isoplugin_errors():
    original = exception.InvalidInput(reason='bad')

    with pytest.raises(exception.InvalidInput) as e:
        with cloud.translate_errors():
            raise original

    assert e.value is original


class TestErrorAnswers(base.TestCase):
    """Real error answers of a service, through the SDK, translated."""

    def setUp(self):
        super().setUp()
        self.use_glance()

    def _image_url(self, image_id):
        return self.get_mock_url('image', append=['images', image_id],
                                 base_url_append='v2')

    def test_forbidden_body(self):
        self.register_uris([
            dict(method='GET', uri=self._image_url('abc'), status_code=403,
                 json={'message': 'You are not authorized to see image abc',
                       'code': '403 Forbidden', 'title': 'Forbidden'}),
        ])

        with testtools.ExpectedException(
                exception.PermissionDenied,
                'Permission denied: .*not authorized to see image abc'):
            with cloud.translate_errors():
                self.cloud.image.get_image('abc')
        self.assert_calls()

    def test_not_found_names_what(self):
        self.register_uris([
            dict(method='GET', uri=self._image_url('abc'), status_code=404,
                 json={'message': 'No image found with ID abc'}),
        ])

        with testtools.ExpectedException(exception.NotFound,
                                         "ISO 'abc' could not be found."):
            with cloud.translate_errors("ISO 'abc'"):
                self.cloud.image.get_image('abc')
        self.assert_calls()


def test_register_opts_does_not_touch_global_conf():
    conf = cfg.ConfigOpts()
    iso_conf.register_opts(conf)

    assert 'cloud' not in cfg.CONF


class _Proxy(object):
    connect_retries = None
    status_code_retries = 5
    connect_retry_delay = None
    status_code_retry_delay = None
    retriable_status_codes = None


class _Conn(object):
    def __init__(self, timeout=None):
        self.compute = _Proxy()
        self.image = _Proxy()
        self.session = type('Session', (), {'timeout': timeout})()


def test_use_retries_sets_compute_image_and_the_timeout(tmp_path):
    conf = _conf(tmp_path, '[compute]\nconnect_retries = 4\n'
                           'connect_retry_delay = 0.25\n'
                           'retriable_status_codes = 503\n'
                           '[glance]\nconnect_retries = 2\n'
                           '[isoplugin]\napi_timeout = 7\n')
    conn = _Conn()

    cloud.use_retries(conn, conf)

    assert conn.compute.connect_retries == 4
    assert conn.compute.connect_retry_delay == 0.25
    assert conn.compute.retriable_status_codes == [503]
    # the SDK's higher default of 5 is kept
    assert conn.compute.status_code_retries == 6
    assert conn.image.connect_retries == 2
    assert conn.image.retriable_status_codes == [502, 503, 504]
    assert conn.session.timeout == 7


def test_use_retries_keeps_a_timeout_from_clouds_yaml(tmp_path):
    conn = _Conn(timeout=300)

    cloud.use_retries(conn, _conf(tmp_path, ''))

    assert conn.session.timeout == 300


def _retry_record(error=None, code=None, left=6):
    import logging

    args = {'delay': 0.5, 'retries': left}
    if error is not None:
        args['e'] = error
        msg = 'Failure: %(e)s. Retrying in %(delay).1fs. %(retries)s ' \
              'retries left'
    else:
        args['code'] = code
        msg = 'Retriable status code %(code)s. Retrying in %(delay).1fs. ' \
              '%(retries)s retries left'
    return logging.LogRecord('keystoneauth.session', logging.WARNING, 'x',
                             1, msg, args, None)


class TestQuietRetries(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.filter = cloud.QuietRetries()

    def _refused(self, left):
        failure = _failure(ConnectionRefusedError(111, 'refused'))
        failure.args = ('Unable to establish connection to '
                        'http://127.0.0.1:28774/v2.1/servers/x: long '
                        'chain of urllib3 errors',)
        return _retry_record(failure, left=left)

    def test_one_short_line_per_series(self):
        shown = []
        for left in (6, 5, 4, 6, 5):  # two series
            record = self._refused(left)
            if self.filter.filter(record):
                shown.append(record.getMessage())

        self.assertEqual(2, len(shown))
        self.assertEqual(
            'http://127.0.0.1:28774: connection refused; retrying, 6 tries '
            'left (--debug shows each)', shown[0])
        self.assertNotIn('urllib3', shown[0])

    def test_status_codes(self):
        record = _retry_record(code=503, left=3)

        self.assertTrue(self.filter.filter(record))
        self.assertIn('it answered HTTP 503; retrying', record.getMessage())
        self.assertFalse(self.filter.filter(_retry_record(code=503,
                                                          left=2)))

    def test_debug_installs_nothing(self):
        import logging

        logger = logging.getLogger('keystoneauth.session')
        self.addCleanup(setattr, logger, 'filters', list(logger.filters))
        logger.filters = []  # an earlier test's command may have set it

        cloud.quiet_retry_logs(debug=True)
        self.assertEqual([], [f for f in logger.filters
                              if isinstance(f, cloud.QuietRetries)])
        cloud.quiet_retry_logs()
        cloud.quiet_retry_logs()
        self.assertEqual(1, len([f for f in logger.filters
                                 if isinstance(f, cloud.QuietRetries)]))

    def test_other_records_untouched(self):
        import logging

        record = logging.LogRecord('keystoneauth.session', logging.WARNING,
                                   'x', 1, 'something else %s', ('a',),
                                   None)
        self.assertTrue(self.filter.filter(record))
        self.assertEqual('something else a', record.getMessage())
