# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of module_utils/nova_cache.py (names, nova.conf, purge decision, /proc scan, copy, pre-cache API
with a fake openstacksdk connection) and of the qemu_img chain helpers it uses (scripted qemu-img)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError, Runner
from ansible_collections.fastboot.cloud.plugins.module_utils import nova_cache as nc
from ansible_collections.fastboot.cloud.plugins.module_utils import qemu_img as q

H = 'f' * 40


def test_cache_name_is_sha1_of_the_id():
    assert nc.cache_name('abc') == 'a9993e364706816aba3e25717850c26c9cd0d89d'
    with pytest.raises(InputError):
        nc.cache_name(' ')


@pytest.mark.parametrize('name,kind,hash_', [
    (H, 'image', H), (H + '_20', 'resized', H), (H + '.part', 'temporary', H), (H + '.converted', 'temporary', H),
    (H + '_20.part', 'temporary', H), ('.%s.fastboot-tmp-0a1b2c3d' % H, 'temporary', H),
    ('ephemeral_1_0706d66', 'ephemeral', None), ('ephemeral_20', 'ephemeral', None), ('swap_512', 'swap', None),
    ('notes.txt', 'unknown', None), (H.upper(), 'unknown', None), (H + '_x', 'unknown', None), ('locks', 'unknown', None),
])
def test_classify(name, kind, hash_):
    assert nc.classify(name) == {'kind': kind, 'hash': hash_}


def test_read_images_type(tmp_path):
    conf = tmp_path / 'nova.conf'
    conf.write_text('[DEFAULT]\nmy_ip = 10.0.0.1\nmy_ip = 10.0.0.2\n[libvirt]\nimages_type = rbd\nx = %(y)s\n')
    assert nc.read_images_type(str(conf)) == 'rbd'
    conf.write_text('[libvirt]\nvirt_type = kvm\n')
    assert nc.read_images_type(str(conf)) == 'default'
    assert nc.effective_images_type('qcow2', str(conf)) == 'qcow2'
    assert nc.effective_images_type(None, str(conf)) == 'default'
    assert nc.effective_images_type(None, None) is None
    with pytest.raises(InputError, match='does not exist'):
        nc.read_images_type(str(tmp_path / 'missing.conf'))
    conf.write_text('no section header\n')
    with pytest.raises(InputError, match='cannot be parsed'):
        nc.read_images_type(str(conf))


def test_cache_dir_and_instances_path(tmp_path):
    assert nc.cache_dir_of(str(tmp_path), '_base') == str(tmp_path / '_base')
    for bad in ('', '..', 'a/b'):
        with pytest.raises(InputError):
            nc.cache_dir_of(str(tmp_path), bad)
    with pytest.raises(InputError, match='does not exist'):
        nc.check_instances_path(str(tmp_path / 'nope'))
    (tmp_path / 'f').write_text('x')
    with pytest.raises(InputError, match='not a directory'):
        nc.check_instances_path(str(tmp_path / 'f'))


def test_list_cache_and_find_disks(tmp_path):
    base = tmp_path / '_base'
    base.mkdir()
    (base / H).write_bytes(b'x' * 10)
    os.link(str(base / H), str(tmp_path / 'hard'))
    (base / 'sub').mkdir()
    entries = nc.list_cache(str(base))
    assert [(e['name'], e['kind'], e['regular'], e['nlink']) for e in entries] == [(H, 'image', True, 2), ('sub', 'unknown', False, 2)]
    assert nc.list_cache(str(tmp_path / 'none')) == []
    for rel in ('i1/disk', 'i1/disk.local', 'i1/console.log', 'i1/libvirt.xml', 'i1/disk.info', 'locks/nova-x', 'i2/disk'):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text('x')
    os.symlink(str(tmp_path / 'i2' / 'disk'), str(tmp_path / 'i2' / 'link'))
    assert nc.find_disks(str(tmp_path), str(base)) == [
        str(tmp_path / 'hard'), str(tmp_path / 'i1' / 'disk'), str(tmp_path / 'i1' / 'disk.local'), str(tmp_path / 'i2' / 'disk')]


