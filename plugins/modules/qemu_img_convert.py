#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: qemu_img_convert
short_description: Convert a disk image (qcow2 or any qemu-img format) to raw, into a file or straight into RBD
version_added: 0.1.0
description:
  - Converts O(src) with C(qemu-img convert) into O(dest), a file or an RBD image (C(rbd:POOL/IMAGE)),
    in the format O(dest_format) (raw by default, which is what Ceph-backed Glance and Nova clone from).
  - Idempotent. When O(dest) already exists in O(dest_format) with the same virtual size and
    C(qemu-img compare) finds the same content, nothing is done and C(changed) is false.
  - The image is written under a temporary name next to the target (C(.NAME.fastboot-tmp-RANDOM) in the
    same directory for a file, C(IMAGE.fastboot-tmp-RANDOM) in the same pool for RBD) and renamed into
    place only when the conversion succeeded. On failure the temporary is removed and an existing target
    is left untouched.
  - The source is inspected first (C(qemu-img info), and C(qemu-img check) for qcow2). A source that is
    missing, corrupt, encrypted or an overlay with a backing file (unless O(allow_backing_file=true)) is
    refused with a message that says why; nothing is written then.
  - For an RBD target, qemu-img writes straight into the cluster through its C(rbd:) protocol (package
    C(qemu-block-extra) on Debian/Ubuntu); only non-zero data is written, so the image stays thin.
author:
  - fastboot.cloud developers (@fastboot)
attributes:
  check_mode:
    support: full
    description: Reads the source and the existing target (info, check, compare) and reports whether it would convert; never writes.
  diff_mode:
    support: full
    description: Reports the target's existence, format and virtual size before and after.
  platform:
    support: full
    platforms: posix
    description: Needs C(qemu-img) on the managed host, and the C(rbd) CLI for an RBD target.
options:
  src:
    description:
      - The image to convert, a local file.
    type: path
    required: true
  src_format:
    description:
      - The format of O(src) (C(qcow2), C(raw), C(vmdk), ...).
      - When not set, it is detected with C(qemu-img info).
    type: str
  dest:
    description:
      - The target, a file path or C(rbd:POOL/IMAGE) for an image in a Ceph pool.
      - A file target's directory must exist; an RBD target's pool must exist.
    type: str
    required: true
  dest_format:
    description:
      - The format to write. Only C(raw) is supported for an RBD target.
    type: str
    default: raw
  force:
    description:
      - Replace an existing target whose format, virtual size or content differs from O(src).
      - When false, such a target is left alone and the module fails.
      - An RBD target with snapshots is never replaced.
    type: bool
    default: false
  ceph_conf:
    description:
      - The Ceph configuration file for an RBD target (it must also lead to the client's keyring).
    type: path
    default: /etc/ceph/ceph.conf
  ceph_user:
    description:
      - The cephx id (without C(client.)) used for an RBD target.
    type: str
    default: admin
  allow_backing_file:
    description:
      - Accept a source that has a backing file (a qcow2 overlay) and convert the whole chain into one
        flattened image.
      - When false, such a source is refused.
    type: bool
    default: false
requirements:
  - qemu-img (package qemu-utils)
  - for an RBD target, qemu-img's rbd block driver (package qemu-block-extra) and the rbd CLI (package ceph-common)
notes:
  - The temporary is removed on any failure the module sees; if the module itself is killed, a
    C(*fastboot-tmp-*) file or image may remain and can be removed by hand.
  - When replacing an RBD image (O(force=true)) the old image is removed just before the new one is renamed
    into place; a removal that fails (for example because a VM still uses the image) leaves the old image as it was.
'''

EXAMPLES = r'''
- name: Convert a cloud image to raw next to it
  fastboot.cloud.qemu_img_convert:
    src: /var/lib/images/debian-12-genericcloud-amd64.qcow2
    dest: /var/lib/images/debian-12-genericcloud-amd64.raw

- name: Convert a qcow2 straight into an RBD image in the images pool
  fastboot.cloud.qemu_img_convert:
    src: /var/lib/images/debian-12-genericcloud-amd64.qcow2
    dest: rbd:images/debian-12
    ceph_conf: /etc/ceph/ceph.conf
    ceph_user: glance

- name: Flatten an overlay and its backing chain into a new qcow2, replacing an older copy
  fastboot.cloud.qemu_img_convert:
    src: /var/lib/images/overlay.qcow2
    src_format: qcow2
    dest: /var/lib/images/flat.qcow2
    dest_format: qcow2
    allow_backing_file: true
    force: true
'''

RETURN = r'''
src:
  description: The absolute path of the source image.
  returned: always
  type: str
  sample: /var/lib/images/debian-12.qcow2
dest:
  description: The target, an absolute file path or C(rbd:POOL/IMAGE).
  returned: always
  type: str
  sample: rbd:images/debian-12
src_format:
  description: The format of the source (given or detected).
  returned: success
  type: str
  sample: qcow2
dest_format:
  description: The format of the target.
  returned: success
  type: str
  sample: raw
virtual_size:
  description: The virtual size of the source (and of the target), in bytes.
  returned: success
  type: int
  sample: 2147483648
actual_size:
  description:
    - Bytes allocated in the target after the run (file blocks, or C(used_size) from C(rbd du) for RBD).
    - V(null) in check mode when the target would be written.
  returned: success
  type: int
  sample: 1090519040
bytes_written:
  description:
    - Bytes allocated in the target by this run's conversion; V(0) when nothing was converted (including check mode).
  returned: success
  type: int
  sample: 1090519040
duration:
  description: Wall-clock seconds the module spent (inspection, conversion and rename).
  returned: always
  type: float
  sample: 3.217
backing_file:
  description: The backing file of the source, V(null) when it has none.
  returned: success
  type: str
  sample: null
msg:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  sample: converted /var/lib/images/debian-12.qcow2 (qcow2) into rbd:images/debian-12 (raw)
diff:
  description: The target before and after (existence, format, virtual size), with C(--diff).
  returned: when diff mode is on
  type: dict
  sample:
    before:
      dest: rbd:images/debian-12
      exists: false
    after:
      dest: rbd:images/debian-12
      exists: true
      format: raw
      virtual_size: 2147483648
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    CommandError, InputError, Runner, finish)
from ansible_collections.fastboot.cloud.plugins.module_utils.qemu_img import (
    compare, convert, inspect_source, make_target, validate_format)


