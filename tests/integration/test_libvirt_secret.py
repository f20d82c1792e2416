"""fastboot.cloud.libvirt_secret against a real libvirtd: define, change value/usage, undefine; bad input.

The libvirtd: a system one answering at qemu:///system is used as is. Otherwise the lab's own libvirtd is
used, or started when it is not running: ``libvirtd -d -f LAB/libvirt/libvirtd.conf -p LAB/libvirt/libvirtd.pid``
with its sockets in LAB/libvirt/run and ``auth_unix_rw = "none"`` (no polkit/D-Bus here); the URI is then
``qemu:///system?socket=LAB/libvirt/run/libvirt-sock``. Every session using the lab libvirtd holds a shared
lock on LAB/libvirt/users.lock; at the end the last one out stops it (only the process in the lab pid file
whose command line names the lab config). Only one libvirtd can run on a host (driver state locks).
"""
import base64
import fcntl
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from labutil import LAB_DIR, SYS_PATH, sh

LV_DIR = os.path.join(LAB_DIR, 'libvirt')
LV_CONF = os.path.join(LV_DIR, 'libvirtd.conf')
LV_PID = os.path.join(LV_DIR, 'libvirtd.pid')
LV_RUN = os.path.join(LV_DIR, 'run')
LV_LOG = os.path.join(LV_DIR, 'libvirtd.log')
LV_LOCK = os.path.join(LV_DIR, 'users.lock')
LAB_URI = 'qemu:///system?socket=' + os.path.join(LV_RUN, 'libvirt-sock')
CONF_TEXT = '''# fastboot.cloud lab libvirtd (tests/integration/test_libvirt_secret.py)
unix_sock_dir = "%s"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:file:%s"
''' % (LV_RUN, LV_LOG)


