# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloud_doctor / rbd_service_facts: config reading, caps parsing, probes with a fake, and the comparison."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fastboot.cloud.plugins.module_utils import doctor as d
from ansible_collections.fastboot.cloud.plugins.module_utils.common import FastbootError
from ansible_collections.fastboot.cloud.plugins.modules import cloud_doctor as mod
from ansible_collections.fastboot.cloud.plugins.modules import rbd_service_facts as facts_mod

FSID = 'e72df0a4-3584-463d-95f6-664d8797b9c4'
OTHER = '0000f0a4-3584-463d-95f6-664d8797b9c4'
IMG = '3c2f7a9e-1b4d-4e8f-9a6c-5d2e1f0b7c38'


# ---------------------------------------------------------------- reading

def test_read_oslo_later_file_wins(tmp_path):
    a = tmp_path / 'nova.conf'
    b = tmp_path / 'nova-compute.conf'
    a.write_text('[libvirt]\nimages_type = rbd\nimages_rbd_pool = vms\nimages_rbd_pool = vms2\n')
    b.write_text('[libvirt]\nimages_type = qcow2\n')
    conf, files = d.read_oslo([str(a), str(b), str(tmp_path / 'missing.conf')])
    assert files == [str(a), str(b)]
    assert conf['libvirt'] == {'images_type': 'qcow2', 'images_rbd_pool': 'vms2'}


def test_glance_multi_store_and_legacy():
    conf = {'DEFAULT': {'enabled_backends': 'fast:rbd, slow:rbd,file1:file', 'show_image_direct_url': 'True'},
            'fast': {'rbd_store_pool': 'images', 'rbd_store_user': 'glance'}, 'slow': {}}
    backends, sw = d.glance_backends(conf)
    assert [(b['backend'], b['pool'], b['user'], b['ceph_conf']) for b in backends] == [
        ('fast', 'images', 'glance', '/etc/ceph/ceph.conf'), ('slow', 'images', 'admin', '/etc/ceph/ceph.conf')]
    assert sw['show_image_direct_url'] is True and sw['show_multiple_locations'] is False
    assert sw['stores'] == {'fast': 'rbd', 'slow': 'rbd', 'file1': 'file'}
    legacy = {'glance_store': {'stores': 'rbd,http', 'rbd_store_pool': 'img', 'rbd_store_ceph_conf': '/x/c.conf'}}
    backends, sw = d.glance_backends(legacy)
    assert [(b['section'], b['pool'], b['ceph_conf']) for b in backends] == [('glance_store', 'img', '/x/c.conf')]
    assert sw['show_image_direct_url'] is False
    assert d.glance_backends({'DEFAULT': {'enabled_backends': 'f:file'}})[0] == []


def test_nova_settings_defaults_and_paths():
    s = d.nova_settings({})
    assert s['images_type'] == 'default' and s['pool'] == 'rbd' and s['user'] == 'admin'
    assert s['cache_dir'] == '/var/lib/nova/instances/_base'
    s = d.nova_settings({'DEFAULT': {'state_path': '/srv/nova'}, 'image_cache': {'subdirectory_name': 'cache'},
                         'libvirt': {'rbd_secret_uuid': 'ABC', 'images_rbd_ceph_conf': ''},
                         'workarounds': {'never_download_image_if_on_rbd': 'yes'}})
    assert s['cache_dir'] == '/srv/nova/instances/cache' and s['secret_uuid'] == 'abc'
    assert s['ceph_conf'] == '/etc/ceph/ceph.conf' and s['never_download_image_if_on_rbd'] is True


def test_cinder_backends_with_backend_defaults():
    conf = {'DEFAULT': {'enabled_backends': 'ceph,lvm'},
            'backend_defaults': {'rbd_ceph_conf': '/etc/ceph/c2.conf', 'rbd_user': 'cinder'},
            'ceph': {'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver', 'rbd_pool': 'volumes'},
            'lvm': {'volume_driver': 'cinder.volume.drivers.lvm.LVMVolumeDriver'}}
    backends, enabled = d.cinder_backends(conf)
    assert enabled == ['ceph', 'lvm']
    assert backends == [dict(backend='ceph', section='ceph', pool='volumes', user='cinder',
                             ceph_conf='/etc/ceph/c2.conf', secret_uuid=None)]
    assert d.cinder_backends({'DEFAULT': {'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver'}})[0][0]['pool'] == 'rbd'


