"""libvirt_secret decisions and virsh parsing, with fakes (no libvirtd)."""
import base64
import os

import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError
from ansible_collections.fastboot.cloud.plugins.modules import libvirt_secret as ls

UUID = '5b6f5c0a-3c1e-4e57-9d25-2a3e3a2d9f10'
VALUE = 'AQDeDQdr4R70HxAA+cdGmkboutDgzTKpumbSwQ=='
RAW = base64.b64decode(VALUE)
LISTING = ''' UUID                                   Usage
---------------------------------------------------------------
 %s   ceph client.nova secret
 8a7e2c1e-1111-4d7a-9d0a-5b0e2b9c0001   ceph client.cinder secret

''' % UUID.upper()


def params(**kw):
    base = dict(uuid=UUID, usage_name='client.nova secret', value=VALUE, state='present', uri='qemu:///system')
    base.update(kw)
    return base


@pytest.mark.parametrize('bad', ['', 'not-a-uuid', UUID[:-1], UUID + '0', UUID.replace('-', '')])
def test_bad_uuid(bad):
    with pytest.raises(InputError, match='is not a UUID'):
        ls.validate(params(uuid=bad))


def test_uuid_is_lowered_and_value_decoded():
    assert ls.validate(params(uuid=UUID.upper())) == (UUID, RAW)
    assert ls.validate(params(state='absent', value=None)) == (UUID, None)


def test_bad_value_does_not_echo_it():
    with pytest.raises(InputError) as info:
        ls.validate(params(value='secret!notbase64'))
    assert 'secret!notbase64' not in info.value.msg
    with pytest.raises(InputError, match='value is required'):
        ls.validate(params(value=None))


def test_parse_secret_list():
    assert ls.parse_secret_list(LISTING) == [(UUID, 'ceph client.nova secret'),
                                             ('8a7e2c1e-1111-4d7a-9d0a-5b0e2b9c0001', 'ceph client.cinder secret')]


def test_xml_roundtrip_escapes_usage():
    text = ls.secret_xml(UUID, 'a & <b>')
    assert '&amp;' in text and "ephemeral=\"no\"" in text
    assert ls.parse_secret_xml(text) == ls.wanted_attrs(UUID, 'a & <b>')
    private = "<secret ephemeral='no' private='yes'><uuid>%s</uuid><usage type='ceph'><name>x</name></usage></secret>" % UUID
    assert ls.parse_secret_xml(private)['private'] is True


def test_plan_new_secret():
    actions, changed = ls.plan(params(), UUID, RAW, None, None, [])
    assert [a['op'] for a in actions] == ['define', 'set-value'] and changed


def test_plan_in_sync_is_noop():
    assert ls.plan(params(), UUID, RAW, ls.wanted_attrs(UUID, 'client.nova secret'), RAW,
                   ls.parse_secret_list(LISTING)) == ([], False)


def test_plan_value_differs_or_unset():
    attrs = ls.wanted_attrs(UUID, 'client.nova secret')
    assert [a['op'] for a in ls.plan(params(), UUID, RAW, attrs, b'other', [])[0]] == ['set-value']
    assert [a['op'] for a in ls.plan(params(), UUID, RAW, attrs, None, [])[0]] == ['set-value']
    assert [a['op'] for a in ls.plan(params(), UUID, RAW, attrs, ls.UNREADABLE, [])[0]] == ['set-value']


def test_plan_attribute_change_redefines():
    attrs = dict(ls.wanted_attrs(UUID, 'old name'), private=True)
    actions, changed = ls.plan(params(), UUID, RAW, attrs, None, [])
    assert [a['op'] for a in actions] == ['undefine', 'define', 'set-value'] and changed
    assert 'usage_name' in actions[0]['desc'] and 'private' in actions[0]['desc']


def test_plan_usage_taken_by_other_uuid():
    with pytest.raises(InputError, match='8a7e2c1e-1111-4d7a-9d0a-5b0e2b9c0001'):
        ls.plan(params(usage_name='client.cinder secret'), UUID, RAW, None, None, ls.parse_secret_list(LISTING))


def test_plan_absent():
    assert ls.plan(params(state='absent'), UUID, None, None, None, []) == ([], False)
    actions, dummy = ls.plan(params(state='absent'), UUID, None, ls.wanted_attrs(UUID, 'x'), None, [])
    assert [a['op'] for a in actions] == ['undefine']


class FakeRunner(object):
    def __init__(self):
        self.calls = []
        self.files = {}

    def run(self, argv, check=True, data=None, what=None):
        self.calls.append(argv)
        if '--file' in argv:
            path = argv[argv.index('--file') + 1]
            with open(path, 'rb') as handle:
                self.files[argv[3]] = (handle.read(), oct(os.stat(path).st_mode & 0o777), path)
        return 0, '', ''


def test_set_value_never_on_command_line_and_file_removed():
    runner = FakeRunner()
    ls.Virsh(runner, 'qemu:///system').set_value(UUID, RAW)
    argv = runner.calls[0]
    assert argv[:4] == ['virsh', '-c', 'qemu:///system', 'secret-set-value']
    assert VALUE not in ' '.join(argv)
    content, mode, path = runner.files['secret-set-value']
    assert content == VALUE.encode('ascii') and mode == '0o600'
    assert not os.path.exists(path)
