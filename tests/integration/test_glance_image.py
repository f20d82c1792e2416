"""glance_image and the image_pipeline role against the real Glance of the lab's OpenStack all-in-one.

The session fixture openstack_cloud (conftest.py) brings the lab up and yields an openstacksdk connection to the
cloud fastboot-lab (OS_CLIENT_CONFIG_FILE points at the lab's clouds.yaml meanwhile); run_module runs the module
through real ansible. The lab's Glance is a default one on its file store (store id ``fs``, show_image_direct_url
off), so require_rbd_location must fail there with a message that says what to change; the RBD-positive path is
tested once the lab is switched to RBD. Every image a test makes has a unique name and is deleted afterwards.

The role test runs ansible-playbook on localhost with the lab's real Debian 12 cloud-init image
(tools/lab/build-cloud-image.sh: qcow2, 2 GiB virtual, about 430 MiB allocated): convert to raw, bake, upload,
then reads the baked cloud-init file back from the image file in Glance's file store.
"""
import hashlib
import json
import os
import subprocess
import sys
import uuid

import pytest

import bootlab
from labutil import ROOT, sh

pytestmark = pytest.mark.openstack

MIB = 1024 * 1024
CLOUD = 'fastboot-lab'
GLANCE_STORE = '/var/lib/glance/images'


@pytest.fixture()
def names(openstack_cloud):
    """Unique image names for one test; every image with one of them (or renamed from one) is deleted afterwards."""
    made = []

    def name(stem='gi'):
        made.append('%s-%s' % (stem, uuid.uuid4().hex[:8]))
        return made[-1]
    yield name
    for image in list(openstack_cloud.image.images()):
        if any(image.name == n or image.name.startswith(n + '-replaced-') for n in made):
            openstack_cloud.image.delete_image(image.id, ignore_missing=True)


