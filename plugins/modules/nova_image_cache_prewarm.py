#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: nova_image_cache_prewarm
short_description: Pre-warm Nova's image cache (_base) so the first VM of an image starts without a download
version_added: 0.1.0
description:
  - With O(method=offline) (on a compute host with local or shared-storage disks) places each Glance image file
    given in O(images) into Nova's image cache (C(<instances_path>/_base)) under Nova's own cache name, the hex
    sha1 of the image id, so Nova finds it there and does not download it.
  - An image already in the format Nova keeps (raw with O(force_raw_images=true), Nova's default) is hard-linked
    when the source and the cache are on the same filesystem (O(hardlink)), copied otherwise (sparse, fsync);
    any other format is converted to raw with C(qemu-img convert). Copies and conversions are written under a
    temporary name in the cache directory (C(.<sha1>.fastboot-tmp-RANDOM)), get Nova's owner and mode, and are
    renamed into place only when complete, so a full disk leaves nothing under the final name.
  - Idempotent. An entry that already exists in the expected format and virtual size (or is the same file as
    the source) is left as it is (its owner and mode are corrected); one in another format or size is left
    alone with a warning (it may be in use as a backing file).
  - RBD-backed computes (O(images_type=rbd), or C([libvirt] images_type=rbd) in O(nova_conf)) do not use the
    cache for their disks, so the module does nothing there and reports C(skipped).
  - With O(method=api) asks Nova itself to pre-cache the images on every compute of the host aggregates
    O(aggregates) (C(POST /os-aggregates/{id}/images), compute API microversion 2.81, Nova Ussuri or later)
    through openstacksdk and the C(clouds.yaml) entry O(cloud). Run it once, on a host that reaches the API.
    The request is asynchronous and Nova reports nothing back, so it always reports C(changed).
author:
  - fastboot.cloud developers (@fastboot)
attributes:
  check_mode:
    support: full
    description: Inspects the sources and the cache and reports what would be linked, copied or converted (or requested); writes nothing.
  diff_mode:
    support: full
    description: Reports the cache entry names of the given images present before and after.
  platform:
    support: full
    platforms: posix
    description: Needs C(qemu-img) on the compute host (offline), or openstacksdk (api).
options:
  method:
    description:
      - V(offline) places the image files into the cache on this host; V(api) asks Nova to do it on aggregates.
    type: str
    choices: [offline, api]
    default: offline
  images:
    description:
      - The images to pre-cache.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description: The Glance image id (the cache name is its sha1).
        type: str
        required: true
      path:
        description:
          - The image file on this host (O(method=offline)). Default C(<glance_store_dir>/<id>).
        type: path
      format:
        description:
          - The format of the file (Glance's C(disk_format)). Detected with C(qemu-img info) when not set; set it
            for images from untrusted users, so that a raw image that looks like another format is not misread.
        type: str
  glance_store_dir:
    description:
      - A Glance file store directory (C([glance_store] filesystem_store_datadir), for example
        C(/var/lib/glance/images)) holding the image files by id, for O(images) entries without C(path).
    type: path
  instances_path:
    description:
      - Nova's C([DEFAULT] instances_path). It must exist; the cache directory is created when missing.
    type: path
    default: /var/lib/nova/instances
  cache_subdirectory:
    description:
      - Nova's C([image_cache] subdirectory_name).
    type: str
    default: _base
  force_raw_images:
    description:
      - Nova's C([DEFAULT] force_raw_images). When true (Nova's default) the cache holds raw files and other
        formats are converted; when false the file is placed in its own format.
    type: bool
    default: true
  hardlink:
    description:
      - Hard-link the source into the cache when no conversion is needed and both are on the same filesystem.
      - The link and the Glance file are then the same inode, so O(owner), O(group) and O(mode) apply to both
        (Glance keeps reading and deleting it). Set to false to always copy.
    type: bool
    default: true
  owner:
    description: Owner of the cache entries (a name or a uid).
    type: str
    default: nova
  group:
    description: Group of the cache entries (a name or a gid).
    type: str
    default: nova
  mode:
    description: Mode of the cache entries, an octal string.
    type: str
    default: '0644'
  images_type:
    description:
      - Nova's C([libvirt] images_type) on this host. With V(rbd) nothing is done (O(method=offline)).
      - When not set it is read from O(nova_conf) if that is given.
    type: str
  nova_conf:
    description:
      - A nova.conf to read C([libvirt] images_type) from when O(images_type) is not set.
    type: path
  cloud:
    description:
      - The C(clouds.yaml) entry for O(method=api) (admin credentials, host aggregates are admin-only).
    type: str
  aggregates:
    description:
      - Names or ids of the host aggregates whose computes pre-cache the images, for O(method=api).
    type: list
    elements: str
requirements:
  - qemu-img (package qemu-utils) for O(method=offline)
  - openstacksdk for O(method=api)
notes:
  - If the module itself is killed during a copy or a conversion a C(.<sha1>.fastboot-tmp-*) file may remain in
    the cache directory; M(fastboot.cloud.nova_image_cache_purge) removes it.
seealso:
  - module: fastboot.cloud.nova_image_cache_purge
  - module: fastboot.cloud.qemu_img_convert
'''

EXAMPLES = r'''
- name: Pre-warm the cache of an NFS-backed compute from the Glance file store
  fastboot.cloud.nova_image_cache_prewarm:
    glance_store_dir: /var/lib/glance/images
    images:
      - id: 6f1ed002-ab55-4595-8590-14ebf0951522
        format: raw
      - id: 0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9
        format: qcow2
    nova_conf: /etc/nova/nova.conf

- name: Ask Nova to pre-cache an image on the computes of two aggregates
  fastboot.cloud.nova_image_cache_prewarm:
    method: api
    cloud: admin
    aggregates: [rack-a, rack-b]
    images:
      - id: 6f1ed002-ab55-4595-8590-14ebf0951522
  run_once: true
  delegate_to: localhost
'''

RETURN = r'''
cache_dir:
  description: The cache directory (O(method=offline)).
  returned: always
  type: str
  sample: /var/lib/nova/instances/_base
images_type:
  description: The host's images_type (given or read from O(nova_conf)); V(null) when unknown.
  returned: always
  type: str
  sample: qcow2
images:
  description:
    - One entry per image (O(method=offline)). C(action) is V(link), V(copy), V(convert) (done, or to do in check
      mode), V(attributes) (present, owner or mode corrected), V(none) (present) or V(conflict) (another file is
      under the name, left alone; C(reason) says how it differs).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 6f1ed002-ab55-4595-8590-14ebf0951522
      name: 8a2b7c9b1f2d0f0b5a0c6c2c0f7c1c3f2b8a9d10
      path: /var/lib/nova/instances/_base/8a2b7c9b1f2d0f0b5a0c6c2c0f7c1c3f2b8a9d10
      source: /var/lib/glance/images/6f1ed002-ab55-4595-8590-14ebf0951522
      source_format: qcow2
      format: raw
      virtual_size: 2147483648
      action: convert
requests:
  description: The pre-cache requests sent (in check mode, that would be sent), for O(method=api).
  returned: always
  type: list
  elements: dict
  sample:
    - aggregate: rack-a
      id: 3
      images: [6f1ed002-ab55-4595-8590-14ebf0951522]
skipped:
  description: True when nothing was done because the host is RBD-backed.
  returned: when skipped
  type: bool
  sample: true
msg:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  sample: "pre-warmed 2 image(s) in /var/lib/nova/instances/_base: 1 linked, 0 copied, 1 converted, 0 already present"
diff:
  description: The cache entries of the given images present before and after, with C(--diff).
  returned: when diff mode is on
  type: dict
  sample:
    before:
      entries: []
    after:
      entries: [8a2b7c9b1f2d0f0b5a0c6c2c0f7c1c3f2b8a9d10]
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    CommandError, InputError, Runner, finish)
from ansible_collections.fastboot.cloud.plugins.module_utils import nova_cache as nc
from ansible_collections.fastboot.cloud.plugins.module_utils.qemu_img import (
    convert, inspect_source, validate_format)


