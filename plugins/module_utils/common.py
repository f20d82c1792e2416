# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared plumbing for fastboot.cloud modules.

Helpers raise typed errors (subclasses of FastbootError); a module's main() catches them and turns them
into fail_json with the error's context, so every failure names the thing and the fix.
Binaries are located with get_bin_path(required=True) and run as an argument list (never a shell) with
LC_ALL=C so their output can be parsed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import time

C_LOCALE = {'LC_ALL': 'C', 'LANG': 'C'}


class FastbootError(Exception):
    """Base class of the collection's typed errors. ``details`` is returned to the user with fail_json."""

    def __init__(self, msg, **details):
        super(FastbootError, self).__init__(msg)
        self.msg = msg
        self.details = details


class InputError(FastbootError):
    """The user's input is wrong (missing file, bad format, bad name): nothing was changed."""


class CommandError(FastbootError):
    """An external command exited non-zero or printed something unparsable."""

    def __init__(self, msg, cmd=None, rc=None, stdout=None, stderr=None, **details):
        super(CommandError, self).__init__(msg, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr, **details)
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class Runner(object):
    """Runs binaries for a module: located once, called as a list, in the C locale."""

    def __init__(self, module):
        self.module = module
        self._paths = {}

    def bin(self, name):
        if name not in self._paths:
            self._paths[name] = self.module.get_bin_path(name, required=True)
        return self._paths[name]

    def run(self, argv, check=True, data=None, what=None):
        """Run ``argv`` (first element a binary name); return (rc, stdout, stderr).

        With ``check`` a non-zero exit raises CommandError naming ``what`` (default: the command).
        """
        argv = [self.bin(argv[0])] + [str(a) for a in argv[1:]]
        rc, out, err = self.module.run_command(argv, data=data, environ_update=C_LOCALE,
                                               check_rc=False)
        if check and rc != 0:
            first = (err or out or '').strip().splitlines()
            reason = first[-1] if first else 'no output'
            raise CommandError('%s failed (rc=%d): %s' % (what or ' '.join(argv), rc, reason),
                               cmd=argv, rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def run_json(self, argv, what=None):
        """Run ``argv`` and parse its stdout as JSON."""
        dummy, out, err = self.run(argv, what=what)
        try:
            return json.loads(out)
        except ValueError as exc:
            raise CommandError('%s printed output that is not JSON: %s' % (what or argv[0], exc),
                               cmd=argv, rc=0, stdout=out, stderr=err)


def fail_from_error(module, exc, **context):
    """Turn a FastbootError into fail_json with its details and the caller's context."""
    result = dict(context)
    result.update(dict((k, v) for k, v in exc.details.items() if v is not None))
    module.fail_json(msg=exc.msg, **result)


def finish(module, name, action, result, timed=False):
    """The top level of a module: call ``action()`` (which fills RESULT), then exit_json with RESULT. A
    FastbootError becomes fail_json with its details (fail_from_error), an IOError/OSError fail_json named after
    the module; RESULT is the context either way. With TIMED, RESULT gets ``duration`` (seconds, also on failure)."""
    started = time.time()

    def timing():
        return dict(duration=round(time.time() - started, 3)) if timed else {}

    try:
        action()
    except FastbootError as exc:
        fail_from_error(module, exc, **dict(result, **timing()))
    except (IOError, OSError) as exc:
        module.fail_json(msg='%s: %s' % (name, exc), **dict(result, **timing()))
    result.update(timing())
    module.exit_json(**result)
