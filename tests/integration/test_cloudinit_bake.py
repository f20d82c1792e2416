"""cloudinit_bake against the real debugfs/sfdisk/qemu-img, and boots of the baked image under qemu.

Fast tests (small ext4 images made with mke2fs -d): each operation four ways (check, apply, repeat, repeat in
check) on MBR, GPT, whole-disk and qcow2 images, into a copy and in place; bad input refused with nothing
written (no /etc/cloud, XFS, no file system, corrupt, errors flag, the [ConfigDrive, Ec2] list).

Boot tests (marker ``boot``; the lab image from tools/lab/build-cloud-image.sh, qemu TCG when KVM is not
usable, OpenStack SMBIOS, metadata service unreachable: packets dropped in a private network namespace):
cloud-init's own evidence (``cloud-init status --long``, ``cloud-init analyze blame``, printed to the
console by the image's report unit) shows what each configuration does.
"""
import json
import os
import shutil
import struct

import pytest

import bootlab
from labutil import sh

MIB = 1024 * 1024
CFG = '/etc/cloud/cloud.cfg.d/99-fastboot.cfg'
BOOT_TIMEOUT = int(os.environ.get('FASTBOOT_BOOT_TIMEOUT', '600'))


# ---------------------------------------------------------------- small images

def rootfs(tmp_path, cloud=True, name='rootfs'):
    root = tmp_path / name
    (root / 'etc' / 'systemd' / 'system').mkdir(parents=True)
    (root / 'usr' / 'lib' / 'systemd' / 'system').mkdir(parents=True)
    (root / 'usr' / 'lib' / 'systemd' / 'system' / 'pollinate.service').write_text('[Service]\nExecStart=/bin/true\n')
    if cloud:
        (root / 'etc' / 'cloud' / 'cloud.cfg.d').mkdir(parents=True)
        (root / 'etc' / 'cloud' / 'cloud.cfg').write_text('datasource_list: [NoCloud, ConfigDrive, OpenStack, Ec2, None]\n')
        (root / 'etc' / 'cloud' / 'cloud.cfg.d' / '90_dpkg.cfg').write_text('datasource_list: [ OpenStack, None ]\n')
    return str(root)


