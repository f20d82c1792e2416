# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rbd_image_retire: refusal, plan, ordering and Glance (fake openstacksdk connection), with a fake RBD backend."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.fastboot.cloud.plugins.module_utils import rbd as rbdu
from ansible_collections.fastboot.cloud.plugins.modules import rbd_image_retire as mod

IMG = '3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38'
VM = '6f1b2b43-2c1e-4a2f-9a64-5d1a3c8b7e10'
GIB = 1024 ** 3


class FakeRbd(rbdu.RbdBackend):
    """One Glance image images/IMG with snapshot snap and clones {(pool, image): parent spec}."""

    name = 'fake'

    def __init__(self, clones=None, protected=True, exists=True, busy=()):
        self.image = exists
        self.snaps = {'snap': protected} if exists else {}
        self.clones = dict(clones or {})
        self.busy = busy
        self.log = []

    def exists(self, pool, image):
        return (pool, image) == ('images', IMG) and self.image

    def info(self, pool, image):
        if (pool, image) not in self.clones:
            raise rbdu.ImageNotFound(pool, image)
        par = self.clones[(pool, image)]
        pp, rest = par.split('/') if par else (None, None)
        parent = {'pool': pp, 'pool_namespace': '', 'image': rest.split('@')[0], 'snapshot': rest.split('@')[1],
                  'spec': par} if par else None
        return {'pool': pool, 'image': image, 'spec': pool + '/' + image, 'size': GIB, 'features': [],
                'parent': parent, 'overlap': GIB if par else 0}

    def snapshots(self, pool, image):
        return [{'name': n, 'protected': p} for n, p in sorted(self.snaps.items())]

    def children(self, pool, image, snapshot, deep=True):
        if snapshot not in self.snaps:
            raise rbdu.SnapshotNotFound(pool, image, snapshot)
        return [{'pool': p, 'pool_namespace': '', 'image': i, 'spec': p + '/' + i, 'trash': False}
                for (p, i), par in sorted(self.clones.items()) if par]

    def usage(self, pool, image):
        return {'provisioned': GIB, 'used': 0}

    def pool_space(self, pool):
        return {'max_avail': 100 * GIB, 'stored': 0, 'quota_max_bytes': 0, 'available': 100 * GIB}

    def flatten(self, pool, image):
        self.log.append(('flatten', pool + '/' + image))
        self.clones[(pool, image)] = None
        return True

    def snap_protect(self, pool, image, snapshot):
        self.log.append(('snap_protect', snapshot))
        self.snaps[snapshot] = True

    def snap_unprotect(self, pool, image, snapshot):
        if 'unprotect' in self.busy:
            raise rbdu.ImageBusy('busy')
        self.log.append(('snap_unprotect', snapshot))
        self.snaps[snapshot] = False

    def snap_remove(self, pool, image, snapshot):
        if 'snap_remove' in self.busy:
            raise rbdu.CephError('cannot remove')
        self.log.append(('snap_remove', snapshot))
        del self.snaps[snapshot]

    def remove(self, pool, image):
        self.log.append(('remove', image))
        self.image = False


class NotFound(Exception):
    status_code = 404


class FakeImageProxy(object):
    def __init__(self, rbd_client, images, fail=None):
        self.rbd_client = rbd_client
        self.images = set(images)
        self.fail = fail
        self.calls = []

    def get_image(self, image_id):
        self.calls.append(('get_image', image_id))
        if image_id not in self.images:
            raise NotFound('No Image found for %s' % image_id)
        return {'id': image_id}

    def delete_image(self, image_id, ignore_missing=True):
        self.calls.append(('delete_image', image_id, ignore_missing))
        if self.fail:
            # Glance's store unprotects the snapshot, then fails
            self.rbd_client.snaps['snap'] = False
            raise Exception(self.fail)  # pylint: disable=broad-exception-raised
        self.images.discard(image_id)
        # the Glance RBD store removes the snapshot and the image itself
        self.rbd_client.snaps.clear()
        self.rbd_client.image = False


class FakeConnection(object):
    def __init__(self, image):
        self.image = image


def params(**kw):
    base = dict(image_id=IMG, images_pool='images', snapshot='snap', flatten_clones=False, concurrency=2,
                check_space=True)
    base.update(kw)
    return base


CLONES = {('vms', VM + '_disk'): 'images/%s@snap' % IMG, ('volumes', 'volume-a'): 'images/%s@snap' % IMG,
          ('volumes', 'volume-b'): 'volumes/volume-a@s'}


