#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: libvirt_secret
short_description: Define a libvirt secret holding a Ceph cephx key, so libvirt/Nova can reach RBD
description:
  - Reads the secrets with C(virsh secret-list) and C(virsh secret-dumpxml), and the current value with
    C(virsh secret-get-value).
  - O(state=present) defines the secret (C(virsh secret-define) of a
    C(<secret ephemeral='no' private='no'>) document with a C(ceph) usage named O(usage_name)) and sets its
    value with C(virsh secret-set-value --file) from a private temporary file, so the key never appears on a
    command line. A secret with the same UUID but other attributes (usage name, private, ephemeral) is
    undefined and defined again, because libvirt does not allow changing them in place.
  - O(state=absent) undefines the secret with C(virsh secret-undefine).
  - The value is never returned, logged or shown in the diff; the diff only says whether it changes.
version_added: 0.1.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  uuid:
    description:
      - UUID of the secret (the C(rbd_secret_uuid) of Nova and Cinder).
    type: str
    required: true
  usage_name:
    description:
      - Name of the secret's C(ceph) usage. libvirt allows only one secret per usage name.
    type: str
    default: client.nova secret
  value:
    description:
      - The cephx key, base64 encoded, as C(ceph auth get-key) prints it. Required when O(state=present).
    type: str
  state:
    description:
      - Whether the secret should be defined.
    type: str
    choices: [present, absent]
    default: present
  uri:
    description:
      - libvirt connection URI given to C(virsh -c).
    type: str
    default: qemu:///system
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
  - C(virsh) (Debian package C(libvirt-clients)) and a running libvirt daemon reachable at O(uri).
seealso:
  - module: fastboot.cloud.ceph_key
'''

EXAMPLES = r'''
- name: Key of client.nova
  fastboot.cloud.ceph_key:
    name: client.nova
    caps:
      mon: profile rbd
      osd: profile rbd pool=vms, profile rbd-read-only pool=images
  no_log: true
  register: nova_key

- name: libvirt secret for Nova's RBD disks
  fastboot.cloud.libvirt_secret:
    uuid: 5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10
    usage_name: client.nova secret
    value: "{{ nova_key.key }}"

- name: Remove the secret
  fastboot.cloud.libvirt_secret:
    uuid: 5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10
    state: absent
'''

RETURN = r'''
uuid:
  description: The secret's UUID (lower case).
  returned: always
  type: str
  sample: 5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10
usage_name:
  description: The secret's usage name after the run; V(null) when it is not defined.
  returned: success
  type: str
  sample: client.nova secret
defined:
  description: Whether the secret is defined after the run (predicted in check mode).
  returned: success
  type: bool
  sample: true
value_changed:
  description: Whether the value was (or in check mode would be) set.
  returned: success
  type: bool
  sample: false
changes:
  description: Human-readable list of the actions taken (or that would be taken in check mode).
  returned: success
  type: list
  elements: str
  sample: ["define secret 5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10 (ceph usage 'client.nova secret')", "set value"]
diff:
  description:
    - The secret's attributes before and after. The value is only described (V(unset), V(set), V(set (changed)),
      V(unreadable)), never shown.
  returned: when diff mode is on
  type: dict
  sample:
    before: {uuid: 5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10, defined: false}
    after: {uuid: 5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10, defined: true, usage_type: ceph, usage_name: client.nova secret,
            ephemeral: false, private: false, value: set (changed)}
