#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ceph_key
short_description: Create, update the caps of, or delete a Ceph cephx key
description:
  - Reads the entity with C(ceph auth get NAME -f json).
  - O(state=present) creates a missing entity with C(ceph auth get-or-create NAME CAPS...); when the entity exists
    and its caps differ from O(caps), they are replaced with C(ceph auth caps NAME CAPS...).
    Caps are compared after normalising whitespace (around commas and V(=), repeated spaces).
  - O(state=absent) deletes the entity with C(ceph auth del NAME).
  - The secret key is returned because the role writes keyrings with it, so run the task with C(no_log=true).
    It never appears in the diff.
version_added: 0.1.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  name:
    description:
      - The cephx entity, for example V(client.glance).
      - Must be C(TYPE.ID) with TYPE one of V(client), V(mgr), V(mds), V(osd); ID made of letters, digits, V(_), V(.) and V(-).
      - The module refuses to delete the entity it authenticates as (O(ceph_user)).
    type: str
    required: true
  caps:
    description:
      - Capabilities by service; keys among V(mon), V(osd), V(mgr), V(mds); values are cap strings.
      - Required when O(state=present). The entity gets exactly these caps (services not listed lose theirs).
    type: dict
  state:
    description:
      - Whether the entity should exist.
    type: str
    choices: [present, absent]
    default: present
  ceph_user:
    description:
      - Ceph user the CLI authenticates as (C(--name client.USER)); V(admin) or V(client.admin).
extends_documentation_fragment:
  - fastboot.cloud.ceph
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
requirements:
  - The C(ceph) command line tool (Debian package C(ceph-common)) on the target.
notes:
  - In check mode a key that does not exist yet is returned as V(null) (Ceph generates it on creation), and so is RV(keyring).
seealso:
  - module: fastboot.cloud.ceph_pool
  - module: fastboot.cloud.libvirt_secret
'''

EXAMPLES = r'''
- name: Key for Glance
  fastboot.cloud.ceph_key:
    name: client.glance
    caps:
      mon: profile rbd
      osd: profile rbd pool=images
      mgr: profile rbd pool=images
  no_log: true
  register: glance_key

- name: Keyring file for Glance
  ansible.builtin.copy:
    content: "{{ glance_key.keyring }}"
    dest: /etc/ceph/ceph.client.glance.keyring
    owner: glance
    mode: '0640'
  no_log: true

- name: Remove an old client
  fastboot.cloud.ceph_key:
    name: client.legacy
    state: absent
'''

RETURN = r'''
name:
  description: The entity.
  returned: always
  type: str
  sample: client.glance
key:
  description:
    - The secret cephx key (base64). Sensitive, protect it with C(no_log).
    - V(null) when the entity is absent, or in check mode when it would be created.
  returned: success
  type: str
  sample: AQDeDQdr4R70HxAA+cdGmkboutDgzTKpumbSwQ==
caps:
  description: The entity's caps after the run (predicted in check mode); empty when absent.
  returned: success
  type: dict
  sample: {mon: profile rbd, osd: profile rbd pool=images}
keyring:
  description:
    - Text of a keyring file for the entity, as C(ceph auth get) prints it. It contains the key, so it is sensitive.
    - V(null) when the key is not known (absent, or created in check mode).
  returned: success
  type: str
  sample: "[client.glance]\n\tkey = AQDeDQdr4R70HxAA+cdGmkboutDgzTKpumbSwQ==\n\tcaps mon = \"profile rbd\"\n"
changes:
  description: Human-readable list of the actions taken (or that would be taken in check mode).
  returned: success
  type: list
  elements: str
  sample: ["create client.glance", "update caps of client.glance"]
diff:
  description: Existence and caps before and after; never the key.
  returned: when diff mode is on
  type: dict
  sample:
    before: {name: client.glance, exists: true, caps: {mon: profile rbd}}
    after: {name: client.glance, exists: true, caps: {mon: profile rbd, osd: profile rbd pool=images}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    FastbootError, InputError, Runner, fail_from_error)
