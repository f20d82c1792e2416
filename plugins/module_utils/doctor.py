# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cross-service doctor of a Ceph-backed OpenStack cloud (rbd_service_facts, cloud_doctor).

Three layers, each testable on its own:

* **reading** a host's service configuration the way the services read it: ``glance-api.conf`` (RBD stores of
  ``enabled_backends`` or the legacy ``[glance_store] stores``), ``nova.conf`` and the files read after it
  (Debian's ``nova-compute.conf``: the last value wins, as in oslo.config), ``cinder.conf`` (every enabled
  backend whose ``volume_driver`` is the RBD driver, with ``[backend_defaults]``), and each service's
  ``ceph.conf`` (``fsid``, ``mon_host``, where the keyring of its cephx user is);
* **probing** Ceph as each service's user (its ceph.conf, its keyring, its id), read-only: connect and read the
  cluster fsid; pool existence; read access = ``stat`` of the pool's ``rbd_directory`` object; write access =
  removing an object that does not exist (a random name): the OSD checks the caps before it looks the object up,
  so ``ENOENT`` means "may write" and ``EPERM`` "may not", and nothing is changed either way. Optionally the
  caps as ``ceph auth get`` prints them (admin access) are parsed (``osd_access``);
* **comparing** the facts of every host (and the Glance images, through openstacksdk) into findings
  ``{check, status: ok|warn|fail, service, host, subject, detail, fix}`` (``evaluate``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import hashlib
import os
import re
import uuid as uuidlib

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, FastbootError
from ansible_collections.fastboot.cloud.plugins.module_utils.ini import read_values

try:
    import rados
    HAS_RADOS = True
except ImportError:  # pragma: no cover - depends on the host
    rados = None
    HAS_RADOS = False

SERVICES = ('glance', 'nova', 'cinder')
DEFAULT_CEPH_CONF = '/etc/ceph/ceph.conf'
DEFAULT_KEYRINGS = ('/etc/ceph/$cluster.$name.keyring', '/etc/ceph/$cluster.keyring', '/etc/ceph/keyring',
                    '/etc/ceph/keyring.bin')
RBD_DRIVER_RE = re.compile(r'(^|\.)rbd\.RBDDriver$')
TRUE_WORDS = ('true', '1', 'yes', 'on', 'y', 't')
FALSE_WORDS = ('false', '0', 'no', 'off', 'n', 'f')
PROBE_PREFIX = 'fastboot-doctor-probe-'
STATUSES = ('ok', 'warn', 'fail')


# ------------------------------------------------------------------------------------------------ reading

def read_oslo(paths):
    """Read oslo.config files in order; later files win. Returns ({section: {key: value}}, [files read]).

    Missing files are skipped (the caller decides whether that matters); a value is the last one written.
    """
    merged, read = {}, []
    for path in paths:
        if not path or not os.path.isfile(path):
            continue
        with open(path) as handle:
            text = handle.read()
        read.append(path)
        for section, keys in read_values(text).items():
            target = merged.setdefault(section, {})
            for key, values in keys.items():
                target[key.replace('-', '_')] = values[-1].strip() if values else ''
    return merged, read


def opt(conf, section, key, default=None):
    """One option of a merged oslo config; an empty value counts as unset."""
    value = conf.get(section, {}).get(key)
    if value is None or value == '':
        return default
    return value


def oslo_bool(value, default=False):
    if value is None or value == '':
        return default
    low = str(value).strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return default


def _csv(value):
    return [item.strip() for item in (value or '').split(',') if item.strip()]


def glance_backends(conf):
    """The RBD stores of glance-api.conf: list of ``{backend, section, pool, user, ceph_conf}`` plus the
    ``[DEFAULT]`` switches in a second dict ``{show_image_direct_url, show_multiple_locations, stores}``."""
    stores = {}
    enabled = opt(conf, 'DEFAULT', 'enabled_backends')
    if enabled:
        for item in _csv(enabled):
            name, dummy, kind = item.partition(':')
            stores[name.strip()] = kind.strip()
        sections = [(name, name) for name, kind in stores.items() if kind == 'rbd']
    else:
        legacy = _csv(opt(conf, 'glance_store', 'stores', 'file,http'))
        stores = dict((s, s) for s in legacy)
        sections = [('rbd', 'glance_store')] if 'rbd' in legacy or opt(conf, 'glance_store', 'default_store') == 'rbd' \
            else []
    backends = []
    for name, section in sections:
        backends.append(dict(
            backend=name, section=section,
            pool=opt(conf, section, 'rbd_store_pool', 'images'),
            user=opt(conf, section, 'rbd_store_user', 'admin'),
            ceph_conf=opt(conf, section, 'rbd_store_ceph_conf', DEFAULT_CEPH_CONF)))
    switches = dict(show_image_direct_url=oslo_bool(opt(conf, 'DEFAULT', 'show_image_direct_url')),
                    show_multiple_locations=oslo_bool(opt(conf, 'DEFAULT', 'show_multiple_locations')),
                    stores=stores)
    return backends, switches


def nova_settings(conf):
    """What nova-compute uses of nova.conf for RBD and its image cache."""
    state_path = opt(conf, 'DEFAULT', 'state_path', '/var/lib/nova')
    instances_path = opt(conf, 'DEFAULT', 'instances_path', '$state_path/instances').replace('$state_path', state_path)
    subdir = opt(conf, 'image_cache', 'subdirectory_name') or opt(conf, 'DEFAULT', 'image_cache_subdirectory_name', '_base')
    return dict(
        backend='libvirt', section='libvirt',
        images_type=opt(conf, 'libvirt', 'images_type', 'default'),
        pool=opt(conf, 'libvirt', 'images_rbd_pool', 'rbd'),
        user=opt(conf, 'libvirt', 'rbd_user', 'admin'),
        ceph_conf=opt(conf, 'libvirt', 'images_rbd_ceph_conf', DEFAULT_CEPH_CONF),
        secret_uuid=(opt(conf, 'libvirt', 'rbd_secret_uuid') or '').lower() or None,
        never_download_image_if_on_rbd=oslo_bool(opt(conf, 'workarounds', 'never_download_image_if_on_rbd')),
        instances_path=instances_path,
        cache_dir=os.path.join(instances_path, subdir))


def cinder_backends(conf):
    """The RBD backends of cinder.conf: list of ``{backend, section, pool, user, ceph_conf, secret_uuid}``.
    Returns (backends, enabled backend names)."""
    enabled = _csv(opt(conf, 'DEFAULT', 'enabled_backends'))
    sections = enabled or ['DEFAULT']
    backends = []
    for section in sections:
        def get(key, default=None, _s=section):
            return opt(conf, _s, key, opt(conf, 'backend_defaults', key, default))
        if not RBD_DRIVER_RE.search(get('volume_driver', '') or ''):
            continue
        backends.append(dict(
            backend=section, section=section,
            pool=get('rbd_pool', 'rbd'), user=get('rbd_user', 'admin'),
            ceph_conf=get('rbd_ceph_conf', DEFAULT_CEPH_CONF),
            secret_uuid=(get('rbd_secret_uuid') or '').lower() or None))
    return backends, enabled


def _ceph_key(key):
    return '_'.join(key.strip().lower().replace('-', '_').split()).replace(' ', '_')


def parse_ceph_conf(text):
    """ceph.conf text -> {section: {key: value}} with Ceph's key spelling folded (spaces, dashes -> ``_``)."""
    result, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1].strip()
            result.setdefault(section, {})
            continue
        if section is None or '=' not in line:
            continue
        key, dummy, value = line.partition('=')
        value = re.split(r'\s[#;]', value, maxsplit=1)[0].strip().strip('"')
        result[section][_ceph_key(key)] = value
    return result


