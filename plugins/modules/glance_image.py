#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: glance_image
short_description: Upload an image file to Glance once, by checksum or fingerprint, and keep its properties
version_added: 0.1.0
description:
  - Uploads the local file O(filename) into a Glance image named O(name) (Image API v2, direct upload) through
    openstacksdk and the C(clouds.yaml) entry O(cloud), with O(disk_format) (raw by default, what Ceph-backed Nova
    and Cinder clone from), O(container_format) and O(properties).
  - Idempotent by content, so the same source is never uploaded twice. With O(fingerprint) the value is stored as
    the image property C(fastboot_fingerprint); when an active image of that name (owned by the current project)
    has it, nothing is uploaded and O(filename) is not read (it need not exist). Otherwise the file is hashed and
    compared with Glance's C(os_hash_value) (with the image's C(os_hash_algo)) or, when Glance has none, its md5
    C(checksum); an image with the same content is taken as the one (and gets the fingerprint).
  - On an existing image, the O(properties) and the core attributes O(visibility), O(min_disk), O(min_ram),
    O(protected) that differ are updated in place (a JSON patch); a property set to V(null) is removed. Other
    properties are left alone.
  - An image of the same name with other content is never changed or deleted (it may have copy-on-write clones);
    by default the module fails and names it (O(on_conflict=fail)). O(on_conflict=rename) uploads the new image and
    then renames the other one(s) to C(NAME-replaced-<first 8 characters of its id>) with the property
    C(fastboot_replaced_by); O(on_conflict=add) uploads beside them (two images with one name).
  - Images of that name without data (status queued, saving, killed, for example left by an interrupted upload)
    are ignored with a warning. An image this module created is deleted again when its upload fails or Glance
    reports another checksum than the file's, so no half-made image is left behind.
  - With O(require_rbd_location=true) the image must be in Ceph RBD, where Nova and Cinder clone it instantly; the
    module fails with a message naming C(show_image_direct_url), C(show_multiple_locations) (glance-api.conf) and
    the image's store when Glance shows no C(rbd://) location. An existing image is checked before anything is
    changed; for a new one, Glance's default store (or O(store)) is checked before the upload when Glance tells its
    type (C(/v2/info/stores/detail), admins), and the uploaded image is checked after the upload.
author:
  - fastboot.cloud developers (@fastboot)
attributes:
  check_mode:
    support: full
    description:
      - Lists and compares (hashing the file when the fingerprint does not settle it) and reports whether it would
        upload or update; creates, uploads and changes nothing. A missing O(filename) is then reported as a
        would-be upload instead of failing (the file may be made by an earlier task that did not run).
  diff_mode:
    support: full
    description: Shows the image's identity, managed attributes and managed properties before and after.
  platform:
    support: full
    platforms: posix
    description: Needs openstacksdk on the host that runs it, and the file there.
