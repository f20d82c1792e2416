#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ceph_pool
short_description: Create a replicated Ceph pool and keep its settings, application and RBD initialisation
description:
  - Reads the pool with C(ceph osd pool ls detail -f json) and, for RBD pools, whether C(rbd pool init) has run
    (the C(rbd_info) object exists, checked with C(rados -p POOL stat rbd_info)).
  - Creates the pool when it is missing, then sets only the settings given (C(size), C(min_size), C(pg_num),
    C(pgp_num), C(pg_autoscale_mode)), enables the application and initialises the pool for RBD.
  - Settings left unset are never touched; on creation they take the cluster defaults.
  - Deleting pools is deliberately not supported.
  - Inputs are checked (pool name, O(min_size) not above O(size), O(pgp_num) not above O(pg_num)) before any change is made.
version_added: 0.1.0
author:
  - fastboot.cloud developers (@fastboot)
options:
  name:
    description:
      - Name of the pool.
      - Letters, digits, V(_), V(.) and V(-); at most 127 characters; must not start with V(-).
    type: str
    required: true
  state:
    description:
      - Only V(present) is supported; this module never deletes a pool.
    type: str
    choices: [present]
    default: present
  pg_num:
    description:
      - Number of placement groups.
      - Unset means the cluster default on creation and no change afterwards.
      - Compared with the pool's C(pg_num_target), so a split or merge in progress is not requested again.
      - With O(pg_autoscale_mode=on) the autoscaler may change it later.
    type: int
  pgp_num:
    description:
      - Number of placement groups for placement. Must not be above O(pg_num) (or the pool's current pg_num).
      - Unset means no change; Ceph moves it along with pg_num by itself.
    type: int
  pg_autoscale_mode:
    description:
      - The pool's PG autoscaler mode. Unset means no change.
      - Quote V('on') and V('off') in YAML, unquoted they are booleans.
    type: str
    choices: ['on', 'off', 'warn']
  size:
    description:
      - Number of replicas. Unset means the cluster default on creation and no change afterwards.
      - Setting V(1) passes C(--yes-i-really-mean-it); the monitors must also allow it (C(mon allow pool size one)).
    type: int
  min_size:
    description:
      - Minimum number of replicas to serve I/O. Must not be above O(size) (or the pool's current size).
    type: int
  application:
    description:
      - Application to enable on the pool (C(ceph osd pool application enable)).
      - The module refuses to add it to a pool that already has a different application.
    type: str
    default: rbd
  rbd_init:
    description:
      - Run C(rbd pool init) when the pool is new or not yet initialised (no C(rbd_info) object).
      - Only used when O(application=rbd).
    type: bool
    default: true
  ceph_user:
    description:
      - Ceph user the CLIs authenticate as (C(--name client.USER)); V(admin) or V(client.admin).
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
  - The C(ceph), C(rados) and C(rbd) command line tools (Debian package C(ceph-common)) on the target.
notes:
  - In check mode a new pool's settings that were not given are returned as V(null) (the cluster default is not predicted).
seealso:
  - module: fastboot.cloud.ceph_key
'''

EXAMPLES = r'''
- name: RBD pool for Glance images
  fastboot.cloud.ceph_pool:
    name: images
    pg_num: 32
    pg_autoscale_mode: 'off'
    ceph_conf: /etc/ceph/ceph.conf

- name: Single-replica lab pool for Nova ephemeral disks
  fastboot.cloud.ceph_pool:
    name: vms
    size: 1
    min_size: 1

- name: A pool for another application, not initialised for RBD
  fastboot.cloud.ceph_pool:
    name: metrics
    application: rgw
'''

RETURN = r'''
pool:
  description: The pool's settings after the run (predicted in check mode).
  returned: success
  type: dict
  contains:
    name:
      description: Pool name.
      type: str
      sample: images
    pool_id:
      description: Pool id; V(null) for a pool that does not exist yet (check mode).
      type: int
      sample: 3
    size:
      description: Number of replicas.
      type: int
      sample: 3
    min_size:
      description: Minimum replicas for I/O.
      type: int
      sample: 2
    pg_num:
      description: Placement groups (target).
      type: int
      sample: 32
    pgp_num:
      description: Placement groups for placement (target).
      type: int
      sample: 32
    pg_autoscale_mode:
      description: Autoscaler mode.
      type: str
      sample: 'off'
    applications:
      description: Applications enabled on the pool.
      type: list
      elements: str
      sample: [rbd]
    rbd_initialised:
      description: Whether the pool is initialised for RBD; V(null) when O(application) is not V(rbd).
      type: bool
      sample: true
  sample:
    name: images
    pool_id: 3
    size: 3
    min_size: 2
    pg_num: 32
    pgp_num: 32
    pg_autoscale_mode: 'off'
    applications: [rbd]
    rbd_initialised: true
changes:
  description: Human-readable list of the actions taken (or that would be taken in check mode).
  returned: success
  type: list
  elements: str
  sample: ["create pool images", "set pg_num 8 -> 32", "enable application rbd", "rbd pool init images"]
diff:
  description: The pool's settings before and after; C(before) is empty for a new pool.
  returned: when diff mode is on
  type: dict
  sample:
    before: {}
    after: {name: images, pg_num: 32, applications: [rbd], rbd_initialised: true}
'''

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    CommandError, FastbootError, InputError, Runner, fail_from_error)
from ansible_collections.fastboot.cloud.plugins.module_utils.ceph import (
    CEPH_CONN_ARGSPEC, POOL_NAME_RE, CephCli)

SETTINGS = ('size', 'min_size', 'pg_num', 'pgp_num', 'pg_autoscale_mode')


def validate(params, current=None):
    """Raise InputError for bad input; ``current`` (the pool, when it exists) completes unset values."""
    name = params['name']
    if not name or not POOL_NAME_RE.match(name) or re.match(r'^\.+$', name):
        raise InputError("invalid pool name %r: use letters, digits, '_', '.' and '-' (at most 127 characters, "
                         "not starting with '-')" % (name,), name=name)
    for key in ('pg_num', 'pgp_num', 'size', 'min_size'):
        value = params.get(key)
        if value is not None and value < 1:
            raise InputError('%s must be at least 1, got %d' % (key, value), name=name)
    current = current or {}
    size = params.get('size') if params.get('size') is not None else current.get('size')
    min_size = params.get('min_size')
    if min_size is not None and size is not None and min_size > size:
        raise InputError('min_size (%d) must not be greater than size (%d) for pool %s' % (min_size, size, name),
                         name=name)
    pg_num = params.get('pg_num') if params.get('pg_num') is not None else current.get('pg_num')
    pgp_num = params.get('pgp_num')
    if pgp_num is not None and pg_num is not None and pgp_num > pg_num:
        raise InputError('pgp_num (%d) must not be greater than pg_num (%d) for pool %s' % (pgp_num, pg_num, name),
                         name=name)
    application = params.get('application')
    if not application or not re.match(r'^[A-Za-z0-9_.-]+$', application):
        raise InputError('invalid application name %r' % (application,), name=name)
    apps = current.get('applications') or []
    if apps and application not in apps:
        raise InputError('pool %s already has application(s) %s enabled; refusing to add %s to it'
                         % (name, ', '.join(apps), application), name=name, applications=apps)


def _set_action(name, key, old, new):
    args = ['osd', 'pool', 'set', name, key, str(new)]
    if key == 'size' and new == 1:
        args.append('--yes-i-really-mean-it')
    if old is None:
        desc = 'set %s %s' % (key, new)
    else:
        desc = 'set %s %s -> %s' % (key, old, new)
    return dict(tool='ceph', args=args, desc=desc)


def plan_settings(params, current):
    """Actions that bring an existing pool's settings to ``params`` (only the keys given), in a safe order."""
    name = params['name']
    wanted = dict((k, params.get(k)) for k in SETTINGS if params.get(k) is not None)
    todo = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
    actions = []
    # min_size must stay <= size at every step: lower min_size first unless it is above the current size
    order = []
    if 'min_size' in todo and (current.get('size') is None or todo['min_size'] <= current['size']):
        order += ['min_size', 'size']
    else:
        order += ['size', 'min_size']
    # pgp_num must stay <= pg_num: lower pgp_num first unless it is above the current pg_num
    if 'pgp_num' in todo and (current.get('pg_num') is None or todo['pgp_num'] <= current['pg_num']):
        order += ['pgp_num', 'pg_num']
    else:
        order += ['pg_num', 'pgp_num']
    order.append('pg_autoscale_mode')
    for key in order:
        if key in todo:
            actions.append(_set_action(name, key, current.get(key), todo[key]))
    return actions


def plan(params, current, initialised):
    """All actions for the pool: ``current`` is None for a missing pool. Returns (actions, predicted_after)."""
    name = params['name']
    application = params['application']
    actions = []
    if current is None:
        args = ['osd', 'pool', 'create', name]
        if params.get('pg_num') is not None:
            args.append(str(params['pg_num']))
            if params.get('pgp_num') is not None:
                args.append(str(params['pgp_num']))
        actions.append(dict(tool='ceph', args=args, desc='create pool %s' % name, create=True))
        base = dict(name=name, pool_id=None, size=None, min_size=None, pg_num=params.get('pg_num'),
                    pgp_num=(params.get('pgp_num') or params.get('pg_num')) if params.get('pg_num') is not None else None,
                    pg_autoscale_mode=None, applications=[])
        initialised = False
    else:
        base = dict(current)
    actions += plan_settings(params, base)
    after = dict(base)
    for key in SETTINGS:
        if params.get(key) is not None:
            after[key] = params[key]
    if application not in (base.get('applications') or []):
        actions.append(dict(tool='ceph', args=['osd', 'pool', 'application', 'enable', name, application],
                            desc='enable application %s' % application))
        after['applications'] = sorted((base.get('applications') or []) + [application])
    if application == 'rbd':
        if params.get('rbd_init') and not initialised:
            actions.append(dict(tool='rbd', args=['pool', 'init', name], desc='rbd pool init %s' % name))
            initialised = True
        after['rbd_initialised'] = bool(initialised)
    else:
        after['rbd_initialised'] = None
    return actions, after


def run_action(cli, action):
    if action['tool'] == 'rbd':
        cli.rbd(*action['args'], what='rbd ' + ' '.join(action['args']))
    else:
        cli.ceph(*action['args'], what='ceph ' + ' '.join(action['args']))


def read_state(cli, name, application):
    current = cli.pool_detail(name)
    initialised = None
    if current is not None and application == 'rbd':
        initialised = cli.rbd_initialised(name)
    return current, initialised


def with_init(pool, application, initialised):
    if pool is None:
        return None
    pool = dict(pool)
    pool['rbd_initialised'] = bool(initialised) if application == 'rbd' else None
    return pool


def main():
    argument_spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present']),
        pg_num=dict(type='int'),
        pgp_num=dict(type='int'),
        pg_autoscale_mode=dict(type='str', choices=['on', 'off', 'warn']),
        size=dict(type='int'),
        min_size=dict(type='int'),
        application=dict(type='str', default='rbd'),
        rbd_init=dict(type='bool', default=True),
    )
    argument_spec.update(CEPH_CONN_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params['name']
    application = params['application']
    current = initialised = after = None
    done = []
    try:
        validate(params)
        cli = CephCli(Runner(module), conf=params['ceph_conf'], user=params['ceph_user'],
                      keyring=params['ceph_keyring'])
        cli.check_conf()
        current, initialised = read_state(cli, name, application)
        validate(params, current)
        actions, after = plan(params, current, initialised)
        done = []
        if actions and not module.check_mode:
            for action in actions:
                run_action(cli, action)
                done.append(action['desc'])
                if action.get('create'):
                    # settings not given took the cluster defaults: plan the rest against the real pool
                    created = cli.pool_detail(name)
                    if created is None:
                        raise CommandError('pool %s was created but ceph osd pool ls detail does not list it' % name)
                    validate(params, created)
                    rest, dummy = plan(params, created, False)
                    for other in rest:
                        run_action(cli, other)
                        done.append(other['desc'])
                    break
            # re-read the settings; the RBD initialisation is known from the plan
            after = with_init(cli.pool_detail(name), application, after.get('rbd_initialised'))
        else:
            done = [a['desc'] for a in actions]
    except FastbootError as exc:
        # changes lists what was already done when a later step failed
        fail_from_error(module, exc, name=name, changes=done if not module.check_mode else [])

    before = with_init(current, application, initialised) or {}
    result = dict(changed=bool(done), pool=after, changes=done)
    if module._diff:
        result['diff'] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
