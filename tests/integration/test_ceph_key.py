"""fastboot.cloud.ceph_key against the real lab Ceph: create, caps change, delete; check mode; bad input."""
import json
import uuid

import pytest

from labutil import CEPH_CONF, sh


def auth_get(entity):
    proc = sh(['ceph', 'auth', 'get', entity, '-f', 'json'], check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


@pytest.fixture()
def client(ceph):
    """A client name that does not exist yet; deleted afterwards."""
    name = 'client.test-' + uuid.uuid4().hex[:8]
    yield name
    sh(['ceph', 'auth', 'del', name], check=False)


def args(**kw):
    kw.setdefault('ceph_conf', CEPH_CONF)
    return kw


CAPS = {'mon': 'profile rbd', 'osd': 'profile rbd pool=vms,profile rbd-read-only pool=images'}


def test_create_four_ways(run_module, client):
    a = args(name=client, caps=CAPS)

    res = run_module('ceph_key', a, check=True, diff=True)
    assert res.get('failed') is not True, res
    assert res['changed'] is True
    assert res['key'] is None and res['keyring'] is None
    assert res['changes'] == ['create %s' % client]
    assert res['diff']['before']['exists'] is False and res['diff']['after']['caps'] == CAPS
    assert auth_get(client) is None, 'check mode created the key'

    res = run_module('ceph_key', a, diff=True)
    assert res['changed'] is True, res
    real = auth_get(client)
    assert real is not None and real['caps'] == CAPS
    assert res['key'] == real['key']
    assert res['keyring'].startswith('[%s]\n\tkey = %s\n' % (client, real['key']))
    assert '\tcaps mon = "profile rbd"\n' in res['keyring']
    assert real['key'] not in json.dumps(res['diff'])

    res = run_module('ceph_key', a, diff=True)
    assert res['changed'] is False, res
    assert res['key'] == real['key'] and res['caps'] == CAPS

    res = run_module('ceph_key', a, check=True)
    assert res['changed'] is False, res
    assert res['key'] == real['key']


def test_caps_change_four_ways(run_module, client):
    sh(['ceph', 'auth', 'get-or-create', client, 'mon', 'allow r'])
    key = auth_get(client)['key']

    new_caps = {'mon': 'profile rbd', 'osd': 'profile rbd pool=vms , profile rbd pool=volumes'}
    a = args(name=client, caps=new_caps)
    res = run_module('ceph_key', a, check=True, diff=True)
    assert res['changed'] is True, res
    assert res['changes'] == ['update caps of %s' % client]
    assert res['diff']['before']['caps'] == {'mon': 'allow r'}
    assert res['key'] == key
    assert auth_get(client)['caps'] == {'mon': 'allow r'}, 'check mode changed the caps'

    res = run_module('ceph_key', a, diff=True)
    assert res['changed'] is True, res
    real = auth_get(client)
    assert real['key'] == key, 'updating caps must keep the key'
    assert real['caps']['mon'] == 'profile rbd'
    assert ' '.join(real['caps']['osd'].split()) == 'profile rbd pool=vms , profile rbd pool=volumes'

    # normalised comparison: whitespace around commas does not matter
    same = args(name=client, caps={'mon': 'profile  rbd', 'osd': 'profile rbd pool=vms,profile rbd pool=volumes'})
    assert run_module('ceph_key', same)['changed'] is False
    assert run_module('ceph_key', a, check=True)['changed'] is False


def test_delete_four_ways(run_module, client):
    sh(['ceph', 'auth', 'get-or-create', client, 'mon', 'allow r'])
    a = args(name=client, state='absent')

    res = run_module('ceph_key', a, check=True, diff=True)
    assert res['changed'] is True, res
    assert res['diff']['before']['exists'] is True and res['diff']['after']['exists'] is False
    assert auth_get(client) is not None, 'check mode deleted the key'

    res = run_module('ceph_key', a)
    assert res['changed'] is True, res
    assert res['key'] is None
    assert auth_get(client) is None

    assert run_module('ceph_key', a)['changed'] is False
    assert run_module('ceph_key', a, check=True)['changed'] is False


@pytest.mark.parametrize('bad', ['glance', 'client.'])
def test_bad_entity_name_fails(run_module, ceph, bad):
    res = run_module('ceph_key', args(name=bad, caps={'mon': 'allow r'}))
    assert res.get('failed') is True, res
    assert 'invalid cephx entity name' in res['msg']
    assert auth_get(bad) is None


def test_missing_and_unknown_caps_fail(run_module, client):
    res = run_module('ceph_key', args(name=client))
    assert res.get('failed') is True and 'caps is required' in res['msg'], res
    res = run_module('ceph_key', args(name=client, caps={'rgw': 'allow r'}))
    assert res.get('failed') is True and 'unknown cap service' in res['msg'], res
    assert auth_get(client) is None


def test_refuses_to_delete_own_identity(run_module, ceph):
    res = run_module('ceph_key', args(name='client.admin', state='absent'))
    assert res.get('failed') is True, res
    assert 'refusing to delete client.admin' in res['msg']
    assert auth_get('client.admin') is not None
