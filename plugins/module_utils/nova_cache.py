# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nova's image cache (``<instances_path>/_base``) for fastboot.cloud: cache names, what uses a cache entry
(backing files of instance disks, processes holding it open), the purge decision, placing an image under its
cache name (hard link, copy or conversion, always through a temporary name and a rename) and the aggregate
image pre-cache API (compute microversion 2.81) through openstacksdk.

Nova names a cached Glance image ``sha1(image_id)`` in hex; ``<sha1>_<GiB>`` is a copy resized for a flavor,
``<sha1>.part`` / ``<sha1>.converted`` are its download and conversion temporaries, ``ephemeral_*`` and ``swap_*``
are cached blank ephemeral/swap disks.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import grp
import hashlib
import os
import pwd
import re
import stat
import time

import configparser

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError
from ansible_collections.fastboot.cloud.plugins.module_utils.qemu_img import (
    TMP_TAG, info_shared, inspect_chain, parse_info, random_suffix)


DEFAULT_INSTANCES_PATH = '/var/lib/nova/instances'
DEFAULT_SUBDIR = '_base'
PRECACHE_MICROVERSION = (2, 81)
# files of an instance directory that are never disks
NOT_DISKS = frozenset(['console.log', 'libvirt.xml', 'disk.info'])
# directories of the instances path that hold no instance disks
NOT_INSTANCE_DIRS = frozenset(['locks', 'snapshots'])
COPY_CHUNK = 1024 * 1024

SHA1 = r'[0-9a-f]{40}'
NAME_RULES = (
    ('image', re.compile(r'^(%s)$' % SHA1)),
    ('resized', re.compile(r'^(%s)_(\d+)$' % SHA1)),
    ('temporary', re.compile(r'^(%s)(?:_\d+)?\.(?:part|converted)$' % SHA1)),
    ('temporary', re.compile(r'^\.(%s)(?:_\d+)?\.%s[0-9a-f]+$' % (SHA1, re.escape(TMP_TAG)))),
    ('ephemeral', re.compile(r'^ephemeral_\d+(?:_[0-9A-Za-z]+)?$')),
    ('swap', re.compile(r'^swap_\d+$')),
)


def cache_name(image_id):
    """Nova's cache file name of a Glance image: the hex sha1 of its id."""
    if image_id is None or not str(image_id).strip():
        raise InputError('an image id is empty')
    return hashlib.sha1(str(image_id).encode('utf-8')).hexdigest()


def classify(name):
    """``{'kind': image|resized|temporary|ephemeral|swap|unknown, 'hash': sha1 or None}`` of a cache file name."""
    for kind, rule in NAME_RULES:
        match = rule.match(name)
        if match:
            return {'kind': kind, 'hash': match.group(1) if match.groups() and kind not in ('ephemeral', 'swap') else None}
    return {'kind': 'unknown', 'hash': None}


def read_images_type(nova_conf):
    """``[libvirt] images_type`` of a nova.conf (``default`` when unset, as Nova does)."""
    if not os.path.isfile(nova_conf):
        raise InputError('nova_conf %s does not exist' % nova_conf, nova_conf=nova_conf)
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(nova_conf)
    except configparser.Error as exc:
        raise InputError('nova_conf %s cannot be parsed: %s' % (nova_conf, exc), nova_conf=nova_conf)
    if parser.has_option('libvirt', 'images_type'):
        return parser.get('libvirt', 'images_type').strip() or 'default'
    return 'default'


def effective_images_type(images_type, nova_conf):
    """The images_type given, else the one of nova_conf, else None (unknown)."""
    if images_type:
        return images_type
    if nova_conf:
        return read_images_type(nova_conf)
    return None


def cache_dir_of(instances_path, subdir):
    if not subdir or '/' in subdir or subdir in ('.', '..'):
        raise InputError('cache_subdirectory %r must be a plain directory name such as _base' % (subdir,))
    return os.path.join(os.path.abspath(instances_path), subdir)


