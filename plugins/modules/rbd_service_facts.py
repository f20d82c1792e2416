#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: rbd_service_facts
short_description: Read how Glance, Nova and Cinder on this host use Ceph RBD, and probe Ceph as each of them
description:
  - Reads the service configuration files of this host the way the services read them (C(glance-api.conf); C(nova.conf)
    then the files read after it, the last value winning; C(cinder.conf) with every enabled RBD backend) and, for each
    service that uses RBD, its C(ceph.conf) (fsid, mon_host) and the keyring its cephx user would use.
  - Probes Ceph B(as each service) (its ceph.conf, its user, the keyring librados finds). It connects and reads the
    cluster fsid; checks that its pool exists; tests read access (C(stat) of the pool's C(rbd_directory) object) and
    write access (removing an object that does not exist, with a random name C(fastboot-doctor-probe-<hex>); the
    OSD checks the caps first, so C(ENOENT) means "may write" and C(EPERM) "may not"). Nova and Cinder are also
    tested for read access to O(images_pool).
  - On RBD computes, counts the entries of Nova's image cache (C(<instances_path>/_base)) and, when C(virsh) is
    there, compares the value of the libvirt secret C(rbd_secret_uuid) with the key of Nova's user (no key leaves
    the host, only whether they match is returned).
  - With O(admin_user), also reads each service user's caps with C(ceph auth get) and parses what they grant on
    the probed pools.
  - Read-only. It never changes anything (C(changed) is always false); check mode gives the same result.
  - The facts are meant for M(fastboot.cloud.cloud_doctor), which compares the facts of every host and turns them
    into findings (see the playbook C(fastboot.cloud.doctor)).
