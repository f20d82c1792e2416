#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nova_image_cache_purge
short_description: Safely empty Nova's image cache (_base) on a compute host
version_added: 0.1.0
description:
  - Removes the entries of Nova's image cache (C(<instances_path>/_base)) that nothing uses. Needed when a
    compute moves to RBD-backed disks (C([libvirt] images_type=rbd)), otherwise Nova keeps uploading the cached
    files instead of cloning; also frees space on local-storage computes.
  - An entry is never removed when any disk under O(instances_path) uses it anywhere in its backing chain
    (C(qemu-img info -U --backing-chain), every regular file outside the cache is inspected), when it could be
    the missing backing file of a disk whose chain is broken, or when a process holds it open or mapped
    (C(/proc/*/fd) and C(/proc/*/maps), scanned again right before removing).
  - Only Nova cache names are removed (C(<sha1>), C(<sha1>_<GiB>), C(<sha1>.part), C(<sha1>.converted),
    C(ephemeral_*), C(swap_*) and this collection's own C(.<sha1>.fastboot-tmp-*) temporaries); anything else
    is kept.
  - O(min_age_seconds) keeps recently modified entries; O(only_deleted_images) keeps the images that are still
    in Glance (ids from O(glance_image_ids) or listed with openstacksdk from O(cloud)). Nova's cache name of an
    image is the hex sha1 of its id.
  - Check mode lists what would be removed and why. Every run returns what was removed, what was kept (with the
    reason) and the bytes freed.
author:
  - fastboot.cloud developers (@fastboot)
attributes:
  check_mode:
    support: full
    description: Inspects the disks, the cache and the processes and reports what would be removed; removes nothing.
  diff_mode:
    support: full
    description: Reports the cache entry names before and after.
  platform:
    support: full
    platforms: posix
    description: Needs C(qemu-img) and a Linux C(/proc) on the compute host; run as root to see every process.
options:
  instances_path:
    description:
      - Nova's C([DEFAULT] instances_path). It must exist.
    type: path
    default: /var/lib/nova/instances
  cache_subdirectory:
    description:
      - Nova's C([image_cache] subdirectory_name), the cache directory under O(instances_path).
    type: str
    default: _base
  min_age_seconds:
    description:
      - Keep entries modified less than this many seconds ago. V(0) removes unused entries of any age.
    type: int
    default: 0
  only_deleted_images:
    description:
      - Remove only cached images that are no longer in Glance (and their resized copies and temporaries);
        cached ephemeral and swap disks are then kept.
      - Needs O(glance_image_ids) or O(cloud).
    type: bool
    default: false
  glance_image_ids:
    description:
      - The ids of the images currently in Glance, for O(only_deleted_images).
    type: list
    elements: str
  cloud:
    description:
      - A C(clouds.yaml) entry to list the Glance images with openstacksdk when O(glance_image_ids) is not given.
        Use admin credentials so that every project's images are listed.
    type: str
  on_broken_disk:
    description:
      - What to do when a disk's backing file is missing or a disk cannot be read by qemu-img.
      - V(fail) fails before removing anything and names the disks.
      - V(warn) warns, keeps every entry that could be a missing backing file (same name or same image hash) and,
        when a disk cannot be read at all (its backing file is unknown), keeps every entry.
    type: str
    choices: [fail, warn]
    default: fail
  images_type:
    description:
      - Nova's C([libvirt] images_type) on this host (for example V(rbd), V(qcow2), V(raw), V(flat), V(default)).
      - When not set it is read from O(nova_conf) if that is given.
    type: str
  nova_conf:
    description:
      - A nova.conf to read C([libvirt] images_type) from when O(images_type) is not set.
    type: path
  only_if_rbd:
    description:
      - Purge only when the host's images_type (O(images_type) or O(nova_conf)) is V(rbd); otherwise do nothing
        and report it as skipped. Protects the cache of local-storage computes.
    type: bool
    default: false
requirements:
  - qemu-img (package qemu-utils)
  - openstacksdk on the managed host, only with O(cloud)
notes:
  - Nova may start using a cache entry between the scan and the removal. Open files are scanned again right
    before removing, but a VM whose disk is being created at that very moment can still miss its base file;
    disable new builds on the host (C(openstack compute service set --disable)) for a guarantee.
  - A cache entry hard-linked elsewhere (for example to the Glance file store by M(fastboot.cloud.nova_image_cache_prewarm))
    frees no space when removed; RV(bytes_freed) counts it as V(0).
seealso:
  - module: fastboot.cloud.nova_image_cache_prewarm
'''

EXAMPLES = r'''
- name: Empty the image cache of a compute that now uses RBD (see what would go first with --check)
  fastboot.cloud.nova_image_cache_purge:
    nova_conf: /etc/nova/nova.conf
    only_if_rbd: true

- name: Remove cached images deleted from Glance and unused for a day
  fastboot.cloud.nova_image_cache_purge:
    only_deleted_images: true
    cloud: admin
    min_age_seconds: 86400
    on_broken_disk: warn
'''

RETURN = r'''
cache_dir:
  description: The cache directory.
  returned: always
  type: str
  sample: /var/lib/nova/instances/_base
images_type:
  description: The host's images_type (given or read from O(nova_conf)); V(null) when unknown.
  returned: always
  type: str
  sample: rbd
removed:
  description:
    - The entries removed (in check mode, the entries that would be removed), each with the reason.
    - C(freed) is the bytes the removal frees (allocated blocks; V(0) for a file with other hard links).
  returned: always
  type: list
  elements: dict
  sample:
    - name: 0a1b2c3d4e5f60718293a4b5c6d7e8f901234567
      path: /var/lib/nova/instances/_base/0a1b2c3d4e5f60718293a4b5c6d7e8f901234567
      kind: image
      size: 2147483648
      allocated: 1090519040
      freed: 1090519040
      reason: cached image not used as a backing file by any disk and not held open
kept:
  description: The entries kept, each with the reason (and the C(disks) using it when it is a backing file).
  returned: always
  type: list
  elements: dict
  sample:
    - name: 6f1ed002ab5595859014ebf0951522d9ad6fc9de
      path: /var/lib/nova/instances/_base/6f1ed002ab5595859014ebf0951522d9ad6fc9de
      kind: image
      size: 2147483648
      allocated: 1090519040
      disks: [/var/lib/nova/instances/4b6d0c5e-7c8b-4b7e-9a55-0f4e2c1d9e10/disk]
      reason: backing file of /var/lib/nova/instances/4b6d0c5e-7c8b-4b7e-9a55-0f4e2c1d9e10/disk
bytes_freed:
  description: The bytes freed (in check mode, that would be freed).
  returned: always
  type: int
  sample: 1090519040
disks_inspected:
  description: How many files under O(instances_path) were inspected as disks.
  returned: always
  type: int
  sample: 12
broken_disks:
  description: Disks whose backing file is missing (C(backing_file)) or that qemu-img cannot read (C(backing_file) V(null)).
  returned: always
  type: list
  elements: dict
  sample:
    - disk: /var/lib/nova/instances/4b6d0c5e-7c8b-4b7e-9a55-0f4e2c1d9e10/disk
      backing_file: /var/lib/nova/instances/_base/6f1ed002ab5595859014ebf0951522d9ad6fc9de
      error: "Could not open '/var/lib/nova/instances/_base/6f1e...': No such file or directory"
msg:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  sample: removed 3 of 5 cache entries (1090519040 bytes freed), kept 2
diff:
  description: The cache entry names before and after, with C(--diff).
  returned: when diff mode is on
  type: dict
  sample:
    before:
      entries: [0a1b2c3d4e5f60718293a4b5c6d7e8f901234567, 6f1ed002ab5595859014ebf0951522d9ad6fc9de]
    after:
      entries: [6f1ed002ab5595859014ebf0951522d9ad6fc9de]
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    InputError, Runner, finish)
from ansible_collections.fastboot.cloud.plugins.module_utils import nova_cache as nc