def read_ceph_conf(path):
    """``{path, exists, fsid, mon_host, sections}`` of a ceph.conf (fsid/mon_host from [global])."""
    info = dict(path=path, exists=os.path.isfile(path), fsid=None, mon_host=None, sections={})
    if not info['exists']:
        return info
    with open(path) as handle:
        info['sections'] = parse_ceph_conf(handle.read())
    glob = info['sections'].get('global', {})
    info['fsid'] = (glob.get('fsid') or '').lower() or None
    info['mon_host'] = glob.get('mon_host') or None
    return info


def cluster_name(conf_path):
    """The cluster name Ceph derives from a conf file name (``<cluster>.conf``)."""
    base = os.path.basename(conf_path or DEFAULT_CEPH_CONF)
    return base[:-5] if base.endswith('.conf') and len(base) > 5 else 'ceph'


def keyring_candidates(sections, user, cluster='ceph'):
    """The keyring files librados tries for client.<user>: the ``keyring`` option of [client.<user>], [client]
    or [global] (comma-separated, ``$cluster``/``$name``/``$id``/``$type`` expanded), else Ceph's defaults."""
    name = 'client.' + user
    value = None
    for section in (name, 'client', 'global'):
        value = sections.get(section, {}).get('keyring')
        if value:
            break
    paths = re.split(r'[,;\s]+', value.strip()) if value else list(DEFAULT_KEYRINGS)
    out = []
    for path in paths:
        if not path:
            continue
        path = (path.replace('$cluster', cluster).replace('$name', name).replace('$id', user)
                .replace('$type', 'client'))
        out.append(path)
    return out


def read_keyring_key(path, entity):
    """The ``key`` of ``[entity]`` in a keyring file, or None."""
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            sections = parse_ceph_conf(handle.read())
    except (IOError, OSError):
        return None
    return sections.get(entity, {}).get('key') or None


def find_keyring(sections, user, cluster):
    """(first existing keyring file holding client.<user>, list of candidates tried)."""
    candidates = keyring_candidates(sections, user, cluster)
    for path in candidates:
        if read_keyring_key(path, 'client.' + user):
            return path, candidates
    return None, candidates


