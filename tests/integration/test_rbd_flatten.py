"""rbd_flatten against the real lab Ceph: online flatten under writes, clone chains, space refusal, 4 ways.

In a fresh pool (standing in for `images`, `vms` and `volumes` at once): an image with random data imported,
snapshotted and protected as Glance does; a Nova disk, a Cinder volume and a clone chain (volume A, A@s, clone B).
"""
import hashlib
import os
import subprocess
import threading
import uuid

import pytest

from labutil import CEPH_CONF, SYS_PATH, sh

MIB = 1024 ** 2
SIZE = 8 * MIB
WRITTEN = MIB  # the writer thread writes the first MiB of the clone during the flatten


def export_sha(spec, start=0, length=None):
    """sha256 of a region of `rbd export` of an image."""
    env = dict(os.environ, CEPH_CONF=CEPH_CONF, PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    data = subprocess.run(['rbd', 'export', '--no-progress', spec, '-'], env=env, capture_output=True,
                          check=True).stdout
    return hashlib.sha256(data[start:None if length is None else start + length]).hexdigest()


def parent_of(spec):
    import json
    return json.loads(sh(['rbd', 'info', '--format', 'json', spec]).stdout).get('parent')


@pytest.fixture()
def lab(pool, tmp_path):
    ids = dict(pool=pool, image_id=str(uuid.uuid4()), instance=str(uuid.uuid4()), volume=str(uuid.uuid4()),
               vol_a=str(uuid.uuid4()), vol_b=str(uuid.uuid4()))
    src = tmp_path / 'base.raw'
    src.write_bytes(os.urandom(SIZE))
    ids['source'] = src.read_bytes()
    base = '%s/%s' % (pool, ids['image_id'])
    sh(['rbd', 'import', '--no-progress', str(src), base])
    sh(['rbd', 'snap', 'create', base + '@snap'])
    sh(['rbd', 'snap', 'protect', base + '@snap'])
    ids['vm_disk'] = '%s/%s_disk' % (pool, ids['instance'])
    ids['vol'] = '%s/volume-%s' % (pool, ids['volume'])
    ids['a'] = '%s/volume-%s' % (pool, ids['vol_a'])
    ids['b'] = '%s/volume-%s' % (pool, ids['vol_b'])
    for spec in (ids['vm_disk'], ids['vol'], ids['a']):
        sh(['rbd', 'clone', base + '@snap', spec])
    sh(['rbd', 'snap', 'create', ids['a'] + '@s'])
    sh(['rbd', 'snap', 'protect', ids['a'] + '@s'])
    sh(['rbd', 'clone', ids['a'] + '@s', ids['b']])
    return ids


def args(lab, backend, **kw):
    a = dict(ceph_conf=CEPH_CONF, backend=backend, images_pool=lab['pool'], vms_pool=lab['pool'],
             volumes_pool=lab['pool'])
    a.update(kw)
    return a


class Writer(threading.Thread):
    """Writes a known pattern over the first MiB of an image with python3-rbd until stopped (a running VM)."""

    def __init__(self, pool, image):
        super(Writer, self).__init__()
        self.pool, self.image = pool, image
        self.stop = threading.Event()
        self.started = threading.Event()
        self.writes = 0
        self.error = None

    def run(self):
        import rados
        import rbd
        try:
            with rados.Rados(conffile=CEPH_CONF) as cluster:
                with cluster.open_ioctx(self.pool) as ioctx:
                    with rbd.Image(ioctx, self.image) as img:
                        while True:
                            for off in range(0, WRITTEN, 64 * 1024):
                                img.write(bytes([self.writes % 251]) * 64 * 1024, off)
                            self.writes += 1
                            self.started.set()
                            if self.stop.is_set():
                                img.flush()
                                return
        except Exception as exc:  # pragma: no cover - reported by the test
            self.error = exc
            self.started.set()


def test_flatten_online_while_writing_four_ways(lab, run_module):
    pytest.importorskip('rbd')
    a = args(lab, 'python', instances=[lab['instance']])
    source_rest = hashlib.sha256(lab['source'][WRITTEN:]).hexdigest()

    checked = run_module('rbd_flatten', a, check=True, diff=True)
    assert not checked.get('failed'), checked
    assert checked['changed'] is True and checked['flattened'] == [lab['vm_disk']]
    disk = checked['disks'][0]
    assert disk['action'] == 'flatten' and disk['used_bytes'] == 0 and disk['needed_bytes'] == SIZE
    assert disk['before']['parent']['spec'] == '%s/%s@snap' % (lab['pool'], lab['image_id'])
    assert disk['before']['status'] == 'clone' and disk['after']['parent'] is None
    assert checked['needed_bytes'] == {lab['pool']: SIZE} and checked['space'][lab['pool']]['available'] > SIZE
    assert parent_of(lab['vm_disk']) is not None  # check mode changed nothing

    writer = Writer(lab['pool'], lab['instance'] + '_disk')
    writer.start()
    assert writer.started.wait(30) and writer.error is None
    try:
        applied = run_module('rbd_flatten', a, diff=True)
    finally:
        writer.stop.set()
        writer.join(60)
    assert writer.error is None and writer.writes > 1
    assert not applied.get('failed'), applied
    assert applied['changed'] is True and applied['flattened'] == [lab['vm_disk']]
    disk = applied['disks'][0]
    assert disk['after']['parent'] is None and disk['after']['is_clone'] is False and disk['seconds'] >= 0
    assert applied['diff']['before'][lab['vm_disk']].endswith('@snap') and applied['diff']['after'][lab['vm_disk']] is None
    assert parent_of(lab['vm_disk']) is None
    # the unwritten region is the source's, the written region what the writer wrote last
    assert export_sha(lab['vm_disk'], WRITTEN) == source_rest
    last = bytes([(writer.writes - 1) % 251]) * WRITTEN
    assert export_sha(lab['vm_disk'], 0, WRITTEN) == hashlib.sha256(last).hexdigest()
    # the other clones were not touched
    assert parent_of(lab['vol']) is not None and parent_of(lab['b']) is not None

    again = run_module('rbd_flatten', a)
    assert not again.get('failed') and again['changed'] is False and again['flattened'] == []
    assert again['disks'][0]['action'] == 'none' and again['disks'][0]['before']['status'] == 'full_copy'
    again_check = run_module('rbd_flatten', a, check=True)
    assert not again_check.get('failed') and again_check['changed'] is False


def test_all_clones_of_an_image_chain_order_cli(lab, run_module):
    a = args(lab, 'cli', image_id=lab['image_id'], concurrency=3)
    missing = run_module('rbd_flatten', args(lab, 'cli', instances=[lab['instance'], str(uuid.uuid4())]))
    assert missing.get('failed') and 'do not exist' in missing['msg'] and parent_of(lab['vm_disk']) is not None
    checked = run_module('rbd_flatten', a, check=True)
    assert not checked.get('failed'), checked
    waves = dict((d['spec'], d['wave']) for d in checked['disks'])
    assert waves == {lab['vm_disk']: 0, lab['vol']: 0, lab['a']: 0, lab['b']: 1}
    assert [d['spec'] for d in checked['disks']][-1] == lab['b']
    assert sorted(checked['flattened']) == sorted([lab['vm_disk'], lab['vol'], lab['a'], lab['b']])

    applied = run_module('rbd_flatten', a)
    assert not applied.get('failed'), applied
    assert applied['changed'] is True and len(applied['flattened']) == 4 and applied['backend'] == 'cli'
    for key in ('vm_disk', 'vol', 'a', 'b'):
        assert parent_of(lab[key]) is None, key
        assert export_sha(lab[key]) == hashlib.sha256(lab['source']).hexdigest()
    # all clones of the image: none any more
    again = run_module('rbd_flatten', a)
    assert not again.get('failed') and again['changed'] is False and again['disks'] == []
    again_check = run_module('rbd_flatten', a, check=True)
    assert not again_check.get('failed') and again_check['changed'] is False


def test_refuses_without_space_quota(lab, run_module):
    """A byte quota counts as free space: quota - stored is less than the flatten needs."""
    import json
    stored = json.loads(sh(['ceph', 'osd', 'pool', 'get-quota', lab['pool'], '-f', 'json']).stdout)['current_num_bytes']
    sh(['ceph', 'osd', 'pool', 'set-quota', lab['pool'], 'max_bytes', str(stored + MIB)])
    try:
        for backend, check in (('python', False), ('cli', True)):
            res = run_module('rbd_flatten', args(lab, backend, volumes=[lab['volume']]), check=check)
            assert res.get('failed'), res
            assert 'not enough free space' in res['msg'] and 'needs %d bytes' % SIZE in res['msg']
            assert 'quota' in res['msg'] and res['changed'] is False
            assert res['space'][lab['pool']]['quota_max_bytes'] == stored + MIB
        assert parent_of(lab['vol']) is not None
    finally:
        sh(['ceph', 'osd', 'pool', 'set-quota', lab['pool'], 'max_bytes', '0'])
