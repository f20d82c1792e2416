# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/rbd.py: the CLI backend's JSON parsing and error mapping (fake runner), names and specs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils import rbd as rbdu
from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError

# Real output of Ceph 16.2 (pacific) `rbd ... --format json`
INFO_CLONE = {
    "name": "c1_disk", "id": "10511214d2c", "size": 67108864, "objects": 16, "order": 22, "object_size": 4194304,
    "snapshot_count": 0, "block_name_prefix": "rbd_data.10511214d2c", "format": 2,
    "features": ["layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"], "op_features": [],
    "flags": [], "parent": {"pool": "images", "pool_namespace": "", "image": "img", "id": "10495a00337c",
                            "snapshot": "snap", "trash": False, "overlap": 33554432}}
INFO_COPY = {
    "name": "copy", "id": "1059eedfa1a", "size": 67108864, "objects": 16, "order": 22, "object_size": 4194304,
    "snapshot_count": 0, "block_name_prefix": "rbd_data.1059eedfa1a", "format": 2,
    "features": ["layering", "exclusive-lock"], "op_features": [], "flags": []}
CHILDREN = [
    {"pool": "vms", "pool_namespace": "", "image": "c1_disk", "id": "10511214d2c", "trash": False},
    {"pool": "vms", "pool_namespace": "ns1", "image": "gc", "id": "105765f31488", "trash": True}]
NO_IMAGE = 'rbd: error opening image nope: (2) No such file or directory\n'
NO_POOL = "rbd: error opening pool 'nopool': (2) No such file or directory\n"
NO_SNAP = 'rbd: snapshot does not exist.\n'


