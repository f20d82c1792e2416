#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cloudinit_bake
short_description: Bake a fast-boot cloud-init datasource configuration into a disk image, offline
version_added: 0.1.0
description:
  - Writes C(/etc/cloud/cloud.cfg.d/NAME.cfg) into a raw or qcow2 cloud image without mounting it (e2fsprogs'
    C(debugfs)), so that cloud-init looks at the config drive first and gives up on the network datasources
    that follow after a short, bounded wait (O(metadata_max_wait), O(metadata_timeout), O(metadata_retries)).
  - Optionally masks slow first-boot systemd units (O(disable_units), a symlink to C(/dev/null) in
    C(/etc/systemd/system), like C(systemctl mask)) and writes a ds-identify policy (O(ds_identify_policy)).
  - The root file system is the ext2/ext3/ext4 file system that has C(/etc/cloud); it is found on an MBR or
    GPT partition (C(sfdisk -J)) or as a whole-disk file system. LVM, XFS, btrfs, LUKS and other file systems
    are not supported and are refused with a message naming what was found. An image without C(/etc/cloud)
    (no cloud-init), with no ext root, corrupt, or whose journal needs recovery is refused; nothing is written.
  - Idempotent. The files are read first; when they already hold the wanted content, the image is not written
    and C(changed) is false. Every file written is read back and compared (debugfs exits 0 even when a write fails).
  - Works on a copy by default. With O(dest), the baked image is written to O(dest) (same format as O(src),
    under a temporary name in the same directory, renamed on success); an existing O(dest) is taken as an
    earlier bake and updated in place unless O(force=true), which makes it again from O(src).
    With O(in_place=true) O(src) itself is changed. One of the two is required.
  - A qcow2 image is converted to a temporary raw image in O(tmp_dir) (also to read it, in check mode too),
    baked there and converted back to a temporary qcow2 that is renamed into place. A raw image is read and
    written directly.
  - SAFETY on OpenStack (O(platform=openstack)). cloud-init's ds-identify drops datasources it cannot identify
    on the platform (Ec2 on OpenStack is "platform Unknown"), so C([ConfigDrive, Ec2]) leaves nothing when an
    instance boots without a config drive and cloud-init is silently disabled (no user-data, no SSH keys).
    The module therefore refuses a O(datasource_list) in which C(OpenStack) (the metadata service, the only
    datasource usable on OpenStack without a drive) does not follow C(ConfigDrive), and a list that has
    neither. C(None) alone as the fallback (C([ConfigDrive, None]), or C([ConfigDrive]), to which ds-identify
    appends None) is refused as well; cloud-init stays enabled and runs, but without a drive it has no
    user-data and no SSH keys.
    O(allow_unsafe_datasource_list=true) writes such a list anyway, with a warning.
author:
  - fastboot.cloud developers (@fastboot)
attributes:
  check_mode:
    support: full
    description: Reads the image (a qcow2 through a temporary raw copy in O(tmp_dir)) and reports what would change; never writes the image.
  diff_mode:
    support: full
    description: Shows the text of the cfg file (and of the ds-identify file and unit masks) before and after.
  platform:
    support: full
    platforms: posix
    description: Needs C(debugfs) (e2fsprogs), C(sfdisk) (fdisk) and C(qemu-img) (qemu-utils) on the managed host.