def disk(tmp_path, name='disk.raw', seed=b'a', size_mib=8):
    """A small raw disk: data at two places and a hole, so its content is unique to ``seed``."""
    path = str(tmp_path / name)
    with open(path, 'wb') as handle:
        handle.write(hashlib.sha512(seed).digest() * (MIB // 64))
        handle.seek(5 * MIB)
        handle.write(seed * MIB)
        handle.truncate(size_mib * MIB)
    return path


def md5(path):
    digest = hashlib.md5()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(MIB), b''):
            digest.update(block)
    return digest.hexdigest()


def glance_images(conn, name):
    return [i for i in conn.image.images() if i.name == name]


def raw_image(conn, image_id):
    """The image as the Image API returns it (every property at the top level)."""
    return conn.image.get('/images/%s' % image_id).json()


def test_upload_four_ways_and_properties(openstack_cloud, run_module, names, tmp_path):
    path = disk(tmp_path)
    name = names()
    args = {'cloud': CLOUD, 'name': name, 'filename': path,
            'properties': {'img_config_drive': 'mandatory', 'hw_disk_bus': 'virtio', 'hw_qemu_guest_agent': True}}

    res = run_module('glance_image', args, check=True, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert res['operation'] == 'upload' and res['uploaded'] is False and res['id'] is None
    assert res['checksum'] == md5(path) and res['diff']['before'] == {'exists': False}
    assert glance_images(openstack_cloud, name) == []

    res = run_module('glance_image', args, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert res['uploaded'] is True and res['operation'] == 'upload' and res['status'] == 'active'
    image = raw_image(openstack_cloud, res['id'])
    assert image['checksum'] == md5(path) == res['checksum'] and image['size'] == os.path.getsize(path)
    assert image['os_hash_value'] == res['os_hash_value'] and image['os_hash_algo'] == res['os_hash_algo']
    assert image['disk_format'] == 'raw' and image['container_format'] == 'bare'
    assert (image['img_config_drive'], image['hw_disk_bus'], image['hw_qemu_guest_agent']) == ('mandatory', 'virtio', 'true')
    assert res['stores'] == ['fs'] and res['direct_url'] is None
    image_id = res['id']

    for check in (False, True):
        res = run_module('glance_image', args, check=check, diff=True)
        assert res.get('changed') is False and not res.get('failed'), res
        assert res['operation'] == 'none' and res['id'] == image_id and res['matched_by'] == 'hash' and not res['uploaded']
        assert res['diff']['before'] == res['diff']['after']
    assert [i.id for i in glance_images(openstack_cloud, name)] == [image_id]

    # a property that differs is updated in place (check first), one set to null is removed, others are kept
    args['properties'] = {'img_config_drive': 'mandatory', 'hw_disk_bus': 'scsi', 'hw_qemu_guest_agent': None,
                          'os_require_quiesce': True}
    res = run_module('glance_image', args, check=True, diff=True)
    assert res.get('changed') is True and res['operation'] == 'update', res
    assert res['diff']['before']['properties'] == {'img_config_drive': 'mandatory', 'hw_disk_bus': 'virtio',
                                                   'hw_qemu_guest_agent': 'true'}
    assert res['diff']['after']['properties'] == {'img_config_drive': 'mandatory', 'hw_disk_bus': 'scsi',
                                                  'os_require_quiesce': 'true'}
    assert raw_image(openstack_cloud, image_id)['hw_disk_bus'] == 'virtio'
    res = run_module('glance_image', args, diff=True)
    assert res.get('changed') is True and res['operation'] == 'update' and res['id'] == image_id and not res['uploaded'], res
    image = raw_image(openstack_cloud, image_id)
    assert image['hw_disk_bus'] == 'scsi' and image['os_require_quiesce'] == 'true' and 'hw_qemu_guest_agent' not in image
    assert image['img_config_drive'] == 'mandatory' and image['checksum'] == md5(path)
    res = run_module('glance_image', args)
    assert res.get('changed') is False and res['operation'] == 'none', res


def test_fingerprint_needs_no_file(openstack_cloud, run_module, names, tmp_path):
    path = disk(tmp_path, seed=b'f')
    name = names()
    res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': path, 'fingerprint': 'fp-1'})
    assert res.get('changed') is True and res['uploaded'] and res['properties']['fastboot_fingerprint'] == 'fp-1', res
    image_id = res['id']
    os.unlink(path)
    for check in (True, False):
        res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': path, 'fingerprint': 'fp-1'},
                         check=check)
        assert res.get('changed') is False and res['found'] and res['matched_by'] == 'fingerprint', res
        assert res['id'] == image_id
    # another fingerprint and no file: check mode reports the upload and the conflict, the real run refuses
    res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': path, 'fingerprint': 'fp-2'}, check=True)
    assert res.get('changed') is True and res['operation'] == 'upload' and not res['found'], res
    assert [c['id'] for c in res['conflicts']] == [image_id] and 'not there yet' in res['msg']
    res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': path, 'fingerprint': 'fp-2'})
    assert res.get('failed') and image_id in res['msg'], res
    assert [i.id for i in glance_images(openstack_cloud, name)] == [image_id]


def test_other_content_is_refused_then_renamed(openstack_cloud, run_module, names, tmp_path):
    first, second = disk(tmp_path, 'one.raw', b'1'), disk(tmp_path, 'two.raw', b'2')
    name = names()
    res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': first})
    assert res.get('changed') is True and res['uploaded'], res
    old_id = res['id']
    for check in (True, False):
        res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': second}, check=check)
        assert res.get('failed') and res.get('changed') is False, res
        assert 'with other content' in res['msg'] and old_id in res['msg'] and 'on_conflict=rename' in res['msg']
    assert [i.id for i in glance_images(openstack_cloud, name)] == [old_id]
    assert raw_image(openstack_cloud, old_id)['checksum'] == md5(first)

    res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': second, 'on_conflict': 'rename'})
    assert res.get('changed') is True and res['uploaded'] and res['id'] != old_id, res
    assert res['renamed'] == [{'id': old_id, 'name': name, 'new_name': '%s-replaced-%s' % (name, old_id[:8])}]
    assert [i.id for i in glance_images(openstack_cloud, name)] == [res['id']]
    old = raw_image(openstack_cloud, old_id)
    assert old['status'] == 'active' and old['name'] == '%s-replaced-%s' % (name, old_id[:8])
    assert old['fastboot_replaced_by'] == res['id'] and old['checksum'] == md5(first)
    assert raw_image(openstack_cloud, res['id'])['checksum'] == md5(second)


def test_require_rbd_location_fails_on_the_file_store(openstack_cloud, run_module, names, tmp_path):
    path = disk(tmp_path, seed=b'r')
    name = names()
    args = {'cloud': CLOUD, 'name': name, 'filename': path, 'require_rbd_location': True}
    # a new image: the lab's admin sees the store type (file), so nothing is uploaded
    for check in (True, False):
        res = run_module('glance_image', args, check=check)
        assert res.get('failed') and res.get('changed') is False, res
        assert 'store fs of type file, not rbd' in res['msg'] and 'nothing was uploaded' in res['msg']
        assert 'show_image_direct_url' in res['msg'] and 'glance-api.conf' in res['msg']
    assert glance_images(openstack_cloud, name) == []
    # an existing image on the file store: refused with the settings to change, in check mode too, nothing changed
    res = run_module('glance_image', {'cloud': CLOUD, 'name': name, 'filename': path})
    assert res.get('changed') is True and res['uploaded'], res
    for check in (True, False):
        res = run_module('glance_image', dict(args, properties={'hw_disk_bus': 'virtio'}), check=check)
        assert res.get('failed') and res.get('changed') is False, res
        for needle in ('no RBD location', 'show_image_direct_url', 'show_multiple_locations', 'glance-api.conf',
                       'fs (type file)', 'default_backend'):
            assert needle in res['msg'], (needle, res['msg'])
    assert 'hw_disk_bus' not in raw_image(openstack_cloud, glance_images(openstack_cloud, name)[0].id)


# ---------------------------------------------------------------- the role

def playbook(tmp_path, images, **extra):
    play = [{'hosts': 'localhost', 'gather_facts': False, 'roles': [{'role': 'fastboot.cloud.image_pipeline', 'vars': dict(
        {'image_pipeline_cloud': CLOUD, 'image_pipeline_work_dir': str(tmp_path / 'work'), 'image_pipeline_images': images},
        **extra)}]}]
    path = tmp_path / ('play-%s.yml' % uuid.uuid4().hex[:6])
    path.write_text(json.dumps(play))
    return str(path)


def run_playbook(path, check=False):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
               ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
            '-e', 'ansible_python_interpreter=' + sys.executable, path]
    if check:
        argv.append('--check')
    return subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT, check=False)