def test_refuses_with_the_list_of_clones_and_changes_nothing():
    client = FakeRbd(CLONES)
    for check in (True, False):
        result, problem = mod.retire(client, params(), check)
        assert '3 dependent clone(s)' in problem and 'vms/%s_disk' % VM in problem and 'volumes/volume-b' in problem
        assert result['done'] == [] and client.log == []


def test_plan_in_check_mode():
    client = FakeRbd(CLONES)
    result, problem = mod.retire(client, params(flatten_clones=True), True)
    assert problem is None and client.log == [] and result['changed'] is True
    assert [(s['action'], s['target']) for s in result['plan']] == [
        ('flatten', 'vms/%s_disk' % VM), ('flatten', 'volumes/volume-a'), ('flatten', 'volumes/volume-b'),
        ('snap_unprotect', 'images/%s@snap' % IMG), ('snap_remove', 'images/%s@snap' % IMG),
        ('remove', 'images/%s' % IMG)]
    assert result['clones'][0]['before']['parent']['spec'] == 'images/%s@snap' % IMG


def test_flatten_then_delete_in_order_and_rerun_is_ok():
    client = FakeRbd(CLONES)
    result, problem = mod.retire(client, params(flatten_clones=True), False)
    assert problem is None
    assert [a for a, t in client.log] == ['flatten', 'flatten', 'flatten', 'snap_unprotect', 'snap_remove', 'remove']
    assert all(c['after']['parent'] is None for c in result['clones'])
    again, problem = mod.retire(client, params(flatten_clones=True), False)
    assert problem is None and again['plan'] == [] and again['exists'] is False


def test_failed_snapshot_removal_protects_it_again():
    client = FakeRbd(busy=('snap_remove',))
    result, problem = mod.retire(client, params(), False)
    assert 'protected again' in problem and client.snaps == {'snap': True} and client.image is True
    assert ('remove', IMG) not in client.log


def test_glance_deletes_after_flattening():
    client = FakeRbd(CLONES)
    images = FakeImageProxy(client, [IMG])
    glance = mod.Glance(FakeConnection(images))
    result, problem = mod.retire(client, params(flatten_clones=True), False, glance)
    assert problem is None
    assert [s['action'] for s in result['plan']][-1] == 'glance_delete'
    assert images.calls[-1] == ('delete_image', IMG, True) and result['glance'] == {
        'used': True, 'found': True, 'deleted': True}
    # RBD was left to Glance: the module removed nothing itself
    assert [a for a, t in client.log] == ['flatten'] * 3
    again, problem = mod.retire(client, params(flatten_clones=True), False, glance)
    assert problem is None and again['plan'] == [] and again['glance']['found'] is False


def test_glance_failure_reprotects_and_rerun_completes():
    client = FakeRbd(CLONES)
    images = FakeImageProxy(client, [IMG], fail='409 Conflict: image in use')
    glance = mod.Glance(FakeConnection(images))
    result, problem = mod.retire(client, params(flatten_clones=True), False, glance)
    assert 'Glance refused to delete' in problem and 'protected again' in problem and 're-run' in problem
    assert client.snaps == {'snap': True} and client.image is True
    images.fail = None
    result, problem = mod.retire(client, params(flatten_clones=True), False, glance)
    assert problem is None and result['glance']['deleted'] is True and client.image is False


def test_glance_gone_but_rbd_data_left_is_removed_directly():
    client = FakeRbd()
    warnings = []
    glance = mod.Glance(FakeConnection(FakeImageProxy(client, [])))
    result, problem = mod.retire(client, params(), False, glance, warnings.append)
    assert problem is None and client.image is False and 'Glance has no image' in warnings[0]


def test_secret_values_and_connect_args(monkeypatch):
    assert sorted(mod.secret_values({'auth': {'password': 'pw', 'username': 'u'}, 'token': 't'})) == ['pw', 't']
    calls = []

    class FakeOpenstack(object):
        @staticmethod
        def connect(**kw):
            calls.append(kw)
            return 'conn'

    monkeypatch.setattr(mod, 'openstack', FakeOpenstack)
    mod.connect_glance('lab')
    mod.connect_glance({'auth_url': 'http://k', 'password': 'pw'})
    mod.connect_glance({'auth': {'auth_url': 'http://k'}, 'region_name': 'r'})
    assert calls == [{'cloud': 'lab'}, {'auth': {'auth_url': 'http://k', 'password': 'pw'}},
                     {'auth': {'auth_url': 'http://k'}, 'region_name': 'r'}]