MINIMAL = '''# minimal ceph.conf for %s
[global]
\tfsid = %s
\tmon_host = [v2:127.0.0.23:3300/0,v1:127.0.0.23:6789/0]
''' % (FSID, FSID)


def test_ceph_conf_tabs_spaces_and_keyring(tmp_path):
    conf = tmp_path / 'c1.conf'
    conf.write_text(MINIMAL + '[client]\nkeyring = %s/$cluster.$name.keyring, /nope  # comment\n' % tmp_path)
    info = d.read_ceph_conf(str(conf))
    assert info['fsid'] == FSID and info['mon_host'].startswith('[v2:127.0.0.23')
    assert d.cluster_name(str(conf)) == 'c1'
    assert d.keyring_candidates(info['sections'], 'nova', 'c1') == [str(tmp_path / 'c1.client.nova.keyring'), '/nope']
    (tmp_path / 'c1.client.nova.keyring').write_text('[client.nova]\n\tkey = QUJD\n')
    assert d.find_keyring(info['sections'], 'nova', 'c1')[0] == str(tmp_path / 'c1.client.nova.keyring')
    assert d.find_keyring(info['sections'], 'cinder', 'c1')[0] is None
    assert d.keyring_candidates({}, 'x')[0] == '/etc/ceph/ceph.client.x.keyring'
    assert d.parse_ceph_conf('[global]\nmon host = a\nmon-initial-members = b\n')['global'] == {
        'mon_host': 'a', 'mon_initial_members': 'b'}
    assert d.read_ceph_conf(str(tmp_path / 'none.conf'))['exists'] is False


# ---------------------------------------------------------------- caps

@pytest.mark.parametrize('caps, pool, read, write', [
    ('profile rbd pool=vms, profile rbd-read-only pool=images', 'images', True, False),
    ('profile rbd pool=vms, profile rbd-read-only pool=images', 'vms', True, True),
    ('profile rbd pool=vms, profile rbd-read-only pool=images', 'volumes', False, False),
    ('profile rbd', 'anything', True, True),
    ('allow *', 'x', True, True),
    ('allow rwx pool=vms', 'vms', True, True),
    ('allow r pool vms', 'vms', True, False),
    ('allow pool vms rw', 'vms', True, True),
    ('allow class-read object_prefix rbd_children, allow rwx pool=vms', 'images', False, False),
    ('allow rwx pool=vms namespace=ns1', 'vms', False, False),
    ('allow rw tag rbd *=*', 'images', True, True),
    ('allow rw tag cephfs data=fs', 'images', False, False),
    ('', 'images', False, False),
])
def test_osd_access(caps, pool, read, write):
    assert d.osd_access(caps, pool) == {'read': read, 'write': write}


# ---------------------------------------------------------------- probes (fake)

class FakeProbe(d.Probe):
    name = 'fake'

    def __init__(self, fsid=FSID, pools=None, fail=None):
        self.fsid_value, self.pools, self.fail, self.closed = fsid, pools or {}, fail, False

    def connect(self):
        if self.fail:
            raise FastbootError(self.fail)
        return self.fsid_value

    def close(self):
        self.closed = True

    def pool_exists(self, pool):
        return pool in self.pools

    def can_read(self, pool):
        return self.pools[pool][0], None if self.pools[pool][0] else 'EPERM'

    def can_write(self, pool):
        return self.pools[pool][1], None if self.pools[pool][1] else 'EPERM'


