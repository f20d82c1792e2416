# -*- coding: utf-8 -*-
# Copyright: fastboot.cloud developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: RBD copy-on-write clone (what Nova/Cinder do with a raw Glance image) vs full copy.

Against the lab cluster, in one run: creates its own pool, and for each size makes a fully written image
(``rbd bench --io-type write --io-pattern seq``), snapshots and protects it as Glance does, then times
``rbd clone`` and ``rbd cp`` side by side (interleaved, alternating which goes first, N repeats), deleting each
clone/copy right after timing it. Prints a Markdown table (median and range, ratio copy/clone) on stdout,
progress on stderr; ``--json`` writes the raw figures. Everything it made, including the pool, is deleted at
the end, also on failure or Ctrl-C.

    .venv/bin/python bench/ceph_clone_vs_copy.py --sizes 1,4 --repeats 3 --json bench/results/clone.json
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_CONF = os.path.join(os.environ.get('FASTBOOT_LAB_DIR', '/var/tmp/fastboot-lab'), 'ceph', 'ceph.conf')
GIB = 1024 ** 3
MIB = 1024 ** 2
T0 = time.monotonic()


def log(msg):
    sys.stderr.write('[bench %6.1fs] %s\n' % (time.monotonic() - T0, msg))
    sys.stderr.flush()


class Ceph(object):
    def __init__(self, conf):
        self.env = dict(os.environ, CEPH_CONF=conf, LC_ALL='C',
                        PATH='/usr/sbin:/usr/bin:/sbin:/bin:' + os.environ.get('PATH', ''))

    def run(self, argv, check=True):
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError('%s failed rc=%d: %s' % (' '.join(argv), proc.returncode,
                                                        (proc.stderr or proc.stdout).strip()[-500:]))
        return proc

    def timed(self, argv):
        start = time.perf_counter()
        self.run(argv)
        return time.perf_counter() - start

    def avail_bytes(self):
        return json.loads(self.run(['ceph', 'df', '-f', 'json']).stdout)['stats']['total_avail_bytes']

    def version(self):
        return self.run(['rbd', '--version']).stdout.strip()


def summary(values):
    return {'median': statistics.median(values), 'min': min(values), 'max': max(values), 'runs': values}


