# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of module_utils/qemu_img.py: parsing, spec building and decisions, with a scripted run_command."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError, Runner
from ansible_collections.fastboot.cloud.plugins.module_utils import qemu_img as q

QCOW2_INFO = {
    'virtual-size': 8388608, 'filename': 'a.qcow2', 'cluster-size': 65536, 'format': 'qcow2',
    'actual-size': 4460544, 'dirty-flag': False,
    'format-specific': {'type': 'qcow2', 'data': {'compat': '1.1', 'corrupt': False, 'extended-l2': False}},
}


def qcow2(**over):
    data = json.loads(json.dumps(QCOW2_INFO))
    data.update(over)
    return data


class FakeModule(object):
    """Answers run_command from a list of (predicate, (rc, out, err)) rules and records the calls."""

    def __init__(self, rules=None):
        self.rules = list(rules or [])
        self.calls = []

    def get_bin_path(self, name, required=False):
        return '/usr/bin/' + name

    def run_command(self, argv, data=None, environ_update=None, check_rc=False):
        assert environ_update and environ_update.get('LC_ALL') == 'C'
        self.calls.append(list(argv))
        for match, answer in self.rules:
            if match(argv):
                return answer(argv) if callable(answer) else answer
        raise AssertionError('unexpected command %r' % (argv,))


def has(*words):
    return lambda argv: all(w in argv for w in words)


def runner(*rules):
    return Runner(FakeModule(rules))


# ---------------------------------------------------------------- target parsing and specs

def test_parse_target_file_and_rbd():
    assert q.parse_target('/var/lib/x.raw') == {'kind': 'file', 'path': '/var/lib/x.raw'}
    assert q.parse_target('rbd:images/debian-12') == {'kind': 'rbd', 'pool': 'images', 'image': 'debian-12'}


@pytest.mark.parametrize('dest', ['rbd:images', 'rbd:/img', 'rbd:pool/', 'rbd:p/ns/img', 'rbd:p/img@snap',
                                  'rbd:p/img:conf=/x', 'rbd:p o/img', ''])
def test_parse_target_rejects_bad_rbd(dest):
    with pytest.raises(InputError):
        q.parse_target(dest)


def test_rbd_spec_escapes_and_options():
    assert q.rbd_spec('p', 'i') == 'rbd:p/i'
    assert q.rbd_spec('p', 'i', '/etc/ceph/ceph.conf', 'admin') == 'rbd:p/i:conf=/etc/ceph/ceph.conf:id=admin'
    assert q.rbd_spec('p', 'i', '/a:b\\c', 'u') == 'rbd:p/i:conf=/a\\:b\\\\c:id=u'
    with pytest.raises(InputError):
        q.rbd_spec('p', 'i:x')


def test_validate_format():
    assert q.validate_format('qcow2', 'src_format') == 'qcow2'
    assert q.validate_format(None, 'src_format') is None
    with pytest.raises(InputError, match='dest_format'):
        q.validate_format('raw -o x', 'dest_format')


# ---------------------------------------------------------------- info parsing

def test_parse_info_plain_qcow2():
    info = q.parse_info(qcow2())
    assert info['format'] == 'qcow2' and info['virtual_size'] == 8388608 and info['actual_size'] == 4460544
    assert info['backing_file'] is None and not info['encrypted'] and not info['corrupt']


def test_parse_info_backing_encrypted_corrupt():
    info = q.parse_info(qcow2(**{'backing-filename': 'base.qcow2', 'full-backing-filename': '/img/base.qcow2'}))
    assert info['backing_file'] == '/img/base.qcow2'
    enc = qcow2(encrypted=True)
    assert q.parse_info(enc)['encrypted']
    enc2 = qcow2()
    enc2['format-specific']['data']['encrypt'] = {'format': 'luks'}
    assert q.parse_info(enc2)['encrypted']
    assert q.parse_info({'format': 'luks', 'virtual-size': 1})['encrypted']
    bad = qcow2()
    bad['format-specific']['data']['corrupt'] = True
    assert q.parse_info(bad)['corrupt']


def test_parse_info_rejects_unexpected_json():
    with pytest.raises(CommandError):
        q.parse_info({'filename': 'x'})
    with pytest.raises(CommandError):
        q.parse_chain([])
    assert [i['format'] for i in q.parse_chain(qcow2())] == ['qcow2']


# ---------------------------------------------------------------- check / compare

