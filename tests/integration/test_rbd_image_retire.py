"""rbd_image_retire against the real lab Ceph (RBD only; the Glance path awaits the OpenStack lab).

One fresh pool stands in for `images`, `vms` and `volumes`: an image with random data (snapshot `snap`, protected),
a Nova disk, a Cinder volume and a clone chain (volume A, A@s, clone B of A@s).
"""
import hashlib
import json
import os
import subprocess
import uuid

import pytest

from labutil import CEPH_CONF, SYS_PATH, sh

MIB = 1024 ** 2
SIZE = 8 * MIB


def export_sha(spec):
    env = dict(os.environ, CEPH_CONF=CEPH_CONF, PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    return hashlib.sha256(subprocess.run(['rbd', 'export', '--no-progress', spec, '-'], env=env, capture_output=True,
                                         check=True).stdout).hexdigest()


def rbd_json(*args):
    return json.loads(sh(['rbd'] + list(args) + ['--format', 'json']).stdout or '[]')


@pytest.fixture()
def lab(pool, tmp_path):
    ids = dict(pool=pool, image_id=str(uuid.uuid4()))
    src = tmp_path / 'base.raw'
    src.write_bytes(os.urandom(SIZE))
    ids['sha'] = hashlib.sha256(src.read_bytes()).hexdigest()
    ids['base'] = '%s/%s' % (pool, ids['image_id'])
    sh(['rbd', 'import', '--no-progress', str(src), ids['base']])
    sh(['rbd', 'snap', 'create', ids['base'] + '@snap'])
    sh(['rbd', 'snap', 'protect', ids['base'] + '@snap'])
    ids['vm_disk'] = '%s/%s_disk' % (pool, uuid.uuid4())
    ids['vol'] = '%s/volume-%s' % (pool, uuid.uuid4())
    ids['a'] = '%s/volume-%s' % (pool, uuid.uuid4())
    ids['b'] = '%s/volume-%s' % (pool, uuid.uuid4())
    for spec in (ids['vm_disk'], ids['vol'], ids['a']):
        sh(['rbd', 'clone', ids['base'] + '@snap', spec])
    sh(['rbd', 'snap', 'create', ids['a'] + '@s'])
    sh(['rbd', 'snap', 'protect', ids['a'] + '@s'])
    sh(['rbd', 'clone', ids['a'] + '@s', ids['b']])
    ids['clones'] = [ids[k] for k in ('vm_disk', 'vol', 'a', 'b')]
    return ids


def args(lab, backend, **kw):
    a = dict(ceph_conf=CEPH_CONF, backend=backend, images_pool=lab['pool'], image_id=lab['image_id'])
    a.update(kw)
    return a


def test_refuse_then_flatten_and_retire_four_ways(lab, run_module):
    """python3-rbd here; the CLI backend's flatten is covered by test_rbd_flatten, its removals below."""
    pytest.importorskip('rbd')
    backend = 'python'
    images = rbd_json('ls', lab['pool'])
    snaps = rbd_json('snap', 'ls', lab['base'])

    # default: refused with the list of clones, nothing changed (check mode and for real)
    for check in (False,):
        refused = run_module('rbd_image_retire', args(lab, backend), check=check)
        assert refused.get('failed'), refused
        assert '4 dependent clone(s)' in refused['msg'] and refused['changed'] is False
        assert all(spec in refused['msg'] for spec in lab['clones'])
        assert refused['done'] == []
    assert rbd_json('ls', lab['pool']) == images and rbd_json('snap', 'ls', lab['base']) == snaps

    a = args(lab, backend, flatten_clones=True)
    checked = run_module('rbd_image_retire', a, check=True, diff=True)
    assert not checked.get('failed'), checked
    assert checked['changed'] is True and checked['exists'] is True and checked['done'] == []
    actions = [(s['action'], s['target']) for s in checked['plan']]
    assert actions[-3:] == [('snap_unprotect', lab['base'] + '@snap'), ('snap_remove', lab['base'] + '@snap'),
                            ('remove', lab['base'])]
    assert sorted(t for act, t in actions[:-3]) == sorted(lab['clones']) and actions[3][1] == lab['b']
    assert checked['glance'] == {'used': False, 'found': False, 'deleted': False}
    by_spec = dict((c['spec'], c) for c in checked['clones'])
    assert by_spec[lab['vm_disk']]['before']['parent']['spec'] == lab['base'] + '@snap'
    assert by_spec[lab['b']]['before']['parent']['spec'] == lab['a'] + '@s'
    assert by_spec[lab['vm_disk']]['needed_bytes'] == SIZE
    assert checked['diff']['after'][lab['base']] == 'absent'
    assert rbd_json('ls', lab['pool']) == images and rbd_json('snap', 'ls', lab['base']) == snaps

    applied = run_module('rbd_image_retire', a, diff=True)
    assert not applied.get('failed'), applied
    assert applied['changed'] is True and [s['action'] for s in applied['done']] == [s['action'] for s in checked['plan']]
    for spec in lab['clones']:
        assert rbd_json('info', spec).get('parent') is None, spec
        assert export_sha(spec) == lab['sha'], spec
    after = dict((c['spec'], c['after']) for c in applied['clones'])
    assert all(after[s]['parent'] is None and after[s]['status'] == 'full_copy' for s in lab['clones'])
    assert lab['image_id'] not in rbd_json('ls', lab['pool'])

    for check in (False, True):
        again = run_module('rbd_image_retire', a, check=check)
        assert not again.get('failed'), again
        assert again['changed'] is False and again['plan'] == [] and again['exists'] is False


def test_retire_without_clones_and_unprotected_snapshot(pool, run_module):
    image_id = str(uuid.uuid4())
    spec = '%s/%s' % (pool, image_id)
    sh(['rbd', 'create', '--size', '4M', spec])
    sh(['rbd', 'snap', 'create', spec + '@snap'])  # not protected: only snap_remove and remove
    a = dict(ceph_conf=CEPH_CONF, backend='cli', images_pool=pool, image_id=image_id)
    checked = run_module('rbd_image_retire', a, check=True)
    assert not checked.get('failed'), checked
    assert [s['action'] for s in checked['plan']] == ['snap_remove', 'remove'] and checked['changed'] is True
    applied = run_module('rbd_image_retire', a)
    assert not applied.get('failed') and applied['changed'] is True, applied
    assert rbd_json('ls', pool) == []
