"""fastboot.cloud.rbd_service_facts + cloud_doctor against the real lab Ceph.

Every service gets its own files in tmp_path (glance-api.conf, nova.conf + nova-compute.conf, cinder.conf, a
ceph.conf and a keyring per service, as the ceph_rbd role writes them) pointing at the real cluster, with real
cephx users made with `ceph auth get-or-create` (caps as the ceph_rbd role gives them) and three real pools.
The healthy setup reports only ok; then one thing at a time is broken and the exact finding is asserted.
Glance's disk_format check needs a real Glance: it is not tested here (see the unit tests).
"""
import base64
import json
import os
import subprocess
import sys
import uuid

import pytest

from labutil import CEPH_CONF, ROOT, SYS_PATH, sh


def minimal_conf():
    return sh(['ceph', 'config', 'generate-minimal-conf']).stdout


def fsid_of(text):
    for line in text.splitlines():
        if line.strip().startswith('fsid'):
            return line.split('=', 1)[1].strip()
    raise AssertionError('no fsid in %s' % text)


@pytest.fixture()
def pools(ceph, pool):
    """Three real pools: images (the `pool` fixture), vms, volumes; deleted afterwards."""
    tag = uuid.uuid4().hex[:6]
    made = {'images': pool, 'vms': 'doc-vms-' + tag, 'volumes': 'doc-vol-' + tag}
    for name in (made['vms'], made['volumes']):
        sh(['ceph', 'osd', 'pool', 'create', name, '8', '8'])
        sh(['rbd', 'pool', 'init', name])
    yield made
    for name in (made['vms'], made['volumes']):
        sh(['ceph', 'osd', 'pool', 'rm', name, name, '--yes-i-really-really-mean-it'], check=False)


def compute_caps(p, images_profile='profile rbd-read-only'):
    return {'mon': 'profile rbd',
            'osd': 'profile rbd pool=%s, profile rbd pool=%s, %s pool=%s' % (
                p['volumes'], p['vms'], images_profile, p['images'])}


