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

"""Secret template variables never reach a log record (issue 11, 12).

Every family's prepared copy is made with its secret variables set while
every logger records at DEBUG; the secrets must be in the answer file
(so that the check can fail) and in no log record, message or argument,
nor in the manifest. Answer files that do not parse must not have their
secret quoted back in the error. The end-to-end check through the CLI and
the real cloud is tests/functional/test_secrets.py.
"""

import json
import logging
import uuid

import pytest

from isoplugin import exception
from isoplugin import isoinfo
from isoplugin import profiles
from isoplugin.profiles import base
from isoplugin import remaster


def _secret(kind):
    return 'H5%s%s' % (kind, uuid.uuid4().hex)


#: each family and the values of its secret variables
SECRETS = {
    'debian': {'password_hash': '$6$' + _secret('debian')},
    'ubuntu': {'password_hash': '$6$' + _secret('ubuntu')},
    'anaconda': {'password_hash': '$6$' + _secret('anaconda')},
    'suse': {'password_hash': '$6$' + _secret('suse')},
    'windows': {'admin_password': _secret('adminpw'),
                'product_key': _secret('key')},
}


@pytest.fixture
def out_dir(tmp_path):
    d = tmp_path / 'out'
    d.mkdir()
    return str(d)


@pytest.fixture
def rendered(monkeypatch):
    """The answer files the profiles render, in order."""
    texts = []
    real = base.Profile.render

    def render(self, values=None):
        text = real(self, values)
        texts.append(text)
        return text

    monkeypatch.setattr(base.Profile, 'render', render)
    return texts


def _logged(caplog):
    """Everything the log records hold: messages, arguments, exceptions."""
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(repr(record.msg))
        if record.exc_info:
            parts.append(logging.Formatter().formatException(
                record.exc_info))
    return '\n'.join(parts)


def _source(family, distro_isos, windows_iso):
    # the family layout of make_distro_iso; Windows media with the
    # ISO 9660 bridge that a prepared copy needs
    return windows_iso if family == 'windows' else distro_isos[family]


@pytest.mark.parametrize('family', sorted(SECRETS))
def test_prepare_logs_no_secret(family, distro_isos, windows_iso, out_dir,
                                rendered, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = SECRETS[family]
    out, manifest = remaster.prepare(
        _source(family, distro_isos, windows_iso), profile=family,
        values=dict(secrets), output_dir=out_dir)

    # the secrets went into the answer file: the checks below could fail
    assert rendered, 'no answer file was rendered'
    for value in secrets.values():
        assert value in rendered[-1], (family, value)
    # isoplugin logged at DEBUG (the check looks at real records)
    assert any(r.levelno == logging.DEBUG and r.name.startswith('isoplugin')
               for r in caplog.records), caplog.text
    logged = _logged(caplog) + caplog.text
    shown = json.dumps(manifest.as_dict()) + repr(manifest)
    for name, value in secrets.items():
        assert value not in logged, '%s of %s logged' % (name, family)
        assert value not in shown, '%s of %s in the manifest' % (name,
                                                                 family)
        assert manifest.variables[name] == '***'


def test_generated_windows_password_logged_nowhere(windows_iso, out_dir,
                                                   rendered, caplog):
    # no admin_password given: a random one is made; it is as secret
    caplog.set_level(logging.DEBUG)
    out, manifest = remaster.prepare(windows_iso, profile='windows',
                                     output_dir=out_dir)
    answer = rendered[-1]
    start = answer.index('<Password>')
    value = answer[start:answer.index('</Password>', start)]
    password = value.split('<Value>')[1].split('</Value>')[0]
    assert len(password) >= 18, answer
    assert password not in _logged(caplog) + caplog.text
    assert password not in json.dumps(manifest.as_dict())


def test_own_answer_file_logged_nowhere(distro_isos, out_dir, caplog):
    # the user's own answer file may hold a plain password
    caplog.set_level(logging.DEBUG)
    secret = _secret('plain')
    answer = 'text\nrootpw --plaintext %s\npoweroff\n' % secret
    out, manifest = remaster.prepare(distro_isos['anaconda'],
                                     profile='anaconda', answer=answer,
                                     output_dir=out_dir)
    with isoinfo.open_files(out) as files:
        assert secret in files.read('ks.cfg').decode()
    assert secret not in _logged(caplog) + caplog.text
    assert secret not in json.dumps(manifest.as_dict())


#: answer files that do not parse, each with a secret on the bad line
BAD_ANSWERS = {
    'ubuntu': 'autoinstall:\n  version: 1\n  identity: {password: '
              '"%s"\n  bad: [\n',
    'debian': 'd-i passwd/root-password-crypted password %s\n'
              'd-i passwd/root-login nonsense %s\n',
    'anaconda': 'rootpw --iscrypted %s\n%%post\nrootpw %s\n',
    'suse': '<profile><users><user><user_password>%s</user_password>'
            '</users></profile>',
    'windows': '<unattend><Password><Value>%s</Value></Password>'
               '</unattend',
}


@pytest.mark.parametrize('family', sorted(BAD_ANSWERS))
def test_invalid_answer_file_error_quotes_no_secret(family, caplog):
    caplog.set_level(logging.DEBUG)
    secret = _secret('bad')
    template = BAD_ANSWERS[family]
    text = template % ((secret,) * template.count('%s'))
    profile = profiles.get_profile(family)

    with pytest.raises(exception.AnswerFileInvalid) as e:
        profile.validate(text)

    assert secret not in str(e.value), str(e.value)
    assert secret not in repr(e.value.kwargs)
    assert secret not in _logged(caplog) + caplog.text


def test_redacted_values_hide_every_secret_variable():
    # what the manifest and the build record show of the variables
    for family, secrets in SECRETS.items():
        profile = profiles.get_profile(family)
        values = profile.resolve(dict(secrets))
        shown = repr(profile.redact(values))
        for name, value in secrets.items():
            assert name in profile.secret_names(), (family, name)
            assert value not in shown, (family, name)