def _with_ceph(entry):
    """Add what the entry's ceph.conf says (fsid, mon_host) and which keyring its user would use."""
    info = read_ceph_conf(entry['ceph_conf'])
    entry['ceph_conf_info'] = dict((k, info[k]) for k in ('path', 'exists', 'fsid', 'mon_host'))
    entry['keyring'], entry['keyring_candidates'] = find_keyring(info['sections'], entry['user'],
                                                                 cluster_name(entry['ceph_conf']))
    return entry


def read_services(services, glance_conf, nova_conf, nova_later_files, cinder_conf, images_pool):
    """The service entries of this host, before any probe.

    ``services`` empty means every service whose config file exists; a service asked for whose file is missing
    gives an entry with ``config_error``. Each entry: ``{service, backend, files, rbd, pool, user, ceph_conf,
    ceph_conf_info, keyring, keyring_candidates, ...}`` plus the service's own switches.
    """
    paths = dict(glance=glance_conf, nova=nova_conf, cinder=cinder_conf)
    wanted = list(services) if services else [s for s in SERVICES if paths[s] and os.path.isfile(paths[s])]
    entries = []
    for service in wanted:
        path = paths[service]
        if not path or not os.path.isfile(path):
            entries.append(dict(service=service, backend=None, files=[], rbd=False,
                                config_error='%s configuration file %s does not exist' % (service, path)))
            continue
        if service == 'glance':
            conf, files = read_oslo([path])
            backends, switches = glance_backends(conf)
            if not backends:
                entries.append(dict(service='glance', backend=None, files=files, rbd=False, stores=switches['stores']))
            for backend in backends:
                entry = dict(service='glance', files=files, rbd=True, **backend)
                entry.update(switches)
                entries.append(_with_ceph(entry))
        elif service == 'nova':
            conf, files = read_oslo([path] + list(nova_later_files or []))
            entry = dict(service='nova', files=files, **nova_settings(conf))
            entry['rbd'] = entry['images_type'] == 'rbd'
            entry['images_pool'] = images_pool
            if entry['rbd']:
                _with_ceph(entry)
                entry['image_cache'] = cache_state(entry['cache_dir'])
            entries.append(entry)
        else:
            conf, files = read_oslo([path])
            backends, enabled = cinder_backends(conf)
            if not backends:
                entries.append(dict(service='cinder', backend=None, files=files, rbd=False, enabled_backends=enabled))
            for backend in backends:
                entries.append(_with_ceph(dict(service='cinder', files=files, rbd=True, images_pool=images_pool,
                                               **backend)))
    return entries


def probe_pools(entry):
    """(pools to read, pools to read and write) for an entry."""
    if entry['service'] == 'glance':
        return [entry['pool']], [entry['pool']]
    return [entry['images_pool'], entry['pool']], [entry['pool']]


# ------------------------------------------------------------------------------------------------ caps

def osd_access(caps_osd, pool):
    """What an OSD cap string grants on ``pool`` (default namespace, whole pool): ``{read, write}``.

    Understands ``allow *``, ``allow r|rw|rwx [pool[=]X]`` in either order, ``profile rbd [pool=X]``,
    ``profile rbd-read-only [pool=X]``; grants limited to an object_prefix, a namespace or an application
    tag other than rbd do not count for the whole pool.
    """
    read = write = False
    for grant in re.split(r'[,;]', caps_osd or ''):
        words = grant.replace('=', ' = ').split()
        if not words:
            continue
        opts = {}
        spec = set()
        idx = 1
        kind = words[0]
        profile = None
        if kind == 'profile' and len(words) > 1:
            profile = words[1]
            idx = 2
        elif kind != 'allow':
            continue
        while idx < len(words):
            word = words[idx]
            if word in ('pool', 'namespace', 'object_prefix', 'tag', 'network'):
                nxt = idx + 1
                if nxt < len(words) and words[nxt] == '=':
                    nxt += 1
                if word == 'tag':  # tag <app> <key>=<value>
                    opts['tag'] = words[idx + 1] if idx + 1 < len(words) else ''
                    idx += 5
                    continue
                opts[word] = words[nxt] if nxt < len(words) else ''
                idx = nxt + 1
                continue
            if word == '*' or re.match(r'^[rwx]+$', word) or word in ('class-read', 'class-write'):
                spec.add(word)
            idx += 1
        if opts.get('object_prefix') or opts.get('namespace') or (opts.get('tag') not in (None, 'rbd')):
            continue
        if opts.get('pool') not in (None, '*', pool):
            continue
        if profile == 'rbd':
            read = write = True
        elif profile == 'rbd-read-only':
            read = True
        elif profile is None:
            if '*' in spec or any('r' in s for s in spec if re.match(r'^[rwx]+$', s)):
                read = True
            if '*' in spec or any('w' in s for s in spec if re.match(r'^[rwx]+$', s)):
                write = True
    return dict(read=read, write=write)