options:
  src:
    description:
      - The image, a raw or qcow2 file.
    type: path
    required: true
  dest:
    description:
      - Write the baked image here (a file in an existing directory) and leave O(src) unchanged.
      - It gets the format of O(src). When it exists it is updated in place (it is taken as an earlier bake
        of O(src)) unless O(force=true).
      - Mutually exclusive with O(in_place); one of the two is required.
    type: path
  in_place:
    description:
      - Change O(src) itself.
    type: bool
    default: false
  force:
    description:
      - With O(dest), make O(dest) again from O(src) even when it exists (use it after O(src) changed).
    type: bool
    default: false
  name:
    description:
      - The file name (without C(.cfg)) in C(/etc/cloud/cloud.cfg.d). cloud-init reads these files in
        lexical order and a later file wins, so keep it after C(90_dpkg.cfg) (the default does).
    type: str
    default: 99-fastboot
  datasource_list:
    description:
      - cloud-init's C(datasource_list), in order. Names are checked against the datasources cloud-init knows.
    type: list
    elements: str
    default: [ConfigDrive, OpenStack, None]
  metadata_max_wait:
    description:
      - C(max_wait) (seconds) for the network datasources in the list (C(OpenStack), C(Ec2), C(CloudStack)),
        that is how long cloud-init waits for the metadata service in all.
    type: int
    default: 5
  metadata_timeout:
    description:
      - C(timeout) (seconds) of one request to the metadata service.
    type: int
    default: 2
  metadata_retries:
    description:
      - C(retries) of a request to the metadata service.
    type: int
    default: 1
  disable_units:
    description:
      - systemd units to mask (C(/etc/systemd/system/UNIT) -> C(/dev/null)), for example C(pollinate.service).
      - Units are only ever masked, never unmasked; an existing regular file of that name is refused.
    type: list
    elements: str
    default: []
  ds_identify_policy:
    description:
      - When set, write C(/etc/cloud/ds-identify.cfg) with C(policy) set to this value (for example C(enabled), or
        C(search,found=all,maybe=all,notfound=disabled)). When not set, that file is left alone.
    type: str
  platform:
    description:
      - The cloud the image is for; C(openstack) enables the datasource list safety check described above,
        C(any) only checks the names.
    type: str
    choices: [openstack, any]
    default: openstack
  allow_unsafe_datasource_list:
    description:
      - Write a O(datasource_list) the safety check refuses, with a warning.
    type: bool
    default: false
  tmp_dir:
    description:
      - Where the temporary raw copy of a qcow2 image is made. Defaults to the directory of the image written
        (O(dest) or O(src)); it needs room for the allocated size of the image.
    type: path
requirements:
  - debugfs (package e2fsprogs), sfdisk (package fdisk), qemu-img (package qemu-utils)
notes:
  - No mount, no loop device, no guest kernel; it runs unprivileged on an image file the user can write.
  - Masked units are not unmasked when they are removed from O(disable_units), and a cfg file written under
    another O(name) is not removed.
  - A qcow2 written back is not compressed, even if the original was.
'''

EXAMPLES = r'''
- name: Bake a fast-boot config into a copy of a cloud image
  fastboot.cloud.cloudinit_bake:
    src: /var/lib/images/debian-12-genericcloud-amd64.raw
    dest: /var/lib/images/debian-12-fastboot.raw

- name: Change a qcow2 in place, mask pollinate, shorter metadata wait
  fastboot.cloud.cloudinit_bake:
    src: /var/lib/images/ubuntu-24.04.qcow2
    in_place: true
    metadata_max_wait: 3
    disable_units:
      - pollinate.service

- name: A list the safety check refuses on OpenStack, written on purpose
  fastboot.cloud.cloudinit_bake:
    src: /var/lib/images/test.raw
    in_place: true
    datasource_list: [ConfigDrive, Ec2]
    allow_unsafe_datasource_list: true
'''

RETURN = r'''
src:
  description: The absolute path of the source image.
  returned: always
  type: str
  sample: /var/lib/images/debian-12.raw
image:
  description: The image that was (or would be) written, O(dest) or O(src).
  returned: always
  type: str
  sample: /var/lib/images/debian-12-fastboot.raw
image_format:
  description: The format of the image (raw or qcow2).
  returned: success
  type: str
  sample: raw
partition:
  description: The partition that holds the root file system; V(null) for a whole-disk file system.
  returned: success
  type: int
  sample: 1
partition_offset:
  description: The byte offset of the root file system in the (raw) image.
  returned: success
  type: int
  sample: 1048576
