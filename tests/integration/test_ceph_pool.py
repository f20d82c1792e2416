"""fastboot.cloud.ceph_pool against the real lab Ceph: check, apply, repeat, repeat in check; bad input."""
import json
import uuid

import pytest

from labutil import CEPH_CONF, sh


def pool_detail(name):
    for entry in json.loads(sh(['ceph', 'osd', 'pool', 'ls', 'detail', '-f', 'json']).stdout):
        if entry['pool_name'] == name:
            return entry
    return None


def rbd_info_exists(name):
    return sh(['rados', '-p', name, 'stat', 'rbd_info'], check=False).returncode == 0


def drop(name):
    sh(['ceph', 'osd', 'pool', 'rm', name, name, '--yes-i-really-really-mean-it'], check=False)


@pytest.fixture()
def new_pool(ceph):
    """A pool name that does not exist yet; whatever the test created under it is deleted afterwards."""
    name = 'test-new-' + uuid.uuid4().hex[:8]
    yield name
    drop(name)


@pytest.fixture()
def bare_pool(ceph):
    """A pool created without application nor rbd init; deleted afterwards."""
    name = 'test-bare-' + uuid.uuid4().hex[:8]
    sh(['ceph', 'osd', 'pool', 'create', name, '8', '8'])
    yield name
    drop(name)


def args(**kw):
    kw.setdefault('ceph_conf', CEPH_CONF)
    return kw


def test_create_four_ways(run_module, new_pool):
    a = args(name=new_pool, pg_num=8, pg_autoscale_mode='off', size=1, min_size=1)

    res = run_module('ceph_pool', a, check=True, diff=True)
    assert res.get('failed') is not True, res
    assert res['changed'] is True
    assert res['changes'][0] == 'create pool %s' % new_pool
    assert 'rbd pool init %s' % new_pool in res['changes']
    assert res['diff']['before'] == {}
    assert res['pool']['pg_num'] == 8 and res['pool']['rbd_initialised'] is True
    assert pool_detail(new_pool) is None, 'check mode created the pool'

    res = run_module('ceph_pool', a, diff=True)
    assert res.get('failed') is not True, res
    assert res['changed'] is True
    detail = pool_detail(new_pool)
    assert detail is not None
    assert detail['pg_num_target'] == 8 and detail['size'] == 1 and detail['min_size'] == 1
    assert detail['pg_autoscale_mode'] == 'off'
    assert 'rbd' in detail['application_metadata']
    assert rbd_info_exists(new_pool)
    assert res['pool']['pool_id'] == detail['pool_id']
    assert res['pool']['applications'] == ['rbd'] and res['pool']['rbd_initialised'] is True

    res = run_module('ceph_pool', a, diff=True)
    assert res['changed'] is False, res
    assert res['changes'] == []
    assert res['diff']['before'] == res['diff']['after']

    res = run_module('ceph_pool', a, check=True)
    assert res['changed'] is False, res


def test_change_settings_four_ways(run_module, pool):
    a = args(name=pool, pg_num=16, pgp_num=16, pg_autoscale_mode='warn')

    res = run_module('ceph_pool', a, check=True, diff=True)
    assert res['changed'] is True, res
    assert 'set pg_num 8 -> 16' in res['changes'] and 'set pgp_num 8 -> 16' in res['changes']
    assert 'set pg_autoscale_mode off -> warn' in res['changes']
    assert res['diff']['before']['pg_num'] == 8 and res['diff']['after']['pg_num'] == 16
    detail = pool_detail(pool)
    assert detail['pg_num_target'] == 8 and detail['pg_autoscale_mode'] == 'off', 'check mode changed the pool'

    res = run_module('ceph_pool', a)
    assert res['changed'] is True, res
    detail = pool_detail(pool)
    assert detail['pg_num_target'] == 16 and detail['pg_placement_num_target'] == 16
    assert detail['pg_autoscale_mode'] == 'warn'

    res = run_module('ceph_pool', a)
    assert res['changed'] is False, res
    res = run_module('ceph_pool', a, check=True)
    assert res['changed'] is False, res


def test_size_change_predicted_in_check_mode(run_module, pool):
    # applying size 2 on the one-OSD lab would make the cluster unhealthy for everyone: check mode only
    res = run_module('ceph_pool', args(name=pool, size=2, min_size=2), check=True, diff=True)
    assert res['changed'] is True, res
    assert res['changes'] == ['set size 1 -> 2', 'set min_size 1 -> 2']
    assert res['pool']['size'] == 2 and res['pool']['min_size'] == 2
    detail = pool_detail(pool)
    assert detail['size'] == 1 and detail['min_size'] == 1


def test_init_existing_bare_pool_four_ways(run_module, bare_pool):
    a = args(name=bare_pool)

    res = run_module('ceph_pool', a, check=True, diff=True)
    assert res['changed'] is True, res
    assert res['changes'] == ['enable application rbd', 'rbd pool init %s' % bare_pool]
    assert res['diff']['before']['rbd_initialised'] is False
    assert not rbd_info_exists(bare_pool)
    assert pool_detail(bare_pool)['application_metadata'] == {}

    res = run_module('ceph_pool', a)
    assert res['changed'] is True, res
    assert rbd_info_exists(bare_pool)
    assert 'rbd' in pool_detail(bare_pool)['application_metadata']

    assert run_module('ceph_pool', a)['changed'] is False
    assert run_module('ceph_pool', a, check=True)['changed'] is False


def test_min_size_above_size_fails_before_anything(run_module, new_pool):
    res = run_module('ceph_pool', args(name=new_pool, size=1, min_size=2))
    assert res.get('failed') is True, res
    assert 'min_size (2) must not be greater than size (1)' in res['msg']
    assert pool_detail(new_pool) is None


def test_min_size_above_current_size_fails_unchanged(run_module, pool):
    res = run_module('ceph_pool', args(name=pool, min_size=2, pg_num=16))
    assert res.get('failed') is True, res
    assert 'min_size (2) must not be greater than size (1)' in res['msg']
    detail = pool_detail(pool)
    assert detail['min_size'] == 1 and detail['pg_num_target'] == 8


def test_invalid_name_fails(run_module, ceph):
    res = run_module('ceph_pool', args(name='bad/name'))
    assert res.get('failed') is True, res
    assert 'invalid pool name' in res['msg']
    assert pool_detail('bad/name') is None


def test_absent_is_not_supported(run_module, pool):
    res = run_module('ceph_pool', args(name=pool, state='absent'))
    assert res.get('failed') is True, res
    assert 'state' in res['msg']
    assert pool_detail(pool) is not None