def disk(tmp_path, label='dos', cloud=True, name='disk.raw', size_mib=32, fs='ext4'):
    """A raw disk: ``label`` dos/gpt (one partition at 1 MiB) or None (whole-disk file system)."""
    path = str(tmp_path / name)
    with open(path, 'wb') as handle:
        handle.truncate(size_mib * MIB)
    offset = 0
    if label:
        sh(['sfdisk', '-q', '--label', label, path], input='start=2048\n')
        offset = MIB
    if fs == 'ext4':
        sh(['mke2fs', '-q', '-F', '-t', 'ext4', '-E', 'offset=%d' % offset, '-d', rootfs(tmp_path, cloud, name + '.root'),
            path, '%dM' % (size_mib - offset // MIB)])
    elif fs == 'xfs':
        with open(path, 'r+b') as handle:
            handle.seek(offset)
            handle.write(b'XFSB' + b'\0' * 508)
    return path


def read_file(image, path, offset=MIB):
    proc = sh(['debugfs', '-R', 'cat %s' % path, '%s?offset=%d' % (image, offset) if offset else image])
    return proc.stdout


def stat(image, path, offset=MIB):
    return sh(['debugfs', '-R', 'stat %s' % path, '%s?offset=%d' % (image, offset) if offset else image]).stdout


def fsck_clean(image, offset=MIB):
    proc = sh(['e2fsck', '-fn', '%s?offset=%d' % (image, offset) if offset else image], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def as_raw(image, tmp_path):
    out = str(tmp_path / 'readback.raw')
    sh(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', image, out])
    return out


def no_tmp(directory):
    return [n for n in os.listdir(str(directory)) if 'fastboot-tmp' in n] == []


def four_ways(run_module, args, after):
    """check (would change, nothing written), apply, repeat (unchanged), repeat in check (unchanged)."""
    res = run_module('cloudinit_bake', args, check=True, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    assert res['diff'][0]['before'] == '' and 'datasource_list: [ConfigDrive, OpenStack, None]' in res['diff'][0]['after']
    res = run_module('cloudinit_bake', args, diff=True)
    assert res.get('changed') is True and not res.get('failed'), res
    after(res)
    applied = res
    for check in (False, True):
        res = run_module('cloudinit_bake', args, check=check, diff=True)
        assert res.get('changed') is False and not res.get('failed'), res
        assert res['diff'][0]['before'] == res['diff'][0]['after'] == applied['cfg']
        after(res)
    return applied


@pytest.mark.parametrize('label', ['dos', 'gpt', None])
def test_copy_raw_four_ways(run_module, tmp_path, label):
    src = disk(tmp_path, label=label)
    before = sh(['sha256sum', src]).stdout.split()[0]
    dest = str(tmp_path / 'baked.raw')
    offset = MIB if label else 0
    args = {'src': src, 'dest': dest}
    res = run_module('cloudinit_bake', args, check=True, diff=True)
    assert res['changed'] is True and not os.path.exists(dest), res

    def after(res):
        assert res['image'] == dest and res['image_format'] == 'raw' and res['partition_offset'] == offset
        assert res['partition'] == (1 if label else None) and res['partition_table'] == label and res['filesystem'] == 'ext4'
        assert read_file(dest, CFG, offset) == res['cfg']
        assert 'Mode:  0644' in stat(dest, CFG, offset) and 'User:     0   Group:     0' in stat(dest, CFG, offset)
        assert sh(['sha256sum', src]).stdout.split()[0] == before, 'src was changed'
        assert no_tmp(tmp_path)
        fsck_clean(dest, offset)

    applied = four_ways(run_module, args, after)
    assert applied['cfg_path'] == CFG and applied['changes'] == ['write %s' % CFG]
    assert 'datasource:\n  OpenStack:\n    max_wait: 5\n    timeout: 2\n    retries: 1\n' in applied['cfg']


def test_in_place_qcow2_units_and_policy_four_ways(run_module, tmp_path):
    raw = disk(tmp_path, label='gpt')
    image = str(tmp_path / 'disk.qcow2')
    sh(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, image])
    os.unlink(raw)
    args = {'src': image, 'in_place': True, 'disable_units': ['pollinate.service'],
            'ds_identify_policy': 'search,found=all,maybe=all,notfound=disabled'}

    def after(res):
        assert res['image_format'] == 'qcow2' and no_tmp(tmp_path)
        back = as_raw(image, tmp_path)
        assert read_file(back, CFG) == res['cfg']
        assert read_file(back, '/etc/cloud/ds-identify.cfg').endswith('policy: search,found=all,maybe=all,notfound=disabled\n')
        assert 'Fast link dest: "/dev/null"' in stat(back, '/etc/systemd/system/pollinate.service')
        fsck_clean(back)
        os.unlink(back)

    applied = four_ways(run_module, args, after)
    assert applied['units_masked'] == ['pollinate.service'] and applied['diff'][2]['after'] == 'pollinate.service -> /dev/null\n'
    res = run_module('cloudinit_bake', args)
    assert res['changed'] is False and res['units_already_masked'] == ['pollinate.service'] and res['units_masked'] == []


def test_changed_options_rewrite_the_file(run_module, tmp_path):
    image = disk(tmp_path)
    res = run_module('cloudinit_bake', {'src': image, 'in_place': True})
    assert res['changed'] is True, res
    args = {'src': image, 'in_place': True, 'metadata_max_wait': 3, 'datasource_list': ['ConfigDrive', 'OpenStack']}
    res = run_module('cloudinit_bake', args, check=True, diff=True)
    assert res['changed'] is True and 'max_wait: 5' in res['diff'][0]['before'] and 'max_wait: 3' in res['diff'][0]['after']
    assert 'max_wait: 5' in read_file(image, CFG)
    res = run_module('cloudinit_bake', args, diff=True)
    assert res['changed'] is True and read_file(image, CFG) == res['cfg'] and 'max_wait: 3' in res['cfg']
    assert run_module('cloudinit_bake', args)['changed'] is False
    fsck_clean(image)


def test_warns_when_a_later_file_overrides(run_module, tmp_path):
    image = disk(tmp_path)
    res = run_module('cloudinit_bake', {'src': image, 'in_place': True, 'name': '10-fastboot'})
    assert res['changed'] is True and res['cfg_path'] == '/etc/cloud/cloud.cfg.d/10-fastboot.cfg', res
    assert any('90_dpkg.cfg' in w and 'they win' in w for w in res.get('warnings', [])), res
    res = run_module('cloudinit_bake', {'src': image, 'in_place': True})
    assert not any('they win' in w for w in res.get('warnings', [])), res


def test_dest_is_updated_in_place_unless_force(run_module, tmp_path):
    src = disk(tmp_path)
    dest = str(tmp_path / 'baked.raw')
    assert run_module('cloudinit_bake', {'src': src, 'dest': dest})['changed'] is True
    assert run_module('cloudinit_bake', {'src': src, 'dest': dest})['changed'] is False
    res = run_module('cloudinit_bake', {'src': src, 'dest': dest, 'force': True})
    assert res['changed'] is True and read_file(dest, CFG) == res['cfg'] and no_tmp(tmp_path)


def failed(res, *needles):
    assert res.get('failed') is True and res.get('changed') is False, res
    for needle in needles:
        assert needle in res['msg'], res['msg']
    return res


def test_bad_input_is_refused_and_nothing_is_written(run_module, tmp_path):
    dest = str(tmp_path / 'out.raw')
    no_cloud = disk(tmp_path, cloud=False, name='nocloud.raw')
    failed(run_module('cloudinit_bake', {'src': no_cloud, 'dest': dest}), 'no /etc/cloud', 'cloud-init is not installed')
    xfs = disk(tmp_path, fs='xfs', name='xfs.raw')
    failed(run_module('cloudinit_bake', {'src': xfs, 'in_place': True}), 'XFS is not supported')
    empty = disk(tmp_path, fs=None, name='empty.raw')
    failed(run_module('cloudinit_bake', {'src': empty, 'in_place': True}), 'no known file system')
    failed(run_module('cloudinit_bake', {'src': str(tmp_path / 'missing.raw'), 'in_place': True}), 'does not exist')
    assert not os.path.exists(dest) and no_tmp(tmp_path)

    # an ext superblock marked "errors", and one whose block count is nonsense
    errors = disk(tmp_path, name='errors.raw')
    with open(errors, 'r+b') as handle:
        handle.seek(MIB + 1024 + 0x3A)
        handle.write(struct.pack('<H', 2))
    failed(run_module('cloudinit_bake', {'src': errors, 'in_place': True}), 'marked as having errors')
    corrupt = disk(tmp_path, name='corrupt.raw')
    with open(corrupt, 'r+b') as handle:
        handle.seek(MIB + 1024 + 4)
        handle.write(struct.pack('<I', 0xFFFFFFF0))
    res = failed(run_module('cloudinit_bake', {'src': corrupt, 'in_place': True}), 'cannot be opened by debugfs')
    assert 'corrupt' in res['msg']

    good = disk(tmp_path, name='good.raw')
    before = sh(['sha256sum', good]).stdout.split()[0]
    res = failed(run_module('cloudinit_bake', {'src': good, 'in_place': True, 'datasource_list': ['ConfigDrive', 'Ec2']}),
                 'ds-identify drops Ec2', 'allow_unsafe_datasource_list')
    failed(run_module('cloudinit_bake', {'src': good, 'in_place': True, 'datasource_list': ['ConfigDrive', 'None']}),
           'no user-data and no SSH keys')
    failed(run_module('cloudinit_bake', {'src': good, 'in_place': True, 'datasource_list': ['ConfigDrive', 'Openstack']}),
           'does not know: Openstack')
    failed(run_module('cloudinit_bake', {'src': good}), 'set dest')
    failed(run_module('cloudinit_bake', {'src': good, 'dest': dest, 'in_place': True}), 'not both')
    assert sh(['sha256sum', good]).stdout.split()[0] == before and not os.path.exists(dest)

    res = run_module('cloudinit_bake', {'src': good, 'in_place': True, 'datasource_list': ['ConfigDrive', 'Ec2'],
                                        'allow_unsafe_datasource_list': True})
    assert res['changed'] is True and any('UNSAFE' in w for w in res.get('warnings', [])), res
    assert 'datasource_list: [ConfigDrive, Ec2]' in read_file(good, CFG)


# ---------------------------------------------------------------- boots

@pytest.fixture(scope='session')
def cloud_image():
    return bootlab.ensure_image()


@pytest.fixture(scope='session')
def boot_dir():
    path = os.path.join(bootlab.LAB_DIR, 'boot-tests')
    os.makedirs(path, exist_ok=True)
    return path


def boot_and_report(name, image, cloud_image, boot_dir, drive=None, drive_kind='iso'):
    console = os.path.join(boot_dir, name + '.console')
    result = bootlab.boot(image, cloud_image['vmlinuz'], cloud_image['initrd'], drive=drive, drive_kind=drive_kind,
                          timeout=BOOT_TIMEOUT, console=console)
    summary = {'name': name, 'accel': result.accel, 'elapsed': round(result.elapsed, 1), 'killed': result.killed,
               'status': result.status, 'search': result.search_times, 'final': result.final,
               'datasource': result.result_datasource}
    with open(os.path.join(boot_dir, 'summary.jsonl'), 'a') as handle:
        handle.write(json.dumps(summary) + '\n')
    print(json.dumps(summary))
    assert result.reported, 'no FASTBOOT-REPORT-END on the console of %s (see %s): %s' % (name, console, summary)
    return result


def bake(run_module, cloud_image, dest, **extra):
    args = dict({'src': cloud_image['raw'], 'dest': dest, 'force': True}, **extra)
    res = run_module('cloudinit_bake', args)
    assert res.get('changed') is True and not res.get('failed'), res
    return res


@pytest.mark.boot
@pytest.mark.parametrize('kind', ['iso', 'vfat'])
def test_boot_baked_with_config_drive(run_module, cloud_image, boot_dir, tmp_path, kind):
    """Baked [ConfigDrive, OpenStack, None] + a config drive: DataSourceConfigDrive, the user-data ran."""
    if kind == 'iso':
        image = str(tmp_path / 'baked.raw')
        bake(run_module, cloud_image, image)
    else:   # the qcow2 path of the module: the lab's qcow2 baked in place (a copy of it)
        image = str(tmp_path / 'baked.qcow2')
        shutil.copy(cloud_image['qcow2'], image)
        res = run_module('cloudinit_bake', {'src': image, 'in_place': True})
        assert res.get('changed') is True and res['image_format'] == 'qcow2', res
    drive = bootlab.config_drive(str(tmp_path / ('cd.' + kind)), kind)
    boot = boot_and_report('baked-%s' % kind, image, cloud_image, boot_dir, drive=drive, drive_kind=kind)
    evidence = boot.evidence('FASTBOOT-STATUS', 'FASTBOOT-BLAME', bootlab.MARKER, 'finished at')
    assert boot.status.get('status') == 'done', evidence
    assert 'DataSourceConfigDrive' in boot.status.get('detail', ''), evidence
    assert boot.final and boot.final[0] == 'DataSourceConfigDrive', evidence
    assert any('user-data ran from the config drive' in t for t in boot.evidence(bootlab.MARKER)), evidence
    assert any('ConfigDrive' in k for k in boot.search_times), evidence
    assert not any('OpenStack' in k for k in boot.search_times), evidence


@pytest.mark.boot
def test_boot_stock_without_drive_waits_on_the_metadata_service(cloud_image, boot_dir):
    """The image as built (stock cloud-init config), no drive, metadata service dropped: cloud-init searches
    OpenStackLocal and OpenStack (each waits for 169.254.169.254) and ends on the None datasource."""
    boot = boot_and_report('stock-nodrive', cloud_image['raw'], cloud_image, boot_dir)
    evidence = boot.evidence('FASTBOOT-STATUS', 'FASTBOOT-BLAME', 'finished at')
    assert any('search-OpenStackLocal' in k for k in boot.search_times), evidence
    assert any(k.endswith('search-OpenStack') for k in boot.search_times), evidence
    assert boot.final and boot.final[0] == 'DataSourceNone', evidence


@pytest.mark.boot
def test_boot_baked_without_drive_still_runs_cloud_init(run_module, cloud_image, boot_dir, tmp_path):
    """Baked [ConfigDrive, OpenStack, None], no drive: a short, bounded OpenStack search, then cloud-init still
    runs to the end (None datasource): the safe fallback the module insists on."""
    image = str(tmp_path / 'baked.raw')
    bake(run_module, cloud_image, image)
    boot = boot_and_report('baked-nodrive', image, cloud_image, boot_dir)
    evidence = boot.evidence('FASTBOOT-STATUS', 'FASTBOOT-BLAME', 'finished at')
    assert boot.status.get('status') != 'disabled', evidence
    assert any('OpenStack' in k for k in boot.search_times), evidence
    assert boot.final and boot.final[0] == 'DataSourceNone', evidence


@pytest.mark.boot
def test_boot_configdrive_ec2_without_drive_disables_cloud_init(run_module, cloud_image, boot_dir, tmp_path):
    """Why the module refuses [ConfigDrive, Ec2] on OpenStack: written anyway (override), an instance without a
    config drive has cloud-init disabled by ds-identify (Ec2 is 'platform Unknown' on OpenStack)."""
    image = str(tmp_path / 'ec2.raw')
    res = bake(run_module, cloud_image, image, datasource_list=['ConfigDrive', 'Ec2'], allow_unsafe_datasource_list=True)
    assert any('UNSAFE' in w for w in res.get('warnings', [])), res
    boot = boot_and_report('ec2-nodrive', image, cloud_image, boot_dir)
    evidence = boot.evidence('FASTBOOT-STATUS', 'FASTBOOT-DSID', 'FASTBOOT-GENERATOR', 'finished at')
    assert boot.status.get('status') == 'disabled', evidence
    assert boot.final is None and not boot.search_times, evidence
