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

Built on public pieces only: requests-mock, openstacksdk's
:class:`openstack.fixture.connection.ConnectionFixture` (a Keystone v3
token with a service catalog) and a keystoneauth1 plugin that holds that
token, so that no request is made to authenticate and nothing depends on
the working directory. It keeps the style of openstacksdk's own tests:
register the expected requests in order with :meth:`TestCase.register_uris`
and check them with :meth:`TestCase.assert_calls`.
"""

import json
import urllib.parse

import fixtures
from keystoneauth1 import access
from keystoneauth1.identity import access as access_plugin
from keystoneauth1 import session as ks_session
from openstack import connection
from openstack.fixture import connection as os_fixture
from requests import structures
from requests_mock.contrib import fixture as rm_fixture
import testtools

PROJECT_ID = '1c36b64c840a42cd9e9b931a369337f0'
TOKEN = 'a-token-of-the-unit-tests'

IDENTITY_ENDPOINT = 'https://identity.example.com/'
IMAGE_ENDPOINT = 'https://image.example.com/'
COMPUTE_ENDPOINT = 'https://compute.example.com/v2.1/'

#: Keystone's version document (``GET /``).
KEYSTONE_VERSIONS = {'versions': {'values': [
    {'id': 'v3.14', 'status': 'stable',
     'links': [{'href': IDENTITY_ENDPOINT + 'v3/', 'rel': 'self'}]}]}}

#: Glance's version document (``GET /``), as a Glance of 2024 answers.
GLANCE_VERSIONS = {'versions': [
    {'id': 'v2.%d' % minor, 'status': 'CURRENT' if minor == 16 else
     'SUPPORTED',
     'links': [{'href': IMAGE_ENDPOINT + 'v2/', 'rel': 'self'}]}
    for minor in range(16, -1, -1)]}

#: Nova's version document (``GET /v2.1/``).
NOVA_VERSION = {'version': {
    'id': 'v2.1', 'status': 'CURRENT', 'version': '2.96',
    'min_version': '2.1',
    'links': [{'href': COMPUTE_ENDPOINT, 'rel': 'self'}]}}

#: Keys of a registered request that are checked, not answered.
VALIDATE_KEYS = frozenset(('json', 'headers', 'params', 'data'))


class TestCase(testtools.TestCase):
    """A connection whose requests go to requests-mock.

    ``self.cloud`` is an :class:`openstack.connection.Connection` for
    project :data:`PROJECT_ID`, authenticated by a fixed token. Version
    discovery answers are registered with :meth:`use_glance` and
    :meth:`use_compute_discovery` (Keystone's always); they are answered
    whenever openstacksdk asks and are not part of :meth:`assert_calls`,
    which checks the requests of the code under test only.
    ``time.sleep`` does not sleep.
    """

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch('time.sleep', lambda s: None))
        self.adapter = self.useFixture(rm_fixture.Fixture())
        self.os_fixture = self.useFixture(
            os_fixture.ConnectionFixture(project_id=PROJECT_ID))
        token = self.os_fixture.v3_token
        auth_ref = access.create(body=token, auth_token=TOKEN)
        auth = access_plugin.AccessInfoPlugin(
            auth_ref, auth_url=IDENTITY_ENDPOINT + 'v3')
        self.cloud = connection.Connection(
            session=ks_session.Session(auth=auth), region_name='RegionOne')
        self.calls = []
        self._responses = {}
        self._discovery_urls = set()
        self._use_discovery(IDENTITY_ENDPOINT, KEYSTONE_VERSIONS)

    # -- discovery --------------------------------------------------------

    def _use_discovery(self, url, body):
        self._discovery_urls.add(url)
        self.adapter.register_uri('GET', url, json=body)

    def use_glance(self):
        """Answer openstacksdk's version discovery of the Image service."""
        self._use_discovery(IMAGE_ENDPOINT, GLANCE_VERSIONS)

    def use_compute_discovery(self, compute_version_json=None):
        """Answer the Compute service's version discovery.

        :param compute_version_json: path of a JSON version document
            (to set the maximum microversion); default :data:`NOVA_VERSION`.
        """
        body = NOVA_VERSION
        if compute_version_json:
            with open(compute_version_json) as f:
                body = json.load(f)
        self._use_discovery(COMPUTE_ENDPOINT, body)

    # -- requests ---------------------------------------------------------

    def get_mock_url(self, service_type, interface='public', resource=None,
                     append=None, base_url_append=None, qs_elements=None):
        """The URL of a request to a service of the test catalog.

        :param service_type: e.g. ``image``, ``compute``.
        :param interface: endpoint interface.
        :param resource: first path element after the endpoint.
        :param append: further path elements (URL-quoted here).
        :param base_url_append: version path after the endpoint (``v2``).
        :param qs_elements: ``key=value`` strings of the query.
        """
        endpoint = self.cloud.endpoint_for(service_type,
                                           interface=interface)
        parts = [endpoint.rstrip('/')]
        if base_url_append:
            parts.append(base_url_append)
        if resource:
            parts.append(resource)
        parts.extend(urllib.parse.quote(p) for p in append or ())
        url = '/'.join(parts)
        if qs_elements is not None:
            url += '?' + '&'.join(qs_elements)
        return url

    def image_url(self, *parts, **query):
        """The URL of a Glance v2 request.

        :param parts: path elements after ``/v2`` (``'images'``, an ID...).
        :param query: the query string's parameters, in this order.
        """
        url = self.get_mock_url('image', append=list(parts),
                                base_url_append='v2')
        if query:
            url += '?' + urllib.parse.urlencode(query)
        return url

    def register_uris(self, uri_mock_list):
        """Register the expected requests, in the order they are made.

        Each dict has ``method`` and ``uri``; ``validate`` (a dict with
        ``json``, ``headers``, ``params`` or ``data``) is checked by
        :meth:`assert_calls`; ``request_headers`` and ``complete_qs`` go
        to requests-mock's matcher; the other keys (``json``, ``text``,
        ``content``, ``status_code``, ``headers``...) make the answer. The
        same method and URL registered several times answer in order.
        """
        for entry in uri_mock_list:
            entry = dict(entry)
            method = entry.pop('method')
            uri = entry.pop('uri')
            validate = entry.pop('validate', {})
            unknown = set(validate) - VALIDATE_KEYS
            if unknown:
                raise TypeError('cannot validate %s' % ', '.join(unknown))
            matcher = {k: entry.pop(k) for k in ('request_headers',
                                                 'complete_qs')
                       if k in entry}
            headers = structures.CaseInsensitiveDict(
                entry.pop('headers', {}))
            headers.setdefault('Content-Type', 'application/json')
            entry['headers'] = headers
            self.calls.append(dict(validate, method=method, url=uri))
            key = (method, uri, repr(sorted(matcher.items())))
            responses = self._responses.setdefault(key, [])
            responses.append(entry)
            self.adapter.register_uri(method, uri, responses, **matcher)

    def _history(self):
        return [r for r in self.adapter.request_history
                if not (r.method == 'GET' and r.url in self._discovery_urls)]

    def assert_calls(self, do_count=True):
        """Check the requests made against those registered, in order.

        Method, URL (the query in any order) and whatever ``validate``
        named; with ``do_count``, that exactly these requests were made.
        """
        history = self._history()
        for n, (call, request) in enumerate(zip(self.calls, history)):
            expected = _split(call['url'])
            actual = _split(request.url)
            self.assertEqual(
                (call['method'], expected), (request.method, actual),
                'request %d: expected %s %s, got %s %s' % (
                    n, call['method'], call['url'], request.method,
                    request.url))
            if 'json' in call:
                self.assertEqual(call['json'], json.loads(request.body),
                                 'json content mismatch in call %d' % n)
            if 'data' in call:
                self.assertEqual(call['data'], request.body,
                                 'data mismatch in call %d' % n)
            if 'params' in call:
                self.assertEqual(call['params'], request.qs,
                                 'params mismatch in call %d' % n)
            for name, value in call.get('headers', {}).items():
                self.assertEqual(value, request.headers.get(name),
                                 'header %s mismatch in call %d' % (name, n))
        if do_count:
            self.assertEqual(
                len(self.calls), len(history),
                'expected %d requests, these were made: %s' % (
                    len(self.calls),
                    ', '.join('%s %s' % (r.method, r.url)
                              for r in history)))


def _split(url):
    """A URL as (scheme, host, path, sorted query), to compare."""
    parts = urllib.parse.urlsplit(url)
    return (parts.scheme, parts.netloc, parts.path,
            sorted(urllib.parse.parse_qsl(parts.query,
                                          keep_blank_values=True)))
