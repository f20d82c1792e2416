# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the qemu_img_convert module: documentation vs argument_spec, and the decision logic
(create / identical / differs / force / check mode / cleanup) with a scripted run_command."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest
import yaml

from ansible_collections.fastboot.cloud.plugins.modules import qemu_img_convert as mod

from .modrun import run_main

INFO_SRC = {'format': 'qcow2', 'virtual-size': 8388608, 'actual-size': 4460544, 'filename': 'src',
            'format-specific': {'type': 'qcow2', 'data': {'corrupt': False}}}
INFO_RAW = {'format': 'raw', 'virtual-size': 8388608, 'filename': 'dest'}


class Cmds(object):
    """A scripted qemu-img/rbd: state (does the target exist, is it identical) and a call log."""

    def __init__(self, dest_info=None, identical=True, convert_rc=0, images=None):
        self.dest_info = dest_info
        self.identical = identical
        self.convert_rc = convert_rc
        self.images = images
        self.calls = []

    def __call__(self, argv, data=None, environ_update=None, check_rc=False):
        self.calls.append(list(argv))
        tool, sub = os.path.basename(argv[0]), argv[1]
        if tool == 'rbd':
            sub = argv[5]
            if sub == 'ls':
                return (0, json.dumps(self.images), '') if self.images is not None else \
                    (2, '', "rbd: error opening pool 'p': (2) No such file or directory")
            if sub == 'info':
                return 0, json.dumps({'snapshot_count': 0}), ''
            if sub == 'du':
                return 0, json.dumps({'images': [{'name': 'img', 'used_size': 4194304}]}), ''
            if sub in ('rm', 'rename'):
                return 0, '', ''
        if sub == 'info':
            target = argv[-1]
            if target.endswith('src.qcow2'):
                return 0, json.dumps(INFO_SRC), ''
            if self.dest_info is None:
                return 1, '', "qemu-img: Could not open '%s'" % target
            return 0, json.dumps(self.dest_info), ''
        if sub == 'check':
            return 0, '{}', ''
        if sub == 'compare':
            return (0, 'Images are identical.', '') if self.identical else (1, 'Content mismatch at offset 0!', '')
        if sub == 'convert':
            target = argv[-1]
            if not target.startswith('rbd:'):
                with open(target, 'wb') as handle:
                    handle.write(b'converted' if self.convert_rc == 0 else b'partial')
            elif self.images is not None:
                self.images.append(target.split('/')[1].split(':')[0])
            if self.convert_rc:
                return self.convert_rc, '', 'qemu-img: error while reading at byte 0: Input/output error'
            return 0, '', ''
        raise AssertionError('unexpected %r' % (argv,))

    def subcommands(self):
        return [c[5] if os.path.basename(c[0]) == 'rbd' else c[1] for c in self.calls]


@pytest.fixture()
def src(tmp_path):
    path = tmp_path / 'src.qcow2'
    path.write_bytes(b'QFI\xfb')
    return str(path)


def run(monkeypatch, args, cmds, check=False, diff=False):
    return run_main(monkeypatch, mod.main, args, check=check, diff=diff,
                    run_command=lambda self, argv, **kw: cmds(argv, **kw))


# ---------------------------------------------------------------- documentation

def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc['module'] == 'qemu_img_convert'
    options = doc['options']
    assert set(options) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        assert options[name]['type'] == spec['type'], name
        assert options[name].get('default') == spec.get('default'), name
        assert bool(options[name].get('required')) == bool(spec.get('required')), name
    assert doc['attributes']['check_mode']['support'] == 'full'
    assert doc['attributes']['diff_mode']['support'] == 'full'
    assert doc['attributes']['platform']['platforms'] == 'posix'
    returns = yaml.safe_load(mod.RETURN)
    for key in ('src', 'dest', 'src_format', 'dest_format', 'virtual_size', 'actual_size', 'bytes_written',
                'duration', 'backing_file', 'diff'):
        assert key in returns
    yaml.safe_load(mod.EXAMPLES)


def test_required_arguments(monkeypatch):
    kind, result = run(monkeypatch, {'src': '/x'}, Cmds())
    assert kind == 'fail' and 'dest' in result['msg']


# ---------------------------------------------------------------- file target

