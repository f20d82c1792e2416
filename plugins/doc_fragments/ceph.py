# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """How the Ceph modules connect to the cluster (ceph_conf, ceph_user, ceph_keyring)."""

    DOCUMENTATION = r'''
options:
  ceph_conf:
    description:
      - Path of the Ceph configuration file.
    type: path
    default: /etc/ceph/ceph.conf
  ceph_user:
    description:
      - The cephx id to connect as (without C(client.)).
    type: str
    default: admin
  ceph_keyring:
    description:
      - Path of the keyring of O(ceph_user), when it is not where O(ceph_conf) says.
    type: path
'''