class FakeRunner(object):
    """Answers run() from a list of (rc, stdout, stderr) and records the argv of each call."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def run(self, argv, check=True, data=None, what=None):
        self.calls.append(list(argv))
        return self.answers.pop(0)


def cli(*answers, **kw):
    runner = FakeRunner(*answers)
    return rbdu.CliRbd(runner, ceph_conf='/etc/ceph/lab.conf', **kw), runner


def test_info_of_a_clone_parses_parent_and_overlap():
    client, runner = cli((0, json.dumps(INFO_CLONE), ''))
    info = client.info('vms', 'c1_disk')
    assert info == {'pool': 'vms', 'image': 'c1_disk', 'spec': 'vms/c1_disk', 'size': 67108864,
                    'features': sorted(INFO_CLONE['features']), 'overlap': 33554432,
                    'parent': {'pool': 'images', 'pool_namespace': '', 'image': 'img', 'snapshot': 'snap',
                               'spec': 'images/img@snap'}}
    argv = runner.calls[0]
    assert argv[:5] == ['rbd', '--conf', '/etc/ceph/lab.conf', '--id', 'admin']
    assert argv[-4:] == ['info', 'vms/c1_disk', '--format', 'json']
    assert '--keyring' not in argv


def test_info_of_a_full_copy_has_no_parent():
    client, dummy = cli((0, json.dumps(INFO_COPY), ''))
    info = client.info('vms', 'copy')
    assert info['parent'] is None and info['overlap'] == 0 and info['size'] == 67108864


def test_user_and_keyring_are_passed():
    client, runner = cli((0, json.dumps(INFO_COPY), ''), ceph_user='cinder', keyring='/etc/ceph/k')
    client.info('vms', 'copy')
    argv = runner.calls[0]
    assert argv[argv.index('--id') + 1] == 'cinder'
    assert argv[argv.index('--keyring') + 1] == '/etc/ceph/k'


def test_parent_in_a_namespace():
    data = dict(INFO_CLONE, parent=dict(INFO_CLONE['parent'], pool_namespace='glance'))
    client, dummy = cli((0, json.dumps(data), ''))
    assert client.info('vms', 'c1_disk')['parent']['spec'] == 'images/glance/img@snap'


@pytest.mark.parametrize('stderr, error', [(NO_IMAGE, rbdu.ImageNotFound), (NO_POOL, rbdu.PoolNotFound)])
def test_info_errors_are_typed(stderr, error):
    client, dummy = cli((2, '', stderr))
    with pytest.raises(error) as exc:
        client.info('nopool' if error is rbdu.PoolNotFound else 'vms', 'nope')
    assert isinstance(exc.value, InputError)
    assert 'does not exist' in exc.value.msg
    assert ('nopool' if error is rbdu.PoolNotFound else 'vms/nope') in exc.value.msg


def test_exists_maps_not_found_to_false():
    client, dummy = cli((0, json.dumps(INFO_COPY), ''), (2, '', NO_IMAGE), (2, '', NO_POOL))
    assert client.exists('vms', 'copy') is True
    assert client.exists('vms', 'nope') is False
    assert client.exists('nopool', 'x') is False


def test_other_failures_raise_ceph_error_with_the_last_line():
    client, dummy = cli((13, '', 'auth: noise\nrbd: couldn\'t connect to the cluster!\n'))
    with pytest.raises(rbdu.CephError) as exc:
        client.info('vms', 'x')
    assert "couldn't connect to the cluster" in exc.value.msg
    assert exc.value.details['rc'] == 13


def test_garbage_output_raises_command_error():
    client, dummy = cli((0, 'not json', ''))
    with pytest.raises(CommandError, match='not JSON'):
        client.info('vms', 'x')


def test_children_deep_and_shallow():
    client, runner = cli((0, json.dumps(CHILDREN), ''), (0, json.dumps(CHILDREN[:1]), ''))
    deep = client.children('images', 'img', 'snap')
    assert [c['spec'] for c in deep] == ['vms/c1_disk', 'vms/ns1/gc']
    assert deep[1]['trash'] is True and deep[1]['pool_namespace'] == 'ns1'
    assert runner.calls[0][-6:] == ['children', '--all', '--descendants', 'images/img@snap', '--format', 'json']
    shallow = client.children('images', 'img', 'snap', deep=False)
    assert len(shallow) == 1 and '--descendants' not in runner.calls[1]


def test_children_of_missing_snapshot_image_and_pool():
    client, dummy = cli((2, '', NO_SNAP), (2, '', NO_IMAGE), (2, '', NO_POOL))
    with pytest.raises(rbdu.SnapshotNotFound, match='images/img@nosnap does not exist'):
        client.children('images', 'img', 'nosnap')
    with pytest.raises(rbdu.ImageNotFound):
        client.children('images', 'nope', 'snap')
    with pytest.raises(rbdu.PoolNotFound):
        client.children('nopool', 'img', 'snap')


def test_list_images_and_pool_exists():
    client, dummy = cli((0, '["b", "a"]', ''), (0, '[]', ''), (2, '', NO_POOL), (0, '', ''))
    assert client.list_images('vms') == ['a', 'b']
    assert client.pool_exists('vms') is True
    assert client.pool_exists('nopool') is False
    assert client.list_images('empty') == []


@pytest.mark.parametrize('spec, expected', [
    ('vms/abc_disk', ('vms', 'abc_disk')),
    ('volumes/volume-1', ('volumes', 'volume-1')),
])
def test_parse_image_spec(spec, expected):
    assert rbdu.parse_image_spec(spec) == expected


@pytest.mark.parametrize('spec', ['vms', 'a/b/c', 'vms/img@snap', '/img', 'vms/', 'vms/-rf', 'vms/a b', 'v ms/a'])
def test_parse_image_spec_rejects_and_names_the_value(spec):
    with pytest.raises(InputError) as exc:
        rbdu.parse_image_spec(spec)
    assert repr(spec) in exc.value.msg or repr(spec.split('/')[-1]) in exc.value.msg


def test_image_spec():
    assert rbdu.image_spec('p', 'i') == 'p/i'
    assert rbdu.image_spec('p', 'i', 's') == 'p/i@s'
    assert rbdu.image_spec('p', 'i', 's', 'n') == 'p/n/i@s'


def test_open_rbd_picks_the_backend():
    runner = FakeRunner()
    client = rbdu.open_rbd(None, 'cli', '/c', 'u', runner=runner)
    assert isinstance(client, rbdu.CliRbd) and client.name == 'cli'
    with pytest.raises(InputError, match='backend must be one of'):
        rbdu.open_rbd(None, 'bogus')


def test_python_backend_reports_connection_errors(tmp_path, monkeypatch):
    if not rbdu.HAS_RBD:
        pytest.skip('python3-rbd not importable')
    with pytest.raises(rbdu.CephError, match='cannot connect to Ceph'):
        rbdu.PythonRbd(str(tmp_path / 'missing.conf'))


# --- clone lifecycle additions -------------------------------------------------------------------------------

DU_CLONE = {"images": [{"name": "c1_disk", "id": "10b8e5db865", "provisioned_size": 67108864, "used_size": 4194304}]}
DU_SNAPS = {"images": [{"name": "img", "id": "1", "snapshot": "snap", "snapshot_id": 5, "provisioned_size": 67108864,
                        "used_size": 67108864}, {"name": "img", "id": "1", "provisioned_size": 67108864, "used_size": 0}]}
SNAP_LS = [{"id": 5, "name": "snap", "size": 67108864, "protected": "true", "timestamp": "Wed Nov 25 17:04:12 2026"},
           {"id": 6, "name": "s2", "size": 67108864, "protected": "false", "timestamp": "Wed Nov 25 17:04:13 2026"}]
DF_STATS = {"stored": 19, "objects": 1, "kb_used": 4, "bytes_used": 4096, "max_avail": 11936327680}
DF = {"stats": {}, "pools": [{"name": "vms", "id": 2, "stats": DF_STATS}]}
QUOTA = {"pool_name": "vms", "pool_id": 2, "quota_max_objects": 0, "current_num_objects": 1,
         "quota_max_bytes": 10000000, "current_num_bytes": 19}
NO_PARENT = ('2026-11-25T17:05:11.556+0000 7f71f5e9b380 -1 librbd::Operations: image has no parent\n'
             'rbd: flatten error: (22) Invalid argument\n')
BUSY = 'rbd: unprotecting snap failed: (16) Device or resource busy\n'


def test_usage_reads_the_head_not_the_snapshots():
    client, runner = cli((0, json.dumps(DU_CLONE), ''), (0, json.dumps(DU_SNAPS), ''))
    assert client.usage('vms', 'c1_disk') == {'provisioned': 67108864, 'used': 4194304}
    assert runner.calls[0][-4:] == ['du', 'vms/c1_disk', '--format', 'json']
    assert client.usage('images', 'img') == {'provisioned': 67108864, 'used': 0}


def test_flatten_and_already_flat():
    client, runner = cli((0, '', ''), (22, '', NO_PARENT), (0, json.dumps(INFO_COPY), ''))
    assert client.flatten('vms', 'c1_disk') is True
    assert runner.calls[0][-3:] == ['flatten', '--no-progress', 'vms/c1_disk']
    assert client.flatten('vms', 'copy') is False


def test_snapshots_and_snapshot_operations():
    client, runner = cli((0, json.dumps(SNAP_LS), ''), (0, '', ''), (0, '', ''), (0, '', ''), (0, '', ''))
    assert client.snapshots('images', 'img') == [{'name': 'snap', 'protected': True}, {'name': 's2', 'protected': False}]
    client.snap_unprotect('images', 'img', 'snap')
    client.snap_remove('images', 'img', 'snap')
    client.snap_protect('images', 'img', 's2')
    client.remove('images', 'img')
    assert [c[len(client.base):] for c in runner.calls[1:]] == [
        ['snap', 'unprotect', 'images/img@snap'], ['snap', 'rm', '--no-progress', 'images/img@snap'],
        ['snap', 'protect', 'images/img@s2'], ['rm', '--no-progress', 'images/img']]


def test_busy_and_missing_are_typed():
    no_snap = 'rbd: unprotecting snap failed: (2) No such file or directory\n'
    client, dummy = cli((16, '', BUSY), (2, '', NO_IMAGE), (2, '', no_snap), (0, json.dumps(INFO_COPY), ''))
    with pytest.raises(rbdu.ImageBusy, match='Device or resource busy'):
        client.snap_unprotect('images', 'img', 'snap')
    with pytest.raises(rbdu.ImageNotFound):
        client.remove('images', 'nope')
    with pytest.raises(rbdu.SnapshotNotFound):
        client.snap_unprotect('images', 'img', 'nosnap')


def test_pool_space_with_and_without_quota():
    client, runner = cli((0, '', ''), (0, json.dumps(DF), ''), (0, json.dumps(QUOTA), ''))
    space = client.pool_space('vms')
    assert space == {'max_avail': 11936327680, 'stored': 19, 'quota_max_bytes': 10000000, 'available': 10000000 - 19}
    assert runner.calls[1][0] == 'ceph' and runner.calls[1][-3:] == ['df', '--format', 'json']
    assert runner.calls[2][-5:] == ['osd', 'pool', 'get-quota', 'vms', '--format', 'json'][-5:]
    no_quota = rbdu.parse_pool_space(DF, dict(QUOTA, quota_max_bytes=0), 'vms')
    assert no_quota['available'] == 11936327680
    full = rbdu.parse_pool_space(DF, dict(QUOTA, quota_max_bytes=10, current_num_bytes=19), 'vms')
    assert full['available'] == 0
    with pytest.raises(rbdu.PoolNotFound):
        rbdu.parse_pool_space(DF, QUOTA, 'other')


def test_flatten_need_and_shortfalls():
    assert rbdu.flatten_need(100, 30) == 70
    assert rbdu.flatten_need(100, 400) == 0
    spaces = {'vms': {'max_avail': 50, 'stored': 0, 'quota_max_bytes': 0, 'available': 50},
              'volumes': {'max_avail': 500, 'stored': 0, 'quota_max_bytes': 0, 'available': 500}}
    problems = rbdu.space_shortfalls({'vms': 70, 'volumes': 70}, spaces)
    assert problems == ['pool vms needs 70 bytes (70 B) to flatten but has 50 available (ceph df MAX AVAIL 50)']


def test_flatten_waves_orders_chains():
    def state(spec, parent_spec):
        pool, image = spec.split('/')
        par = None
        if parent_spec:
            ppool, rest = parent_spec.split('/')
            par = {'pool': ppool, 'image': rest.split('@')[0], 'snapshot': rest.split('@')[1], 'spec': parent_spec}
        return {'spec': spec, 'pool': pool, 'image': image, 'parent': par}
    states = [state('v/c', 'v/b@s'), state('v/b', 'v/a@s'), state('v/z', 'i/img@snap'), state('v/a', 'i/img@snap')]
    waves = rbdu.flatten_waves(states)
    assert [[s['spec'] for s in w] for w in waves] == [['v/a', 'v/z'], ['v/b'], ['v/c']]


def test_run_flattens_bounded_concurrency():
    import threading
    import time

    class Slow(object):
        active = 0
        peak = 0
        lock = threading.Lock()

        def flatten(self, pool, image):
            with self.lock:
                Slow.active += 1
                Slow.peak = max(Slow.peak, Slow.active)
            time.sleep(0.05)
            with self.lock:
                Slow.active -= 1
            return True

    wave = [{'spec': 'v/%d' % i, 'pool': 'v', 'image': str(i)} for i in range(6)]
    lines = []
    done = rbdu.run_flattens(Slow(), [wave], concurrency=2, log=lines.append)
    assert len(done) == 6 and all(r['flattened'] and r['error'] is None for r in done.values())
    assert Slow.peak == 2 and len(lines) == 6 and lines[-1].startswith('flatten 6/6 ')