version_added: 0.2.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  services:
    description:
      - Services to read on this host. Empty means every service whose configuration file exists.
      - A service listed here whose file is missing is reported with C(config_error).
    type: list
    elements: str
    choices: [glance, nova, cinder]
    default: []
  host:
    description:
      - The name of this host in the facts (the playbook passes C(inventory_hostname)). Defaults to the node name.
    type: str
  glance_api_conf:
    description: Glance's API configuration file.
    type: path
    default: /etc/glance/glance-api.conf
  nova_conf:
    description: Nova's configuration file.
    type: path
    default: /etc/nova/nova.conf
  nova_later_files:
    description:
      - Files nova-compute reads after O(nova_conf) (their values win). Missing files are skipped.
    type: list
    elements: path
    default: [/etc/nova/nova-compute.conf]
  cinder_conf:
    description: Cinder's configuration file.
    type: path
    default: /etc/cinder/cinder.conf
  images_pool:
    description:
      - The pool of the Glance images, tested for read access as Nova's and Cinder's users
        (M(fastboot.cloud.cloud_doctor) warns when Glance's C(rbd_store_pool) is another one).
    type: str
    default: images
  connect_timeout:
    description: Seconds to wait for the monitors and for each operation.
    type: int
    default: 10
  libvirt_secret:
    description:
      - Compare the libvirt secret C([libvirt] rbd_secret_uuid) with the key of Nova's user.
      - V(auto) when C(virsh) is installed and libvirt answers; V(always) fails when C(virsh) is missing;
        V(never) skips it.
    type: str
    choices: [auto, always, never]
    default: auto
  libvirt_uri:
    description: libvirt connection URI given to C(virsh -c).
    type: str
    default: qemu:///system
  admin_user:
    description:
      - A cephx id with access to C(ceph auth get) (for example V(admin)). When set, the caps of each service user
        are read and parsed; unset, access is only tested by the probes.
    type: str
  admin_ceph_conf:
    description: ceph.conf of O(admin_user).
    type: path
    default: /etc/ceph/ceph.conf
  admin_keyring:
    description: Keyring of O(admin_user), when ceph.conf does not find it.
    type: path
  backend:
    description:
      - How to probe. V(python) uses python3-rados (as the services do), V(cli) the C(ceph) and C(rados) CLIs,
        V(auto) python3-rados when importable.
    type: str
    choices: [auto, python, cli]
    default: auto
extends_documentation_fragment:
  - fastboot.cloud.read_only
requirements:
  - python3-rados (Debian/Ubuntu package name) for O(backend=python); the C(ceph) and C(rados) CLIs (package
    C(ceph-common)) for O(backend=cli) and O(admin_user).
  - Read access to the service configuration files, ceph.conf and keyrings (run as root).
notes:
  - The keyring is not passed to Ceph; librados finds it from ceph.conf (C(keyring)) or Ceph's default paths, as it
    does for the services. The C(keyring) fact says which file that is.
  - In the kolla-ansible layout the paths inside the service configuration are container paths; point the options
    at the merged files under C(/etc/kolla/<service>/) only when those paths also exist on the host.
seealso:
  - module: fastboot.cloud.cloud_doctor
'''

EXAMPLES = r'''
- name: Read the RBD setup of this host's OpenStack services
  fastboot.cloud.rbd_service_facts:
    host: "{{ inventory_hostname }}"
  register: rbd_facts

- name: Only Nova, on a Debian compute, also reading the caps with the admin key
  fastboot.cloud.rbd_service_facts:
    services: [nova]
    images_pool: glance-images
    admin_user: admin
    admin_keyring: /etc/ceph/ceph.client.admin.keyring
  register: rbd_facts
'''

RETURN = r'''
host:
  description: The host name given in O(host), else the node name.
  returned: always
  type: str
  sample: compute1
backend:
  description: The probe backend used, V(python) or V(cli).
  returned: always
  type: str
  sample: python
services:
  description:
    - One entry per service (per RBD store of Glance, per RBD backend of Cinder) found on the host.
    - Keys shared by all entries are listed below; Glance entries add C(show_image_direct_url),
      C(show_multiple_locations) and C(stores); Nova entries add C(images_type), C(secret_uuid),
      C(never_download_image_if_on_rbd), C(instances_path), C(cache_dir), C(image_cache) (C(path), C(exists),
      C(entries), C(bytes), C(names)) and C(libvirt_secret) (C(checked), C(reason), C(defined), C(matches),
      C(error)); Cinder entries add C(secret_uuid) and C(enabled_backends).
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: V(glance), V(nova) or V(cinder).
      type: str
      sample: nova
    backend:
      description: Glance store name, Cinder backend section, C(libvirt) for Nova; null when none is RBD.
      type: str
      sample: ceph
    files:
      description: The configuration files read, in order.
      type: list
      elements: str
      sample: [/etc/nova/nova.conf, /etc/nova/nova-compute.conf]
    config_error:
      description: Why the service could not be read (its file is missing); only then.
      type: str
    rbd:
      description: Whether the service uses RBD (Glance RBD store, Nova C(images_type=rbd), Cinder RBD driver).
      type: bool
      sample: true
    pool:
      description: The service's pool (C(rbd_store_pool), C(images_rbd_pool), C(rbd_pool)).
      type: str
      sample: vms
    user:
      description: The service's cephx id (without C(client.)).
      type: str
      sample: nova
    ceph_conf:
      description: The service's ceph.conf.
      type: str
      sample: /etc/ceph/ceph.conf
    ceph_conf_info:
      description: C(path), C(exists), C(fsid) and C(mon_host) of the service's ceph.conf.
      type: dict
    keyring:
      description: The keyring file holding the user's key that librados would use; null when none was found.
      type: str
      sample: /etc/ceph/ceph.client.nova.keyring
    keyring_candidates:
      description: The keyring files tried, in order.
      type: list
      elements: str
    images_pool:
      description: The images pool tested for read access (Nova and Cinder).
      type: str
      sample: images
    ceph:
      description:
        - The probe as the service's user, C(connected), C(error), C(fsid) (the cluster's, as the monitors say),
          C(backend) and C(pools), by pool name C(exists), C(read), C(write) (null when not tested) and C(error).
      type: dict
      sample:
        connected: true
        error: null
        fsid: e72df0a4-3584-463d-95f6-664d8797b9c4
        backend: python
        pools:
          images: {exists: true, read: true, write: null, error: null}
          vms: {exists: true, read: true, write: true, error: null}
    caps:
      description: The user's caps from C(ceph auth get), with O(admin_user) only.
      type: dict
      sample: {mon: profile rbd, osd: "profile rbd pool=vms, profile rbd-read-only pool=images"}
    caps_access:
      description: What the parsed caps grant, by probed pool C(read)/C(write), with O(admin_user) only.
      type: dict
    caps_error:
      description: Why the caps could not be read, with O(admin_user) only.
      type: str
