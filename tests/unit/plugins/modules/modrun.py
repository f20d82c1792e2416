# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process for unit tests: exit_json/fail_json raise Exit, the result comes back."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class Exit(Exception):
    def __init__(self, kind, result):
        super(Exit, self).__init__(kind)
        self.kind = kind
        self.result = result


def fake_bin_path(self, name, required=False, opt_dirs=None):
    return '/usr/bin/' + name


def run_main(monkeypatch, main, args, check=False, diff=False, run_command=None):
    """(kind, result) of MAIN with ARGS: kind 'exit' or 'fail'. With RUN_COMMAND (a function taking
    (module, argv, **kw)), AnsibleModule.run_command is replaced by it and get_bin_path finds every binary in
    /usr/bin."""
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True

    def exit_json(self, **kw):
        raise Exit('exit', kw)

    def fail_json(self, **kw):
        raise Exit('fail', kw)

    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    if run_command is not None:
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', fake_bin_path)
    with patch_module_args(args):
        with pytest.raises(Exit) as exc:
            main()
    return exc.value.kind, exc.value.result