class Cloud(object):
    """The config files of one all-in-one host, in tmp_path."""

    def __init__(self, tmp_path, pools):
        self.dir = tmp_path
        self.pools = pools
        tag = uuid.uuid4().hex[:6]
        self.users = {'glance': 'doc-glance-' + tag, 'nova': 'doc-nova-' + tag, 'cinder': 'doc-cinder-' + tag}
        self.conf_text = minimal_conf()
        self.fsid = fsid_of(self.conf_text)
        self.etc = tmp_path / 'etc'
        self.etc.mkdir()
        self.instances = tmp_path / 'instances'
        (self.instances / '_base').mkdir(parents=True)
        self.secret_uuid = str(uuid.uuid4())  # not defined in libvirt: the tests run with libvirt_secret=never
        self.caps = {
            'glance': {'mon': 'profile rbd', 'osd': 'profile rbd pool=%s' % pools['images']},
            'nova': compute_caps(pools),
            'cinder': compute_caps(pools),
        }
        for service in ('glance', 'nova', 'cinder'):
            self.set_caps(service, self.caps[service], create=True)
            self.write_ceph_conf(service)
        self.write_glance()
        self.write_nova()
        self.write_cinder()

    def entity(self, service):
        return 'client.' + self.users[service]

    def set_caps(self, service, caps, create=False):
        argv = ['ceph', 'auth', 'get-or-create' if create else 'caps', self.entity(service)]
        for kind in sorted(caps):
            argv += [kind, caps[kind]]
        sh(argv)

    def key(self, service):
        return json.loads(sh(['ceph', 'auth', 'get', self.entity(service), '-f', 'json']).stdout)[0]['key']

    def ceph_dir(self, service):
        path = self.etc / ('ceph-' + service)
        path.mkdir(exist_ok=True)
        return path

    def ceph_conf(self, service):
        return str(self.ceph_dir(service) / 'ceph.conf')

    def write_ceph_conf(self, service, text=None):
        d = self.ceph_dir(service)
        body = (text or self.conf_text).rstrip('\n') + '\n\tkeyring = %s/$cluster.$name.keyring\n' % d
        (d / 'ceph.conf').write_text(body)
        (d / ('ceph.%s.keyring' % self.entity(service))).write_text(
            '[%s]\n\tkey = %s\n' % (self.entity(service), self.key(service)))

    def write_glance(self, direct_url=True):
        (self.etc / 'glance-api.conf').write_text(
            '[DEFAULT]\nenabled_backends = rbd:rbd, file:file\nshow_image_direct_url = %s\n\n'
            '[glance_store]\ndefault_backend = rbd\n\n'
            '[rbd]\nrbd_store_pool = %s\nrbd_store_user = %s\nrbd_store_ceph_conf = %s\nrbd_store_chunk_size = 8\n'
            % ('true' if direct_url else 'false', self.pools['images'], self.users['glance'],
               self.ceph_conf('glance')))

    def write_nova(self, pool=None, later=None):
        (self.etc / 'nova.conf').write_text(
            '[DEFAULT]\ninstances_path = %s\n\n[libvirt]\nimages_type = rbd\nimages_rbd_pool = %s\n'
            'images_rbd_ceph_conf = %s\nrbd_user = %s\nrbd_secret_uuid = %s\n\n'
            '[workarounds]\nnever_download_image_if_on_rbd = true\n'
            % (self.instances, pool or self.pools['vms'], self.ceph_conf('nova'), self.users['nova'],
               self.secret_uuid or ''))
        (self.etc / 'nova-compute.conf').write_text(later or '[DEFAULT]\ncompute_driver = libvirt.LibvirtDriver\n')

    def write_cinder(self):
        (self.etc / 'cinder.conf').write_text(
            '[DEFAULT]\nenabled_backends = ceph\n\n[ceph]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\n'
            'volume_backend_name = ceph\nrbd_pool = %s\nrbd_user = %s\nrbd_ceph_conf = %s\nrbd_secret_uuid = %s\n'
            % (self.pools['volumes'], self.users['cinder'], self.ceph_conf('cinder'), self.secret_uuid or ''))

    def facts_args(self, **kw):
        args = dict(host='aio', glance_api_conf=str(self.etc / 'glance-api.conf'),
                    nova_conf=str(self.etc / 'nova.conf'), nova_later_files=[str(self.etc / 'nova-compute.conf')],
                    cinder_conf=str(self.etc / 'cinder.conf'), images_pool=self.pools['images'],
                    connect_timeout=5, libvirt_secret='never')
        args.update(kw)
        return args

    def cleanup(self):
        for service in self.users:
            sh(['ceph', 'auth', 'del', self.entity(service)], check=False)


@pytest.fixture()
def cloud(tmp_path, pools):
    c = Cloud(tmp_path, pools)
    yield c
    c.cleanup()


def doctor(run_module, cloud, check=False, on_failure='warn', **facts_kw):
    facts = run_module('rbd_service_facts', cloud.facts_args(**facts_kw), check=check)
    assert facts.get('failed') is not True, facts
    assert facts['changed'] is False
    res = run_module('cloud_doctor', {'facts': [facts], 'on_failure': on_failure}, check=check)
    assert res['changed'] is False
    return facts, res


def statuses(res):
    return dict(((f['check'], f['service']), f['status']) for f in res['findings'])


def not_ok(res):
    return [(f['check'], f['service'], f['status']) for f in res['findings'] if f['status'] != 'ok']


def one(res, check, service):
    found = [f for f in res['findings'] if f['check'] == check and f['service'] == service]
    assert len(found) == 1, res['findings']
    return found[0]


HEALTHY = {
    ('config', 'glance'), ('ceph_conf', 'glance'), ('ceph_connect', 'glance'), ('ceph_fsid', 'glance'),
    ('pool', 'glance'), ('pool_write', 'glance'), ('direct_url', 'glance'),
    ('config', 'nova'), ('ceph_conf', 'nova'), ('ceph_connect', 'nova'), ('ceph_fsid', 'nova'), ('pool', 'nova'),
    ('pool_write', 'nova'), ('images_pool', 'nova'), ('images_read', 'nova'), ('image_cache', 'nova'),
    ('never_download', 'nova'),
    ('config', 'cinder'), ('ceph_conf', 'cinder'), ('ceph_connect', 'cinder'), ('ceph_fsid', 'cinder'),
    ('pool', 'cinder'), ('pool_write', 'cinder'), ('images_pool', 'cinder'), ('images_read', 'cinder'),
}