# ------------------------------------------------------------------------------------------------ probing

class Probe(object):
    """Read-only access probes as one cephx identity. ``connect()`` then the other methods; ``close()``."""

    fsid = None

    def close(self):
        pass

    def pool_exists(self, pool):
        raise NotImplementedError

    def can_read(self, pool):
        raise NotImplementedError

    def can_write(self, pool):
        raise NotImplementedError


class PythonProbe(Probe):
    """Probes through python3-rados, as the services themselves connect (conffile + rados_id)."""

    name = 'python'

    def __init__(self, conf, user, timeout):
        self.conf, self.user, self.timeout = conf, user, int(timeout)
        self.cluster = None

    def connect(self):
        opts = {'rados_mon_op_timeout': str(self.timeout), 'rados_osd_op_timeout': str(self.timeout),
                'client_mount_timeout': str(self.timeout)}
        try:
            self.cluster = rados.Rados(conffile=self.conf, rados_id=self.user, conf=opts)
            self.cluster.connect(timeout=self.timeout)
            self.fsid = str(self.cluster.get_fsid()).lower()
        except rados.Error as exc:
            self.close()
            raise FastbootError('cannot connect to Ceph as client.%s with %s: %s' % (self.user, self.conf, exc))
        return self.fsid

    def close(self):
        if self.cluster is not None:
            try:
                self.cluster.shutdown()
            finally:
                self.cluster = None

    def pool_exists(self, pool):
        return bool(self.cluster.pool_exists(pool))

    def _op(self, pool, func):
        """True when the OSD let the op through (success or ENOENT), False on EPERM/EACCES."""
        ioctx = self.cluster.open_ioctx(pool)
        try:
            func(ioctx)
            return True, None
        except rados.ObjectNotFound:
            return True, None
        except (rados.PermissionError, rados.PermissionDeniedError) as exc:
            return False, str(exc)
        finally:
            ioctx.close()

    def can_read(self, pool):
        return self._op(pool, lambda io: io.stat('rbd_directory'))

    def can_write(self, pool):
        name = PROBE_PREFIX + uuidlib.uuid4().hex
        return self._op(pool, lambda io: io.remove_object(name))


_EPERM_RE = re.compile(r'\((1|13)\) (Operation not permitted|Permission denied)')
_ENOENT_RE = re.compile(r'\(2\) No such file or directory')


class CliProbe(Probe):
    """The same probes through the ``ceph`` and ``rados`` CLIs (no keyring argument: ceph.conf decides)."""

    name = 'cli'

    def __init__(self, runner, conf, user, timeout):
        self.runner, self.conf, self.user, self.timeout = runner, conf, user, int(timeout)
        self._pools = None

    def _common(self):
        return ['--conf', self.conf, '--name', 'client.' + self.user]

    def connect(self):
        argv = ['ceph'] + self._common() + ['--connect-timeout', str(self.timeout), '--format', 'json', 'fsid']
        try:
            data = self.runner.run_json(argv, what='ceph fsid as client.%s' % self.user)
        except CommandError as exc:
            raise FastbootError('cannot connect to Ceph as client.%s with %s: %s' % (self.user, self.conf, exc.msg))
        self.fsid = str(data.get('fsid') if isinstance(data, dict) else data).lower()
        return self.fsid

    def pool_exists(self, pool):
        if self._pools is None:
            argv = ['ceph'] + self._common() + ['--connect-timeout', str(self.timeout), '--format', 'json',
                                                'osd', 'pool', 'ls']
            self._pools = set(self.runner.run_json(argv, what='ceph osd pool ls'))
        return pool in self._pools

    def _op(self, pool, args):
        argv = ['rados'] + self._common() + ['--client-mount-timeout', str(self.timeout), '-p', pool] + args
        rc, out, err = self.runner.run(argv, check=False)
        text = (err or '') + (out or '')
        if rc == 0 or _ENOENT_RE.search(text):
            return True, None
        if _EPERM_RE.search(text):
            return False, text.strip().splitlines()[-1]
        raise CommandError('rados %s failed (rc=%d): %s' % (' '.join(args), rc, text.strip()), cmd=argv, rc=rc,
                           stdout=out, stderr=err)

    def can_read(self, pool):
        return self._op(pool, ['stat', 'rbd_directory'])

    def can_write(self, pool):
        return self._op(pool, ['rm', PROBE_PREFIX + uuidlib.uuid4().hex])


