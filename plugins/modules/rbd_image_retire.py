#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rbd_image_retire
short_description: Retire a Glance image stored in RBD safely, flattening its clones first when asked
description:
  - Lists every clone that depends on the Glance image C(<images_pool>/<image_id>), in any pool and at any depth
    (C(rbd children --all --descendants) of each snapshot of the image, normally only C(<snapshot>)); Nova disks,
    Cinder volumes and clones of those.
  - By default refuses, with that list, when there is any clone, and changes nothing.
  - With O(flatten_clones=true) flattens them all first (see M(fastboot.cloud.rbd_flatten); online, space checked
    before anything is done, parents of a clone chain first), then deletes the image.
  - Deleting. With O(cloud) the image is deleted through Glance (C(openstacksdk)), which removes the RBD snapshot and
    image itself. Without O(cloud) (or when Glance no longer knows the image but its RBD data remains) the module
    unprotects and removes every snapshot of the image, then removes the RBD image; the Glance record, if any,
    must then be deleted with C(openstack image delete) (Glance tolerates missing data).
  - Order, so that a failure never leaves a half-deleted image and a re-run completes the job. 1) every clone is
    flattened (idempotent; nothing is deleted if one fails). 2) the clones are listed again; a clone that appeared
    meanwhile stops the run before anything is deleted. 3a) with Glance, C(delete_image); if it fails the snapshot is
    protected again when Glance left it unprotected, so the image stays usable. 3b) without Glance, each snapshot is
    unprotected and removed (a failure to remove protects it again), and only then the image is removed. The one
    step that cannot be undone is the image removal after its snapshot is gone (it fails when a client still has it
    open); a re-run then only removes the image.
  - Idempotent. An image gone from RBD (and from Glance when O(cloud) is given) is V(ok), C(changed=false).
  - Check mode returns the plan (RV(plan)) without changing anything; a refusal fails in check mode too.
version_added: 0.2.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  image_id:
    description:
      - The Glance image id (UUID); its RBD image is C(<images_pool>/<image_id>).
    type: str
    required: true
  images_pool:
    description:
      - The pool of the Glance RBD store (C(rbd_store_pool) in C(glance-api.conf)).
    type: str
    default: images
  snapshot:
    description:
      - The snapshot Glance makes of each image and clones are made from. Clones of any other snapshot of the
        image are listed (and flattened) too.
    type: str
    default: snap
  flatten_clones:
    description:
      - V(false) refuses when the image has clones; V(true) flattens them, then deletes the image.
    type: bool
    default: false
  concurrency:
    description:
      - How many flattens run at the same time.
    type: int
    default: 2
  check_space:
    description:
      - Refuse when a pool lacks the space its flattens need (C(ceph df) MAX AVAIL, lowered by a byte quota).
    type: bool
    default: true
  cloud:
    description:
      - An C(openstacksdk) cloud name (from C(clouds.yaml)) or a dict of connection arguments (with an C(auth) key,
        or the C(auth) dict itself). When given, the image is looked up and deleted through Glance.
      - Needs the C(openstacksdk) Python library on the host running the module.
    type: raw
  ceph_user:
    description:
      - The cephx id to connect as; it needs write access to the images pool and to the pools of the clones.
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
    details: The diff shows whether the image exists and the parent snapshot of each clone, before and after.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - python3-rbd and python3-rados for O(backend=python); the C(rbd) and C(ceph) CLIs for O(backend=cli).
  - openstacksdk when O(cloud) is given.
notes:
  - Clones in the RBD trash (deferred deletion) keep the snapshot busy and cannot be flattened by name; the
    module refuses and names them (C(rbd trash restore) or C(rbd trash rm) them first).
  - Secrets in a O(cloud) dict are hidden from the output; a C(clouds.yaml) cloud name is preferable.
seealso:
  - module: fastboot.cloud.rbd_flatten
  - module: fastboot.cloud.rbd_clone_verify
'''

EXAMPLES = r'''
- name: Show what retiring an image would do (and which clones depend on it)
  fastboot.cloud.rbd_image_retire:
    image_id: 3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38
    flatten_clones: true
  check_mode: true
  register: retire_plan

- name: Retire it through Glance, flattening the disks of the VMs still using it
  fastboot.cloud.rbd_image_retire:
    image_id: 3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38
    flatten_clones: true
    cloud: admin
'''

RETURN = r'''
image:
  description: The RBD image of the Glance image, C(<images_pool>/<image_id>).
  returned: always
  type: str
  sample: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38
exists:
  description: Whether the RBD image existed when the module started.
  returned: always
  type: bool
snapshots:
  description: The snapshots of the image when the module started, each C({name, protected}).
  returned: always
  type: list
  elements: dict
  sample: [{name: snap, protected: true}]
