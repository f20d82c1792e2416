"""Boot the lab's cloud image under qemu and collect cloud-init's own evidence from the serial console.

- ``ensure_image()``: builds (or finds up to date) the test image with tools/lab/build-cloud-image.sh.
- ``config_drive()``: an OpenStack config drive like Nova's (label ``config-2``): ISO9660 (genisoimage) or VFAT
  (mkfs.vfat + mcopy), with user-data that prints a marker to the console.
- ``boot()``: one boot of a qcow2 overlay on the image, with OpenStack SMBIOS (as Nova sets it), the kernel
  command line ``fastboot.report=poweroff`` (the image's report unit prints ``cloud-init status --long`` and
  ``cloud-init analyze blame`` between FASTBOOT-REPORT-BEGIN/END and powers off) and no reachable metadata
  service: qemu runs in its own network namespace whose default route leads to a neighbour that does not exist
  (fixed ARP entry), so packets to 169.254.169.254 are dropped, not refused; DNS gets an immediate NXDOMAIN from
  a resolver on the namespace's loopback. Nothing leaves the machine.
- ``accel()``: KVM when it is usable for ordinary guests, else TCG with the reason.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.environ.get('FASTBOOT_LAB_DIR', '/var/tmp/fastboot-lab')
IMAGE_DIR = os.path.join(LAB_DIR, 'images')
IMAGE_NAME = 'debian-12-cloudinit'
SYS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'
OPENSTACK_SMBIOS = 'type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova'
MARKER = 'BOOTLAB-MARKER'

# a resolver that answers every query with NXDOMAIN at once (run on the namespace's loopback)
NXDNS = r'''
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    q, a = s.recvfrom(2048)
    if len(q) < 12:
        continue
    flags = 0x8000 | (q[2] & 0x79) << 8 | 0x80 | 3
    s.sendto(q[:2] + flags.to_bytes(2, "big") + q[4:6] + b"\0\0\0\0\0\0" + q[12:], a)
'''

# the namespace: lo, a veth whose default gateway 192.0.2.2 (TEST-NET-1) has a fixed, non-existent MAC
NETNS = r'''
set -e
ip link set lo up
ip link add bh0 type veth peer name bh1
ip link set bh0 up
ip link set bh1 up
ip addr add 192.0.2.1/24 dev bh0
ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev bh0 nud permanent
ip route add default via 192.0.2.2
echo "nameserver 127.0.0.1" > "$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
python3 "$WORK/nxdns.py" </dev/null >/dev/null 2>&1 &
sleep 0.3
exec "$@"
'''


def sh(argv, check=True, **kw):
    env = dict(os.environ, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed rc=%s\nstdout: %s\nstderr: %s'
                             % (argv, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc


def ensure_image():
    """Build the test image if needed; return the paths of raw, qcow2, vmlinuz, initrd."""
    sh(['bash', os.path.join(ROOT, 'tools', 'lab', 'build-cloud-image.sh')])
    return dict((ext, os.path.join(IMAGE_DIR, '%s.%s' % (IMAGE_NAME, ext))) for ext in ('raw', 'qcow2', 'vmlinuz', 'initrd'))


def accel():
    """('kvm', None) when KVM can run an ordinary guest here, else ('tcg', reason)."""
    forced = os.environ.get('FASTBOOT_ACCEL')
    if forced in ('kvm', 'tcg'):
        return forced, 'forced by FASTBOOT_ACCEL' if forced == 'tcg' else None
    if not os.path.exists('/dev/kvm'):
        return 'tcg', '/dev/kvm does not exist'
    try:
        os.close(os.open('/dev/kvm', os.O_RDWR))
    except OSError as exc:
        return 'tcg', '/dev/kvm cannot be opened (%s)' % exc.strerror
    if os.path.isdir('/sys/module/kvm_pvm'):
        return 'tcg', ('/dev/kvm is kvm_pvm (KVM inside a VM without nested virtualisation): ordinary guests crash '
                       'with -cpu host and the stock kernel hangs')
    if not (os.path.isdir('/sys/module/kvm_intel') or os.path.isdir('/sys/module/kvm_amd')):
        return 'tcg', 'neither kvm_intel nor kvm_amd is loaded'
    return 'kvm', None


def config_drive(path, kind='iso', marker=MARKER, hostname='fastboot-test'):
    """Write an OpenStack config drive (label config-2) to ``path``: ``kind`` iso (ISO9660) or vfat."""
    work = tempfile.mkdtemp(prefix='fastboot-cd-')
    try:
        latest = os.path.join(work, 'openstack', 'latest')
        os.makedirs(latest)
        meta = {'uuid': '6c0f9d04-5b2e-4a7e-9d59-0c8f4f0e3a11', 'hostname': hostname, 'name': hostname,
                'launch_index': 0, 'availability_zone': 'nova', 'files': [], 'meta': {}}
        with open(os.path.join(latest, 'meta_data.json'), 'w') as handle:
            json.dump(meta, handle)
        with open(os.path.join(latest, 'user_data'), 'w') as handle:
            handle.write('#cloud-config\nruncmd:\n'
                         '  - [sh, -c, "echo %s user-data ran from the config drive | tee /dev/ttyS0"]\n' % marker)
        if os.path.exists(path):
            os.unlink(path)
        if kind == 'iso':
            sh(['genisoimage', '-quiet', '-o', path, '-J', '-r', '-V', 'config-2', work])
        elif kind == 'vfat':
            sh(['mkfs.vfat', '-C', '-n', 'config-2', path, '16384'])
            sh(['mcopy', '-s', '-i', path, os.path.join(work, 'openstack'), '::'])
        else:
            raise ValueError('config drive kind %r' % kind)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


BLAME_RE = re.compile(r'([0-9.]+)s \(([^)]+)\)')
FINAL_RE = re.compile(r'Cloud-init v\. \S+ finished at .*Datasource (DataSource[A-Za-z0-9]+).*Up ([0-9.]+) seconds')


class Boot(object):
    """The console of one boot and what it says."""

    def __init__(self, lines, accel_used, elapsed, killed):
        self.lines = lines          # [(seconds since qemu start, text)]
        self.accel = accel_used
        self.elapsed = elapsed
        self.killed = killed

    @property
    def text(self):
        return '\n'.join(t for dummy, t in self.lines)

    def grep(self, prefix):
        return [t.split(prefix, 1)[1].strip() for dummy, t in self.lines if prefix in t]

    def first(self, needle):
        for when, text in self.lines:
            if needle in text:
                return when
        return None

    @property
    def reported(self):
        return self.first('FASTBOOT-REPORT-END') is not None

    @property
    def status(self):
        """``cloud-init status --long`` as a dict (status, detail, ...)."""
        out, key = {}, None
        for line in self.grep('FASTBOOT-STATUS:'):
            match = re.match(r'^([a-z_ ]+):\s*(.*)$', line)
            if match and not line.startswith(' '):
                key = match.group(1).strip()
                out[key] = match.group(2).strip()
            elif key:
                out[key] = (out[key] + ' ' + line).strip()
        return out

    @property
    def blame(self):
        """``cloud-init analyze blame``: {event: seconds} of the first boot record."""
        out = {}
        for line in self.grep('FASTBOOT-BLAME:'):
            match = BLAME_RE.search(line)
            if match:
                out.setdefault(match.group(2), float(match.group(1)))
        return out

    @property
    def search_times(self):
        """Seconds cloud-init spent searching each datasource ({'init-local/search-OpenStackLocal': 10.6, ...})."""
        return dict((k, v) for k, v in self.blame.items() if '/search-' in k)

    @property
    def discovery_seconds(self):
        return round(sum(self.search_times.values()), 3) if self.search_times else None

    @property
    def final(self):
        """(datasource, guest uptime in s, host seconds since qemu start) of cloud-init's 'finished' line."""
        for when, text in self.lines:
            match = FINAL_RE.search(text)
            if match:
                return match.group(1), float(match.group(2)), when
        return None

    @property
    def result_datasource(self):
        text = ' '.join(self.grep('FASTBOOT-RESULT:'))
        match = re.search(r'"datasource":\s*"([^"]*)"', text)
        return match.group(1) if match else None

    def evidence(self, *needles):
        """The console lines that contain any of ``needles`` (for assertion messages and reports)."""
        return [t for dummy, t in self.lines if any(n in t for n in needles)]