ARGUMENT_SPEC = dict(
    instances_path=dict(type='path', default=nc.DEFAULT_INSTANCES_PATH),
    cache_subdirectory=dict(type='str', default=nc.DEFAULT_SUBDIR),
    min_age_seconds=dict(type='int', default=0),
    only_deleted_images=dict(type='bool', default=False),
    glance_image_ids=dict(type='list', elements='str'),
    cloud=dict(type='str'),
    on_broken_disk=dict(type='str', choices=['fail', 'warn'], default='fail'),
    images_type=dict(type='str'),
    nova_conf=dict(type='path'),
    only_if_rbd=dict(type='bool', default=False),
)


def glance_hashes(params):
    if not params['only_deleted_images']:
        return None
    ids = params['glance_image_ids']
    if ids is None:
        if not params['cloud']:
            raise InputError('only_deleted_images needs the current Glance image ids: set glance_image_ids or cloud')
        ids = nc.glance_image_ids(nc.connect(params['cloud']))
    return set(nc.cache_name(image_id) for image_id in ids)


def describe_broken(broken):
    return '; '.join('%s: %s' % (b['disk'], ('backing file %s is missing or unreadable (%s)' % (b['backing_file'], b['error'])
                                             if b['backing_file'] else b['error'])) for b in broken)