@pytest.mark.parametrize('rc', [0, 3])
def test_check_accepts_clean_and_leaks(rc):
    r = runner((has('check'), (rc, json.dumps({'check-errors': 0, 'leaks': 2 if rc else 0}), '')))
    assert q.check(r, '/x.qcow2', 'qcow2')['check-errors'] == 0


def test_check_unsupported_format_is_ok():
    assert q.check(runner((has('check'), (63, '', 'qemu-img: This image format does not support checks'))), '/x', 'raw') == {}


def test_check_corrupt_and_failed():
    with pytest.raises(InputError, match='is corrupt: qemu-img check found 8 corruption'):
        q.check(runner((has('check'), (2, json.dumps({'corruptions': 8}), 'ERROR ...'))), '/x.qcow2', 'qcow2')
    with pytest.raises(InputError, match='corrupt or unreadable.*Check failed'):
        q.check(runner((has('check'), (1, '', 'ERROR a\nqemu-img: Check failed\n'))), '/x.qcow2', 'qcow2')


def test_compare_rcs():
    assert q.compare(runner((has('compare'), (0, 'Images are identical.\n', ''))), 'a', 'qcow2', 'b', 'raw') is True
    assert q.compare(runner((has('compare'), (1, 'Content mismatch at offset 0!\n', ''))), 'a', 'qcow2', 'b', 'raw') is False
    with pytest.raises(CommandError, match='rc=2'):
        q.compare(runner((has('compare'), (2, '', 'qemu-img: Could not open b'))), 'a', 'qcow2', 'b', 'raw')


def test_compare_argv():
    r = runner((has('compare'), (0, '', '')))
    q.compare(r, '/s.qcow2', 'qcow2', 'rbd:p/i:conf=/c:id=u', 'raw')
    assert r.module.calls[0] == ['/usr/bin/qemu-img', 'compare', '-f', 'qcow2', '-F', 'raw', '/s.qcow2', 'rbd:p/i:conf=/c:id=u']


# ---------------------------------------------------------------- inspect_source

@pytest.fixture()
def img(tmp_path):
    path = tmp_path / 'src.qcow2'
    path.write_bytes(b'QFI\xfb')
    return str(path)


def test_inspect_source_missing(tmp_path):
    with pytest.raises(InputError, match='src .*/nope.qcow2 does not exist'):
        q.inspect_source(runner(), str(tmp_path / 'nope.qcow2'))


def test_inspect_source_plain(img):
    r = runner((has('info'), (0, json.dumps(qcow2(filename=img)), '')), (has('check'), (0, '{}', '')))
    src = q.inspect_source(r, img)
    assert src == {'format': 'qcow2', 'virtual_size': 8388608, 'actual_size': 4460544, 'backing_file': None, 'chain': [img]}
    assert r.module.calls[0] == ['/usr/bin/qemu-img', 'info', '--output=json', img]
    assert r.module.calls[1] == ['/usr/bin/qemu-img', 'check', '--output=json', '-f', 'qcow2', img]


def test_inspect_source_given_format_is_passed(img):
    r = runner((has('info'), (0, json.dumps({'format': 'raw', 'virtual-size': 4, 'filename': img}), '')))
    assert q.inspect_source(r, img, fmt='raw')['format'] == 'raw'
    assert r.module.calls == [['/usr/bin/qemu-img', 'info', '--output=json', '-f', 'raw', img]]


def test_inspect_source_unreadable(img):
    r = runner((has('info'), (1, '', "qemu-img: Could not open 'x': qcow2 header too short\n")))
    with pytest.raises(InputError, match='cannot be opened by qemu-img .*qcow2 header too short'):
        q.inspect_source(r, img)


def test_inspect_source_backing_refused(img):
    r = runner((has('info'), (0, json.dumps(qcow2(filename=img, **{'full-backing-filename': '/b.qcow2'})), '')))
    with pytest.raises(InputError, match='has a backing file .*/b.qcow2.*allow_backing_file=true') as err:
        q.inspect_source(r, img)
    assert err.value.details['backing_file'] == '/b.qcow2'
    assert len(r.module.calls) == 1


