"""rbd_clone_verify against the real lab Ceph, with both backends (python3-rbd and the rbd CLI).

In a fresh pool (standing in for Glance's `images`, Nova's `vms` and Cinder's `volumes`): a written image
snapshotted and protected as Glance does, a Nova-style clone of it and a full `rbd cp` copy.
"""
import json
import os
import subprocess
import uuid

import pytest

from labutil import CEPH_CONF, SYS_PATH, sh

from ansible_collections.fastboot.cloud.plugins.module_utils import rbd as rbdu

BACKENDS = ['python', 'cli']
MIB = 1024 ** 2


@pytest.fixture()
def lab(pool):
    """{pool, image_id, instance, volume}: images/<image_id>@snap (protected), its clone <instance>_disk and
    volume-<volume>, a full copy. All in the test's own pool."""
    ids = dict(pool=pool, image_id=str(uuid.uuid4()), instance=str(uuid.uuid4()), volume=str(uuid.uuid4()))
    base = '%s/%s' % (pool, ids['image_id'])
    sh(['rbd', 'create', '--size', '64M', base])
    sh(['rbd', 'bench', '--io-type', 'write', '--io-pattern', 'seq', '--io-total', '8M', base])
    sh(['rbd', 'snap', 'create', base + '@snap'])
    sh(['rbd', 'snap', 'protect', base + '@snap'])  # as Glance's RBD store does
    sh(['rbd', 'clone', base + '@snap', '%s/%s_disk' % (pool, ids['instance'])])  # as Nova does
    sh(['rbd', 'cp', '--no-progress', base, '%s/volume-%s' % (pool, ids['volume'])])  # a full copy
    return ids


def args(lab, backend, **kw):
    a = dict(ceph_conf=CEPH_CONF, backend=backend, images_pool=lab['pool'], vms_pool=lab['pool'],
             volumes_pool=lab['pool'])
    a.update(kw)
    return a


def by_spec(result):
    return dict((d['spec'], d) for d in result['disks'])


@pytest.mark.parametrize('backend', BACKENDS)
def test_clone_and_full_copy(lab, run_module, backend):
    pool = lab['pool']
    clone_spec = '%s/%s_disk' % (pool, lab['instance'])
    copy_spec = '%s/volume-%s' % (pool, lab['volume'])
    parent_spec = '%s/%s@snap' % (pool, lab['image_id'])
    truth = json.loads(sh(['rbd', 'info', '--format', 'json', clone_spec]).stdout)

    # only the clone, with the expected image: success
    ok = run_module('rbd_clone_verify', args(lab, backend, instances=[lab['instance']], image_id=lab['image_id']))
    assert not ok.get('failed'), ok
    assert ok['backend'] == backend and ok['changed'] is False and ok['all_clones'] is True and ok['clones'] == 1
    disk = ok['disks'][0]
    assert disk['spec'] == clone_spec and disk['status'] == 'clone' and disk['is_clone'] and disk['exists']
    assert disk['parent'] == {'pool': pool, 'image': lab['image_id'], 'snapshot': 'snap', 'spec': parent_spec}
    assert disk['expected_parent'] == parent_spec and disk['parent_matches'] is True
    assert disk['overlap'] == truth['parent']['overlap'] == 64 * MIB
    assert disk['size'] == 64 * MIB

    # clone + full copy: fails by default, naming the copy and saying rbd cannot tell copy from flattened clone
    bad = run_module('rbd_clone_verify', args(lab, backend, instances=[lab['instance']], volumes=[lab['volume']]))
    assert bad.get('failed'), bad
    assert copy_spec in bad['msg'] and 'cannot tell' in bad['msg'] and clone_spec + ' (' not in bad['msg']
    assert bad['full_copies'] == [copy_spec] and bad['all_clones'] is False and bad['clones'] == 1
    copy = by_spec(bad)[copy_spec]
    assert copy['status'] == 'full_copy' and copy['parent'] is None and copy['is_clone'] is False
    assert copy['overlap'] == 0 and copy['size'] == 64 * MIB and copy['parent_matches'] is None

    # on_full_copy=warn: succeeds with a warning; check mode gives the same answer
    warn_args = args(lab, backend, instances=[lab['instance']], volumes=[lab['volume']], on_full_copy='warn')
    warned = run_module('rbd_clone_verify', warn_args)
    assert not warned.get('failed'), warned
    assert copy_spec in json.dumps(warned.get('warnings')) and warned['full_copies'] == [copy_spec]
    checked = run_module('rbd_clone_verify', warn_args, check=True)
    assert not checked.get('failed') and checked['changed'] is False
    for key in ('disks', 'clones', 'full_copies', 'backend', 'all_clones'):
        assert checked[key] == warned[key], key