def test_file_create_apply_and_check(monkeypatch, src, tmp_path):
    dest = str(tmp_path / 'out.raw')
    cmds = Cmds()
    kind, result = run(monkeypatch, {'src': src, 'dest': dest}, cmds, check=True, diff=True)
    assert kind == 'exit' and result['changed'] and not os.path.exists(dest)
    assert 'convert' not in cmds.subcommands()
    assert result['diff'] == {'before': {'dest': dest, 'exists': False},
                              'after': {'dest': dest, 'exists': True, 'format': 'raw', 'virtual_size': 8388608}}
    assert result['bytes_written'] == 0 and result['actual_size'] is None

    kind, result = run(monkeypatch, {'src': src, 'dest': dest}, cmds)
    assert kind == 'exit' and result['changed']
    assert open(dest, 'rb').read() == b'converted'
    assert sorted(os.listdir(str(tmp_path))) == ['out.raw', 'src.qcow2']
    convert = [c for c in cmds.calls if c[1] == 'convert'][0]
    assert convert[2:6] == ['-f', 'qcow2', '-O', 'raw'] and convert[6] == src
    assert os.path.basename(convert[7]).startswith('.out.raw.fastboot-tmp-')
    assert result['src_format'] == 'qcow2' and result['dest_format'] == 'raw' and result['virtual_size'] == 8388608
    assert result['backing_file'] is None and isinstance(result['duration'], float)
    assert result['bytes_written'] == result['actual_size'] == os.stat(dest).st_blocks * 512


def test_file_identical_is_unchanged(monkeypatch, src, tmp_path):
    dest = tmp_path / 'out.raw'
    dest.write_bytes(b'same')
    for check in (False, True):
        cmds = Cmds(dest_info=INFO_RAW, identical=True)
        kind, result = run(monkeypatch, {'src': src, 'dest': str(dest)}, cmds, check=check, diff=True)
        assert kind == 'exit' and not result['changed'], result
        assert 'convert' not in cmds.subcommands() and 'compare' in cmds.subcommands()
        assert result['diff']['before'] == result['diff']['after']
        assert result['bytes_written'] == 0
    assert dest.read_bytes() == b'same'


@pytest.mark.parametrize('dest_info,identical,reason', [
    (INFO_RAW, False, 'content differs'),
    (dict(INFO_RAW, **{'virtual-size': 4096}), True, 'virtual size is 4096 bytes, not 8388608'),
    (dict(INFO_SRC, filename='dest'), True, 'in format qcow2, not raw'),
    (None, True, 'cannot be opened by qemu-img'),
])
def test_file_differs_without_force_fails_untouched(monkeypatch, src, tmp_path, dest_info, identical, reason):
    dest = tmp_path / 'out.raw'
    dest.write_bytes(b'old')
    for check in (True, False):
        cmds = Cmds(dest_info=dest_info, identical=identical)
        kind, result = run(monkeypatch, {'src': src, 'dest': str(dest)}, cmds, check=check)
        assert kind == 'fail'
        assert 'exists and differs' in result['msg'] and reason in result['msg'] and 'force=true' in result['msg']
        assert 'convert' not in cmds.subcommands()
    assert dest.read_bytes() == b'old'
    assert sorted(os.listdir(str(tmp_path))) == ['out.raw', 'src.qcow2']


def test_file_force_replaces(monkeypatch, src, tmp_path):
    dest = tmp_path / 'out.raw'
    dest.write_bytes(b'old')
    args = {'src': src, 'dest': str(dest), 'force': True}
    kind, result = run(monkeypatch, args, Cmds(dest_info=INFO_RAW, identical=False), check=True, diff=True)
    assert kind == 'exit' and result['changed'] and dest.read_bytes() == b'old'
    assert result['diff']['before']['exists'] and 'would convert' in result['msg']
    kind, result = run(monkeypatch, args, Cmds(dest_info=INFO_RAW, identical=False))
    assert kind == 'exit' and result['changed'] and dest.read_bytes() == b'converted'
    assert sorted(os.listdir(str(tmp_path))) == ['out.raw', 'src.qcow2']


def test_file_convert_failure_removes_tmp_keeps_target(monkeypatch, src, tmp_path):
    dest = tmp_path / 'out.raw'
    dest.write_bytes(b'old')
    kind, result = run(monkeypatch, {'src': src, 'dest': str(dest), 'force': True},
                       Cmds(dest_info=INFO_RAW, identical=False, convert_rc=1))
    assert kind == 'fail' and 'Input/output error' in result['msg'] and result['changed'] is False
    assert dest.read_bytes() == b'old'
    assert sorted(os.listdir(str(tmp_path))) == ['out.raw', 'src.qcow2']


