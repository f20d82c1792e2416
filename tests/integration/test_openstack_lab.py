"""The built-in OpenStack all-in-one (tools/lab/openstack.sh): idempotent up, a real guest boot, status, down.

The fixture brings the lab up once for the module and tears it down at the end, asserting that no process it
started is left. The guest is a one-sector disk built here: its boot sector (16-bit x86, 35 bytes) writes a
marker to the first serial port, which Nova logs as the server's console; seeing the marker through
Nova's console API proves the VM really executed (Nova reports ACTIVE for a paused domain too).
"""
import os
import subprocess
import time
import uuid

import pytest

from labutil import LAB_DIR, ROOT, SYS_PATH

pytestmark = pytest.mark.openstack

SCRIPT = os.path.join(ROOT, 'tools', 'lab', 'openstack.sh')
STATE = os.path.join(LAB_DIR, 'openstack')
CLOUDS = os.path.join(STATE, 'clouds.yaml')
MARK = 'FASTBOOT_OPENSTACK_LAB=' + STATE
SERVICES = ('mysqld', 'epmd', 'rabbitmq', 'virtlogd', 'libvirtd', 'keystone', 'glance-api', 'placement-api',
            'nova-api', 'nova-conductor', 'nova-scheduler', 'nova-compute')
GUEST_MARKER = 'FASTBOOT-LAB-GUEST-OK'
# cli; cld; xor ax,ax; mov ds,ax; mov si,0x7c23; next: lodsb; test al,al; jz done; mov ah,al;
# mov dx,0x3fd; wait: in al,dx; test al,0x20 (THR empty); jz wait; mov dx,0x3f8; mov al,ah; out dx,al;
# jmp next; done: hlt; jmp done   -- then the message at offset 0x23
BOOT_CODE = bytes.fromhex('fafc31c08ed8be237cac84c0741288c4bafd03eca82074fbbaf80388e0eeebe9f4ebfd')


def lab(*args, **kw):
    env = dict(os.environ, FASTBOOT_LAB_DIR=LAB_DIR, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    return subprocess.run(['bash', SCRIPT] + list(args), env=env, capture_output=True, text=True,
                          check=False, timeout=kw.get('timeout', 1500))


def must(proc):
    assert proc.returncode == 0, 'rc=%s\nstdout:\n%s\nstderr:\n%s' % (proc.returncode, proc.stdout, proc.stderr)
    return proc


def expected_services():
    """The lab's services: neutron is neutron-server or the stand-in (FASTBOOT_LAB_NEUTRON at bootstrap)."""
    with open(os.path.join(STATE, 'neutron-mode')) as handle:
        return sorted(SERVICES + ('neutron-' + handle.read().strip(),))


def service_pids(status_output):
    """{service: pid} of the services `status` reports running."""
    pids = {}
    for line in status_output.splitlines():
        words = line.split()
        if len(words) == 4 and words[1:3] == ['running', 'pid']:
            pids[words[0]] = int(words[3])
    return pids


def marked_pids():
    """Every process carrying the lab's marker in its environment (started by the lab, or a child of one)."""
    found = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as handle:
                if MARK.encode() in handle.read().split(b'\0'):
                    found.add(int(entry))
        except OSError:
            continue
    return found


def alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def boot_disk(path):
    sector = BOOT_CODE + ('\r\n%s\r\n' % GUEST_MARKER).encode() + b'\0'
    sector = sector.ljust(510, b'\0') + b'\x55\xaa'
    with open(path, 'wb') as handle:
        handle.write(sector)
        handle.truncate(1 << 20)


@pytest.fixture(scope='module')
def cloud():
    if not os.path.exists('/usr/bin/keystone-manage') or not os.path.exists('/usr/bin/nova-compute'):
        pytest.skip('OpenStack packages are not installed: run tools/lab/openstack.sh install')
    openstack = pytest.importorskip('openstack')
    started = time.time()
    must(lab('up'))
    print('lab up in %.0f s' % (time.time() - started))
    ours = set(service_pids(must(lab('status')).stdout).values()) | marked_pids()
    old = os.environ.get('OS_CLIENT_CONFIG_FILE')
    os.environ['OS_CLIENT_CONFIG_FILE'] = CLOUDS
    try:
        yield openstack.connect(cloud='fastboot-lab')
    finally:
        if old is None:
            os.environ.pop('OS_CLIENT_CONFIG_FILE', None)
        else:
            os.environ['OS_CLIENT_CONFIG_FILE'] = old
        ours |= marked_pids()
        started = time.time()
        down = lab('down')
        print('lab down in %.0f s' % (time.time() - started))
        assert down.returncode == 0, down.stdout + down.stderr
        left = sorted(pid for pid in ours if alive(pid))
        assert not left, 'processes the lab started are still running after down: %s' % left
        assert not marked_pids(), 'processes with the lab marker remain after down'
        assert not os.path.exists(STATE), 'down left %s' % STATE


def test_up_again_changes_nothing(cloud):
    before = service_pids(must(lab('status')).stdout)
    assert sorted(before) == expected_services()
    again = must(lab('up'))
    assert 'nothing to do' in again.stdout
    assert service_pids(must(lab('status')).stdout) == before


def test_server_boots_and_prints_to_console(cloud, tmp_path):
    disk = str(tmp_path / 'marker.raw')
    boot_disk(disk)
    name = 'lab-test-' + uuid.uuid4().hex[:8]
    image = cloud.create_image(name, filename=disk, disk_format='raw', container_format='bare', wait=True)
    server = None
    try:
        assert image.status == 'active'
        flavor = cloud.compute.find_flavor('lab.tiny', ignore_missing=False)
        started = time.time()
        server = cloud.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id, networks='none')
        server = cloud.compute.wait_for_server(server, status='ACTIVE', interval=1, wait=300)
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
            output = cloud.compute.get_server_console_output(server)['output'] or ''
            if GUEST_MARKER in output:
                break
            time.sleep(2)
        print('console marker after %.1f s' % (time.time() - started))
        assert GUEST_MARKER in output, 'no guest output in the console log:\n' + output
    finally:
        if server is not None:
            cloud.compute.delete_server(server)
            cloud.compute.wait_for_delete(server, interval=1, wait=300)
        cloud.image.delete_image(image)


