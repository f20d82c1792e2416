#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cloud_doctor
short_description: Report every disagreement between Glance, Nova, Cinder and Ceph that stops copy-on-write clones
description:
  - Compares the facts that M(fastboot.cloud.rbd_service_facts) gathered on every Glance, Nova and Cinder host and,
    with O(cloud), the Glance images, and returns one finding per check and subject, C(ok), C(warn) or C(fail),
    each with what was seen and how to fix it.
  - "Checks of each service (per host, per RBD store/backend): C(config) (the service uses RBD), C(ceph_conf)
    (its ceph.conf and keyring exist), C(ceph_connect) (it can connect as its user), C(ceph_fsid) (it sees the same
    cluster as Glance; its ceph.conf names that cluster), C(pool) (its pool exists), C(pool_write) (its user can read
    and write its pool), C(images_pool) (Nova/Cinder were probed on Glance's pool), C(images_read) (Nova/Cinder can
    read the images pool, needed to clone)."
  - "Nova computes with C(images_type=rbd): C(image_cache) (C(_base) is empty), C(never_download)
    (C([workarounds] never_download_image_if_on_rbd)), C(libvirt_secret) (C(rbd_secret_uuid) set, the secret
    defined and holding the key of Nova's user, when C(virsh) was available). Glance: C(direct_url)
    (C(show_image_direct_url) on)."
  - "Images, with O(cloud): C(image_format) (disk_format raw) and C(image_location) (an C(rbd://) direct_url in the
    cluster the services see, in Glance's pool)."
  - Read-only. It never changes anything (C(changed) is always false); check mode gives the same result.
version_added: 0.2.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  facts:
    description:
      - The results of M(fastboot.cloud.rbd_service_facts) of every host (each with C(host) and C(services)).
    type: list
    elements: dict
    required: true
  cloud:
    description:
      - A C(clouds.yaml) entry to read the Glance images with openstacksdk. Without it, the image checks are skipped.
      - Use an admin entry to see every project's images.
    type: str
  images:
    description:
      - Names or ids of the images to check, with O(cloud). Empty checks every active image.
    type: list
    elements: str
    default: []
  on_failure:
    description:
      - What to do when a finding has the status C(fail). V(fail) fails the task with a message listing them;
        V(warn) adds a warning and succeeds.
    type: str
    choices: [fail, warn]
    default: fail
extends_documentation_fragment:
  - fastboot.cloud.read_only
requirements:
  - openstacksdk on the host that runs the module, only with O(cloud).
seealso:
  - module: fastboot.cloud.rbd_service_facts
  - name: Ceph RBD and OpenStack
    description: What Glance, Cinder and Nova need for copy-on-write clones.
    link: https://docs.ceph.com/en/latest/rbd/rbd-openstack/
'''

EXAMPLES = r'''
# The playbook fastboot.cloud.doctor does this for the groups glance_api, nova_compute and cinder_volume.
- name: Read each host's services
  fastboot.cloud.rbd_service_facts:
    host: "{{ inventory_hostname }}"
  register: rbd_facts

- name: Compare them, with the Glance images
  fastboot.cloud.cloud_doctor:
    facts: "{{ ansible_play_hosts | map('extract', hostvars, 'rbd_facts') | list }}"
    cloud: admin
    images: [cirros, ubuntu-24.04]
    on_failure: warn
  delegate_to: localhost
  run_once: true
  register: doctor

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ doctor.findings | rejectattr('status', 'equalto', 'ok') | list }}"
'''

RETURN = r'''
findings:
  description: One finding per check and subject, in the order hosts, services, images.
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description:
        - V(config), V(ceph_conf), V(ceph_connect), V(ceph_fsid), V(pool), V(pool_write), V(images_pool),
          V(images_read), V(image_cache), V(never_download), V(libvirt_secret), V(direct_url), V(image_format),
          V(image_location).
      type: str
      sample: images_read
    status:
      description: V(ok), V(warn) or V(fail).
      type: str
      sample: fail
    service:
      description: V(glance), V(nova) or V(cinder).
      type: str
      sample: nova
    host:
      description: The host of the service; null for image findings.
      type: str
      sample: compute1
    subject:
      description: The Glance store, the Cinder backend section, C(libvirt) for Nova, or the image id.
      type: str
      sample: libvirt
    detail:
      description: What was seen.
      type: str
      sample: "nova: client.nova cannot read the images pool images: it cannot clone Glance images"
    fix:
      description: How to fix it; null when the status is V(ok).
      type: str
      sample: "give client.nova `profile rbd-read-only pool=images`: run the role fastboot.cloud.ceph_rbd ..."
