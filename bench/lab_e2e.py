"""End-to-end proof and before/after benchmark on the built-in lab (tools/lab/ceph.sh + tools/lab/openstack.sh).

On ONE lab, in one run:

  before   the lab as tools/lab/openstack.sh makes it: Glance on its file store, Nova on local qcow2 disks with
           the _base image cache, no config drive. The stock cloud image (qcow2) is uploaded and N servers are
           created at once.
  site     ``ansible-playbook -i inventory/lab site.yml``: Ceph pools/keys/secret, Glance and Nova on RBD,
           config drive forced, _base purged; the services restart through the lab's restart hook. A second
           run must report 0 changed.
  after    the same stock image baked (fastboot.cloud.cloudinit_bake: ConfigDrive first, bounded OpenStack
           fallback), converted to raw (fastboot.cloud.qemu_img_convert) and uploaded to the RBD store; the same
           N servers are created at once; every disk is checked to be a copy-on-write clone of
           images/<image id>@snap (fastboot.cloud.rbd_clone_verify) and every console to show cloud-init
           finding DataSourceConfigDrive.

Per server, from the request: seconds to ACTIVE, seconds to cloud-init finished (the guest prints
``cloud-init status --long`` and ``analyze blame`` to its serial console once cloud-init is done: the lab
image's fastboot-report unit, enabled by ``fastboot.report=1`` on the kernel command line), the datasource
cloud-init used, and the storage written for its disk (the qcow2 overlay under the instances path, or the RBD
clone's used bytes) plus what the compute cached in _base for the batch. Per batch: seconds until all N are
ACTIVE. Prints a Markdown table (median and range, ratio), writes it and a PNG plot and the raw results (JSON)
under --out.

The lab image has no boot loader: Glance holds its kernel and initramfs as aki/ari images and the disk image
names them (kernel_id, ramdisk_id, os_command_line), so Nova boots it with libvirt's direct kernel boot.

  python bench/lab_e2e.py [--vms 5] [--out DIR] [--timeout 1200]     (the lab must be up: make lab does it)

When the lab is already on RBD (a second ``make lab``), the before phase cannot be measured and is skipped
(the report says so); ``make lab-down`` first gives a fresh default lab.
"""
import argparse
import base64
import configparser
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import bootlab  # noqa: E402  (console parsing of the lab image's report)

LAB = os.environ.get('FASTBOOT_LAB_DIR', '/var/tmp/fastboot-lab')
IMAGES = os.path.join(LAB, 'images')
CLOUDS = os.path.join(LAB, 'openstack', 'clouds.yaml')
CEPH_CONF = os.path.join(LAB, 'ceph', 'ceph.conf')
SYS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'
INSTANCES = '/var/lib/nova/instances'
CMDLINE = 'root=/dev/vda1 console=ttyS0 fastboot.report=1'
MARKER = 'BOOTLAB'
USER_DATA = ('#cloud-config\nruncmd:\n  - [sh, -c, "echo %s user-data ran | tee /dev/ttyS0"]\n' % MARKER)
T0 = time.time()


def log(msg):
    print('[lab-e2e %6.1fs] %s' % (time.time() - T0, msg), flush=True)


def env():
    return dict(os.environ, LC_ALL='C.UTF-8', CEPH_CONF=CEPH_CONF, OS_CLIENT_CONFIG_FILE=CLOUDS,
                ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
                PATH=os.path.dirname(sys.executable) + ':' + SYS_PATH + ':' + os.environ.get('PATH', ''))


def run(argv, check=True, **kw):
    proc = subprocess.run(argv, env=env(), capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (rc=%s)\n%s\n%s' % (' '.join(argv), proc.returncode, proc.stdout[-4000:],
                                                          proc.stderr[-4000:]))
    return proc


def connect():
    import openstack
    os.environ['OS_CLIENT_CONFIG_FILE'] = CLOUDS
    return openstack.connect(cloud='fastboot-lab')