options:
  cloud:
    description:
      - The C(clouds.yaml) entry to use. When not set, openstacksdk's defaults apply (C(OS_CLOUD) and the
        C(OS_*) environment variables).
    type: str
  name:
    description:
      - The image name.
    type: str
    required: true
  filename:
    description:
      - The local image file to upload, already in O(disk_format).
      - Needed unless an image with O(fingerprint) is already there.
    type: path
    aliases: [file]
  fingerprint:
    description:
      - An identifier of the content (for example a hash of the source image's checksum and of the settings that
        made the file), stored as the property C(fastboot_fingerprint). An active image of O(name) with it is taken as
        the image, so nothing is uploaded and O(filename) is not read.
    type: str
  disk_format:
    description:
      - Glance's C(disk_format) of a new image. An existing image in another format is not the same image.
    type: str
    default: raw
  container_format:
    description:
      - Glance's C(container_format) of a new image.
    type: str
    default: bare
  properties:
    description:
      - Image properties (for example C(img_config_drive=mandatory), C(hw_disk_bus=virtio),
        C(hw_qemu_guest_agent=yes), C(os_require_quiesce=yes)). Values are stored as strings (booleans as
        C(true)/C(false)); V(null) removes the property.
      - Core attributes (C(visibility), C(min_disk), ...) and C(fastboot_fingerprint) are refused here.
    type: dict
    default: {}
  visibility:
    description:
      - The image's visibility; not managed when not set (Glance makes a new image C(shared)).
    type: str
    choices: [public, private, shared, community]
  min_disk:
    description: Minimum disk size (GiB) to boot the image; not managed when not set.
    type: int
  min_ram:
    description: Minimum RAM (MiB) to boot the image; not managed when not set.
    type: int
  protected:
    description: Protect the image from deletion; not managed when not set.
    type: bool
  store:
    description:
      - The Glance store (an id of C(enabled_backends)) to upload a new image into; Glance's default store when not
        set.
    type: str
  on_conflict:
    description:
      - What to do when images of O(name) with data hold other content.
      - V(fail) changes nothing and fails; V(rename) uploads, then renames them; V(add) uploads beside them.
    type: str
    choices: [fail, rename, add]
    default: fail
  require_rbd_location:
    description:
      - Fail unless Glance shows an C(rbd://) location for the image (C(direct_url) or C(locations)).
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the image to become active after the upload.
    type: int
    default: 600
requirements:
  - openstacksdk
notes:
  - Only images owned by the current project are considered; admins see other projects' images, which are ignored.
  - The file is uploaded as is; convert it first (M(fastboot.cloud.qemu_img_convert)) so that a raw image is stored
    for RBD clones.
  - Glance only returns C(direct_url) with C(show_image_direct_url = true) and C(locations) with
    C(show_multiple_locations = true) in glance-api.conf; O(require_rbd_location) needs one of them.
seealso:
  - module: fastboot.cloud.qemu_img_convert
  - module: fastboot.cloud.cloudinit_bake
  - module: fastboot.cloud.rbd_clone_verify
'''

EXAMPLES = r'''
- name: Upload a raw image once, with fast-boot properties, and insist that it lands in Ceph
  fastboot.cloud.glance_image:
    cloud: admin
    name: debian-12-fastboot
    filename: /var/tmp/images/debian-12-fastboot.raw
    properties:
      img_config_drive: mandatory
      hw_disk_bus: virtio
      hw_qemu_guest_agent: true
      os_require_quiesce: true
    visibility: public
    require_rbd_location: true

- name: Look up an image by fingerprint without uploading (the file need not exist)
  fastboot.cloud.glance_image:
    cloud: admin
    name: debian-12-fastboot
    filename: /var/tmp/images/not-made-yet.raw
    fingerprint: "{{ source_sha256 }}"
  check_mode: true
  register: lookup

- name: Publish a new build under the same name, renaming the previous image (its clones keep working)
  fastboot.cloud.glance_image:
    cloud: admin
    name: debian-12-fastboot
    filename: /var/tmp/images/debian-12-fastboot.raw
    fingerprint: "{{ new_fingerprint }}"
    on_conflict: rename
'''

RETURN = r'''
id:
  description: The id of the image; V(null) when it would be uploaded (check mode).
  returned: always
  type: str
  sample: 6f1ed002-ab55-4595-8590-14ebf0951522
name:
  description: The image name.
  returned: always
  type: str
  sample: debian-12-fastboot
operation:
  description:
    - V(none) (the image is there as wanted), V(update) (its properties or attributes were or would be changed),
      V(upload) (a new image was or would be uploaded).
  returned: success
  type: str
  sample: upload
found:
  description: True when an active image with that content (fingerprint or hash) was already in Glance.
  returned: success
  type: bool
  sample: false
matched_by:
  description: How the existing image was recognised, V(fingerprint) or V(hash); V(null) when none was.
  returned: success
  type: str
  sample: fingerprint
uploaded:
  description: True when this run uploaded the file (False in check mode).
  returned: always
  type: bool
  sample: true
fingerprint:
  description: The O(fingerprint) given, V(null) without one.
  returned: success
  type: str
  sample: 3b5d...c2
status:
  description: The image's Glance status.
  returned: success
  type: str
  sample: active
properties:
  description: All free-form properties of the image after the run (as they would be in check mode).
  returned: success
  type: dict
  sample:
    img_config_drive: mandatory
    hw_disk_bus: virtio
    fastboot_fingerprint: 3b5d...c2
checksum:
  description: Glance's md5 checksum of the image data (of the file, when it would be uploaded and was hashed).
  returned: success
  type: str
  sample: b561f87202d04959e37588ee05cf5b10
os_hash_algo:
  description: Glance's hash algorithm (C(os_hash_algo)).
  returned: success
  type: str
  sample: sha512
os_hash_value:
  description: Glance's hash of the image data (C(os_hash_value)).
  returned: success
  type: str
  sample: d42a194e9f95d262...
size:
  description: The image size in bytes.
  returned: success
  type: int
  sample: 2147483648
direct_url:
  description: The image's C(direct_url) (only when Glance has C(show_image_direct_url = true)).
  returned: success
  type: str
  sample: rbd://c0ffee00-1234-5678-9abc-def012345678/images/6f1ed002-ab55-4595-8590-14ebf0951522/snap
locations:
  description: The image's locations (only when Glance has C(show_multiple_locations = true)).
  returned: success
  type: list
  elements: dict
  sample: []
stores:
  description: The Glance stores holding the image (multi-store C(enabled_backends)).
  returned: success
  type: list
  elements: str
  sample: [rbd]
conflicts:
  description: Images of that name with data and other content (C(id), C(reason)).
  returned: success
  type: list
  elements: dict
  sample:
    - id: 0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9
      reason: other content (sha512 4f2c..., the file has 9a1b...)
renamed:
  description: The conflicting images renamed with O(on_conflict=rename) (C(id), C(name) before and C(new_name)).
  returned: success
  type: list
  elements: dict
  sample: []
ignored:
  description: Images of that name without data (C(id), C(status)), left alone.
  returned: success
  type: list
  elements: dict
  sample: []
upload_seconds:
  description: Wall-clock seconds of the upload itself (create, send, wait until active).
  returned: when uploaded
  type: float
  sample: 9.8
duration:
  description: Wall-clock seconds the module spent (look-up, hashing, upload).
  returned: always
  type: float
  sample: 12.5
msg:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  sample: uploaded /var/tmp/images/debian-12-fastboot.raw as debian-12-fastboot (6f1ed002-ab55-4595-8590-14ebf0951522)
diff:
  description: The image before and after (identity, managed attributes and properties), with C(--diff).
  returned: when diff mode is on
  type: dict
  sample:
    before:
      exists: false
    after:
      exists: true
      name: debian-12-fastboot
      properties:
        hw_disk_bus: virtio
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    CommandError, FastbootError, InputError, fail_from_error)
from ansible_collections.fastboot.cloud.plugins.module_utils import glance as gl
from ansible_collections.fastboot.cloud.plugins.module_utils.nova_cache import connect


