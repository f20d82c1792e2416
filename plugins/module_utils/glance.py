# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glance (Image API v2) through openstacksdk's image proxy, for the glance_image module.

The requests go through ``conn.image`` (keystoneauth: authentication, the catalog, version discovery) as plain
Image API v2 calls, so that every image property comes back as Glance stores it (openstacksdk's Image resource
moves some properties into attributes) and nothing is added to the image behind the user's back (openstacksdk's
``create_image`` adds ``owner_specified.openstack.*`` properties). The decisions (``plan``) are pure functions of
the images Glance lists and the local file's hashes, so they are unit-tested with a fake connection.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import re
import time

from ansible_collections.fastboot.cloud.plugins.module_utils.common import CommandError, InputError

FINGERPRINT_PROPERTY = 'fastboot_fingerprint'
REPLACED_BY_PROPERTY = 'fastboot_replaced_by'
# image attributes of the Image API v2 schema: not free-form properties
CORE = frozenset(['id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'checksum', 'os_hash_algo',
                  'os_hash_value', 'size', 'virtual_size', 'disk_format', 'container_format', 'min_disk', 'min_ram',
                  'owner', 'tags', 'locations', 'direct_url', 'created_at', 'updated_at', 'file', 'schema', 'self',
                  'stores', 'os_glance_failed_import', 'os_glance_importing_to_stores'])
# the core attributes the module manages besides the properties (None: not managed)
MANAGED_CORE = ('visibility', 'min_disk', 'min_ram', 'protected')
# statuses of an image whose data is in a store; any other (queued, saving, importing, uploading, killed,
# pending_delete) has no usable data
WITH_DATA = ('active', 'deactivated')
CHUNK = 4 * 1024 * 1024
PATCH_TYPE = 'application/openstack-images-v2.1-json-patch'


# ---------------------------------------------------------------- input