@pytest.mark.parametrize('backend', BACKENDS)
def test_wrong_parent_and_missing(lab, run_module, backend):
    pool = lab['pool']
    other = str(uuid.uuid4())
    result = run_module('rbd_clone_verify', args(
        lab, backend, image_id=other, instances=[lab['instance']], on_full_copy='warn',
        disks=['%s/no-such-disk' % pool, 'no-such-pool-%s/x' % uuid.uuid4().hex[:6]]), check=True)
    assert not result.get('failed'), result
    disks = result['disks']
    assert [d['status'] for d in disks] == ['missing', 'missing', 'wrong_parent']
    assert disks[0]['exists'] is False and disks[0]['parent'] is None and disks[0]['size'] is None
    wrong = disks[2]
    assert wrong['expected_parent'] == '%s/%s@snap' % (pool, other) and wrong['parent_matches'] is False
    assert wrong['parent']['image'] == lab['image_id']
    assert result['clones'] == 0 and result['all_clones'] is False and result['full_copies'] == []
    text = json.dumps(result['warnings'])
    assert 'does not exist' in text and 'wrong_parent' in text

    failed = run_module('rbd_clone_verify', args(lab, backend, image_id=other, instances=[lab['instance']]))
    assert failed.get('failed') and 'expected %s/%s@snap' % (pool, other) in failed['msg']


def test_bad_uuid_is_a_clear_error(ceph, run_module):
    result = run_module('rbd_clone_verify', dict(ceph_conf=CEPH_CONF, instances=['not-a-uuid']))
    assert result.get('failed') and "instances: 'not-a-uuid' is not a UUID" in result['msg']
    result = run_module('rbd_clone_verify', dict(ceph_conf=CEPH_CONF, disks=['vms/a@snap']))
    assert result.get('failed') and "'vms/a@snap'" in result['msg']


class SubprocessRunner(object):
    """The bit of common.Runner that CliRbd uses, on subprocess (no AnsibleModule in a test)."""

    def run(self, argv, check=True, data=None, what=None):
        env = dict(os.environ, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize('backend', BACKENDS)
def test_helper_children_and_errors(lab, backend):
    """module_utils.rbd on the real cluster: both backends give the same answers."""
    pool = lab['pool']
    grandchild = '%s/grandchild' % pool
    clone = '%s/%s_disk' % (pool, lab['instance'])
    sh(['rbd', 'snap', 'create', clone + '@s2'])
    sh(['rbd', 'snap', 'protect', clone + '@s2'])
    sh(['rbd', 'clone', clone + '@s2', grandchild])
    if backend == 'python':
        client = rbdu.PythonRbd(CEPH_CONF)
    else:
        client = rbdu.CliRbd(SubprocessRunner(), CEPH_CONF)
    with client:
        assert client.name == backend
        deep = client.children(pool, lab['image_id'], 'snap')
        assert sorted(c['spec'] for c in deep) == sorted([clone, grandchild])
        assert [c['spec'] for c in client.children(pool, lab['image_id'], 'snap', deep=False)] == [clone]
        assert client.list_images(pool) == sorted([lab['image_id'], lab['instance'] + '_disk',
                                                   'volume-' + lab['volume'], 'grandchild'])
        assert client.info(pool, 'grandchild')['parent']['spec'] == clone + '@s2'
        assert client.info(pool, 'volume-' + lab['volume'])['parent'] is None
        assert client.pool_exists(pool) and not client.pool_exists('no-such-pool-xyz')
        assert client.exists(pool, 'grandchild') and not client.exists(pool, 'nope')
        with pytest.raises(rbdu.ImageNotFound):
            client.info(pool, 'nope')
        with pytest.raises(rbdu.PoolNotFound):
            client.info('no-such-pool-xyz', 'x')
        with pytest.raises(rbdu.SnapshotNotFound):
            client.children(pool, lab['image_id'], 'nosnap')