ARGUMENT_SPEC = dict(
    cloud=dict(type='str'),
    name=dict(type='str', required=True),
    filename=dict(type='path', aliases=['file']),
    fingerprint=dict(type='str'),
    disk_format=dict(type='str', default='raw'),
    container_format=dict(type='str', default='bare'),
    properties=dict(type='dict', default={}),
    visibility=dict(type='str', choices=['public', 'private', 'shared', 'community']),
    min_disk=dict(type='int'),
    min_ram=dict(type='int'),
    protected=dict(type='bool'),
    store=dict(type='str'),
    on_conflict=dict(type='str', choices=['fail', 'rename', 'add'], default='fail'),
    require_rbd_location=dict(type='bool', default=False),
    timeout=dict(type='int', default=600),
)


def core_wanted(params):
    return dict((k, params[k]) for k in gl.MANAGED_CORE if params[k] is not None)


def file_present(path):
    return bool(path) and os.path.isfile(path)


def report_image(result, image):
    """Copy the image's identity, hashes, properties and locations into the result."""
    result.update(id=image.get('id'), status=image.get('status'), checksum=image.get('checksum'),
                  os_hash_algo=image.get('os_hash_algo'), os_hash_value=image.get('os_hash_value'),
                  size=image.get('size'), properties=gl.properties_of(image), direct_url=image.get('direct_url'),
                  locations=image.get('locations') or [], stores=gl.store_list(image))


def check_rbd(glance, image, cache):
    if 'types' not in cache:
        cache['types'] = glance.store_types()
    problem = gl.rbd_problem(image, cache['types'])
    if problem:
        raise InputError(problem, image=image.get('id'))