def test_probe_ceph_records_everything_and_closes():
    probe = FakeProbe(pools={'images': (True, False), 'vms': (True, True)})
    res = d.probe_ceph(probe, ['images', 'vms', 'gone'], ['vms'])
    assert probe.closed
    assert res['connected'] and res['fsid'] == FSID
    assert res['pools'] == {'images': {'exists': True, 'read': True, 'write': None, 'error': None},
                            'vms': {'exists': True, 'read': True, 'write': True, 'error': None},
                            'gone': {'exists': False, 'read': None, 'write': None, 'error': None}}
    res = d.probe_ceph(FakeProbe(fail='timed out'), ['images'], [])
    assert res['connected'] is False and res['error'] == 'timed out' and res['pools'] == {}


class FakeRunner(object):
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def run(self, argv, check=True, what=None):
        self.calls.append(argv)
        return self.answers[argv[-2]]

    def run_json(self, argv, what=None):
        self.calls.append(argv)
        return {'fsid': FSID} if argv[-1] == 'fsid' else ['images']


def test_cli_probe_reads_errno():
    runner = FakeRunner({'stat': (1, '', 'error stat-ing images/rbd_directory: (2) No such file or directory'),
                         'rm': (1, '', 'error removing images>x: (1) Operation not permitted')})
    probe = d.CliProbe(runner, '/c.conf', 'nova', 5)
    assert probe.connect() == FSID
    assert probe.pool_exists('images') and not probe.pool_exists('vms')
    assert probe.can_read('images') == (True, None)
    allowed, err = probe.can_write('images')
    assert allowed is False and 'Operation not permitted' in err
    rm = [c for c in runner.calls if 'rm' in c][0]
    assert rm[:5] == ['rados', '--conf', '/c.conf', '--name', 'client.nova'] and rm[-1].startswith(d.PROBE_PREFIX)
    with pytest.raises(FastbootError):
        d.CliProbe(FakeRunner({'stat': (1, '', 'something odd')}), '/c', 'n', 5).can_read('p')


def test_read_services_auto_and_asked(tmp_path):
    conf = tmp_path / 'ceph.conf'
    conf.write_text(MINIMAL + '\tkeyring = %s/$cluster.$name.keyring\n' % tmp_path)
    (tmp_path / 'ceph.client.nova.keyring').write_text('[client.nova]\n\tkey = QUJD\n')
    nova = tmp_path / 'nova.conf'
    nova.write_text('[DEFAULT]\ninstances_path = %s\n[libvirt]\nimages_type = rbd\nimages_rbd_pool = vms\n'
                    'rbd_user = nova\nimages_rbd_ceph_conf = %s\n' % (tmp_path, conf))
    (tmp_path / '_base').mkdir()
    (tmp_path / '_base' / 'x').write_text('12')
    entries = d.read_services([], str(tmp_path / 'g.conf'), str(nova), [], str(tmp_path / 'c.conf'), 'images')
    assert [e['service'] for e in entries] == ['nova']
    e = entries[0]
    assert e['rbd'] and e['keyring'] == str(tmp_path / 'ceph.client.nova.keyring')
    assert e['ceph_conf_info'] == {'path': str(conf), 'exists': True, 'fsid': FSID,
                                   'mon_host': '[v2:127.0.0.23:3300/0,v1:127.0.0.23:6789/0]'}
    assert e['image_cache']['entries'] == 1 and e['image_cache']['bytes'] == 2
    assert d.probe_pools(e) == (['images', 'vms'], ['vms'])
    asked = d.read_services(['cinder'], None, None, [], str(tmp_path / 'c.conf'), 'images')
    assert asked[0]['config_error'].endswith('c.conf does not exist')


# ---------------------------------------------------------------- comparison

def entry(service, pool, user, pools, fsid=FSID, **kw):
    e = dict(service=service, backend={'glance': 'rbd', 'nova': 'libvirt', 'cinder': 'ceph'}[service], rbd=True,
             files=['/etc/%s/%s.conf' % (service, service)], pool=pool, user=user, ceph_conf='/etc/ceph/ceph.conf',
             ceph_conf_info=dict(path='/etc/ceph/ceph.conf', exists=True, fsid=fsid, mon_host='m'),
             keyring='/etc/ceph/ceph.client.%s.keyring' % user,
             ceph=dict(connected=True, error=None, fsid=fsid, pools=pools))
    if service in ('nova', 'cinder'):
        e['images_pool'] = 'images'
    if service == 'glance':
        e.update(show_image_direct_url=True, show_multiple_locations=False)
    if service == 'nova':
        e.update(images_type='rbd', secret_uuid='7d0b1c6e-3f2a-4b5c-9d8e-1a2b3c4d5e6f',
                 never_download_image_if_on_rbd=True, image_cache=dict(path='/x/_base', entries=0, bytes=0, names=[]),
                 libvirt_secret=dict(checked=True, defined=True, matches=True))
    e.update(kw)
    return e


