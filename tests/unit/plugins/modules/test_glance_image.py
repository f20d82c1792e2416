# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the glance_image module and module_utils.glance: documentation vs argument_spec, property
normalisation, the decisions (fingerprint, hash, conflicts, images without data), the JSON patch, the RBD location
message, and whole runs of the module against a fake openstacksdk connection whose image proxy is an in-memory
Image API v2 (the real Glance of the lab is tested in tests/integration/test_glance_image.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import hashlib
import json
import uuid

import pytest
import yaml

from ansible_collections.fastboot.cloud.plugins.module_utils import glance as gl
from ansible_collections.fastboot.cloud.plugins.module_utils.common import InputError
from ansible_collections.fastboot.cloud.plugins.modules import glance_image as mod

from .modrun import run_main

PROJECT = 'p' * 32


class Response(object):
    def __init__(self, status_code, body=None, text=''):
        self.status_code = status_code
        self._body = body
        self.text = text if body is None else json.dumps(body)

    def json(self):
        if self._body is None:
            raise ValueError('no JSON')
        return self._body


class FakeImageAPI(object):
    """An in-memory Image API v2 behind the methods of openstacksdk's image proxy (get/post/put/patch/delete)."""

    def __init__(self, store='fs', store_type='file', direct_url=None, corrupt=False, fail_upload=False,
                 stores_detail=True, page=200):
        self.images = {}
        self.calls = []
        self.store, self.store_type, self.direct_url = store, store_type, direct_url
        self.corrupt, self.fail_upload, self.stores_detail, self.page = corrupt, fail_upload, stores_detail, page
        self.clock = 0

    def add(self, name, data=b'', status='active', owner=PROJECT, **props):
        """An image already in Glance (made by someone else)."""
        image = self._new({'name': name, 'disk_format': props.pop('disk_format', 'raw'),
                           'container_format': props.pop('container_format', 'bare')}, owner)
        image.update(props)
        if status in ('active', 'deactivated'):
            self._store(image, data)
        image['status'] = status
        return image['id']

    def _new(self, attrs, owner=PROJECT):
        self.clock += 1
        image = {'id': str(uuid.uuid4()), 'status': 'queued', 'visibility': 'shared', 'protected': False,
                 'min_disk': 0, 'min_ram': 0, 'owner': owner, 'os_hidden': False, 'checksum': None,
                 'os_hash_algo': None, 'os_hash_value': None, 'size': None, 'tags': [],
                 'created_at': '2024-01-01T00:00:%02dZ' % self.clock}
        image.update(attrs)
        self.images[image['id']] = image
        return image

    def _store(self, image, data):
        if self.corrupt:
            data = data + b'!'
        image.update(status='active', size=len(data), checksum=hashlib.md5(data).hexdigest(),
                     os_hash_algo='sha512', os_hash_value=hashlib.sha512(data).hexdigest(), stores=self.store)
        if self.direct_url:
            image['direct_url'] = self.direct_url % image['id']

    def _id(self, url):
        return url.split('/')[2]

    def get(self, url, raise_exc=True, params=None):
        self.calls.append(('get', url, dict(params or {})))
        if url == '/images':
            found = [i for i in sorted(self.images.values(), key=lambda i: i['created_at'])
                     if i['name'] == params['name'] and str(i['os_hidden']).lower() == params['os_hidden']
                     and (not params.get('owner') or i['owner'] == params['owner'])]
            if params.get('marker'):
                found = found[[i['id'] for i in found].index(params['marker']) + 1:]
            body = {'images': copy.deepcopy(found[:self.page])}
            if len(found) > self.page:
                body['next'] = '/v2/images?marker=%s' % found[self.page - 1]['id']
            return Response(200, body)
        if url == '/info/stores':
            return Response(200, {'stores': [{'id': self.store, 'default': 'true'}]})
        if url == '/info/stores/detail':
            if not self.stores_detail:
                return Response(403, text='<html><h1>403 Forbidden</h1></html>')
            return Response(200, {'stores': [{'id': self.store, 'default': 'true', 'type': self.store_type}]})
        image = self.images.get(self._id(url))
        return Response(200, copy.deepcopy(image)) if image else Response(404, text='<h1>404 Not Found</h1>')

    def post(self, url, raise_exc=True, json=None):
        self.calls.append(('post', url, json))
        if json.get('protected') not in (None, True, False):
            return Response(400, text="<h1>400 Bad Request</h1> 'yes' is not of type 'boolean'")
        return Response(201, copy.deepcopy(self._new(dict(json))))

    def put(self, url, raise_exc=True, data=None, headers=None):
        self.calls.append(('put', url, dict(headers)))
        if self.fail_upload:
            return Response(413, {'error': {'message': 'Image exceeds the storage quota'}})
        self._store(self.images[self._id(url)], data.read())
        return Response(204, text='')

    def patch(self, url, raise_exc=True, json=None, headers=None):
        self.calls.append(('patch', url, json))
        assert headers['Content-Type'] == gl.PATCH_TYPE
        image = self.images[self._id(url)]
        for op in json:
            if op['op'] == 'remove':
                del image[op['path'][1:]]
            else:
                image[op['path'][1:]] = op['value']
        return Response(200, copy.deepcopy(image))

    def delete(self, url, raise_exc=True):
        self.calls.append(('delete', url, None))
        self.images.pop(self._id(url), None)
        return Response(204, text='')

    def writes(self):
        return [c for c in self.calls if c[0] != 'get']


class FakeConn(object):
    def __init__(self, **kw):
        self.image = FakeImageAPI(**kw)
        self.current_project_id = PROJECT


def run(monkeypatch, conn, args, check=False, diff=False):
    monkeypatch.setattr(mod, 'connect', lambda cloud: conn)
    return run_main(monkeypatch, mod.main, args, check=check, diff=diff)


@pytest.fixture()
def image_file(tmp_path):
    path = tmp_path / 'disk.raw'
    path.write_bytes(b'\x01' * 4096 + b'\0' * 8192)
    return str(path)


def test_documentation_matches_argument_spec():
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc['module'] == 'glance_image'
    assert set(doc['options']) == set(mod.ARGUMENT_SPEC)
    for name, spec in mod.ARGUMENT_SPEC.items():
        assert doc['options'][name]['type'] == spec['type'], name
        assert doc['options'][name].get('default') == spec.get('default'), name
        assert doc['options'][name].get('choices') == spec.get('choices'), name
        assert doc['options'][name].get('aliases') == spec.get('aliases'), name
        assert bool(doc['options'][name].get('required')) == bool(spec.get('required')), name
    assert doc['attributes']['check_mode']['support'] == 'full'
    assert doc['attributes']['diff_mode']['support'] == 'full'
    returns = yaml.safe_load(mod.RETURN)
    for key in ('id', 'uploaded', 'properties', 'checksum', 'os_hash_value', 'direct_url', 'locations', 'stores',
                'duration', 'operation', 'found', 'conflicts', 'diff', 'msg'):
        assert key in returns, key
    yaml.safe_load(mod.EXAMPLES)


# ---------------------------------------------------------------- pure helpers

def test_normalize_properties():
    props = gl.normalize_properties({'hw_qemu_guest_agent': True, 'os_require_quiesce': False, 'hw_video_ram': 64,
                                     'img_config_drive': 'mandatory', 'gone': None}, fingerprint='fp')
    assert props == {'hw_qemu_guest_agent': 'true', 'os_require_quiesce': 'false', 'hw_video_ram': '64',
                     'img_config_drive': 'mandatory', 'gone': None, 'fastboot_fingerprint': 'fp'}


@pytest.mark.parametrize('props,fingerprint,error', [
    ({'visibility': 'public'}, None, 'use the option of that name'),
    ({'checksum': 'x'}, None, 'Glance sets it'),
    ({'fastboot_fingerprint': 'x'}, None, 'set by the fingerprint option'),
    ({'hw_disk_bus': ['virtio']}, None, 'must be a string'),
    ({'': 'x'}, None, 'not usable'),
    ({}, '  ', 'fingerprint is empty'),
])
def test_normalize_properties_refuses(props, fingerprint, error):
    with pytest.raises(InputError) as exc:
        gl.normalize_properties(props, fingerprint)
    assert error in exc.value.msg


def test_file_hashes(image_file):
    data = open(image_file, 'rb').read()
    assert gl.file_hashes(image_file, ['md5', 'sha512']) == {'md5': hashlib.md5(data).hexdigest(),
                                                             'sha512': hashlib.sha512(data).hexdigest()}
    with pytest.raises(InputError):
        gl.file_hashes(image_file, ['no-such-algo'])


def img(image_id, status='active', data=b'abc', created='2024-01-01', **extra):
    image = {'id': image_id, 'name': 'n', 'status': status, 'disk_format': 'raw', 'container_format': 'bare',
             'checksum': hashlib.md5(data).hexdigest(), 'os_hash_algo': 'sha512',
             'os_hash_value': hashlib.sha512(data).hexdigest(), 'created_at': created}
    image.update(extra)
    return image


def hashes(data=b'abc'):
    return {'md5': hashlib.md5(data).hexdigest(), 'sha512': hashlib.sha512(data).hexdigest()}


def never():
    raise AssertionError('the file must not be hashed when the fingerprint settles it')


def test_plan_fingerprint_match_reads_no_file():
    images = [img('a', fastboot_fingerprint='fp', created='1'), img('b', fastboot_fingerprint='fp', created='2'),
              img('c', status='queued', fastboot_fingerprint='fp')]
    result = gl.plan(images, 'fp', 'raw', 'bare', never)
    assert result['match']['id'] == 'b' and result['matched_by'] == 'fingerprint'
    assert result['duplicates'] == ['a'] and result['ignored'] == [{'id': 'c', 'status': 'queued'}]


def test_plan_hash_match_adopts_an_image_without_fingerprint():
    result = gl.plan([img('a')], 'fp', 'raw', 'bare', hashes)
    assert result['match']['id'] == 'a' and result['matched_by'] == 'hash' and result['conflicts'] == []
    # md5 only (an old Glance without os_hash_value)
    result = gl.plan([img('a', os_hash_algo=None, os_hash_value=None)], None, 'raw', 'bare', lambda: {'md5': hashes()['md5']})
    assert result['matched_by'] == 'hash'


def test_plan_conflicts_and_no_candidates():
    result = gl.plan([img('a', data=b'other'), img('d', status='deactivated'), img('f', disk_format='qcow2')],
                     None, 'raw', 'bare', hashes)
    assert result['match'] is None
    reasons = dict((c['id'], c['reason']) for c in result['conflicts'])
    assert 'other content (sha512' in reasons['a'] and 'status deactivated' in reasons['d'] and 'qcow2' in reasons['f']
    # nothing with data: the file is not hashed by the plan
    result = gl.plan([img('q', status='queued')], 'fp', 'raw', 'bare', never)
    assert result['match'] is None and result['conflicts'] == [] and result['hashes'] is None
    # a missing file: other images of that name are conflicts, with the reason
    result = gl.plan([img('a', fastboot_fingerprint='old')], 'new', 'raw', 'bare', lambda: None)
    assert result['conflicts'] == [{'id': 'a', 'reason': 'its fastboot_fingerprint is old, not new'}]


def test_patch_ops_and_apply():
    image = {'id': 'a', 'hw_disk_bus': 'scsi', 'old': 'x', 'keep': 'y', 'visibility': 'shared', 'min_disk': 0}
    ops = gl.patch_ops(image, {'hw_disk_bus': 'virtio', 'old': None, 'new': '1', 'absent': None},
                       {'visibility': 'public', 'min_disk': 0})
    assert ops == [{'op': 'replace', 'path': '/hw_disk_bus', 'value': 'virtio'}, {'op': 'add', 'path': '/new', 'value': '1'},
                   {'op': 'remove', 'path': '/old'}, {'op': 'replace', 'path': '/visibility', 'value': 'public'}]
    after = gl.apply_ops(image, ops)
    assert after['hw_disk_bus'] == 'virtio' and 'old' not in after and after['keep'] == 'y' and after['visibility'] == 'public'
    assert gl.patch_ops(after, {'hw_disk_bus': 'virtio', 'old': None, 'new': '1'}, {'visibility': 'public'}) == []


def test_rbd_problem_messages():
    assert gl.rbd_problem({'direct_url': 'rbd://fsid/images/a/snap'}) is None
    assert gl.rbd_problem({'locations': [{'url': 'file:///x'}, {'url': 'rbd://fsid/images/a/snap'}]}) is None
    hidden = gl.rbd_problem({'id': 'a', 'name': 'n', 'stores': 'fs'}, {'fs': 'file'})
    for needle in ('show_image_direct_url', 'show_multiple_locations', 'glance-api.conf', 'fs (type file)', 'not rbd'):
        assert needle in hidden, needle
    shown = gl.rbd_problem({'id': 'a', 'name': 'n', 'direct_url': 'file:///var/lib/glance/images/a'})
    assert 'file:///var/lib/glance/images/a' in shown and 'default_backend' in shown


def test_find_pages_hidden_and_owner():
    conn = FakeConn(page=2)
    ids = [conn.image.add('n', b'x') for dummy in range(4)]
    conn.image.images[ids[3]]['os_hidden'] = True
    conn.image.add('n', b'x', owner='someone-else')
    conn.image.add('other', b'x')
    found = gl.Glance(conn).find('n')
    assert sorted(i['id'] for i in found) == sorted(ids)
    queries = [c[2] for c in conn.image.calls if c[1] == '/images']
    assert all(q['owner'] == PROJECT and q['visibility'] == 'all' for q in queries)
    assert any(q.get('marker') for q in queries)


# ---------------------------------------------------------------- the module

BASE = {'cloud': 'lab', 'name': 'debian', 'properties': {'img_config_drive': 'mandatory', 'hw_disk_bus': 'virtio'}}


def test_upload_four_ways(monkeypatch, image_file):
    conn = FakeConn()
    args = dict(BASE, filename=image_file)
    kind, result = run(monkeypatch, conn, args, check=True, diff=True)
    assert kind == 'exit' and result['changed'] and result['operation'] == 'upload' and not result['uploaded'], result
    assert conn.image.writes() == [] and result['id'] is None
    assert result['diff']['before'] == {'exists': False}
    assert result['diff']['after']['properties'] == {'hw_disk_bus': 'virtio', 'img_config_drive': 'mandatory'}

    kind, result = run(monkeypatch, conn, args, diff=True)
    assert kind == 'exit' and result['changed'] and result['uploaded'] and result['operation'] == 'upload', result
    data = open(image_file, 'rb').read()
    assert result['checksum'] == hashlib.md5(data).hexdigest() and result['os_hash_value'] == hashlib.sha512(data).hexdigest()
    assert result['properties'] == {'img_config_drive': 'mandatory', 'hw_disk_bus': 'virtio'}
    assert result['stores'] == ['fs'] and result['diff']['after']['id'] == result['id']
    assert [c[0] for c in conn.image.writes()] == ['post', 'put']
    put = conn.image.writes()[1][2]
    assert put['Content-Type'] == 'application/octet-stream' and put['X-OpenStack-Image-Size'] == str(len(data))

    for check in (False, True):
        kind, again = run(monkeypatch, conn, args, check=check, diff=True)
        assert kind == 'exit' and not again['changed'] and again['operation'] == 'none' and again['id'] == result['id'], again
        assert again['matched_by'] == 'hash' and again['diff']['before'] == again['diff']['after']
    assert len(conn.image.writes()) == 2 and len(conn.image.images) == 1


def test_fingerprint_skips_the_file_and_updates_properties(monkeypatch, image_file, tmp_path):
    conn = FakeConn()
    args = dict(BASE, filename=image_file, fingerprint='fp1')
    kind, result = run(monkeypatch, conn, args)
    assert kind == 'exit' and result['uploaded'] and result['properties']['fastboot_fingerprint'] == 'fp1'
    image_id = result['id']
    # the file is gone: the fingerprint is enough
    args = dict(args, filename=str(tmp_path / 'gone.raw'),
                properties={'img_config_drive': 'mandatory', 'hw_disk_bus': 'scsi', 'hw_qemu_guest_agent': True})
    kind, result = run(monkeypatch, conn, args, check=True, diff=True)
    assert kind == 'exit' and result['changed'] and result['operation'] == 'update' and result['matched_by'] == 'fingerprint'
    assert result['diff']['before']['properties']['hw_disk_bus'] == 'virtio'
    assert result['diff']['after']['properties']['hw_disk_bus'] == 'scsi'
    assert result['properties']['hw_qemu_guest_agent'] == 'true' and len(conn.image.writes()) == 2
    kind, result = run(monkeypatch, conn, args)
    assert kind == 'exit' and result['changed'] and result['id'] == image_id and not result['uploaded']
    assert conn.image.images[image_id]['hw_disk_bus'] == 'scsi' and conn.image.images[image_id]['hw_qemu_guest_agent'] == 'true'
    kind, result = run(monkeypatch, conn, args)
    assert kind == 'exit' and not result['changed'] and result['operation'] == 'none'


def test_conflict_fails_without_change(monkeypatch, image_file):
    conn = FakeConn()
    other = conn.image.add('debian', b'another build', fastboot_fingerprint='old')
    for check in (True, False):
        kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, fingerprint='new'), check=check)
        assert kind == 'fail' and other in result['msg'] and 'other content' in result['msg'], result
        assert 'on_conflict=rename' in result['msg'] and result['conflicts'][0]['id'] == other
    assert conn.image.writes() == []