clones:
  description:
    - The dependent clones, in flatten order, in the shape of M(fastboot.cloud.rbd_flatten)'s C(disks); C(before)
      and C(after) have the shape of M(fastboot.cloud.rbd_clone_verify)'s C(disks) entries.
  returned: always
  type: list
  elements: dict
plan:
  description: The steps, in order, each C({action, target}) with C(action) one of V(flatten), V(glance_delete),
    V(snap_unprotect), V(snap_remove), V(remove); C(needed_bytes) on flatten steps. Empty when there is nothing to do.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: flatten, target: vms/6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10_disk, needed_bytes: 1069547520}
    - {action: snap_unprotect, target: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38@snap}
    - {action: snap_remove, target: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38@snap}
    - {action: remove, target: images/3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38}
done:
  description: The steps of RV(plan) that were carried out (empty in check mode).
  returned: always
  type: list
  elements: dict
glance:
  description: C({used, found, deleted}); C(used) when O(cloud) is given, C(found) when Glance had the image.
  returned: always
  type: dict
  sample: {used: true, found: true, deleted: true}
needed_bytes:
  description: Bytes the flattens may add, per pool.
  returned: always
  type: dict
space:
  description: The space of each pool with clones to flatten (see M(fastboot.cloud.rbd_flatten)).
  returned: always
  type: dict
seconds:
  description: Wall time of the module run.
  returned: always
  type: float
backend:
  description: The backend used, V(python) or V(cli).
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.fastboot.cloud.plugins.module_utils.common import FastbootError, InputError, fail_from_error
from ansible_collections.fastboot.cloud.plugins.module_utils.rbd import (
    HAS_RBD, RBD_IMPORT_ERROR, CephError, ImageNotFound, PoolNotFound, SnapshotNotFound, apply_flattens, check_name,
    check_uuid, connection_args, disk_state, flatten_plan, image_spec, open_rbd, parents_diff, space_shortfalls)

try:
    import openstack
    HAS_OPENSTACKSDK = True
    OPENSTACKSDK_IMPORT_ERROR = None
except Exception as _exc:  # pylint: disable=broad-except  # pragma: no cover - depends on the host
    # not only ImportError: a broken dependency (e.g. an old pyOpenSSL next to a new cryptography) raises others
    openstack = None
    HAS_OPENSTACKSDK = False
    OPENSTACKSDK_IMPORT_ERROR = _exc

SECRET_KEYS = ('password', 'token', 'secret', 'application_credential_secret', 'key')


class GlanceError(FastbootError):
    """Glance (through openstacksdk) failed."""


class Glance(object):
    """The two Glance calls the module needs, on an openstacksdk connection (or a fake in tests)."""

    def __init__(self, conn):
        self.conn = conn

    def get(self, image_id):
        """The image, or None when Glance does not know it."""
        try:
            return self.conn.image.get_image(image_id)
        except Exception as exc:  # pylint: disable=broad-except
            if is_not_found(exc):
                return None
            raise GlanceError('cannot look up Glance image %s: %s' % (image_id, exc), image_id=image_id)

    def delete(self, image_id):
        try:
            self.conn.image.delete_image(image_id, ignore_missing=True)
        except Exception as exc:  # pylint: disable=broad-except
            raise GlanceError('Glance refused to delete image %s: %s' % (image_id, exc), image_id=image_id)


def is_not_found(exc):
    """openstacksdk's NotFoundException (ResourceNotFound) or anything answering HTTP 404."""
    if openstack is not None and isinstance(exc, openstack.exceptions.NotFoundException):
        return True
    return getattr(exc, 'status_code', None) == 404


def connect_glance(cloud):
    """An openstacksdk connection from a cloud name or a dict (connection arguments, or an auth dict)."""
    if isinstance(cloud, dict):
        kwargs = dict(cloud) if 'auth' in cloud or 'cloud' in cloud else {'auth': dict(cloud)}
        return openstack.connect(**kwargs)
    return openstack.connect(cloud=cloud)


