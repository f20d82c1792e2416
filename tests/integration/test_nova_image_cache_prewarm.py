"""nova_image_cache_prewarm against real files and real qemu-img: a Glance file store with a raw and a qcow2
image, hard link on the same filesystem, sparse copy onto another filesystem (a tmpfs mount), qcow2 converted
to raw, owner and mode, idempotence (check, apply, repeat, repeat in check), a full disk (a small tmpfs) that
leaves nothing under the final name, and RBD-backed computes skipped."""
import hashlib
import os
import stat
import subprocess
import uuid

import pytest

from labutil import sh

MIB = 1024 * 1024
RAW_ID = str(uuid.UUID(int=1))
QCOW_ID = str(uuid.UUID(int=2))


def sha1(image_id):
    return hashlib.sha1(image_id.encode()).hexdigest()


def fmt(path):
    return sh(['qemu-img', 'info', '--output=json', path]).stdout


def same(a, a_fmt, b, b_fmt):
    return sh(['qemu-img', 'compare', '-f', a_fmt, '-F', b_fmt, a, b], check=False).returncode == 0


@pytest.fixture()
def store(tmp_path):
    """A Glance file store: images named by id, one raw (sparse, data at two places), one qcow2."""
    glance = tmp_path / 'glance'
    glance.mkdir()
    raw = str(glance / RAW_ID)
    with open(raw, 'wb') as handle:
        handle.write(os.urandom(MIB))
        handle.seek(6 * MIB)
        handle.write(b'\x5a' * MIB)
        handle.truncate(16 * MIB)
    qcow = str(glance / QCOW_ID)
    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', qcow, str(16 * MIB)])
    sh(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x3c 0 2M', qcow])
    return str(glance)


@pytest.fixture()
def mounts(tmp_path):
    """Mount tmpfs file systems (root only); unmounted afterwards."""
    done = []

    def mount(name, size):
        path = str(tmp_path / name)
        os.makedirs(path)
        proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size, 'tmpfs', path],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip('cannot mount a tmpfs here (%s)' % proc.stderr.strip())
        done.append(path)
        return path
    yield mount
    for path in done:
        subprocess.run(['umount', '-l', path], check=False)


def owner_args():
    return {'owner': str(os.getuid()), 'group': str(os.getgid()), 'mode': '0640'}


def leftovers(base):
    return [n for n in os.listdir(base) if 'fastboot-tmp' in n] if os.path.isdir(base) else []