def probe_ceph(probe, reads, writes):
    """Run the probes: ``{connected, error, fsid, pools: {name: {exists, read, write, error}}}``.

    ``reads``/``writes`` are the pools to test for read / read+write access."""
    result = dict(connected=False, error=None, fsid=None, backend=getattr(probe, 'name', None), pools={})
    try:
        result['fsid'] = probe.connect()
        result['connected'] = True
        for pool in list(reads) + [p for p in writes if p not in reads]:
            entry = dict(exists=None, read=None, write=None, error=None)
            result['pools'][pool] = entry
            try:
                entry['exists'] = probe.pool_exists(pool)
                if not entry['exists']:
                    continue
                entry['read'], err = probe.can_read(pool)
                if pool in writes:
                    entry['write'], err2 = probe.can_write(pool)
                    err = err or err2
                entry['error'] = err
            except FastbootError as exc:
                entry['error'] = exc.msg
            except Exception as exc:  # a rados.Error of any kind: report it, keep probing the rest
                entry['error'] = '%s: %s' % (type(exc).__name__, exc)
    except FastbootError as exc:
        result['error'] = exc.msg
    finally:
        probe.close()
    return result


def cache_state(cache_dir, sample=10):
    """``{path, exists, entries, bytes, names}`` of Nova's image cache directory."""
    state = dict(path=cache_dir, exists=os.path.isdir(cache_dir), entries=0, bytes=0, names=[])
    if not state['exists']:
        return state
    names = sorted(os.listdir(cache_dir))
    state['entries'] = len(names)
    state['names'] = names[:sample]
    state['all_names'] = names[:1000]
    for name in names:
        try:
            state['bytes'] += os.lstat(os.path.join(cache_dir, name)).st_size
        except OSError:
            pass
    return state


# ------------------------------------------------------------------------------------------------ images

RBD_URL_RE = re.compile(r'^rbd://([^/]+)/([^/]+)/([^/]+)/([^/]+)$')


def parse_rbd_url(url):
    """``rbd://<fsid>/<pool>/<image>/<snap>`` -> dict, or None for anything else."""
    match = RBD_URL_RE.match(url or '')
    if not match:
        return None
    return dict(fsid=match.group(1).lower(), pool=match.group(2), image=match.group(3), snapshot=match.group(4))


def image_dict(image):
    """An openstacksdk Image (or a dict) -> the plain dict the comparison uses."""
    get = image.get if isinstance(image, dict) else (lambda k, d=None: getattr(image, k, d))
    locations = get('locations') or []
    return dict(id=get('id'), name=get('name'), disk_format=get('disk_format'), status=get('status'),
                direct_url=get('direct_url'),
                location_urls=[loc.get('url') for loc in locations if isinstance(loc, dict) and loc.get('url')])


# ------------------------------------------------------------------------------------------------ comparing

def finding(check, status, service, host, detail, fix=None, subject=None):
    return dict(check=check, status=status, service=service, host=host, subject=subject, detail=detail,
                fix=fix if status != 'ok' else None)


def _entries(facts):
    for host_facts in facts or []:
        if not isinstance(host_facts, dict):
            continue
        host = host_facts.get('host')
        for entry in host_facts.get('services') or []:
            yield host, entry


def reference_fsid(facts):
    """The cluster fsid the cloud should agree on: Glance's (it writes the image locations), else the one most
    services see. Returns (fsid or None, who)."""
    seen = []
    for host, entry in _entries(facts):
        ceph = entry.get('ceph') or {}
        if ceph.get('fsid'):
            seen.append((entry['service'], host, ceph['fsid']))
    for service, host, fsid in seen:
        if service == 'glance':
            return fsid, 'glance on %s' % host
    if not seen:
        return None, None
    counts = {}
    for dummy, dummy2, fsid in seen:
        counts[fsid] = counts.get(fsid, 0) + 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return best, 'most services'


def glance_pools(facts):
    return sorted(set(e['pool'] for dummy, e in _entries(facts) if e['service'] == 'glance' and e.get('rbd')))


FIX_KEYS = 'run the role fastboot.cloud.ceph_rbd (tag ceph_rbd_keys) or `ceph auth caps client.%s ...`'


