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

"""The retry options of a service isoplugin calls (one definition).

``[glance]`` and ``[compute]`` each have them; :func:`isoplugin.cloud.
use_retries` gives them to the service's openstacksdk proxy, whose
keystoneauth1 adapter then tries a request again.
"""

from oslo_config import cfg


def retry_opts(service, never):
    """The five retry options of ``service``.

    :param service: the service as a person names it ("Glance", "Nova").
    :param never: a sentence: what is never retried, and why.
    :returns: a list of options.
    """
    return [
        cfg.IntOpt('connect_retries',
                   default=6, min=0,
                   help='Times a request to %(s)s that can safely be sent '
                        'again (reading, listing, deleting, changing '
                        'properties) is retried when %(s)s cannot be '
                        'reached, closes the connection or does not answer '
                        'within [isoplugin] api_timeout, for example while '
                        'it restarts. keystoneauth1 waits '
                        'connect_retry_delay between tries, or 0.5 s '
                        'doubling each time (6 retries: about 30 s). '
                        '%(never)s' % {'s': service, 'never': never}),
        cfg.FloatOpt('connect_retry_delay',
                     min=0,
                     help='Seconds between the retries of connect_retries; '
                          'unset: 0.5 s, doubling up to 60 s.'),
        cfg.IntOpt('status_code_retries',
                   default=6, min=0,
                   help='Times a request to %(s)s is retried when %(s)s, '
                        'or a proxy before it, answers one of '
                        'retriable_status_codes (the service behind is '
                        'restarting or overloaded). %(never)s'
                        % {'s': service, 'never': never}),
        cfg.FloatOpt('status_code_retry_delay',
                     min=0,
                     help='Seconds between the retries of '
                          'status_code_retries; unset: 0.5 s, doubling up '
                          'to 60 s.'),
        cfg.ListOpt('retriable_status_codes',
                    item_type=cfg.types.Integer(min=400, max=599),
                    default=[502, 503, 504],
                    help='HTTP statuses of %s retried by '
                         'status_code_retries.' % service),
    ]
