"""The built-in OpenStack all-in-one (tools/lab/openstack.sh): idempotent up, a real guest boot, status, down.

The session fixture openstack_cloud (conftest.py) brings the lab up once and tears it down at the end, asserting
that no process it started is left. The guest is a one-sector disk built here: its boot sector (16-bit x86, 35 bytes) writes a
marker to the first serial port, which Nova logs as the server's console; seeing the marker through
Nova's console API proves the VM really executed (Nova reports ACTIVE for a paused domain too).
"""
import os
import subprocess
import time
import uuid

import pytest

from labutil import SYS_PATH
from oslab import CLOUDS, GUEST_MARKER, boot_disk, expected_services, lab, must, service_pids

pytestmark = pytest.mark.openstack


def test_up_again_changes_nothing(openstack_cloud):
    before = service_pids(must(lab('status')).stdout)
    assert sorted(before) == expected_services()
    again = must(lab('up'))
    assert 'nothing to do' in again.stdout
    assert service_pids(must(lab('status')).stdout) == before


def test_server_boots_and_prints_to_console(openstack_cloud, tmp_path):
    disk = str(tmp_path / 'marker.raw')
    boot_disk(disk)
    name = 'lab-test-' + uuid.uuid4().hex[:8]
    image = openstack_cloud.create_image(name, filename=disk, disk_format='raw', container_format='bare', wait=True)
    server = None
    try:
        assert image.status == 'active'
        flavor = openstack_cloud.compute.find_flavor('lab.tiny', ignore_missing=False)
        started = time.time()
        server = openstack_cloud.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks='none')
        server = openstack_cloud.compute.wait_for_server(server, status='ACTIVE', interval=1, wait=300)
        print('ACTIVE after %.1f s' % (time.time() - started))
        domain = server.instance_name
        virsh = ['virsh', '-c', 'qemu:///system']
        env = dict(os.environ, PATH=SYS_PATH)
        state = subprocess.run(virsh + ['domstate', domain], capture_output=True, text=True, env=env, check=True)
        assert state.stdout.strip() == 'running'
        xml = subprocess.run(virsh + ['dumpxml', domain], capture_output=True, text=True, env=env, check=True)
        assert "<domain type='qemu'" in xml.stdout, 'not a TCG domain'
        with open('/run/libvirt/qemu/%s.pid' % domain) as handle:
            qemu_pid = int(handle.read().strip())
        with open('/proc/%d/cmdline' % qemu_pid, 'rb') as handle:
            cmdline = handle.read().replace(b'\0', b' ').decode()
        assert 'accel=tcg' in cmdline or '-accel tcg' in cmdline, cmdline
        output = ''
        end = time.time() + 240
        while time.time() < end:
            output = openstack_cloud.compute.get_server_console_output(server)['output'] or ''
            if GUEST_MARKER in output:
                break
            time.sleep(2)
        print('console marker after %.1f s' % (time.time() - started))
        assert GUEST_MARKER in output, 'no guest output in the console log:\n' + output
    finally:
        if server is not None:
            openstack_cloud.compute.delete_server(server)
            openstack_cloud.compute.wait_for_delete(server, interval=1, wait=300)
        openstack_cloud.image.delete_image(image)


def test_status_reports_every_service(openstack_cloud):
    out = must(lab('status')).stdout
    assert sorted(service_pids(out)) == expected_services()
    neutron = [name for name in expected_services() if name.startswith('neutron-')][0]
    for api in ('keystone', 'glance-api', 'cinder-api', 'placement-api', 'nova-api', neutron):
        line = [row for row in out.splitlines() if row.startswith(api + ' http ')]
        assert line and not line[0].endswith(' 000'), out
    assert 'nova-compute host' in out, out
    assert must(lab('env')).stdout.strip() == (
        'export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=fastboot-lab' % CLOUDS)


