# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rbd_clone_verify: classification, validation and fail/warn, with a fake RBD backend."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fastboot.cloud.plugins.module_utils import rbd as rbdu
from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError
from ansible_collections.fastboot.cloud.plugins.modules import rbd_clone_verify as mod

IMG = '3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38'
OTHER = '11111111-2222-3333-4444-555555555555'
VM = '6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10'
VOL = '9b1c4e2a-7d3f-4a6b-8e5c-1f2a3b4c5d6e'
GIB = 1024 ** 3


def parent(pool, image, snap='snap'):
    return {'pool': pool, 'pool_namespace': '', 'image': image, 'snapshot': snap,
            'spec': '%s/%s@%s' % (pool, image, snap)}


class FakeRbd(rbdu.RbdBackend):
    name = 'fake'

    def __init__(self, images, pools=('vms', 'volumes', 'images')):
        self.images = images  # {(pool, image): parent or None}
        self.pools = pools
        self.closed = False

    def close(self):
        self.closed = True

    def pool_exists(self, pool):
        return pool in self.pools

    def info(self, pool, image):
        if pool not in self.pools:
            raise rbdu.PoolNotFound(pool)
        if (pool, image) not in self.images:
            raise rbdu.ImageNotFound(pool, image)
        par = self.images[(pool, image)]
        return {'pool': pool, 'image': image, 'spec': pool + '/' + image, 'size': 10 * GIB, 'features': [],
                'parent': par, 'overlap': GIB if par else 0}


LAB = FakeRbd({
    ('vms', VM + '_disk'): parent('images', IMG),
    ('volumes', 'volume-' + VOL): None,
    ('vms', 'other_disk'): parent('images', OTHER),
    ('vms', 'nested_disk'): parent('vms', VM + '_disk', 'snap2'),
})


def params(**kw):
    base = dict(disks=[], instances=[], volumes=[], image_id=None, images_pool='images', vms_pool='vms',
                volumes_pool='volumes', snapshot='snap', on_full_copy='fail')
    base.update(kw)
    return base


def by_spec(result):
    return dict((d['spec'], d) for d in result['disks'])


def test_clone_of_the_expected_image():
    result, problems = mod.verify(LAB, params(instances=[VM], image_id=IMG))
    disk = result['disks'][0]
    assert problems == []
    assert disk == {'spec': 'vms/%s_disk' % VM, 'pool': 'vms', 'image': VM + '_disk', 'exists': True,
                    'is_clone': True, 'parent': {'pool': 'images', 'image': IMG, 'snapshot': 'snap',
                                                 'spec': 'images/%s@snap' % IMG},
                    'overlap': GIB, 'size': 10 * GIB, 'expected_parent': 'images/%s@snap' % IMG,
                    'parent_matches': True, 'status': 'clone'}
    assert result['clones'] == 1 and result['all_clones'] is True and result['full_copies'] == []
    assert result['backend'] == 'fake' and result['changed'] is False


def test_statuses_of_a_mixed_set():
    result, problems = mod.verify(LAB, params(instances=[VM], volumes=[VOL.upper()], image_id=IMG,
                                              disks=['vms/other_disk', 'vms/gone_disk', 'nopool/x']))
    disks = by_spec(result)
    assert [d['spec'] for d in result['disks']] == ['vms/other_disk', 'vms/gone_disk', 'nopool/x',
                                                    'vms/%s_disk' % VM, 'volumes/volume-' + VOL]
    assert disks['vms/other_disk']['status'] == 'wrong_parent'
    assert disks['vms/other_disk']['parent_matches'] is False
    full = disks['volumes/volume-' + VOL]
    assert full['status'] == 'full_copy' and full['parent'] is None and full['overlap'] == 0
    assert full['parent_matches'] is None and full['is_clone'] is False and full['exists'] is True
    gone = disks['vms/gone_disk']
    assert gone['status'] == 'missing' and gone['exists'] is False and gone['size'] is None and gone['overlap'] is None
    assert disks['nopool/x']['status'] == 'missing'
    assert result['clones'] == 1 and result['all_clones'] is False
    assert result['full_copies'] == ['volumes/volume-' + VOL]
    text = '\n'.join(problems)
    assert len(problems) == 4
    assert 'flattened clone (rbd cannot tell them apart)' in text
    assert 'clone of images/%s@snap, expected images/%s@snap' % (OTHER, IMG) in text
    assert 'pool nopool does not exist' in text
    assert 'vms/gone_disk (missing: does not exist)' in text
    assert all('reason' not in d for d in result['disks'])


def test_without_image_id_any_parent_in_the_images_pool_at_snap_is_a_clone():
    result, dummy = mod.verify(LAB, params(disks=['vms/other_disk', 'vms/nested_disk']))
    disks = by_spec(result)
    assert disks['vms/other_disk']['status'] == 'clone' and disks['vms/other_disk']['expected_parent'] is None
    assert disks['vms/nested_disk']['status'] == 'wrong_parent'
    assert disks['vms/nested_disk']['parent_matches'] is False


