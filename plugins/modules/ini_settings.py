#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ini_settings
short_description: Set many options of an INI file (oslo.config style) in one atomic, validated write
description:
  - Applies a dict of section -> (key -> value) to an INI file such as C(nova.conf) or C(glance-api.conf), line by
    line like M(community.general.ini_file); comments, blank lines, ordering, unrelated keys and the formatting of
    unchanged lines are kept.
  - All settings are applied to the file's text in memory, then written once to a temporary file in the same
    directory, optionally checked by O(validate), and renamed over the file (the owner, group and mode of an
    existing file are kept).
  - A key that is not in its section yet is written right after a commented-out default of the same key
    (C(#key = ...), as in the sample files distributions ship), else after the section's last line; a missing
    section is appended at the end of the file. A key set twice in a section is rewritten once.
  - O(later_files) names files the service reads after this one (Debian's C(/etc/nova/nova-compute.conf) is read
    after C(nova.conf)); a key of O(settings) set to another value there would silently win. The module reports
    them in RV(overridden) and warns or fails as O(later_files_action) says.
version_added: 0.1.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  path:
    description:
      - The INI file.
    type: path
    required: true
    aliases: [dest]
  settings:
    description:
      - Dict of section name -> dict of key -> value.
      - A value of V(null) removes the key (every line of it in the section).
      - Booleans are written C(true)/C(false); numbers as text.
      - A list writes the key once per element (oslo.config C(MultiStrOpt)). A C(ListOpt) is one string, for
        example V(rbd:rbd,file:file).
    type: dict
    required: true
  create:
    description:
      - Create the file when it does not exist. When V(false) a missing file is an error.
    type: bool
    default: true
  only_existing:
    description:
      - Change or remove only keys that the file already sets; add nothing. Used to keep a file that is read
        later (for example C(nova-compute.conf)) in line with the main one.
    type: bool
    default: false
  validate:
    description:
      - Command run on the temporary file before it replaces O(path); it must contain C(%s), replaced by the
        temporary file's path (as in M(ansible.builtin.copy)). A non-zero exit fails the task and leaves O(path)
        untouched.
      - Runs only when the content changes, in check mode too (on a temporary copy outside the target directory).
    type: str
  validate_scope:
    description:
      - What O(validate) checks. V(file) is the whole new file. V(settings) is a file holding only the keys of
        O(settings) that are set (not the removed ones), so keys the operator set elsewhere in the file (for
        example out-of-tree driver options or dynamically named sections) cannot fail the run.
    type: str
    choices: [file, settings]
    default: file
  validate_sections:
    description:
      - Sections to rename in the copy given to O(validate), for dynamically named sections whose options are
        defined under another group, for example C(ceph) to C(backend_defaults) for a Cinder backend or
        C(rbd) to C(glance_store) for a Glance store. The installed file keeps the real names.
    type: dict
    default: {}
  later_files:
    description:
      - Files read by the service after O(path). Missing files are ignored.
    type: list
    elements: path
    default: []
  later_files_action:
    description:
      - What to do when a key of O(settings) is set differently in one of O(later_files).
      - V(fail) fails before anything is written; V(warn) writes and warns; V(ignore) only reports.
    type: str
    choices: [fail, warn, ignore]
    default: warn
  backup:
    description:
      - Keep a timestamped copy of the previous file next to it when the file changes.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
seealso:
  - module: community.general.ini_file
'''

EXAMPLES = r'''
- name: Nova ephemeral disks in RBD, validated by nova's own option definitions
  fastboot.cloud.ini_settings:
    path: /etc/nova/nova.conf
    settings:
      libvirt:
        images_type: rbd
        images_rbd_pool: vms
        rbd_user: nova
      workarounds:
        never_download_image_if_on_rbd: true
      DEFAULT:
        config_drive_format: null   # remove
    later_files: [/etc/nova/nova-compute.conf]
    later_files_action: fail
    validate: oslo-config-validator --config-file /usr/share/fastboot/nova-config-generator.conf --input-file %s

- name: Keep nova-compute.conf in line (change only what it already sets)
  fastboot.cloud.ini_settings:
    path: /etc/nova/nova-compute.conf
    settings:
      libvirt:
        virt_type: qemu
    only_existing: true
'''

RETURN = r'''
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/nova/nova.conf
changes:
  description: One line per key added, changed or removed (or that would be in check mode).
  returned: success
  type: list
  elements: str
  sample: ["[libvirt] images_type: default -> rbd", "[DEFAULT] config_drive_format: iso9660 -> (removed)"]
changed_keys:
  description: The same changes as data.
  returned: success
  type: list
  elements: dict
  sample: [{section: libvirt, key: images_type, action: changed, before: [default], after: [rbd]}]
overridden:
  description: Keys of O(settings) that a file of O(later_files) sets to another value (it wins).
  returned: success
  type: list
  elements: dict
  sample: [{path: /etc/nova/nova-compute.conf, section: libvirt, key: images_type, wanted: [rbd], found: [default]}]
unified_diff:
  description: Unified diff of the file's text, empty when unchanged.
  returned: success
  type: str
  sample: "--- /etc/nova/nova.conf (before)\n+++ /etc/nova/nova.conf (after)\n@@ ..."
validated:
  description: Whether O(validate) ran on the new content and accepted it.
  returned: success
  type: bool
  sample: true
validate_output:
  description: Output of the O(validate) command (stdout then stderr) when it ran.
  returned: when O(validate) ran
  type: str
  sample: ""
backup_file:
  description: Name of the backup file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/nova/nova.conf.12345.2026-01-01@00:00:00~
'''

import difflib
import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

from ansible_collections.fastboot.cloud.plugins.module_utils.common import FastbootError, InputError, fail_from_error
from ansible_collections.fastboot.cloud.plugins.module_utils import ini


def read_text(path):
    with open(path, 'rb') as handle:
        return to_text(handle.read(), errors='surrogate_or_strict')


def unified(path, before, after):
    if before == after:
        return ''
    return ''.join(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        fromfile='%s (before)' % path, tofile='%s (after)' % path))


def validation_text(after, settings, scope, renames):
    """The text given to the validate command: the new file or only the settings, sections renamed."""
    if scope == 'settings':
        kept = dict((section, dict((k, v) for k, v in keys.items() if v is not None))
                    for section, keys in settings.items())
        text = ini.apply_settings('', dict((sec, keys) for sec, keys in kept.items() if keys))[0]
    else:
        text = after
    if not renames:
        return text
    lines = ini.parse(text)
    for line in lines:
        if line.kind == 'section' and line.name in renames:
            line.text = '[%s]' % renames[line.name]
    return ini.render(lines)


def run_validate(module, command, text, directory):
    """Write ``text`` to a temp file in ``directory``, run the command on it; return (ok, output, tmp path)."""
    if '%s' not in command:
        raise InputError('validate must contain %%s (the temporary file), got %r' % command)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.ini_settings.', suffix='.conf')
    with os.fdopen(fd, 'wb') as handle:
        handle.write(to_bytes(text))
    argv = [part % tmp if '%s' in part else part for part in shlex.split(command)]
    rc, out, err = module.run_command(argv, environ_update={'LC_ALL': 'C', 'LANG': 'C'})
    output = '\n'.join(s.strip() for s in (out, err) if s and s.strip())
    return rc == 0, output, tmp


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True, aliases=['dest']),
            settings=dict(type='dict', required=True),
            create=dict(type='bool', default=True),
            only_existing=dict(type='bool', default=False),
            validate=dict(type='str'),
            validate_scope=dict(type='str', default='file', choices=['file', 'settings']),
            validate_sections=dict(type='dict', default={}),
            later_files=dict(type='list', elements='path', default=[]),
            later_files_action=dict(type='str', default='warn', choices=['fail', 'warn', 'ignore']),
            backup=dict(type='bool', default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    path = params['path']
    result = dict(changed=False, path=path, changes=[], changed_keys=[], overridden=[], unified_diff='',
                  validated=False)
    try:
        settings = ini.check_settings(params['settings'])
        if os.path.isdir(path):
            raise InputError('%s is a directory' % path)
        exists = os.path.exists(path)
        if not exists:
            if not params['create']:
                raise InputError('%s does not exist (create=false): is the service installed, is the path right?'
                                 % path)
            # in check mode an earlier task may only have predicted the directory: predict the file too
            if not os.path.isdir(os.path.dirname(path) or '.') and not module.check_mode:
                raise InputError('the directory of %s does not exist' % path)
        before = read_text(path) if exists else ''
        after, changes = ini.apply_settings(before, settings, only_existing=params['only_existing'])

        later = [(p, read_text(p)) for p in params['later_files'] if os.path.isfile(p)]
        overridden = ini.conflicts(settings, later)
        result['overridden'] = overridden
        if overridden:
            text = '; '.join('%s sets [%s] %s = %s, read after %s which gets %s' % (
                o['path'], o['section'], o['key'], ', '.join(o['found']), path,
                ', '.join(o['wanted']) if o['wanted'] else '(removed)') for o in overridden)
            if params['later_files_action'] == 'fail':
                module.fail_json(msg='settings would be overridden by files read later (nothing written): ' + text
                                 + '. Manage the key there too or remove it there.', **result)
            if params['later_files_action'] == 'warn':
                module.warn('settings overridden by files read later: ' + text)

        # only_existing on a missing file: nothing to keep in line, nothing to create
        changed = after != before or (not exists and not params['only_existing'])
        result.update(changes=[ini.describe(c) for c in changes], changed_keys=changes,
                      unified_diff=unified(path, before, after))

        tmp = None
        try:
            if changed and params['validate']:
                checked = validation_text(after, settings, params['validate_scope'],
                                          dict((str(k), str(v)) for k, v in params['validate_sections'].items()))
                # the checked text is the new file itself: validate the temp file that will be renamed over it
                same = checked == after and not module.check_mode
                directory = (os.path.dirname(path) or '.') if same else module.tmpdir
                ok, output, tmp = run_validate(module, params['validate'], checked, directory)
                if not same:
                    os.unlink(tmp)
                    tmp = None
                result['validate_output'] = output
                if not ok:
                    module.fail_json(msg='validation of the new content of %s failed, the file was not changed: %s'
                                     % (path, output or '(no output)'), **result)
                result['validated'] = True
            if changed and not module.check_mode:
                if params['backup'] and exists:
                    result['backup_file'] = module.backup_local(path)
                if tmp is None:
                    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.', prefix='.ini_settings.',
                                               suffix='.conf')
                    with os.fdopen(fd, 'wb') as handle:
                        handle.write(to_bytes(after))
                # keeps the owner, group, mode (and SELinux context) of an existing file; rename is atomic
                module.atomic_move(tmp, path)
                tmp = None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
    except FastbootError as exc:
        fail_from_error(module, exc, path=path)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot update %s: %s' % (path, to_native(exc)), **result)

    result['changed'] = changed
    if module._diff:
        result['diff'] = dict(before=before, after=after, before_header='%s (before)' % path,
                              after_header='%s (after)' % path)
    file_args = module.load_file_common_arguments(params)
    if not module.check_mode or os.path.exists(path):
        result['changed'] = module.set_fs_attributes_if_different(file_args, result['changed'],
                                                                  diff=result.get('diff'))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
