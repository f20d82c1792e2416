"""nova_image_cache_purge against a real instances tree: raw base files, real qcow2 overlays made by qemu-img
(relative and absolute backing names, a two-level chain), a disk held by a running qemu-io (its image lock), a
base file held open by another process, a broken chain (missing backing file), temporaries, an old entry and
a stranger. Each operation four ways: check, apply, repeat, repeat in check."""
import hashlib
import os
import subprocess
import sys
import time

import pytest

from labutil import sh

MIB = 1024 * 1024


def sha1(image_id):
    return hashlib.sha1(image_id.encode()).hexdigest()


def raw(path, size=4 * MIB, fill=b'\xab'):
    with open(str(path), 'wb') as handle:
        handle.write(fill * MIB)
        handle.truncate(size)
    return str(path)


def overlay(path, backing, backing_fmt='raw'):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', backing, '-F', backing_fmt, str(path)])
    return str(path)


class Tree(object):
    """A Nova instances path with every case the purge must get right."""

    def __init__(self, root):
        self.root = str(root)
        self.base = os.path.join(self.root, '_base')
        os.makedirs(self.base)
        self.names = {}
        for key in ('a', 'b', 'c', 'd', 'e'):
            self.names[key] = sha1('image-' + key)
            raw(os.path.join(self.base, self.names[key]))
        # inst1: relative backing name, as Nova writes it; held by a running qemu-io below
        self.disk1 = overlay(os.path.join(self.root, 'inst1', 'disk'), '../_base/' + self.names['a'])
        # inst2: two-level chain with absolute names: disk -> disk.snap (qcow2) -> _base/b
        mid = overlay(os.path.join(self.root, 'inst2', 'disk.snap'), os.path.join(self.base, self.names['b']))
        overlay(os.path.join(self.root, 'inst2', 'disk'), mid, 'qcow2')
        with open(os.path.join(self.root, 'inst2', 'console.log'), 'w') as handle:
            handle.write('boot\n')
        # inst3: its backing file is gone; the resized copy of the same image could be it
        self.names['g'] = sha1('image-g')
        self.missing = os.path.join(self.base, self.names['g'])
        raw(self.missing)
        overlay(os.path.join(self.root, 'inst3', 'disk'), self.missing)
        os.unlink(self.missing)
        self.names['g20'] = self.names['g'] + '_20'
        raw(os.path.join(self.base, self.names['g20']))
        # d is old, c is new; a temporary, an ephemeral disk and a stranger
        old = time.time() - 2 * 86400
        os.utime(os.path.join(self.base, self.names['d']), (old, old))
        self.names['part'] = sha1('image-f') + '.part'
        raw(os.path.join(self.base, self.names['part']), size=MIB)
        self.names['eph'] = 'ephemeral_1_0706d66'
        raw(os.path.join(self.base, self.names['eph']), size=MIB, fill=b'\0')
        self.names['junk'] = 'notes.txt'
        with open(os.path.join(self.base, 'notes.txt'), 'w') as handle:
            handle.write('not a cache entry\n')

    def path(self, key):
        return os.path.join(self.base, self.names[key])

    def present(self):
        return sorted(os.listdir(self.base))