def boot(image, kernel, initrd, drive=None, drive_kind='iso', timeout=300, console=None, smbios=True, memory=1024):
    """Boot ``image`` (raw or qcow2; never written: the guest writes into a temporary overlay) once.

    Returns a Boot; the console is also written to ``console`` (with host timestamps) when given.
    """
    accel_used, dummy = accel()
    work = tempfile.mkdtemp(prefix='fastboot-boot-')
    overlay = os.path.join(work, 'overlay.qcow2')
    fmt = json.loads(sh(['qemu-img', 'info', '--output=json', image]).stdout)['format']
    sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', os.path.abspath(image), '-F', fmt, overlay])
    with open(os.path.join(work, 'nxdns.py'), 'w') as handle:
        handle.write(NXDNS)
    if accel_used == 'kvm':
        cpu = ['-accel', 'kvm', '-cpu', 'host']
    else:
        cpu = ['-accel', 'tcg', '-cpu', 'max']
    qemu = ['qemu-system-x86_64'] + cpu + [
        '-machine', 'pc', '-m', str(memory), '-smp', '1', '-display', 'none', '-monitor', 'none',
        '-serial', 'stdio', '-no-reboot', '-kernel', kernel, '-initrd', initrd,
        '-append', 'root=/dev/vda1 console=ttyS0 fastboot.report=poweroff',
        '-drive', 'file=%s,if=virtio,format=qcow2,cache=unsafe' % overlay,
        '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56']
    if smbios:
        qemu += ['-smbios', OPENSTACK_SMBIOS]
    if drive:
        if drive_kind == 'iso':    # Nova's default: ISO9660 on a CD-ROM
            qemu += ['-drive', 'file=%s,media=cdrom,if=ide,readonly=on' % drive]
        else:                      # config_drive_format=vfat: a disk
            qemu += ['-drive', 'file=%s,if=virtio,format=raw,readonly=on' % drive]
    argv = ['unshare', '-n', '-m', 'sh', '-c', NETNS, 'sh'] + qemu
    env = dict(os.environ, WORK=work, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    killed = []

    def kill():
        if proc.poll() is None:
            killed.append(time.monotonic() - started)
            proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    lines = []
    sink = open(console, 'w') if console else None
    try:
        for raw in proc.stdout:
            now = time.monotonic() - started
            text = raw.decode('utf-8', 'replace').rstrip('\r\n')
            text = re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', '', text).replace('\r', '')
            lines.append((now, text))
            if sink:
                sink.write('[%8.3f] %s\n' % (now, text))
                sink.flush()
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if sink:
            sink.close()
        shutil.rmtree(work, ignore_errors=True)
    return Boot(lines, accel_used, time.monotonic() - started, bool(killed))
