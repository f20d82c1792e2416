#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rbd_flatten
short_description: Flatten RBD copy-on-write clones (Nova disks, Cinder volumes) online
description:
  - Copies into each selected clone the data it still reads from its parent snapshot (C(rbd flatten)), so it no
    longer depends on its Glance image. The VMs keep running; flattening is an online operation.
  - Disks are selected by Nova instance UUID (C(<vms_pool>/<uuid>_disk)), Cinder volume id
    (C(<volumes_pool>/volume-<id>)), C(pool/image) spec, or as all clones of a Glance image (O(image_id)); every
    descendant of C(<images_pool>/<image_id>@<snapshot>), clones of clones included.
  - Idempotent. A disk without a parent is already flat and is left alone; C(changed) is true only when a disk
    was flattened.
  - Space. Flattening a clone writes into its pool the part of the parent it still shares (the parent overlap)
    minus what the clone already holds itself (C(rbd du) USED, counted in whole objects). That difference is an
    upper bound (parent areas without data are not copied) and is summed per pool of the clones. The module
    refuses, before flattening anything, when it exceeds the pool's available space; C(ceph df) MAX AVAIL of the
    pool, lowered to C(quota_max_bytes - stored) when the pool has a byte quota (Ceph blocks writes past it).
  - Order. When a clone and a clone of it (a clone chain) are both selected, the parent is flattened first, in an
    earlier wave; disks of one wave run in parallel, up to O(concurrency) at a time, sorted by spec.
  - Check mode lists the disks that would be flattened and the bytes each would take, and checks the space.
  - Progress of long runs is written to the module log (syslog/journal) per disk, and each disk reports its time.
version_added: 0.2.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  disks:
    description:
      - RBD images to flatten, each as C(pool/image).
    type: list
    elements: str
    default: []
  instances:
    description:
      - Nova instance UUIDs; each stands for the disk C(<vms_pool>/<uuid>_disk).
    type: list
    elements: str
    default: []
  volumes:
    description:
      - Cinder volume ids (UUIDs); each stands for the disk C(<volumes_pool>/volume-<id>).
    type: list
    elements: str
    default: []
  image_id:
    description:
      - A Glance image id (UUID). Selects every clone of C(<images_pool>/<image_id>@<snapshot>) in any pool,
        clones of clones included (C(rbd children --all --descendants)). Clones in the RBD trash are skipped with a
        warning (they cannot be opened by name).
    type: str
  images_pool:
    description:
      - The pool of the Glance RBD store (C(rbd_store_pool) in C(glance-api.conf)), used with O(image_id).
    type: str
    default: images
  vms_pool:
    description:
      - The pool of the Nova disks (C(images_rbd_pool) in C(nova.conf)), used with O(instances).
    type: str
    default: vms
  volumes_pool:
    description:
      - The pool of the Cinder volumes (C(rbd_pool) in C(cinder.conf)), used with O(volumes).
    type: str
    default: volumes
  snapshot:
    description:
      - The name of the snapshot Glance makes of each image, used with O(image_id).
    type: str
    default: snap
  concurrency:
    description:
      - How many flattens run at the same time (threads, each running one flatten).
    type: int
    default: 2
  check_space:
    description:
      - Refuse when a pool lacks the space its flattens need (see the description). V(false) skips the check.
    type: bool
    default: true
  ceph_user:
    description:
      - The cephx id to connect as (without C(client.)); it needs write access to the pools of the disks, read
        access to their parents, and C(mon) read access for C(ceph df).
  ceph_keyring:
    aliases: [keyring]
  backend:
    description:
      - How to talk to Ceph. V(python) uses the python3-rbd/python3-rados bindings, V(cli) runs the C(rbd) and
        C(ceph) CLIs, V(auto) uses the bindings when they can be imported, else the CLIs.
    type: str
    choices: [auto, python, cli]
    default: auto
extends_documentation_fragment:
  - fastboot.cloud.ceph
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff_mode mode.
    support: full
    details: The diff maps each disk to its parent snapshot (null when flat), before and after.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - python3-rbd and python3-rados for O(backend=python); the C(rbd) and C(ceph) CLIs (package C(ceph-common)) for
    O(backend=cli).