ARGUMENT_SPEC = dict(
    src=dict(type='path', required=True),
    src_format=dict(type='str'),
    dest=dict(type='str', required=True),
    dest_format=dict(type='str', default='raw'),
    force=dict(type='bool', default=False),
    ceph_conf=dict(type='path', default='/etc/ceph/ceph.conf'),
    ceph_user=dict(type='str', default='admin'),
    allow_backing_file=dict(type='bool', default=False),
)


def describe(target, state):
    """The target as shown in --diff."""
    desc = {'dest': target.name, 'exists': bool(state)}
    if state:
        desc['format'] = state.get('format')
        desc['virtual_size'] = state.get('virtual_size')
    return desc


def target_difference(runner, source, target, src, dest_format):
    """Inspect an existing target; return (state, reason) where reason is None when it is identical."""
    try:
        current = target.inspect()
    except CommandError as exc:
        lines = (exc.stderr or '').strip().splitlines()
        return {'format': None, 'virtual_size': None}, 'it cannot be opened by qemu-img (%s)' % (lines[-1] if lines else exc.msg)
    state = {'format': current['format'], 'virtual_size': current['virtual_size']}
    if current['format'] != dest_format:
        return state, 'it is in format %s, not %s' % (current['format'], dest_format)
    if current['virtual_size'] != source['virtual_size']:
        return state, 'its virtual size is %d bytes, not %d' % (current['virtual_size'], source['virtual_size'])
    if current['backing_file']:
        return state, 'it has a backing file (%s)' % current['backing_file']
    if not compare(runner, src, source['format'], target.spec(), dest_format):
        return state, 'its content differs (qemu-img compare)'
    return state, None


def run(module, runner, result):
    params = module.params
    src = os.path.abspath(params['src'])
    result['src'] = src
    src_format = validate_format(params['src_format'], 'src_format')
    dest_format = validate_format(params['dest_format'], 'dest_format')
    target = make_target(runner, params['dest'], params['ceph_conf'], params['ceph_user'])
    result['dest'] = target.name
    if target.kind == 'file' and os.path.exists(src) and os.path.realpath(src) == os.path.realpath(target.path):
        raise InputError('src and dest are the same file (%s)' % src)

    source = inspect_source(runner, src, fmt=src_format, allow_backing_file=params['allow_backing_file'])
    result.update(src_format=source['format'], dest_format=dest_format, virtual_size=source['virtual_size'],
                  backing_file=source['backing_file'])
    target.validate(dest_format)

    state, reason, action = None, None, 'create'
    if target.exists():
        state, reason = target_difference(runner, source, target, src, dest_format)
        if reason is None:
            action = 'none'
        elif not params['force']:
            raise InputError('dest %s exists and differs from src %s: %s. Set force=true to replace it'
                             % (target.name, src, reason), dest=target.name)
        else:
            target.check_replaceable()
            action = 'replace'

    after = state if action == 'none' else {'format': dest_format, 'virtual_size': source['virtual_size']}
    if module._diff:
        result['diff'] = {'before': describe(target, state), 'after': describe(target, after)}
    result['bytes_written'] = 0
    what = '%s (%s) into %s (%s)' % (src, source['format'], target.name, dest_format)
    if action == 'none':
        result['changed'] = False
        result['actual_size'] = target.allocated()
        result['msg'] = '%s is already identical to %s' % (target.name, src)
        return
    if module.check_mode:
        result['changed'] = True
        result['actual_size'] = None
        result['msg'] = 'would convert %s%s' % (what, ' replacing the differing target (%s)' % reason if reason else '')
        return

    target.new_tmp()
    try:
        convert(runner, src, source['format'], target.spec(target.tmp), dest_format)
        target.commit(replace=action == 'replace')
    except Exception:
        result['changed'] = target.removed_old
        try:
            target.remove_tmp()
        except Exception:  # keep the conversion's error, the more useful one
            pass
        raise
    result['changed'] = True
    result['actual_size'] = result['bytes_written'] = target.allocated()
    result['msg'] = '%s %s' % ('converted' if action == 'create' else 'converted and replaced the differing target:', what)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = dict(changed=False, src=module.params['src'], dest=module.params['dest'])
    runner = Runner(module)
    finish(module, 'qemu_img_convert', lambda: run(module, runner, result), result, timed=True)


if __name__ == '__main__':
    main()