partition_table:
  description: The partition table type (C(dos), C(gpt)), V(null) without one.
  returned: success
  type: str
  sample: dos
filesystem:
  description: The root file system type.
  returned: success
  type: str
  sample: ext4
cfg_path:
  description: The cfg file in the image.
  returned: always
  type: str
  sample: /etc/cloud/cloud.cfg.d/99-fastboot.cfg
cfg:
  description: The content of the cfg file after the run.
  returned: always
  type: str
  sample: "datasource_list: [ConfigDrive, OpenStack, None]\n"
ds_identify_cfg:
  description: The content written to C(/etc/cloud/ds-identify.cfg), V(null) when O(ds_identify_policy) is not set.
  returned: always
  type: str
  sample: "policy: enabled\n"
units_masked:
  description: The units of O(disable_units) this run masked (or would mask).
  returned: success
  type: list
  elements: str
  sample: [pollinate.service]
units_already_masked:
  description: The units of O(disable_units) that were already masked.
  returned: success
  type: list
  elements: str
  sample: []
changes:
  description: What changed (or would change in check mode), one line per file.
  returned: success
  type: list
  elements: str
  sample: ["write /etc/cloud/cloud.cfg.d/99-fastboot.cfg"]
msg:
  description: What was done.
  returned: always
  type: str
  sample: baked /etc/cloud/cloud.cfg.d/99-fastboot.cfg into /var/lib/images/debian-12-fastboot.raw
duration:
  description: Wall-clock seconds the module spent.
  returned: always
  type: float
  sample: 0.412
diff:
  description: The cfg file (and ds-identify file, unit masks) before and after, with C(--diff).
  returned: when diff mode is on
  type: list
  elements: dict
  sample:
    - before_header: /etc/cloud/cloud.cfg.d/99-fastboot.cfg
      before: ""
      after_header: /etc/cloud/cloud.cfg.d/99-fastboot.cfg
      after: "datasource_list: [ConfigDrive, OpenStack, None]\n"