def test_inspect_source_backing_allowed_checks_chain(img, tmp_path):
    base = str(tmp_path / 'base.qcow2')
    open(base, 'wb').close()
    top = qcow2(filename=img, **{'full-backing-filename': base})
    chain = [top, qcow2(filename=base)]
    r = runner((has('--backing-chain'), (0, json.dumps(chain), '')), (has('info'), (0, json.dumps(top), '')),
               (has('check'), (0, '{}', '')))
    src = q.inspect_source(r, img, allow_backing_file=True)
    assert src['backing_file'] == base and src['chain'] == [img, base]
    checked = [c[-1] for c in r.module.calls if 'check' in c]
    assert checked == [img, base]


def test_inspect_source_backing_chain_broken(img):
    top = qcow2(filename=img, **{'full-backing-filename': '/gone.qcow2'})
    r = runner((has('--backing-chain'), (1, '', "qemu-img: Could not open '/gone.qcow2': No such file or directory")),
               (has('info'), (0, json.dumps(top), '')))
    with pytest.raises(InputError, match='backing chain .* cannot be opened .*/gone.qcow2'):
        q.inspect_source(r, img, allow_backing_file=True)


def test_inspect_source_encrypted_in_chain(img, tmp_path):
    base = str(tmp_path / 'base.qcow2')
    top = qcow2(filename=img, **{'full-backing-filename': base})
    r = runner((has('--backing-chain'), (0, json.dumps([top, qcow2(filename=base, encrypted=True)]), '')),
               (has('info'), (0, json.dumps(top), '')), (has('check'), (0, '{}', '')))
    with pytest.raises(InputError, match='backing file of src .* is encrypted'):
        q.inspect_source(r, img, allow_backing_file=True)


def test_inspect_source_encrypted_and_corrupt_flag(img):
    r = runner((has('info'), (0, json.dumps(qcow2(filename=img, encrypted=True)), '')))
    with pytest.raises(InputError, match='src .* is encrypted'):
        q.inspect_source(r, img)
    bad = qcow2(filename=img)
    bad['format-specific']['data']['corrupt'] = True
    with pytest.raises(InputError, match='marked corrupt'):
        q.inspect_source(runner((has('info'), (0, json.dumps(bad), ''))), img)


def test_convert_argv():
    r = runner((has('convert'), (0, '', '')))
    q.convert(r, '/s.qcow2', 'qcow2', 'rbd:p/i.fastboot-tmp-1:conf=/c:id=u', 'raw')
    assert r.module.calls == [['/usr/bin/qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '/s.qcow2',
                               'rbd:p/i.fastboot-tmp-1:conf=/c:id=u']]


def test_convert_failure_names_target_without_conf():
    r = runner((has('convert'), (1, '', 'qemu-img: error while reading at byte 0: Input/output error')))
    with pytest.raises(CommandError) as err:
        q.convert(r, '/s', 'qcow2', 'rbd:p/i:conf=/c:id=u', 'raw')
    assert 'qemu-img convert /s -> rbd:p/i failed' in err.value.msg and 'Input/output error' in err.value.msg


# ---------------------------------------------------------------- targets

def test_file_target_tmp_commit_and_cleanup(tmp_path):
    dest = tmp_path / 'out.raw'
    t = q.make_target(runner(), str(dest), '/etc/ceph/ceph.conf', 'admin')
    assert t.kind == 'file' and t.name == str(dest)
    t.validate()
    assert not t.exists()
    tmp = t.new_tmp()
    assert os.path.dirname(tmp) == str(tmp_path) and os.path.basename(tmp).startswith('.out.raw.fastboot-tmp-')
    open(tmp, 'w').write('x')
    t.commit(replace=False)
    assert dest.read_text() == 'x' and os.listdir(str(tmp_path)) == ['out.raw']
    t.new_tmp()
    open(t.tmp, 'w').write('y')
    t.remove_tmp()
    assert os.listdir(str(tmp_path)) == ['out.raw'] and t.tmp is None


def test_file_target_validation(tmp_path):
    with pytest.raises(InputError, match='directory of dest .* does not exist'):
        q.make_target(runner(), str(tmp_path / 'no' / 'x.raw'), None, None).validate()
    with pytest.raises(InputError, match='not a regular file'):
        q.make_target(runner(), str(tmp_path), None, None).validate()


def test_rbd_target_pool_missing():
    r = runner((has('ls'), (2, '', "rbd: error opening pool 'nopool': (2) No such file or directory\n")))
    t = q.make_target(r, 'rbd:nopool/img', __file__, 'admin')
    with pytest.raises(InputError, match="RBD pool 'nopool' does not exist .*create it") as err:
        t.validate()
    assert err.value.details['pool'] == 'nopool'
    assert r.module.calls[0] == ['/usr/bin/rbd', '--conf', __file__, '--id', 'admin', 'ls', '--format', 'json', 'nopool']


