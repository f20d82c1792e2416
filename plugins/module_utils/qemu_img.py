# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""qemu-img helpers for fastboot.cloud: inspect an image (``qemu-img info``/``check``), compare two images,
name an RBD image for qemu (``rbd:pool/image:conf=...:id=...``) and handle a conversion target (a file or
an RBD image) that is written under a temporary name and renamed into place only on success.

Everything runs real binaries through common.Runner (argument lists, C locale) and raises the typed errors
of common.py, so a module turns any failure into a fail_json that names the thing and the fix.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import binascii
import json
import os
import re

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError

RBD_PREFIX = 'rbd:'
TMP_TAG = 'fastboot-tmp-'
# RBD pool and image names this module accepts: no '/', '@' or ':' (qemu's rbd: syntax delimiters)
RBD_NAME_RE = re.compile(r'^[A-Za-z0-9_.+=-]+$')
FORMAT_RE = re.compile(r'^[a-z0-9_-]+$')

# qemu-img check exit codes (see qemu-img(1))
CHECK_OK = 0
CHECK_FAILED = 1
CHECK_CORRUPT = 2
CHECK_LEAKS = 3
CHECK_UNSUPPORTED = 63


def random_suffix():
    return binascii.hexlify(os.urandom(4)).decode('ascii')


# ---------------------------------------------------------------- target specs

def parse_target(dest):
    """Parse a conversion target: ``rbd:POOL/IMAGE`` or a file path.

    Returns ``{'kind': 'rbd', 'pool': POOL, 'image': IMAGE}`` or ``{'kind': 'file', 'path': PATH}``.
    """
    if dest is None or not str(dest).strip():
        raise InputError('dest must be a file path or rbd:POOL/IMAGE, got an empty string')
    dest = str(dest)
    if dest.startswith(RBD_PREFIX):
        rest = dest[len(RBD_PREFIX):]
        parts = rest.split('/')
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InputError('dest %r is not of the form rbd:POOL/IMAGE' % dest, dest=dest)
        pool, image = parts
        for what, name in (('pool', pool), ('image', image)):
            if not RBD_NAME_RE.match(name):
                raise InputError('dest %r: RBD %s name %r may only contain letters, digits and . _ - + ='
                                 % (dest, what, name), dest=dest)
        return {'kind': 'rbd', 'pool': pool, 'image': image}
    return {'kind': 'file', 'path': dest}


def escape_rbd_value(value):
    """Escape a value for qemu's ``rbd:`` filename syntax (``\\`` and ``:`` are special there)."""
    return str(value).replace('\\', '\\\\').replace(':', '\\:').replace('@', '\\@')


def rbd_spec(pool, image, conf=None, user=None):
    """qemu's filename for an RBD image: ``rbd:pool/image[:conf=CONF][:id=USER]``."""
    for what, name in (('pool', pool), ('image', image)):
        if not name or not RBD_NAME_RE.match(name):
            raise InputError('invalid RBD %s name %r' % (what, name))
    spec = '%s%s/%s' % (RBD_PREFIX, pool, image)
    if conf:
        spec += ':conf=' + escape_rbd_value(conf)
    if user:
        spec += ':id=' + escape_rbd_value(user)
    return spec


def validate_format(fmt, what):
    if fmt is not None and not FORMAT_RE.match(fmt):
        raise InputError('%s %r is not a qemu-img format name (e.g. raw, qcow2, vmdk)' % (what, fmt))
    return fmt


# ---------------------------------------------------------------- qemu-img info / check / compare