def check_store_before_upload(glance, params, cache):
    """Fail before uploading when Glance says the target store is not rbd (None when it does not say)."""
    cache['types'] = glance.store_types()
    if not cache['types']:
        return
    store = params['store'] or glance.default_store()
    kind = cache['types'].get(store) if store else None
    if store and params['store'] and store not in cache['types']:
        raise InputError('store %s is not one of Glance\'s stores (%s)' % (store, ', '.join(sorted(cache['types']))))
    if kind and kind != 'rbd':
        raise InputError('require_rbd_location: the image would be uploaded into the Glance store %s of type %s, not '
                         'rbd, so Nova and Cinder could not clone it: make an rbd store the default_backend ([glance_store] '
                         'of glance-api.conf, role fastboot.cloud.glance_rbd, with show_image_direct_url = true or '
                         'show_multiple_locations = true) or choose one with the store option; nothing was uploaded'
                         % (store, kind), store=store)


def upload(module, glance, params, properties, hashes):
    """Create the image, upload the file, wait until active, verify the checksum; delete it again on failure."""
    attrs = {'name': params['name'], 'disk_format': params['disk_format'],
             'container_format': params['container_format']}
    attrs.update(core_wanted(params))
    attrs.update((k, v) for k, v in properties.items() if v is not None)
    image = glance.create(attrs)
    try:
        glance.upload(image['id'], params['filename'], store=params['store'])
        image = glance.wait_active(image['id'], params['timeout'])
        mismatch = None
        if image.get('checksum') and 'md5' in hashes and image['checksum'] != hashes['md5']:
            mismatch = 'md5 %s, the file has %s' % (image['checksum'], hashes['md5'])
        algo = image.get('os_hash_algo')
        if algo in hashes and image.get('os_hash_value') and image['os_hash_value'] != hashes[algo]:
            mismatch = '%s %s, the file has %s' % (algo, image['os_hash_value'], hashes[algo])
        if mismatch:
            raise CommandError('Glance stored other data than %s (%s): the file changed during the upload or the data '
                               'was damaged on the way' % (params['filename'], mismatch))
    except BaseException:
        try:
            glance.delete(image['id'])
        except Exception as exc:  # keep the upload's error, the more useful one
            module.warn('could not delete the failed image %s: %s' % (image['id'], exc))
        raise
    return image


