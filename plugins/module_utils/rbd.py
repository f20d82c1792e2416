# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read access to Ceph RBD images for fastboot.cloud modules, with two interchangeable backends.

``PythonRbd`` uses the python3-rbd/python3-rados bindings (no process per call); ``CliRbd`` runs the ``rbd``
CLI with ``--format json``. Both expose the same methods and return the same plain dicts:

* ``pool_exists(pool)`` -> bool
* ``list_images(pool)`` -> sorted list of image names
* ``exists(pool, image)`` -> bool
* ``info(pool, image)`` -> ``{pool, image, spec, size, features, parent, overlap}`` where ``parent`` is ``None``
  or ``{pool, pool_namespace, image, snapshot, spec}`` (``spec`` is ``pool/image@snapshot``) and ``overlap``
  is the number of bytes still shared with the parent (0 without one)
* ``children(pool, image, snapshot, deep=True)`` -> list of ``{pool, pool_namespace, image, spec, trash}``;
  ``deep`` also returns clones of clones

Missing things raise typed errors (``PoolNotFound``, ``ImageNotFound``, ``SnapshotNotFound``, all InputError);
anything else Ceph reports raises ``CephError``. Use ``open_rbd(module, backend, ...)`` to pick a backend and
``close()`` (or a ``with`` block) when done.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, FastbootError, InputError, Runner

try:
    import rados
    import rbd
    HAS_RBD = True
    RBD_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the host
    rados = None
    rbd = None
    HAS_RBD = False
    RBD_IMPORT_ERROR = _exc

BACKENDS = ('auto', 'python', 'cli')
DEFAULT_CEPH_CONF = '/etc/ceph/ceph.conf'
DEFAULT_CEPH_USER = 'admin'
# Fail instead of hanging forever when the monitors or OSDs do not answer
CONNECT_TIMEOUT = 30
OP_TIMEOUT = 60

# What the rbd CLI prints when a pool / an image / a snapshot is not there
_NO_POOL_RE = re.compile(r"error opening pool '?([^':]*)'?: \(2\)")
_NO_SNAP_RE = re.compile(r'snapshot does not exist|error setting snapshot context|\(2\) No such file or directory.*snap',
                         re.IGNORECASE)
_NO_ENT_RE = re.compile(r'\(2\) No such file or directory')


class CephError(FastbootError):
    """Ceph refused or failed an operation (cannot connect, permission denied, I/O error...)."""


class PoolNotFound(InputError):
    def __init__(self, pool):
        super(PoolNotFound, self).__init__('Ceph pool %s does not exist' % pool, pool=pool)
        self.pool = pool


class ImageNotFound(InputError):
    def __init__(self, pool, image):
        super(ImageNotFound, self).__init__('RBD image %s/%s does not exist' % (pool, image), pool=pool, image=image)
        self.pool = pool
        self.image = image


class SnapshotNotFound(InputError):
    def __init__(self, pool, image, snapshot):
        super(SnapshotNotFound, self).__init__('RBD snapshot %s/%s@%s does not exist' % (pool, image, snapshot),
                                               pool=pool, image=image, snapshot=snapshot)
        self.pool = pool
        self.image = image
        self.snapshot = snapshot


def image_spec(pool, image, snapshot=None, namespace=None):
    """``pool[/namespace]/image[@snapshot]``, the way the rbd CLI writes it."""
    spec = pool + '/' + (namespace + '/' if namespace else '') + image
    return spec + '@' + snapshot if snapshot else spec


def parse_image_spec(spec):
    """Split ``pool/image`` into (pool, image); raise InputError naming the spec when it is malformed."""
    if not isinstance(spec, str) or spec.count('/') != 1 or '@' in spec:
        raise InputError("disk %r is not a 'pool/image' spec (one '/', no '@snapshot')" % (spec,), spec=spec)
    pool, image = spec.split('/')
    check_name(pool, 'pool', spec)
    check_name(image, 'image', spec)
    return pool, image


_NAME_RE = re.compile(r'^[A-Za-z0-9_.][A-Za-z0-9_.+:=\-]*$')


