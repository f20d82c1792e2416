# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Line-based INI editing for oslo.config style files (nova.conf, glance-api.conf, ...).

The file is kept as a list of lines: comments, blank lines, ordering, unrelated keys and the formatting of
unchanged lines survive. Many settings are applied in one pass (``apply_settings``), so a caller writes the
file once. Rules:

- a section is a line ``[name]``; keys before the first section header belong to no section and are left alone;
- an option line is ``key = value`` or ``key: value``; indented lines right after it are its continuation
  lines (oslo.config's parser accepts them) and belong to it;
- ``#`` and ``;`` start comment lines;
- setting a key rewrites its first line in the section and removes later duplicates (oslo.config would use the
  last one, a reader the first: after the run there is only one); an unchanged value keeps its line as is;
- a new key goes right after a commented-out default of the same key in the section (``#key = ...``, as in the
  sample files the distributions ship), else after the section's last option or comment line;
- a missing section is appended at the end of the file;
- a value of None removes every line of the key in the section; a list writes the key once per element
  (oslo.config MultiStrOpt); booleans are written ``true``/``false``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError

SECTION_RE = re.compile(r'^\s*\[([^\]]*)\]\s*$')
OPTION_RE = re.compile(r'^([^\s=:#;\[][^=:]*?)\s*[=:]\s?(.*?)\s*$')
COMMENTED_RE = r'^\s*[#;]\s*%s\s*[=:]'
NAME_RE = re.compile(r'^[A-Za-z0-9_.:@/-]+$')
KEY_RE = re.compile(r'^[A-Za-z0-9_.@/-]+$')


def format_value(value):
    """Python value -> list of INI value strings (one per line); None stays None (remove)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            if isinstance(item, (list, tuple, dict)) or item is None:
                raise InputError('a list value may only hold scalars, got %r' % (item,))
            out.extend(format_value(item))
        return out
    if isinstance(value, dict):
        raise InputError('a value cannot be a dict: %r' % (value,))
    if isinstance(value, bool):
        return ['true' if value else 'false']
    text = str(value)
    if '\n' in text or '\r' in text:
        raise InputError('a value cannot span lines: %r' % (text,))
    return [text]


def check_settings(settings):
    """Validate the shape of ``{section: {key: value}}``; return it with values formatted."""
    if not isinstance(settings, dict):
        raise InputError('settings must be a dict of section -> {key: value}, got %s' % type(settings).__name__)
    out = {}
    for section, keys in settings.items():
        section = str(section)
        if not NAME_RE.match(section):
            raise InputError('section name %r is not valid (letters, digits and _.:@/- only)' % section, section=section)
        if not isinstance(keys, dict):
            raise InputError('settings[%s] must be a dict of key -> value, got %s' % (section, type(keys).__name__),
                             section=section)
        out[section] = {}
        for key, value in keys.items():
            key = str(key)
            if not KEY_RE.match(key):
                raise InputError('key %r in [%s] is not valid (letters, digits and _.@/- only)' % (key, section),
                                 section=section, key=key)
            out[section][key] = format_value(value)
    return out


class Line(object):
    """One logical line: a section header, an option (with its continuation lines) or other text."""

    __slots__ = ('kind', 'text', 'name', 'value', 'extra')

    def __init__(self, kind, text, name=None, value=None):
        self.kind = kind      # 'section', 'option', 'comment', 'blank', 'other'
        self.text = text      # the raw first line, without its line end
        self.name = name      # section name or option key
        self.value = value    # option value (first line only)
        self.extra = []       # continuation lines of an option

    def raw(self):
        return [self.text] + self.extra


def parse(text):
    """Text -> list of Line objects (lossless: ``render(parse(t)) == t`` up to a final newline)."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.strip()
        last = lines[-1] if lines else None
        if raw[:1] in (' ', '\t') and stripped and last is not None and last.kind == 'option' \
                and not stripped.startswith(('#', ';')):
            last.extra.append(raw)
            continue
        if not stripped:
            lines.append(Line('blank', raw))
        elif stripped.startswith(('#', ';')):
            lines.append(Line('comment', raw))
        else:
            match = SECTION_RE.match(raw)
            if match:
                lines.append(Line('section', raw, name=match.group(1).strip()))
                continue
            match = OPTION_RE.match(stripped)
            if match:
                lines.append(Line('option', raw, name=match.group(1).strip(), value=match.group(2)))
            else:
                lines.append(Line('other', raw))
    return lines


def render(lines):
    out = []
    for line in lines:
        out.extend(line.raw())
    return '\n'.join(out) + '\n' if out else ''


def sections(lines):
    """Section name -> list of (start, end) index ranges of its bodies (a section may appear twice)."""
    found = {}
    current = None
    start = 0
    for idx, line in enumerate(lines):
        if line.kind == 'section':
            if current is not None:
                found.setdefault(current, []).append((start, idx))
            current = line.name
            start = idx + 1
    if current is not None:
        found.setdefault(current, []).append((start, len(lines)))
    return found


def read_values(text):
    """Text -> {section: {key: [values]}} for option lines (the value as written on its first line)."""
    result = {}
    current = None
    for line in parse(text):
        if line.kind == 'section':
            current = line.name
            result.setdefault(current, {})
        elif line.kind == 'option' and current is not None:
            result[current].setdefault(line.name, []).append(line.value)
    return result


def _key_indexes(lines, ranges, key):
    return [idx for start, end in ranges for idx in range(start, end)
            if lines[idx].kind == 'option' and lines[idx].name == key]


def _insert_point(lines, ranges, key):
    """Where a new key goes in a section: after its commented default, else after the last non-blank line."""
    pattern = re.compile(COMMENTED_RE % re.escape(key))
    for start, end in ranges:
        for idx in range(start, end):
            if lines[idx].kind == 'comment' and pattern.match(lines[idx].text):
                return idx + 1
    start, end = ranges[-1]
    point = start
    for idx in range(start, end):
        if lines[idx].kind != 'blank':
            point = idx + 1
    return point


def apply_settings(text, settings, only_existing=False):
    """Apply ``settings`` (as returned by check_settings) to ``text``.

    Returns (new_text, changes) where changes is a list of dicts
    ``{section, key, action: added|changed|removed, before: [values], after: [values]}``.
    With ``only_existing`` only keys already present in the file are changed or removed (nothing is added):
    that is how a file read after the main one (Debian's nova-compute.conf) is kept in line with it.
    """
    lines = parse(text)
    changes = []
    for section, keys in settings.items():
        for key, wanted in keys.items():
            ranges = sections(lines).get(section)
            idxs = _key_indexes(lines, ranges, key) if ranges else []
            before = [lines[i].value for i in idxs]
            if wanted is None:
                if not idxs:
                    continue
                for idx in reversed(idxs):
                    del lines[idx]
                changes.append(dict(section=section, key=key, action='removed', before=before, after=[]))
                continue
            if only_existing and not idxs:
                continue
            if before == wanted:
                continue
            new = [Line('option', '%s = %s' % (key, value), name=key, value=value) for value in wanted]
            if idxs:
                at = idxs[0]
                for idx in reversed(idxs):
                    del lines[idx]
                action = 'changed'
            else:
                if ranges is None:
                    if lines and lines[-1].kind != 'blank':
                        lines.append(Line('blank', ''))
                    lines.append(Line('section', '[%s]' % section, name=section))
                    ranges = [(len(lines), len(lines))]
                at = _insert_point(lines, ranges, key)
                action = 'added'
            lines[at:at] = new
            changes.append(dict(section=section, key=key, action=action, before=before, after=wanted))
    return render(lines), changes


def conflicts(settings, later_texts):
    """Keys of ``settings`` that files read later set to something else.

    ``later_texts`` is a list of (path, text). Returns a list of dicts ``{path, section, key, wanted, found}``.
    A key the settings remove (None) conflicts when a later file still sets it.
    """
    found = []
    for path, text in later_texts:
        values = read_values(text)
        for section, keys in settings.items():
            for key, wanted in keys.items():
                there = values.get(section, {}).get(key)
                if there is not None and there != (wanted or []):
                    found.append(dict(path=path, section=section, key=key, wanted=wanted, found=there))
    return found


def describe(change):
    """One human-readable line for a change dict."""
    def show(values):
        return ', '.join(values) if values else '(unset)'
    return '[%s] %s: %s -> %s' % (change['section'], change['key'], show(change['before']),
                                  show(change['after']) if change['action'] != 'removed' else '(removed)')
