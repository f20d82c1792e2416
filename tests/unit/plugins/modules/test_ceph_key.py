"""ceph_key decisions and auth parsing, with fakes (no cluster)."""
import json

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils.ceph import (
    CephCli, caps_argv, keyring_text, normalise_caps, parse_auth_get)
from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError
from ansible_collections.fastboot.cloud.plugins.modules import ceph_key

KEY = 'AQDeDQdr4R70HxAA+cdGmkboutDgzTKpumbSwQ=='
AUTH = json.dumps([{'entity': 'client.glance', 'key': KEY,
                    'caps': {'mon': 'profile rbd', 'osd': 'profile rbd pool=images,  profile rbd pool=vms'}}])


def params(**kw):
    base = dict(name='client.glance', caps={'mon': 'profile rbd'}, state='present', ceph_conf='/etc/ceph/ceph.conf',
                ceph_user='admin', ceph_keyring=None)
    base.update(kw)
    return base


class FakeRunner(object):
    def __init__(self, rc, out='', err=''):
        self.result = (rc, out, err)
        self.calls = []

    def run(self, argv, check=True, data=None, what=None):
        self.calls.append(argv)
        return self.result


@pytest.mark.parametrize('name', ['glance', 'client.', 'client.a b', 'mon.', 'mon.a', 'client.-x', ''])
def test_bad_entity_names(name):
    with pytest.raises(InputError, match='invalid cephx entity name'):
        ceph_key.validate(params(name=name))


@pytest.mark.parametrize('name', ['client.glance', 'client.nova-compute', 'mgr.x', 'osd.0', 'client.rgw.host_1'])
def test_good_entity_names(name):
    assert ceph_key.validate(params(name=name)) == {'mon': 'profile rbd'}


def test_caps_validation():
    with pytest.raises(InputError, match='caps is required'):
        ceph_key.validate(params(caps=None))
    with pytest.raises(InputError, match='unknown cap service'):
        ceph_key.validate(params(caps={'rgw': 'allow'}))
    with pytest.raises(InputError, match='empty'):
        ceph_key.validate(params(caps={'mon': ' '}))
    assert ceph_key.validate(params(caps={'mon': ' allow  r ', 'osd': ''})) == {'mon': 'allow r'}
    assert ceph_key.validate(params(state='absent', caps=None)) is None


def test_refuses_to_delete_own_identity():
    with pytest.raises(InputError, match='refusing to delete client.admin'):
        ceph_key.validate(params(name='client.admin', state='absent'))


def test_normalise_caps():
    assert normalise_caps({'osd': 'profile rbd pool=a ,profile  rbd pool = b', 'mds': ''}) == {
        'osd': 'profile rbd pool=a, profile rbd pool=b'}


def test_parse_auth_get_and_keyring():
    entity = parse_auth_get(AUTH, 'client.glance')
    assert entity['key'] == KEY and entity['caps']['mon'] == 'profile rbd'
    assert keyring_text('client.glance', KEY, {'osd': 'x', 'mon': 'y'}) == (
        '[client.glance]\n\tkey = %s\n\tcaps mon = "y"\n\tcaps osd = "x"\n' % KEY)
    with pytest.raises(CommandError):
        parse_auth_get('not json', 'client.glance')


def test_auth_get_missing_is_none():
    runner = FakeRunner(2, '', 'Error ENOENT: failed to find client.x in keyring')
    assert CephCli(runner).auth_get('client.x') is None
    assert runner.calls[0][-4:] == ['json', 'auth', 'get', 'client.x']
    with pytest.raises(CommandError):
        CephCli(FakeRunner(1, '', 'error connecting')).auth_get('client.x')
    assert CephCli(FakeRunner(0, AUTH)).auth_get('client.glance')['key'] == KEY


def test_plan_create_update_noop_delete():
    cur = parse_auth_get(AUTH, 'client.glance')
    caps = {'mon': 'profile rbd', 'osd': 'profile rbd pool=images, profile rbd pool=vms'}
    assert ceph_key.plan(params(caps=caps), caps, cur)[0] == []
    actions, predicted = ceph_key.plan(params(), {'mon': 'profile rbd'}, cur)
    assert actions[0]['args'] == ['auth', 'caps', 'client.glance', 'mon', 'profile rbd']
    assert predicted == {'mon': 'profile rbd'}
    actions, dummy = ceph_key.plan(params(), {'mon': 'profile rbd'}, None)
    assert actions[0]['args'][:3] == ['auth', 'get-or-create', 'client.glance']
    assert ceph_key.plan(params(state='absent'), None, cur)[0][0]['args'] == ['auth', 'del', 'client.glance']
    assert ceph_key.plan(params(state='absent'), None, None) == ([], {})


def test_caps_argv_is_stable():
    assert caps_argv({'osd': 'b', 'mon': 'a'}) == ['mon', 'a', 'osd', 'b']