def objects(pool):
    return sh(['rados', '-p', pool, 'ls']).stdout.split()


def test_healthy_all_ok_check_mode_and_nothing_written(run_module, cloud, pools):
    before = dict((k, objects(p)) for k, p in pools.items())
    for check in (False, True):
        facts, res = doctor(run_module, cloud, check=check, on_failure='fail')
        assert res.get('failed') is not True, res
        assert not_ok(res) == [], res['findings']
        # rbd_secret_uuid is set; the secret itself is not checked (libvirt_secret=never): no libvirt_secret finding
        assert set(statuses(res)) == HEALTHY
        assert res['summary'] == {'ok': len(HEALTHY), 'warn': 0, 'fail': 0}
        assert res['failed_checks'] == []
    by = dict((e['service'], e) for e in facts['services'])
    assert set(by) == {'glance', 'nova', 'cinder'}
    assert by['nova']['files'] == [cloud.facts_args()['nova_conf'], cloud.facts_args()['nova_later_files'][0]]
    for entry in by.values():
        assert entry['ceph']['connected'] is True and entry['ceph']['fsid'] == cloud.fsid
        assert entry['keyring'].endswith('ceph.%s.keyring' % cloud.entity(entry['service']))
    assert by['nova']['ceph']['pools'] == {
        pools['images']: {'exists': True, 'read': True, 'write': None, 'error': None},
        pools['vms']: {'exists': True, 'read': True, 'write': True, 'error': None}}
    assert by['glance']['ceph']['pools'] == {pools['images']: {'exists': True, 'read': True, 'write': True,
                                                               'error': None}}
    # the probes changed nothing: no object was created or removed in any pool
    assert dict((k, objects(p)) for k, p in pools.items()) == before


def test_cli_backend_same_answer(run_module, cloud, pools):
    cloud.set_caps('nova', {'mon': 'profile rbd', 'osd': 'profile rbd pool=%s' % pools['vms']})
    facts, res = doctor(run_module, cloud, backend='cli')
    assert facts['backend'] == 'cli'
    nova = [e for e in facts['services'] if e['service'] == 'nova'][0]
    assert nova['ceph']['pools'][pools['images']]['read'] is False
    assert nova['ceph']['pools'][pools['vms']]['write'] is True
    assert not_ok(res) == [('images_read', 'nova', 'fail')]


def test_nova_key_without_caps_on_images(run_module, cloud, pools):
    cloud.set_caps('nova', {'mon': 'profile rbd',
                            'osd': 'profile rbd pool=%s, profile rbd pool=%s' % (pools['vms'], pools['volumes'])})
    facts, res = doctor(run_module, cloud, admin_user='admin', admin_ceph_conf=CEPH_CONF)
    assert not_ok(res) == [('images_read', 'nova', 'fail')]
    f = one(res, 'images_read', 'nova')
    assert f['host'] == 'aio' and f['subject'] == 'libvirt'
    assert 'client.%s cannot read the images pool %s' % (cloud.users['nova'], pools['images']) in f['detail']
    assert 'profile rbd-read-only pool=%s' % pools['images'] in f['fix']
    nova = [e for e in facts['services'] if e['service'] == 'nova'][0]
    assert nova['caps_access'][pools['images']] == {'read': False, 'write': False}
    assert nova['caps_access'][pools['vms']] == {'read': True, 'write': True}
    assert res.get('failed') is not True and res['failed_checks'][0].startswith('FAIL images_read [aio/nova/libvirt]')
    # on_failure=fail fails the task with the same findings
    res = run_module('cloud_doctor', {'facts': [facts]})
    assert res['failed'] is True and 'images_read' in res['msg'] and res['summary']['fail'] == 1


def test_cinder_key_cannot_write_its_pool(run_module, cloud, pools):
    cloud.set_caps('cinder', {'mon': 'profile rbd', 'osd': 'profile rbd-read-only pool=%s, profile rbd-read-only '
                              'pool=%s' % (pools['images'], pools['volumes'])})
    dummy, res = doctor(run_module, cloud)
    assert not_ok(res) == [('pool_write', 'cinder', 'fail')]
    f = one(res, 'pool_write', 'cinder')
    assert 'cannot write pool %s' % pools['volumes'] in f['detail'] and f['subject'] == 'ceph'


