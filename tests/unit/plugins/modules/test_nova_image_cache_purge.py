# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the nova_image_cache_purge module: documentation vs argument_spec, argument checks, the Glance
filter with a fake openstacksdk connection, only_if_rbd, broken disks, and the removal with a scripted qemu-img."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest
import yaml

from ansible_collections.fastboot.cloud.plugins.module_utils import nova_cache as nc
from ansible_collections.fastboot.cloud.plugins.modules import nova_image_cache_purge as mod

from .modrun import run_main


def qemu_img(infos):
    """A scripted ``qemu-img info -U``: path -> JSON (a dict, or a list for --backing-chain)."""
    def run_command(self, argv, **kw):
        key = (argv[-1], '--backing-chain' in argv)
        if key not in infos:
            return 1, '', "qemu-img: Could not open '%s': No such file or directory" % argv[-1]
        return 0, json.dumps(infos[key]), ''
    return run_command


def run(monkeypatch, args, infos=None, check=False, diff=False, holders=None):
    monkeypatch.setattr(nc, 'scan_open_files', lambda proc='/proc': (holders or {}, 0))
    return run_main(monkeypatch, mod.main, args, check=check, diff=diff, run_command=qemu_img(infos or {}))


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc['module'] == 'nova_image_cache_purge'
    assert set(doc['options']) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        assert doc['options'][name]['type'] == spec['type'], name
        assert doc['options'][name].get('default') == spec.get('default'), name
        assert doc['options'][name].get('choices') == spec.get('choices'), name
        assert doc['options'][name].get('elements') == spec.get('elements'), name
    assert doc['attributes']['check_mode']['support'] == 'full'
    returns = yaml.safe_load(mod.RETURN)
    for key in ('removed', 'kept', 'bytes_freed', 'broken_disks', 'disks_inspected', 'images_type', 'cache_dir', 'msg', 'diff'):
        assert key in returns
    yaml.safe_load(mod.EXAMPLES)


@pytest.fixture()
def tree(tmp_path):
    base = tmp_path / '_base'
    base.mkdir()
    used, unused = 'a' * 40, 'b' * 40
    for name in (used, unused):
        (base / name).write_bytes(b'x' * 4096)
    (tmp_path / 'inst').mkdir()
    (tmp_path / 'inst' / 'disk').write_bytes(b'QFI')
    disk = str(tmp_path / 'inst' / 'disk')
    info = {'filename': disk, 'format': 'qcow2', 'virtual-size': 1, 'full-backing-filename': str(base / used)}
    infos = {(disk, False): info, (disk, True): [info, {'filename': str(base / used), 'format': 'raw', 'virtual-size': 1}]}
    return {'root': str(tmp_path), 'base': str(base), 'used': used, 'unused': unused, 'infos': infos, 'disk': disk}


def test_check_apply_repeat(monkeypatch, tree):
    args = {'instances_path': tree['root']}
    kind, result = run(monkeypatch, args, tree['infos'], check=True, diff=True)
    assert kind == 'exit' and result['changed'] and [r['name'] for r in result['removed']] == [tree['unused']]
    assert result['kept'][0]['reason'] == 'backing file of %s' % tree['disk'] and result['bytes_freed'] > 0
    assert result['diff'] == {'before': {'entries': [tree['used'], tree['unused']]}, 'after': {'entries': [tree['used']]}}
    assert 'would remove 1 of 2' in result['msg'] and sorted(os.listdir(tree['base'])) == [tree['used'], tree['unused']]
    kind, result = run(monkeypatch, args, tree['infos'])
    assert kind == 'exit' and result['changed'] and os.listdir(tree['base']) == [tree['used']]
    for check in (False, True):
        kind, result = run(monkeypatch, args, tree['infos'], check=check)
        assert kind == 'exit' and not result['changed'] and result['removed'] == []


def test_held_open_between_scans_is_kept(monkeypatch, tree):
    calls = []
    key = nc.file_key(os.path.join(tree['base'], tree['unused']))

    def scan(proc='/proc'):
        calls.append(1)
        return ({key: ['9 (qemu)']} if len(calls) > 1 else {}), 0
    monkeypatch.setattr(nc, 'scan_open_files', scan)
    kind, result = run_main(monkeypatch, mod.main, {'instances_path': tree['root']},
                            run_command=qemu_img(tree['infos']))
    assert kind == 'exit', result
    assert not result['changed'] and result['removed'] == [] and len(calls) == 2
    assert 'since the first scan' in [k for k in result['kept'] if k['name'] == tree['unused']][0]['reason']


def test_broken_disk_fails_or_warns(monkeypatch, tree):
    infos = {(tree['disk'], False): {'filename': tree['disk'], 'format': 'qcow2', 'virtual-size': 1,
                                     'full-backing-filename': '/elsewhere/_base/' + tree['unused']}}
    kind, result = run(monkeypatch, {'instances_path': tree['root']}, infos)
    assert kind == 'fail' and 'nothing was removed' in result['msg'] and result['broken_disks'][0]['disk'] == tree['disk']
    kind, result = run(monkeypatch, {'instances_path': tree['root'], 'on_broken_disk': 'warn'}, infos)
    # the used one is not referenced any more (its disk points elsewhere) but the unused one has the missing name
    assert kind == 'exit' and [r['name'] for r in result['removed']] == [tree['used']]
    assert 'could be the missing backing file' in result['kept'][0]['reason']


def test_glance_filter_from_cloud(monkeypatch, tree):
    conn = type('C', (), {})()
    conn.image = type('I', (), {'images': staticmethod(lambda: iter([type('Img', (), {'id': 'x'})()]))})()
    monkeypatch.setattr(nc, 'connect', lambda cloud: conn)
    monkeypatch.setattr(nc, 'cache_name', lambda image_id: tree['unused'])
    kind, result = run(monkeypatch, {'instances_path': tree['root'], 'only_deleted_images': True, 'cloud': 'admin'},
                       tree['infos'], check=True)
    assert kind == 'exit' and result['removed'] == [] and 'still in Glance' in result['kept'][1]['reason']


@pytest.mark.parametrize('args,error', [
    ({'only_deleted_images': True}, 'glance_image_ids or cloud'),
    ({'glance_image_ids': ['x'], 'cloud': 'admin'}, 'mutually exclusive'),
    ({'min_age_seconds': -1}, 'min_age_seconds must be 0 or more'),
    ({'cache_subdirectory': '../x'}, 'plain directory name'),
    ({'on_broken_disk': 'ignore'}, 'on_broken_disk'),
])
def test_bad_arguments(monkeypatch, tree, args, error):
    args = dict(args, instances_path=tree['root'])
    kind, result = run(monkeypatch, args, tree['infos'])
    assert kind == 'fail' and error in result['msg'], result
    assert len(os.listdir(tree['base'])) == 2


def test_only_if_rbd(monkeypatch, tree):
    kind, result = run(monkeypatch, {'instances_path': tree['root'], 'only_if_rbd': True}, tree['infos'])
    assert kind == 'exit' and result['skipped'] and 'images_type is unknown' in result['msg']
    kind, result = run(monkeypatch, {'instances_path': tree['root'], 'only_if_rbd': True, 'images_type': 'rbd'}, tree['infos'])
    assert kind == 'exit' and result['changed'] and result['images_type'] == 'rbd'