def answers(uri):
    try:
        return sh(['virsh', '-c', uri, 'secret-list'], check=False, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def lab_daemon_pid():
    """pid of the running lab libvirtd (pid file + command line naming the lab config), else None."""
    try:
        with open(LV_PID) as handle:
            pid = int(handle.read().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            cmdline = handle.read().decode('utf-8', 'replace')
    except (IOError, OSError, ValueError):
        return None
    return pid if 'libvirtd' in cmdline and LV_CONF in cmdline else None


def start_lab_daemon():
    os.makedirs(LV_RUN, exist_ok=True)
    with open(LV_CONF, 'w') as handle:
        handle.write(CONF_TEXT)
    env = dict(os.environ, PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    proc = subprocess.run(['libvirtd', '-d', '-f', LV_CONF, '-p', LV_PID], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30, check=False)
    if proc.returncode != 0:
        raise AssertionError('libvirtd -d -f %s failed rc=%s: %s' % (LV_CONF, proc.returncode, proc.stderr))
    end = time.time() + 20
    while time.time() < end:
        if answers(LAB_URI):
            return
        time.sleep(0.2)
    raise AssertionError('libvirtd started with %s does not answer at %s (log: %s)' % (LV_CONF, LAB_URI, LV_LOG))


def stop_lab_daemon():
    pid = lab_daemon_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    end = time.time() + 15
    while time.time() < end and os.path.exists('/proc/%d' % pid):
        time.sleep(0.1)


@pytest.fixture(scope='session')
def libvirt_uri():
    if shutil.which('virsh', path=SYS_PATH) is None:
        pytest.skip('virsh is not installed (apt-get install --no-install-recommends libvirt-clients)')
    if answers('qemu:///system'):
        yield 'qemu:///system'          # a system libvirtd: not ours, left alone
        return
    if shutil.which('libvirtd', path=SYS_PATH) is None:
        pytest.skip('no libvirtd answers at qemu:///system and libvirtd is not installed '
                    '(apt-get install --no-install-recommends libvirt-daemon-system)')
    os.makedirs(LV_DIR, exist_ok=True)
    lock = open(LV_LOCK, 'a')
    fcntl.flock(lock, fcntl.LOCK_EX)       # serialise start/stop between sessions
    try:
        if not answers(LAB_URI):
            if lab_daemon_pid() is not None:
                stop_lab_daemon()          # ours but hung
            start_lab_daemon()
    finally:
        fcntl.flock(lock, fcntl.LOCK_SH)   # downgrade: "in use by this session"
    try:
        yield LAB_URI
    finally:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError):
            pass                           # another session still uses it: leave it running
        else:
            stop_lab_daemon()
        lock.close()


def virsh(uri, *args, **kw):
    return sh(['virsh', '-c', uri] + list(args), **kw)


def listed(uri):
    out = virsh(uri, 'secret-list').stdout
    return dict((line.split(None, 1)[0], line.split(None, 1)[1].strip() if len(line.split(None, 1)) > 1 else '')
                for line in out.splitlines()[2:] if line.strip())


def get_value(uri, sid):
    proc = virsh(uri, 'secret-get-value', sid, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def new_key():
    return base64.b64encode(os.urandom(28)).decode('ascii')


@pytest.fixture()
def secret(libvirt_uri):
    """A fresh uuid and usage name (not defined); undefined afterwards."""
    sid = str(uuid.uuid4())
    yield dict(uri=libvirt_uri, uuid=sid, usage='client.test-%s secret' % sid[:8])
    virsh(libvirt_uri, 'secret-undefine', sid, check=False)


def define_directly(s, value):
    path = os.path.join(LV_DIR, 'test-%s.xml' % s['uuid'])
    os.makedirs(LV_DIR, exist_ok=True)
    with open(path, 'w') as handle:
        handle.write("<secret ephemeral='no' private='no'><uuid>%s</uuid><usage type='ceph'><name>%s</name></usage></secret>"
                     % (s['uuid'], s['usage']))
    try:
        virsh(s['uri'], 'secret-define', path)
    finally:
        os.unlink(path)
    if value:
        virsh(s['uri'], 'secret-set-value', s['uuid'], '--base64', value)


def test_define_four_ways(run_module, secret):
    value = new_key()
    a = dict(uuid=secret['uuid'], usage_name=secret['usage'], value=value, uri=secret['uri'])

    res = run_module('libvirt_secret', a, check=True, diff=True)
    assert res.get('failed') is not True, res
    assert res['changed'] is True and res['value_changed'] is True
    assert res['diff']['before'] == {'uuid': secret['uuid'], 'defined': False}
    assert res['diff']['after']['usage_name'] == secret['usage']
    assert value not in repr(res)
    assert secret['uuid'] not in listed(secret['uri']), 'check mode defined the secret'

    res = run_module('libvirt_secret', a, diff=True)
    assert res['changed'] is True, res
    assert listed(secret['uri'])[secret['uuid']] == 'ceph ' + secret['usage']
    assert get_value(secret['uri'], secret['uuid']) == value
    xml = virsh(secret['uri'], 'secret-dumpxml', secret['uuid']).stdout
    assert "ephemeral='no'" in xml and "private='no'" in xml

    res = run_module('libvirt_secret', a, diff=True)
    assert res['changed'] is False and res['value_changed'] is False, res
    assert res['diff']['before'] == res['diff']['after']
    assert run_module('libvirt_secret', a, check=True)['changed'] is False


def test_value_and_usage_change(run_module, secret):
    old = new_key()
    define_directly(secret, old)
    value = new_key()
    a = dict(uuid=secret['uuid'], usage_name=secret['usage'], value=value, uri=secret['uri'])

    res = run_module('libvirt_secret', a, check=True, diff=True)
    assert res['changed'] is True and res['changes'] == ['set value'], res
    assert res['diff']['before']['value'] == 'set' and res['diff']['after']['value'] == 'set (changed)'
    assert get_value(secret['uri'], secret['uuid']) == old, 'check mode changed the value'

    res = run_module('libvirt_secret', a)
    assert res['changed'] is True, res
    assert get_value(secret['uri'], secret['uuid']) == value

    assert run_module('libvirt_secret', a)['changed'] is False
    assert run_module('libvirt_secret', a, check=True)['changed'] is False

    # another usage name: libvirt cannot change it in place, the module redefines the secret
    a['usage_name'] = secret['usage'] + ' 2'
    res = run_module('libvirt_secret', a)
    assert res['changed'] is True, res
    assert listed(secret['uri'])[secret['uuid']] == 'ceph ' + a['usage_name']
    assert get_value(secret['uri'], secret['uuid']) == value
    assert run_module('libvirt_secret', a)['changed'] is False


def test_secret_without_value_gets_it(run_module, secret):
    define_directly(secret, None)
    value = new_key()
    a = dict(uuid=secret['uuid'], usage_name=secret['usage'], value=value, uri=secret['uri'])
    res = run_module('libvirt_secret', a, check=True, diff=True)
    assert res['changed'] is True and res['diff']['before']['value'] == 'unset', res
    assert run_module('libvirt_secret', a)['changed'] is True
    assert get_value(secret['uri'], secret['uuid']) == value


def test_undefine_four_ways(run_module, secret):
    define_directly(secret, new_key())
    a = dict(uuid=secret['uuid'], state='absent', uri=secret['uri'])

    res = run_module('libvirt_secret', a, check=True, diff=True)
    assert res['changed'] is True and res['diff']['after'] == {'uuid': secret['uuid'], 'defined': False}, res
    assert secret['uuid'] in listed(secret['uri']), 'check mode undefined the secret'

    res = run_module('libvirt_secret', a)
    assert res['changed'] is True and res['defined'] is False, res
    assert secret['uuid'] not in listed(secret['uri'])

    assert run_module('libvirt_secret', a)['changed'] is False
    assert run_module('libvirt_secret', a, check=True)['changed'] is False


def test_bad_input_fails_before_anything(run_module, secret):
    before = listed(secret['uri'])
    res = run_module('libvirt_secret', dict(uuid='not-a-uuid', value=new_key(), uri=secret['uri']))
    assert res.get('failed') is True and 'is not a UUID' in res['msg'], res

    res = run_module('libvirt_secret', dict(uuid=secret['uuid'], value='not base64 !', uri=secret['uri']))
    assert res.get('failed') is True and 'not valid base64' in res['msg'], res

    res = run_module('libvirt_secret', dict(uuid=secret['uuid'], uri=secret['uri']))
    assert res.get('failed') is True and 'value is required' in res['msg'], res
    assert listed(secret['uri']) == before


def test_usage_name_taken_by_another_secret(run_module, secret):
    define_directly(secret, new_key())
    other = str(uuid.uuid4())
    res = run_module('libvirt_secret', dict(uuid=other, usage_name=secret['usage'], value=new_key(),
                                            uri=secret['uri']))
    assert res.get('failed') is True, res
    assert 'already has the ceph usage name' in res['msg'] and secret['uuid'] in res['msg']
    assert other not in listed(secret['uri'])