def test_duplicates_are_checked_once():
    result, dummy = mod.verify(LAB, params(instances=[VM, VM.upper()], disks=['vms/%s_disk' % VM]))
    assert len(result['disks']) == 1


@pytest.mark.parametrize('kw, option, value', [
    (dict(instances=['not-a-uuid']), 'instances', 'not-a-uuid'),
    (dict(volumes=['1234']), 'volumes', '1234'),
    (dict(instances=[VM], image_id='cirros'), 'image_id', 'cirros'),
    (dict(disks=['vms']), None, 'vms'),
    (dict(disks=['vms/a@snap']), None, 'vms/a@snap'),
    (dict(disks=['vms/x'], vms_pool='bad pool'), 'vms_pool', 'bad pool'),
    (dict(disks=['vms/x'], snapshot='-x'), 'snapshot', '-x'),
])
def test_bad_input_names_the_value(kw, option, value):
    with pytest.raises(InputError) as exc:
        mod.verify(LAB, params(**kw))
    assert repr(value) in exc.value.msg
    if option:
        assert option in exc.value.msg


def run_main(monkeypatch, capsys, tmp_path, client=LAB, **args):
    conf = tmp_path / 'ceph.conf'
    conf.write_text('[global]\n')
    opened = {}

    def fake_open(module, backend, ceph_conf, ceph_user, keyring):
        opened.update(backend=backend, ceph_conf=ceph_conf, ceph_user=ceph_user, keyring=keyring)
        return client

    monkeypatch.setattr(mod, 'open_rbd', fake_open)
    args.setdefault('ceph_conf', str(conf))
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            mod.main()
    out = json.loads(capsys.readouterr().out)
    out['_rc'] = exc.value.code
    out['_opened'] = opened
    return out


def test_main_succeeds_when_all_are_clones(monkeypatch, capsys, tmp_path):
    out = run_main(monkeypatch, capsys, tmp_path, instances=[VM], image_id=IMG, backend='cli', ceph_user='nova')
    assert out['_rc'] == 0 and not out.get('failed')
    assert out['all_clones'] is True and out['changed'] is False
    assert out['_opened']['backend'] == 'cli' and out['_opened']['ceph_user'] == 'nova'
    assert LAB.closed


def test_main_fails_on_a_full_copy_by_default(monkeypatch, capsys, tmp_path):
    out = run_main(monkeypatch, capsys, tmp_path, instances=[VM], volumes=[VOL])
    assert out['failed'] is True
    assert '1 of 2 disk(s)' in out['msg'] and 'volumes/volume-%s (full_copy' % VOL in out['msg']
    assert out['full_copies'] == ['volumes/volume-' + VOL] and len(out['disks']) == 2


def test_main_warns_with_on_full_copy_warn(monkeypatch, capsys, tmp_path):
    out = run_main(monkeypatch, capsys, tmp_path, instances=[VM], volumes=[VOL], on_full_copy='warn')
    assert not out.get('failed')
    # 2.19 returns warnings as WarningSummary dicts; older cores as strings
    assert 'volumes/volume-%s (full_copy' % VOL in json.dumps(out['warnings'])
    assert out['all_clones'] is False


def test_main_needs_something_to_check(monkeypatch, capsys, tmp_path):
    out = run_main(monkeypatch, capsys, tmp_path)
    assert out['failed'] and 'nothing to check' in out['msg']


def test_main_bad_uuid_fails_before_connecting(monkeypatch, capsys, tmp_path):
    out = run_main(monkeypatch, capsys, tmp_path, instances=['nope'])
    assert out['failed'] and "'nope' is not a UUID" in out['msg'] and out['_opened'] == {}


def test_main_missing_ceph_conf(monkeypatch, capsys, tmp_path):
    out = run_main(monkeypatch, capsys, tmp_path, instances=[VM], ceph_conf=str(tmp_path / 'nope.conf'))
    assert out['failed'] and 'nope.conf does not exist' in out['msg']


def test_main_check_mode_gives_the_same_result(monkeypatch, capsys, tmp_path):
    normal = run_main(monkeypatch, capsys, tmp_path, instances=[VM], on_full_copy='warn')
    check = run_main(monkeypatch, capsys, tmp_path, instances=[VM], on_full_copy='warn', _ansible_check_mode=True)
    for key in ('disks', 'clones', 'full_copies', 'backend', 'all_clones', 'changed'):
        assert normal[key] == check[key]


def test_main_python_backend_without_bindings(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(mod, 'HAS_RBD', False)
    out = run_main(monkeypatch, capsys, tmp_path, instances=[VM], backend='python')
    assert out['failed'] and 'python3-rbd' in out['msg']