def secret_values(value):
    """String values of secret-looking keys in a (nested) dict, to hide them from the output."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict):
                found += secret_values(item)
            elif isinstance(item, str) and item and any(s in str(key).lower() for s in SECRET_KEYS):
                found.append(item)
    return found


def dependent_clones(client, pool, image, snapshots):
    """(clones, trashed): the descendants of every snapshot of the image, de-duplicated, as child dicts."""
    clones, trashed, seen = [], [], set()
    for snap in snapshots:
        try:
            children = client.children(pool, image, snap['name'], deep=True)
        except SnapshotNotFound:
            continue
        for child in children:
            if child['spec'] in seen:
                continue
            seen.add(child['spec'])
            (trashed if child['trash'] or child['pool_namespace'] else clones).append(child)
    return clones, trashed


def rbd_steps(pool, image, snapshots):
    steps = []
    for snap in snapshots:
        if snap['protected']:
            steps.append({'action': 'snap_unprotect', 'target': image_spec(pool, image, snap['name'])})
        steps.append({'action': 'snap_remove', 'target': image_spec(pool, image, snap['name'])})
    steps.append({'action': 'remove', 'target': image_spec(pool, image)})
    return steps


def retire(client, params, check_mode, glance=None, warn=None, log=None):
    """Plan and (unless check_mode) retire the image. Return (result, failure message or None)."""
    warn = warn or (lambda text: None)
    pool = check_name(params['images_pool'], 'images_pool')
    check_name(params['snapshot'], 'snapshot')
    image = check_uuid(params['image_id'], 'image_id')
    spec = image_spec(pool, image)
    exists = client.exists(pool, image)
    snapshots = client.snapshots(pool, image) if exists else []
    found = glance.get(image) is not None if glance else False
    result = {'changed': False, 'image': spec, 'exists': exists, 'snapshots': snapshots, 'clones': [], 'plan': [],
              'done': [], 'glance': {'used': glance is not None, 'found': found, 'deleted': False},
              'needed_bytes': {}, 'space': {}, 'backend': client.name}
    if not exists and not found:
        return result, None

    children, trashed = dependent_clones(client, pool, image, snapshots)
    if trashed:
        return result, ('%s has clones that cannot be flattened by name (in the RBD trash or a namespace): %s; '
                        'restore or purge them (rbd trash restore / rbd trash rm) and re-run'
                        % (spec, ', '.join(c['spec'] for c in trashed)))
    states = [disk_state(client, c['pool'], c['image']) for c in children]
    entries, todo, needs = flatten_plan(client, [s for s in states if s['exists']])
    result.update(clones=entries, needed_bytes=needs)
    if entries and not params['flatten_clones']:
        return result, ('%s has %d dependent clone(s), nothing changed: %s; flatten them (flatten_clones=true or '
                        'fastboot.cloud.rbd_flatten) or delete them first'
                        % (spec, len(entries), ', '.join(e['spec'] for e in entries)))
    plan = [{'action': 'flatten', 'target': e['spec'], 'needed_bytes': e['needed_bytes']}
            for e in entries if e['action'] == 'flatten']
    if found:
        plan.append({'action': 'glance_delete', 'target': image})
    elif exists:
        if glance:
            warn('Glance has no image %s: its RBD data %s is removed directly' % (image, spec))
        plan += rbd_steps(pool, image, snapshots)
    result.update(plan=plan, changed=True)
    if params['check_space'] and needs:
        result['space'] = dict((p, client.pool_space(p)) for p in sorted(needs))
        short = space_shortfalls(needs, result['space'])
        if short:
            result['changed'] = False
            return result, 'not enough free space to flatten the clones of %s, nothing changed: %s' % (
                spec, '; '.join(short))
    if check_mode:
        return result, None

    # 1) flatten every clone: nothing is deleted unless all succeed
    if todo:
        flattened, failed = apply_flattens(client, entries, todo, params['concurrency'], log)
        result['done'] += [{'action': 'flatten', 'target': s} for s in flattened]
        if failed:
            return result, 'flattening the clones of %s failed, nothing deleted (re-run to finish): %s' % (
                spec, '; '.join(failed))
    # 2) a clone made meanwhile (a VM booted from the image) stops the run before anything is deleted
    if exists:
        late, trashed = dependent_clones(client, pool, image, client.snapshots(pool, image))
        if late or trashed:
            return result, ('new clones of %s appeared while flattening, nothing deleted (re-run to flatten them): %s'
                            % (spec, ', '.join(c['spec'] for c in late + trashed)))
    # 3a) Glance deletes its record and the RBD snapshot and image
    if found:
        try:
            glance.delete(image)
        except GlanceError as exc:
            reprotected = reprotect(client, pool, image, params['snapshot'], snapshots)
            return result, '%s%s; re-run to finish' % (exc.msg, reprotected)
        result['done'].append({'action': 'glance_delete', 'target': image})
        result['glance']['deleted'] = True
        if not client.exists(pool, image):
            return result, None
        warn('Glance deleted image %s but its RBD data %s remains (another store location, or the store failed): '
             'removing it directly' % (image, spec))
        snapshots = client.snapshots(pool, image)
    # 3b) RBD directly: snapshots (unprotect, remove), then the image
    return rbd_delete(client, pool, image, snapshots, result)


def reprotect(client, pool, image, snapshot, snapshots_before):
    """After a failed Glance delete: protect the snapshot again when it was protected and no longer is."""
    was = [s for s in snapshots_before if s['name'] == snapshot and s['protected']]
    try:
        now = [s for s in client.snapshots(pool, image) if s['name'] == snapshot]
        if was and now and not now[0]['protected']:
            client.snap_protect(pool, image, snapshot)
            return ' (snapshot %s protected again)' % image_spec(pool, image, snapshot)
    except (ImageNotFound, PoolNotFound, CephError) as exc:
        return ' (could not check the snapshot: %s)' % exc.msg
    return ''


def rbd_delete(client, pool, image, snapshots, result):
    spec = image_spec(pool, image)
    for snap in snapshots:
        target = image_spec(pool, image, snap['name'])
        if snap['protected']:
            try:
                client.snap_unprotect(pool, image, snap['name'])
            except CephError as exc:
                return result, 'cannot unprotect %s, nothing deleted: %s' % (target, exc.msg)
            result['done'].append({'action': 'snap_unprotect', 'target': target})
        try:
            client.snap_remove(pool, image, snap['name'])
        except SnapshotNotFound:
            pass
        except CephError as exc:
            again = ''
            if snap['protected']:
                try:
                    client.snap_protect(pool, image, snap['name'])
                    again = ' (protected again)'
                except (CephError, InputError):
                    again = ' (could not protect it again)'
            return result, 'cannot remove snapshot %s%s: %s; re-run to finish' % (target, again, exc.msg)
        result['done'].append({'action': 'snap_remove', 'target': target})
    try:
        client.remove(pool, image)
    except ImageNotFound:
        pass
    except CephError as exc:
        return result, ('cannot remove %s (its snapshots are already removed): %s; close the clients using it '
                        '(rbd status %s) and re-run to finish' % (spec, exc.msg, spec))
    result['done'].append({'action': 'remove', 'target': spec})
    return result, None


def diff_of(result):
    """Parent snapshot of each clone and presence of the image, before and after."""
    parents = parents_diff(result['clones'])
    present = 'present' if result['exists'] or result['glance']['found'] else 'absent'
    before = dict(parents['before'], **{result['image']: present})
    after = dict(parents['after'], **{result['image']: 'absent' if result['plan'] else present})
    return {'before': before, 'after': after}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            image_id=dict(type='str', required=True),
            images_pool=dict(type='str', default='images'),
            snapshot=dict(type='str', default='snap'),
            flatten_clones=dict(type='bool', default=False),
            concurrency=dict(type='int', default=2),
            check_space=dict(type='bool', default=True),
            cloud=dict(type='raw'),
            ceph_conf=dict(type='path', default='/etc/ceph/ceph.conf'),
            ceph_user=dict(type='str', default='admin'),
            ceph_keyring=dict(type='path', aliases=['keyring'], no_log=False),
            backend=dict(type='str', choices=['auto', 'python', 'cli'], default='auto'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for secret in secret_values(params['cloud']):
        module.no_log_values.add(secret)
    if params['concurrency'] < 1:
        module.fail_json(msg='concurrency must be at least 1, not %d' % params['concurrency'])
    if params['backend'] == 'python' and not HAS_RBD:
        module.fail_json(msg=missing_required_lib('rados and rbd (python3-rados, python3-rbd)'),
                         exception=str(RBD_IMPORT_ERROR))
    if params['cloud'] is not None and not HAS_OPENSTACKSDK:
        module.fail_json(msg=missing_required_lib('openstacksdk (needed by the cloud option)'),
                         exception=str(OPENSTACKSDK_IMPORT_ERROR))
    if params['cloud'] is not None and not isinstance(params['cloud'], (str, dict)):
        module.fail_json(msg='cloud must be a cloud name or a dict, not %s' % type(params['cloud']).__name__)
    result = {'changed': False}
    start = time.time()
    try:
        check_uuid(params['image_id'], 'image_id')
        glance = None
        if params['cloud'] is not None:
            try:
                glance = Glance(connect_glance(params['cloud']))
            except Exception as exc:  # pylint: disable=broad-except
                raise GlanceError('cannot connect to OpenStack (cloud option): %s' % exc)
        with open_rbd(module, *connection_args(module)) as client:
            result, problem = retire(client, params, module.check_mode, glance, module.warn, module.log)
    except FastbootError as exc:
        fail_from_error(module, exc, **result)
        return
    result['seconds'] = round(time.time() - start, 3)
    result['diff'] = diff_of(result)
    result['changed'] = bool(result['plan']) and (module.check_mode or bool(result['done'])) and not problem
    if problem:
        result['changed'] = bool(result['done'])
        module.fail_json(msg=problem, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