def test_prewarm_link_and_convert_four_ways(run_module, store, tmp_path):
    instances = tmp_path / 'instances'
    instances.mkdir()
    base = str(instances / '_base')
    args = dict(owner_args(), instances_path=str(instances), glance_store_dir=store,
                images=[{'id': RAW_ID}, {'id': QCOW_ID, 'format': 'qcow2'}])
    raw_entry, qcow_entry = os.path.join(base, sha1(RAW_ID)), os.path.join(base, sha1(QCOW_ID))

    res = run_module('nova_image_cache_prewarm', args, check=True, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert [i['action'] for i in res['images']] == ['link', 'convert']
    assert not os.path.exists(base)
    assert res['diff'] == {'before': {'entries': []}, 'after': {'entries': sorted([sha1(RAW_ID), sha1(QCOW_ID)])}}

    res = run_module('nova_image_cache_prewarm', args, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert [i['action'] for i in res['images']] == ['link', 'convert']
    assert [i['path'] for i in res['images']] == [raw_entry, qcow_entry]
    src = os.stat(os.path.join(store, RAW_ID))
    entry = os.stat(raw_entry)
    assert entry.st_ino == src.st_ino and entry.st_nlink == 2
    assert '"format": "raw"' in fmt(qcow_entry) and same(os.path.join(store, QCOW_ID), 'qcow2', qcow_entry, 'raw')
    assert os.stat(qcow_entry).st_nlink == 1
    for path in (raw_entry, qcow_entry):
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == os.getuid() and st.st_gid == os.getgid()
    assert leftovers(base) == []

    for check in (False, True):
        res = run_module('nova_image_cache_prewarm', args, check=check, diff=True)
        assert res.get('changed') is False and not res.get('failed'), res
        assert [i['action'] for i in res['images']] == ['none', 'none']
        assert res['diff']['before'] == res['diff']['after']
    assert os.stat(raw_entry).st_nlink == 2

    # a wrong mode is corrected; the entry is not rewritten
    os.chmod(qcow_entry, 0o600)
    ino = os.stat(qcow_entry).st_ino
    res = run_module('nova_image_cache_prewarm', args)
    assert res.get('changed') is True and [i['action'] for i in res['images']] == ['none', 'attributes'], res
    assert stat.S_IMODE(os.stat(qcow_entry).st_mode) == 0o640 and os.stat(qcow_entry).st_ino == ino


def test_prewarm_copy_to_other_filesystem(run_module, store, mounts):
    instances = mounts('instances', '64m')
    base = os.path.join(instances, '_base')
    args = dict(owner_args(), instances_path=instances,
                images=[{'id': RAW_ID, 'path': os.path.join(store, RAW_ID)}])
    entry = os.path.join(base, sha1(RAW_ID))
    res = run_module('nova_image_cache_prewarm', args)
    assert res.get('changed') is True and [i['action'] for i in res['images']] == ['copy'], res
    st = os.stat(entry)
    assert st.st_nlink == 1 and st.st_ino != os.stat(os.path.join(store, RAW_ID)).st_ino
    assert st.st_size == 16 * MIB and st.st_blocks * 512 <= 4 * MIB  # holes stayed holes
    assert same(os.path.join(store, RAW_ID), 'raw', entry, 'raw') and leftovers(base) == []
    res = run_module('nova_image_cache_prewarm', args, check=True)
    assert res.get('changed') is False and [i['action'] for i in res['images']] == ['none'], res


def test_prewarm_full_disk_leaves_nothing(run_module, store, mounts, tmp_path):
    instances = mounts('small', '8m')
    base = os.path.join(instances, '_base')
    big = str(tmp_path / 'big.raw')
    with open(big, 'wb') as handle:
        handle.write(os.urandom(12 * MIB))
    big_qcow = str(tmp_path / 'big.qcow2')
    sh(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', big, big_qcow])
    for image_id, path, action in (('big-raw', big, 'copy'), ('big-qcow', big_qcow, 'convert')):
        args = dict(owner_args(), instances_path=instances, images=[{'id': image_id, 'path': path}])
        res = run_module('nova_image_cache_prewarm', args)
        assert res.get('failed') and 'no space left' in res['msg'] and 'nothing was placed' in res['msg'], res
        assert res['images'] == [] or res['images'][0]['action'] == action
        assert not os.path.exists(os.path.join(base, sha1(image_id))) and leftovers(base) == []


def test_prewarm_refuses_a_missing_image(run_module, store, tmp_path):
    # the RBD skip (images_type=rbd read from nova.conf) is covered by test_role_purge_and_prewarm
    instances = tmp_path / 'instances'
    instances.mkdir()
    args = dict(owner_args(), instances_path=str(instances), glance_store_dir=store, images=[{'id': 'no-such-image'}])
    res = run_module('nova_image_cache_prewarm', args)
    assert res.get('failed') and 'no-such-image' in res['msg'] and 'does not exist' in res['msg'], res
    assert not os.path.exists(str(instances / '_base'))


def test_role_purge_and_prewarm(store, tmp_path):
    """The role on localhost (ansible-playbook): purge on an rbd compute, then pre-warm a local-storage compute."""
    import json
    import sys
    from labutil import ROOT
    rbd_inst, local_inst = tmp_path / 'rbd', tmp_path / 'local'
    (rbd_inst / '_base').mkdir(parents=True)
    unused = rbd_inst / '_base' / sha1('gone')
    unused.write_bytes(b'x' * 4096)
    conf = tmp_path / 'nova.conf'
    conf.write_text('[libvirt]\nimages_type = rbd\n')
    local_inst.mkdir()
    playbook = tmp_path / 'play.yml'
    playbook.write_text(json.dumps([
        {'hosts': 'localhost', 'gather_facts': False, 'roles': [{'role': 'fastboot.cloud.nova_image_cache', 'vars': {
            'nova_image_cache_instances_path': str(rbd_inst), 'nova_image_cache_nova_conf': str(conf),
            'nova_image_cache_prewarm_images': [{'id': RAW_ID}], 'nova_image_cache_glance_store_dir': store}}]},
        {'hosts': 'localhost', 'gather_facts': False, 'roles': [{'role': 'fastboot.cloud.nova_image_cache', 'vars': {
            'nova_image_cache_instances_path': str(local_inst), 'nova_image_cache_nova_conf': str(tmp_path / 'absent.conf'),
            'nova_image_cache_owner': str(os.getuid()), 'nova_image_cache_group': str(os.getgid()),
            'nova_image_cache_prewarm_images': [{'id': RAW_ID}, {'id': QCOW_ID}], 'nova_image_cache_glance_store_dir': store}}]},
    ]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
               ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
            '-e', 'ansible_python_interpreter=' + sys.executable, str(playbook)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not unused.exists()  # purged on the rbd compute, which is not pre-warmed
    assert not os.path.exists(str(rbd_inst / '_base' / sha1(RAW_ID)))
    # the local compute is not purged (only_rbd) and is pre-warmed
    assert sorted(os.listdir(str(local_inst / '_base'))) == sorted([sha1(RAW_ID), sha1(QCOW_ID)])
