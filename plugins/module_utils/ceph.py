# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Ceph plumbing for fastboot.cloud modules.

Builds the argument lists of the ``ceph``, ``rados`` and ``rbd`` CLIs (conf, identity, keyring, timeout),
and parses what they print (``osd pool ls detail``, ``auth get``) into plain dicts the modules compare.
Nothing here decides what to change: that is each module's job, so it can be unit tested with fakes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError

CONNECT_TIMEOUT = 30

CEPH_CONN_ARGSPEC = dict(
    ceph_conf=dict(type='path', default='/etc/ceph/ceph.conf'),
    ceph_user=dict(type='str', default='admin'),
    ceph_keyring=dict(type='path', no_log=False),
)

CAP_SERVICES = ('mon', 'osd', 'mgr', 'mds')

POOL_NAME_RE = re.compile(r'^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,126}$')
ENTITY_RE = re.compile(r'^(client|mgr|mds|osd)\.[A-Za-z0-9_][A-Za-z0-9_.-]{0,126}$')


def client_name(user):
    """``admin`` -> ``client.admin``; an entity already spelled ``client.x`` is kept."""
    user = (user or 'admin').strip()
    if '.' in user and user.split('.', 1)[0] in ('client', 'mgr', 'mds', 'osd', 'mon'):
        return user
    return 'client.' + user


class CephCli(object):
    """Builds and runs ceph/rados/rbd commands for one identity. ``runner`` is a common.Runner."""

    def __init__(self, runner, conf='/etc/ceph/ceph.conf', user='admin', keyring=None, timeout=CONNECT_TIMEOUT):
        self.runner = runner
        self.conf = conf
        self.name = client_name(user)
        self.keyring = keyring
        self.timeout = int(timeout)

    def _common(self):
        argv = ['--conf', self.conf, '--name', self.name]
        if self.keyring:
            argv += ['--keyring', self.keyring]
        return argv

    def ceph_argv(self, *args):
        """``ceph`` argv with conf, identity, keyring, connect timeout and JSON output."""
        return (['ceph'] + self._common() + ['--connect-timeout', str(self.timeout), '--format', 'json']
                + [str(a) for a in args])

    def rados_argv(self, *args):
        return ['rados'] + self._common() + ['--client-mount-timeout', str(self.timeout)] + [str(a) for a in args]

    def rbd_argv(self, *args):
        return ['rbd'] + self._common() + ['--client-mount-timeout', str(self.timeout)] + [str(a) for a in args]

    def check_conf(self):
        """The conf file must exist (and the keyring, when given) before any command runs."""
        if not os.path.isfile(self.conf):
            raise InputError('Ceph configuration file %s does not exist: set ceph_conf' % self.conf, ceph_conf=self.conf)
        if self.keyring and not os.path.isfile(self.keyring):
            raise InputError('Ceph keyring %s does not exist: set ceph_keyring' % self.keyring, ceph_keyring=self.keyring)

    def ceph(self, *args, **kw):
        """Run ceph with JSON output; return (rc, stdout, stderr). ``check`` as in Runner.run."""
        return self.runner.run(self.ceph_argv(*args), check=kw.get('check', True), what=kw.get('what'))

    def ceph_json(self, *args, **kw):
        return self.runner.run_json(self.ceph_argv(*args), what=kw.get('what'))

    def rados(self, *args, **kw):
        return self.runner.run(self.rados_argv(*args), check=kw.get('check', True), what=kw.get('what'))

    def rbd(self, *args, **kw):
        return self.runner.run(self.rbd_argv(*args), check=kw.get('check', True), what=kw.get('what'))

    # --- pools -------------------------------------------------------------------------------------------

    def pool_detail(self, name):
        """The pool's settings (see parse_pool_detail) or None when there is no such pool."""
        data = self.ceph_json('osd', 'pool', 'ls', 'detail', what='ceph osd pool ls detail')
        return parse_pool_detail(data, name)

    def rbd_initialised(self, pool):
        """True when ``rbd pool init`` has run on the pool: it writes the ``rbd_info`` object."""
        rc, out, err = self.rados('-p', pool, 'stat', 'rbd_info', check=False)
        if rc == 0:
            return True
        if 'No such file or directory' in (err or '') + (out or ''):
            return False
        raise CommandError('rados -p %s stat rbd_info failed (rc=%d): %s' % (pool, rc, (err or out or '').strip()),
                           cmd=self.rados_argv('-p', pool, 'stat', 'rbd_info'), rc=rc, stdout=out, stderr=err)

    # --- auth --------------------------------------------------------------------------------------------

    def auth_get(self, entity):
        """``{'entity', 'key', 'caps'}`` for an existing entity, or None when it does not exist."""
        argv = self.ceph_argv('auth', 'get', entity)
        rc, out, err = self.runner.run(argv, check=False)
        if rc == 2 or (rc != 0 and 'ENOENT' in (err or '')):
            return None
        if rc != 0:
            lines = (err or out or '').strip().splitlines()
            raise CommandError('ceph auth get %s failed (rc=%d): %s' % (entity, rc, lines[-1] if lines else 'no output'),
                               cmd=argv, rc=rc, stdout=out, stderr=err)
        return parse_auth_get(out, entity)


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_pool_detail(data, name):
    """Pick pool ``name`` out of ``ceph osd pool ls detail -f json`` output.

    pg_num/pgp_num are the *targets* (what was last asked for): in Pacific the actual pg_num moves to the
    target gradually, so comparing with the target keeps the module idempotent during a split or merge.
    """
    if not isinstance(data, list):
        raise CommandError('ceph osd pool ls detail did not print a JSON list', stdout=repr(data)[:500])
    for entry in data:
        if not isinstance(entry, dict) or entry.get('pool_name') != name:
            continue
        pg_num = entry.get('pg_num_target', entry.get('pg_num'))
        pgp_num = entry.get('pg_placement_num_target', entry.get('pg_placement_num'))
        apps = entry.get('application_metadata') or {}
        return dict(
            name=name,
            pool_id=_int_or_none(entry.get('pool_id')),
            size=_int_or_none(entry.get('size')),
            min_size=_int_or_none(entry.get('min_size')),
            pg_num=_int_or_none(pg_num),
            pgp_num=_int_or_none(pgp_num),
            pg_autoscale_mode=entry.get('pg_autoscale_mode'),
            applications=sorted(apps.keys()),
        )
    return None


