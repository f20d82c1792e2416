"""ceph_pool decisions and the shared Ceph parsing, with fakes (no cluster)."""
import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils.ceph import CephCli, parse_pool_detail
from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError
from ansible_collections.fastboot.cloud.plugins.modules import ceph_pool

DETAIL = [
    {'pool_id': 1, 'pool_name': 'device_health_metrics', 'size': 1, 'min_size': 1, 'pg_num': 1,
     'pg_placement_num': 1, 'pg_num_target': 1, 'pg_placement_num_target': 1, 'pg_autoscale_mode': 'off',
     'application_metadata': {'mgr_devicehealth': {}}},
    {'pool_id': 4, 'pool_name': 'images', 'size': 3, 'min_size': 2, 'pg_num': 8, 'pg_placement_num': 8,
     'pg_num_target': 16, 'pg_placement_num_target': 16, 'pg_autoscale_mode': 'warn',
     'application_metadata': {'rbd': {}}},
]


def params(**kw):
    base = dict(name='images', state='present', pg_num=None, pgp_num=None, pg_autoscale_mode=None, size=None,
                min_size=None, application='rbd', rbd_init=True, ceph_conf='/etc/ceph/ceph.conf',
                ceph_user='admin', ceph_keyring=None)
    base.update(kw)
    return base


def current(**kw):
    pool = parse_pool_detail(DETAIL, 'images')
    pool.update(kw)
    return pool


class FakeRunner(object):
    def __init__(self, results=None):
        self.calls = []
        self.results = list(results or [])

    def run(self, argv, check=True, data=None, what=None):
        self.calls.append(argv)
        rc, out, err = self.results.pop(0) if self.results else (0, '', '')
        if check and rc != 0:
            raise CommandError('failed', cmd=argv, rc=rc)
        return rc, out, err

    def run_json(self, argv, what=None):
        self.calls.append(argv)
        return DETAIL


def test_parse_pool_detail_uses_targets():
    pool = parse_pool_detail(DETAIL, 'images')
    assert pool == dict(name='images', pool_id=4, size=3, min_size=2, pg_num=16, pgp_num=16,
                        pg_autoscale_mode='warn', applications=['rbd'])
    assert parse_pool_detail(DETAIL, 'nope') is None


def test_parse_pool_detail_rejects_non_list():
    with pytest.raises(CommandError):
        parse_pool_detail({'pool_name': 'x'}, 'x')


def test_ceph_argv_has_conf_identity_keyring_timeout_json():
    cli = CephCli(FakeRunner(), conf='/c.conf', user='glance', keyring='/k')
    assert cli.ceph_argv('osd', 'pool', 'ls') == [
        'ceph', '--conf', '/c.conf', '--name', 'client.glance', '--keyring', '/k', '--connect-timeout', '30',
        '--format', 'json', 'osd', 'pool', 'ls']
    assert CephCli(FakeRunner(), user='client.admin').rados_argv('lspools')[:5] == [
        'rados', '--conf', '/etc/ceph/ceph.conf', '--name', 'client.admin']


def test_rbd_initialised_reads_rbd_info():
    assert CephCli(FakeRunner([(0, 'p/rbd_info mtime', '')])).rbd_initialised('p') is True
    missing = (1, '', ' error stat-ing p/rbd_info: (2) No such file or directory')
    assert CephCli(FakeRunner([missing])).rbd_initialised('p') is False
    with pytest.raises(CommandError):
        CephCli(FakeRunner([(1, '', 'error connecting to the cluster')])).rbd_initialised('p')


@pytest.mark.parametrize('name', ['', 'bad/name', 'with space', '-dash', '..', 'x' * 128])
def test_invalid_names(name):
    with pytest.raises(InputError, match='invalid pool name'):
        ceph_pool.validate(params(name=name))


def test_min_size_above_size():
    with pytest.raises(InputError, match=r'min_size \(3\) must not be greater than size \(2\)'):
        ceph_pool.validate(params(size=2, min_size=3))
    with pytest.raises(InputError, match=r'min_size \(4\) must not be greater than size \(3\)'):
        ceph_pool.validate(params(min_size=4), current())
    ceph_pool.validate(params(min_size=3), current())


def test_pgp_num_above_pg_num():
    with pytest.raises(InputError, match='pgp_num'):
        ceph_pool.validate(params(pg_num=8, pgp_num=16))
    with pytest.raises(InputError, match='pgp_num'):
        ceph_pool.validate(params(pgp_num=32), current())


def test_other_application_refused():
    with pytest.raises(InputError, match='already has application'):
        ceph_pool.validate(params(), current(applications=['cephfs']))


def test_new_pool_plan():
    actions, after = ceph_pool.plan(params(pg_num=32, size=3, pg_autoscale_mode='off'), None, None)
    assert [a['desc'] for a in actions] == ['create pool images', 'set size 3', 'set pg_autoscale_mode off',
                                            'enable application rbd', 'rbd pool init images']
    assert actions[0]['args'] == ['osd', 'pool', 'create', 'images', '32']
    assert after['pg_num'] == 32 and after['pgp_num'] == 32 and after['rbd_initialised'] is True


def test_existing_pool_in_sync_is_a_noop():
    actions, after = ceph_pool.plan(params(pg_num=16, pgp_num=16, size=3, min_size=2), current(), True)
    assert actions == []
    assert after['rbd_initialised'] is True


def test_lowering_size_lowers_min_size_first():
    actions, dummy = ceph_pool.plan(params(size=1, min_size=1), current(), True)
    assert [a['desc'] for a in actions] == ['set min_size 2 -> 1', 'set size 3 -> 1']
    assert actions[1]['args'][-1] == '--yes-i-really-mean-it'


def test_raising_size_raises_size_first():
    actions, dummy = ceph_pool.plan(params(size=4, min_size=4), current(size=3, min_size=2), True)
    assert [a['desc'] for a in actions] == ['set size 3 -> 4', 'set min_size 2 -> 4']


def test_pg_order():
    up, dummy = ceph_pool.plan(params(pg_num=32, pgp_num=32), current(), True)
    assert [a['desc'] for a in up] == ['set pg_num 16 -> 32', 'set pgp_num 16 -> 32']
    down, dummy = ceph_pool.plan(params(pg_num=8, pgp_num=8), current(), True)
    assert [a['desc'] for a in down] == ['set pgp_num 16 -> 8', 'set pg_num 16 -> 8']


def test_init_only_when_needed_and_asked():
    actions, after = ceph_pool.plan(params(), current(), False)
    assert [a['desc'] for a in actions] == ['rbd pool init images']
    actions, after = ceph_pool.plan(params(rbd_init=False), current(), False)
    assert actions == [] and after['rbd_initialised'] is False


def test_other_application_is_not_rbd_initialised():
    actions, after = ceph_pool.plan(params(name='m', application='rgw'), None, None)
    assert [a['desc'] for a in actions] == ['create pool m', 'enable application rgw']
    assert after['rbd_initialised'] is None