def normalize_value(key, value):
    """A property value as Glance stores it (a string); None stays None (remove the property)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise InputError('property %s must be a string, a number or a boolean, not %s' % (key, type(value).__name__),
                     property=key)


def normalize_properties(properties, fingerprint=None):
    """The wanted properties, as strings, with the fingerprint; refuses core attributes and bad keys."""
    result = {}
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not key.strip() or len(key) > 255:
            raise InputError('property name %r is not usable (1 to 255 characters)' % (key,))
        if key in CORE:
            raise InputError('%s is an image attribute, not a property: %s' % (
                key, 'use the option of that name' if key in MANAGED_CORE or key in ('disk_format', 'container_format')
                else 'Glance sets it'), property=key)
        if key == FINGERPRINT_PROPERTY:
            raise InputError('property %s is set by the fingerprint option' % key, property=key)
        result[key] = normalize_value(key, value)
    if fingerprint is not None:
        if not fingerprint.strip():
            raise InputError('fingerprint is empty')
        result[FINGERPRINT_PROPERTY] = fingerprint
    return result


def file_hashes(path, algorithms):
    """{algorithm: hex digest} of the file at ``path``, read once for all of them."""
    hashers = {}
    for name in sorted(set(algorithms)):
        try:
            hashers[name] = hashlib.new(name)
        except ValueError:
            raise InputError('Glance uses the hash algorithm %s, which this Python does not have' % name)
    with open(path, 'rb') as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            for hasher in hashers.values():
                hasher.update(block)
    return dict((name, hasher.hexdigest()) for name, hasher in hashers.items())


# ---------------------------------------------------------------- decisions

def properties_of(image):
    """The free-form properties of an image (everything that is not a core attribute)."""
    return dict((k, v) for k, v in image.items() if k not in CORE)


def same_content(image, hashes, disk_format, container_format):
    """(True, None) when the image holds the file whose ``hashes`` are given, else (False, why)."""
    if image.get('disk_format') != disk_format or image.get('container_format') != container_format:
        return False, 'disk_format/container_format %s/%s, not %s/%s' % (
            image.get('disk_format'), image.get('container_format'), disk_format, container_format)
    algo, value = image.get('os_hash_algo'), image.get('os_hash_value')
    if algo and value and algo in hashes:
        if hashes[algo] == value:
            return True, None
        return False, 'other content (%s %s..., the file has %s...)' % (algo, value[:16], hashes[algo][:16])
    if image.get('checksum') and 'md5' in hashes:
        if hashes['md5'] == image['checksum']:
            return True, None
        return False, 'other content (md5 %s, the file has %s)' % (image['checksum'], hashes['md5'])
    return False, 'Glance reports no checksum for it'


def newest(images):
    return sorted(images, key=lambda i: (i.get('created_at') or '', i.get('id') or ''))[-1]


def plan(candidates, fingerprint, disk_format, container_format, hashes_of):
    """Decide what to do with the images of that name Glance lists.

    ``hashes_of()`` returns the file's hashes (a dict) or None when the file is absent; it is called only when
    the fingerprint does not settle the question. Returns a dict: ``match`` (the image that already holds the
    content, or None), ``matched_by`` (fingerprint, hash), ``conflicts`` ([{id, reason}] images of that name with
    data and other content), ``ignored`` ([{id, status}] images without data), ``hashes`` (or None) and
    ``duplicates`` (other images that match too).
    """
    result = {'match': None, 'matched_by': None, 'conflicts': [], 'ignored': [], 'hashes': None, 'duplicates': []}
    with_data = []
    for image in candidates:
        if image.get('status') in WITH_DATA:
            with_data.append(image)
        else:
            result['ignored'].append({'id': image['id'], 'status': image.get('status')})
    active = [i for i in with_data if i.get('status') == 'active']
    if fingerprint is not None:
        found = [i for i in active if i.get(FINGERPRINT_PROPERTY) == fingerprint
                 and i.get('disk_format') == disk_format and i.get('container_format') == container_format]
        if found:
            result.update(match=newest(found), matched_by='fingerprint')
            result['duplicates'] = [i['id'] for i in found if i is not result['match']]
            return result
    hashes = hashes_of() if with_data else None
    result['hashes'] = hashes
    found, others = [], []
    for image in with_data:
        if hashes is None:
            why = ('its %s is %s, not %s' % (FINGERPRINT_PROPERTY, image.get(FINGERPRINT_PROPERTY), fingerprint)
                   if fingerprint is not None else 'the file is not there to compare')
            others.append({'id': image['id'], 'reason': why})
            continue
        same, why = same_content(image, hashes, disk_format, container_format)
        if same and image.get('status') == 'active':
            found.append(image)
        elif same:
            others.append({'id': image['id'], 'reason': 'same content but status %s' % image.get('status')})
        else:
            others.append({'id': image['id'], 'reason': why})
    if found:
        result.update(match=newest(found), matched_by='hash')
        result['duplicates'] = [i['id'] for i in found if i is not result['match']]
    else:
        result['conflicts'] = others
    return result


def patch_ops(image, properties, core):
    """JSON-patch operations that bring ``image`` to the wanted properties (None removes) and core attributes."""
    ops = []
    for key in sorted(properties):
        value = properties[key]
        if value is None:
            if key in image:
                ops.append({'op': 'remove', 'path': '/' + key})
        elif key not in image:
            ops.append({'op': 'add', 'path': '/' + key, 'value': value})
        elif image[key] != value:
            ops.append({'op': 'replace', 'path': '/' + key, 'value': value})
    for key in MANAGED_CORE:
        if core.get(key) is not None and image.get(key) != core[key]:
            ops.append({'op': 'replace', 'path': '/' + key, 'value': core[key]})
    return ops


def apply_ops(image, ops):
    """The image as it would be after ``ops`` (for check mode and the diff)."""
    after = dict(image)
    for op in ops:
        key = op['path'][1:]
        if op['op'] == 'remove':
            after.pop(key, None)
        else:
            after[key] = op['value']
    return after


def describe(image, keys):
    """The image as shown in --diff: its identity, the managed core attributes and the managed properties."""
    if image is None:
        return {'exists': False}
    desc = {'exists': True}
    for key in ('id', 'name', 'status', 'disk_format', 'container_format') + MANAGED_CORE:
        desc[key] = image.get(key)
    desc['properties'] = dict((k, image.get(k)) for k in sorted(keys) if k in image)
    return desc


# ---------------------------------------------------------------- RBD locations

def location_urls(image):
    urls = []
    if image.get('direct_url'):
        urls.append(image['direct_url'])
    for location in image.get('locations') or []:
        if isinstance(location, dict) and location.get('url') and location['url'] not in urls:
            urls.append(location['url'])
    return urls


def store_list(image):
    stores = image.get('stores')
    if not stores:
        return []
    if isinstance(stores, list):
        return stores
    return [s for s in str(stores).split(',') if s]


def describe_stores(names, store_types):
    if not names:
        return 'Glance does not say (no multi-store enabled_backends)'
    return ', '.join('%s (type %s)' % (n, store_types[n]) if store_types and n in store_types else n for n in names)


def rbd_problem(image, store_types=None):
    """None when Glance shows an ``rbd://`` location for the image, else a message saying why and what to change."""
    urls = location_urls(image)
    if any(u.startswith('rbd://') for u in urls):
        return None
    head = 'image %s (%s) has no RBD location, so Nova and Cinder cannot make copy-on-write clones of it' % (
        image.get('name'), image.get('id'))
    names = store_list(image)
    stores = describe_stores(names, store_types)
    not_rbd = bool(store_types) and bool(names) and all(store_types.get(n) not in (None, 'rbd') for n in names)
    store_fix = ('make an rbd store the default_backend ([glance_store] of glance-api.conf, role fastboot.cloud.glance_rbd) '
                 'and upload the image again')
    if not urls:
        fix_loc = ('set show_image_direct_url = true in the [DEFAULT] section of glance-api.conf (and '
                   'show_multiple_locations = true for the locations list)')
        if not_rbd:
            return ('%s: it is in the store %s, not rbd: %s; Glance also shows no location (direct_url and locations '
                    'are hidden): %s' % (head, stores, store_fix, fix_loc))
        return ('%s: Glance shows no location (direct_url and locations are hidden; stores: %s): %s; if the store is '
                'not rbd, %s' % (head, stores, fix_loc, store_fix))
    return ('%s: Glance stores it at %s (stores: %s). Make an rbd store the default_backend ([glance_store] of '
            'glance-api.conf, role fastboot.cloud.glance_rbd; show_image_direct_url = true or '
            'show_multiple_locations = true in [DEFAULT] expose its location) and upload the image again'
            % (head, ', '.join(urls), stores))