def _service_findings(host, entry, ref_fsid, ref_who, gpools, out):
    service = entry['service']
    subject = entry.get('backend')
    label = service if not subject or service == 'nova' else '%s backend %s' % (service, subject)

    def add(check, status, detail, fix=None):
        out.append(finding(check, status, service, host, detail, fix, subject))

    if entry.get('config_error'):
        add('config', 'fail', entry['config_error'], 'fix the path option of rbd_service_facts or install/configure '
            '%s on this host' % service)
        return
    if not entry.get('rbd'):
        if service == 'nova':
            add('config', 'warn', 'nova-compute uses images_type=%s: ephemeral disks are local copies of the image, '
                'not RBD clones' % entry.get('images_type'),
                'set [libvirt] images_type=rbd (role fastboot.cloud.nova_rbd) if this compute should clone from Ceph')
        elif service == 'glance':
            add('config', 'fail', 'glance-api has no RBD store (stores: %s): images cannot be cloned'
                % (', '.join(sorted((entry.get('stores') or {}).keys())) or 'none'),
                'configure the RBD store (role fastboot.cloud.glance_rbd)')
        else:
            add('config', 'warn', 'cinder has no RBD backend among enabled_backends (%s): volumes are not clones'
                % (', '.join(entry.get('enabled_backends') or []) or 'none'),
                'configure an RBD backend (role fastboot.cloud.cinder_rbd)')
        return
    add('config', 'ok', '%s uses RBD: pool %s as client.%s with %s (%s)' % (
        label, entry['pool'], entry['user'], entry['ceph_conf'], ', '.join(entry.get('files') or [])))

    conf = entry.get('ceph_conf_info') or {}
    if not conf.get('exists'):
        add('ceph_conf', 'fail', '%s: ceph.conf %s does not exist' % (label, entry['ceph_conf']),
            'write the Ceph client configuration (role fastboot.cloud.ceph_rbd, tag ceph_rbd_client_config)')
        return
    ceph = entry.get('ceph') or {}
    if not entry.get('keyring'):
        add('ceph_conf', 'warn' if ceph.get('connected') else 'fail', '%s: no keyring holding client.%s (tried %s)' % (
            label, entry['user'], ', '.join(entry.get('keyring_candidates') or [])),
            'write the keyring of client.%s (role fastboot.cloud.ceph_rbd, tag ceph_rbd_client_config)' % entry['user'])
    else:
        add('ceph_conf', 'ok', '%s: %s (fsid %s, mon_host %s), keyring %s' % (
            label, entry['ceph_conf'], conf.get('fsid'), conf.get('mon_host'), entry['keyring']))
    if not ceph.get('connected'):
        add('ceph_connect', 'fail', '%s cannot connect to Ceph as client.%s with %s (mon_host %s, fsid %s): %s' % (
            label, entry['user'], entry['ceph_conf'], conf.get('mon_host'), conf.get('fsid'), ceph.get('error')),
            'check mon_host/fsid in %s against `ceph config generate-minimal-conf` of the cluster, and that the '
            'key in %s is the key of client.%s' % (entry['ceph_conf'], entry['keyring'], entry['user']))
        return
    add('ceph_connect', 'ok', '%s connects as client.%s' % (label, entry['user']))

    fsid = ceph.get('fsid')
    if ref_fsid and fsid != ref_fsid:
        add('ceph_fsid', 'fail', '%s sees cluster %s but %s sees %s: images cannot be cloned across clusters, %s '
            'downloads or copies them' % (label, fsid, ref_who, ref_fsid, service),
            'point %s at the cluster of Glance (%s and its keyring)' % (label, entry['ceph_conf']))
    elif conf.get('fsid') and conf['fsid'] != fsid:
        add('ceph_fsid', 'warn', '%s: %s says fsid %s but the monitors at %s belong to cluster %s' % (
            label, entry['ceph_conf'], conf['fsid'], conf.get('mon_host'), fsid),
            'write the real fsid %s into %s (`ceph config generate-minimal-conf`)' % (fsid, entry['ceph_conf']))
    else:
        add('ceph_fsid', 'ok', '%s sees cluster %s' % (label, fsid))

    pools = ceph.get('pools') or {}
    own = pools.get(entry['pool']) or {}
    if own.get('exists') is False:
        add('pool', 'fail', '%s: pool %s does not exist' % (label, entry['pool']),
            'create it (role fastboot.cloud.ceph_rbd, tag ceph_rbd_pools) or fix the pool option of %s' % service)
    elif own.get('exists'):
        add('pool', 'ok', '%s: pool %s exists' % (label, entry['pool']))
        caps = entry.get('caps_access', {}).get(entry['pool']) if entry.get('caps_access') else None
        caps_txt = ' (caps: %s)' % entry['caps']['osd'] if (entry.get('caps') or {}).get('osd') else ''
        if own.get('read') and own.get('write'):
            add('pool_write', 'ok', '%s: client.%s can read and write pool %s%s' % (label, entry['user'], entry['pool'],
                                                                                    caps_txt))
        elif own.get('read') is None and own.get('write') is None:
            add('pool_write', 'warn', '%s: access to pool %s could not be tested: %s' % (
                label, entry['pool'], own.get('error')), None)
        else:
            missing = 'read and write' if not own.get('read') and not own.get('write') else (
                'write' if not own.get('write') else 'read')
            add('pool_write', 'fail', '%s: client.%s cannot %s pool %s%s%s' % (
                label, entry['user'], missing, entry['pool'], caps_txt,
                ' (caps parsed: %s)' % caps if caps else ''),
                'give client.%s `profile rbd pool=%s`: %s' % (entry['user'], entry['pool'], FIX_KEYS % entry['user']))

    if service in ('nova', 'cinder'):
        ipool = entry.get('images_pool')
        if gpools:
            if ipool in gpools:
                add('images_pool', 'ok', '%s probed pool %s, the pool of Glance' % (label, ipool))
            else:
                add('images_pool', 'warn', '%s probed pool %s but Glance stores images in %s' % (
                    label, ipool, ', '.join(gpools)),
                    'run rbd_service_facts with images_pool=%s' % gpools[0])
        img = pools.get(ipool) or {}
        if img.get('exists') is False:
            add('images_read', 'fail', '%s: the images pool %s does not exist' % (label, ipool),
                'set images_pool to the pool of Glance (rbd_store_pool)')
        elif img.get('read'):
            add('images_read', 'ok', '%s: client.%s can read the images pool %s' % (label, entry['user'], ipool))
        elif img.get('read') is False:
            add('images_read', 'fail', '%s: client.%s cannot read the images pool %s: it cannot clone Glance images'
                '%s' % (label, entry['user'], ipool, caps_txt_of(entry)),
                'give client.%s `profile rbd-read-only pool=%s`: %s' % (entry['user'], ipool, FIX_KEYS % entry['user']))
        elif img:
            add('images_read', 'warn', '%s: read access to %s could not be tested: %s' % (label, ipool, img.get('error')))

    if service == 'nova':
        _nova_findings(entry, add)