def test_rbd_target_other_errors():
    r = runner((has('ls'), (13, '', 'rbd: listing images failed: (13) Permission denied\n')))
    with pytest.raises(CommandError, match='Permission denied'):
        q.make_target(r, 'rbd:p/img', __file__, 'glance').validate()
    with pytest.raises(InputError, match='ceph_conf /nonexistent.conf does not exist'):
        q.make_target(runner(), 'rbd:p/img', '/nonexistent.conf', 'admin').validate()
    with pytest.raises(InputError, match='only dest_format=raw'):
        q.make_target(runner(), 'rbd:p/img', __file__, 'admin').validate('qcow2')


def test_rbd_target_lifecycle():
    images = ['img']
    r = runner((has('ls'), lambda argv: (0, json.dumps(images), '')),
               (has('rm'), (0, '', '')), (has('rename'), (0, '', '')),
               (has('du'), (0, json.dumps({'images': [{'name': 'img', 'used_size': 4194304},
                                                      {'name': 'img', 'snapshot': 's', 'used_size': 9},
                                                      {'name': 'other', 'used_size': 7}]}), '')))
    t = q.make_target(r, 'rbd:p/img', '/c.conf', 'u')
    assert t.exists() and t.name == 'rbd:p/img'
    assert t.spec() == 'rbd:p/img:conf=/c.conf:id=u'
    tmp = t.new_tmp()
    assert tmp.startswith('img.fastboot-tmp-') and t.spec(tmp) == 'rbd:p/%s:conf=/c.conf:id=u' % tmp
    t.commit(replace=True)
    tail = [c[5:] for c in r.module.calls[1:]]
    assert tail == [['rm', '--no-progress', 'p/img'], ['rename', 'p/' + tmp, 'p/img']]
    assert t.allocated() == 4194304


def test_rbd_remove_tmp_only_when_present():
    images = ['img']
    r = runner((has('ls'), lambda argv: (0, json.dumps(images), '')), (has('rm'), (0, '', '')))
    t = q.make_target(r, 'rbd:p/img', '/c.conf', 'u')
    t.new_tmp()
    t.remove_tmp()
    assert not [c for c in r.module.calls if 'rm' in c]
    tmp = t.new_tmp()
    images.append(tmp)
    t.remove_tmp()
    assert [c[5:] for c in r.module.calls if 'rm' in c] == [['rm', '--no-progress', 'p/' + tmp]]


def test_rbd_refuses_to_replace_image_with_snapshots():
    r = runner((has('info'), (0, json.dumps({'name': 'img', 'snapshot_count': 2}), '')))
    with pytest.raises(InputError, match='2 snapshot'):
        q.make_target(r, 'rbd:p/img', '/c.conf', 'u').check_replaceable()
    r = runner((has('info'), (0, json.dumps({'name': 'img', 'snapshot_count': 0}), '')))
    q.make_target(r, 'rbd:p/img', '/c.conf', 'u').check_replaceable()


def test_rbd_rename_failure_after_removing_old_keeps_converted_image():
    r = runner((has('ls'), (0, json.dumps(['img']), '')), (has('rm'), (0, '', '')),
               (has('rename'), (1, '', 'rbd: rename error: (16) Device or resource busy')))
    t = q.make_target(r, 'rbd:p/img', '/c.conf', 'u')
    tmp = t.new_tmp()
    with pytest.raises(CommandError, match='old image rbd:p/img was already removed.*kept as p/%s' % tmp):
        t.commit(replace=True)
    assert t.removed_old and t.tmp is None
    t.remove_tmp()  # nothing left to clean: the converted data must survive
    assert [c for c in r.module.calls if 'rm' in c] == [['/usr/bin/rbd', '--conf', '/c.conf', '--id', 'u', 'rm', '--no-progress', 'p/img']]


def test_rbd_rename_failure_without_replace_is_plain():
    r = runner((has('rename'), (1, '', 'rbd: rename error: (17) File exists')))
    t = q.make_target(r, 'rbd:p/img', '/c.conf', 'u')
    t.new_tmp()
    with pytest.raises(CommandError, match='File exists') as err:
        t.commit(replace=False)
    assert 'already removed' not in err.value.msg and t.tmp is not None and not t.removed_old