'''

import os
import re
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fastboot.cloud.plugins.module_utils.common import (
    FastbootError, InputError, Runner, finish)
from ansible_collections.fastboot.cloud.plugins.module_utils.image_fs import Debugfs, find_root
from ansible_collections.fastboot.cloud.plugins.module_utils.qemu_img import (
    TMP_TAG, convert, info, inspect_source, parse_info, random_suffix)

CFG_DIR = '/etc/cloud/cloud.cfg.d'
DS_IDENTIFY_CFG = '/etc/cloud/ds-identify.cfg'
UNIT_DIR = '/etc/systemd/system'
UNIT_SOURCES = ('/usr/lib/systemd/system', '/lib/systemd/system', '/etc/systemd/system')
MASK_TARGET = '/dev/null'
FORMATS = ('raw', 'qcow2')

# datasources cloud-init knows (cloudinit/sources/DataSource*.py, 22.x-24.x)
KNOWN_DATASOURCES = (
    'NoCloud', 'ConfigDrive', 'LXD', 'OpenNebula', 'DigitalOcean', 'Azure', 'AltCloud', 'OVF', 'MAAS', 'GCE',
    'OpenStack', 'CloudSigma', 'SmartOS', 'Bigstep', 'Scaleway', 'AliYun', 'Ec2', 'CloudStack', 'Hetzner',
    'IBMCloud', 'Oracle', 'Exoscale', 'RbxCloud', 'UpCloud', 'VMware', 'Vultr', 'NWCS', 'Akamai', 'WSL',
    'CloudCIX', 'None')
# network datasources whose metadata requests honour max_wait / timeout / retries (DataSource.get_url_params)
URL_DATASOURCES = ('OpenStack', 'Ec2', 'CloudStack')
# on OpenStack, the datasources ds-identify finds without a config drive (Ec2 is "platform Unknown" there)
OPENSTACK_FALLBACKS = ('OpenStack',)

NAME_RE = re.compile(r'^[A-Za-z0-9_.-]+$')
UNIT_RE = re.compile(r'^[A-Za-z0-9@_.:-]+\.(service|socket|timer|path|target|mount)$')
POLICY_RE = re.compile(r'^[A-Za-z0-9=,_-]+$')

ARGUMENT_SPEC = dict(
    src=dict(type='path', required=True),
    dest=dict(type='path'),
    in_place=dict(type='bool', default=False),
    force=dict(type='bool', default=False),
    name=dict(type='str', default='99-fastboot'),
    datasource_list=dict(type='list', elements='str', default=['ConfigDrive', 'OpenStack', 'None']),
    metadata_max_wait=dict(type='int', default=5),
    metadata_timeout=dict(type='int', default=2),
    metadata_retries=dict(type='int', default=1),
    disable_units=dict(type='list', elements='str', default=[]),
    ds_identify_policy=dict(type='str'),
    platform=dict(type='str', choices=['openstack', 'any'], default='openstack'),
    allow_unsafe_datasource_list=dict(type='bool', default=False),
    tmp_dir=dict(type='path'),
)


# ---------------------------------------------------------------- what to write

def datasource_problem(datasources, platform):
    """Why ``datasources`` is unsafe on ``platform`` (a sentence), or None when it is fine."""
    if platform != 'openstack':
        return None
    listed = ', '.join(datasources)
    fallbacks = [d for d in datasources if d in OPENSTACK_FALLBACKS]
    if 'ConfigDrive' not in datasources and not fallbacks:
        return ('datasource_list [%s] has neither ConfigDrive nor OpenStack: on OpenStack ds-identify finds none of them '
                'and cloud-init is disabled' % listed)
    if 'ConfigDrive' in datasources:
        after = datasources[datasources.index('ConfigDrive') + 1:]
        if not [d for d in after if d in OPENSTACK_FALLBACKS]:
            others = [d for d in after if d != 'None']
            if others:
                why = ('ds-identify drops %s on OpenStack (platform Unknown), so an instance booted without a config drive '
                       'has cloud-init silently disabled: no user-data, no SSH keys' % ', '.join(others))
            else:
                # ds-identify uses a list of one datasource (or one and None) as it is, and appends None
                why = ('an instance booted without a config drive falls back to the None datasource: cloud-init runs but '
                       'gets no user-data and no SSH keys')
            return ('datasource_list [%s] has no OpenStack (metadata service) after ConfigDrive: %s. Add OpenStack after '
                    'ConfigDrive, or set allow_unsafe_datasource_list=true' % (listed, why))
    return None


def validate(params):
    """Check the options; return the warnings."""
    warnings = []
    if not NAME_RE.match(params['name']):
        raise InputError('name %r may only contain letters, digits and . _ -' % params['name'])
    datasources = params['datasource_list']
    if not datasources:
        raise InputError('datasource_list must not be empty')
    unknown = [d for d in datasources if d not in KNOWN_DATASOURCES]
    if unknown:
        raise InputError('datasource_list has names cloud-init does not know: %s (names are case-sensitive; known: %s)'
                         % (', '.join(unknown), ', '.join(KNOWN_DATASOURCES)))
    if len(set(datasources)) != len(datasources):
        raise InputError('datasource_list has duplicates: %s' % ', '.join(datasources))
    for key in ('metadata_max_wait', 'metadata_timeout', 'metadata_retries'):
        if params[key] < 0:
            raise InputError('%s must be 0 or more, got %d' % (key, params[key]))
    for unit in params['disable_units']:
        if not UNIT_RE.match(unit):
            raise InputError('disable_units: %r is not a systemd unit name (e.g. pollinate.service)' % unit)
    policy = params['ds_identify_policy']
    if policy is not None and not POLICY_RE.match(policy):
        raise InputError('ds_identify_policy %r is not a ds-identify policy (e.g. enabled, or '
                         'search,found=all,maybe=all,notfound=disabled)' % policy)
    problem = datasource_problem(datasources, params['platform'])
    if problem:
        if not params['allow_unsafe_datasource_list']:
            raise InputError(problem, datasource_list=datasources)
        warnings.append('UNSAFE datasource_list written because allow_unsafe_datasource_list=true: ' + problem)
    if 'ConfigDrive' in datasources and datasources[0] != 'ConfigDrive':
        warnings.append('ConfigDrive is not first in datasource_list: the datasources before it are searched first '
                        'even when a config drive is attached')
    return warnings


def render_cfg(params):
    """The text of the cfg file (plain YAML, written without a YAML library)."""
    datasources = params['datasource_list']
    url = [d for d in datasources if d in URL_DATASOURCES]
    lines = ['# Written by fastboot.cloud.cloudinit_bake: the config drive first, then a short, bounded wait',
             '# for the network datasources that follow.',
             'datasource_list: [%s]' % ', '.join(datasources)]
    if url:
        lines.append('datasource:')
        for name in url:
            lines += ['  %s:' % name,
                      '    max_wait: %d' % params['metadata_max_wait'],
                      '    timeout: %d' % params['metadata_timeout'],
                      '    retries: %d' % params['metadata_retries']]
    return '\n'.join(lines) + '\n'


def render_ds_identify(policy):
    return '# Written by fastboot.cloud.cloudinit_bake\npolicy: %s\n' % policy


# ---------------------------------------------------------------- reading the image

def image_format(runner, path):
    fmt = parse_info(info(runner, path))['format']
    if fmt not in FORMATS:
        raise InputError('%s is a %s image: only raw and qcow2 are supported (convert it with qemu_img_convert first)'
                         % (path, fmt), image=path)
    return fmt


def tmp_name(directory, path, suffix=''):
    return os.path.join(directory, '.%s.%s%s%s' % (os.path.basename(path), TMP_TAG, random_suffix(), suffix))


def read_state(fs, params, cfg_path):
    """The current state of every file this module manages, and the planned writes."""
    state = {'cfg_dir': fs.is_dir(CFG_DIR), 'cfg': None, 'dsid': None, 'units': {}}
    if state['cfg_dir']:
        state['cfg'] = fs.read(cfg_path)
    if params['ds_identify_policy'] is not None:
        state['dsid'] = fs.read(DS_IDENTIFY_CFG)
    for unit in params['disable_units']:
        info_ = fs.stat('%s/%s' % (UNIT_DIR, unit))
        if info_ and info_['type'] not in ('symlink', 'regular'):
            raise InputError('%s/%s in the image is a %s: cannot mask it' % (UNIT_DIR, unit, info_['type']))
        if info_ and info_['type'] == 'regular':
            raise InputError('%s/%s in the image is a regular file (a local unit): it is not masked, remove it first'
                             % (UNIT_DIR, unit))
        known = any(fs.stat('%s/%s' % (d, unit)) for d in UNIT_SOURCES[:2])
        state['units'][unit] = {'exists': info_ is not None,
                                'masked': bool(info_) and info_.get('target') == MASK_TARGET, 'known': known}
    return state


def later_overrides(fs, name):
    """Files in cloud.cfg.d read after ours that also set datasource_list (they would win)."""
    out, dummy = fs.request('ls -p %s' % CFG_DIR)
    names = []
    for line in out.splitlines():
        # /INODE/MODE/UID/GID/NAME/SIZE/
        fields = line.strip().strip('/').split('/')
        if len(fields) >= 5 and fields[1].startswith('10') and fields[4].endswith('.cfg'):
            names.append(fields[4])
    mine = name + '.cfg'
    later = []
    for other in sorted(set(names)):
        if other > mine:
            text = fs.read('%s/%s' % (CFG_DIR, other)) or ''
            if re.search(r'^\s*datasource_list\s*:', text, re.M):
                later.append(other)
    return later


# ---------------------------------------------------------------- writing

def write_files(runner, fs, params, state, cfg_path, cfg_text, dsid_text):
    """Apply every planned change with one debugfs -w script, then read each back."""
    work = tempfile.mkdtemp(prefix='fastboot-bake-')
    try:
        script = []
        if not state['cfg_dir']:
            script += ['mkdir %s' % CFG_DIR, 'sif %s mode 040755' % CFG_DIR, 'sif %s uid 0' % CFG_DIR,
                       'sif %s gid 0' % CFG_DIR]
        if state['cfg'] != cfg_text:
            local = os.path.join(work, 'cfg')
            with open(local, 'w') as handle:
                handle.write(cfg_text)
            script += Debugfs.write_commands(cfg_path, local, exists=state['cfg'] is not None)
        if dsid_text is not None and state['dsid'] != dsid_text:
            local = os.path.join(work, 'dsid')
            with open(local, 'w') as handle:
                handle.write(dsid_text)
            script += Debugfs.write_commands(DS_IDENTIFY_CFG, local, exists=state['dsid'] is not None)
        for unit, unit_state in sorted(state['units'].items()):
            if not unit_state['masked']:
                script += Debugfs.symlink_commands('%s/%s' % (UNIT_DIR, unit), MASK_TARGET, exists=unit_state['exists'])
        problems = fs.run_script(script)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    try:
        fs.verify_file(cfg_path, cfg_text)
        if dsid_text is not None:
            fs.verify_file(DS_IDENTIFY_CFG, dsid_text)
        for unit in state['units']:
            fs.verify_symlink('%s/%s' % (UNIT_DIR, unit), MASK_TARGET)
    except FastbootError as exc:
        if problems:
            exc.msg = '%s; debugfs said: %s' % (exc.msg, '; '.join(problems[-3:]))
            exc.args = (exc.msg,)
        raise


def run(module, runner, result):
    params = module.params
    started = time.time()
    src = os.path.abspath(params['src'])
    result['src'] = src
    if params['in_place'] and params['dest']:
        raise InputError('set either dest (bake into a copy) or in_place=true (change src), not both')
    if not params['in_place'] and not params['dest']:
        raise InputError('set dest (bake into a copy of src) or in_place=true (change src itself)')
    for warning in validate(params):
        module.warn(warning)
    cfg_path = '%s/%s.cfg' % (CFG_DIR, params['name'])
    cfg_text = render_cfg(params)
    dsid_text = render_ds_identify(params['ds_identify_policy']) if params['ds_identify_policy'] is not None else None
    result.update(cfg_path=cfg_path, cfg=cfg_text, ds_identify_cfg=dsid_text)

    source = inspect_source(runner, src)
    if source['format'] not in FORMATS:
        raise InputError('src %s is a %s image: only raw and qcow2 are supported (convert it with qemu_img_convert first)'
                         % (src, source['format']), src=src)
    image = src if params['in_place'] else os.path.abspath(params['dest'])
    result['image'] = image
    directory = os.path.dirname(image)
    if not os.path.isdir(directory):
        raise InputError('the directory of %s does not exist' % image, image=image)
    if not params['in_place'] and os.path.exists(image) and os.path.realpath(image) == os.path.realpath(src):
        raise InputError('dest is src (%s): use in_place=true to change src' % src)
    fresh = not params['in_place'] and (params['force'] or not os.path.exists(image))
    # the image we read: src when dest is made (again) from it, else the image itself
    read_path = src if fresh else image
    fmt = source['format'] if fresh else image_format(runner, image)
    if not fresh and read_path != src:
        inspect_source(runner, read_path)
    result['image_format'] = fmt
    tmp_dir = params['tmp_dir'] or directory
    if not os.path.isdir(tmp_dir):
        raise InputError('tmp_dir %s does not exist' % tmp_dir)

    cleanup = []
    try:
        if fmt == 'raw':
            raw = read_path
        else:
            raw = tmp_name(tmp_dir, read_path, '.raw')
            cleanup.append(raw)
            convert(runner, read_path, fmt, raw, 'raw')
        root = find_root(runner, raw)
        result.update(partition=root['number'], partition_offset=root['offset'], partition_table=root['table'],
                      filesystem=root['fs'])
        if root['candidates'] > 1:
            module.warn('%d ext file systems have /etc/cloud; using the first (partition %s)' % (root['candidates'], root['number']))
        fs = Debugfs(runner, raw, root['offset'])
        state = read_state(fs, params, cfg_path)
        if state['cfg_dir']:
            later = later_overrides(fs, params['name'])
            if later:
                module.warn('%s in the image also set datasource_list and are read after %s.cfg, so they win: %s'
                            % (CFG_DIR, params['name'], ', '.join(later)))
        for unit, unit_state in sorted(state['units'].items()):
            if not unit_state['known']:
                module.warn('unit %s is not installed in the image; it is masked anyway' % unit)

        changes = []
        if state['cfg'] != cfg_text:
            changes.append('write %s' % cfg_path)
        if dsid_text is not None and state['dsid'] != dsid_text:
            changes.append('write %s' % DS_IDENTIFY_CFG)
        masked = sorted(u for u, s in state['units'].items() if not s['masked'])
        already = sorted(u for u, s in state['units'].items() if s['masked'])
        changes += ['mask %s' % u for u in masked]
        result.update(units_masked=masked, units_already_masked=already, changes=changes)
        if module._diff:
            diff = [{'before_header': cfg_path, 'after_header': cfg_path, 'before': state['cfg'] or '', 'after': cfg_text}]
            if dsid_text is not None:
                diff.append({'before_header': DS_IDENTIFY_CFG, 'after_header': DS_IDENTIFY_CFG,
                             'before': state['dsid'] or '', 'after': dsid_text})
            if params['disable_units']:
                diff.append({'before_header': 'masked units', 'after_header': 'masked units',
                             'before': ''.join('%s -> %s\n' % (u, MASK_TARGET) for u in already),
                             'after': ''.join('%s -> %s\n' % (u, MASK_TARGET) for u in sorted(state['units']))})
            result['diff'] = diff

        if not changes and not fresh:
            result['changed'] = False
            result['msg'] = '%s already has %s%s' % (image, cfg_path, ' and the masks' if already else '')
            return
        what = '%s into %s' % (', '.join(changes) or 'nothing new', image)
        if fresh:
            what += ' (made from %s)' % src
        if module.check_mode:
            result['changed'] = True
            result['msg'] = 'would %s' % what
            return

        if fresh and fmt == 'raw':
            # a sparse copy of src under a temporary name next to dest
            raw = tmp_name(directory, image)
            cleanup.append(raw)
            convert(runner, src, 'raw', raw, 'raw')
            fs = Debugfs(runner, raw, root['offset'])
        write_files(runner, fs, params, state, cfg_path, cfg_text, dsid_text)
        if raw != image:
            if fmt == 'raw':
                os.rename(raw, image)
                cleanup.remove(raw)
            else:
                out = tmp_name(directory, image)
                cleanup.append(out)
                convert(runner, raw, 'raw', out, fmt)
                os.rename(out, image)
                cleanup.remove(out)
        result['changed'] = True
        result['msg'] = 'did %s in %.1f s' % (what, time.time() - started)
    finally:
        for path in cleanup:
            if os.path.exists(path):
                os.unlink(path)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    result = dict(changed=False, src=params['src'], image=params['dest'] or params['src'],
                  cfg_path='%s/%s.cfg' % (CFG_DIR, params['name']), cfg=None, ds_identify_cfg=None)
    runner = Runner(module)
    finish(module, 'cloudinit_bake', lambda: run(module, runner, result), result, timed=True)


if __name__ == '__main__':
    main()
