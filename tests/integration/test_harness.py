"""The lab harness itself: the real Ceph cluster answers and is healthy."""
import json

from labutil import sh


def test_ceph_cluster_is_healthy(ceph):
    status = json.loads(sh(['ceph', 'status', '-f', 'json']).stdout)
    assert status['health']['status'] == 'HEALTH_OK', status['health']
    assert status['osdmap']['num_up_osds'] == 1