def test_missing_src_and_same_file(monkeypatch, src, tmp_path):
    kind, result = run(monkeypatch, {'src': str(tmp_path / 'nope.qcow2'), 'dest': str(tmp_path / 'o')}, Cmds())
    assert kind == 'fail' and result['msg'] == 'src %s does not exist' % (tmp_path / 'nope.qcow2')
    kind, result = run(monkeypatch, {'src': src, 'dest': src}, Cmds())
    assert kind == 'fail' and 'same file' in result['msg']


def test_bad_formats_are_refused(monkeypatch, src, tmp_path):
    kind, result = run(monkeypatch, {'src': src, 'dest': str(tmp_path / 'o'), 'dest_format': 'raw,x'}, Cmds())
    assert kind == 'fail' and 'dest_format' in result['msg']


# ---------------------------------------------------------------- RBD target

def rbd_args(src, **kw):
    args = {'src': src, 'dest': 'rbd:p/img', 'ceph_conf': __file__, 'ceph_user': 'u'}
    args.update(kw)
    return args


def test_rbd_create(monkeypatch, src):
    cmds = Cmds(images=[])
    kind, result = run(monkeypatch, rbd_args(src), cmds, check=True)
    assert kind == 'exit' and result['changed'] and cmds.images == []
    kind, result = run(monkeypatch, rbd_args(src), cmds)
    assert kind == 'exit' and result['changed'] and result['dest'] == 'rbd:p/img'
    convert = [c for c in cmds.calls if c[1] == 'convert'][0]
    assert convert[-1].startswith('rbd:p/img.fastboot-tmp-') and convert[-1].endswith(':conf=%s:id=u' % __file__)
    rbd = [c[5:] for c in cmds.calls if os.path.basename(c[0]) == 'rbd' and c[5] in ('rm', 'rename')]
    assert len(rbd) == 1 and rbd[0][0] == 'rename' and rbd[0][2] == 'p/img'
    assert result['actual_size'] == result['bytes_written'] == 4194304


def test_rbd_identical(monkeypatch, src):
    cmds = Cmds(images=['img'], dest_info=INFO_RAW, identical=True)
    kind, result = run(monkeypatch, rbd_args(src), cmds)
    assert kind == 'exit' and not result['changed'] and result['actual_size'] == 4194304
    compare = [c for c in cmds.calls if c[1] == 'compare'][0]
    assert compare[-1] == 'rbd:p/img:conf=%s:id=u' % __file__


def test_rbd_force_replace_removes_old_then_renames(monkeypatch, src):
    cmds = Cmds(images=['img'], dest_info=INFO_RAW, identical=False)
    kind, result = run(monkeypatch, rbd_args(src), cmds)
    assert kind == 'fail' and 'exists and differs' in result['msg']
    kind, result = run(monkeypatch, rbd_args(src, force=True), cmds)
    assert kind == 'exit' and result['changed']
    rbd = [c[5:7] for c in cmds.calls if os.path.basename(c[0]) == 'rbd' and c[5] in ('rm', 'rename')]
    assert rbd[0] == ['rm', '--no-progress'] and rbd[1][0] == 'rename'


def test_rbd_pool_missing(monkeypatch, src):
    kind, result = run(monkeypatch, rbd_args(src), Cmds(images=None))
    assert kind == 'fail' and "RBD pool 'p' does not exist" in result['msg'] and result['pool'] == 'p'


def test_rbd_convert_failure_removes_tmp(monkeypatch, src):
    cmds = Cmds(images=[], convert_rc=1)
    kind, result = run(monkeypatch, rbd_args(src), cmds)
    assert kind == 'fail' and 'Input/output error' in result['msg']
    removed = [c[7] for c in cmds.calls if os.path.basename(c[0]) == 'rbd' and c[5] == 'rm']
    assert len(removed) == 1 and removed[0].startswith('p/img.fastboot-tmp-')


def test_rbd_rejects_non_raw(monkeypatch, src):
    kind, result = run(monkeypatch, rbd_args(src, dest_format='qcow2'), Cmds(images=[]))
    assert kind == 'fail' and 'only dest_format=raw' in result['msg']