def parse_info(data):
    """Normalise one ``qemu-img info --output=json`` object into the fields this collection uses."""
    if not isinstance(data, dict) or 'format' not in data or 'virtual-size' not in data:
        raise CommandError('qemu-img info printed JSON without format/virtual-size: %r' % (data,))
    specific = (data.get('format-specific') or {}).get('data') or {}
    encrypted = bool(data.get('encrypted')) or data.get('format') == 'luks' or 'encrypt' in specific
    return {
        'filename': data.get('filename'),
        'format': data['format'],
        'virtual_size': int(data['virtual-size']),
        'actual_size': data.get('actual-size'),
        'backing_file': data.get('full-backing-filename') or data.get('backing-filename'),
        'backing_format': data.get('backing-filename-format'),
        'encrypted': encrypted,
        'corrupt': bool(specific.get('corrupt')),
        'dirty': bool(data.get('dirty-flag')),
    }


def parse_chain(data):
    """Normalise ``qemu-img info --output=json --backing-chain`` (a list, top image first)."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise CommandError('qemu-img info --backing-chain printed an empty or unexpected JSON: %r' % (data,))
    return [parse_info(item) for item in data]


def info(runner, filename, fmt=None, backing_chain=False, what=None):
    """Run ``qemu-img info --output=json`` and return the raw JSON (a dict, or a list with the chain)."""
    argv = ['qemu-img', 'info', '--output=json']
    if backing_chain:
        argv.append('--backing-chain')
    if fmt:
        argv += ['-f', fmt]
    argv.append(filename)
    return runner.run_json(argv, what=what or 'qemu-img info %s' % filename)


def check(runner, filename, fmt):
    """Run ``qemu-img check`` (read-only, no repair) on one image.

    Returns the parsed JSON report (``{}`` when the format has no consistency check). Leaked clusters are
    harmless for reading and are accepted; corruptions or a check that cannot complete raise InputError.
    """
    argv = ['qemu-img', 'check', '--output=json', '-f', fmt, filename]
    rc, out, err = runner.run(argv, check=False)
    if rc == CHECK_UNSUPPORTED:
        return {}
    try:
        report = json.loads(out) if out.strip() else {}
    except ValueError:
        report = {}
    if rc in (CHECK_OK, CHECK_LEAKS):
        return report
    lines = [ln for ln in (err or '').strip().splitlines() if ln.strip()]
    reason = lines[-1] if lines else 'no output'
    if rc == CHECK_CORRUPT or report.get('corruptions'):
        msg = '%s image %s is corrupt: qemu-img check found %s corruption(s)' % (
            fmt, filename, report.get('corruptions', 'some'))
    else:
        msg = '%s image %s is corrupt or unreadable: qemu-img check failed (rc=%d): %s' % (fmt, filename, rc, reason)
    raise InputError(msg, check=report or None, stderr=err or None, rc=rc)


def compare(runner, first, first_fmt, second, second_fmt):
    """``qemu-img compare`` (content only, not allocation): True identical, False different."""
    argv = ['qemu-img', 'compare', '-f', first_fmt, '-F', second_fmt, first, second]
    rc, out, err = runner.run(argv, check=False)
    if rc == 0:
        return True
    if rc == 1:
        return False
    lines = [ln for ln in (err or out or '').strip().splitlines() if ln.strip()]
    raise CommandError('qemu-img compare %s %s failed (rc=%d): %s' % (first, second, rc, lines[-1] if lines else 'no output'),
                       cmd=argv, rc=rc, stdout=out, stderr=err)


def _reason(exc):
    text = (exc.stderr or exc.stdout or '').strip().splitlines()
    reason = text[-1] if text else exc.msg
    return reason[len('qemu-img: '):] if reason.startswith('qemu-img: ') else reason


def inspect_source(runner, path, fmt=None, allow_backing_file=False):
    """Inspect a source image before conversion; raise InputError for anything that must not be converted.

    Returns ``{'format', 'virtual_size', 'actual_size', 'backing_file', 'chain'}`` where ``chain`` lists
    the (normalised) images from the top down (just the source without a backing file).
    """
    if not os.path.exists(path):
        raise InputError('src %s does not exist' % path, src=path)
    if os.path.isdir(path):
        raise InputError('src %s is a directory, not an image file' % path, src=path)
    if not os.access(path, os.R_OK):
        raise InputError('src %s is not readable by this user' % path, src=path)
    try:
        top = parse_info(info(runner, path, fmt=fmt))
    except CommandError as exc:
        raise InputError('src %s cannot be opened by qemu-img%s (corrupt, truncated or not that format?): %s'
                         % (path, ' as %s' % fmt if fmt else '', _reason(exc)), src=path, stderr=exc.stderr)
    if top['backing_file'] and not allow_backing_file:
        raise InputError('src %s has a backing file (%s): it is an overlay, not a whole image. Set allow_backing_file=true '
                         'to convert the whole chain into one flattened image' % (path, top['backing_file']),
                         src=path, backing_file=top['backing_file'])
    chain = [top]
    if top['backing_file']:
        try:
            chain = parse_chain(info(runner, path, fmt=top['format'], backing_chain=True))
        except CommandError as exc:
            raise InputError('the backing chain of src %s cannot be opened (backing file %s missing or corrupt?): %s'
                             % (path, top['backing_file'], _reason(exc)), src=path, backing_file=top['backing_file'],
                             stderr=exc.stderr)
    for index, image in enumerate(chain):
        name = path if index == 0 else image['filename']
        role = 'src' if index == 0 else 'backing file of src %s:' % path
        if image['encrypted']:
            raise InputError('%s %s is encrypted (%s): qemu-img needs its key, which this module does not handle; '
                             'decrypt it first' % (role, name, image['format']), src=path)
        if image['corrupt']:
            raise InputError('%s %s is marked corrupt in its qcow2 header; repair it (qemu-img check -r all) '
                             'or use another copy' % (role, name), src=path)
        if image['format'] == 'qcow2' and name and os.path.exists(name):
            check(runner, name, 'qcow2')
    return {
        'format': top['format'],
        'virtual_size': top['virtual_size'],
        'actual_size': top['actual_size'],
        'backing_file': top['backing_file'],
        'chain': [image['filename'] for image in chain],
    }


def convert(runner, src, src_fmt, dest_spec, dest_fmt):
    """``qemu-img convert -f SRC_FMT -O DEST_FMT src dest`` (qemu-img creates the target, flattening any chain)."""
    argv = ['qemu-img', 'convert', '-f', src_fmt, '-O', dest_fmt, src, dest_spec]
    runner.run(argv, what='qemu-img convert %s -> %s' % (src, dest_spec.split(':conf=')[0]))


# ---------------------------------------------------------------- targets

class FileTarget(object):
    """A target file, written as ``.<name>.fastboot-tmp-<random>`` in the same directory and renamed."""

    kind = 'file'

    def __init__(self, runner, path):
        self.runner = runner
        path = os.path.abspath(path)
        if os.path.islink(path) and os.path.exists(path):
            path = os.path.realpath(path)
        self.path = path
        self.name = path
        self.directory = os.path.dirname(path)
        self.tmp = None
        self.removed_old = False

    def validate(self, dest_format='raw'):
        if not os.path.isdir(self.directory):
            raise InputError('the directory of dest %s does not exist: create %s first' % (self.path, self.directory),
                             dest=self.path)
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise InputError('dest %s exists and is not a regular file (directory or device?)' % self.path, dest=self.path)
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise InputError('cannot write into the directory of dest %s' % self.path, dest=self.path)

    def exists(self):
        return os.path.isfile(self.path)

    def spec(self, name=None):
        return name or self.path

    def inspect(self):
        """Format and size of the existing target as qemu-img sees it (probed)."""
        return parse_info(info(self.runner, self.path, what='qemu-img info %s (the existing dest)' % self.path))

    def check_replaceable(self):
        return None

    def new_tmp(self):
        self.tmp = os.path.join(self.directory, '.%s.%s%s' % (os.path.basename(self.path), TMP_TAG, random_suffix()))
        return self.tmp

    def remove_tmp(self):
        if self.tmp and os.path.lexists(self.tmp):
            os.unlink(self.tmp)
        self.tmp = None

    def commit(self, replace):
        """Move the converted temporary into place (atomically, also over an existing file)."""
        os.rename(self.tmp, self.path)
        self.tmp = None

    def allocated(self):
        return os.stat(self.path).st_blocks * 512


class RbdTarget(object):
    """An RBD image, written as ``<image>.fastboot-tmp-<random>`` in the same pool and renamed with rbd."""

    kind = 'rbd'

    def __init__(self, runner, pool, image, conf, user):
        self.runner = runner
        self.pool = pool
        self.image = image
        self.conf = conf
        self.user = user
        self.name = '%s%s/%s' % (RBD_PREFIX, pool, image)
        self.tmp = None
        self._images = None
        self.removed_old = False

    def _rbd(self, *args):
        return ['rbd', '--conf', self.conf, '--id', self.user] + list(args)

    def validate(self, dest_format='raw'):
        if dest_format != 'raw':
            raise InputError('dest %s is an RBD image: only dest_format=raw is supported there, not %s'
                             % (self.name, dest_format), dest=self.name)
        if not os.path.isfile(self.conf):
            raise InputError('ceph_conf %s does not exist (needed for the RBD dest %s)' % (self.conf, self.name),
                             dest=self.name)
        self.images()

    def images(self, refresh=False):
        if self._images is None or refresh:
            argv = self._rbd('ls', '--format', 'json', self.pool)
            rc, out, err = self.runner.run(argv, check=False)
            if rc != 0 and (rc == 2 or 'error opening pool' in (err or '')):
                raise InputError("RBD pool '%s' does not exist (dest %s): create it first, e.g. with fastboot.cloud.ceph_pool "
                                 "or 'ceph osd pool create %s && rbd pool init %s'" % (self.pool, self.name, self.pool, self.pool),
                                 dest=self.name, pool=self.pool)
            if rc != 0:
                lines = (err or out or '').strip().splitlines()
                raise CommandError('listing RBD pool %s as client.%s failed (rc=%d): %s'
                                   % (self.pool, self.user, rc, lines[-1] if lines else 'no output'),
                                   cmd=argv, rc=rc, stdout=out, stderr=err)
            try:
                self._images = list(json.loads(out or '[]'))
            except ValueError as exc:
                raise CommandError('rbd ls printed output that is not JSON: %s' % exc, cmd=argv, rc=rc, stdout=out, stderr=err)
        return self._images

    def exists(self):
        return self.image in self.images()

    def spec(self, name=None):
        return rbd_spec(self.pool, name or self.image, self.conf, self.user)

    def inspect(self):
        result = parse_info(info(self.runner, self.spec(), what='qemu-img info %s (the existing dest)' % self.name))
        result['filename'] = self.name
        return result

    def check_replaceable(self):
        """Refuse to replace an image whose removal would destroy more than its data (snapshots)."""
        data = self.runner.run_json(self._rbd('info', '--format', 'json', '%s/%s' % (self.pool, self.image)),
                                    what='rbd info %s/%s' % (self.pool, self.image))
        if int(data.get('snapshot_count') or 0) > 0:
            raise InputError('dest %s has %s snapshot(s): it cannot be replaced without destroying them; '
                             'remove them first (rbd snap purge) or choose another image name'
                             % (self.name, data.get('snapshot_count')), dest=self.name)

    def new_tmp(self):
        self.tmp = '%s.%s%s' % (self.image, TMP_TAG, random_suffix())
        return self.tmp

    def remove_tmp(self):
        if self.tmp and self.tmp in self.images(refresh=True):
            self.runner.run(self._rbd('rm', '--no-progress', '%s/%s' % (self.pool, self.tmp)),
                            what='removing the temporary RBD image %s/%s' % (self.pool, self.tmp))
        self.tmp = None

    def commit(self, replace):
        """Remove the old image (when replacing) and rename the temporary into place."""
        if replace:
            self.runner.run(self._rbd('rm', '--no-progress', '%s/%s' % (self.pool, self.image)),
                            what='removing the old RBD image %s (in use by a VM?)' % self.name)
            self.removed_old = True
        try:
            self.runner.run(self._rbd('rename', '%s/%s' % (self.pool, self.tmp), '%s/%s' % (self.pool, self.image)),
                            what='renaming RBD image %s/%s to %s' % (self.pool, self.tmp, self.image))
        except CommandError as exc:
            if not self.removed_old:
                raise
            # the old image is gone: keep the converted data rather than clean it up
            kept, self.tmp = self.tmp, None
            raise CommandError('%s; the old image %s was already removed, the converted image is kept as %s/%s: '
                               'rename it by hand' % (exc.msg, self.name, self.pool, kept),
                               cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)
        self.tmp = None
        self._images = None

    def allocated(self):
        data = self.runner.run_json(self._rbd('du', '--format', 'json', '%s/%s' % (self.pool, self.image)),
                                    what='rbd du %s' % self.name)
        total = 0
        for entry in data.get('images') or []:
            if entry.get('name') == self.image and not entry.get('snapshot'):
                total += int(entry.get('used_size') or 0)
        return total


def make_target(runner, dest, ceph_conf, ceph_user):
    parsed = parse_target(dest)
    if parsed['kind'] == 'rbd':
        return RbdTarget(runner, parsed['pool'], parsed['image'], ceph_conf, ceph_user)
    return FileTarget(runner, parsed['path'])


# ---------------------------------------------------------------- backing chains of disks in use

def info_shared(runner, filename, backing_chain=False):
    """``qemu-img info --output=json --force-share`` (-U): readable while a running qemu holds the image's lock."""
    argv = ['qemu-img', 'info', '--output=json', '-U']
    if backing_chain:
        argv.append('--backing-chain')
    argv.append(filename)
    return runner.run_json(argv, what='qemu-img info %s' % filename)


