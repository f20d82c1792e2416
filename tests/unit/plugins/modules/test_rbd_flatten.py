# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rbd_flatten: selection, waves, space decision, check mode and idempotence, with a fake RBD backend."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils import rbd as rbdu
from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError
from ansible_collections.fastboot.cloud.plugins.modules import rbd_flatten as mod

IMG = '3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38'
VM = '6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10'
VOL = '9b1c4e2a-7d3f-4a6b-8e5c-1f2a3b4c5d6e'
GIB = 1024 ** 3


def parent(pool, image, snap='snap'):
    return {'pool': pool, 'pool_namespace': '', 'image': image, 'snapshot': snap,
            'spec': '%s/%s@%s' % (pool, image, snap)}


class FakeRbd(rbdu.RbdBackend):
    """images: {(pool, image): parent or None}; every clone overlaps 1 GiB and owns ``used`` bytes."""

    name = 'fake'

    def __init__(self, images, used=0, avail=100 * GIB, quota=0, stored=0, fail=()):
        self.images = dict(images)
        self.used = used
        self.space = {'max_avail': avail, 'stored': stored, 'quota_max_bytes': quota}
        self.fail = fail
        self.flattened = []

    def info(self, pool, image):
        if (pool, image) not in self.images:
            raise rbdu.ImageNotFound(pool, image)
        par = self.images[(pool, image)]
        return {'pool': pool, 'image': image, 'spec': pool + '/' + image, 'size': 10 * GIB, 'features': [],
                'parent': par, 'overlap': GIB if par else 0}

    def children(self, pool, image, snapshot, deep=True):
        want = {'images/%s@snap' % IMG}
        found = []
        changed = True
        while changed:
            changed = False
            for (p, i), par in sorted(self.images.items()):
                if par and par['spec'] in want and p + '/' + i not in [c['spec'] for c in found]:
                    found.append({'pool': p, 'pool_namespace': '', 'image': i, 'spec': p + '/' + i, 'trash': False})
                    want.add(p + '/' + i + '@s')
                    changed = True
        return found

    def usage(self, pool, image):
        return {'provisioned': 10 * GIB, 'used': self.used}

    def flatten(self, pool, image):
        if image in self.fail:
            raise rbdu.CephError('boom')
        had = self.images[(pool, image)] is not None
        self.images[(pool, image)] = None
        self.flattened.append(pool + '/' + image)
        return had

    def pool_space(self, pool):
        stats = {'max_avail': self.space['max_avail'], 'stored': self.space['stored']}
        quota = {'quota_max_bytes': self.space['quota_max_bytes'], 'current_num_bytes': self.space['stored']}
        return rbdu.parse_pool_space({'pools': [{'name': pool, 'stats': stats}]}, quota, pool)


def lab(**kw):
    return FakeRbd({
        ('vms', VM + '_disk'): parent('images', IMG),
        ('volumes', 'volume-' + VOL): None,
        ('volumes', 'volume-a'): parent('images', IMG),
        ('volumes', 'volume-b'): parent('volumes', 'volume-a', 's'),
    }, **kw)


def params(**kw):
    base = dict(disks=[], instances=[], volumes=[], image_id=None, images_pool='images', vms_pool='vms',
                volumes_pool='volumes', snapshot='snap', concurrency=2, check_space=True)
    base.update(kw)
    return base


def run(client, check_mode=False, **kw):
    warnings = []
    result, problem = mod.flatten(client, params(**kw), check_mode, warnings.append, lambda text: None)
    return result, problem, warnings


def test_check_mode_lists_and_changes_nothing():
    client = lab(used=GIB // 4)
    result, problem, dummy = run(client, check_mode=True, instances=[VM.upper()], volumes=[VOL])
    assert problem is None and client.flattened == []
    assert result['changed'] is True and result['flattened'] == ['vms/%s_disk' % VM]
    first, second = result['disks']
    assert first['action'] == 'flatten' and first['used_bytes'] == GIB // 4 and first['needed_bytes'] == 3 * GIB // 4
    assert first['before']['parent']['spec'] == 'images/%s@snap' % IMG and first['before']['status'] == 'clone'
    assert first['after']['parent'] is None and first['after']['status'] == 'full_copy'
    assert set(first['before']) == set(['spec', 'pool', 'image', 'exists', 'is_clone', 'parent', 'overlap', 'size',
                                        'expected_parent', 'parent_matches', 'status'])
    assert second['action'] == 'none' and second['needed_bytes'] == 0 and second['used_bytes'] is None
    assert result['needed_bytes'] == {'vms': 3 * GIB // 4}


def test_apply_then_repeat_is_idempotent():
    client = lab()
    result, problem, dummy = run(client, instances=[VM])
    assert problem is None and result['changed'] is True and client.flattened == ['vms/%s_disk' % VM]
    assert result['disks'][0]['seconds'] is not None and result['disks'][0]['after']['parent'] is None
    again, problem, dummy = run(client, instances=[VM])
    assert problem is None and again['changed'] is False and again['flattened'] == []
    assert mod.parents_diff(again['disks']) == {'before': {'vms/%s_disk' % VM: None}, 'after': {'vms/%s_disk' % VM: None}}


def test_image_id_selects_the_chain_parents_first():
    client = lab()
    result, problem, dummy = run(client, image_id=IMG, concurrency=4)
    assert problem is None
    assert [(d['spec'], d['wave']) for d in result['disks']] == [
        ('vms/%s_disk' % VM, 0), ('volumes/volume-a', 0), ('volumes/volume-b', 1)]
    assert client.flattened.index('volumes/volume-b') == 2


def test_refuses_without_space_naming_needed_and_available():
    client = lab(avail=GIB // 2)
    result, problem, dummy = run(client, instances=[VM])
    assert client.flattened == [] and result['changed'] is False
    assert 'pool vms needs %d bytes' % GIB in problem and 'has %d available' % (GIB // 2) in problem
    # no check: goes ahead
    result, problem, dummy = run(client, instances=[VM], check_space=False)
    assert problem is None and client.flattened


def test_quota_lowers_the_available_space():
    client = lab(quota=GIB + 10, stored=20)
    result, problem, dummy = run(client, check_mode=True, instances=[VM])
    assert result['space']['vms']['available'] == GIB - 10 and 'quota %d bytes' % (GIB + 10) in problem


def test_missing_disk_fails_before_flattening():
    client = lab()
    with pytest.raises(InputError, match='vms/nope do not exist|do not exist.*vms/nope'):
        run(client, disks=['vms/nope', 'vms/%s_disk' % VM])
    assert client.flattened == []


def test_a_failed_flatten_skips_later_waves():
    client = lab(fail=('volume-a',))
    result, problem, dummy = run(client, image_id=IMG)
    assert 'volumes/volume-a: boom' in problem and 'volumes/volume-b: skipped' in problem
    assert 'volumes/volume-b' not in client.flattened and result['flattened'] == ['vms/%s_disk' % VM]


@pytest.mark.parametrize('bad', [dict(instances=['nope']), dict(disks=['vms']), dict(vms_pool='-x', instances=[VM])])
def test_bad_input_is_refused(bad):
    with pytest.raises(InputError):
        mod.selected_targets(None, params(**bad), None)
