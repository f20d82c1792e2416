"""fastboot.cloud.ini_settings on real files through real ansible: check, apply, repeat, repeat in check;
validate rejects before install; comments, order, owner and mode survive; files read later are detected."""
import os
import pwd
import stat

import pytest

ORIGINAL = '''# nova.conf planted by the operator
[DEFAULT]
# operator comment: keep me
my_ip = 192.0.2.10
#force_config_drive = false

[libvirt]
# operator's virt type
virt_type = qemu
#images_type = default
cpu_mode = none
'''
SETTINGS = {
    'DEFAULT': {'force_config_drive': True},
    'libvirt': {'images_type': 'rbd', 'images_rbd_pool': 'vms', 'cpu_mode': None},
    'workarounds': {'never_download_image_if_on_rbd': True},
}


@pytest.fixture()
def conf(tmp_path):
    path = tmp_path / 'nova.conf'
    path.write_text(ORIGINAL)
    os.chmod(str(path), 0o640)
    nobody = pwd.getpwnam('nobody')
    os.chown(str(path), 0, nobody.pw_gid)
    return path


def test_four_ways(run_module, conf):
    args = {'path': str(conf), 'settings': SETTINGS}
    st0 = os.stat(str(conf))

    check = run_module('ini_settings', args, check=True, diff=True)
    assert check['changed'] is True, check
    assert conf.read_text() == ORIGINAL
    assert '+images_type = rbd' in check['unified_diff']
    assert '[libvirt] cpu_mode: none -> (removed)' in check['changes']

    applied = run_module('ini_settings', args, diff=True)
    assert applied['changed'] is True, applied
    text = conf.read_text()
    assert text == check['diff']['after']
    assert '#images_type = default\nimages_type = rbd\nimages_rbd_pool = vms\n' in text
    assert '#force_config_drive = false\nforce_config_drive = true\n' in text
    assert text.endswith('[workarounds]\nnever_download_image_if_on_rbd = true\n')
    for kept in ('# nova.conf planted by the operator', '# operator comment: keep me', 'my_ip = 192.0.2.10',
                 "# operator's virt type\nvirt_type = qemu"):
        assert kept in text
    assert 'cpu_mode' not in text
    st1 = os.stat(str(conf))
    assert (stat.S_IMODE(st1.st_mode), st1.st_uid, st1.st_gid) == (0o640, st0.st_uid, st0.st_gid)
    assert st1.st_ino != st0.st_ino   # replaced by rename, not rewritten in place

    again = run_module('ini_settings', args, diff=True)
    assert again['changed'] is False and again['changes'] == [] and again['unified_diff'] == ''
    again_check = run_module('ini_settings', args, check=True, diff=True)
    assert again_check['changed'] is False
    assert conf.read_text() == text
    assert [p for p in os.listdir(str(conf.parent)) if p.startswith('.ini_settings')] == []


def test_validate_rejects_before_install(run_module, conf):
    args = {'path': str(conf), 'settings': {'libvirt': {'images_typo': 'rbd'}},
            'validate': "/bin/sh -c \"! grep -n images_typo %s && exit 0 || { echo 'unknown option images_typo' >&2; exit 1; }\""}
    for check in (True, False):
        res = run_module('ini_settings', args, check=check)
        assert res.get('failed') is True, res
        assert 'validation of the new content' in res['msg'] and 'unknown option images_typo' in res['msg']
        assert conf.read_text() == ORIGINAL
    assert [p for p in os.listdir(str(conf.parent)) if p.startswith('.ini_settings')] == []

    good = dict(args, settings={'libvirt': {'images_type': 'rbd'}}, validate='/bin/grep -q "^images_type = rbd" %s')
    res = run_module('ini_settings', good)
    assert res['changed'] is True and res['validated'] is True, res


