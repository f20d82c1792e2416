# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and write files inside a raw disk image without mounting it.

- ``partitions()``: the partition table of a raw image (``sfdisk -J``; MBR or GPT), or none (a whole-disk
  file system).
- ``probe_fs()``: what file system starts at an offset, from its magic numbers (ext2/3/4, XFS, btrfs, LVM2,
  LUKS, swap, FAT, ISO9660, squashfs), and the ext superblock's state (errors, journal needing recovery).
- ``Debugfs``: e2fsprogs' ``debugfs`` on ``IMAGE?offset=BYTES``: stat, read a file, and apply a script with
  ``-w`` (rm + write + sif for a regular file, symlink for a masked unit). debugfs exits 0 even when a
  command of its script fails, so every write is read back and compared (``verify``).

Only ext2/ext3/ext4 can be written; any other file system raises InputError naming it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import struct
import tempfile

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError

SECTOR = 512
EXT_MAGIC = 0xEF53
EXT_SB_OFFSET = 1024
# ext superblock fields (offsets inside the superblock)
EXT_STATE_ERRORS = 0x0002
EXT_FEATURE_COMPAT_JOURNAL = 0x0004
EXT_FEATURE_INCOMPAT_RECOVER = 0x0004
EXT_FEATURE_INCOMPAT_EXTENTS = 0x0040
EXT_FEATURE_INCOMPAT_64BIT = 0x0080
EXT_FEATURE_INCOMPAT_FLEX_BG = 0x0200

SAFE_PATH_RE = re.compile(r'^/[A-Za-z0-9_.@/+-]+$')


def _read_at(handle, offset, length):
    handle.seek(offset)
    return handle.read(length)


def probe_fs(path, offset=0):
    """Identify the file system (or container) at ``offset`` of ``path`` by its magic numbers.

    Returns a dict ``{'fs': NAME or None, ...}``; for ext file systems also ``state_errors``,
    ``needs_recovery``, ``label`` and ``uuid``. NAME is one of ext2, ext3, ext4, xfs, btrfs, LVM2_member,
    crypto_LUKS, swap, vfat, iso9660, squashfs.
    """
    with open(path, 'rb') as handle:
        head = _read_at(handle, offset, 4096)
        sb = _read_at(handle, offset + EXT_SB_OFFSET, 1024)
        if len(sb) >= 0x7C and struct.unpack_from('<H', sb, 0x38)[0] == EXT_MAGIC:
            state = struct.unpack_from('<H', sb, 0x3A)[0]
            compat, incompat = struct.unpack_from('<II', sb, 0x5C)
            if incompat & (EXT_FEATURE_INCOMPAT_EXTENTS | EXT_FEATURE_INCOMPAT_64BIT | EXT_FEATURE_INCOMPAT_FLEX_BG):
                name = 'ext4'
            elif compat & EXT_FEATURE_COMPAT_JOURNAL:
                name = 'ext3'
            else:
                name = 'ext2'
            label = sb[0x78:0x88].split(b'\0')[0].decode('utf-8', 'replace')
            uuid = sb[0x68:0x78]
            uuid_hex = ''.join('%02x' % c for c in bytearray(uuid))
            uuid_text = '-'.join((uuid_hex[:8], uuid_hex[8:12], uuid_hex[12:16], uuid_hex[16:20], uuid_hex[20:]))
            return {'fs': name, 'state_errors': bool(state & EXT_STATE_ERRORS),
                    'needs_recovery': bool(incompat & EXT_FEATURE_INCOMPAT_RECOVER), 'label': label,
                    'uuid': uuid_text}
        if head[:4] == b'XFSB':
            return {'fs': 'xfs'}
        if head[:6] == b'LUKS\xba\xbe':
            return {'fs': 'crypto_LUKS'}
        if head[:4] == b'hsqs':
            return {'fs': 'squashfs'}
        if head[512:520] == b'LABELONE' and head[536:544] == b'LVM2 001':
            return {'fs': 'LVM2_member'}
        if head[4086:4096] in (b'SWAPSPACE2', b'SWAP-SPACE'):
            return {'fs': 'swap'}
        if head[510:512] == b'\x55\xaa' and (head[0x36:0x39] == b'FAT' or head[0x52:0x57] == b'FAT32'):
            return {'fs': 'vfat'}
        btrfs = _read_at(handle, offset + 0x10040, 8)
        if btrfs == b'_BHRfS_M':
            return {'fs': 'btrfs'}
        iso = _read_at(handle, offset + 0x8001, 5)
        if iso == b'CD001':
            return {'fs': 'iso9660'}
    return {'fs': None}


def parse_sfdisk(data):
    """Normalise ``sfdisk -J`` output into ``{'label', 'partitions': [{'number', 'node', 'start', 'size',
    'offset', 'type'}]}`` (start and size in sectors, offset in bytes)."""
    table = (data or {}).get('partitiontable')
    if not isinstance(table, dict):
        raise CommandError('sfdisk -J printed JSON without a partitiontable: %r' % (data,))
    sector = int(table.get('sectorsize') or SECTOR)
    parts = []
    for index, part in enumerate(table.get('partitions') or []):
        node = part.get('node') or ''
        match = re.search(r'(\d+)$', node)
        number = int(match.group(1)) if match else index + 1
        start = int(part.get('start') or 0)
        parts.append({'number': number, 'node': node, 'start': start, 'size': int(part.get('size') or 0),
                      'offset': start * sector, 'type': part.get('type')})
    return {'label': table.get('label'), 'sector_size': sector, 'partitions': parts}


