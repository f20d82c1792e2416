"""Helpers for tests against the real tools: run a real binary, run a module through Ansible."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.environ.get('FASTBOOT_LAB_DIR', '/var/tmp/fastboot-lab')
CEPH_CONF = os.path.join(LAB_DIR, 'ceph', 'ceph.conf')
# Debian's ceph CLI and python3-rbd need Debian's /usr/bin first on PATH
SYS_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'


def sh(argv, check=True, **kw):
    """Run a real tool (list argv, no shell) with the lab's CEPH_CONF; return CompletedProcess."""
    env = dict(os.environ, CEPH_CONF=CEPH_CONF, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed rc=%s\nstdout: %s\nstderr: %s'
                             % (argv, proc.returncode, proc.stdout, proc.stderr))
    return proc


class ModuleRunner(object):
    """Runs a fastboot.cloud module on localhost through ansible (AnsiballZ, the real path) and returns
    the module's result dict. ``check``/``diff`` map to --check/--diff."""

    def __call__(self, name, args, check=False, diff=False):
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost',
               '-i', 'localhost,', '-c', 'local', '-m', 'fastboot.cloud.' + name,
               '-a', json.dumps(args), '-e', 'ansible_python_interpreter=' + sys.executable]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        env = dict(os.environ,
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
                   ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='json',
                   ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                   CEPH_CONF=CEPH_CONF, PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, check=False)
        try:
            data = json.loads(proc.stdout)
            return data['plays'][0]['tasks'][0]['hosts']['localhost']
        except (ValueError, KeyError, IndexError):
            raise AssertionError('could not run module %s: rc=%s\nstdout: %s\nstderr: %s'
                                 % (name, proc.returncode, proc.stdout, proc.stderr))