from ansible_collections.fastboot.cloud.plugins.module_utils.ceph import (
    CAP_SERVICES, CEPH_CONN_ARGSPEC, ENTITY_RE, CephCli, caps_argv, client_name, keyring_text, normalise_caps)


def validate(params):
    """Raise InputError for a bad entity name or caps; return the caps (values as strings, empties dropped)."""
    name = params['name']
    if not name or not ENTITY_RE.match(name):
        raise InputError("invalid cephx entity name %r: expected TYPE.ID with TYPE one of client, mgr, mds, osd "
                         "(for example client.glance)" % (name,), name=name)
    if params['state'] == 'absent':
        if client_name(params.get('ceph_user')) == name:
            raise InputError('refusing to delete %s: it is the entity this module authenticates as (ceph_user)' % name,
                             name=name)
        return None
    caps = params.get('caps')
    if caps is None:
        raise InputError('caps is required when state=present (for example {mon: "profile rbd"})', name=name)
    bad = sorted(str(k) for k in caps if k not in CAP_SERVICES)
    if bad:
        raise InputError('unknown cap service(s) %s for %s: use %s' % (', '.join(bad), name, ', '.join(CAP_SERVICES)),
                         name=name)
    result = {}
    for service, value in caps.items():
        if value is None or str(value).strip() == '':
            continue
        if isinstance(value, (dict, list)):
            raise InputError('cap %s of %s must be a string' % (service, name), name=name)
        result[service] = ' '.join(str(value).split())
    if not result:
        raise InputError('caps of %s is empty: give at least one of %s' % (name, ', '.join(CAP_SERVICES)), name=name)
    return result


def plan(params, caps, current):
    """Actions for the entity; ``current`` is the ``auth get`` dict or None. Returns (actions, predicted_caps)."""
    name = params['name']
    if params['state'] == 'absent':
        if current is None:
            return [], {}
        return [dict(args=['auth', 'del', name], desc='delete %s' % name)], {}
    if current is None:
        return [dict(args=['auth', 'get-or-create', name] + caps_argv(caps), desc='create %s' % name)], caps
    if normalise_caps(current.get('caps')) != normalise_caps(caps):
        return [dict(args=['auth', 'caps', name] + caps_argv(caps), desc='update caps of %s' % name)], caps
    return [], current.get('caps') or {}


def diff_view(name, entity):
    if entity is None:
        return dict(name=name, exists=False, caps={})
    return dict(name=name, exists=True, caps=dict(entity.get('caps') or {}))


def main():
    argument_spec = dict(
        name=dict(type='str', required=True),
        caps=dict(type='dict'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
    )
    argument_spec.update(CEPH_CONN_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params['name']
    current = final = None
    actions = []
    try:
        caps = validate(params)
        cli = CephCli(Runner(module), conf=params['ceph_conf'], user=params['ceph_user'],
                      keyring=params['ceph_keyring'])
        cli.check_conf()
        current = cli.auth_get(name)
        actions, predicted_caps = plan(params, caps, current)
        if actions and not module.check_mode:
            for action in actions:
                cli.ceph(*action['args'], what='ceph ' + ' '.join(action['args'][:3]))
            final = cli.auth_get(name)
        elif params['state'] == 'absent':
            final = None
        elif current is None:
            final = dict(entity=name, key=None, caps=predicted_caps)
        else:
            final = dict(current, caps=predicted_caps)
    except FastbootError as exc:
        fail_from_error(module, exc, name=name)

    key = final.get('key') if final else None
    result = dict(
        changed=bool(actions),
        name=name,
        key=key,
        caps=dict(final.get('caps') or {}) if final else {},
        keyring=keyring_text(name, key, final.get('caps')) if key else None,
        changes=[a['desc'] for a in actions],
    )
    if module._diff:
        after = diff_view(name, final) if params['state'] == 'present' else diff_view(name, None)
        result['diff'] = dict(before=diff_view(name, current), after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
