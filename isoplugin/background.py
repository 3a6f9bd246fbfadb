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

"""Drive a build in a detached background process (``--no-wait``).

The build's state is in the cloud (see :mod:`isoplugin.records`), so the
process that starts a build need not be the one that drives it: ``openstack
iso build list|show|finish|delete`` work from anywhere while it runs.
"""

import os
import sys
import traceback

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def log_path(build_id, directory=None):
    """Where the background process of ``build_id`` writes its output.

    :param directory: default ``~/.cache/isoplugin``.
    :returns: a path.
    """
    directory = directory or os.path.join(os.path.expanduser('~'),
                                          '.cache', 'isoplugin')
    return os.path.join(directory, 'build-%s.log' % build_id)


def run_in_background(build, progress=None, directory=None):
    """Fork a detached process that runs ``build`` to its end.

    The child starts a new session, sends its standard output and error
    to :func:`log_path`, sets ``build.progress`` to ``progress(stream)``
    when given, and runs :meth:`isoplugin.build.Build.run`. It exits 0
    when the build succeeds; otherwise it logs the error with its
    traceback into that file and exits 1 (or the code of a
    ``SystemExit``). The child never returns to the caller.

    :param build: an :class:`isoplugin.build.Build` not yet run.
    :param progress: callable taking the log stream and returning the
        build's progress callback (the command line's progress lines).
    :param directory: directory of the log file.
    :returns: ``(pid, log file)`` of the background process, in the
        caller.
    """
    path = log_path(build.id, directory)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pid = os.fork()
    if pid:
        return pid, path
    os._exit(_child(build, progress, path))


def _child(build, progress, path):
    """Run the build in the forked child; return its exit code."""
    code = 1
    try:
        os.setsid()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if progress is not None:
            build.progress = progress(os.fdopen(os.dup(fd), 'w'))
        build.run()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:
        LOG.error('Background build %(id)s failed: %(err)s',
                  {'id': build.id, 'err': e})
        # the process's own logging may not be set up: say it in the file
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code