# ---------------------------------------------------------------- the Image API

def _error_text(resp):
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get('message'):
                return str(value['message'])
        if body.get('message'):
            return str(body['message'])
    text = re.sub(r'<[^>]+>', ' ', getattr(resp, 'text', '') or '')
    text = re.sub(r'\s+', ' ', text.replace('&#x27;', "'").replace('&quot;', '"')).strip()
    return text[:500] or 'no message'


class Glance(object):
    """The few Image API v2 calls the module makes, through openstacksdk's image proxy (``conn.image``)."""

    def __init__(self, conn):
        self.conn = conn
        self.api = conn.image

    def _call(self, method, url, what, ok=(200,), **kw):
        try:
            resp = getattr(self.api, method)(url, raise_exc=False, **kw)
        except Exception as exc:  # keystoneauth: connection refused, timeouts, auth failures
            raise CommandError('%s failed: %s' % (what, exc))
        if resp.status_code not in ok:
            raise CommandError('%s failed: HTTP %d: %s' % (what, resp.status_code, _error_text(resp)),
                               rc=resp.status_code)
        return resp

    def project_id(self):
        try:
            return self.conn.current_project_id
        except Exception:  # an auth plugin without a project: no owner filter
            return None

    def find(self, name):
        """Every image named ``name`` owned by the current project, hidden ones too, whatever their visibility."""
        images, seen = [], set()
        owner = self.project_id()
        for hidden in ('false', 'true'):
            params = {'name': name, 'visibility': 'all', 'os_hidden': hidden, 'limit': 200}
            if owner:
                params['owner'] = owner
            while True:
                body = self._call('get', '/images', 'listing the Glance images named %s' % name, params=params).json()
                page = body.get('images') or []
                for image in page:
                    if image['id'] not in seen and image.get('name') == name:
                        seen.add(image['id'])
                        images.append(image)
                if not body.get('next') or not page:
                    break
                params = dict(params, marker=page[-1]['id'])
        return images

    def get(self, image_id):
        return self._call('get', '/images/%s' % image_id, 'reading the Glance image %s' % image_id).json()

    def create(self, attrs):
        return self._call('post', '/images', 'creating the Glance image %s' % attrs.get('name'), ok=(201,),
                          json=attrs).json()

    def upload(self, image_id, path, store=None):
        headers = {'Content-Type': 'application/octet-stream', 'Accept': '',
                   'X-OpenStack-Image-Size': str(os.path.getsize(path))}
        if store:
            headers['X-Image-Meta-Store'] = store
        with open(path, 'rb') as handle:
            self._call('put', '/images/%s/file' % image_id, 'uploading %s into the Glance image %s' % (path, image_id),
                       ok=(204,), data=handle, headers=headers)

    def update(self, image_id, ops):
        return self._call('patch', '/images/%s' % image_id, 'updating the Glance image %s' % image_id,
                          json=ops, headers={'Content-Type': PATCH_TYPE}).json()

    def delete(self, image_id):
        self._call('delete', '/images/%s' % image_id, 'deleting the Glance image %s' % image_id, ok=(204, 404))

    def store_types(self):
        """{store id: type} from /info/stores/detail (admin only), None when Glance does not say."""
        try:
            resp = self.api.get('/info/stores/detail', raise_exc=False)
            if resp.status_code != 200:
                return None
            return dict((s['id'], s.get('type')) for s in resp.json().get('stores') or [] if s.get('id'))
        except Exception:  # an older Glance, a policy that forbids it: the message just says less
            return None

    def default_store(self):
        try:
            resp = self.api.get('/info/stores', raise_exc=False)
            if resp.status_code != 200:
                return None
            for store in resp.json().get('stores') or []:
                if str(store.get('default')).lower() == 'true':
                    return store.get('id')
        except Exception:
            return None
        return None

    def wait_active(self, image_id, timeout, sleep=time.sleep, clock=time.time):
        """Poll until the image is active; raise when it is killed or the timeout passes."""
        end = clock() + timeout
        while True:
            image = self.get(image_id)
            status = image.get('status')
            if status == 'active':
                return image
            if status in ('killed', 'deleted', 'pending_delete') or clock() > end:
                raise CommandError('the Glance image %s is %s after the upload%s' % (
                    image_id, status, '' if status in ('killed', 'deleted', 'pending_delete')
                    else ' (waited %d s)' % timeout), image=image_id, status=status)
            sleep(2)
