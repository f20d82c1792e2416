"""The built-in OpenStack all-in-one (tools/lab/openstack.sh) for tests: run the script, read its status, find
the processes it started, make a one-sector guest disk that prints a marker on the serial console."""
import os
import subprocess

from labutil import LAB_DIR, ROOT, SYS_PATH

SCRIPT = os.path.join(ROOT, 'tools', 'lab', 'openstack.sh')
STATE = os.path.join(LAB_DIR, 'openstack')
CLOUDS = os.path.join(STATE, 'clouds.yaml')
MARK = 'FASTBOOT_OPENSTACK_LAB=' + STATE
SERVICES = ('mysqld', 'epmd', 'rabbitmq', 'virtlogd', 'libvirtd', 'keystone', 'glance-api', 'cinder-api',
            'cinder-scheduler', 'cinder-volume', 'placement-api', 'nova-api', 'nova-conductor', 'nova-scheduler',
            'nova-compute')
GUEST_MARKER = 'FASTBOOT-LAB-GUEST-OK'
# cli; cld; xor ax,ax; mov ds,ax; mov si,0x7c23; next: lodsb; test al,al; jz done; mov ah,al;
# mov dx,0x3fd; wait: in al,dx; test al,0x20 (THR empty); jz wait; mov dx,0x3f8; mov al,ah; out dx,al;
# jmp next; done: hlt; jmp done   -- then the message at offset 0x23
BOOT_CODE = bytes.fromhex('fafc31c08ed8be237cac84c0741288c4bafd03eca82074fbbaf80388e0eeebe9f4ebfd')


def lab(*args, **kw):
    env = dict(os.environ, FASTBOOT_LAB_DIR=LAB_DIR, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    return subprocess.run(['bash', SCRIPT] + list(args), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
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