def test_status_reports_every_service(cloud):
    out = must(lab('status')).stdout
    assert sorted(service_pids(out)) == expected_services()
    neutron = [name for name in expected_services() if name.startswith('neutron-')][0]
    for api in ('keystone', 'glance-api', 'placement-api', 'nova-api', neutron):
        line = [row for row in out.splitlines() if row.startswith(api + ' http ')]
        assert line and not line[0].endswith(' 000'), out
    assert 'nova-compute host' in out, out
    assert must(lab('env')).stdout.strip() == (
        'export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=fastboot-lab' % CLOUDS)


def test_prewarm_api_caches_the_image_on_the_aggregate(cloud, tmp_path, run_module):
    """nova_image_cache_prewarm method=api against the real Nova (aggregate image pre-cache, microversion 2.81):
    check mode requests nothing; the real run makes nova-compute download the image into _base under its
    cache name sha1(image id)."""
    import hashlib
    disk = str(tmp_path / 'precache.raw')
    boot_disk(disk)
    name = 'lab-precache-' + uuid.uuid4().hex[:8]
    image = cloud.create_image(name, filename=disk, disk_format='raw', container_format='bare', wait=True)
    aggregate = None
    host = [s.host for s in cloud.compute.services() if s.binary == 'nova-compute'][0]
    cached = os.path.join('/var/lib/nova/instances/_base', hashlib.sha1(image.id.encode()).hexdigest())
    args = {'method': 'api', 'cloud': 'fastboot-lab', 'aggregates': [name], 'images': [{'id': image.id}]}
    try:
        aggregate = cloud.compute.create_aggregate(name=name)
        cloud.compute.add_host_to_aggregate(aggregate, host)
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
            cloud.compute.remove_host_from_aggregate(aggregate, host)
            cloud.compute.delete_aggregate(aggregate)
        cloud.image.delete_image(image)


def test_purge_only_deleted_images_lists_glance(cloud, tmp_path, run_module):
    """nova_image_cache_purge only_deleted_images with cloud: the image ids come from the real Glance; the cache
    entry of an image still in Glance stays, the entry of an image Glance no longer has goes."""
    import hashlib
    disk = str(tmp_path / 'listed.raw')
    boot_disk(disk)
    image = cloud.create_image('lab-listed-' + uuid.uuid4().hex[:8], filename=disk, disk_format='raw',
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
        cloud.image.delete_image(image)