def check_name(name, what, where=None):
    """Refuse a pool/image/snapshot name that is empty, starts with '-', or holds '/', '@', spaces or odd
    characters; the error names the value (and the spec it came from)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 250:
        ctx = ' in %r' % (where,) if where is not None and where != name else ''
        raise InputError('invalid %s name %r%s: use letters, digits and _ . - + : = (not starting with -)'
                         % (what, name, ctx), **{what: name})
    return name


def _parent_dict(pool, image, snapshot, namespace=''):
    return {'pool': pool, 'pool_namespace': namespace or '', 'image': image, 'snapshot': snapshot,
            'spec': image_spec(pool, image, snapshot, namespace)}


def _child_dict(entry):
    ns = entry.get('pool_namespace') or ''
    return {'pool': entry['pool'], 'pool_namespace': ns, 'image': entry['image'],
            'spec': image_spec(entry['pool'], entry['image'], namespace=ns), 'trash': bool(entry.get('trash', False))}


class RbdBackend(object):
    """Interface shared by both backends (see the module docstring)."""

    name = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        pass

    def pool_exists(self, pool):
        raise NotImplementedError

    def list_images(self, pool):
        raise NotImplementedError

    def info(self, pool, image):
        raise NotImplementedError

    def children(self, pool, image, snapshot, deep=True):
        raise NotImplementedError

    def exists(self, pool, image):
        try:
            self.info(pool, image)
        except (ImageNotFound, PoolNotFound):
            return False
        return True


class PythonRbd(RbdBackend):
    """Backend on python3-rados/python3-rbd (librbd in process)."""

    name = 'python'

    def __init__(self, ceph_conf=DEFAULT_CEPH_CONF, ceph_user=DEFAULT_CEPH_USER, keyring=None):
        if not HAS_RBD:
            raise CephError('the python3-rbd and python3-rados bindings are not importable: %s' % RBD_IMPORT_ERROR)
        conf = {'rados_mon_op_timeout': str(OP_TIMEOUT), 'rados_osd_op_timeout': str(OP_TIMEOUT)}
        if keyring:
            conf['keyring'] = keyring
        self._ioctx = {}
        try:
            self.cluster = rados.Rados(conffile=ceph_conf, rados_id=ceph_user, conf=conf)
            self.cluster.connect(timeout=CONNECT_TIMEOUT)
        except rados.Error as exc:
            raise CephError('cannot connect to Ceph as client.%s with %s: %s' % (ceph_user, ceph_conf, exc),
                            ceph_conf=ceph_conf, ceph_user=ceph_user)
        self.rbd = rbd.RBD()

    def close(self):
        for ioctx in self._ioctx.values():
            ioctx.close()
        self._ioctx = {}
        if getattr(self, 'cluster', None) is not None:
            self.cluster.shutdown()
            self.cluster = None

    def _io(self, pool):
        if pool not in self._ioctx:
            try:
                self._ioctx[pool] = self.cluster.open_ioctx(pool)
            except rados.ObjectNotFound:
                raise PoolNotFound(pool)
            except rados.Error as exc:
                raise CephError('cannot open Ceph pool %s: %s' % (pool, exc), pool=pool)
        return self._ioctx[pool]

    def _open(self, pool, image, snapshot=None):
        try:
            return rbd.Image(self._io(pool), image, snapshot=snapshot, read_only=True)
        except rbd.ImageNotFound:
            if snapshot is not None and self.exists(pool, image):
                raise SnapshotNotFound(pool, image, snapshot)
            raise ImageNotFound(pool, image)
        except rbd.Error as exc:
            raise CephError('cannot open RBD image %s: %s' % (image_spec(pool, image, snapshot), exc),
                            pool=pool, image=image)

    def pool_exists(self, pool):
        try:
            return bool(self.cluster.pool_exists(pool))
        except rados.Error as exc:
            raise CephError('cannot look up Ceph pool %s: %s' % (pool, exc), pool=pool)

    def list_images(self, pool):
        try:
            return sorted(self.rbd.list(self._io(pool)))
        except rbd.Error as exc:
            raise CephError('cannot list RBD images of pool %s: %s' % (pool, exc), pool=pool)

    def info(self, pool, image):
        img = self._open(pool, image)
        try:
            try:
                spec = img.get_parent_image_spec()
                parent = _parent_dict(spec['pool_name'], spec['image_name'], spec['snap_name'],
                                      spec.get('pool_namespace', ''))
            except rbd.ImageNotFound:
                # librbd answers ENOENT when the image has no parent (never was, or was flattened)
                parent = None
            except AttributeError:  # pragma: no cover - librbd older than Octopus
                try:
                    ppool, pimage, psnap = img.parent_info()
                    parent = _parent_dict(ppool, pimage, psnap)
                except rbd.ImageNotFound:
                    parent = None
            bits = img.features()
            features = sorted(self.rbd.features_to_string(bits).split(',')) if bits else []
            return {'pool': pool, 'image': image, 'spec': image_spec(pool, image), 'size': img.size(),
                    'features': features, 'parent': parent, 'overlap': img.overlap() if parent else 0}
        except rbd.Error as exc:
            raise CephError('cannot read RBD image %s: %s' % (image_spec(pool, image), exc), pool=pool, image=image)
        finally:
            img.close()

    def children(self, pool, image, snapshot, deep=True):
        img = self._open(pool, image, snapshot)
        try:
            entries = img.list_descendants() if deep else img.list_children2()
            return [_child_dict(e) for e in entries]
        except rbd.Error as exc:
            raise CephError('cannot list the children of %s: %s' % (image_spec(pool, image, snapshot), exc),
                            pool=pool, image=image, snapshot=snapshot)
        finally:
            img.close()


class CliRbd(RbdBackend):
    """Backend on the ``rbd`` CLI (``--format json``), run through a common.Runner (or a fake in tests)."""

    name = 'cli'

    def __init__(self, runner, ceph_conf=DEFAULT_CEPH_CONF, ceph_user=DEFAULT_CEPH_USER, keyring=None):
        self.runner = runner
        self.base = ['rbd', '--conf', ceph_conf, '--id', ceph_user]
        if keyring:
            self.base += ['--keyring', keyring]
        self.base += ['--client-mount-timeout', str(CONNECT_TIMEOUT), '--rados-mon-op-timeout', str(OP_TIMEOUT),
                      '--rados-osd-op-timeout', str(OP_TIMEOUT)]

    def _json(self, args, pool, image=None, snapshot=None):
        argv = self.base + args + ['--format', 'json']
        what = 'rbd ' + ' '.join(args)
        rc, out, err = self.runner.run(argv, check=False, what=what)
        if rc != 0:
            text = (err or '') + (out or '')
            if _NO_POOL_RE.search(text):
                raise PoolNotFound(pool)
            if snapshot is not None and _NO_SNAP_RE.search(text):
                raise SnapshotNotFound(pool, image, snapshot)
            if image is not None and _NO_ENT_RE.search(text):
                raise ImageNotFound(pool, image)
            lines = [line for line in text.strip().splitlines() if line.strip()]
            raise CephError('%s failed (rc=%d): %s' % (what, rc, lines[-1] if lines else 'no output'),
                            cmd=argv, rc=rc, stdout=out, stderr=err)
        try:
            return self._loads(out)
        except ValueError as exc:
            raise CommandError('%s printed output that is not JSON: %s' % (what, exc), cmd=argv, rc=rc, stdout=out,
                               stderr=err)

    @staticmethod
    def _loads(out):
        return json.loads(out) if (out or '').strip() else []

    def pool_exists(self, pool):
        try:
            self._json(['ls', pool], pool)
        except PoolNotFound:
            return False
        return True

    def list_images(self, pool):
        return sorted(self._json(['ls', pool], pool))

    def info(self, pool, image):
        data = self._json(['info', image_spec(pool, image)], pool, image)
        p = data.get('parent')
        parent = _parent_dict(p['pool'], p['image'], p['snapshot'], p.get('pool_namespace', '')) if p else None
        return {'pool': pool, 'image': image, 'spec': image_spec(pool, image), 'size': int(data['size']),
                'features': sorted(data.get('features') or []), 'parent': parent,
                'overlap': int(p.get('overlap', 0)) if p else 0}

    def children(self, pool, image, snapshot, deep=True):
        args = ['children', '--all'] + (['--descendants'] if deep else []) + [image_spec(pool, image, snapshot)]
        return [_child_dict(e) for e in self._json(args, pool, image, snapshot)]


def open_rbd(module, backend='auto', ceph_conf=DEFAULT_CEPH_CONF, ceph_user=DEFAULT_CEPH_USER, keyring=None,
             runner=None):
    """Return a connected backend: ``python`` (bindings), ``cli`` (rbd CLI) or ``auto`` (python when importable).

    ``runner`` (a common.Runner) is only used by the CLI backend; one is made from ``module`` when omitted.
    """
    if backend not in BACKENDS:
        raise InputError('backend must be one of %s, not %r' % (', '.join(BACKENDS), backend), backend=backend)
    if backend == 'python' or (backend == 'auto' and HAS_RBD):
        return PythonRbd(ceph_conf, ceph_user, keyring)
    if runner is None:
        runner = Runner(module)
    return CliRbd(runner, ceph_conf, ceph_user, keyring)
