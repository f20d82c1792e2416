"""Fixtures for tests against the real tools: a real single-node Ceph and modules run through Ansible."""
import os
import uuid

import pytest

from labutil import CEPH_CONF, LAB_DIR, ROOT, ModuleRunner, sh


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
