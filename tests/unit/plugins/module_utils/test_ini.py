"""module_utils/ini: line-based editing of oslo.config style files (pure text, no files)."""
import pytest

from ansible_collections.fastboot.cloud.plugins.module_utils import ini
from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError

SAMPLE = '''# operator's header comment
[DEFAULT]
debug = true
# keep me
#force_config_drive = false
my_ip=10.0.0.5

[libvirt]
virt_type = kvm
#images_type = default
  # indented comment
cpu_mode = none
cpu_models = a
    b

[workarounds]
'''


def apply(text, settings, **kw):
    return ini.apply_settings(text, ini.check_settings(settings), **kw)


def test_roundtrip_is_lossless():
    assert ini.render(ini.parse(SAMPLE)) == SAMPLE


def test_new_key_goes_after_commented_default_and_keeps_the_rest():
    out, changes = apply(SAMPLE, {'DEFAULT': {'force_config_drive': True}, 'libvirt': {'images_type': 'rbd'}})
    assert '#force_config_drive = false\nforce_config_drive = true\nmy_ip=10.0.0.5' in out
    assert '#images_type = default\nimages_type = rbd\n  # indented comment' in out
    assert "# operator's header comment" in out and 'my_ip=10.0.0.5' in out and 'cpu_models = a\n    b' in out
    assert [c['action'] for c in changes] == ['added', 'added']


def test_change_in_place_keeps_unchanged_formatting():
    out, changes = apply(SAMPLE, {'libvirt': {'virt_type': 'qemu'}, 'DEFAULT': {'my_ip': '10.0.0.5'}})
    assert 'virt_type = qemu\n#images_type' in out
    assert 'my_ip=10.0.0.5' in out   # same value: line untouched
    assert changes == [dict(section='libvirt', key='virt_type', action='changed', before=['kvm'], after=['qemu'])]


def test_idempotent():
    settings = {'libvirt': {'images_type': 'rbd', 'virt_type': 'qemu'}, 'new': {'a': 1}}
    once, changes = apply(SAMPLE, settings)
    twice, again = apply(once, settings)
    assert changes and not again and once == twice


def test_remove_key_and_its_continuation_lines():
    out, changes = apply(SAMPLE, {'libvirt': {'cpu_models': None, 'absent_key': None}})
    assert 'cpu_models' not in out and '    b' not in out
    assert changes == [dict(section='libvirt', key='cpu_models', action='removed', before=['a'], after=[])]


def test_missing_section_appended_and_empty_section_filled():
    out, dummy = apply(SAMPLE, {'workarounds': {'never_download_image_if_on_rbd': True}, 'rbd': {'pool': 'x'}})
    assert out.endswith('[workarounds]\nnever_download_image_if_on_rbd = true\n\n[rbd]\npool = x\n')


def test_empty_file():
    out, dummy = apply('', {'DEFAULT': {'a': 'b'}})
    assert out == '[DEFAULT]\na = b\n'


def test_duplicates_collapse_and_multi_values():
    text = '[s]\nk = 1\nother = x\nk = 2\n'
    out, changes = apply(text, {'s': {'k': '2'}})
    assert out == '[s]\nk = 2\nother = x\n' and changes[0]['before'] == ['1', '2']
    out, dummy = apply(text, {'s': {'k': ['a', 'b']}})
    assert out == '[s]\nk = a\nk = b\nother = x\n'
    assert apply(out, {'s': {'k': ['a', 'b']}})[1] == []


def test_section_appearing_twice():
    text = '[a]\nx = 1\n[b]\ny = 2\n[a]\nz = 3\n'
    out, dummy = apply(text, {'a': {'z': 4, 'x': None}})
    assert out == '[a]\n[b]\ny = 2\n[a]\nz = 4\n'


def test_only_existing_adds_nothing():
    out, changes = apply(SAMPLE, {'libvirt': {'virt_type': 'qemu', 'images_type': 'rbd'}, 'x': {'y': 1}},
                         only_existing=True)
    assert 'virt_type = qemu' in out and 'images_type = rbd' not in out and '[x]' not in out
    assert len(changes) == 1


def test_colon_separator_and_values_with_equals():
    text = '[DEFAULT]\ntransport_url: rabbit://u:p@h:5672/\n'
    assert ini.read_values(text) == {'DEFAULT': {'transport_url': ['rabbit://u:p@h:5672/']}}
    out, changes = apply(text, {'DEFAULT': {'transport_url': 'rabbit://u:p@h:5672/'}})
    assert out == text and not changes


def test_conflicts():
    settings = ini.check_settings({'libvirt': {'images_type': 'rbd', 'virt_type': 'qemu', 'gone': None}})
    later = [('/etc/nova/nova-compute.conf', '[libvirt]\nvirt_type=kvm\nimages_type = rbd\ngone = 1\n')]
    found = ini.conflicts(settings, later)
    assert [(c['key'], c['found']) for c in found] == [('virt_type', ['kvm']), ('gone', ['1'])]


@pytest.mark.parametrize('bad', [
    [], {'sec tion': {'a': 1}}, {'s': 'notadict'}, {'s': {'bad key': 1}}, {'s': {'k': {'a': 1}}},
    {'s': {'k': 'two\nlines'}}, {'s': {'k': [None]}}, {'[s]': {'k': 1}},
])
def test_bad_settings(bad):
    with pytest.raises(InputError):
        ini.check_settings(bad)


def test_format_value():
    assert ini.format_value(False) == ['false']
    assert ini.format_value(4) == ['4']
    assert ini.format_value(None) is None
    assert ini.format_value(['x', True]) == ['x', 'true']


def test_describe():
    assert ini.describe(dict(section='s', key='k', action='removed', before=['1'], after=[])) == '[s] k: 1 -> (removed)'
    assert ini.describe(dict(section='s', key='k', action='added', before=[], after=['1'])) == '[s] k: (unset) -> 1'
