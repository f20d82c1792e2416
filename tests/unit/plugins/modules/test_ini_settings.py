"""ini_settings helpers: the text given to the validator and the unified diff (no files, no ansible run)."""
from ansible_collections.fastboot.cloud.plugins.module_utils import ini
from ansible_collections.fastboot.cloud.plugins.modules import ini_settings as mod

AFTER = '[DEFAULT]\nenabled_backends = rbd:rbd\noperator_junk = 1\n\n[rbd]\nrbd_store_pool = images\n'
SETTINGS = ini.check_settings({'DEFAULT': {'enabled_backends': 'rbd:rbd', 'gone': None},
                               'rbd': {'rbd_store_pool': 'images'}, 'empty': {'x': None}})


def test_validation_text_file_scope_is_the_new_file():
    assert mod.validation_text(AFTER, SETTINGS, 'file', {}) == AFTER


def test_validation_text_settings_scope_holds_only_what_is_set():
    text = mod.validation_text(AFTER, SETTINGS, 'settings', {})
    assert text == '[DEFAULT]\nenabled_backends = rbd:rbd\n\n[rbd]\nrbd_store_pool = images\n'


def test_validation_text_renames_dynamic_sections():
    text = mod.validation_text(AFTER, SETTINGS, 'file', {'rbd': 'glance_store'})
    assert '[glance_store]\nrbd_store_pool = images' in text and '[rbd]' not in text
    assert 'operator_junk = 1' in text


def test_unified_diff():
    assert mod.unified('/x.conf', 'a\n', 'a\n') == ''
    diff = mod.unified('/x.conf', '[s]\nk = 1\n', '[s]\nk = 2\n')
    assert diff.startswith('--- /x.conf (before)\n+++ /x.conf (after)\n')
    assert '-k = 1\n+k = 2\n' in diff