RW = dict(exists=True, read=True, write=True, error=None)
RO = dict(exists=True, read=True, write=None, error=None)


def healthy():
    return [
        {'host': 'ctl', 'services': [entry('glance', 'images', 'glance', {'images': RW}),
                                     entry('cinder', 'volumes', 'cinder', {'images': RO, 'volumes': RW})]},
        {'host': 'cmp1', 'services': [entry('nova', 'vms', 'nova', {'images': RO, 'vms': RW})]},
    ]


def not_ok(findings):
    return [(f['check'], f['service'], f['host'], f['status']) for f in findings if f['status'] != 'ok']


IMAGES = [dict(id=IMG, name='cirros', disk_format='raw', status='active',
               direct_url='rbd://%s/images/%s/snap' % (FSID, IMG), location_urls=[])]


def test_healthy_is_all_ok():
    findings = d.evaluate(healthy(), IMAGES)
    assert not_ok(findings) == []
    assert d.summary(findings) == {'ok': len(findings), 'warn': 0, 'fail': 0}
    assert all(f['fix'] is None for f in findings)
    assert set(f['check'] for f in findings) == {
        'config', 'ceph_conf', 'ceph_connect', 'ceph_fsid', 'pool', 'pool_write', 'images_pool', 'images_read',
        'image_cache', 'never_download', 'libvirt_secret', 'direct_url', 'image_format', 'image_location'}
    assert all(set(f) == {'check', 'status', 'service', 'host', 'subject', 'detail', 'fix'} for f in findings)


def test_fsid_disagreement_between_services():
    facts = healthy()
    facts[1]['services'][0] = entry('nova', 'vms', 'nova', {'images': RO, 'vms': RW}, fsid=OTHER)
    findings = d.evaluate(facts, IMAGES)
    assert not_ok(findings) == [('ceph_fsid', 'nova', 'cmp1', 'fail')]
    f = [x for x in findings if x['status'] == 'fail'][0]
    assert 'sees cluster %s but glance on ctl sees %s' % (OTHER, FSID) in f['detail']


def test_reference_fsid_without_glance_is_the_majority():
    facts = [{'host': 'a', 'services': [entry('nova', 'vms', 'nova', {}, fsid=OTHER)]},
             {'host': 'b', 'services': [entry('cinder', 'v', 'cinder', {}), entry('cinder', 'w', 'cinder', {})]}]
    assert d.reference_fsid(facts) == (FSID, 'most services')
    assert d.reference_fsid([]) == (None, None)


def test_image_checks():
    imgs = [dict(id='1', name='q', disk_format='qcow2', direct_url='rbd://%s/images/1/snap' % FSID),
            dict(id='2', name='hidden', disk_format='raw', direct_url=None),
            dict(id='3', name='file', disk_format='raw', direct_url='file:///var/lib/glance/images/3'),
            dict(id='4', name='far', disk_format='raw', direct_url='rbd://%s/images/4/snap' % OTHER),
            dict(id='5', name='elsewhere', disk_format='raw', direct_url='rbd://%s/other/5/snap' % FSID),
            dict(id='6', name='multi', disk_format='raw', location_urls=['rbd://%s/images/6/snap' % FSID])]
    findings = [f for f in d.evaluate(healthy(), imgs) if f['check'].startswith('image_')]
    assert [(f['check'], f['subject'], f['status']) for f in findings if f['status'] != 'ok'] == [
        ('image_format', '1', 'fail'), ('image_location', '2', 'fail'), ('image_location', '3', 'fail'),
        ('image_location', '4', 'fail'), ('image_location', '5', 'warn')]
    by = dict(((f['check'], f['subject']), f) for f in findings)
    assert 'disk_format qcow2' in by[('image_format', '1')]['detail']
    assert 'no direct_url' in by[('image_location', '2')]['detail']
    assert 'not in RBD (file://...)' in by[('image_location', '3')]['detail']
    assert 'in cluster %s, not in cluster %s' % (OTHER, FSID) in by[('image_location', '4')]['detail']
    assert by[('image_location', '6')]['status'] == 'ok'
    assert d.parse_rbd_url('rbd://%s/images/x/snap' % FSID.upper())['fsid'] == FSID