def run(module, result, conn=None):
    params = module.params
    check = module.check_mode
    name = params['name']
    if not name or not name.strip():
        raise InputError('name is empty')
    if params['timeout'] < 1:
        raise InputError('timeout must be at least 1 second')
    properties = gl.normalize_properties(params['properties'], params['fingerprint'])
    filename = os.path.abspath(params['filename']) if params['filename'] else None
    params['filename'] = filename
    present = file_present(filename)
    if filename and os.path.exists(filename) and not present:
        raise InputError('filename %s is not a regular file' % filename)
    glance = gl.Glance(conn if conn is not None else connect(params['cloud']))
    candidates = glance.find(name)
    algos = set(['md5'] + [i['os_hash_algo'] for i in candidates if i.get('os_hash_algo')])

    def hashes_of():
        return gl.file_hashes(filename, algos) if present else None

    decision = gl.plan(candidates, params['fingerprint'], params['disk_format'], params['container_format'], hashes_of)
    result.update(matched_by=decision['matched_by'], found=decision['match'] is not None,
                  conflicts=decision['conflicts'], ignored=decision['ignored'])
    for item in decision['ignored']:
        module.warn('the Glance image %s named %s is %s (no data): ignored; delete it when it is a leftover'
                    % (item['id'], name, item['status']))
    if decision['duplicates']:
        module.warn('images %s named %s hold the same content too; using the newest, %s'
                    % (', '.join(decision['duplicates']), name, decision['match']['id']))
    wanted_keys = set(properties)
    rbd_cache = {}

    if decision['match'] is not None:
        image = decision['match']
        if params['require_rbd_location']:
            check_rbd(glance, image, rbd_cache)
        ops = gl.patch_ops(image, properties, core_wanted(params))
        after = gl.apply_ops(image, ops)
        if module._diff:
            result['diff'] = {'before': gl.describe(image, wanted_keys), 'after': gl.describe(after, wanted_keys)}
        result['operation'] = 'update' if ops else 'none'
        if ops and not check:
            after = glance.update(image['id'], ops)
        report_image(result, after)
        result['changed'] = bool(ops)
        how = 'fingerprint %s' % params['fingerprint'] if decision['matched_by'] == 'fingerprint' else 'checksum'
        result['msg'] = '%s (%s) is in Glance (same %s)%s' % (
            name, image['id'], how, '' if not ops else ': %s %s' % (
                'would update' if check else 'updated', ', '.join(o['path'][1:] for o in ops)))
        return

    # a new image
    if decision['conflicts'] and params['on_conflict'] == 'fail' and (present or not check):
        raise InputError('an image named %s with other content is in Glance: %s. It is left alone (it may have clones); '
                         'choose another name, or set on_conflict=rename (rename it after the upload) or on_conflict=add'
                         % (name, '; '.join('%s: %s' % (c['id'], c['reason']) for c in decision['conflicts'])),
                         conflicts=decision['conflicts'])
    if not present and not check:
        raise InputError('filename %s does not exist and no image %s with %s is in Glance: nothing to upload' % (
            filename, name, 'fingerprint %s' % params['fingerprint'] if params['fingerprint'] else 'that content')
            if filename else 'filename is needed to upload the image %s (no image of that name with %s is in Glance)'
            % (name, 'fingerprint %s' % params['fingerprint'] if params['fingerprint'] else 'that content'))
    if params['require_rbd_location']:
        check_store_before_upload(glance, params, rbd_cache)
    hashes = decision['hashes']
    if present and hashes is None:
        hashes = gl.file_hashes(filename, ['md5'])
    predicted = dict(core_wanted(params), name=name, status='active', disk_format=params['disk_format'],
                     container_format=params['container_format'], id=None)
    predicted.update((k, v) for k, v in properties.items() if v is not None)
    if module._diff:
        result['diff'] = {'before': gl.describe(None, wanted_keys), 'after': gl.describe(predicted, wanted_keys)}
    result.update(operation='upload', changed=True)
    if check:
        report_image(result, dict(predicted, checksum=(hashes or {}).get('md5')))
        result['msg'] = 'would upload %s as %s%s%s' % (
            filename, name, '' if present else ' (the file is not there yet)',
            '' if not decision['conflicts'] else '; %d image(s) of that name hold other content: %s' % (
                len(decision['conflicts']), {
                    'fail': 'the real run fails unless the file matches one (on_conflict=fail)',
                    'rename': 'they would be renamed after the upload', 'add': 'the new image would be added beside them',
                }[params['on_conflict']]))
        return
    started = time.time()
    image = upload(module, glance, params, properties, hashes)
    result['uploaded'] = True
    result['upload_seconds'] = round(time.time() - started, 3)
    report_image(result, image)
    if module._diff:
        result['diff']['after'] = gl.describe(image, wanted_keys)
    renamed = []
    if params['on_conflict'] == 'rename':
        for conflict in decision['conflicts']:
            new_name = '%s-replaced-%s' % (name, conflict['id'][:8])
            glance.update(conflict['id'], [{'op': 'replace', 'path': '/name', 'value': new_name},
                                           {'op': 'add', 'path': '/' + gl.REPLACED_BY_PROPERTY, 'value': image['id']}])
            renamed.append({'id': conflict['id'], 'name': name, 'new_name': new_name})
    result['renamed'] = renamed
    result['msg'] = 'uploaded %s as %s (%s)%s' % (filename, name, image['id'], '; renamed %s' % ', '.join(
        '%s to %s' % (r['id'], r['new_name']) for r in renamed) if renamed else '')
    if params['require_rbd_location']:
        check_rbd(glance, image, rbd_cache)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    started = time.time()
    result = dict(changed=False, name=module.params['name'], id=None, uploaded=False,
                  fingerprint=module.params['fingerprint'])
    try:
        run(module, result)
    except FastbootError as exc:
        result.pop('msg', None)
        fail_from_error(module, exc, duration=round(time.time() - started, 3), **result)
    except (IOError, OSError) as exc:
        result.pop('msg', None)
        module.fail_json(msg='glance_image: %s' % exc, duration=round(time.time() - started, 3), **result)
    result['duration'] = round(time.time() - started, 3)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