def caps_txt_of(entry):
    osd = (entry.get('caps') or {}).get('osd')
    return ' (caps: osd "%s")' % osd if osd else ''


def _nova_findings(entry, add):
    cache = entry.get('image_cache') or {}
    if cache.get('entries'):
        names = ', '.join(cache.get('names') or [])
        add('image_cache', 'fail', 'nova uses images_type=rbd but its image cache %s holds %d entries (%d bytes: %s): '
            'those images were downloaded instead of cloned' % (cache['path'], cache['entries'], cache['bytes'], names),
            'purge it with fastboot.cloud.nova_image_cache_purge (role fastboot.cloud.nova_image_cache), then find '
            'why the images were not cloned (other findings: direct_url, image_format, images_read, ceph_fsid)')
    else:
        add('image_cache', 'ok', 'image cache %s is empty' % cache.get('path'))
    if entry.get('never_download_image_if_on_rbd'):
        add('never_download', 'ok', '[workarounds] never_download_image_if_on_rbd = true')
    else:
        add('never_download', 'warn', '[workarounds] never_download_image_if_on_rbd is false: an image that cannot be '
            'cloned is downloaded silently', 'set it to true (role fastboot.cloud.nova_rbd)')
    secret = entry.get('libvirt_secret') or {}
    if not entry.get('secret_uuid'):
        add('libvirt_secret', 'fail', '[libvirt] rbd_secret_uuid is not set: libvirt cannot authenticate to Ceph',
            'set nova_rbd_secret_uuid and ceph_rbd_libvirt_secret_uuid (roles nova_rbd, ceph_rbd)')
    elif not secret.get('checked'):
        return
    elif not secret.get('defined'):
        add('libvirt_secret', 'fail', 'libvirt secret %s (rbd_secret_uuid) is not defined%s' % (
            entry['secret_uuid'], ': %s' % secret['error'] if secret.get('error') else ''),
            'define it with the key of client.%s (role fastboot.cloud.ceph_rbd, tag ceph_rbd_libvirt_secret)'
            % entry['user'])
    elif secret.get('matches') is None:
        add('libvirt_secret', 'warn', 'libvirt secret %s: %s' % (entry['secret_uuid'], secret.get('error')))
    elif not secret['matches']:
        add('libvirt_secret', 'fail', 'libvirt secret %s does not hold the key of client.%s (from %s)' % (
            entry['secret_uuid'], entry['user'], entry.get('keyring')),
            'set its value to the key of client.%s (role fastboot.cloud.ceph_rbd, tag ceph_rbd_libvirt_secret)'
            % entry['user'])
    else:
        add('libvirt_secret', 'ok', 'libvirt secret %s holds the key of client.%s' % (entry['secret_uuid'], entry['user']))


def _glance_findings(host, entry, facts, out):
    clients = [e for dummy, e in _entries(facts) if e['service'] in ('nova', 'cinder') and e.get('rbd')]
    subject = entry.get('backend')
    if entry.get('show_image_direct_url'):
        out.append(finding('direct_url', 'ok', 'glance', host, 'show_image_direct_url = true (image locations, '
                           'rbd://<fsid>/<pool>/<id>/snap, are visible to users who can read the image)', subject=subject))
    elif entry.get('show_multiple_locations'):
        out.append(finding('direct_url', 'warn', 'glance', host, 'show_image_direct_url is false; Nova/Cinder rely '
                           'on the deprecated show_multiple_locations = true', 'set show_image_direct_url = true '
                           '(role fastboot.cloud.glance_rbd)', subject))
    else:
        out.append(finding('direct_url', 'fail' if clients or not facts else 'warn', 'glance', host,
                           'show_image_direct_url is false: Glance hides image locations, so Nova and Cinder cannot '
                           'clone and download every image instead',
                           'set [DEFAULT] show_image_direct_url = true (role fastboot.cloud.glance_rbd, '
                           'glance_rbd_cow_clients)', subject))


# kernel and ramdisk images (direct kernel boot): not disks; Nova caches them in _base on every backend
KERNEL_FORMATS = ('aki', 'ari')