def check_instances_path(instances_path):
    if not os.path.exists(instances_path):
        raise InputError('instances_path %s does not exist (is this a compute host? Nova\'s [DEFAULT] instances_path '
                         'is /var/lib/nova/instances by default)' % instances_path, instances_path=instances_path)
    if not os.path.isdir(instances_path):
        raise InputError('instances_path %s is not a directory' % instances_path, instances_path=instances_path)


# ---------------------------------------------------------------- what is in the cache, what uses it

def list_cache(cache_dir):
    """The entries of the cache directory, sorted by name (empty when it does not exist)."""
    if not os.path.isdir(cache_dir):
        return []
    entries = []
    for name in sorted(os.listdir(cache_dir)):
        path = os.path.join(cache_dir, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        entry = classify(name)
        entry.update(name=name, path=path, regular=stat.S_ISREG(st.st_mode), size=st.st_size,
                     allocated=st.st_blocks * 512, nlink=st.st_nlink, mtime=st.st_mtime, key=(st.st_dev, st.st_ino))
        entries.append(entry)
    return entries


def find_disks(instances_path, cache_dir):
    """Every regular file under the instances path that may be a disk (the cache itself excluded)."""
    disks = []
    cache_dir = os.path.realpath(cache_dir)
    for top, dirs, files in os.walk(instances_path):
        if os.path.realpath(top) == os.path.realpath(instances_path):
            dirs[:] = [d for d in dirs if d not in NOT_INSTANCE_DIRS]
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(top, d)) != cache_dir)
        for name in sorted(files):
            path = os.path.join(top, name)
            if name in NOT_DISKS or not os.path.isfile(path) or os.path.islink(path):
                continue
            disks.append(path)
    return disks