def run(module, runner, result):
    params = module.params
    if params['min_age_seconds'] < 0:
        raise InputError('min_age_seconds must be 0 or more, got %d' % params['min_age_seconds'])
    instances_path = os.path.abspath(params['instances_path'])
    cache_dir = nc.cache_dir_of(instances_path, params['cache_subdirectory'])
    result.update(cache_dir=cache_dir, instances_path=instances_path)
    images_type = nc.effective_images_type(params['images_type'], params['nova_conf'])
    result['images_type'] = images_type
    nc.check_instances_path(instances_path)
    if params['only_if_rbd'] and images_type != 'rbd':
        result['skipped'] = True
        result['msg'] = ('images_type is %s, not rbd: the cache is left alone (only_if_rbd=true)' % images_type
                         if images_type else 'images_type is unknown (set images_type or nova_conf): the cache is left '
                         'alone (only_if_rbd=true)')
        return
    hashes = glance_hashes(params)

    entries = nc.list_cache(cache_dir)
    disks = nc.find_disks(instances_path, cache_dir)
    users, broken = nc.inspect_disks(runner, disks)
    result.update(disks_inspected=len(disks), broken_disks=broken)
    stop_reason = None
    if broken:
        if params['on_broken_disk'] == 'fail':
            raise InputError('%d disk(s) under %s have a missing backing file or cannot be read, nothing was removed: %s. '
                             'Repair or remove them, or set on_broken_disk=warn to purge around them'
                             % (len(broken), instances_path, describe_broken(broken)), broken_disks=broken)
        module.warn('broken disks, their possible backing files are kept: %s' % describe_broken(broken))
        if [b for b in broken if not b['backing_file']]:
            stop_reason = 'a disk could not be inspected (its backing file is unknown), so every entry is kept'
    holders, unreadable = nc.scan_open_files()
    if unreadable:
        module.warn('the open files of %d process(es) could not be read (run as root): an entry they hold open '
                    'could be removed' % unreadable)
    remove, keep = nc.decide_purge(entries, users, broken, holders, min_age=params['min_age_seconds'],
                                   glance_hashes=hashes, stop_reason=stop_reason)

    if remove and not module.check_mode:
        # a last look at open files: a VM may have started since the first scan
        holders, dummy = nc.scan_open_files()
        still = []
        for item in remove:
            key = nc.file_key(item['path'])
            if key is not None and holders.get(key):
                item['reason'] = 'held open by process %s (since the first scan)' % ', '.join(holders[key])
                item.pop('freed', None)
                keep.append(item)
                continue
            still.append(item)
        remove = still
        done = []
        for item in remove:
            try:
                os.unlink(item['path'])
            except OSError as exc:
                if os.path.lexists(item['path']):
                    result['removed'] = done
                    raise InputError('removing %s failed: %s' % (item['path'], exc))
            done.append(item)
            result['changed'] = True

    before = [e['name'] for e in entries]
    gone = set(item['name'] for item in remove)
    if module._diff:
        result['diff'] = {'before': {'entries': before}, 'after': {'entries': [n for n in before if n not in gone]}}
    if module.check_mode and remove:
        result['changed'] = True
    result.update(removed=remove, kept=sorted(keep, key=lambda k: k['name']),
                  bytes_freed=sum(item['freed'] for item in remove))
    verb = 'would remove' if module.check_mode else 'removed'
    if not entries:
        result['msg'] = 'the cache %s is empty or absent' % cache_dir
    else:
        result['msg'] = '%s %d of %d cache entries (%d bytes %s), kept %d' % (
            verb, len(remove), len(entries), result['bytes_freed'], 'would be freed' if module.check_mode else 'freed',
            len(keep))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[('glance_image_ids', 'cloud')])
    result = dict(changed=False, removed=[], kept=[], bytes_freed=0, disks_inspected=0, broken_disks=[],
                  images_type=None, cache_dir=None)
    runner = Runner(module)
    finish(module, 'nova_image_cache_purge', lambda: run(module, runner, result), result)


if __name__ == '__main__':
    main()
