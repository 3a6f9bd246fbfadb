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

"""isoplugin.background: the --no-wait worker (fork and redirection faked)."""

import os
from unittest import mock

import pytest

from isoplugin import background
from isoplugin import exception


class FakeBuild(object):
    id = 'b-1'
    progress = None

    def __init__(self, error=None):
        self.error = error
        self.ran = False

    def run(self):
        self.ran = True
        if self.error is not None:
            raise self.error


@pytest.fixture
def detached():
    """The child's session and descriptor changes, recorded not done."""
    with mock.patch.object(os, 'setsid') as setsid, \
            mock.patch.object(os, 'dup2') as dup2:
        yield setsid, dup2


def test_parent_gets_the_pid_and_the_log(tmp_path):
    with mock.patch.object(os, 'fork', return_value=4242), \
            mock.patch.object(os, '_exit') as exit_:
        pid, path = background.run_in_background(FakeBuild(),
                                                 directory=str(tmp_path))

    assert pid == 4242
    assert path == str(tmp_path / 'build-b-1.log')
    exit_.assert_not_called()


def test_child_exits_with_the_build_result(tmp_path, detached):
    build = FakeBuild()
    with mock.patch.object(os, 'fork', return_value=0), \
            mock.patch.object(os, '_exit', side_effect=SystemExit) as exit_:
        with pytest.raises(SystemExit):
            background.run_in_background(build, directory=str(tmp_path))

    assert build.ran
    exit_.assert_called_once_with(0)
    setsid, dup2 = detached
    setsid.assert_called_once_with()
    # stdout and stderr go to the log file (pytest's capture dup2s too)
    log = os.stat(tmp_path / 'build-b-1.log').st_ino
    assert [c.args[1] for c in dup2.call_args_list
            if _inode(c.args[0]) == log] == [1, 2]


def _inode(fd):
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return None


def test_child_logs_a_failure_and_exits_non_zero(tmp_path, detached,
                                                 caplog):
    error = exception.BuildFailed(build_id='b-1', phase='boot',
                                  reason='no host')
    progress = mock.Mock()

    code = background._child(FakeBuild(error), progress,
                             str(tmp_path / 'b.log'))

    assert code == 1
    assert 'Background build b-1 failed' in caplog.text
    assert 'no host' in caplog.text
    # the progress callback writes into the log file
    stream = progress.call_args.args[0]
    assert os.fstat(stream.fileno()).st_ino == os.stat(
        tmp_path / 'b.log').st_ino
    stream.close()


def test_child_does_not_swallow_an_interrupt(tmp_path, detached, caplog):
    code = background._child(FakeBuild(KeyboardInterrupt()), None,
                             str(tmp_path / 'b.log'))

    assert code == 1
    assert 'Background build b-1 failed' in caplog.text


def test_child_keeps_a_system_exit_code(tmp_path, detached):
    code = background._child(FakeBuild(SystemExit(3)), None,
                             str(tmp_path / 'b.log'))

    assert code == 3