ARGUMENT_SPEC = dict(
    method=dict(type='str', choices=['offline', 'api'], default='offline'),
    images=dict(type='list', elements='dict', required=True, options=dict(
        id=dict(type='str', required=True),
        path=dict(type='path'),
        format=dict(type='str'),
    )),
    glance_store_dir=dict(type='path'),
    instances_path=dict(type='path', default=nc.DEFAULT_INSTANCES_PATH),
    cache_subdirectory=dict(type='str', default=nc.DEFAULT_SUBDIR),
    force_raw_images=dict(type='bool', default=True),
    hardlink=dict(type='bool', default=True),
    owner=dict(type='str', default='nova'),
    group=dict(type='str', default='nova'),
    mode=dict(type='str', default='0644'),
    images_type=dict(type='str'),
    nova_conf=dict(type='path'),
    cloud=dict(type='str'),
    aggregates=dict(type='list', elements='str'),
)

DONE = {'link': 'linked', 'copy': 'copied', 'convert': 'converted'}


def unique_images(images):
    seen, result = set(), []
    for image in images:
        if not image['id'] or not image['id'].strip():
            raise InputError('an entry of images has an empty id')
        if image['id'] in seen:
            continue
        seen.add(image['id'])
        result.append(image)
    return result


def plan(runner, params, cache_dir, image, attrs):
    """Inspect one image and its cache entry; return the item with the ``action`` to take."""
    name = nc.cache_name(image['id'])
    final = os.path.join(cache_dir, name)
    instances_dir = os.path.dirname(cache_dir)
    src = image['path']
    if not src:
        if not params['glance_store_dir']:
            raise InputError('image %s has no path and glance_store_dir is not set' % image['id'], image=image['id'])
        src = os.path.join(params['glance_store_dir'], image['id'])
    src = os.path.abspath(src)
    try:
        source = inspect_source(runner, src, fmt=validate_format(image['format'], 'format of image %s' % image['id']))
    except InputError as exc:
        raise InputError('image %s: %s' % (image['id'], exc.msg), image=image['id'], **exc.details)
    target_fmt = 'raw' if params['force_raw_images'] else source['format']
    item = {'id': image['id'], 'name': name, 'path': final, 'source': src, 'source_format': source['format'],
            'format': target_fmt, 'virtual_size': source['virtual_size']}
    if os.path.lexists(final):
        if nc.file_key(final) == nc.file_key(src):
            item['action'] = 'none'
        else:
            current = nc.existing_entry(runner, final)
            if current is None:
                item.update(action='conflict', reason='qemu-img cannot read the existing %s' % final)
            elif current['format'] != target_fmt:
                item.update(action='conflict', reason='the existing %s is in format %s, not %s' % (final, current['format'], target_fmt))
            elif current['virtual_size'] != source['virtual_size']:
                item.update(action='conflict', reason='the existing %s has virtual size %d, not %d'
                            % (final, current['virtual_size'], source['virtual_size']))
            else:
                item['action'] = 'none'
        if item['action'] == 'none' and nc.needs_attributes(final, *attrs):
            item['action'] = 'attributes'
        return item
    if source['format'] != target_fmt:
        item['action'] = 'convert'
    elif params['hardlink'] and os.stat(src).st_dev == os.stat(cache_dir if os.path.isdir(cache_dir) else instances_dir).st_dev:
        item['action'] = 'link'
    else:
        item['action'] = 'copy'
    return item