def test_later_files(run_module, conf, tmp_path):
    later = tmp_path / 'nova-compute.conf'
    later.write_text('[DEFAULT]\ncompute_driver=libvirt.LibvirtDriver\n[libvirt]\nvirt_type=kvm\n')
    args = {'path': str(conf), 'settings': {'libvirt': {'virt_type': 'qemu', 'images_type': 'rbd'}},
            'later_files': [str(later), str(tmp_path / 'missing.conf')], 'later_files_action': 'fail'}
    res = run_module('ini_settings', args)
    assert res.get('failed') is True and 'nova-compute.conf sets [libvirt] virt_type = kvm' in res['msg'], res
    assert conf.read_text() == ORIGINAL

    fixed = run_module('ini_settings', {'path': str(later), 'settings': args['settings'], 'only_existing': True})
    assert fixed['changed'] is True and fixed['changes'] == ['[libvirt] virt_type: kvm -> qemu']
    assert later.read_text() == '[DEFAULT]\ncompute_driver=libvirt.LibvirtDriver\n[libvirt]\nvirt_type = qemu\n'
    res = run_module('ini_settings', args)
    assert res['changed'] is True and res['overridden'] == [], res


def test_create_and_missing(run_module, tmp_path):
    missing = tmp_path / 'glance-api.conf'
    res = run_module('ini_settings', {'path': str(missing), 'settings': {'DEFAULT': {'a': 1}}, 'create': False})
    assert res.get('failed') is True and 'does not exist' in res['msg']
    res = run_module('ini_settings', {'path': str(tmp_path / 'nodir' / 'x.conf'), 'settings': {'DEFAULT': {'a': 1}}})
    assert res.get('failed') is True and 'directory' in res['msg']
    check = run_module('ini_settings', {'path': str(missing), 'settings': {'DEFAULT': {'a': 1}}, 'mode': '0640'},
                       check=True)
    assert check['changed'] is True and not missing.exists()
    res = run_module('ini_settings', {'path': str(missing), 'settings': {'DEFAULT': {'a': 1}}, 'mode': '0640'})
    assert res['changed'] is True and missing.read_text() == '[DEFAULT]\na = 1\n'
    assert stat.S_IMODE(os.stat(str(missing)).st_mode) == 0o640
    res = run_module('ini_settings', {'path': str(missing), 'settings': {'DEFAULT': {'a': 1}}, 'mode': '0640'})
    assert res['changed'] is False


def test_bad_settings(run_module, conf):
    res = run_module('ini_settings', {'path': str(conf), 'settings': {'libvirt': 'rbd'}})
    assert res.get('failed') is True and 'must be a dict' in res['msg']
    assert conf.read_text() == ORIGINAL


def test_validate_scope_and_sections(run_module, tmp_path):
    conf = tmp_path / 'glance-api.conf'
    conf.write_text('[DEFAULT]\n# operator\nout_of_tree_option = 1\n')
    settings = {'DEFAULT': {'enabled_backends': 'rbd:rbd'}, 'rbd': {'rbd_store_pool': 'images'}}
    # a stand-in validator that knows no out_of_tree_option and no [rbd] group, only [glance_store]
    validator = "/bin/sh -c \"! grep -q -e out_of_tree_option -e '^.rbd.$' %s || { echo unknown >&2; exit 1; }\""
    args = {'path': str(conf), 'settings': settings, 'validate': validator}
    res = run_module('ini_settings', args)
    assert res.get('failed') is True and 'unknown' in res['msg']
    res = run_module('ini_settings', dict(args, validate_scope='settings'))
    assert res.get('failed') is True, res   # [rbd] is still unknown to the validator
    res = run_module('ini_settings', dict(args, validate_scope='settings', validate_sections={'rbd': 'glance_store'}),
                     check=True)
    assert res['changed'] is True and res['validated'] is True, res
    assert conf.read_text() == '[DEFAULT]\n# operator\nout_of_tree_option = 1\n'
    res = run_module('ini_settings', dict(args, validate_scope='settings', validate_sections={'rbd': 'glance_store'}))
    assert res['changed'] is True and res['validated'] is True, res
    assert conf.read_text() == ('[DEFAULT]\n# operator\nout_of_tree_option = 1\nenabled_backends = rbd:rbd\n\n'
                                '[rbd]\nrbd_store_pool = images\n')