def test_conflict_rename_and_add(monkeypatch, image_file):
    conn = FakeConn()
    other = conn.image.add('debian', b'another build')
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, on_conflict='rename'))
    assert kind == 'exit' and result['uploaded'] and result['renamed'] == [
        {'id': other, 'name': 'debian', 'new_name': 'debian-replaced-' + other[:8]}], result
    assert conn.image.images[other]['name'] == 'debian-replaced-' + other[:8]
    assert conn.image.images[other]['fastboot_replaced_by'] == result['id']
    conn = FakeConn()
    other = conn.image.add('debian', b'another build')
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, on_conflict='add'))
    assert kind == 'exit' and result['uploaded'] and result['renamed'] == []
    assert sorted(i['name'] for i in conn.image.images.values()) == ['debian', 'debian']


def test_missing_file(monkeypatch, tmp_path):
    conn = FakeConn()
    args = dict(BASE, filename=str(tmp_path / 'later.raw'), fingerprint='fp')
    kind, result = run(monkeypatch, conn, args, check=True)
    assert kind == 'exit' and result['changed'] and result['operation'] == 'upload' and 'not there yet' in result['msg']
    kind, result = run(monkeypatch, conn, args)
    assert kind == 'fail' and 'does not exist' in result['msg'] and conn.image.writes() == []
    kind, result = run(monkeypatch, conn, dict(BASE))
    assert kind == 'fail' and 'filename is needed' in result['msg']