def test_ceph_conf_with_another_fsid(run_module, cloud):
    other = str(uuid.uuid4())
    cloud.write_ceph_conf('cinder', cloud.conf_text.replace(cloud.fsid, other))
    dummy, res = doctor(run_module, cloud)
    assert not_ok(res) == [('ceph_fsid', 'cinder', 'warn')]
    f = one(res, 'ceph_fsid', 'cinder')
    assert '%s says fsid %s' % (cloud.ceph_conf('cinder'), other) in f['detail']
    assert 'belong to cluster %s' % cloud.fsid in f['detail']


def test_ceph_conf_with_another_mon_address(run_module, cloud):
    text = '[global]\n\tfsid = %s\n\tmon_host = [v2:127.0.0.254:3300/0,v1:127.0.0.254:6789/0]\n' % cloud.fsid
    cloud.write_ceph_conf('nova', text)
    dummy, res = doctor(run_module, cloud, connect_timeout=3)
    assert not_ok(res) == [('ceph_connect', 'nova', 'fail')]
    f = one(res, 'ceph_connect', 'nova')
    assert 'cannot connect to Ceph as client.%s' % cloud.users['nova'] in f['detail']
    assert '127.0.0.254' in f['detail']
    checks = [c for (c, s) in statuses(res) if s == 'nova']
    assert checks == ['config', 'ceph_conf', 'ceph_connect'], 'no Ceph check after a failed connection'


def test_missing_nova_pool_ceph_conf_and_secret_uuid(run_module, cloud, tmp_path):
    cloud.secret_uuid = None
    cloud.write_nova(pool='no-such-pool')
    (tmp_path / 'etc' / 'cinder.conf').write_text(
        (tmp_path / 'etc' / 'cinder.conf').read_text().replace(cloud.ceph_conf('cinder'), '/nonexistent/ceph.conf'))
    dummy, res = doctor(run_module, cloud)
    assert not_ok(res) == [('pool', 'nova', 'fail'), ('libvirt_secret', 'nova', 'fail'),
                           ('ceph_conf', 'cinder', 'fail')]
    assert 'pool no-such-pool does not exist' in one(res, 'pool', 'nova')['detail']
    assert '/nonexistent/ceph.conf does not exist' in one(res, 'ceph_conf', 'cinder')['detail']


def test_base_not_empty_on_rbd_compute(run_module, cloud):
    (cloud.instances / '_base' / ('a' * 40)).write_bytes(b'\0' * 4096)
    facts, res = doctor(run_module, cloud)
    assert not_ok(res) == [('image_cache', 'nova', 'fail')]
    f = one(res, 'image_cache', 'nova')
    assert 'holds 1 entries (4096 bytes: %s)' % ('a' * 40) in f['detail']
    assert 'nova_image_cache_purge' in f['fix']
    # images_type set back to qcow2 in the file read after nova.conf: _base is legitimate, nova is not RBD
    cloud.write_nova(later='[libvirt]\nimages_type = qcow2\n')
    facts, res = doctor(run_module, cloud)
    assert not_ok(res) == [('config', 'nova', 'warn')]
    assert 'images_type=qcow2' in one(res, 'config', 'nova')['detail']


def test_show_image_direct_url_false(run_module, cloud):
    cloud.write_glance(direct_url=False)
    dummy, res = doctor(run_module, cloud)
    assert not_ok(res) == [('direct_url', 'glance', 'fail')]
    f = one(res, 'direct_url', 'glance')
    assert 'show_image_direct_url is false' in f['detail'] and 'glance_rbd' in f['fix']


def test_service_asked_for_without_its_file(run_module, cloud, tmp_path):
    dummy, res = doctor(run_module, cloud, services=['glance'], glance_api_conf=str(tmp_path / 'missing.conf'))
    assert not_ok(res) == [('config', 'glance', 'fail')]
    assert 'missing.conf does not exist' in one(res, 'config', 'glance')['detail']