def file_key(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def inspect_disks(runner, disks):
    """Backing chains of the disks (qemu-img info -U --backing-chain).

    Returns ``(users, broken)``: ``users`` maps a (device, inode) key and a normalised path of every backing file
    to the disks that use it; ``broken`` lists ``{'disk', 'backing_file', 'error'}`` for disks whose chain is
    incomplete (``backing_file`` is the missing file) or that qemu-img cannot read (``backing_file`` None).
    """
    users, broken = {}, []
    for disk in disks:
        try:
            result = inspect_chain(runner, disk)
        except CommandError as exc:
            lines = (exc.stderr or exc.msg or '').strip().splitlines()
            broken.append({'disk': disk, 'backing_file': None,
                           'error': 'qemu-img cannot read it: %s' % (lines[-1] if lines else exc.msg)})
            continue
        for backing in result['chain']:
            for key in (backing, os.path.realpath(backing), file_key(backing)):
                if key is not None:
                    users.setdefault(key, [])
                    if disk not in users[key]:
                        users[key].append(disk)
        if result['missing']:
            broken.append({'disk': disk, 'backing_file': result['missing'], 'error': result['error']})
    return users, broken


def _parse_dev(text):
    major, minor = text.split(':')
    return os.makedev(int(major, 16), int(minor, 16))


def scan_open_files(proc='/proc'):
    """(device, inode) of every file a process holds open or has mapped, to the processes (``pid (comm)``).

    Returns ``(holders, unreadable)``; ``unreadable`` counts processes whose fds could not be read (not root?).
    """
    holders, unreadable = {}, 0
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return holders, 0
    own = str(os.getpid())
    for pid in pids:
        if pid == own:
            continue
        base = os.path.join(proc, pid)
        try:
            with open(os.path.join(base, 'comm')) as handle:
                label = '%s (%s)' % (pid, handle.read().strip())
        except (IOError, OSError):
            label = pid
        keys = set()
        try:
            fds = os.listdir(os.path.join(base, 'fd'))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                unreadable += 1
            continue
        for fd in fds:
            try:
                st = os.stat(os.path.join(base, 'fd', fd))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                keys.add((st.st_dev, st.st_ino))
        try:
            with open(os.path.join(base, 'maps')) as handle:
                for line in handle:
                    fields = line.split(None, 5)
                    if len(fields) == 6 and fields[4] != '0':
                        try:
                            keys.add((_parse_dev(fields[3]), int(fields[4])))
                        except ValueError:
                            continue
        except (IOError, OSError):
            pass
        for key in keys:
            holders.setdefault(key, []).append(label)
    return holders, unreadable


def might_be(entry, missing):
    """Whether the cache entry could be the missing backing file ``missing`` (same name, or same image hash)."""
    name = os.path.basename(missing)
    if entry['name'] == name:
        return True
    other = classify(name)
    return bool(entry['hash'] and other['hash'] and entry['hash'] == other['hash'])


def decide_purge(entries, users, broken, holders, now=None, min_age=0, glance_hashes=None, stop_reason=None):
    """Split cache entries into (remove, keep), each entry with a ``reason``. Pure: all facts are arguments.

    ``users``/``broken`` come from inspect_disks, ``holders`` from scan_open_files, ``glance_hashes`` is the set of
    cache names of the images still in Glance (None: not filtering on Glance); ``stop_reason`` keeps everything.
    """
    now = time.time() if now is None else now
    remove, keep = [], []
    for entry in entries:
        reasons = []
        path = entry['path']
        if not entry['regular']:
            reasons.append('not a regular file')
        elif entry['kind'] == 'unknown':
            reasons.append('not a Nova cache name')
        disks = []
        for key in (path, os.path.realpath(path), entry['key']):
            for disk in users.get(key, []):
                if disk not in disks:
                    disks.append(disk)
        if disks:
            reasons.append('backing file of %s' % ', '.join(disks))
        suspects = [b['disk'] for b in broken if b['backing_file'] and might_be(entry, b['backing_file'])]
        if suspects:
            reasons.append('could be the missing backing file of %s' % ', '.join(suspects))
        if holders.get(entry['key']):
            reasons.append('held open by process %s' % ', '.join(holders[entry['key']]))
        age = int(now - entry['mtime'])
        if min_age and age < min_age:
            reasons.append('modified %d s ago, younger than min_age_seconds=%d' % (max(age, 0), min_age))
        if glance_hashes is not None and entry['kind'] not in ('unknown',):
            if entry['hash'] is None:
                reasons.append('a cached %s disk, not a Glance image (only_deleted_images)' % entry['kind'])
            elif entry['hash'] in glance_hashes:
                reasons.append('its image is still in Glance')
        if stop_reason:
            reasons.append(stop_reason)
        item = dict((k, entry[k]) for k in ('name', 'path', 'kind', 'size', 'allocated'))
        if disks:
            item['disks'] = disks
        if reasons:
            item['reason'] = '; '.join(reasons)
            keep.append(item)
            continue
        what = 'cached image' if entry['kind'] == 'image' else entry['kind'] + ' entry'
        why = ['%s not used as a backing file by any disk and not held open' % what]
        if glance_hashes is not None:
            why.append('its image is no longer in Glance')
        if min_age:
            why.append('modified %d s ago' % age)
        item['reason'] = '; '.join(why)
        item['freed'] = entry['allocated'] if entry['nlink'] <= 1 else 0
        remove.append(item)
    return remove, keep


# ---------------------------------------------------------------- Glance and the compute API (openstacksdk)

def import_openstack():
    """(openstacksdk, None), imported only when a cloud is used, or (None, why it cannot be imported)."""
    try:
        import openstack  # pylint: disable=import-outside-toplevel
    except Exception as exc:  # ImportError, or a broken dependency (cryptography/pyOpenSSL mismatch) raising on import
        return None, '%s: %s' % (type(exc).__name__, exc)
    return openstack, None


def connect(cloud):
    """An openstacksdk connection to the clouds.yaml entry ``cloud``."""
    openstack, why = import_openstack()
    if openstack is None:
        raise InputError('the Python library openstacksdk is needed to talk to the cloud %r and cannot be imported (%s): '
                         'install it (pip install openstacksdk, or package python3-openstacksdk) on the managed host'
                         % (cloud, why))
    try:
        return openstack.connect(cloud=cloud)
    except Exception as exc:  # openstacksdk raises many types for a bad clouds.yaml
        raise InputError('cannot connect to the cloud %r (clouds.yaml): %s' % (cloud, exc), cloud=cloud)


def glance_image_ids(conn):
    """Ids of the images Glance lists (run as admin to see every project's images)."""
    try:
        return [image.id for image in conn.image.images()]
    except Exception as exc:
        raise CommandError('listing the Glance images failed: %s' % exc)


def _version_tuple(text):
    if not text:
        return None
    if isinstance(text, tuple):
        return text
    major, minor = str(text).split('.')
    return int(major), int(minor)


def precache(conn, aggregates, image_ids, check_mode=False):
    """Request the images' pre-caching on each aggregate (``POST /os-aggregates/{id}/images``, microversion 2.81).

    Returns a list of ``{'aggregate', 'id', 'images'}``. Raises InputError when the compute API is older than 2.81
    or an aggregate does not exist. The API is asynchronous: Nova's computes download in the background.
    """
    try:
        data = conn.compute.get_endpoint_data()
        max_version = _version_tuple(getattr(data, 'max_microversion', None))
    except Exception as exc:
        raise CommandError('reading the compute API versions failed: %s' % exc)
    if max_version is None or max_version < PRECACHE_MICROVERSION:
        raise InputError('the compute API supports microversions up to %s, the image pre-cache API needs 2.81 '
                         '(Nova Ussuri or later): use method=offline'
                         % ('%d.%d' % max_version if max_version else 'none'))
    requests = []
    for name in aggregates:
        try:
            aggregate = conn.compute.find_aggregate(name, ignore_missing=True)
        except Exception as exc:
            raise CommandError('looking up the aggregate %s failed: %s' % (name, exc))
        if aggregate is None:
            raise InputError('host aggregate %s does not exist' % name, aggregate=name)
        requests.append({'aggregate': name, 'id': aggregate.id, 'images': list(image_ids)})
    if not check_mode:
        for request in requests:
            try:
                conn.compute.aggregate_precache_images(request['id'], request['images'])
            except Exception as exc:
                raise CommandError('the image pre-cache request on aggregate %s failed: %s' % (request['aggregate'], exc),
                                   done=[r['aggregate'] for r in requests[:requests.index(request)]])
    return requests


# ---------------------------------------------------------------- placing an image under its cache name

def resolve_owner(owner, group):
    """(uid, gid) from names or numbers."""
    def lookup(value, getter, what):
        if value is None or str(value) == '':
            return -1
        if str(value).isdigit():
            return int(value)
        try:
            return getter(str(value))[2]
        except KeyError:
            raise InputError('%s %s does not exist on this host (set the %s option)' % (what, value, what))
    return lookup(owner, pwd.getpwnam, 'owner'), lookup(group, grp.getgrnam, 'group')


def parse_mode(mode):
    try:
        value = int(str(mode), 8)
    except ValueError:
        raise InputError('mode %r is not an octal file mode such as 0644' % (mode,))
    if value > 0o7777:
        raise InputError('mode %r is not an octal file mode such as 0644' % (mode,))
    return value


def needs_attributes(path, uid, gid, mode):
    st = os.stat(path)
    return (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid) or stat.S_IMODE(st.st_mode) != mode


def set_attributes(path, uid, gid, mode):
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sparse_copy(src, dest):
    """Copy ``src`` into the new file ``dest`` without writing runs of zeros (holes stay holes), then fsync it."""
    zero = bytes(COPY_CHUNK)
    with open(src, 'rb') as reader:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            size = 0
            while True:
                chunk = reader.read(COPY_CHUNK)
                if not chunk:
                    break
                if chunk == zero[:len(chunk)]:
                    os.lseek(fd, len(chunk), os.SEEK_CUR)
                else:
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                size += len(chunk)
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)


def tmp_name(cache_dir, name):
    return os.path.join(cache_dir, '.%s.%s%s' % (name, TMP_TAG, random_suffix()))


def existing_entry(runner, path):
    """Format and virtual size of an existing cache entry (read without its lock)."""
    try:
        return parse_info(info_shared(runner, path))
    except CommandError:
        return None


def no_space(exc):
    text = '%s %s' % (getattr(exc, 'stderr', '') or '', getattr(exc, 'msg', '') or exc)
    return getattr(exc, 'errno', None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or 'No space left' in text \
        or 'File too large' in text or 'Disk quota exceeded' in text
