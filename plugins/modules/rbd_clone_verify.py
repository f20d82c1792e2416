#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rbd_clone_verify
short_description: Check that Nova/Cinder RBD disks are copy-on-write clones of a Glance image
description:
  - For each disk, reports whether it is a copy-on-write clone of a Glance image, that is of the RBD
    snapshot C(<images_pool>/<image_id>@<snapshot>) that the Glance RBD store makes. Nova clones it to
    C(<vms_pool>/<instance_uuid>_disk), Cinder to C(<volumes_pool>/volume-<volume_id>).
  - A disk without a parent is reported as C(full_copy). RBD cannot tell a disk that was copied in full
    (for instance because the Glance image was not raw, or Nova/Cinder could not clone) from a clone that
    was flattened later; both hold all their data themselves.
  - Read-only. It never changes anything, so C(changed) is always false and check mode gives the same result.
  - Uses the python3-rbd/python3-rados bindings when importable, else the C(rbd) CLI (see O(backend)).
version_added: 0.1.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  disks:
    description:
      - RBD images to check, each as C(pool/image).
    type: list
    elements: str
    default: []
  instances:
    description:
      - Nova instance UUIDs; each stands for the disk C(<vms_pool>/<uuid>_disk).
      - UUIDs are lowered, as OpenStack writes them.
    type: list
    elements: str
    default: []
  volumes:
    description:
      - Cinder volume ids (UUIDs); each stands for the disk C(<volumes_pool>/volume-<id>).
      - Ids are lowered, as OpenStack writes them.
    type: list
    elements: str
    default: []
  image_id:
    description:
      - The Glance image id (UUID) the disks must be cloned from. The parent must then be exactly
        C(<images_pool>/<image_id>@<snapshot>); another parent gives the status C(wrong_parent).
      - When omitted, any parent in O(images_pool) at the snapshot O(snapshot) is accepted.
    type: str
  images_pool:
    description:
      - The pool of the Glance RBD store (C(rbd_store_pool) in C(glance-api.conf)).
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
      - The name of the snapshot Glance makes of each image and clones are made from.
    type: str
    default: snap
  on_full_copy:
    description:
      - What to do when a disk is not a clone of the expected parent (status C(full_copy), C(wrong_parent)
        or C(missing)).
      - V(fail) fails the task with a message listing those disks; V(warn) adds a warning and succeeds.
    type: str
    choices: [fail, warn]
    default: fail
  ceph_user:
    description:
      - The cephx id to connect as (without C(client.)); it needs read access to the pools.
  ceph_keyring:
    aliases: [keyring]
  backend:
    description:
      - How to talk to Ceph. V(python) uses the python3-rbd/python3-rados bindings, V(cli) runs the C(rbd)
        CLI with C(--format json), V(auto) uses the bindings when they can be imported, else the CLI.
    type: str
    choices: [auto, python, cli]
    default: auto
extends_documentation_fragment:
  - fastboot.cloud.read_only
  - fastboot.cloud.ceph
requirements:
  - python3-rbd and python3-rados (Debian/Ubuntu package names) for O(backend=python); the C(rbd) CLI
    (package C(ceph-common)) for O(backend=cli).
  - A Ceph configuration file and a keyring with read access to the pools.
notes:
  - At least one of O(disks), O(instances) and O(volumes) must be given.
seealso:
  - name: Ceph RBD and OpenStack
    description: How Glance, Cinder and Nova use RBD copy-on-write clones.
    link: https://docs.ceph.com/en/latest/rbd/rbd-openstack/
'''

EXAMPLES = r'''
- name: Check that the disks of two instances are clones of their Glance image
  fastboot.cloud.rbd_clone_verify:
    instances:
      - 6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10
      - 0d4e9c7a-8b3f-4e21-a5c6-2b7f9e1d3a44
    image_id: 3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38

- name: Check a Cinder boot volume and a disk by name; only warn about full copies
  fastboot.cloud.rbd_clone_verify:
    volumes:
      - 9b1c4e2a-7d3f-4a6b-8e5c-1f2a3b4c5d6e
    disks:
      - vms/6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk
    on_full_copy: warn
    ceph_user: cinder
    ceph_keyring: /etc/ceph/ceph.client.cinder.keyring
  register: clones

- name: Show the disks that hold a full copy of their image
  ansible.builtin.debug:
    var: clones.full_copies
'''

RETURN = r'''
disks:
  description: One entry per disk checked, in the order O(disks), O(instances), O(volumes) (duplicates removed).
  returned: always
  type: list
  elements: dict
  contains:
    spec:
      description: The disk as C(pool/image).
      type: str
      sample: vms/6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk
    pool:
      description: The pool of the disk.
      type: str
      sample: vms
    image:
      description: The RBD image name of the disk.
      type: str
      sample: 6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk
    exists:
      description: Whether the image (and its pool) exists.
      type: bool
      sample: true
    is_clone:
      description: Whether the image has a parent, whichever it is.
      type: bool
      sample: true
    parent:
      description: The parent snapshot of the image, null when it has none (or does not exist).
      type: dict
      sample:
        pool: images
        image: 3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38
        snapshot: snap
        spec: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38@snap
      contains:
        pool:
          description: Pool of the parent image.
          type: str
        image:
          description: Name of the parent image.
          type: str
        snapshot:
          description: Name of the parent snapshot.
          type: str
        spec:
          description: C(pool/image@snapshot).
          type: str
    overlap:
      description: Bytes of the image still shared with (read from) the parent; 0 without a parent, null when missing.
      type: int
      sample: 1073741824
    size:
      description: Size of the image in bytes; null when missing.
      type: int
      sample: 10737418240
    expected_parent:
      description: C(<images_pool>/<image_id>@<snapshot>) when O(image_id) is given, else null.
      type: str
      sample: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38@snap
    parent_matches:
      description:
        - Whether the parent is the expected one (O(image_id) given) or is in O(images_pool) at O(snapshot)
          (O(image_id) omitted). Null when the disk has no parent or is missing.
      type: bool
      sample: true
    status:
      description:
        - V(clone) is a clone of the expected parent; V(full_copy) has no parent (a full copy, or a clone that
          was flattened, as RBD cannot tell them apart); V(wrong_parent) is a clone of another image or snapshot;
          V(missing) the image or its pool does not exist.
      type: str
      choices: [clone, full_copy, wrong_parent, missing]
      sample: clone