def virsh(*args, **kw):
    env = dict(os.environ, LC_ALL='C', PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
    return subprocess.run(['virsh', '-c', 'qemu:///system'] + list(args), env=env, capture_output=True, text=True,
                          check=False, **kw)


@pytest.fixture()
def libvirt_secret(cloud, tmp_path):
    """A real libvirt secret with a random UUID in the system libvirtd, undefined afterwards."""
    if virsh('version').returncode != 0:
        pytest.skip('no libvirtd answers at qemu:///system')
    sid = str(uuid.uuid4())
    xml = tmp_path / 'secret.xml'
    xml.write_text("<secret ephemeral='no' private='no'><uuid>%s</uuid><usage type='ceph'><name>%s secret</name>"
                   "</usage></secret>" % (sid, cloud.entity('nova')))
    assert virsh('secret-define', '--file', str(xml)).returncode == 0
    yield sid
    virsh('secret-undefine', sid)


def set_secret(sid, raw):
    path = os.path.join(os.path.dirname(__file__), '.secret-%s' % sid)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(base64.b64encode(raw))
        proc = virsh('secret-set-value', '--secret', sid, '--file', path)
        assert proc.returncode == 0, proc.stderr
    finally:
        os.unlink(path)


def test_libvirt_secret_value(run_module, cloud, libvirt_secret):
    cloud.secret_uuid = libvirt_secret
    cloud.write_nova()
    set_secret(libvirt_secret, base64.b64decode(cloud.key('nova')))
    facts, res = doctor(run_module, cloud, libvirt_secret='always')
    assert not_ok(res) == []
    nova = [e for e in facts['services'] if e['service'] == 'nova'][0]
    assert nova['libvirt_secret'] == {'checked': True, 'reason': None, 'defined': True, 'matches': True, 'error': None}
    assert cloud.key('nova') not in json.dumps(facts), 'the key must not leave the host'

    set_secret(libvirt_secret, base64.b64decode(cloud.key('cinder')))
    dummy, res = doctor(run_module, cloud, libvirt_secret='always')
    assert not_ok(res) == [('libvirt_secret', 'nova', 'fail')]
    assert 'does not hold the key of client.%s' % cloud.users['nova'] in one(res, 'libvirt_secret', 'nova')['detail']

    cloud.secret_uuid = str(uuid.uuid4())
    cloud.write_nova()
    dummy, res = doctor(run_module, cloud, libvirt_secret='always')
    assert not_ok(res) == [('libvirt_secret', 'nova', 'fail')]
    assert 'is not defined' in one(res, 'libvirt_secret', 'nova')['detail']


def test_playbook_doctor(cloud, tmp_path):
    """playbooks/doctor.yml with an inventory whose one host is glance_api, nova_compute and cinder_volume."""
    a = cloud.facts_args()
    host = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
            'doctor_glance_api_conf': a['glance_api_conf'], 'doctor_nova_conf': a['nova_conf'],
            'doctor_nova_later_files': a['nova_later_files'], 'doctor_cinder_conf': a['cinder_conf'],
            'doctor_images_pool': a['images_pool'], 'doctor_libvirt_secret': 'never', 'doctor_connect_timeout': 5}
    inv = {'all': {'hosts': {'localhost': {'ansible_connection': 'local',
                                           'ansible_python_interpreter': sys.executable}},
                   'children': dict((g, {'hosts': {'aio': host}})
                                    for g in ('glance_api', 'nova_compute', 'cinder_volume'))}}
    (tmp_path / 'inv.yml').write_text(json.dumps(inv))
    cloud.write_glance(direct_url=False)

    def play(*extra):
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.build', 'collections'),
                   ANSIBLE_STDOUT_CALLBACK='json', ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                   PATH=SYS_PATH + ':' + os.environ.get('PATH', ''))
        cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(tmp_path / 'inv.yml'),
               os.path.join(ROOT, 'playbooks', 'doctor.yml')] + list(extra)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
        data = json.loads(proc.stdout)
        return proc.returncode, data['plays'][1]['tasks'][0]['hosts']['localhost']

    rc, res = play('--check')
    assert rc != 0 and res['failed'] is True
    assert not_ok(res) == [('direct_url', 'glance', 'fail')]
    assert set(f['host'] for f in res['findings']) == {'aio'}
    rc, res = play('-e', 'doctor_on_failure=warn')
    assert rc == 0 and res.get('failed') is not True and res['summary']['fail'] == 1