'''

import base64
import binascii
import platform

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.fastboot.cloud.plugins.module_utils import doctor
from ansible_collections.fastboot.cloud.plugins.module_utils.ceph import CephCli
from ansible_collections.fastboot.cloud.plugins.module_utils.common import FastbootError, Runner, fail_from_error

ARGUMENT_SPEC = dict(
    services=dict(type='list', elements='str', choices=list(doctor.SERVICES), default=[]),
    host=dict(type='str'),
    glance_api_conf=dict(type='path', default='/etc/glance/glance-api.conf'),
    nova_conf=dict(type='path', default='/etc/nova/nova.conf'),
    nova_later_files=dict(type='list', elements='path', default=['/etc/nova/nova-compute.conf']),
    cinder_conf=dict(type='path', default='/etc/cinder/cinder.conf'),
    images_pool=dict(type='str', default='images'),
    connect_timeout=dict(type='int', default=10),
    libvirt_secret=dict(type='str', choices=['auto', 'always', 'never'], default='auto'),
    libvirt_uri=dict(type='str', default='qemu:///system'),
    admin_user=dict(type='str'),
    admin_ceph_conf=dict(type='path', default='/etc/ceph/ceph.conf'),
    admin_keyring=dict(type='path', no_log=False),
    backend=dict(type='str', choices=['auto', 'python', 'cli'], default='auto'),
)


def decode_key(text):
    try:
        return base64.b64decode(''.join((text or '').split()).encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeError):
        return None


def secret_state(module, runner, entry, mode, uri):
    """Whether the libvirt secret rbd_secret_uuid holds the key of Nova's user (never returns the key)."""
    state = dict(checked=False, reason=None, defined=None, matches=None, error=None)
    if mode == 'never':
        state['reason'] = 'libvirt_secret=never'
        return state
    if not entry.get('secret_uuid'):
        state['reason'] = 'no rbd_secret_uuid'
        return state
    if mode == 'auto' and not module.get_bin_path('virsh'):
        state['reason'] = 'virsh is not installed'
        return state
    rc, out, err = runner.run(['virsh', '-c', uri, 'secret-get-value', entry['secret_uuid']], check=False)
    text = (err or out or '').strip()
    if rc == 0:
        state.update(checked=True, defined=True)
        key = doctor.read_keyring_key(entry.get('keyring'), 'client.' + entry['user'])
        if key is None:
            state['error'] = 'the key of client.%s could not be read from a keyring' % entry['user']
        else:
            state['matches'] = decode_key(out) is not None and decode_key(out) == decode_key(key)
    elif 'not found' in text.lower() or 'no secret with matching uuid' in text.lower():
        state.update(checked=True, defined=False)
    elif 'does not have a value' in text or 'no value' in text:
        state.update(checked=True, defined=True, matches=False, error='the secret has no value')
    elif mode == 'auto':
        state['reason'] = 'virsh -c %s failed: %s' % (uri, text.splitlines()[-1] if text else 'rc=%d' % rc)
    else:
        state.update(checked=True, error='virsh -c %s failed: %s' % (uri, text))
    return state


def read_caps(cli, entry):
    try:
        got = cli.auth_get('client.' + entry['user'])
    except FastbootError as exc:
        entry['caps_error'] = exc.msg
        return
    if got is None:
        entry['caps_error'] = 'client.%s does not exist' % entry['user']
        return
    entry['caps'] = got['caps']
    reads, writes = doctor.probe_pools(entry)
    entry['caps_access'] = dict((pool, doctor.osd_access(got['caps'].get('osd'), pool))
                                for pool in reads + [p for p in writes if p not in reads])


def gather(module, runner, make_probe):
    params = module.params
    entries = doctor.read_services(params['services'], params['glance_api_conf'], params['nova_conf'],
                                   params['nova_later_files'], params['cinder_conf'], params['images_pool'])
    cli = None
    if params['admin_user']:
        cli = CephCli(runner, params['admin_ceph_conf'], params['admin_user'], params['admin_keyring'],
                      timeout=params['connect_timeout'])
    for entry in entries:
        if not entry.get('rbd'):
            continue
        if entry['ceph_conf_info']['exists']:
            reads, writes = doctor.probe_pools(entry)
            entry['ceph'] = doctor.probe_ceph(make_probe(entry), reads, writes)
        if cli is not None:
            read_caps(cli, entry)
        if entry['service'] == 'nova':
            entry['libvirt_secret'] = secret_state(module, runner, entry, params['libvirt_secret'],
                                                   params['libvirt_uri'])
    return entries


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params['backend'] == 'python' and not doctor.HAS_RADOS:
        module.fail_json(msg=missing_required_lib('rados (python3-rados)'))
    if params['connect_timeout'] < 1:
        module.fail_json(msg='connect_timeout must be 1 or more, got %d' % params['connect_timeout'])
    runner = Runner(module)
    use_python = params['backend'] == 'python' or (params['backend'] == 'auto' and doctor.HAS_RADOS)

    def make_probe(entry):
        if use_python:
            return doctor.PythonProbe(entry['ceph_conf'], entry['user'], params['connect_timeout'])
        return doctor.CliProbe(runner, entry['ceph_conf'], entry['user'], params['connect_timeout'])

    result = dict(changed=False, host=params['host'] or platform.node(), backend='python' if use_python else 'cli',
                  services=[])
    try:
        result['services'] = gather(module, runner, make_probe)
    except FastbootError as exc:
        fail_from_error(module, exc, **result)
    except (IOError, OSError) as exc:
        module.fail_json(msg='rbd_service_facts: %s' % exc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