clones:
  description: How many disks have the status V(clone).
  returned: always
  type: int
  sample: 2
full_copies:
  description: The specs of the disks with the status V(full_copy).
  returned: always
  type: list
  elements: str
  sample: [volumes/volume-9b1c4e2a-7d3f-4a6b-8e5c-1f2a3b4c5d6e]
backend:
  description: The backend used, V(python) or V(cli).
  returned: always
  type: str
  sample: python
all_clones:
  description: Whether every disk has the status V(clone).
  returned: always
  type: bool
  sample: true
'''


from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.fastboot.cloud.plugins.module_utils.common import FastbootError, fail_from_error
from ansible_collections.fastboot.cloud.plugins.module_utils.rbd import (
    HAS_RBD, RBD_IMPORT_ERROR, check_name, check_uuid, connection_args, disk_state, image_spec, open_rbd, parse_image_spec)

STATUS_TEXT = {
    'full_copy': 'no parent: a full copy or a flattened clone (rbd cannot tell them apart)',
    'missing': 'does not exist',
}


def disk_targets(params):
    """The disks to check as an ordered, de-duplicated list of (pool, image)."""
    for option in ('images_pool', 'vms_pool', 'volumes_pool'):
        check_name(params[option], option)
    check_name(params['snapshot'], 'snapshot')
    targets = [parse_image_spec(spec) for spec in params['disks'] or []]
    targets += [(params['vms_pool'], check_uuid(u, 'instances') + '_disk') for u in params['instances'] or []]
    targets += [(params['volumes_pool'], 'volume-' + check_uuid(v, 'volumes')) for v in params['volumes'] or []]
    seen, result = set(), []
    for target in targets:
        if target not in seen:
            seen.add(target)
            result.append(target)
    return result


def check_disk(client, pool, image, images_pool, snapshot, image_id=None):
    """The report for one disk (see RETURN)."""
    expected = image_spec(images_pool, image_id, snapshot) if image_id else None
    entry = disk_state(client, pool, image, expected, images_pool=images_pool, snapshot=snapshot)
    if not entry['exists'] and not client.pool_exists(pool):
        entry['reason'] = 'pool %s does not exist' % pool
    return entry


def describe(entry, images_pool, snapshot):
    """One line saying why a disk is not a good clone."""
    status = entry['status']
    if status == 'wrong_parent':
        want = entry['expected_parent'] or '%s/<image>@%s' % (images_pool, snapshot)
        text = 'clone of %s, expected %s' % (entry['parent']['spec'], want)
    else:
        text = entry.pop('reason', None) or STATUS_TEXT[status]
    return '%s (%s: %s)' % (entry['spec'], status, text)


def verify(client, params):
    """Check every disk; return (result dict, list of problem lines)."""
    image_id = check_uuid(params['image_id'], 'image_id') if params.get('image_id') else None
    targets = disk_targets(params)
    entries, problems = [], []
    for pool, image in targets:
        entry = check_disk(client, pool, image, params['images_pool'], params['snapshot'], image_id)
        if entry['status'] != 'clone':
            problems.append(describe(entry, params['images_pool'], params['snapshot']))
        entry.pop('reason', None)
        entries.append(entry)
    result = {
        'changed': False,
        'disks': entries,
        'clones': sum(1 for e in entries if e['status'] == 'clone'),
        'full_copies': [e['spec'] for e in entries if e['status'] == 'full_copy'],
        'backend': client.name,
        'all_clones': all(e['status'] == 'clone' for e in entries),
    }
    return result, problems


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
            on_full_copy=dict(type='str', choices=['fail', 'warn'], default='fail'),
            ceph_conf=dict(type='path', default='/etc/ceph/ceph.conf'),
            ceph_user=dict(type='str', default='admin'),
            ceph_keyring=dict(type='path', aliases=['keyring'], no_log=False),
            backend=dict(type='str', choices=['auto', 'python', 'cli'], default='auto'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not (params['disks'] or params['instances'] or params['volumes']):
        module.fail_json(msg='nothing to check: give at least one of disks, instances, volumes')
    if params['backend'] == 'python' and not HAS_RBD:
        module.fail_json(msg=missing_required_lib('rados and rbd (python3-rados, python3-rbd)'),
                         exception=str(RBD_IMPORT_ERROR))
    try:
        # validate everything before connecting, so bad input fails fast with its own message
        disk_targets(params)
        if params['image_id']:
            check_uuid(params['image_id'], 'image_id')
        with open_rbd(module, *connection_args(module)) as client:
            result, problems = verify(client, params)
    except FastbootError as exc:
        fail_from_error(module, exc, changed=False)
        return
    if problems:
        msg = '%d of %d disk(s) not a copy-on-write clone of the expected Glance image: %s' % (
            len(problems), len(result['disks']), '; '.join(problems))
        if params['on_full_copy'] == 'fail':
            module.fail_json(msg=msg, **result)
        module.warn(msg)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