def test_prewarm_api_caches_the_image_on_the_aggregate(openstack_cloud, tmp_path, run_module):
    """nova_image_cache_prewarm method=api against the real Nova (aggregate image pre-cache, microversion 2.81):
    check mode requests nothing; the real run makes nova-compute download the image into _base under its
    cache name sha1(image id)."""
    import hashlib
    disk = str(tmp_path / 'precache.raw')
    boot_disk(disk)
    name = 'lab-precache-' + uuid.uuid4().hex[:8]
    image = openstack_cloud.create_image(name, filename=disk, disk_format='raw', container_format='bare', wait=True)
    aggregate = None
    host = [s.host for s in openstack_cloud.compute.services() if s.binary == 'nova-compute'][0]
    cached = os.path.join('/var/lib/nova/instances/_base', hashlib.sha1(image.id.encode()).hexdigest())
    args = {'method': 'api', 'cloud': 'fastboot-lab', 'aggregates': [name], 'images': [{'id': image.id}]}
    try:
        aggregate = openstack_cloud.compute.create_aggregate(name=name)
        openstack_cloud.compute.add_host_to_aggregate(aggregate, host)
        assert not os.path.exists(cached)

        checked = run_module('nova_image_cache_prewarm', args, check=True)
        assert not checked.get('failed'), checked
        assert checked['changed'] and checked['requests'][0]['images'] == [image.id]
        time.sleep(5)
        assert not os.path.exists(cached), 'check mode sent a pre-cache request'

        applied = run_module('nova_image_cache_prewarm', args)
        assert not applied.get('failed'), applied
        assert applied['changed'] and applied['requests'][0]['aggregate'] == name
        end = time.time() + 240
        while time.time() < end and not os.path.exists(cached):
            time.sleep(2)
        assert os.path.exists(cached), 'nova-compute did not cache %s as %s' % (image.id, cached)

        missing = run_module('nova_image_cache_prewarm', dict(args, aggregates=['no-such-aggregate']))
        assert missing.get('failed') and 'no-such-aggregate' in missing['msg'], missing
    finally:
        if aggregate is not None:
            openstack_cloud.compute.remove_host_from_aggregate(aggregate, host)
            openstack_cloud.compute.delete_aggregate(aggregate)
        openstack_cloud.image.delete_image(image)


def test_purge_only_deleted_images_lists_glance(openstack_cloud, tmp_path, run_module):
    """nova_image_cache_purge only_deleted_images with cloud: the image ids come from the real Glance; the cache
    entry of an image still in Glance stays, the entry of an image Glance no longer has goes."""
    import hashlib
    disk = str(tmp_path / 'listed.raw')
    boot_disk(disk)
    image = openstack_cloud.create_image('lab-listed-' + uuid.uuid4().hex[:8], filename=disk, disk_format='raw',
                                         container_format='bare', wait=True)
    try:
        base = tmp_path / 'instances' / '_base'
        base.mkdir(parents=True)
        present = hashlib.sha1(image.id.encode()).hexdigest()
        deleted = hashlib.sha1(str(uuid.uuid4()).encode()).hexdigest()
        for entry in (present, deleted):
            (base / entry).write_bytes(b'\0' * 4096)
        args = {'instances_path': str(tmp_path / 'instances'), 'only_deleted_images': True, 'cloud': 'fastboot-lab'}
        checked = run_module('nova_image_cache_purge', args, check=True)
        assert not checked.get('failed'), checked
        assert [r['name'] for r in checked['removed']] == [deleted] and (base / deleted).exists()
        applied = run_module('nova_image_cache_purge', args)
        assert [r['name'] for r in applied['removed']] == [deleted], applied
        assert (base / present).exists() and not (base / deleted).exists()
        assert present in [k['name'] for k in applied['kept']]
        again = run_module('nova_image_cache_purge', args)
        assert not again['changed'] and again['removed'] == []
    finally:
        openstack_cloud.image.delete_image(image)