def bench_size(ceph, pool, gib, repeats):
    """Make one fully written image of ``gib`` GiB, then time clone vs copy ``repeats`` times, interleaved."""
    base = '%s/base-%dg' % (pool, gib)
    size = gib * GIB
    log('%d GiB: creating and writing %s (rbd bench, sequential 4M writes)' % (gib, base))
    ceph.run(['rbd', 'create', '--size', '%dG' % gib, base])
    fill = ceph.timed(['rbd', 'bench', '--io-type', 'write', '--io-pattern', 'seq', '--io-size', '4M',
                       '--io-threads', '16', '--io-total', '%dG' % gib, base])
    used = json.loads(ceph.run(['rbd', 'du', '--format', 'json', base]).stdout)['images'][0]['used_size']
    log('%d GiB: written in %.1fs (%.0f MiB/s), rbd du used %d MiB' % (gib, fill, size / MIB / fill, used // MIB))
    ceph.run(['rbd', 'snap', 'create', base + '@snap'])
    ceph.run(['rbd', 'snap', 'protect', base + '@snap'])
    clone_t, clone_rm, copy_t, copy_rm = [], [], [], []
    for rep in range(repeats):
        name = uuid.uuid4().hex[:8]
        clone, copy = '%s/%s_disk' % (pool, name), '%s/volume-%s' % (pool, name)

        def do_clone():
            clone_t.append(ceph.timed(['rbd', 'clone', base + '@snap', clone]))
            clone_rm.append(ceph.timed(['rbd', 'rm', '--no-progress', clone]))

        def do_copy():
            copy_t.append(ceph.timed(['rbd', 'cp', '--no-progress', base + '@snap', copy]))
            copy_rm.append(ceph.timed(['rbd', 'rm', '--no-progress', copy]))  # free the space right away

        order = (do_clone, do_copy) if rep % 2 == 0 else (do_copy, do_clone)
        for step in order:
            step()
        log('%d GiB repeat %d/%d (%s first): clone %.3fs, copy %.2fs'
            % (gib, rep + 1, repeats, 'clone' if rep % 2 == 0 else 'copy', clone_t[-1], copy_t[-1]))
    ceph.run(['rbd', 'snap', 'unprotect', base + '@snap'])
    ceph.run(['rbd', 'snap', 'purge', '--no-progress', base])
    ceph.run(['rbd', 'rm', '--no-progress', base])
    clone_s, copy_s = summary(clone_t), summary(copy_t)
    return {'size_gib': gib, 'size_bytes': size, 'used_bytes': used, 'fill_seconds': fill, 'repeats': repeats,
            'clone_seconds': clone_s, 'copy_seconds': copy_s,
            'clone_rm_seconds': summary(clone_rm), 'copy_rm_seconds': summary(copy_rm),
            'ratio_copy_over_clone': copy_s['median'] / clone_s['median'],
            'copy_mib_per_s': size / MIB / copy_s['median']}


def markdown(results):
    def rng(s, fmt):
        return (fmt + ' (' + fmt + '–' + fmt + ')') % (s['median'], s['min'], s['max'])

    lines = ['| image | `rbd clone` (CoW) s, median (min–max) | `rbd cp` (full copy) s, median (min–max) '
             '| copy / clone | full copy MiB/s | repeats |',
             '|---:|---:|---:|---:|---:|---:|']
    for r in results:
        lines.append('| %d GiB | %s | %s | %.0f× | %.0f | %d |' % (
            r['size_gib'], rng(r['clone_seconds'], '%.3f'), rng(r['copy_seconds'], '%.2f'),
            r['ratio_copy_over_clone'], r['copy_mib_per_s'], r['repeats']))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='1,4', help='image sizes in GiB, comma separated (default 1,4)')
    parser.add_argument('--repeats', type=int, default=3, help='clone/copy pairs per size (default 3, minimum 3)')
    parser.add_argument('--ceph-conf', default=os.environ.get('CEPH_CONF', LAB_CONF))
    parser.add_argument('--pool', default='bench-clone-' + uuid.uuid4().hex[:6], help='pool to create (must not exist)')
    parser.add_argument('--json', metavar='FILE', help='write the results as JSON to FILE')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',') if s.strip()]
    if args.repeats < 3:
        parser.error('--repeats must be at least 3')
    ceph = Ceph(args.ceph_conf)
    # a SIGTERM must still run the cleanup below
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    if args.pool in ceph.run(['ceph', 'osd', 'pool', 'ls']).stdout.split():
        sys.exit('pool %s already exists: pick another --pool' % args.pool)
    results, created = [], False
    try:
        log('creating pool %s' % args.pool)
        ceph.run(['ceph', 'osd', 'pool', 'create', args.pool, '8', '8'])
        created = True
        ceph.run(['rbd', 'pool', 'init', args.pool])
        for gib in sizes:
            avail = ceph.avail_bytes()
            # the base image and one full copy live at the same time, plus 1 GiB of slack
            if avail < (2 * gib + 1) * GIB:
                log('%d GiB: SKIPPED, only %.1f GiB available in the cluster' % (gib, avail / GIB))
                continue
            results.append(bench_size(ceph, args.pool, gib, args.repeats))
    finally:
        if created:
            log('deleting pool %s and everything in it' % args.pool)
            ceph.run(['ceph', 'osd', 'pool', 'rm', args.pool, args.pool, '--yes-i-really-really-mean-it'], check=False)
    table = markdown(results)
    print(table)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as out:
            json.dump({'benchmark': 'ceph_clone_vs_copy', 'rbd_version': ceph.version(), 'host': platform.node(),
                       'ceph_conf': args.ceph_conf, 'pool': args.pool, 'results': results, 'markdown': table},
                      out, indent=2)
        log('results written to %s' % args.json)


if __name__ == '__main__':
    main()