# MBR types that hold no file system of their own (extended partitions)
EXTENDED_TYPES = ('5', 'f', '85')


def partitions(runner, path):
    """The partition table of a raw image; ``{'label': None, 'partitions': []}`` when it has none."""
    rc, out, err = runner.run(['sfdisk', '-J', path], check=False)
    if rc != 0:
        text = (err or out or '').strip()
        if 'does not contain a recognized partition table' in text or not text:
            return {'label': None, 'sector_size': SECTOR, 'partitions': []}
        raise InputError('cannot read the partition table of %s: %s' % (path, text.splitlines()[-1]), stderr=err)
    try:
        data = json.loads(out)
    except ValueError as exc:
        raise CommandError('sfdisk -J %s printed output that is not JSON: %s' % (path, exc), stdout=out)
    table = parse_sfdisk(data)
    table['partitions'] = [p for p in table['partitions'] if str(p['type']).lower() not in EXTENDED_TYPES]
    return table


def device_spec(path, offset):
    """debugfs' name for a file system at ``offset`` bytes into ``path``."""
    return '%s?offset=%d' % (path, offset) if offset else path


def check_path(path):
    if not SAFE_PATH_RE.match(path) or '/../' in path + '/' or '//' in path:
        raise InputError('path %r inside the image must be absolute and made of letters, digits and . _ @ + - /'
                         % path)
    return path


def parse_stat(text):
    """The fields of ``debugfs -R 'stat PATH'`` this module needs: type, mode, uid, gid, link target.

    Returns None when the path does not exist.
    """
    if 'File not found by ext2_lookup' in text or not text.strip():
        return None
    info = {}
    match = re.search(r'Type:\s+(\S+)\s+Mode:\s+([0-7]+)', text)
    if not match:
        return None
    info['type'] = match.group(1)
    info['mode'] = int(match.group(2), 8)
    match = re.search(r'User:\s+(\d+)\s+Group:\s+(\d+)', text)
    if match:
        info['uid'], info['gid'] = int(match.group(1)), int(match.group(2))
    match = re.search(r'Size:\s+(\d+)', text)
    if match:
        info['size'] = int(match.group(1))
    match = re.search(r'Fast link dest:\s+"(.*)"', text)
    if match:
        info['target'] = match.group(1)
    return info


class Debugfs(object):
    """debugfs on one ext file system of a raw image (at a byte offset)."""

    def __init__(self, runner, path, offset=0):
        self.runner = runner
        self.path = path
        self.offset = offset
        self.spec = device_spec(path, offset)

    def request(self, command, write=False):
        argv = ['debugfs']
        if write:
            argv.append('-w')
        argv += ['-R', command, self.spec]
        rc, out, err = self.runner.run(argv, check=False)
        lines = [ln for ln in (err or '').splitlines() if ln.strip() and not ln.startswith('debugfs ')]
        if rc != 0 or any('while trying to open' in ln or 'Bad magic number' in ln for ln in lines):
            raise InputError('the ext file system of %s (offset %d) cannot be opened by debugfs (corrupt?): %s'
                             % (self.path, self.offset, lines[-1] if lines else 'rc=%d' % rc),
                             stderr=err, rc=rc)
        return out, '\n'.join(lines)

    def stat(self, path):
        out, err = self.request('stat %s' % check_path(path))
        return parse_stat(out + '\n' + err)

    def is_dir(self, path):
        info = self.stat(path)
        return bool(info) and info['type'] == 'directory'

    def read(self, path):
        """The bytes of a regular file, or None when it does not exist."""
        info = self.stat(path)
        if info is None:
            return None
        if info['type'] != 'regular':
            raise InputError('%s in the image %s is a %s, not a regular file' % (path, self.path, info['type']))
        out, err = self.request('cat %s' % path)
        return out

    def run_script(self, lines):
        """Apply debugfs commands with ``-w`` from a script file; returns debugfs' stderr lines (errors)."""
        fd, script = tempfile.mkstemp(prefix='fastboot-debugfs-', suffix='.txt')
        try:
            with os.fdopen(fd, 'w') as handle:
                handle.write('\n'.join(lines) + '\n')
            argv = ['debugfs', '-w', '-f', script, self.spec]
            rc, out, err = self.runner.run(argv, check=False)
        finally:
            os.unlink(script)
        problems = [ln for ln in (err or '').splitlines()
                    if ln.strip() and not ln.startswith('debugfs ') and not ln.startswith('debugfs:')]
        if rc != 0:
            raise CommandError('debugfs -w on %s failed (rc=%d): %s' % (self.spec, rc, problems[-1] if problems else ''),
                               cmd=argv, rc=rc, stdout=out, stderr=err)
        return problems

    @staticmethod
    def write_commands(path, local_file, exists, mode=0o644, uid=0, gid=0):
        """debugfs commands that (re)write ``path`` from ``local_file`` with mode and owner."""
        directory, name = os.path.split(check_path(path))
        cmds = ['cd %s' % directory]
        if exists:
            cmds.append('rm %s' % name)
        cmds += ['write %s %s' % (local_file, name),
                 'sif %s mode 0%o' % (name, 0o100000 | mode),
                 'sif %s uid %d' % (name, uid),
                 'sif %s gid %d' % (name, gid)]
        return cmds

    @staticmethod
    def symlink_commands(path, target, exists):
        """debugfs commands that make ``path`` a symbolic link to ``target`` (removing what was there)."""
        directory, name = os.path.split(check_path(path))
        cmds = ['cd %s' % directory]
        if exists:
            cmds.append('rm %s' % name)
        cmds.append('symlink %s %s' % (name, check_path(target)))
        return cmds

    def verify_file(self, path, content, mode=0o644):
        """Read ``path`` back: raise CommandError unless it holds ``content`` with ``mode`` and owner root."""
        info = self.stat(path)
        data = self.read(path) if info else None
        if data != content:
            raise CommandError('debugfs did not write %s into %s (read back %s): is the file system full or '
                               'read-only?' % (path, self.spec, 'nothing' if data is None else '%d different bytes' % len(data)))
        if (info['mode'] & 0o7777) != mode or info.get('uid') != 0 or info.get('gid') != 0:
            raise CommandError('debugfs wrote %s into %s but its mode/owner are %o %s:%s, not %o 0:0'
                               % (path, self.spec, info['mode'], info.get('uid'), info.get('gid'), mode))

    def verify_symlink(self, path, target):
        info = self.stat(path)
        if not info or info['type'] != 'symlink' or info.get('target') != target:
            raise CommandError('debugfs did not create the symlink %s -> %s in %s' % (path, target, self.spec))