@pytest.fixture()
def tree(tmp_path):
    tree = Tree(tmp_path / 'instances')
    procs = []
    # a process holding e open (a file descriptor)
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time; f = open(sys.argv[1], "rb"); '
                               'print("ready", flush=True); time.sleep(300)', tree.path('e')],
                              stdout=subprocess.PIPE, text=True)
    procs.append(holder)
    assert holder.stdout.readline().strip() == 'ready'
    # a qemu-io holding inst1's disk (and its backing file) open with qemu's image locks, like a running VM
    qemu = subprocess.Popen(['qemu-io', '-f', 'qcow2', tree.disk1], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    procs.append(qemu)
    deadline = time.time() + 10
    while sh(['qemu-img', 'info', tree.disk1], check=False).returncode == 0 and time.time() < deadline:
        time.sleep(0.05)
    tree.holder_pid = holder.pid
    yield tree
    for proc in procs:
        proc.kill()
        proc.wait()


def names(items):
    return sorted(item['name'] for item in items)


def test_broken_disk_fails_by_default_and_removes_nothing(run_module, tree):
    before = tree.present()
    res = run_module('nova_image_cache_purge', {'instances_path': tree.root})
    assert res.get('failed') and not res.get('changed'), res
    assert 'missing backing file' in res['msg'] and 'inst3/disk' in res['msg'] and 'on_broken_disk=warn' in res['msg']
    assert res['broken_disks'][0]['backing_file'] == tree.missing
    assert tree.present() == before


def test_purge_four_ways(run_module, tree):
    args = {'instances_path': tree.root, 'on_broken_disk': 'warn'}
    gone = sorted(tree.names[k] for k in ('c', 'd', 'part', 'eph'))
    stay = sorted(tree.names[k] for k in ('a', 'b', 'e', 'g20', 'junk'))
    freed = sum(os.stat(os.path.join(tree.base, n)).st_blocks * 512 for n in gone)
    before = tree.present()

    res = run_module('nova_image_cache_purge', args, check=True, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert names(res['removed']) == gone and names(res['kept']) == stay
    assert res['bytes_freed'] == freed and tree.present() == before
    assert res['diff']['before']['entries'] == before and res['diff']['after']['entries'] == stay
    assert any('inst3/disk' in w for w in res.get('warnings', []))
    kept = dict((k['name'], k['reason']) for k in res['kept'])
    assert 'backing file of %s' % tree.disk1 in kept[tree.names['a']]
    assert 'held open by process' in kept[tree.names['a']]  # qemu-io holds its backing file too
    assert 'inst2/disk' in kept[tree.names['b']] and 'inst2/disk.snap' in kept[tree.names['b']]
    assert 'held open by process %d' % tree.holder_pid in kept[tree.names['e']]
    assert 'could be the missing backing file of' in kept[tree.names['g20']]
    assert kept['notes.txt'] == 'not a Nova cache name'
    assert res['disks_inspected'] == 4  # inst1/disk, inst2/disk, inst2/disk.snap, inst3/disk
    assert [b['disk'] for b in res['broken_disks']] == [os.path.join(tree.root, 'inst3', 'disk')]
    assert all('not held open' in r['reason'] for r in res['removed'])

    res = run_module('nova_image_cache_purge', args, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert names(res['removed']) == gone and res['bytes_freed'] == freed
    assert tree.present() == stay
    # the overlays still open their chains
    sh(['qemu-img', 'info', '-U', '--backing-chain', tree.disk1])
    sh(['qemu-img', 'info', '--backing-chain', os.path.join(tree.root, 'inst2', 'disk')])

    for check in (False, True):
        res = run_module('nova_image_cache_purge', args, check=check, diff=True)
        assert res.get('changed') is False and not res.get('failed'), res
        assert res['removed'] == [] and res['bytes_freed'] == 0 and names(res['kept']) == stay
        assert res['diff']['before'] == res['diff']['after']
        assert tree.present() == stay


def test_only_deleted_images_and_min_age(run_module, tree):
    # image-c is still in Glance; d is gone from Glance and 2 days old; the .part and ephemeral are fresh / not images
    args = {'instances_path': tree.root, 'on_broken_disk': 'warn', 'only_deleted_images': True,
            'glance_image_ids': ['image-a', 'image-c'], 'min_age_seconds': 3600}
    res = run_module('nova_image_cache_purge', args)
    assert res.get('changed') is True and names(res['removed']) == [tree.names['d']], res
    assert not os.path.exists(tree.path('d')) and os.path.exists(tree.path('c'))
    kept = dict((k['name'], k['reason']) for k in res['kept'])
    assert 'still in Glance' in kept[tree.names['c']] and 'younger than min_age_seconds=3600' in kept[tree.names['c']]
    assert 'younger than min_age_seconds' in kept[tree.names['part']]
    assert 'not a Glance image' in kept[tree.names['eph']]
    assert 'still in Glance' in kept[tree.names['a']] and 'backing file' in kept[tree.names['a']]
    res = run_module('nova_image_cache_purge', args, check=True)
    assert res.get('changed') is False and res['removed'] == [], res


def test_bad_input(run_module, tmp_path, tree):
    # only_if_rbd on a local-storage compute is covered by the role test (test_nova_image_cache_prewarm.py)
    before = tree.present()

    res = run_module('nova_image_cache_purge', {'instances_path': str(tmp_path / 'nope')})
    assert res.get('failed') and 'does not exist' in res['msg'], res
    # a disk qemu-img cannot read at all: its backing file is unknown, warn keeps everything
    with open(os.path.join(tree.root, 'inst2', 'disk.eph0'), 'wb') as handle:
        handle.write(b'QFI\xfb' + b'\xff' * 200)
    res = run_module('nova_image_cache_purge', {'instances_path': tree.root, 'on_broken_disk': 'warn'})
    assert not res.get('failed') and not res.get('changed') and res['removed'] == [], res
    assert all('could not be inspected' in k['reason'] for k in res['kept'])
    assert tree.present() == before


def test_empty_cache(run_module, tmp_path):
    root = tmp_path / 'instances'
    root.mkdir()
    res = run_module('nova_image_cache_purge', {'instances_path': str(root)})
    assert not res.get('failed') and not res.get('changed') and 'empty or absent' in res['msg'], res
