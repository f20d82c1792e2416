"""End to end on the built-in lab (a short version of bench/lab_e2e.py, which `make lab` runs with 5 VMs).

In file order, on the session's lab (the openstack_cloud fixture): the default cloud boots the stock image;
site.yml switches the lab to Ceph (Glance, Nova and Cinder on RBD, config drive forced, _base purged) restarting
only glance-api, cinder-volume and nova-compute, and a second run changes nothing; the baked raw image uploaded to
the RBD store exposes its rbd:// location; servers created from it are copy-on-write clones of images/<id>@snap
with their config drive in RBD and a console that shows cloud-init found DataSourceConfigDrive and ran the
user-data, and a Cinder volume created from it is a clone of the same snapshot;
retiring the image is refused while clones exist and goes through Glance once they are gone.
These tests depend on each other's order (the lab changes state); a failure stops the later ones.
"""
import os
import sys

import pytest

from labutil import ROOT
from oslab import lab, must, service_pids

sys.path.insert(0, os.path.join(ROOT, 'bench'))
import lab_e2e  # noqa: E402  (the same steps as the benchmark)

pytestmark = pytest.mark.openstack

VMS = int(os.environ.get('FASTBOOT_E2E_VMS', '2'))
TIMEOUT = 1500
STATE = {}


def need(*keys):
    missing = [k for k in keys if k not in STATE]
    if missing:
        pytest.skip('an earlier step failed: %s missing' % missing)


def test_default_cloud_boots_the_stock_image(openstack_cloud):
    state = lab_e2e.cloud_state()
    assert state == {'glance_rbd': False, 'nova_rbd': False, 'config_drive': False}, state
    batch = lab_e2e.before_phase(openstack_cloud, VMS, TIMEOUT)
    for server in batch['servers']:
        # no config drive, no metadata service (no network): no datasource, the user-data never ran
        assert server['datasource'] == 'DataSourceNone', server
        assert not server['user_data_ran'], server
        assert server['disk_bytes'], server
    assert batch['cache_bytes'] > 0, 'the default path cached no image in _base'
    STATE['before'] = batch


def test_site_yml_switches_the_lab_to_rbd_and_restarts_only_what_changed(openstack_cloud):
    before = service_pids(must(lab('status')).stdout)
    recap, output = lab_e2e.site_yml()
    assert recap['lab']['changed'] > 0 and recap['lab']['failed'] == 0, output
    after = service_pids(must(lab('status')).stdout)
    restarted = sorted(name for name in before if before[name] != after.get(name))
    assert restarted == ['cinder-volume', 'glance-api', 'nova-compute'], restarted
    assert lab_e2e.cloud_state() == {'glance_rbd': True, 'nova_rbd': True, 'config_drive': True}
    assert os.listdir(os.path.join(lab_e2e.INSTANCES, '_base')) == [], '_base not purged on an RBD compute'
    STATE['site'] = recap


def test_site_yml_again_changes_nothing(openstack_cloud):
    need('site')
    before = service_pids(must(lab('status')).stdout)
    recap, output = lab_e2e.site_yml()
    assert recap['lab']['changed'] == 0, output
    check, output = lab_e2e.site_yml(['--check'])
    assert check['lab']['changed'] == 0, output
    assert service_pids(must(lab('status')).stdout) == before


def test_rbd_clones_with_config_drive(openstack_cloud, tmp_path):
    need('site')
    batch = lab_e2e.after_phase(openstack_cloud, VMS, TIMEOUT, str(tmp_path / 'work'), keep=True)
    STATE['after'] = batch
    assert batch['image']['direct_url'].startswith('rbd://'), batch['image']
    disks = batch['verify']['disks']
    assert len(disks) == VMS and all(d['status'] == 'clone' for d in disks), disks
    assert all(d['parent']['spec'] == 'images/%s@snap' % batch['image']['id'] for d in disks), disks
    assert sorted(batch['config_drive_disks']) == sorted(s['id'] for s in batch['servers'])
    # the doctor (rbd_service_facts + cloud_doctor with the Glance checks) finds nothing to report
    assert batch['doctor']['not_ok'] == [] and batch['doctor']['summary']['ok'] > 0, batch['doctor']
    for server in batch['servers']:
        assert server['datasource'] == 'DataSourceConfigDrive', server
        assert server['user_data_ran'], server
        assert 'DataSourceConfigDrive' in server['status'].get('detail', ''), server
        # a clone writes only what the guest changed, far below the 2 GiB image
        assert server['disk_bytes'] is not None and server['disk_bytes'] < 1 << 30, server
    # Cinder: a volume from the image is volumes/volume-<id>, a clone of images/<image id>@snap, deleted again
    volume = batch['volume']
    vdisks = volume['verify']['disks']
    assert [d['spec'] for d in vdisks] == ['volumes/volume-%s' % volume['id']], vdisks
    assert vdisks[0]['status'] == 'clone', vdisks
    assert vdisks[0]['parent']['spec'] == 'images/%s@snap' % batch['image']['id'], vdisks
    assert openstack_cloud.block_storage.find_volume(volume['id']) is None, 'the volume was not deleted'


def test_retire_refused_with_clones_then_through_glance(openstack_cloud, run_module):
    need('after')
    batch = STATE['after']
    image_id = batch['image']['id']
    args = {'image_id': image_id, 'cloud': 'fastboot-lab', 'ceph_conf': lab_e2e.CEPH_CONF}
    refused = run_module('rbd_image_retire', args)
    assert refused.get('failed') and not refused.get('changed'), refused
    for server in batch['servers']:
        assert server['id'] in refused['msg'], refused['msg']
    assert openstack_cloud.image.find_image(image_id) is not None

    lab_e2e.delete_servers(openstack_cloud, batch)
    checked = run_module('rbd_image_retire', args, check=True)
    assert checked.get('changed') and not checked.get('failed'), checked
    assert openstack_cloud.image.find_image(image_id) is not None, 'check mode deleted the image'
    applied = run_module('rbd_image_retire', args)
    assert applied.get('changed') and not applied.get('failed'), applied
    assert applied['glance']['deleted'], applied
    assert openstack_cloud.image.find_image(image_id) is None
    assert lab_e2e.rbd_used('images/%s' % image_id) is None, 'the RBD image is still there'
    again = run_module('rbd_image_retire', args)
    assert not again.get('changed') and not again.get('failed'), again
    lab_e2e.delete_images(openstack_cloud, [openstack_cloud.image.get_image(i) for i in batch['extra_images']])


def test_report(openstack_cloud, tmp_path):
    need('before', 'after')
    results = {'vms': VMS, 'before': STATE['before'], 'after': STATE['after']}
    text, png = lab_e2e.report(results, os.path.join(lab_e2e.LAB, 'bench', 'test-run'))
    print(text)
    assert '| create -> ACTIVE (s) |' in text and os.path.exists(png)