def unsupported_fs_message(found):
    """Why a set of probed file systems has nothing this module can write."""
    names = sorted(set(f for f in found if f))
    hints = {
        'xfs': 'XFS is not supported (debugfs writes ext2/3/4 only)',
        'btrfs': 'btrfs is not supported (debugfs writes ext2/3/4 only)',
        'LVM2_member': 'LVM is not supported (the root file system is inside a volume group)',
        'crypto_LUKS': 'an encrypted (LUKS) root is not supported',
        'squashfs': 'squashfs is read-only',
    }
    reasons = [hints[n] for n in names if n in hints]
    return 'found %s; %s' % (', '.join(names) if names else 'no known file system',
                             '; '.join(reasons) if reasons else 'only ext2/ext3/ext4 roots are supported')


def find_root(runner, path, marker='/etc/cloud'):
    """Find the ext file system of a raw image that holds ``marker`` (a directory).

    Returns ``{'offset', 'number' (None for a whole-disk file system), 'fs', 'table', 'candidates'}``.
    Raises InputError when no ext file system holds ``marker`` (with what was found instead).
    """
    table = partitions(runner, path)
    if table['partitions']:
        slots = [(p['number'], p['offset']) for p in table['partitions']]
    else:
        slots = [(None, 0)]
    found = []
    ext_roots_without_marker = []
    matches = []
    size = os.path.getsize(path)
    for number, offset in slots:
        if offset >= size:
            continue
        probe = probe_fs(path, offset)
        found.append(probe['fs'])
        if not probe['fs'] or not probe['fs'].startswith('ext'):
            continue
        where = 'partition %s' % number if number else 'the whole disk'
        if probe['state_errors']:
            raise InputError('the ext file system on %s of %s is marked as having errors: run e2fsck on it first'
                             % (where, path), partition=number, partition_offset=offset)
        if probe['needs_recovery']:
            raise InputError('the ext file system on %s of %s was not cleanly unmounted (its journal needs recovery): '
                             'run e2fsck on it, or shut the VM it came from down cleanly' % (where, path),
                             partition=number, partition_offset=offset)
        fs = Debugfs(runner, path, offset)
        if fs.is_dir(marker):
            matches.append({'offset': offset, 'number': number, 'fs': probe['fs'], 'label': probe['label']})
        elif fs.is_dir('/etc'):
            ext_roots_without_marker.append(where)
    if matches:
        root = matches[0]
        root.update(table=table['label'], candidates=len(matches))
        return root
    if ext_roots_without_marker:
        raise InputError('%s has no %s on its root file system (%s): cloud-init is not installed in this image'
                         % (path, marker, ', '.join(ext_roots_without_marker)), filesystems=found)
    if any(f and f.startswith('ext') for f in found):
        raise InputError('%s has ext file systems but none looks like a root (no /etc): %s'
                         % (path, unsupported_fs_message(found)), filesystems=found)
    raise InputError('%s has no ext2/ext3/ext4 file system to write to (%s table): %s'
                     % (path, table['label'] or 'no partition', unsupported_fs_message(found)), filesystems=found)