@pytest.mark.parametrize('change, expected', [
    (lambda f: f[1]['services'][0]['ceph']['pools'].update(images=dict(exists=True, read=False, error='EPERM')),
     [('images_read', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0]['ceph']['pools'].update(images=dict(exists=False, read=None, error=None)),
     [('images_read', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[0]['services'][1]['ceph']['pools'].update(volumes=dict(exists=True, read=True, write=False)),
     [('pool_write', 'cinder', 'ctl', 'fail')]),
    (lambda f: f[0]['services'][1]['ceph']['pools'].update(volumes=dict(exists=False, read=None, write=None)),
     [('pool', 'cinder', 'ctl', 'fail')]),
    (lambda f: f[1]['services'][0]['ceph'].update(connected=False, fsid=None, error='timed out'),
     [('ceph_connect', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0]['ceph_conf_info'].update(exists=False),
     [('ceph_conf', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0]['ceph_conf_info'].update(fsid=OTHER),
     [('ceph_fsid', 'nova', 'cmp1', 'warn')]),
    (lambda f: f[1]['services'][0].update(keyring=None, keyring_candidates=['/a']),
     [('ceph_conf', 'nova', 'cmp1', 'warn')]),
    (lambda f: f[1]['services'][0]['image_cache'].update(entries=2, bytes=10, names=['a', 'b']),
     [('image_cache', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0].update(never_download_image_if_on_rbd=False),
     [('never_download', 'nova', 'cmp1', 'warn')]),
    (lambda f: f[1]['services'][0].update(secret_uuid=None), [('libvirt_secret', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0]['libvirt_secret'].update(matches=False),
     [('libvirt_secret', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0]['libvirt_secret'].update(defined=False),
     [('libvirt_secret', 'nova', 'cmp1', 'fail')]),
    (lambda f: f[1]['services'][0]['libvirt_secret'].update(checked=False), []),
    (lambda f: f[0]['services'][0].update(show_image_direct_url=False), [('direct_url', 'glance', 'ctl', 'fail')]),
    (lambda f: f[0]['services'][0].update(show_image_direct_url=False, show_multiple_locations=True),
     [('direct_url', 'glance', 'ctl', 'warn')]),
    (lambda f: f[0]['services'][1].update(images_pool='imgs', ceph=dict(connected=True, fsid=FSID, pools={
        'imgs': RO, 'volumes': RW})), [('images_pool', 'cinder', 'ctl', 'warn')]),
    (lambda f: f[1]['services'].__setitem__(0, dict(service='nova', backend='libvirt', rbd=False,
                                                    images_type='qcow2', files=[])),
     [('config', 'nova', 'cmp1', 'warn')]),
    (lambda f: f[0]['services'].__setitem__(0, dict(service='glance', backend=None, rbd=False, files=[],
                                                    stores={'file': 'file'})),
     [('config', 'glance', 'ctl', 'fail')]),
    (lambda f: f[0]['services'].append(dict(service='cinder', backend=None, rbd=False, files=[],
                                            config_error='cinder configuration file /x does not exist')),
     [('config', 'cinder', 'ctl', 'fail')]),
])
def test_one_thing_broken(change, expected):
    facts = healthy()
    change(facts)
    assert not_ok(d.evaluate(facts)) == expected


def test_caps_in_detail_when_known():
    facts = healthy()
    nova = facts[1]['services'][0]
    nova['ceph']['pools']['images'] = dict(exists=True, read=False, write=None, error='EPERM')
    nova['caps'] = {'osd': 'profile rbd pool=vms'}
    f = [x for x in d.evaluate(facts) if x['status'] == 'fail'][0]
    assert '(caps: osd "profile rbd pool=vms")' in f['detail']
    assert 'client.nova' in f['fix'] and 'ceph_rbd' in f['fix']


# ---------------------------------------------------------------- the modules

def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def test_module_fail_and_warn(capsys):
    facts = healthy()
    facts[0]['services'][0]['show_image_direct_url'] = False
    res = run(mod, {'facts': facts}, capsys)
    assert res['failed'] is True and res['changed'] is False
    assert res['summary']['fail'] == 1 and res['failed_checks'][0].startswith('FAIL direct_url [ctl/glance/rbd]')
    res = run(mod, {'facts': facts, 'on_failure': 'warn', '_ansible_check_mode': True}, capsys)
    assert res.get('failed') is not True and res['changed'] is False
    assert 'FAIL direct_url' in json.dumps(res['warnings'])
    assert res['images_checked'] == 0


def test_module_bad_input(capsys):
    res = run(mod, {'facts': [{'host': 'x', 'skipped': True}]}, capsys)
    assert res['failed'] is True and 'not a rbd_service_facts result' in res['msg']
    res = run(mod, {'facts': [], 'images': ['cirros']}, capsys)
    assert res['failed'] is True and 'images needs cloud' in res['msg']


class FakeImage(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


class FakeImageApi(object):
    def __init__(self, images):
        self.list = images

    def images(self):
        return iter(self.list)

    def find_image(self, name, ignore_missing=True):
        for img in self.list:
            if name in (img.id, img.name):
                return img
        return None

    def get_image(self, image_id):
        return [i for i in self.list if i.id == image_id][0]


class FakeConn(object):
    def __init__(self, images):
        self.image = FakeImageApi(images)


def test_load_images():
    conn = FakeConn([FakeImage(id='1', name='a', status='active', disk_format='raw', direct_url=None, locations=None),
                     FakeImage(id='2', name='b', status='queued', disk_format=None, direct_url=None, locations=[])])
    assert [i['id'] for i in mod.load_images(conn, [])] == ['1']
    assert mod.load_images(conn, ['b'])[0]['name'] == 'b'
    with pytest.raises(FastbootError, match='not in Glance'):
        mod.load_images(conn, ['zzz'])


def test_facts_module_reads_nothing_when_no_service(capsys, tmp_path):
    res = run(facts_mod, {'glance_api_conf': str(tmp_path / 'g'), 'nova_conf': str(tmp_path / 'n'),
                          'cinder_conf': str(tmp_path / 'c'), 'nova_later_files': [], 'host': 'h'}, capsys)
    assert res['changed'] is False and res['services'] == [] and res['host'] == 'h'


def test_decode_key():
    assert facts_mod.decode_key('QUJD\n') == b'ABC'
    assert facts_mod.decode_key('not base64!') is None


def test_kernel_and_ramdisk_images_are_not_disks_and_may_be_cached():
    """Direct kernel boot: Nova caches the aki/ari images in _base on every backend; only other entries count."""
    import hashlib
    kernel = {'id': 'k-1', 'name': 'vmlinuz', 'disk_format': 'aki', 'direct_url': None}
    other = hashlib.sha1(b'some-disk-image').hexdigest()
    names = sorted([hashlib.sha1(b'k-1').hexdigest(), other])
    facts = [{'host': 'c1', 'services': [{'service': 'nova', 'image_cache': {
        'path': '/x/_base', 'exists': True, 'entries': 2, 'bytes': 10, 'names': names, 'all_names': names}}]}]
    kept = d.without_kernels(facts, d.kernel_cache_names([kernel]))
    cache = kept[0]['services'][0]['image_cache']
    assert cache['entries'] == 1 and cache['all_names'] == [other] and cache['kernel_entries'] == 1
    assert facts[0]['services'][0]['image_cache']['entries'] == 2, 'the input was changed'
    out = []
    d.image_findings([kernel], None, [], out)
    assert [(f['check'], f['status']) for f in out] == [('image_format', 'ok')]