def backing_of(path, image):
    """The absolute, normalised backing file name of ``image`` (a parse_info dict) of the file ``path``."""
    backing = image.get('backing_file')
    if not backing:
        return None
    if not os.path.isabs(backing):
        backing = os.path.join(os.path.dirname(os.path.abspath(path)), backing)
    return os.path.normpath(backing)


def inspect_chain(runner, path):
    """Inspect a (possibly running) disk and its whole backing chain without taking its lock.

    Returns ``{'disk', 'format', 'chain', 'missing', 'error'}``: ``chain`` lists the absolute file names of the
    backing files (top excluded, nearest first); ``missing`` is the first backing file that cannot be opened
    (``error`` says why), ``None`` when the chain is complete. Raises CommandError when the disk itself cannot
    be read.
    """
    path = os.path.abspath(path)
    top = parse_info(info_shared(runner, path))
    result = {'disk': path, 'format': top['format'], 'chain': [], 'missing': None, 'error': None}
    if not top['backing_file']:
        return result
    try:
        chain = parse_chain(info_shared(runner, path, backing_chain=True))
    except CommandError as exc:
        # walk the chain one level at a time to name the first backing file that cannot be opened
        current, image = path, top
        seen = set([path])
        while True:
            backing = backing_of(current, image)
            if not backing:
                break
            result['chain'].append(backing)
            if backing in seen:
                result['missing'], result['error'] = backing, 'backing chain loops back to %s' % backing
                break
            seen.add(backing)
            try:
                image = parse_info(info_shared(runner, backing))
            except CommandError as sub:
                result['missing'], result['error'] = backing, _reason(sub)
                break
            current = backing
        if not result['missing']:
            result['missing'], result['error'] = result['chain'][-1] if result['chain'] else None, _reason(exc)
        return result
    current = path
    for image in chain[:-1]:
        backing = backing_of(current, image)
        result['chain'].append(backing)
        current = backing
    return result