def kernel_cache_names(images):
    """Nova's cache names (sha1 of the image id) of the kernel/ramdisk images among IMAGES."""
    return set(hashlib.sha1(img['id'].encode('utf-8')).hexdigest() for img in images or []
               if img.get('disk_format') in KERNEL_FORMATS and img.get('id'))


def without_kernels(facts, kernels):
    """FACTS with the kernel/ramdisk entries left out of each nova image cache (they belong there)."""
    if not kernels:
        return facts
    out = []
    for host_facts in facts:
        host_facts = copy.deepcopy(host_facts)
        for entry in (host_facts.get('services') or []) if isinstance(host_facts, dict) else []:
            cache = entry.get('image_cache') if isinstance(entry, dict) else None
            if not cache or not cache.get('all_names'):
                continue
            kept = [n for n in cache['all_names'] if n not in kernels]
            skipped = len(cache['all_names']) - len(kept)
            if skipped:
                cache['entries'] = max(0, cache.get('entries', 0) - skipped)
                cache['names'] = kept[:10]
                cache['all_names'] = kept
                cache['kernel_entries'] = skipped
        out.append(host_facts)
    return out


def image_findings(images, ref_fsid, gpools, out):
    for img in images or []:
        subject = img.get('id')
        label = 'image %s (%s)' % (img.get('id'), img.get('name'))
        fmt = img.get('disk_format')
        if fmt in KERNEL_FORMATS:
            out.append(finding('image_format', 'ok', 'glance', None, '%s is a kernel/ramdisk image (%s) for direct '
                               'kernel boot, not a disk' % (label, fmt), subject=subject))
            continue
        if fmt == 'raw':
            out.append(finding('image_format', 'ok', 'glance', None, '%s is raw' % label, subject=subject))
        else:
            out.append(finding('image_format', 'fail', 'glance', None, '%s has disk_format %s: RBD clones need raw, '
                               'every VM converts its own copy' % (label, fmt),
                               'convert it to raw (fastboot.cloud.qemu_img_convert, or Glance image_conversion: '
                               'glance_rbd_image_conversion_enabled) and upload it again', subject))
        urls = [img.get('direct_url')] if img.get('direct_url') else []
        urls += [u for u in img.get('location_urls') or [] if u not in urls]
        if not urls:
            out.append(finding('image_location', 'fail', 'glance', None, '%s has no direct_url: Glance does not expose '
                               'its location (show_image_direct_url off) or it has no data' % label,
                               'set show_image_direct_url = true (role fastboot.cloud.glance_rbd)', subject))
            continue
        rbd_urls = [parse_rbd_url(u) for u in urls if parse_rbd_url(u)]
        if not rbd_urls:
            out.append(finding('image_location', 'fail', 'glance', None, '%s is not in RBD (%s)' % (
                label, urls[0].split('://')[0] + '://...'), 'store it in the RBD store (upload again, or '
                '`glance image-import --import-method copy-image --stores rbd`)', subject))
            continue
        loc = rbd_urls[0]
        if ref_fsid and loc['fsid'] != ref_fsid:
            out.append(finding('image_location', 'fail', 'glance', None, '%s is in cluster %s, not in cluster %s '
                               'that the services see' % (label, loc['fsid'], ref_fsid),
                               'copy the image into the RBD store of this cluster', subject))
        elif gpools and loc['pool'] not in gpools:
            out.append(finding('image_location', 'warn', 'glance', None, '%s is in pool %s, not in the pool of '
                               'Glance (%s)' % (label, loc['pool'], ', '.join(gpools)),
                               'check that Nova and Cinder can read pool %s' % loc['pool'], subject))
        else:
            out.append(finding('image_location', 'ok', 'glance', None, '%s is at rbd://%s/%s/%s/%s' % (
                label, loc['fsid'], loc['pool'], loc['image'], loc['snapshot']), subject=subject))


def evaluate(facts, images=None):
    """All findings for the facts of every host (rbd_service_facts results) and the Glance images (image_dict)."""
    out = []
    facts = without_kernels(facts, kernel_cache_names(images))
    ref_fsid, ref_who = reference_fsid(facts)
    gpools = glance_pools(facts)
    for host, entry in _entries(facts):
        _service_findings(host, entry, ref_fsid, ref_who, gpools, out)
        if entry['service'] == 'glance' and entry.get('rbd'):
            _glance_findings(host, entry, facts, out)
    if images is not None:
        image_findings(images, ref_fsid, gpools, out)
    return out


def summary(findings):
    counts = dict((s, 0) for s in STATUSES)
    for item in findings:
        counts[item['status']] = counts.get(item['status'], 0) + 1
    return counts


def describe(item):
    where = '/'.join(x for x in (item.get('host'), item.get('service'), item.get('subject')) if x)
    return '%s %s [%s]: %s' % (item['status'].upper(), item['check'], where, item['detail'])
