"""Conversion throughput: the qemu_img_convert module vs bare `qemu-img convert`, into RBD, side by side.

Against the lab's real Ceph (tools/lab/ceph.sh up). Makes a qcow2 of SIZE GiB filled with random data, then,
interleaved REPEATS times: (a) bare `qemu-img convert -f qcow2 -O raw SRC rbd:POOL/IMG:conf=...`,
(b) the module process itself (what runs on a managed host: python + AnsiballZ-free direct invocation of
the module with its arguments file), (c) the same module through `ansible localhost -m` (adds the
controller's start-up). Prints a Markdown table with medians, ranges, MiB/s and the overhead of (b) and
(c) over (a). Deletes its pool and files at the end.

  python bench/convert_overhead.py [--size-gib 1] [--repeats 3] [--json out.json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.environ.get('FASTBOOT_LAB_DIR', '/var/tmp/fastboot-lab')
CONF = os.path.join(LAB, 'ceph', 'ceph.conf')
COLLECTIONS = os.path.join(ROOT, '.build', 'collections')
ENV = dict(os.environ, CEPH_CONF=CONF, LC_ALL='C',
           PATH='/usr/sbin:/usr/bin:/sbin:/bin:' + os.environ.get('PATH', ''))


def log(msg):
    sys.stderr.write('[convert-bench] %s\n' % msg)
    sys.stderr.flush()


def run(argv, **kw):
    proc = subprocess.run(argv, env=kw.pop('env', ENV), capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        raise SystemExit('%s failed (rc=%d): %s' % (' '.join(argv), proc.returncode, proc.stderr.strip()[-500:]))
    return proc


def timed(argv, **kw):
    t0 = time.monotonic()
    proc = run(argv, **kw)
    return time.monotonic() - t0, proc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-gib', type=float, default=1.0)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', help='write the results here')
    args = parser.parse_args()

    pool = 'bench-convert-' + uuid.uuid4().hex[:6]
    work = tempfile.mkdtemp(prefix='fastboot-convert-bench-')
    times = {'bare qemu-img convert': [], 'module process': [], 'module via ansible': []}
    try:
        run(['bash', os.path.join(ROOT, 'tools', 'lab', 'ceph.sh'), 'up'])
        run(['ceph', 'osd', 'pool', 'create', pool, '8', '8'])
        run(['rbd', 'pool', 'init', pool])
        raw, src = os.path.join(work, 'src.raw'), os.path.join(work, 'src.qcow2')
        size = int(args.size_gib * (1 << 30))
        log('making a %.1f GiB qcow2 of random data' % args.size_gib)
        with open('/dev/urandom', 'rb') as rnd, open(raw, 'wb') as out:
            left = size
            while left:
                chunk = rnd.read(min(left, 8 << 20))
                out.write(chunk)
                left -= len(chunk)
        run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, src])
        os.unlink(raw)

        def bare(name):
            return timed(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', src,
                          'rbd:%s/%s:conf=%s:id=admin' % (pool, name, CONF)])[0]

        def module(name):
            argsfile = os.path.join(work, 'args.json')
            with open(argsfile, 'w') as handle:
                json.dump({'ANSIBLE_MODULE_ARGS': {'src': src, 'dest': 'rbd:%s/%s' % (pool, name),
                                                   'ceph_conf': CONF}}, handle)
            env = dict(ENV, PYTHONPATH=COLLECTIONS)
            seconds, proc = timed([sys.executable, '-m',
                                   'ansible_collections.fastboot.cloud.plugins.modules.qemu_img_convert',
                                   argsfile], env=env)
            result = json.loads(proc.stdout)
            assert result.get('changed') and not result.get('failed'), result
            return seconds

        def via_ansible(name):
            env = dict(ENV, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, LC_ALL='C.UTF-8')
            return timed([os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-i', 'localhost,',
                          '-c', 'local', '-e', 'ansible_python_interpreter=' + sys.executable,
                          '-m', 'fastboot.cloud.qemu_img_convert',
                          '-a', json.dumps({'src': src, 'dest': 'rbd:%s/%s' % (pool, name), 'ceph_conf': CONF})],
                         env=env)[0]

        ways = [('bare qemu-img convert', bare), ('module process', module), ('module via ansible', via_ansible)]
        for rep in range(args.repeats):
            order = ways if rep % 2 == 0 else list(reversed(ways))
            for label, func in order:
                name = 'img-%d-%s' % (rep, label.split()[0])
                seconds = func(name)
                times[label].append(seconds)
                log('run %d %-22s %.2f s' % (rep + 1, label, seconds))
                run(['rbd', 'rm', '--no-progress', '%s/%s' % (pool, name)])
    finally:
        run(['ceph', 'osd', 'pool', 'rm', pool, pool, '--yes-i-really-really-mean-it'])
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(times['bare qemu-img convert'])
    size_mib = args.size_gib * 1024
    print('| way (%.1f GiB qcow2 -> raw in RBD, %d runs) | median s | range s | MiB/s | vs bare |' % (args.size_gib, args.repeats))
    print('| --- | ---: | ---: | ---: | ---: |')
    results = {}
    for label, values in times.items():
        med = statistics.median(values)
        overhead = (med / base - 1) * 100
        results[label] = {'runs': values, 'median': med, 'overhead_pct': overhead}
        print('| %s | %.2f | %.2f-%.2f | %.0f | %+.1f%% |' % (label, med, min(values), max(values), size_mib / med, overhead))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'size_gib': args.size_gib, 'results': results}, handle, indent=2)


if __name__ == '__main__':
    main()