notes:
  - At least one of O(disks), O(instances), O(volumes) and O(image_id) must be given. A named disk that does not
    exist fails the task before anything is flattened.
  - A flattened disk takes its full space in its pool; the Glance image can then be deleted (see
    M(fastboot.cloud.rbd_image_retire)).
seealso:
  - module: fastboot.cloud.rbd_clone_verify
  - module: fastboot.cloud.rbd_image_retire
'''

EXAMPLES = r'''
- name: Decouple two instances from their Glance image, while they run
  fastboot.cloud.rbd_flatten:
    instances:
      - 6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10
      - 0d4e9c7a-8b3f-4e21-a5c6-2b7f9e1d3a44

- name: See what flattening every clone of an image would take
  fastboot.cloud.rbd_flatten:
    image_id: 3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38
    concurrency: 4
  check_mode: true
  register: plan

- name: Show the bytes needed per pool
  ansible.builtin.debug:
    var: plan.needed_bytes
'''

RETURN = r'''
disks:
  description: One entry per selected disk, in flatten order (wave by wave, by spec within a wave).
  returned: always
  type: list
  elements: dict
  contains:
    spec:
      description: The disk as C(pool/image).
      type: str
      sample: vms/6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk
    action:
      description: V(flatten) when the disk is (or in check mode would be) flattened, V(none) when it is already flat.
      type: str
      choices: [flatten, none]
    wave:
      description: The wave of the disk (0 first); a clone of a selected clone comes one wave after it.
      type: int
      sample: 0
    used_bytes:
      description: Bytes the clone holds itself before flattening (C(rbd du) USED); null when already flat.
      type: int
      sample: 4194304
    needed_bytes:
      description: Bytes the flatten may add to the pool, C(max(overlap - used_bytes, 0)); 0 when already flat.
      type: int
      sample: 1069547520
    seconds:
      description: How long the flatten took; null when it did not run.
      type: float
      sample: 12.5
    error:
      description: Why the flatten failed; null when it did not fail.
      type: str
    before:
      description: The disk before, in the shape of M(fastboot.cloud.rbd_clone_verify)'s C(disks) entries.
      type: dict
      sample:
        spec: vms/6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk
        pool: vms
        image: 6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk
        exists: true
        is_clone: true
        parent: {pool: images, image: 3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38, snapshot: snap,
                 spec: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38@snap}
        overlap: 1073741824
        size: 10737418240
        expected_parent: null
        parent_matches: true
        status: clone
    after:
      description: The disk after (same shape as RV(disks[].before)); in check mode, the predicted state.
      type: dict
flattened:
  description: The specs flattened (in check mode, that would be flattened).
  returned: always
  type: list
  elements: str
  sample: [vms/6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk]
needed_bytes:
  description: Bytes the flattens may add, per pool.
  returned: always
  type: dict
  sample: {vms: 1069547520}
space:
  description: The space of each pool with disks to flatten, from C(ceph df) and the pool quota (empty when
    O(check_space=false)).
  returned: always
  type: dict
  sample: {vms: {max_avail: 107374182400, stored: 5368709120, quota_max_bytes: 0, available: 107374182400}}
seconds:
  description: Wall time of all the flattens.
  returned: always
  type: float
  sample: 25.1
backend:
  description: The backend used, V(python) or V(cli).
  returned: always
  type: str
  sample: python
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.fastboot.cloud.plugins.module_utils.common import FastbootError, InputError, fail_from_error
from ansible_collections.fastboot.cloud.plugins.module_utils.rbd import (
    HAS_RBD, RBD_IMPORT_ERROR, apply_flattens, check_name, check_uuid, connection_args, disk_state, flatten_plan,
    open_rbd, parents_diff, parse_image_spec, space_shortfalls)