def entry(name, mtime=0.0, key=None, regular=True, nlink=1, allocated=4096):
    item = nc.classify(name)
    item.update(name=name, path='/i/_base/' + name, regular=regular, size=allocated, allocated=allocated, nlink=nlink,
                mtime=mtime, key=key or (1, hash(name) % 100000))
    return item


def test_decide_purge_reasons():
    now = 1000000.0
    a, b, c = 'a' * 40, 'b' * 40, 'c' * 40
    entries = [entry(a, key=(1, 1)), entry(b, key=(1, 2), nlink=2), entry(c + '_10', key=(1, 3)), entry(c + '.part', mtime=now - 5),
               entry('notes', key=(1, 5)), entry('swap_512', key=(1, 6)), entry('d' * 40, key=(1, 7), regular=False)]
    users = {(1, 1): ['/i/x/disk']}
    broken = [{'disk': '/i/y/disk', 'backing_file': '/old/_base/' + c, 'error': 'gone'}]
    holders = {(1, 6): ['42 (qemu)']}
    remove, keep = nc.decide_purge(entries, users, broken, holders, now=now)
    assert [r['name'] for r in remove] == [b]
    assert remove[0]['freed'] == 0  # another hard link still holds the data
    reasons = dict((k['name'], k['reason']) for k in keep)
    assert reasons[a] == 'backing file of /i/x/disk'
    assert reasons[c + '_10'] == reasons[c + '.part'] == 'could be the missing backing file of /i/y/disk'
    assert reasons['notes'] == 'not a Nova cache name'
    assert reasons['swap_512'] == 'held open by process 42 (qemu)'
    assert reasons['d' * 40] == 'not a regular file'
    assert [k for k in keep if k['name'] == a][0]['disks'] == ['/i/x/disk']

    remove, keep = nc.decide_purge([entry(a, mtime=now - 10), entry(b, mtime=now - 100), entry('swap_1', mtime=now - 100)],
                                   {}, [], {}, now=now, min_age=50, glance_hashes={b})
    assert remove == []
    reasons = dict((k['name'], k['reason']) for k in keep)
    assert 'younger than min_age_seconds=50' in reasons[a] and 'its image is still in Glance' == reasons[b]
    assert 'not a Glance image' in reasons['swap_1']
    remove, keep = nc.decide_purge([entry(a, mtime=now - 100, allocated=8192)], {}, [], {}, now=now, min_age=50, glance_hashes=set())
    assert remove[0]['freed'] == 8192 and 'no longer in Glance' in remove[0]['reason'] and 'modified 100 s ago' in remove[0]['reason']
    remove, keep = nc.decide_purge([entry(a)], {}, [], {}, stop_reason='stop')
    assert remove == [] and keep[0]['reason'] == 'stop'