def place(runner, cache_dir, item, attrs):
    """Write one entry under a temporary name, give it Nova's owner and mode, rename it into place."""
    tmp = nc.tmp_name(cache_dir, item['name'])
    try:
        if item['action'] == 'link':
            try:
                os.link(item['source'], tmp)
            except OSError:  # a bind mount or a protected link: copy instead
                item['action'] = 'copy'
        if item['action'] == 'copy':
            nc.sparse_copy(item['source'], tmp)
        elif item['action'] == 'convert':
            convert(runner, item['source'], item['source_format'], tmp, item['format'])
            nc.fsync_path(tmp)
        nc.set_attributes(tmp, *attrs)
        os.rename(tmp, item['path'])
        nc.fsync_path(cache_dir, directory=True)
    except (CommandError, IOError, OSError) as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if nc.no_space(exc):
            raise InputError('image %s: no space left in %s while writing %s (%s): the partial file was removed and '
                             'nothing was placed under %s; free space or skip this image'
                             % (item['id'], cache_dir, os.path.basename(tmp), getattr(exc, 'msg', None) or exc, item['name']),
                             image=item['id'])
        raise


def run_offline(module, runner, result):
    params = module.params
    instances_path = os.path.abspath(params['instances_path'])
    cache_dir = nc.cache_dir_of(instances_path, params['cache_subdirectory'])
    result['cache_dir'] = cache_dir
    images_type = nc.effective_images_type(params['images_type'], params['nova_conf'])
    result['images_type'] = images_type
    if images_type == 'rbd':
        result['skipped'] = True
        result['msg'] = ('this compute is RBD-backed (images_type=rbd): Nova clones its disks from Ceph and does not use '
                         'the image cache, nothing to pre-warm')
        return
    nc.check_instances_path(instances_path)
    uid, gid = nc.resolve_owner(params['owner'], params['group'])
    attrs = (uid, gid, nc.parse_mode(params['mode']))
    items = [plan(runner, params, cache_dir, image, attrs) for image in unique_images(params['images'])]
    result['images'] = items
    before = sorted(i['name'] for i in items if os.path.lexists(i['path']))
    if module._diff:
        result['diff'] = {'before': {'entries': before},
                          'after': {'entries': sorted(i['name'] for i in items if i['action'] != 'conflict' or i['name'] in before)}}
    for item in items:
        if item['action'] == 'conflict':
            module.warn('image %s: %s; it is left alone (it may be in use as a backing file)' % (item['id'], item['reason']))
    todo = [i for i in items if i['action'] not in ('none', 'conflict')]
    result['changed'] = bool(todo) and module.check_mode
    if not module.check_mode:
        if todo and not os.path.isdir(cache_dir):
            os.mkdir(cache_dir, 0o755)
            os.chown(cache_dir, uid, gid)
        for item in todo:
            if item['action'] == 'attributes':
                nc.set_attributes(item['path'], *attrs)
            else:
                place(runner, cache_dir, item, attrs)
            result['changed'] = True
    counts = dict((a, len([i for i in items if i['action'] == a])) for a in ('link', 'copy', 'convert', 'none', 'attributes', 'conflict'))
    result['msg'] = '%s %d image(s) in %s: %d linked, %d copied, %d converted, %d already present%s%s' % (
        'would pre-warm' if module.check_mode else 'pre-warmed', len(items), cache_dir, counts['link'], counts['copy'],
        counts['convert'], counts['none'] + counts['attributes'],
        ' (%d with owner/mode corrected)' % counts['attributes'] if counts['attributes'] else '',
        ', %d conflicting (left alone)' % counts['conflict'] if counts['conflict'] else '')


def run_api(module, result):
    params = module.params
    if not params['cloud'] or not params['aggregates']:
        raise InputError('method=api needs cloud (a clouds.yaml entry) and aggregates')
    image_ids = [image['id'] for image in unique_images(params['images'])]
    conn = nc.connect(params['cloud'])
    result['requests'] = nc.precache(conn, params['aggregates'], image_ids, check_mode=module.check_mode)
    result['changed'] = True
    result['msg'] = '%s the pre-caching of %d image(s) on aggregate(s) %s (asynchronous: the computes download in the background)' % (
        'would request' if module.check_mode else 'requested', len(image_ids), ', '.join(params['aggregates']))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = dict(changed=False, images=[], requests=[], images_type=None, cache_dir=None)
    runner = Runner(module)
    if module.params['method'] == 'api':
        finish(module, 'nova_image_cache_prewarm', lambda: run_api(module, result), result)
    else:
        finish(module, 'nova_image_cache_prewarm', lambda: run_offline(module, runner, result), result)


if __name__ == '__main__':
    main()