def selected_targets(client, params, warn):
    """The disks to flatten as an ordered, de-duplicated list of (pool, image)."""
    for option in ('images_pool', 'vms_pool', 'volumes_pool'):
        check_name(params[option], option)
    check_name(params['snapshot'], 'snapshot')
    targets = [parse_image_spec(spec) for spec in params['disks'] or []]
    targets += [(params['vms_pool'], check_uuid(u, 'instances') + '_disk') for u in params['instances'] or []]
    targets += [(params['volumes_pool'], 'volume-' + check_uuid(v, 'volumes')) for v in params['volumes'] or []]
    if params.get('image_id') and client is not None:
        image_id = check_uuid(params['image_id'], 'image_id')
        for child in client.children(params['images_pool'], image_id, params['snapshot'], deep=True):
            if child['trash']:
                warn('skipped %s: the clone is in the RBD trash (restore it with rbd trash restore to flatten it)'
                     % child['spec'])
            elif child['pool_namespace']:
                warn('skipped %s: clones in RBD namespaces are not handled' % child['spec'])
            else:
                targets.append((child['pool'], child['image']))
    seen, result = set(), []
    for target in targets:
        if target not in seen:
            seen.add(target)
            result.append(target)
    return result


def flatten(client, params, check_mode, warn, log):
    """Select, plan, check space and (unless check_mode) flatten. Return (result, failure message or None)."""
    states = [disk_state(client, pool, image) for pool, image in selected_targets(client, params, warn)]
    missing = [s['spec'] for s in states if not s['exists']]
    if missing:
        raise InputError('%d disk(s) do not exist, nothing flattened: %s' % (len(missing), ', '.join(missing)),
                         missing=missing)
    entries, todo, needs = flatten_plan(client, states)
    result = {'changed': bool(todo), 'disks': entries, 'flattened': [e['spec'] for e in entries if e['action'] == 'flatten'],
              'needed_bytes': needs, 'space': {}, 'seconds': 0.0, 'backend': client.name}
    if params['check_space'] and needs:
        result['space'] = dict((pool, client.pool_space(pool)) for pool in sorted(needs))
        short = space_shortfalls(needs, result['space'])
        if short:
            result['changed'] = False
            return result, 'not enough free space, nothing flattened: ' + '; '.join(short)
    if check_mode or not todo:
        return result, None
    start = time.time()
    result['flattened'], failed = apply_flattens(client, entries, todo, params['concurrency'], log)
    result['seconds'] = round(time.time() - start, 3)
    result['changed'] = bool(result['flattened'])
    if failed:
        return result, '%d of %d flatten(s) failed: %s' % (len(failed), sum(len(w) for w in todo), '; '.join(failed))
    return result, None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            disks=dict(type='list', elements='str', default=[]),
            instances=dict(type='list', elements='str', default=[]),
            volumes=dict(type='list', elements='str', default=[]),
            image_id=dict(type='str'),
            images_pool=dict(type='str', default='images'),
            vms_pool=dict(type='str', default='vms'),
            volumes_pool=dict(type='str', default='volumes'),
            snapshot=dict(type='str', default='snap'),
            concurrency=dict(type='int', default=2),
            check_space=dict(type='bool', default=True),
            ceph_conf=dict(type='path', default='/etc/ceph/ceph.conf'),
            ceph_user=dict(type='str', default='admin'),
            ceph_keyring=dict(type='path', aliases=['keyring'], no_log=False),
            backend=dict(type='str', choices=['auto', 'python', 'cli'], default='auto'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not (params['disks'] or params['instances'] or params['volumes'] or params['image_id']):
        module.fail_json(msg='nothing to flatten: give at least one of disks, instances, volumes, image_id')
    if params['concurrency'] < 1:
        module.fail_json(msg='concurrency must be at least 1, not %d' % params['concurrency'])
    if params['backend'] == 'python' and not HAS_RBD:
        module.fail_json(msg=missing_required_lib('rados and rbd (python3-rados, python3-rbd)'),
                         exception=str(RBD_IMPORT_ERROR))
    result = {'changed': False}
    try:
        selected_targets(None, params, module.warn)  # validate names before connecting
        if params['image_id']:
            check_uuid(params['image_id'], 'image_id')
        with open_rbd(module, *connection_args(module)) as client:
            result, problem = flatten(client, params, module.check_mode, module.warn, module.log)
    except FastbootError as exc:
        fail_from_error(module, exc, **result)
        return
    result['diff'] = parents_diff(result['disks'])
    if problem:
        module.fail_json(msg=problem, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