def test_scan_open_files_with_a_fake_proc(tmp_path):
    target = tmp_path / 'file'
    target.write_text('x')
    st = os.stat(str(target))
    proc = tmp_path / 'proc'
    (proc / '123' / 'fd').mkdir(parents=True)
    (proc / '123' / 'comm').write_text('qemu-kvm\n')
    os.symlink(str(target), str(proc / '123' / 'fd' / '7'))
    os.symlink('/nonexistent', str(proc / '123' / 'fd' / '8'))
    (proc / '123' / 'maps').write_text('')
    (proc / '456').mkdir()
    (proc / '456' / 'maps').write_text('7f00-7f01 r--p 00000000 %x:%x %d    /x/lib.so\n' % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    (proc / 'self').mkdir()
    holders, unreadable = nc.scan_open_files(str(proc))
    assert holders[(st.st_dev, st.st_ino)] == ['123 (qemu-kvm)'] and unreadable == 0
    (proc / '456' / 'fd').mkdir()
    holders, dummy = nc.scan_open_files(str(proc))
    assert sorted(holders[(st.st_dev, st.st_ino)]) == ['123 (qemu-kvm)', '456']


def test_real_proc_sees_our_own_child(tmp_path):
    """/proc of this host: a child holding a file open is found (the module's own process is skipped)."""
    import subprocess
    import sys
    target = tmp_path / 'held'
    target.write_text('x')
    child = subprocess.Popen([sys.executable, '-c', 'import sys, time; f = open(sys.argv[1]); print(1, flush=True); time.sleep(30)',
                              str(target)], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        holders, dummy = nc.scan_open_files()
        st = os.stat(str(target))
        assert any(h.startswith('%d ' % child.pid) for h in holders[(st.st_dev, st.st_ino)])
    finally:
        child.kill()
        child.wait()


def test_owner_mode_and_attributes(tmp_path):
    assert nc.resolve_owner('0', 'root') == (0, 0)
    assert nc.resolve_owner('', None) == (-1, -1)
    with pytest.raises(InputError, match='owner no-such-user-x does not exist'):
        nc.resolve_owner('no-such-user-x', '0')
    assert nc.parse_mode('0644') == 0o644 and nc.parse_mode('640') == 0o640
    for bad in ('rw-r--r--', '99', '17777'):
        with pytest.raises(InputError):
            nc.parse_mode(bad)
    path = tmp_path / 'f'
    path.write_text('x')
    os.chmod(str(path), 0o600)
    assert nc.needs_attributes(str(path), -1, -1, 0o644)
    nc.set_attributes(str(path), -1, -1, 0o644)
    assert not nc.needs_attributes(str(path), os.getuid(), os.getgid(), 0o644)


def test_sparse_copy(tmp_path):
    src = tmp_path / 'src'
    with open(str(src), 'wb') as handle:
        handle.write(b'\x01' * 100)
        handle.seek(5 * nc.COPY_CHUNK)
        handle.write(b'\x02' * 10)
        handle.truncate(8 * nc.COPY_CHUNK + 3)
    dest = str(tmp_path / 'dest')
    nc.sparse_copy(str(src), dest)
    assert open(dest, 'rb').read() == src.read_bytes()
    assert os.stat(dest).st_blocks * 512 <= 3 * nc.COPY_CHUNK
    with pytest.raises(OSError):  # never overwrites
        nc.sparse_copy(str(src), dest)


def test_no_space_detection():
    assert nc.no_space(OSError(28, 'No space left on device'))
    assert nc.no_space(CommandError('qemu-img convert failed', stderr='qemu-img: error while writing at byte 0: No space left on device'))
    assert not nc.no_space(OSError(13, 'Permission denied'))


# ---------------------------------------------------------------- the pre-cache API with a fake connection

class Obj(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


class FakeCompute(object):
    def __init__(self, max_microversion='2.95', aggregates=None, fail=None):
        self.max_microversion = max_microversion
        self.aggregates = aggregates if aggregates is not None else {'rack-a': 3, '7': 7}
        self.fail = fail
        self.calls = []

    def get_endpoint_data(self):
        return Obj(max_microversion=self.max_microversion)

    def find_aggregate(self, name, ignore_missing=True):
        assert ignore_missing
        return Obj(id=self.aggregates[name]) if name in self.aggregates else None

    def aggregate_precache_images(self, aggregate, images):
        if self.fail:
            raise RuntimeError(self.fail)
        self.calls.append((aggregate, list(images)))


class FakeConn(object):
    def __init__(self, **kw):
        self.compute = FakeCompute(**kw)
        self.image = Obj(images=lambda: iter([Obj(id='img-1'), Obj(id='img-2')]))


def test_precache_requests_each_aggregate():
    conn = FakeConn()
    requests = nc.precache(conn, ['rack-a', '7'], ['img-1', 'img-2'])
    assert requests == [{'aggregate': 'rack-a', 'id': 3, 'images': ['img-1', 'img-2']},
                        {'aggregate': '7', 'id': 7, 'images': ['img-1', 'img-2']}]
    assert conn.compute.calls == [(3, ['img-1', 'img-2']), (7, ['img-1', 'img-2'])]
    conn = FakeConn()
    assert len(nc.precache(conn, ['rack-a'], ['img-1'], check_mode=True)) == 1 and conn.compute.calls == []


@pytest.mark.parametrize('kw,aggregates,error', [
    ({'max_microversion': '2.80'}, ['rack-a'], 'up to 2.80, the image pre-cache API needs 2.81'),
    ({'max_microversion': None}, ['rack-a'], 'up to none'),
    ({}, ['rack-z'], 'host aggregate rack-z does not exist'),
])
def test_precache_refuses(kw, aggregates, error):
    conn = FakeConn(**kw)
    with pytest.raises(InputError, match=error):
        nc.precache(conn, aggregates, ['img-1'])
    assert conn.compute.calls == []


def test_precache_api_error_and_glance_ids():
    with pytest.raises(CommandError, match='pre-cache request on aggregate rack-a failed: HTTP 403'):
        nc.precache(FakeConn(fail='HTTP 403'), ['rack-a'], ['img-1'])
    assert nc.glance_image_ids(FakeConn()) == ['img-1', 'img-2']


def test_connect_without_openstacksdk(monkeypatch):
    monkeypatch.setattr(nc, 'import_openstack', lambda: (None, 'ImportError: No module named openstack'))
    with pytest.raises(InputError, match='openstacksdk is needed'):
        nc.connect('admin')


# ---------------------------------------------------------------- qemu_img chain helpers (scripted qemu-img)

class FakeModule(object):
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def get_bin_path(self, name, required=False):
        return '/usr/bin/' + name

    def run_command(self, argv, data=None, environ_update=None, check_rc=False):
        self.calls.append(list(argv))
        assert '-U' in argv
        key = (argv[-1], '--backing-chain' in argv)
        answer = self.answers[key]
        return answer if isinstance(answer, tuple) else (0, json.dumps(answer), '')


def img(filename, backing=None, fmt='qcow2'):
    data = {'filename': filename, 'format': fmt, 'virtual-size': 1024}
    if backing:
        data['backing-filename'] = backing
        data['full-backing-filename'] = backing
    return data


def test_inspect_chain_complete_relative_and_missing():
    answers = {
        ('/i/x/disk', False): img('/i/x/disk', '/i/x/../_base/a'),
        ('/i/x/disk', True): [img('/i/x/disk', '/i/x/../_base/a'), img('/i/_base/a', fmt='raw')],
        ('/i/y/disk', False): img('/i/y/disk', 'snap'),
        ('/i/y/disk', True): (1, '', "qemu-img: Could not open '/i/_base/b': No such file or directory"),
        ('/i/y/snap', False): img('/i/y/snap', '/i/_base/b'),
        ('/i/_base/b', False): (1, '', "qemu-img: Could not open '/i/_base/b': No such file or directory"),
        ('/i/z/disk', False): img('/i/z/disk', fmt='raw'),
    }
    runner = Runner(FakeModule(answers))
    assert q.inspect_chain(runner, '/i/x/disk') == {'disk': '/i/x/disk', 'format': 'qcow2', 'chain': ['/i/_base/a'],
                                                    'missing': None, 'error': None}
    result = q.inspect_chain(runner, '/i/y/disk')
    assert result['chain'] == ['/i/y/snap', '/i/_base/b'] and result['missing'] == '/i/_base/b'
    assert "Could not open '/i/_base/b'" in result['error']
    assert q.inspect_chain(runner, '/i/z/disk')['chain'] == []
    users, broken = nc.inspect_disks(runner, ['/i/x/disk', '/i/y/disk', '/i/z/disk'])
    assert users['/i/_base/a'] == ['/i/x/disk'] and users['/i/_base/b'] == ['/i/y/disk'] and users['/i/y/snap'] == ['/i/y/disk']
    assert broken == [{'disk': '/i/y/disk', 'backing_file': '/i/_base/b', 'error': result['error']}]


def test_inspect_disks_reports_unreadable_disk():
    runner = Runner(FakeModule({('/i/x/disk', False): (1, '', "qemu-img: Could not open '/i/x/disk': Image is not in qcow2 format")}))
    users, broken = nc.inspect_disks(runner, ['/i/x/disk'])
    assert users == {} and broken[0]['backing_file'] is None and 'not in qcow2 format' in broken[0]['error']


def test_now_is_default():
    remove, keep = nc.decide_purge([entry('a' * 40, mtime=time.time() - 10)], {}, [], {}, min_age=3600)
    assert remove == [] and 'younger' in keep[0]['reason']
