"""Bootstrap step of tools/lab/openstack.sh: service project, service users, catalog, lab flavors.

Run once by ``openstack.sh up`` after ``keystone-manage bootstrap``, with Debian's python3 (its
openstacksdk) and OS_CLIENT_CONFIG_FILE/OS_CLOUD pointing at the lab's admin entry. Idempotent.
Usage: register.py PASSWORD NEUTRON_PORT
"""
import sys

import openstack

SERVICES = (
    ('glance', 'image', 'http://127.0.0.1:9292'),
    # Cinder's block storage API v3 (Keystone fills in the project id); the name Debian's cinder-api registers
    ('cinderv3', 'volumev3', 'http://127.0.0.1:8776/v3/%(project_id)s'),
    ('placement', 'placement', 'http://127.0.0.1:8778'),
    ('nova', 'compute', 'http://127.0.0.1:8774/v2.1'),
    # neutron-server (ML2, no agents) or the stand-in tools/lab/neutron_standin.py: see docs/lab.md
    ('neutron', 'network', 'http://127.0.0.1:NEUTRON_PORT'),
)
USERS = ('glance', 'cinder', 'nova', 'placement', 'neutron')
# name, RAM MiB, disk GiB, vCPUs
FLAVORS = (('lab.tiny', 128, 1, 1), ('lab.small', 512, 4, 1))


def main():
    password, neutron_port = sys.argv[1], sys.argv[2]
    conn = openstack.connect()
    idn = conn.identity
    domain = idn.find_domain('default')
    project = idn.find_project('service', domain_id=domain.id) or idn.create_project(
        name='service', domain_id=domain.id, description='fastboot.cloud lab service users')
    admin = idn.find_role('admin')
    for name in USERS:
        user = idn.find_user(name, domain_id=domain.id) or idn.create_user(
            name=name, password=password, domain_id=domain.id)
        idn.assign_project_role_to_user(project, user, admin)
    for name, kind, url in SERVICES:
        url = url.replace('NEUTRON_PORT', neutron_port)
        service = idn.find_service(name) or idn.create_service(name=name, type=kind)
        have = set(endpoint.interface for endpoint in idn.endpoints(service_id=service.id))
        for interface in ('public', 'internal', 'admin'):
            if interface not in have:
                idn.create_endpoint(service_id=service.id, interface=interface, url=url, region_id='RegionOne')
    print('keystone: service users and catalog registered')


def flavors():
    conn = openstack.connect()
    for name, ram, disk, vcpus in FLAVORS:
        if not conn.compute.find_flavor(name):
            conn.compute.create_flavor(name=name, ram=ram, disk=disk, vcpus=vcpus)
    print('nova: flavors %s' % ', '.join(flavor[0] for flavor in FLAVORS))


if __name__ == '__main__':
    if sys.argv[1:2] == ['flavors']:
        flavors()
    else:
        main()