def ini(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(path)
    return parser


def cloud_state():
    """What the lab's services are configured for: {'glance_rbd': bool, 'nova_rbd': bool, 'config_drive': bool}."""
    glance = ini('/etc/glance/glance-api.conf')
    nova = ini('/etc/nova/nova.conf')
    backends = glance.get('DEFAULT', 'enabled_backends', fallback='')
    return {'glance_rbd': ':rbd' in backends.replace(' ', ''),
            'nova_rbd': nova.get('libvirt', 'images_type', fallback='') == 'rbd',
            'config_drive': nova.get('DEFAULT', 'force_config_drive', fallback='').lower() in ('true', '1', 'yes')}


def ansible_module(name, args, check=False):
    """Run a fastboot.cloud module on localhost through ansible; return its result."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-i', 'localhost,', '-c',
            'local', '-m', 'fastboot.cloud.' + name, '-a', json.dumps(args),
            '-e', 'ansible_python_interpreter=' + sys.executable] + (['--check'] if check else [])
    proc = subprocess.run(argv, env=dict(env(), ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='json'),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, check=False)
    try:
        return json.loads(proc.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']
    except (ValueError, KeyError, IndexError):
        raise RuntimeError('module %s: rc=%s\n%s\n%s' % (name, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))


def site_yml(extra=()):
    """ansible-playbook site.yml on the lab; returns (recap {host: {ok, changed, failed...}}, output)."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
            os.path.join(ROOT, 'inventory', 'lab'), os.path.join(ROOT, 'site.yml')] + list(extra)
    proc = run(argv, check=False, cwd=ROOT)
    recap = {}
    for match in re.finditer(r'^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$', proc.stdout, re.M):
        recap[match.group(1)] = dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', match.group(2)))
    if proc.returncode != 0:
        raise RuntimeError('site.yml failed (rc=%s)\n%s\n%s' % (proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
    return recap, proc.stdout


def cloud_image():
    """The lab's Debian + cloud-init image (built once, cached)."""
    run(['bash', os.path.join(ROOT, 'tools', 'lab', 'build-cloud-image.sh')], timeout=3600)
    base = os.path.join(IMAGES, 'debian-12-cloudinit')
    return dict((ext, base + '.' + ext) for ext in ('raw', 'qcow2', 'vmlinuz', 'initrd'))


def upload(conn, name, path, disk_format, **props):
    started = time.time()
    container = disk_format if disk_format in ('aki', 'ari') else 'bare'
    image = conn.create_image(name, filename=path, disk_format=disk_format, container_format=container, wait=True,
                              timeout=1800, **props)
    size = os.path.getsize(path) / 1048576.0
    log('uploaded %s (%s, %.0f MiB) in %.1f s' % (name, disk_format, size, time.time() - started))
    return image


def kernel_images(conn, tag):
    """The lab image's kernel and initramfs in Glance (aki/ari) and the properties that make a disk image boot
    directly into them."""
    files = cloud_image()
    kernel = upload(conn, 'lab-e2e-%s-kernel' % tag, files['vmlinuz'], 'aki')
    ramdisk = upload(conn, 'lab-e2e-%s-initrd' % tag, files['initrd'], 'ari')
    return [kernel, ramdisk], {'kernel_id': kernel.id, 'ramdisk_id': ramdisk.id, 'os_command_line': CMDLINE}


def boot_image(conn, tag, disk_path, disk_format):
    """The disk image uploaded as it is, booting into the lab kernel."""
    extra, props = kernel_images(conn, tag)
    return upload(conn, 'lab-e2e-%s' % tag, disk_path, disk_format, **props), extra


def playbook(name, extra_vars, check=False):
    """ansible-playbook playbooks/NAME.yml on the lab inventory with EXTRA_VARS (a dict, passed as JSON)."""
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
            os.path.join(ROOT, 'inventory', 'lab'), os.path.join(ROOT, 'playbooks', name + '.yml'),
            '-e', json.dumps(extra_vars)] + (['--check'] if check else [])
    proc = run(argv, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError('playbooks/%s.yml failed (rc=%s)\n%s\n%s'
                           % (name, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
    return proc.stdout


def pipeline_image(conn, tag, work, **props):
    """The image pipeline (role fastboot.cloud.image_pipeline) on the stock qcow2: convert to raw, bake the
    fast-boot cloud-init settings (ConfigDrive first, bounded OpenStack fallback), upload to Glance with
    img_config_drive=mandatory, requiring an rbd:// location. Kernel and initramfs go to Glance beside it."""
    files = cloud_image()
    extra, properties = kernel_images(conn, tag)
    properties.update(props)
    started = time.time()
    playbook('image_pipeline', {'image_pipeline_cloud': 'fastboot-lab', 'image_pipeline_require_rbd': True,
                                'image_pipeline_work_dir': work, 'image_pipeline_images': [
                                    {'name': 'lab-e2e-%s' % tag, 'src': files['qcow2'], 'properties': properties}]})
    images = [i for i in conn.image.images(name='lab-e2e-%s' % tag) if i.status == 'active']
    if len(images) != 1:
        raise RuntimeError('the image pipeline left %d active images named lab-e2e-%s' % (len(images), tag))
    log('image pipeline (convert, bake, upload) in %.1f s: %s' % (time.time() - started, images[0].id))
    return images[0], extra


def doctor(image_ids):
    """The cross-service doctor on the lab host (fastboot.cloud.rbd_service_facts for glance, nova and cinder, then
    fastboot.cloud.cloud_doctor with the Glance checks of IMAGE_IDS); returns the findings that are not ok."""
    facts = ansible_module('rbd_service_facts', {'host': 'lab', 'services': ['glance', 'nova', 'cinder']})
    if facts.get('failed'):
        raise RuntimeError('rbd_service_facts: %s' % facts.get('msg'))
    facts = dict((k, v) for k, v in facts.items() if not k.startswith('_ansible') and k not in ('invocation',))
    res = ansible_module('cloud_doctor', {'facts': [facts], 'cloud': 'fastboot-lab', 'images': list(image_ids),
                                          'on_failure': 'warn'})
    if 'findings' not in res:
        raise RuntimeError('cloud_doctor: %s' % res.get('msg'))
    return res


def du(path):
    proc = run(['du', '-s', '-B1', path], check=False)
    return int(proc.stdout.split()[0]) if proc.returncode == 0 and proc.stdout else 0


def base_bytes():
    base = os.path.join(INSTANCES, '_base')
    return du(base) if os.path.isdir(base) else 0


def rbd_used(spec):
    proc = run(['rbd', 'du', '--format', 'json', spec], check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return sum(entry.get('used_size', 0) for entry in data.get('images', []) if entry.get('snapshot') is None)


def boot_batch(conn, image, count, tag, timeout):
    """Create COUNT servers at once; follow each to ACTIVE and to cloud-init's report on its console."""
    flavor = conn.compute.find_flavor('lab.small', ignore_missing=False)
    user_data = base64.b64encode(USER_DATA.encode()).decode()
    cache_before = base_bytes()
    started = time.time()
    servers = []
    for index in range(count):
        server = conn.compute.create_server(name='lab-e2e-%s-%d' % (tag, index), image_id=image.id,
                                            flavor_id=flavor.id, networks='none', user_data=user_data)
        servers.append({'id': server.id, 'name': server.name, 'requested': time.time(), 'active': None,
                        'finished': None, 'console': ''})
    log('%s: %d servers requested in %.1f s' % (tag, count, time.time() - started))
    end = started + timeout
    while time.time() < end and any(s['finished'] is None for s in servers):
        for entry in servers:
            if entry['active'] is None:
                server = conn.compute.get_server(entry['id'])
                if server.status == 'ERROR':
                    fault = server.to_dict().get('fault') or {}
                    raise RuntimeError('server %s went to ERROR: %s (with images_type=rbd Nova reports the Ceph '
                                       "cluster's size as its disk: LAB_CEPH_GB=... make lab-down lab for a bigger "
                                       'lab OSD)' % (entry['name'], fault.get('message') or fault))
                if server.status == 'ACTIVE':
                    entry['active'] = time.time() - entry['requested']
                    log('%s ACTIVE after %.1f s' % (entry['name'], entry['active']))
            elif entry['finished'] is None:
                entry['console'] = conn.compute.get_server_console_output(entry['id']).get('output') or ''
                if 'FASTBOOT-REPORT-END' in entry['console']:
                    entry['finished'] = time.time() - entry['requested']
                    log('%s cloud-init done after %.1f s' % (entry['name'], entry['finished']))
        time.sleep(2)
    missing = [s['name'] for s in servers if s['finished'] is None]
    if missing:
        raise RuntimeError('%s: no cloud-init report on the console of %s within %d s' % (tag, missing, timeout))
    spawned = spawn_seconds(set(s['id'] for s in servers))
    results = []
    for entry in servers:
        boot = bootlab.Boot([(0.0, line) for line in entry['console'].splitlines()], 'tcg', entry['finished'], False)
        final = boot.final
        results.append({'name': entry['name'], 'id': entry['id'], 'active_s': round(entry['active'], 1),
                        'spawn_s': spawned.get(entry['id']),
                        'finished_s': round(entry['finished'], 1), 'status': boot.status,
                        'datasource': final[0] if final else None, 'guest_uptime_s': final[1] if final else None,
                        'discovery_s': boot.discovery_seconds,
                        'user_data_ran': any('user-data ran' in line for line in boot.evidence(MARKER)),
                        'disk_bytes': disk_bytes(entry['id'])})
    return {'servers': results, 'batch_active_s': round(max(s['active'] for s in servers), 1),
            'batch_finished_s': round(max(s['finished'] for s in servers), 1),
            'cache_bytes': max(0, base_bytes() - cache_before)}


NOVA_LOG = os.path.join(LAB, 'openstack', 'log', 'nova', 'nova-compute.log')
SPAWN_RE = re.compile(r'\[instance: ([0-9a-f-]{36})\] Took ([0-9.]+) seconds to spawn the instance')


def spawn_seconds(server_ids):
    """nova-compute's own figure per server: 'Took X seconds to spawn the instance on the hypervisor' (making
    the disks: image download + conversion + overlay, or an RBD clone; then defining and starting the domain)."""
    found = {}
    try:
        with open(NOVA_LOG) as handle:
            for line in handle:
                match = SPAWN_RE.search(line)
                if match and match.group(1) in server_ids:
                    found[match.group(1)] = float(match.group(2))
    except OSError:
        pass
    return found


def disk_bytes(server_id):
    """Storage written for the server's disk: its RBD clone's used bytes, else its qcow2 overlay under the
    instances path."""
    used = rbd_used('vms/%s_disk' % server_id)
    if used is not None:
        return used
    disk = os.path.join(INSTANCES, server_id, 'disk')
    return du(disk) if os.path.exists(disk) else None


def delete_servers(conn, batch):
    for entry in batch['servers']:
        conn.compute.delete_server(entry['id'], ignore_missing=True)
    for entry in batch['servers']:
        server = conn.compute.find_server(entry['id'])
        if server is not None:
            conn.compute.wait_for_delete(server, interval=2, wait=600)


def delete_images(conn, images):
    for image in images:
        conn.image.delete_image(image, ignore_missing=True)


def verify_clones(batch, image_id):
    res = ansible_module('rbd_clone_verify', {'instances': [s['id'] for s in batch['servers']],
                                              'image_id': image_id, 'on_full_copy': 'warn',
                                              'ceph_conf': CEPH_CONF})
    if res.get('failed'):
        raise RuntimeError('rbd_clone_verify: %s' % res.get('msg'))
    return res


def volume_from_image(conn, image_id, size_gb=None, timeout=900):
    """A Cinder volume created from the Glance image IMAGE_ID (SIZE_GB, default: the image's size rounded up to
    GiB); waits until it is available and returns its id. On an RBD backend it is volumes/volume-<id>, a clone of
    images/<image_id>@snap."""
    if size_gb is None:
        image = conn.image.get_image(image_id)
        size_gb = max(1, -(-max(image.size or 0, image.virtual_size or 0) // (1 << 30)), image.min_disk or 0)
    volume = conn.block_storage.create_volume(name='lab-e2e-volume', size=size_gb, image_id=image_id)
    end = time.time() + timeout
    while True:
        volume = conn.block_storage.get_volume(volume.id)
        if volume.status == 'available':
            return volume.id
        if volume.status.startswith('error') or time.time() > end:
            raise RuntimeError('volume %s from image %s: status %s after %.0f s (cinder logs: %s)' % (
                volume.id, image_id, volume.status, time.time() - end + timeout,
                os.path.join(LAB, 'openstack', 'log', 'cinder')))
        time.sleep(2)


def delete_volume(conn, volume_id):
    volume = conn.block_storage.find_volume(volume_id)
    if volume is not None:
        conn.block_storage.delete_volume(volume, ignore_missing=True)
        conn.block_storage.wait_for_delete(volume, interval=2, wait=600)


DISK_RUNS = 3


def default_disk_creation(conn, image_id, runs=DISK_RUNS):
    """What Nova's default path (local disks, _base cache) does to make the disk of a VM whose image its host has
    not cached yet: download the image from Glance, convert it to raw (force_raw_images), then a qcow2 overlay;
    for the next VMs of that image on that host only the overlay. Timed RUNS times on the lab, then removed."""
    work = os.path.join(LAB, 'disk-bench')
    first, cached = [], []
    try:
        for dummy in range(runs):
            os.makedirs(work, exist_ok=True)
            src, raw, disk = (os.path.join(work, n) for n in ('download', 'base.raw', 'disk'))
            started = time.time()
            conn.image.download_image(image_id, output=src)
            run(['qemu-img', 'convert', '-O', 'raw', src, raw])
            converted = time.time()
            run(['qemu-img', 'create', '-f', 'qcow2', '-F', 'raw', '-b', raw, disk])
            first.append(round(time.time() - started, 3))
            cached.append(round(time.time() - converted, 3))
            shutil.rmtree(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log('default path disk creation: first VM on a host %s s, next VMs %s s' % (first, cached))
    return first, cached


def rbd_disk_creation(image_id, runs=DISK_RUNS):
    """What Nova's RBD path does for every VM: clone images/<id>@snap into the vms pool, in-process with librbd as
    client.nova (Nova's own call), timed RUNS times, each clone removed afterwards."""
    import rados
    import rbd
    times = []
    with rados.Rados(conffile='/etc/ceph/ceph.conf', rados_id='nova') as cluster:
        with cluster.open_ioctx('images') as images, cluster.open_ioctx('vms') as vms:
            for index in range(runs):
                name = 'fastboot-bench-%s-%d' % (image_id[:8], index)
                started = time.time()
                rbd.RBD().clone(images, image_id, 'snap', vms, name, features=rbd.RBD_FEATURE_LAYERING)
                times.append(round(time.time() - started, 4))
                rbd.RBD().remove(vms, name)
    log('RBD path disk creation (clone): %s s' % times)
    return times


def before_phase(conn, vms, timeout):
    files = cloud_image()
    image, extra = boot_image(conn, 'before', files['qcow2'], 'qcow2')
    try:
        first, cached = default_disk_creation(conn, image.id)
        batch = boot_batch(conn, image, vms, 'before', timeout)
        batch['disk_create_s'], batch['disk_create_cached_s'] = first, cached
        delete_servers(conn, batch)
    finally:
        delete_images(conn, [image] + extra)
    return batch


def after_phase(conn, vms, timeout, work, keep=False):
    image, extra = pipeline_image(conn, 'after', work)
    clones = rbd_disk_creation(image.id)
    batch = boot_batch(conn, image, vms, 'after', timeout)
    batch['disk_create_s'] = batch['disk_create_cached_s'] = clones
    batch['image'] = {'id': image.id, 'direct_url': conn.image.get_image(image.id).direct_url}
    batch['verify'] = verify_clones(batch, image.id)
    checked = doctor([image.id] + [i.id for i in extra])
    batch['doctor'] = {'summary': checked.get('summary'),
                       'not_ok': [f for f in checked['findings'] if f['status'] != 'ok']}
    log('doctor: %s' % checked.get('summary'))
    batch['config_drive_disks'] = [s['id'] for s in batch['servers']
                                   if run(['rbd', 'info', 'vms/%s_disk.config' % s['id']], check=False).returncode == 0]
    # Cinder: a volume from the same image is a clone of it too (deleted before the image is retired)
    started = time.time()
    volume_id = volume_from_image(conn, image.id)
    batch['volume'] = {'id': volume_id, 'available_s': round(time.time() - started, 1)}
    log('volume %s from the image available after %.1f s' % (volume_id, batch['volume']['available_s']))
    try:
        batch['volume']['verify'] = ansible_module('rbd_clone_verify', {
            'volumes': [volume_id], 'image_id': image.id, 'on_full_copy': 'warn', 'ceph_conf': CEPH_CONF})
    finally:
        delete_volume(conn, volume_id)
    if not keep:
        delete_servers(conn, batch)
        delete_images(conn, [image] + extra)
    else:
        batch['extra_images'] = [i.id for i in extra]
    return batch


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    fmt = '%.1f' if statistics.median(values) >= 1 or max(values) >= 10 else '%.3f'
    return (fmt + ' (' + fmt + '-' + fmt + ')') % (statistics.median(values), min(values), max(values))


def mib(value):
    return None if value is None else value / 1048576.0


ROWS = [('disk creation: first VM of the image on a host (s)', lambda b: b.get('disk_create_s', [])),
        ('disk creation: image already cached on the host (s)', lambda b: b.get('disk_create_cached_s', [])),
        ('create -> ACTIVE (s)', lambda b: [s['active_s'] for s in b['servers']]),
        ('nova-compute spawn: disk + domain start (s)', lambda b: [s.get('spawn_s') for s in b['servers']]),
        ('create -> cloud-init finished (s)', lambda b: [s['finished_s'] for s in b['servers']]),
        ('datasource discovery in the guest (s)', lambda b: [s['discovery_s'] for s in b['servers']]),
        ('disk written per VM (MiB)', lambda b: [mib(s['disk_bytes']) for s in b['servers']]),
        ('image cache written per batch (MiB)', lambda b: [mib(b['cache_bytes'])]),
        ('batch: all N ACTIVE (s)', lambda b: [b['batch_active_s']]),
        ('batch: all N cloud-init finished (s)', lambda b: [b['batch_finished_s']])]


PLOTTED = ('create -> ACTIVE (s)', 'nova-compute spawn: disk + domain start (s)', 'create -> cloud-init finished (s)',
           'batch: all N ACTIVE (s)', 'batch: all N cloud-init finished (s)')


def table(results):
    before, after = results.get('before'), results['after']
    lines = ['| %d VMs, lab.small, TCG | before (default cloud) | after (site.yml) | before / after |' % results['vms'],
             '|---|---|---|---|']
    for label, get in ROWS:
        after_values = [v for v in get(after) if v is not None]
        before_values = [v for v in get(before) if v is not None] if before else []
        ratio = 'n/a'
        if before_values and after_values and statistics.median(after_values) > 0:
            ratio = '%.1fx' % (statistics.median(before_values) / statistics.median(after_values))
        lines.append('| %s | %s | %s | %s |' % (label, spread(before_values) if before else 'not measured',
                                                spread(after_values), ratio))
    datasources = sorted(set(s['datasource'] or 'none' for s in after['servers']))
    lines.append('')
    lines.append('After: datasource %s; disks verified as clones of images/%s@snap: %s; config drives in RBD: %d/%d.'
                 % (', '.join(datasources), after['image']['id'],
                    all(d.get('status') == 'clone' for d in after['verify'].get('disks', [])),
                    len(after['config_drive_disks']), len(after['servers'])))
    volume = after.get('volume')
    if volume:
        disks = volume.get('verify', {}).get('disks') or []
        lines.append('After: Cinder volume from the image available in %.1f s, verified as a clone of images/%s@snap: '
                     '%s.' % (volume['available_s'], after['image']['id'],
                              bool(disks) and all(d.get('status') == 'clone' for d in disks)))
    lines.append('Doctor (cross-service check after the boots): %s.' % after.get('doctor', {}).get('summary'))
    if before:
        lines.append('Before: datasource %s.' % ', '.join(sorted(set(s['datasource'] or 'none'
                                                                     for s in before['servers']))))
    else:
        lines.append('Before: not measured (the lab was already on RBD; `make lab-down` first for a fresh lab).')
    return '\n'.join(lines)


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not installed: no PNG')
        return None
    rows = [row for row in ROWS if row[0] in PLOTTED]
    labels = [label for label, dummy in rows]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for offset, (phase, color) in enumerate((('before', '#c0504d'), ('after', '#4f81bd'))):
        if not results.get(phase):
            continue
        values = [statistics.median([v for v in get(results[phase]) if v is not None] or [0]) for dummy, get in rows]
        ax.barh([i + offset * width for i in range(len(rows))], values, height=width, color=color,
                label='%s site.yml' % phase)
    ax.set_yticks([i + width / 2 for i in range(len(rows))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel('seconds (median of %d VMs; batch = the slowest of the batch)' % results['vms'])
    ax.set_title('lab: default cloud vs RBD copy-on-write + config drive (TCG)')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def report(results, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'lab-e2e.json'), 'w') as handle:
        json.dump(results, handle, indent=1, default=str)
    text = table(results)
    with open(os.path.join(out, 'lab-e2e.md'), 'w') as handle:
        handle.write(text + '\n')
    png = plot(results, os.path.join(out, 'lab-e2e.png'))
    return text, png


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--vms', type=int, default=5)
    parser.add_argument('--out', default=os.path.join(LAB, 'bench'))
    parser.add_argument('--timeout', type=int, default=1200, help='seconds for a batch to report cloud-init done')
    args = parser.parse_args()
    conn = connect()
    results = {'vms': args.vms, 'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
    state = cloud_state()
    if not (state['glance_rbd'] or state['nova_rbd']):
        log('before: the default cloud (%s)' % state)
        results['before'] = before_phase(conn, args.vms, args.timeout)
    else:
        log('the lab is already on RBD (%s): before phase skipped' % state)
        results['before'] = None
    log('site.yml on the lab')
    recap, dummy = site_yml()
    results['site_first'] = recap
    recap, dummy = site_yml()
    results['site_second'] = recap
    log('site.yml again: %s' % recap)
    if any(host.get('changed') for host in recap.values()):
        raise RuntimeError('the second site.yml run changed something: %s' % recap)
    results['state_after_site'] = cloud_state()
    results['after'] = after_phase(conn, args.vms, args.timeout, os.path.join(LAB, 'e2e-work'))
    text, png = report(results, args.out)
    print(text)
    print('report: %s/lab-e2e.md, plot: %s, raw: %s/lab-e2e.json' % (args.out, png, args.out))


if __name__ == '__main__':
    main()