def parse_auth_get(text, entity=None):
    """Parse ``ceph auth get ENTITY -f json`` (a one-element list) into ``{'entity', 'key', 'caps'}``."""
    try:
        data = json.loads(text) if not isinstance(text, (list, dict)) else text
    except ValueError as exc:
        raise CommandError('ceph auth get printed output that is not JSON: %s' % exc, stdout=text)
    if isinstance(data, dict):
        data = [data]
    for item in data or []:
        if not isinstance(item, dict):
            continue
        if entity is None or item.get('entity') == entity:
            caps = item.get('caps') or {}
            return dict(entity=item.get('entity'), key=item.get('key'),
                        caps=dict((str(k), str(v)) for k, v in caps.items()))
    raise CommandError('ceph auth get did not return entity %s' % entity, stdout=str(text)[:500])


def normalise_cap(value):
    """Canonical form of one cap string: single spaces, no space around commas or '='."""
    value = ' '.join(str(value).split())
    value = re.sub(r'\s*,\s*', ', ', value)
    value = re.sub(r'\s*=\s*', '=', value)
    return value


def normalise_caps(caps):
    """Caps dict with canonical values and no empty entries, for comparison."""
    result = {}
    for service, value in (caps or {}).items():
        if value is None or str(value).strip() == '':
            continue
        result[str(service)] = normalise_cap(value)
    return result


def caps_argv(caps):
    """``{'mon': 'x', 'osd': 'y'}`` -> ``['mon', 'x', 'osd', 'y']`` in a stable order."""
    argv = []
    for service in sorted(caps):
        argv += [service, caps[service]]
    return argv


def keyring_text(entity, key, caps):
    """A keyring file as ``ceph auth get`` prints it."""
    lines = ['[%s]' % entity, '\tkey = %s' % key]
    for service in sorted(caps or {}):
        lines.append('\tcaps %s = "%s"' % (service, caps[service]))
    return '\n'.join(lines) + '\n'