def test_images_without_data_are_ignored(monkeypatch, image_file):
    conn = FakeConn()
    queued = conn.image.add('debian', status='queued')
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file))
    assert kind == 'exit' and result['uploaded'] and result['ignored'] == [{'id': queued, 'status': 'queued'}]
    assert queued in conn.image.images


@pytest.mark.parametrize('kw,error', [
    ({'corrupt': True}, 'Glance stored other data'),
    ({'fail_upload': True}, 'HTTP 413: Image exceeds the storage quota'),
])
def test_failed_upload_deletes_its_own_image(monkeypatch, image_file, kw, error):
    conn = FakeConn(**kw)
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file))
    assert kind == 'fail' and error in result['msg'], result
    assert conn.image.images == {} and conn.image.writes()[-1][0] == 'delete'


def test_require_rbd_location(monkeypatch, image_file):
    # a file store Glance tells about: refused before anything is uploaded
    conn = FakeConn()
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, require_rbd_location=True))
    assert kind == 'fail' and 'store fs of type file' in result['msg'] and 'nothing was uploaded' in result['msg']
    assert conn.image.writes() == []
    # Glance does not say the store type: uploaded, then refused with the settings to change
    conn = FakeConn(stores_detail=False)
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, require_rbd_location=True))
    assert kind == 'fail' and result['changed'] and result['uploaded'], result
    assert 'show_image_direct_url' in result['msg'] and 'show_multiple_locations' in result['msg'] and 'fs' in result['msg']
    # an existing image on the file store: refused in check mode too, nothing changed
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, require_rbd_location=True), check=True)
    assert kind == 'fail' and 'no RBD location' in result['msg']
    # an rbd store with direct_url shown
    conn = FakeConn(store='ceph', store_type='rbd', direct_url='rbd://fsid/images/%s/snap')
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, require_rbd_location=True))
    assert kind == 'exit' and result['uploaded'] and result['direct_url'].startswith('rbd://') and result['stores'] == ['ceph']


def test_bad_input(monkeypatch, image_file):
    conn = FakeConn()
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, properties={'min_disk': 1}))
    assert kind == 'fail' and 'use the option of that name' in result['msg']
    kind, result = run(monkeypatch, conn, dict(BASE, filename=image_file, timeout=0))
    assert kind == 'fail' and 'timeout' in result['msg']
    assert conn.image.writes() == []


def test_core_attributes_on_create_and_update(monkeypatch, image_file):
    conn = FakeConn()
    args = dict(BASE, filename=image_file, visibility='public', min_disk=2, protected=True)
    kind, result = run(monkeypatch, conn, args)
    assert kind == 'exit' and result['uploaded']
    post = [c for c in conn.image.calls if c[0] == 'post'][0][2]
    assert post['visibility'] == 'public' and post['min_disk'] == 2 and post['protected'] is True
    kind, result = run(monkeypatch, conn, dict(args, visibility='private'))
    assert kind == 'exit' and result['operation'] == 'update' and conn.image.images[result['id']]['visibility'] == 'private'