summary:
  description: How many findings have each status.
  returned: always
  type: dict
  sample: {ok: 21, warn: 1, fail: 2}
failed_checks:
  description: One line per finding with the status V(fail).
  returned: always
  type: list
  elements: str
  sample: ["FAIL images_read [compute1/nova/libvirt]: nova: client.nova cannot read the images pool images ..."]
images_checked:
  description: How many Glance images were checked (0 without O(cloud)).
  returned: always
  type: int
  sample: 3
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils import doctor
from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, FastbootError, InputError, fail_from_error
from ansible_collections.fastboot.cloud.plugins.module_utils.nova_cache import connect

ARGUMENT_SPEC = dict(
    facts=dict(type='list', elements='dict', required=True),
    cloud=dict(type='str'),
    images=dict(type='list', elements='str', default=[]),
    on_failure=dict(type='str', choices=['fail', 'warn'], default='fail'),
)


def check_facts(facts):
    """Each element must look like a rbd_service_facts result."""
    for idx, item in enumerate(facts):
        if not isinstance(item.get('services'), list):
            raise InputError('facts[%d] is not a rbd_service_facts result (no services list): did that host skip '
                             'or fail the task?' % idx, index=idx)
        for entry in item['services']:
            if not isinstance(entry, dict) or entry.get('service') not in doctor.SERVICES:
                raise InputError('facts[%d] has a service entry that is not glance, nova or cinder' % idx, index=idx)
    return facts


def load_images(conn, wanted):
    """The Glance images to check as plain dicts: the named ones (InputError for unknown), else every active one."""
    try:
        if not wanted:
            return [doctor.image_dict(img) for img in conn.image.images() if getattr(img, 'status', None) == 'active']
        out = []
        for name in wanted:
            img = conn.image.find_image(name, ignore_missing=True)
            if img is None:
                raise InputError('image %r is not in Glance (as the cloud user sees it)' % name, image=name)
            out.append(doctor.image_dict(conn.image.get_image(img.id)))
        return out
    except FastbootError:
        raise
    except Exception as exc:  # openstacksdk raises its own exception types
        raise CommandError('reading the Glance images failed: %s' % exc)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if params['images'] and not params['cloud']:
        module.fail_json(msg='images needs cloud (the clouds.yaml entry to read them from)')
    result = dict(changed=False, findings=[], summary=doctor.summary([]), failed_checks=[], images_checked=0)
    try:
        facts = check_facts(params['facts'])
        images = None
        if params['cloud']:
            images = load_images(connect(params['cloud']), params['images'])
            result['images_checked'] = len(images)
        findings = doctor.evaluate(facts, images)
    except FastbootError as exc:
        fail_from_error(module, exc, **result)
        return
    result.update(findings=findings, summary=doctor.summary(findings),
                  failed_checks=[doctor.describe(f) for f in findings if f['status'] == 'fail'])
    for item in findings:
        if item['status'] == 'warn':
            module.warn(doctor.describe(item))
    if result['failed_checks']:
        msg = '%d check(s) failed: %s' % (len(result['failed_checks']), '; '.join(result['failed_checks']))
        if params['on_failure'] == 'fail':
            module.fail_json(msg=msg, **result)
        module.warn(msg)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
