"""qemu_img_convert against the real qemu-img and the real Ceph lab: file and RBD targets, each operation
four ways (check, apply, repeat, repeat in check), bad input refused cleanly, failed conversions cleaned up."""
import json
import os
import random

import pytest

from labutil import CEPH_CONF, sh

MIB = 1024 * 1024
SIZE = 8 * MIB


def qemu_img(*args):
    return sh(['qemu-img'] + list(args))


def make_qcow2(path, *writes, **kw):
    """A real qcow2 of SIZE bytes with data written by qemu-io (``writes``: (pattern, offset, length))."""
    argv = ['qemu-img', 'create', '-q', '-f', 'qcow2']
    if kw.get('backing'):
        argv += ['-b', kw['backing'], '-F', 'qcow2']
    sh(argv + [str(path), str(SIZE)])
    for pattern, offset, length in writes:
        sh(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x%02x %d %d' % (pattern, offset, length), str(path)])
    return str(path)


def rbd_spec(pool, image):
    return 'rbd:%s/%s:conf=%s:id=admin' % (pool, image, CEPH_CONF)


def rbd_ls(pool):
    return sorted(json.loads(sh(['rbd', 'ls', '--format', 'json', pool]).stdout))


def same(a, a_fmt, b, b_fmt):
    return sh(['qemu-img', 'compare', '-f', a_fmt, '-F', b_fmt, a, b], check=False).returncode == 0


def no_tmp(directory):
    return [n for n in os.listdir(str(directory)) if 'fastboot-tmp' in n] == []


@pytest.fixture()
def src(tmp_path):
    return make_qcow2(tmp_path / 'disk.qcow2', (0xab, 0, 4 * MIB), (0xcd, 6 * MIB, MIB))


@pytest.fixture()
def other(tmp_path):
    return make_qcow2(tmp_path / 'other.qcow2', (0x11, 0, MIB))


def four_ways(run_module, args, before, after):
    """check (would change, nothing written), apply, repeat (unchanged), repeat in check (unchanged)."""
    res = run_module('qemu_img_convert', args, check=True, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert res['diff']['before']['exists'] is False and res['diff']['after']['exists'] is True
    before()
    res = run_module('qemu_img_convert', args, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert res['bytes_written'] > 0 and res['actual_size'] == res['bytes_written']
    assert isinstance(res['duration'], float)
    after()
    applied = res
    for check in (False, True):
        res = run_module('qemu_img_convert', args, check=check, diff=True)
        assert res.get('changed') is False and not res.get('failed'), res
        assert res['bytes_written'] == 0 and res['diff']['before'] == res['diff']['after']
        after()
    return applied


def test_file_target(run_module, src, tmp_path):
    dest = str(tmp_path / 'disk.raw')

    def before():
        assert not os.path.exists(dest) and no_tmp(tmp_path)

    def after():
        assert same(src, 'qcow2', dest, 'raw')
        assert json.loads(qemu_img('info', '--output=json', dest).stdout)['format'] == 'raw'
        assert no_tmp(tmp_path)

    res = four_ways(run_module, {'src': src, 'dest': dest}, before, after)
    assert res['src'] == src and res['dest'] == dest
    assert res['src_format'] == 'qcow2' and res['dest_format'] == 'raw' and res['virtual_size'] == SIZE
    assert res['backing_file'] is None
    assert 4 * MIB <= res['actual_size'] < SIZE  # sparse: only the written 5 MiB are allocated


def test_rbd_target(run_module, src, pool):
    args = {'src': src, 'dest': 'rbd:%s/disk' % pool, 'ceph_conf': CEPH_CONF, 'ceph_user': 'admin'}

    def before():
        assert rbd_ls(pool) == []

    def after():
        assert rbd_ls(pool) == ['disk']
        info = json.loads(sh(['rbd', 'info', '--format', 'json', '%s/disk' % pool]).stdout)
        assert info['size'] == SIZE
        assert same(src, 'qcow2', rbd_spec(pool, 'disk'), 'raw')

    res = four_ways(run_module, args, before, after)
    assert res['dest'] == 'rbd:%s/disk' % pool and res['virtual_size'] == SIZE
    assert 4 * MIB <= res['actual_size'] <= SIZE


def test_backing_file_refused_then_flattened_into_rbd(run_module, src, tmp_path, pool):
    overlay = make_qcow2(tmp_path / 'overlay.qcow2', (0xee, 0, MIB), backing=src)
    args = {'src': overlay, 'dest': 'rbd:%s/flat' % pool, 'ceph_conf': CEPH_CONF}
    for check in (True, False):
        res = run_module('qemu_img_convert', args, check=check)
        assert res.get('failed') and 'has a backing file (%s)' % src in res['msg'] and 'allow_backing_file' in res['msg'], res
    assert rbd_ls(pool) == []

    args['allow_backing_file'] = True

    def after():
        assert rbd_ls(pool) == ['flat']
        assert same(overlay, 'qcow2', rbd_spec(pool, 'flat'), 'raw')  # the whole chain: overlay over its base
        assert not same(src, 'qcow2', rbd_spec(pool, 'flat'), 'raw')

    res = four_ways(run_module, args, lambda: None, after)
    assert res['backing_file'] == src


def test_qcow2_dest_format(run_module, src, tmp_path):
    dest = str(tmp_path / 'copy.qcow2')

    def after():
        assert json.loads(qemu_img('info', '--output=json', dest).stdout)['format'] == 'qcow2'
        assert same(src, 'qcow2', dest, 'qcow2') and no_tmp(tmp_path)

    res = four_ways(run_module, {'src': src, 'dest': dest, 'dest_format': 'qcow2'}, lambda: None, after)
    assert res['dest_format'] == 'qcow2'


def test_differing_file_target_needs_force(run_module, src, other, tmp_path):
    dest = str(tmp_path / 'disk.raw')
    qemu_img('convert', '-f', 'qcow2', '-O', 'raw', other, dest)
    old = open(dest, 'rb').read()
    args = {'src': src, 'dest': dest}
    for check in (True, False):
        res = run_module('qemu_img_convert', args, check=check)
        assert res.get('failed') and 'exists and differs' in res['msg'] and 'force=true' in res['msg'], res
        assert open(dest, 'rb').read() == old and no_tmp(tmp_path)

    args['force'] = True
    res = run_module('qemu_img_convert', args, check=True, diff=True)
    assert res.get('changed') is True and res['diff']['before']['exists'] is True, res
    assert open(dest, 'rb').read() == old
    res = run_module('qemu_img_convert', args)
    assert res.get('changed') is True and not res.get('failed'), res
    assert same(src, 'qcow2', dest, 'raw') and no_tmp(tmp_path)
    for check in (False, True):
        assert run_module('qemu_img_convert', args, check=check).get('changed') is False


def test_file_target_other_size_or_format_differs(run_module, src, tmp_path):
    dest = str(tmp_path / 'disk.raw')
    qemu_img('create', '-q', '-f', 'raw', dest, str(SIZE // 2))
    res = run_module('qemu_img_convert', {'src': src, 'dest': dest})
    assert res.get('failed') and 'virtual size is %d bytes, not %d' % (SIZE // 2, SIZE) in res['msg'], res
    res = run_module('qemu_img_convert', {'src': src, 'dest': dest, 'dest_format': 'qcow2'})
    assert res.get('failed') and 'in format raw, not qcow2' in res['msg'], res
    assert os.path.getsize(dest) == SIZE // 2 and no_tmp(tmp_path)


def test_differing_rbd_target_needs_force(run_module, src, other, pool):
    sh(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', other, rbd_spec(pool, 'disk')])
    args = {'src': src, 'dest': 'rbd:%s/disk' % pool, 'ceph_conf': CEPH_CONF}
    for check in (True, False):
        res = run_module('qemu_img_convert', args, check=check)
        assert res.get('failed') and 'exists and differs' in res['msg'], res
    assert same(other, 'qcow2', rbd_spec(pool, 'disk'), 'raw') and rbd_ls(pool) == ['disk']

    args['force'] = True
    assert run_module('qemu_img_convert', args, check=True).get('changed') is True
    assert same(other, 'qcow2', rbd_spec(pool, 'disk'), 'raw')
    res = run_module('qemu_img_convert', args)
    assert res.get('changed') is True and not res.get('failed'), res
    assert same(src, 'qcow2', rbd_spec(pool, 'disk'), 'raw') and rbd_ls(pool) == ['disk']
    assert run_module('qemu_img_convert', args).get('changed') is False


def test_missing_src(run_module, tmp_path):
    missing = str(tmp_path / 'nope.qcow2')
    res = run_module('qemu_img_convert', {'src': missing, 'dest': str(tmp_path / 'x.raw')})
    assert res.get('failed') and res['msg'] == 'src %s does not exist' % missing, res
    assert os.listdir(str(tmp_path)) == []


def _garbage_header(path):
    with open(path, 'r+b') as handle:
        handle.seek(4)
        handle.write(b'\xde\xad\xbe\xef' * 8)


def _broken_refcounts(path):
    with open(path, 'r+b') as handle:
        header = handle.read(64)
        refcount_table = int.from_bytes(header[48:56], 'big')
        handle.seek(refcount_table)
        handle.write(b'\xff' * 64)


@pytest.mark.parametrize('damage,expect', [
    (_garbage_header, 'cannot be opened by qemu-img'),
    (lambda p: os.truncate(p, 100), 'header too short'),
    (_broken_refcounts, 'is corrupt: qemu-img check found'),
])
def test_corrupt_qcow2_refused(run_module, src, tmp_path, damage, expect):
    damage(src)
    dest = str(tmp_path / 'disk.raw')
    for check in (True, False):
        res = run_module('qemu_img_convert', {'src': src, 'dest': dest}, check=check)
        assert res.get('failed') and expect in res['msg'] and src in res['msg'], res
    assert sorted(os.listdir(str(tmp_path))) == ['disk.qcow2']


def test_encrypted_refused(run_module, tmp_path):
    enc = str(tmp_path / 'enc.qcow2')
    # a short PBKDF benchmark keeps this fast; qemu sometimes cannot time it ("Unable to get accurate CPU usage")
    for attempt in range(5):
        made = sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '--object', 'secret,id=s0,data=pw',
                   '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=100', enc, str(SIZE)],
                  check=attempt == 4)
        if made.returncode == 0:
            break
    res = run_module('qemu_img_convert', {'src': enc, 'dest': str(tmp_path / 'x.raw')})
    assert res.get('failed') and 'is encrypted' in res['msg'], res
    assert sorted(os.listdir(str(tmp_path))) == ['enc.qcow2']


def test_nonexistent_pool(run_module, src, ceph):
    res = run_module('qemu_img_convert', {'src': src, 'dest': 'rbd:no-such-pool-qic/disk', 'ceph_conf': CEPH_CONF})
    assert res.get('failed') and "RBD pool 'no-such-pool-qic' does not exist" in res['msg'] and 'create it' in res['msg'], res


def damaged_compressed(tmp_path):
    """A qcow2 whose metadata is sound (qemu-img check passes) but whose compressed data is garbage:
    qemu-img convert fails half-way, after the target was created."""
    rng = random.Random(42)
    raw = str(tmp_path / 'noise.raw')
    with open(raw, 'wb') as handle:
        handle.write(bytes(rng.randrange(32, 127) for dummy in range(4 * MIB)))
    path = str(tmp_path / 'damaged.qcow2')
    qemu_img('convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', raw, path)
    os.unlink(raw)
    size = os.path.getsize(path)
    with open(path, 'r+b') as handle:
        handle.seek(size // 2)
        handle.write(bytes(rng.randrange(256) for dummy in range(size // 3)))
    assert sh(['qemu-img', 'check', path], check=False).returncode == 0
    return path


def test_failed_conversion_leaves_file_target_untouched(run_module, other, tmp_path):
    bad = damaged_compressed(tmp_path)
    dest = str(tmp_path / 'disk.raw')
    qemu_img('convert', '-f', 'qcow2', '-O', 'raw', '-S', '0', other, dest)
    dest_before = open(dest, 'rb').read()
    res = run_module('qemu_img_convert', {'src': bad, 'dest': dest, 'force': True, 'dest_format': 'raw'})
    assert res.get('failed') and 'qemu-img convert' in res['msg'] and res.get('changed') is False, res
    assert open(dest, 'rb').read() == dest_before and no_tmp(tmp_path)


def test_failed_conversion_into_rbd_cleans_up(run_module, other, tmp_path, pool):
    bad = damaged_compressed(tmp_path)
    res = run_module('qemu_img_convert', {'src': bad, 'dest': 'rbd:%s/new' % pool, 'ceph_conf': CEPH_CONF})
    assert res.get('failed') and 'qemu-img convert' in res['msg'], res
    assert rbd_ls(pool) == []
