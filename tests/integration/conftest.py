"""Fixtures for tests against the real tools: a real single-node Ceph and modules run through Ansible."""
import os
import time
import uuid

import pytest

from labutil import CEPH_CONF, LAB_DIR, ROOT, ModuleRunner, sh
from oslab import CLOUDS, STATE, alive, lab, marked_pids, must, service_pids


@pytest.fixture(scope='session')
def ceph():
    """A real Ceph cluster, started by the project's own lab script (idempotent). Left running for
    the rest of the session; `make test` tears it down at the end."""
    sh(['bash', os.path.join(ROOT, 'tools', 'lab', 'ceph.sh'), 'up'])
    return {'conf': CEPH_CONF, 'lab_dir': LAB_DIR}


@pytest.fixture()
def pool(ceph):
    """A fresh rbd pool for one test, deleted afterwards."""
    name = 'test-' + uuid.uuid4().hex[:8]
    sh(['ceph', 'osd', 'pool', 'create', name, '8', '8'])
    sh(['rbd', 'pool', 'init', name])
    yield name
    sh(['ceph', 'osd', 'pool', 'rm', name, name, '--yes-i-really-really-mean-it'], check=False)


@pytest.fixture(scope='session')
def run_module():
    return ModuleRunner()


def default_cloud():
    """True when the lab's Glance and Nova are as tools/lab/openstack.sh wrote them (no RBD, no forced config
    drive)."""
    import configparser
    glance = configparser.ConfigParser(strict=False, interpolation=None)
    glance.read('/etc/glance/glance-api.conf')
    nova = configparser.ConfigParser(strict=False, interpolation=None)
    nova.read('/etc/nova/nova.conf')
    return (':rbd' not in glance.get('DEFAULT', 'enabled_backends', fallback='').replace(' ', '')
            and nova.get('libvirt', 'images_type', fallback='') != 'rbd'
            and nova.get('DEFAULT', 'force_config_drive', fallback='false').lower() not in ('true', '1', 'yes'))


@pytest.fixture(scope='session')
def openstack_cloud(ceph):
    """The lab's OpenStack all-in-one, up for the whole session (with the lab's Ceph beside it), as an
    openstacksdk connection to the cloud fastboot-lab; torn down at the end: no process it started may be left."""
    if not os.path.exists('/usr/bin/keystone-manage') or not os.path.exists('/usr/bin/nova-compute'):
        pytest.skip('OpenStack packages are not installed: run tools/lab/openstack.sh install')
    openstack = pytest.importorskip('openstack')
    started = time.time()
    if os.path.exists(os.path.join(STATE, 'bootstrapped')) and not default_cloud():
        # a lab left switched to RBD (by make lab, or a run that was cut short): the tests start from a default cloud
        must(lab('down'))
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