def recap(proc):
    line = [l for l in proc.stdout.splitlines() if l.startswith('localhost ') and 'ok=' in l][-1]
    return dict((k, int(v)) for k, v in (w.split('=') for w in line.split()[2:]))


def baked_cfg(image_file):
    table = json.loads(sh(['sfdisk', '-J', image_file]).stdout)['partitiontable']
    offset = table['partitions'][0]['start'] * table.get('sectorsize', 512)
    return sh(['debugfs', '-R', 'cat /etc/cloud/cloud.cfg.d/99-fastboot.cfg',
               '%s?offset=%d' % (image_file, offset)]).stdout


def test_role_builds_once(openstack_cloud, names, tmp_path):
    src = bootlab.ensure_image()['qcow2']
    name = names('gi-pipeline')
    images = [{'name': name, 'src': src, 'properties': {'hw_qemu_guest_agent': True}, 'bake': {'metadata_max_wait': 3}}]
    play = playbook(tmp_path, images)

    proc = run_playbook(play, check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert recap(proc)['changed'] > 0 and glance_images(openstack_cloud, name) == []
    assert not os.path.exists(str(tmp_path / 'work'))

    proc = run_playbook(play)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    found = glance_images(openstack_cloud, name)
    assert len(found) == 1
    image = raw_image(openstack_cloud, found[0].id)
    assert image['status'] == 'active' and image['disk_format'] == 'raw' and image['size'] == 2 * 1024 * MIB
    assert (image['img_config_drive'], image['hw_disk_bus'], image['hw_qemu_guest_agent']) == ('mandatory', 'virtio', 'true')
    assert len(image['fastboot_fingerprint']) == 64
    assert os.listdir(str(tmp_path / 'work')) == []  # the work copy was removed
    # the image Glance stores (the lab's file store) is raw and has the baked cloud-init configuration
    stored = os.path.join(GLANCE_STORE, image['id'])
    assert '"format": "raw"' in sh(['qemu-img', 'info', '--output=json', stored]).stdout
    cfg = baked_cfg(stored)
    assert 'ConfigDrive' in cfg and 'max_wait: 3' in cfg.replace('"', ''), cfg

    for check in (False, True):
        proc = run_playbook(play, check=check)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert recap(proc)['changed'] == 0, proc.stdout[-4000:]
    assert [i.id for i in glance_images(openstack_cloud, name)] == [image['id']]

    # a property change is applied to the same image, without a rebuild
    images[0]['properties'] = {'hw_qemu_guest_agent': False}
    proc = run_playbook(playbook(tmp_path, images))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert recap(proc)['changed'] == 1, proc.stdout[-4000:]  # the update, nothing built
    assert raw_image(openstack_cloud, image['id'])['hw_qemu_guest_agent'] == 'false'
    assert [i.id for i in glance_images(openstack_cloud, name)] == [image['id']]

    # other bake settings make another fingerprint: refused before anything is built, Glance unchanged
    images[0]['bake'] = {'metadata_max_wait': 4}
    proc = run_playbook(playbook(tmp_path, images))
    assert proc.returncode != 0 and 'with other content' in proc.stdout and image['id'] in proc.stdout, proc.stdout[-4000:]
    assert os.listdir(str(tmp_path / 'work')) == []
    assert [i.id for i in glance_images(openstack_cloud, name)] == [image['id']]

    # require_rbd on the lab's file store: refused before building
    images[0]['bake'] = {'metadata_max_wait': 3}
    proc = run_playbook(playbook(tmp_path, images, image_pipeline_require_rbd=True))
    assert proc.returncode != 0 and 'show_image_direct_url' in proc.stdout, proc.stdout[-4000:]
