# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the nova_image_cache_prewarm module: documentation vs argument_spec, the aggregate pre-cache API
through a fake openstacksdk connection (the real API test waits for the project's OpenStack lab), the RBD skip,
and the offline decisions (link, copy, convert, present, conflict) with a scripted qemu-img."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os

import pytest
import yaml

from ansible_collections.fastboot.cloud.plugins.module_utils import nova_cache as nc
from ansible_collections.fastboot.cloud.plugins.modules import nova_image_cache_prewarm as mod

from .modrun import run_main

from ansible_collections.fastboot.cloud.tests.unit.plugins.module_utils.test_nova_cache import FakeConn


class QemuImg(object):
    """A scripted qemu-img: ``info`` from a path -> format map, ``convert`` writes the target; calls are logged."""

    def __init__(self, formats):
        self.formats = formats
        self.calls = []

    def __get__(self, module, owner=None):
        return lambda argv, **kw: self(module, argv, **kw)

    def __call__(self, module, argv, **kw):
        self.calls.append(list(argv))
        sub = argv[1]
        if sub == 'info':
            fmt = self.formats.get(argv[-1])
            if fmt is None:
                return 1, '', "qemu-img: Could not open '%s'" % argv[-1]
            return 0, json.dumps({'filename': argv[-1], 'format': fmt, 'virtual-size': 1024}), ''
        if sub == 'check':
            return 0, '{}', ''
        if sub == 'convert':
            with open(argv[-1], 'wb') as handle:
                handle.write(b'raw')
            return 0, '', ''
        raise AssertionError(argv)


def run(monkeypatch, args, qemu=None, check=False, diff=False):
    return run_main(monkeypatch, mod.main, args, check=check, diff=diff,
                    run_command=qemu or QemuImg({}))


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc['module'] == 'nova_image_cache_prewarm'
    assert set(doc['options']) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        assert doc['options'][name]['type'] == spec['type'], name
        assert doc['options'][name].get('default') == spec.get('default'), name
        assert doc['options'][name].get('choices') == spec.get('choices'), name
        assert bool(doc['options'][name].get('required')) == bool(spec.get('required')), name
    assert set(doc['options']['images']['suboptions']) == set(mod.ARGUMENT_SPEC['images']['options'])
    returns = yaml.safe_load(mod.RETURN)
    for key in ('images', 'requests', 'cache_dir', 'images_type', 'skipped', 'msg', 'diff'):
        assert key in returns
    yaml.safe_load(mod.EXAMPLES)


# ---------------------------------------------------------------- method=api (fake openstacksdk connection)

def test_api_requests_precache(monkeypatch):
    conn = FakeConn()
    monkeypatch.setattr(nc, 'connect', lambda cloud: conn)
    args = {'method': 'api', 'cloud': 'admin', 'aggregates': ['rack-a'], 'images': [{'id': 'img-1'}, {'id': 'img-1'}, {'id': 'img-2'}]}
    kind, result = run(monkeypatch, args, check=True)
    assert kind == 'exit' and result['changed'] and conn.compute.calls == [] and 'would request' in result['msg']
    kind, result = run(monkeypatch, args)
    assert kind == 'exit' and result['changed'] and conn.compute.calls == [(3, ['img-1', 'img-2'])]
    assert result['requests'] == [{'aggregate': 'rack-a', 'id': 3, 'images': ['img-1', 'img-2']}]


@pytest.mark.parametrize('args,conn,error', [
    ({'aggregates': ['rack-a']}, FakeConn(), 'needs cloud'),
    ({'cloud': 'admin', 'aggregates': ['rack-a']}, FakeConn(max_microversion='2.79'), 'needs 2.81'),
    ({'cloud': 'admin', 'aggregates': ['nope']}, FakeConn(), 'nope does not exist'),
])
def test_api_refuses(monkeypatch, args, conn, error):
    monkeypatch.setattr(nc, 'connect', lambda cloud: conn)
    kind, result = run(monkeypatch, dict(args, method='api', images=[{'id': 'img-1'}]))
    assert kind == 'fail' and error in result['msg'] and conn.compute.calls == []


# ---------------------------------------------------------------- method=offline

@pytest.fixture()
def env(tmp_path):
    store = tmp_path / 'glance'
    store.mkdir()
    (store / 'raw-id').write_bytes(b'r' * 1024)
    (store / 'qcow-id').write_bytes(b'QFI')
    inst = tmp_path / 'instances'
    inst.mkdir()
    formats = {str(store / 'raw-id'): 'raw', str(store / 'qcow-id'): 'qcow2'}
    return {'store': str(store), 'inst': str(inst), 'base': str(inst / '_base'), 'formats': formats,
            'args': {'instances_path': str(inst), 'glance_store_dir': str(store), 'owner': str(os.getuid()),
                     'group': str(os.getgid()), 'images': [{'id': 'raw-id'}, {'id': 'qcow-id'}]}}


def sha1(text):
    return hashlib.sha1(text.encode()).hexdigest()


def test_offline_link_convert_then_present(monkeypatch, env):
    qemu = QemuImg(env['formats'])
    kind, result = run(monkeypatch, env['args'], qemu, check=True, diff=True)
    assert kind == 'exit' and result['changed'] and [i['action'] for i in result['images']] == ['link', 'convert']
    assert not os.path.exists(env['base']) and result['diff']['after']['entries'] == sorted([sha1('raw-id'), sha1('qcow-id')])
    kind, result = run(monkeypatch, env['args'], qemu)
    assert kind == 'exit' and result['changed']
    assert sorted(os.listdir(env['base'])) == sorted([sha1('raw-id'), sha1('qcow-id')])
    assert os.stat(os.path.join(env['base'], sha1('raw-id'))).st_nlink == 2
    convert = [c for c in qemu.calls if c[1] == 'convert'][0]
    assert convert[2:6] == ['-f', 'qcow2', '-O', 'raw'] and '.fastboot-tmp-' in convert[-1]
    qemu.formats[os.path.join(env['base'], sha1('qcow-id'))] = 'raw'
    for check in (False, True):
        kind, result = run(monkeypatch, env['args'], qemu, check=check)
        assert kind == 'exit' and not result['changed'] and [i['action'] for i in result['images']] == ['none', 'none']


def test_offline_no_hardlink_copies_and_keeps_qcow2(monkeypatch, env):
    args = dict(env['args'], hardlink=False, force_raw_images=False)
    kind, result = run(monkeypatch, args, QemuImg(env['formats']))
    assert kind == 'exit' and [i['action'] for i in result['images']] == ['copy', 'copy']
    assert [i['format'] for i in result['images']] == ['raw', 'qcow2']
    assert os.stat(os.path.join(env['base'], sha1('raw-id'))).st_nlink == 1


def test_offline_conflict_is_left_alone(monkeypatch, env):
    os.mkdir(env['base'])
    entry = os.path.join(env['base'], sha1('qcow-id'))
    with open(entry, 'wb') as handle:
        handle.write(b'old')
    qemu = QemuImg(dict(env['formats'], **{entry: 'qcow2'}))
    kind, result = run(monkeypatch, dict(env['args'], images=[{'id': 'qcow-id'}]), qemu)
    assert kind == 'exit' and not result['changed'] and result['images'][0]['action'] == 'conflict'
    assert 'in format qcow2, not raw' in result['images'][0]['reason']
    assert open(entry, 'rb').read() == b'old'


def test_offline_rbd_skips_and_bad_input(monkeypatch, env, tmp_path):
    kind, result = run(monkeypatch, dict(env['args'], images_type='rbd'))
    assert kind == 'exit' and result['skipped'] and not result['changed'] and 'RBD-backed' in result['msg']
    kind, result = run(monkeypatch, dict(env['args'], glance_store_dir=None))
    assert kind == 'fail' and 'glance_store_dir is not set' in result['msg']
    kind, result = run(monkeypatch, dict(env['args'], owner='no-such-user-x'))
    assert kind == 'fail' and 'owner no-such-user-x does not exist' in result['msg']
    kind, result = run(monkeypatch, dict(env['args'], mode='rw'))
    assert kind == 'fail' and 'octal' in result['msg']
    kind, result = run(monkeypatch, dict(env['args'], instances_path=str(tmp_path / 'none')))
    assert kind == 'fail' and 'does not exist' in result['msg']
    kind, result = run(monkeypatch, dict(env['args'], images=[{'id': 'raw-id', 'format': 'raw;x'}]))
    assert kind == 'fail' and 'not a qemu-img format name' in result['msg']
    assert not os.path.exists(env['base'])
