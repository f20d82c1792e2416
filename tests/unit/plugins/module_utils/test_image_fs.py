# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of image_fs: partition table and debugfs output parsing, file system magic numbers, debugfs
scripts, path checks."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import struct

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils import image_fs
from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError

SFDISK_DOS = {'partitiontable': {'label': 'dos', 'id': '0x1234', 'device': 'disk.raw', 'unit': 'sectors',
                                 'sectorsize': 512,
                                 'partitions': [{'node': 'disk.raw1', 'start': 2048, 'size': 4192256, 'type': '83'},
                                                {'node': 'disk.raw2', 'start': 4194304, 'size': 100, 'type': '5'}]}}
SFDISK_GPT = {'partitiontable': {'label': 'gpt', 'sectorsize': 512,
                                 'partitions': [{'node': 'img14', 'start': 2048, 'size': 8192,
                                                 'type': '21686148-6449-6E6F-744E-656564454649'},
                                                {'node': 'img15', 'start': 10240, 'size': 217088,
                                                 'type': 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'},
                                                {'node': 'img1', 'start': 227328, 'size': 4000000,
                                                 'type': '0FC63DAF-8483-4772-8E79-3D69D8477DE4'}]}}

STAT_FILE = '''Inode: 15872   Type: regular    Mode:  0644   Flags: 0x80000
Generation: 0    Version: 0x00000000:00000000
User:     0   Group:     0   Project:     0   Size: 59
EXTENTS:
(0):115791
'''
STAT_LINK = '''Inode: 15873   Type: symlink    Mode:  0777   Flags: 0x0
User:     0   Group:     0   Project:     0   Size: 9
Fast link dest: "/dev/null"
'''


def test_parse_sfdisk_dos_and_gpt():
    table = image_fs.parse_sfdisk(SFDISK_DOS)
    assert table['label'] == 'dos'
    assert table['partitions'][0] == {'number': 1, 'node': 'disk.raw1', 'start': 2048, 'size': 4192256,
                                      'offset': 1048576, 'type': '83'}
    gpt = image_fs.parse_sfdisk(SFDISK_GPT)
    assert [p['number'] for p in gpt['partitions']] == [14, 15, 1]
    assert gpt['partitions'][2]['offset'] == 227328 * 512
    with pytest.raises(CommandError):
        image_fs.parse_sfdisk({'nothing': 1})


def test_parse_stat():
    assert image_fs.parse_stat(STAT_FILE) == {'type': 'regular', 'mode': 0o644, 'uid': 0, 'gid': 0, 'size': 59}
    link = image_fs.parse_stat(STAT_LINK)
    assert link['type'] == 'symlink' and link['target'] == '/dev/null'
    assert image_fs.parse_stat('/etc/x: File not found by ext2_lookup') is None
    assert image_fs.parse_stat('') is None


def make_fs(tmp_path, name, writes, size=1 << 20):
    path = str(tmp_path / name)
    with open(path, 'wb') as handle:
        handle.truncate(size)
        for offset, data in writes:
            handle.seek(offset)
            handle.write(data)
    return path


def ext_superblock(incompat=0x2c2, compat=0x3c, state=1, label=b'rootfs'):
    sb = bytearray(1024)
    struct.pack_into('<H', sb, 0x38, 0xEF53)
    struct.pack_into('<H', sb, 0x3A, state)
    struct.pack_into('<II', sb, 0x5C, compat, incompat)
    sb[0x78:0x78 + len(label)] = label
    return bytes(sb)


@pytest.mark.parametrize('writes, expected', [
    ([(1024, ext_superblock())], 'ext4'),
    ([(1024, ext_superblock(incompat=0x2, compat=0x4))], 'ext3'),
    ([(1024, ext_superblock(incompat=0x2, compat=0))], 'ext2'),
    ([(0, b'XFSB')], 'xfs'),
    ([(0x10040, b'_BHRfS_M')], 'btrfs'),
    ([(512, b'LABELONE'), (536, b'LVM2 001')], 'LVM2_member'),
    ([(0, b'LUKS\xba\xbe')], 'crypto_LUKS'),
    ([(4086, b'SWAPSPACE2')], 'swap'),
    ([(0x52, b'FAT32'), (510, b'\x55\xaa')], 'vfat'),
    ([(0x8001, b'CD001')], 'iso9660'),
    ([], None),
])
def test_probe_fs(tmp_path, writes, expected):
    assert image_fs.probe_fs(make_fs(tmp_path, 'fs.img', writes))['fs'] == expected


def test_probe_fs_at_offset_and_ext_state(tmp_path):
    path = make_fs(tmp_path, 'disk.img', [(4096 + 1024, ext_superblock(state=3, incompat=0x2c6))])
    assert image_fs.probe_fs(path, 0)['fs'] is None
    probe = image_fs.probe_fs(path, 4096)
    assert probe['fs'] == 'ext4' and probe['state_errors'] and probe['needs_recovery'] and probe['label'] == 'rootfs'


def test_device_spec_and_paths():
    assert image_fs.device_spec('/i.raw', 0) == '/i.raw'
    assert image_fs.device_spec('/i.raw', 1048576) == '/i.raw?offset=1048576'
    for bad in ('etc/cloud', '/etc/../root', '/etc/cloud cfg', '/etc//x', '/etc/x;rm'):
        with pytest.raises(InputError):
            image_fs.check_path(bad)


def test_write_and_symlink_commands():
    assert image_fs.Debugfs.write_commands('/etc/cloud/cloud.cfg.d/99-x.cfg', '/tmp/f', exists=True) == [
        'cd /etc/cloud/cloud.cfg.d', 'rm 99-x.cfg', 'write /tmp/f 99-x.cfg', 'sif 99-x.cfg mode 0100644',
        'sif 99-x.cfg uid 0', 'sif 99-x.cfg gid 0']
    assert image_fs.Debugfs.write_commands('/etc/a', '/tmp/f', exists=False)[1] == 'write /tmp/f a'
    assert image_fs.Debugfs.symlink_commands('/etc/systemd/system/p.service', '/dev/null', exists=False) == [
        'cd /etc/systemd/system', 'symlink p.service /dev/null']


def test_unsupported_fs_message():
    assert 'XFS is not supported' in image_fs.unsupported_fs_message(['xfs', 'vfat'])
    assert 'LVM is not supported' in image_fs.unsupported_fs_message(['LVM2_member'])
    assert 'no known file system' in image_fs.unsupported_fs_message([None])
