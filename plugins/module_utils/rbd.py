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

Write and space methods (clone lifecycle; both backends):

* ``usage(pool, image)`` -> ``{provisioned, used}``: ``used`` is what ``rbd du`` prints as USED, the bytes the
  image itself holds (for a clone: not counting what it still reads from its parent)
* ``flatten(pool, image)`` -> True when flattened, False when the image had no parent (nothing to do)
* ``snapshots(pool, image)`` -> list of ``{name, protected}``; ``snap_protect``/``snap_unprotect``/``snap_remove``
  (pool, image, snapshot) and ``remove(pool, image)``
* ``pool_space(pool)`` -> ``{max_avail, stored, quota_max_bytes, available}`` from ``ceph df`` and the pool
  quota; ``available`` is MAX AVAIL, lowered to what the byte quota still allows when one is set

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
_EINVAL_RE = re.compile(r'\(22\) Invalid argument')
_EBUSY_RE = re.compile(r'\(16\) Device or resource busy')


class CephError(FastbootError):
    """Ceph refused or failed an operation (cannot connect, permission denied, I/O error...)."""


class ImageBusy(CephError):
    """Ceph answered EBUSY: a snapshot still has children, or an image is open (watched) by a client."""


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

    def usage(self, pool, image):
        raise NotImplementedError

    def flatten(self, pool, image):
        raise NotImplementedError

    def snapshots(self, pool, image):
        raise NotImplementedError

    def snap_protect(self, pool, image, snapshot):
        raise NotImplementedError

    def snap_unprotect(self, pool, image, snapshot):
        raise NotImplementedError

    def snap_remove(self, pool, image, snapshot):
        raise NotImplementedError

    def remove(self, pool, image):
        raise NotImplementedError

    def pool_space(self, pool):
        raise NotImplementedError


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

    def _open_rw(self, pool, image):
        try:
            return rbd.Image(self._io(pool), image)
        except rbd.ImageNotFound:
            raise ImageNotFound(pool, image)
        except rbd.Error as exc:
            raise CephError('cannot open RBD image %s: %s' % (image_spec(pool, image), exc), pool=pool, image=image)

    def usage(self, pool, image):
        img = self._open(pool, image)
        used = []

        def count(offset, length, exists):
            if exists:
                used.append(length)
            return 0

        try:
            size = img.size()
            # what `rbd du` does: whole objects, the image's own data only (not the parent's)
            img.diff_iterate(0, size, None, count, include_parent=False, whole_object=True)
            return {'provisioned': size, 'used': sum(used)}
        except rbd.Error as exc:
            raise CephError('cannot read the usage of %s: %s' % (image_spec(pool, image), exc), pool=pool, image=image)
        finally:
            img.close()

    def _write_op(self, pool, image, what, func):
        img = self._open_rw(pool, image)
        try:
            return func(img)
        except rbd.ImageBusy as exc:
            raise ImageBusy('%s %s: busy: %s' % (what, image_spec(pool, image), exc), pool=pool, image=image)
        except rbd.Error as exc:
            raise CephError('%s %s failed: %s' % (what, image_spec(pool, image), exc), pool=pool, image=image)
        finally:
            img.close()

    def flatten(self, pool, image):
        def run(img):
            try:
                img.flatten()
            except rbd.InvalidArgument:
                # librbd: "image has no parent"
                return False
            return True
        return self._write_op(pool, image, 'flatten', run)

    def snapshots(self, pool, image):
        img = self._open(pool, image)
        try:
            return [{'name': s['name'], 'protected': bool(img.is_protected_snap(s['name']))} for s in img.list_snaps()]
        except rbd.Error as exc:
            raise CephError('cannot list the snapshots of %s: %s' % (image_spec(pool, image), exc), pool=pool, image=image)
        finally:
            img.close()

    def _snap_op(self, pool, image, snapshot, what, func):
        def run(img):
            try:
                return func(img)
            except rbd.ImageNotFound:
                raise SnapshotNotFound(pool, image, snapshot)
        return self._write_op(pool, image, what, run)

    def snap_protect(self, pool, image, snapshot):
        self._snap_op(pool, image, snapshot, 'protect snapshot %s of' % snapshot, lambda img: img.protect_snap(snapshot))

    def snap_unprotect(self, pool, image, snapshot):
        self._snap_op(pool, image, snapshot, 'unprotect snapshot %s of' % snapshot,
                      lambda img: img.unprotect_snap(snapshot))

    def snap_remove(self, pool, image, snapshot):
        self._snap_op(pool, image, snapshot, 'remove snapshot %s of' % snapshot, lambda img: img.remove_snap(snapshot))

    def remove(self, pool, image):
        try:
            self.rbd.remove(self._io(pool), image)
        except rbd.ImageNotFound:
            raise ImageNotFound(pool, image)
        except rbd.ImageBusy as exc:
            raise ImageBusy('remove %s: busy (still open by a client?): %s' % (image_spec(pool, image), exc),
                            pool=pool, image=image)
        except rbd.Error as exc:
            raise CephError('remove %s failed: %s' % (image_spec(pool, image), exc), pool=pool, image=image)

    def _mon_json(self, cmd):
        try:
            ret, out, err = self.cluster.mon_command(json.dumps(dict(cmd, format='json')), b'')
        except rados.Error as exc:
            raise CephError('ceph %s failed: %s' % (cmd['prefix'], exc))
        if ret != 0:
            raise CephError('ceph %s failed (%d): %s' % (cmd['prefix'], ret, err), rc=ret)
        try:
            return json.loads(out)
        except ValueError as exc:
            raise CephError('ceph %s printed output that is not JSON: %s' % (cmd['prefix'], exc))

    def pool_space(self, pool):
        if not self.pool_exists(pool):
            raise PoolNotFound(pool)
        return parse_pool_space(self._mon_json({'prefix': 'df'}),
                                self._mon_json({'prefix': 'osd pool get-quota', 'pool': pool}), pool)


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
        self.ceph_base = ['ceph', '--conf', ceph_conf, '--id', ceph_user] + (['--keyring', keyring] if keyring else [])
        self.ceph_base += ['--connect-timeout', str(CONNECT_TIMEOUT)]

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

    def _run(self, args, pool, image=None, snapshot=None):
        """Run an rbd command that prints no JSON; map its errors like _json. Return (rc, stdout, stderr)."""
        argv = self.base + args
        what = 'rbd ' + ' '.join(args)
        rc, out, err = self.runner.run(argv, check=False, what=what)
        if rc != 0:
            text = (err or '') + (out or '')
            if _NO_POOL_RE.search(text):
                raise PoolNotFound(pool)
            if snapshot is not None and _NO_SNAP_RE.search(text):
                raise SnapshotNotFound(pool, image, snapshot)
            if image is not None and _NO_ENT_RE.search(text):
                if snapshot is not None and self.exists(pool, image):
                    raise SnapshotNotFound(pool, image, snapshot)
                raise ImageNotFound(pool, image)
            lines = [line for line in text.strip().splitlines() if line.strip()]
            last = lines[-1] if lines else 'no output'
            cls = ImageBusy if _EBUSY_RE.search(text) else CephError
            raise cls('%s failed (rc=%d): %s' % (what, rc, last), cmd=argv, rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def usage(self, pool, image):
        data = self._json(['du', image_spec(pool, image)], pool, image)
        heads = [e for e in data.get('images', []) if e.get('name') == image and not e.get('snapshot')]
        if not heads:
            raise CommandError('rbd du %s printed no entry for the image' % image_spec(pool, image), stdout=data)
        return {'provisioned': int(heads[0]['provisioned_size']), 'used': int(heads[0]['used_size'])}

    def flatten(self, pool, image):
        try:
            self._run(['flatten', '--no-progress', image_spec(pool, image)], pool, image)
        except CephError as exc:
            if _EINVAL_RE.search(exc.details.get('stderr') or '') and self.info(pool, image)['parent'] is None:
                return False
            raise
        return True

    def snapshots(self, pool, image):
        data = self._json(['snap', 'ls', image_spec(pool, image)], pool, image)
        return [{'name': e['name'], 'protected': str(e.get('protected', 'false')).lower() == 'true'} for e in data]

    def snap_protect(self, pool, image, snapshot):
        self._run(['snap', 'protect', image_spec(pool, image, snapshot)], pool, image, snapshot)

    def snap_unprotect(self, pool, image, snapshot):
        self._run(['snap', 'unprotect', image_spec(pool, image, snapshot)], pool, image, snapshot)

    def snap_remove(self, pool, image, snapshot):
        self._run(['snap', 'rm', '--no-progress', image_spec(pool, image, snapshot)], pool, image, snapshot)

    def remove(self, pool, image):
        self._run(['rm', '--no-progress', image_spec(pool, image)], pool, image)

    def _ceph_json(self, args):
        argv = self.ceph_base + args + ['--format', 'json']
        what = 'ceph ' + ' '.join(args)
        rc, out, err = self.runner.run(argv, check=False, what=what)
        if rc != 0:
            lines = [line for line in ((err or '') + (out or '')).strip().splitlines() if line.strip()]
            raise CephError('%s failed (rc=%d): %s' % (what, rc, lines[-1] if lines else 'no output'),
                            cmd=argv, rc=rc, stdout=out, stderr=err)
        try:
            return json.loads(out)
        except ValueError as exc:
            raise CommandError('%s printed output that is not JSON: %s' % (what, exc), cmd=argv, rc=rc, stdout=out,
                               stderr=err)

    def pool_space(self, pool):
        if not self.pool_exists(pool):
            raise PoolNotFound(pool)
        return parse_pool_space(self._ceph_json(['df']), self._ceph_json(['osd', 'pool', 'get-quota', pool]), pool)


def parse_pool_space(df, quota, pool):
    """``{max_avail, stored, quota_max_bytes, available}`` of ``pool`` from ``ceph df`` and ``osd pool get-quota``.

    MAX AVAIL is what Ceph still lets the pool store (after replication, the fullest OSD and the full ratio).
    A byte quota stops writes once the pool stores ``quota_max_bytes`` (Ceph then blocks them), so when one is
    set ``available`` is the smaller of MAX AVAIL and ``quota_max_bytes - stored``.
    """
    for entry in df.get('pools', []):
        if entry.get('name') == pool:
            stats = entry.get('stats', {})
            break
    else:
        raise PoolNotFound(pool)
    max_avail = int(stats.get('max_avail', 0))
    stored = int((quota or {}).get('current_num_bytes', stats.get('stored', 0)))
    qmax = int((quota or {}).get('quota_max_bytes', 0) or 0)
    available = min(max_avail, max(qmax - stored, 0)) if qmax else max_avail
    return {'max_avail': max_avail, 'stored': stored, 'quota_max_bytes': qmax, 'available': available}


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


# --- clone lifecycle helpers (rbd_flatten, rbd_image_retire) -------------------------------------------------

_UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


def check_uuid(value, option):
    """Return ``value`` lowered when it is a UUID (as OpenStack writes ids); else raise InputError naming it."""
    low = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(low, str) or not _UUID_RE.match(low):
        raise InputError('%s: %r is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)' % (option, value),
                         option=option, value=value)
    return low


def connection_args(module):
    """Validate ceph_conf/ceph_keyring of a module's params before connecting (InputError naming the option)."""
    import os
    params = module.params
    if not os.path.isfile(params['ceph_conf']):
        raise InputError('ceph_conf %s does not exist (or is not a file)' % params['ceph_conf'],
                         ceph_conf=params['ceph_conf'])
    if params.get('ceph_keyring') and not os.path.isfile(params['ceph_keyring']):
        raise InputError('ceph_keyring %s does not exist (or is not a file)' % params['ceph_keyring'],
                         ceph_keyring=params['ceph_keyring'])
    return params['backend'], params['ceph_conf'], params['ceph_user'], params.get('ceph_keyring')


def disk_state(client, pool, image, expected_parent=None, images_pool=None, snapshot=None):
    """The state of one disk in the shape of rbd_clone_verify's ``disks`` entries: ``{spec, pool, image, exists,
    is_clone, parent, overlap, size, expected_parent, parent_matches, status}`` (``parent`` without namespace,
    ``status`` one of clone, full_copy, wrong_parent, missing). With ``expected_parent`` (``pool/image@snap``) the
    parent must be exactly that; else with ``images_pool`` and ``snapshot`` it must be a snapshot of that name in
    that pool (outside any namespace); else any parent counts."""
    entry = {'spec': image_spec(pool, image), 'pool': pool, 'image': image, 'exists': False, 'is_clone': False,
             'parent': None, 'overlap': None, 'size': None, 'expected_parent': expected_parent,
             'parent_matches': None, 'status': 'missing'}
    try:
        info = client.info(pool, image)
    except (PoolNotFound, ImageNotFound):
        return entry
    parent = info['parent']
    entry.update(exists=True, size=info['size'], overlap=info['overlap'] if parent else 0, is_clone=parent is not None)
    if parent is None:
        entry['status'] = 'full_copy'
        return entry
    entry['parent'] = dict((k, parent[k]) for k in ('pool', 'image', 'snapshot', 'spec'))
    if expected_parent:
        matches = parent['spec'] == expected_parent
    elif images_pool:
        matches = parent['pool'] == images_pool and parent['snapshot'] == snapshot and not parent.get('pool_namespace')
    else:
        matches = True
    entry['parent_matches'] = matches
    entry['status'] = 'clone' if matches else 'wrong_parent'
    return entry


def flatten_waves(states):
    """Group disk states (see disk_state) into waves: a disk whose parent image is itself in ``states`` goes in a
    later wave than that parent, so a clone chain is flattened from the top down and two disks of one chain are
    never flattened at the same time. Within a wave the order is by spec. Returns a list of lists of states."""
    by_image = dict(((s['pool'], s['image']), s) for s in states)
    depth = {}

    def depth_of(state, seen=()):
        key = (state['pool'], state['image'])
        if key not in depth:
            parent = state.get('parent')
            pkey = (parent['pool'], parent['image']) if parent else None
            if pkey in by_image and pkey not in seen:
                depth[key] = depth_of(by_image[pkey], seen + (key,)) + 1
            else:
                depth[key] = 0
        return depth[key]

    waves = {}
    for state in states:
        waves.setdefault(depth_of(state), []).append(state)
    return [sorted(waves[d], key=lambda s: s['spec']) for d in sorted(waves)]


def flatten_need(overlap, used):
    """Bytes a flatten may add to the clone's pool: the part of the parent still shared (``overlap``) minus what the
    clone already holds itself (``rbd du`` USED, whole objects). An upper bound: parent areas that hold no data
    are not copied, and USED may count objects beyond the overlap."""
    return max(int(overlap or 0) - int(used or 0), 0)


def space_shortfalls(needs, spaces):
    """``needs``: {pool: bytes}; ``spaces``: {pool: pool_space()}. Return one message per pool lacking space."""
    problems = []
    for pool in sorted(needs):
        need, avail = needs[pool], spaces[pool]['available']
        if need > avail:
            quota = (', quota %d bytes with %d stored' % (spaces[pool]['quota_max_bytes'], spaces[pool]['stored'])
                     if spaces[pool]['quota_max_bytes'] else '')
            problems.append('pool %s needs %d bytes (%s) to flatten but has %d available (ceph df MAX AVAIL %d%s)'
                            % (pool, need, human_bytes(need), avail, spaces[pool]['max_avail'], quota))
    return problems


def human_bytes(value):
    value = float(value)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if abs(value) < 1024 or unit == 'TiB':
            return '%.1f %s' % (value, unit) if unit != 'B' else '%d B' % value
        value /= 1024
    return '%d B' % value  # pragma: no cover


def run_flattens(client, waves, concurrency=2, log=None, clock=None):
    """Flatten every disk of ``waves`` (see flatten_waves), wave after wave, with up to ``concurrency`` threads per
    wave each running one flatten. ``log(text)`` receives progress lines. Return a dict spec -> ``{flattened,
    seconds, error}`` (``error`` the message of a failed flatten, else None); later waves are skipped after a
    failure (their entries have ``error`` set to say so)."""
    import threading
    import time
    clock = clock or time.time
    log = log or (lambda text: None)
    results = {}
    lock = threading.Lock()
    total = sum(len(w) for w in waves)
    done = [0]

    def one(state):
        start = clock()
        try:
            flattened, error = client.flatten(state['pool'], state['image']), None
        except FastbootError as exc:
            flattened, error = False, exc.msg
        seconds = round(clock() - start, 3)
        with lock:
            results[state['spec']] = {'flattened': bool(flattened), 'seconds': seconds, 'error': error}
            done[0] += 1
            outcome = 'failed (%s)' % error if error else ('done' if flattened else 'already flat')
            log('flatten %d/%d %s: %s in %.1fs' % (done[0], total, state['spec'], outcome, seconds))

    for wave in waves:
        if any(r['error'] for r in results.values()):
            for state in wave:
                results[state['spec']] = {'flattened': False, 'seconds': 0.0,
                                          'error': 'skipped: a flatten of an earlier wave failed'}
            continue
        queue = list(wave)

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    state = queue.pop(0)
                one(state)

        threads = [threading.Thread(target=worker) for dummy in range(max(1, min(int(concurrency), len(wave))))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return results


def flat_state(state):
    """The predicted disk_state of a disk once flattened."""
    return dict(state, is_clone=False, parent=None, overlap=0, parent_matches=None, status='full_copy')


def flatten_plan(client, states):
    """Plan the flattens of disk states (see disk_state; every disk must exist). Return (entries, todo, needs):
    ``entries`` one per disk in flatten order ``{spec, action (flatten|none), wave, used_bytes, needed_bytes,
    seconds, error, before, after}`` (``after`` predicted), ``todo`` the waves of states to flatten (for
    run_flattens), ``needs`` the bytes per pool (see flatten_need)."""
    entries, todo, needs = [], [], {}
    for number, wave in enumerate(flatten_waves(states)):
        todo_wave = []
        for state in wave:
            entry = {'spec': state['spec'], 'action': 'none', 'wave': number, 'used_bytes': None, 'needed_bytes': 0,
                     'seconds': None, 'error': None, 'before': state, 'after': state}
            if state['is_clone']:
                used = client.usage(state['pool'], state['image'])['used']
                entry.update(action='flatten', used_bytes=used, needed_bytes=flatten_need(state['overlap'], used),
                             after=flat_state(state))
                needs[state['pool']] = needs.get(state['pool'], 0) + entry['needed_bytes']
                todo_wave.append(state)
            entries.append(entry)
        if todo_wave:
            todo.append(todo_wave)
    return entries, todo, needs


def apply_flattens(client, entries, todo, concurrency=2, log=None):
    """Run the planned flattens and update ``entries`` (seconds, error, real ``after`` state). Return
    (specs flattened, failure lines)."""
    done = run_flattens(client, todo, concurrency, log)
    failed = []
    for entry in entries:
        if entry['spec'] in done:
            entry.update(seconds=done[entry['spec']]['seconds'], error=done[entry['spec']]['error'])
            if entry['error']:
                failed.append('%s: %s' % (entry['spec'], entry['error']))
            before = entry['before']
            entry['after'] = disk_state(client, before['pool'], before['image'], before['expected_parent'])
    return [s for s, r in sorted(done.items()) if r['flattened']], failed


def parents_diff(entries):
    """``{before: {spec: parent spec or None}, after: {...}}`` of flatten entries, for a module's diff."""
    def parents(key):
        return dict((e['spec'], (e[key]['parent'] or {}).get('spec')) for e in entries)
    return {'before': parents('before'), 'after': parents('after')}