'''

import base64
import binascii
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    CommandError, FastbootError, InputError, Runner, fail_from_error)

UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
LIST_RE = re.compile(r'^\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\s*(.*?)\s*$')


def decode_value(value):
    """Decode a base64 cephx key; raise InputError (without echoing it) when it is not base64."""
    text = ''.join((value or '').split())
    if not text:
        raise InputError('value is empty: give the base64 cephx key (ceph auth get-key CLIENT)')
    try:
        raw = base64.b64decode(text.encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeError):
        raise InputError('value is not valid base64: give the cephx key as ceph auth get-key prints it')
    if not raw:
        raise InputError('value decodes to nothing: give the base64 cephx key')
    return raw


def validate(params):
    """Normalise and check the input; return (uuid, raw value or None)."""
    uuid = (params.get('uuid') or '').strip().lower()
    if not UUID_RE.match(uuid):
        raise InputError('uuid %r is not a UUID (expected 8-4-4-4-12 hexadecimal digits, for example '
                         '5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10)' % (params.get('uuid'),), uuid=params.get('uuid'))
    if params['state'] == 'absent':
        return uuid, None
    if params.get('value') is None:
        raise InputError('value is required when state=present', uuid=uuid)
    usage = params.get('usage_name')
    if not usage or not usage.strip():
        raise InputError('usage_name must not be empty', uuid=uuid)
    return uuid, decode_value(params['value'])


def parse_secret_list(text):
    """``virsh secret-list`` -> list of (uuid, usage) where usage is e.g. ``ceph client.nova secret``."""
    result = []
    for line in (text or '').splitlines():
        match = LIST_RE.match(line)
        if match:
            result.append((match.group(1).lower(), match.group(2)))
    return result


def _yes(value):
    return str(value or 'no').strip().lower() in ('yes', 'true', '1')


def parse_secret_xml(text):
    """``virsh secret-dumpxml`` -> dict(uuid, ephemeral, private, usage_type, usage_name)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CommandError('virsh secret-dumpxml printed XML that cannot be parsed: %s' % exc, stdout=text)
    usage = root.find('usage')
    usage_type = usage.get('type') if usage is not None else None
    usage_name = None
    if usage is not None:
        for tag in ('name', 'volume', 'target'):
            node = usage.find(tag)
            if node is not None:
                usage_name = (node.text or '').strip()
                break
    uuid_node = root.find('uuid')
    return dict(uuid=(uuid_node.text or '').strip().lower() if uuid_node is not None else None,
                ephemeral=_yes(root.get('ephemeral')), private=_yes(root.get('private')),
                usage_type=usage_type, usage_name=usage_name)


def secret_xml(uuid, usage_name):
    root = ET.Element('secret', ephemeral='no', private='no')
    ET.SubElement(root, 'uuid').text = uuid
    usage = ET.SubElement(root, 'usage', type='ceph')
    ET.SubElement(usage, 'name').text = usage_name
    return ET.tostring(root).decode('utf-8') + '\n'


def wanted_attrs(uuid, usage_name):
    return dict(uuid=uuid, ephemeral=False, private=False, usage_type='ceph', usage_name=usage_name)


UNREADABLE = object()


def plan(params, uuid, raw, existing, current_value, listing):
    """Decide the actions. ``existing``: parsed XML or None; ``current_value``: bytes, None (no value) or UNREADABLE;
    ``listing``: parse_secret_list output. Returns (actions, value_changed); actions are dicts with ``op``."""
    if params['state'] == 'absent':
        if existing is None:
            return [], False
        return [dict(op='undefine', desc='undefine secret %s' % uuid)], False
    usage_name = params['usage_name']
    wanted = 'ceph ' + usage_name
    others = [u for u, usage in listing if u != uuid and usage == wanted]
    if others:
        raise InputError("another libvirt secret (%s) already has the ceph usage name '%s': libvirt allows only one; "
                         "use that uuid or another usage_name" % (', '.join(others), usage_name), uuid=uuid)
    define = dict(op='define', desc="define secret %s (ceph usage '%s')" % (uuid, usage_name))
    setval = dict(op='set-value', desc='set value')
    if existing is None:
        return [define, setval], True
    if existing != wanted_attrs(uuid, usage_name):
        what = []
        for key in ('usage_type', 'usage_name', 'ephemeral', 'private'):
            if existing.get(key) != wanted_attrs(uuid, usage_name)[key]:
                what.append('%s %r -> %r' % (key, existing.get(key), wanted_attrs(uuid, usage_name)[key]))
        return [dict(op='undefine', desc='undefine secret %s to change %s' % (uuid, ', '.join(what))),
                define, setval], True
    if current_value is UNREADABLE or current_value != raw:
        return [setval], True
    return [], False


def describe(uuid, attrs, value_state):
    if attrs is None:
        return dict(uuid=uuid, defined=False)
    view = dict(attrs)
    view.update(uuid=uuid, defined=True, value=value_state)
    return view


class Virsh(object):
    def __init__(self, runner, uri):
        self.runner = runner
        self.uri = uri

    def run(self, *args, **kw):
        return self.runner.run(['virsh', '-c', self.uri] + list(args), check=kw.get('check', True),
                               what='virsh ' + ' '.join(args[:1]))

    def listing(self):
        dummy, out, dummy2 = self.run('secret-list')
        return parse_secret_list(out)

    def dumpxml(self, uuid):
        dummy, out, dummy2 = self.run('secret-dumpxml', uuid)
        return parse_secret_xml(out)

    def get_value(self, uuid):
        rc, out, err = self.run('secret-get-value', uuid, check=False)
        if rc == 0:
            try:
                return base64.b64decode(''.join(out.split()).encode('ascii'))
            except (binascii.Error, ValueError, UnicodeError):
                return UNREADABLE
        if 'does not have a value' in (err or '') or 'no value' in (err or ''):
            return None
        return UNREADABLE

    def define(self, uuid, usage_name):
        tmp = tempfile.mkdtemp(prefix='libvirt_secret.')
        try:
            path = os.path.join(tmp, 'secret.xml')
            with open(path, 'w') as handle:
                handle.write(secret_xml(uuid, usage_name))
            self.run('secret-define', '--file', path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def set_value(self, uuid, raw):
        # the value goes through a 0600 file in a 0700 directory, never on the command line
        tmp = tempfile.mkdtemp(prefix='libvirt_secret.')
        try:
            path = os.path.join(tmp, 'value')
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'wb') as handle:
                handle.write(base64.b64encode(raw))
            self.run('secret-set-value', '--secret', uuid, '--file', path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def undefine(self, uuid):
        self.run('secret-undefine', uuid)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uuid=dict(type='str', required=True),
            usage_name=dict(type='str', default='client.nova secret'),
            value=dict(type='str', no_log=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            uri=dict(type='str', default='qemu:///system'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    uuid = params['uuid']
    existing = current_value = None
    actions, value_changed = [], False
    try:
        uuid, raw = validate(params)
        virsh = Virsh(Runner(module), params['uri'])
        listing = virsh.listing()
        if uuid in [u for u, dummy in listing]:
            existing = virsh.dumpxml(uuid)
            existing['uuid'] = uuid
            current_value = virsh.get_value(uuid)
        actions, value_changed = plan(params, uuid, raw, existing, current_value, listing)
        if actions and not module.check_mode:
            for action in actions:
                if action['op'] == 'undefine':
                    virsh.undefine(uuid)
                elif action['op'] == 'define':
                    virsh.define(uuid, params['usage_name'])
                else:
                    virsh.set_value(uuid, raw)
    except FastbootError as exc:
        fail_from_error(module, exc, uuid=uuid)

    if existing is None:
        before_value = None
    elif current_value is UNREADABLE:
        before_value = 'unreadable'
    else:
        before_value = 'unset' if current_value is None else 'set'
    if params['state'] == 'absent':
        after_attrs, after_value = None, None
    else:
        after_attrs = wanted_attrs(uuid, params['usage_name'])
        after_value = 'set (changed)' if value_changed else 'set'
    result = dict(
        changed=bool(actions),
        uuid=uuid,
        usage_name=after_attrs['usage_name'] if after_attrs else None,
        defined=after_attrs is not None,
        value_changed=value_changed,
        changes=[a['desc'] for a in actions],
    )
    if module._diff:
        result['diff'] = dict(before=describe(uuid, existing, before_value), after=describe(uuid, after_attrs, after_value))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
