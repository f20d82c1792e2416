"""First boot of a cloud image: the stock cloud-init configuration vs one baked by cloudinit_bake, with and
without an OpenStack config drive, side by side.

Boots the lab image (tools/lab/build-cloud-image.sh) under qemu with OpenStack SMBIOS and no reachable
metadata service (packets to 169.254.169.254 dropped in a private network namespace, DNS answers NXDOMAIN),
in four cases, interleaved ``--runs`` times:

  stock + drive     the image as built, an ISO9660 config drive (label config-2)
  baked + drive     the image baked with the module's defaults ([ConfigDrive, OpenStack, None], max_wait 5,
                    timeout 2, retries 1), the same drive
  stock, no drive   the image as built, no drive
  baked, no drive   the baked image, no drive

Per boot, from the guest's own evidence: datasource discovery (the sum of the ``search-*`` events of
``cloud-init analyze blame``), the guest uptime at cloud-init's "finished" line, and the host seconds from
qemu's start to that line. Prints a Markdown table (median and range), writes a PNG plot and the raw results
as JSON. Uses KVM only when it can run an ordinary guest; otherwise says why it fell back to TCG.

  python bench/boot_bench.py [--runs 3] [--png FILE] [--json FILE] [--timeout 600]
  python bench/boot_bench.py --report-from FILE.json [--png FILE]   (table and plot of an earlier run)
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))

import bootlab  # noqa: E402  (the tests' boot helpers)
from labutil import ModuleRunner  # noqa: E402

CASES = [('stock + drive', 'stock', True), ('baked + drive', 'baked', True),
         ('stock, no drive', 'stock', False), ('baked, no drive', 'baked', False)]
METRICS = [('discovery', 'datasource discovery (s)'), ('uptime_final', 'guest uptime at cloud-init finished (s)'),
           ('host_final', 'qemu start to cloud-init finished (s)')]


def log(msg):
    sys.stderr.write('[boot-bench] %s\n' % msg)
    sys.stderr.flush()


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return 'n/a'
    if len(values) == 1:
        return '%.1f' % values[0]
    return '%.1f (%.1f-%.1f)' % (statistics.median(values), min(values), max(values))


def table(results, runs):
    lines = ['| case | runs | datasource | %s |' % ' | '.join(label for dummy, label in METRICS),
             '| --- | --- | --- | %s |' % ' | '.join('---' for dummy in METRICS)]
    for name, dummy, dummy2 in CASES:
        rows = [r for r in results if r['case'] == name]
        sources = sorted(set(str(r['datasource']) for r in rows))
        finished = len([r for r in rows if r['uptime_final'] is not None])
        cells = ' | '.join(spread([r[key] for r in rows]) for key, dummy in METRICS)
        lines.append('| %s | %d/%d | %s | %s |' % (name, finished, runs, ', '.join(sources), cells))
    return '\n'.join(lines)


def plot(results, path, accel_note):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib is not installed (pip install -r requirements-dev.txt): no PNG')
        return None
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4.5))
    for axis, (key, label) in zip(axes, METRICS):
        names, medians, lows, highs = [], [], [], []
        for name, dummy, dummy2 in CASES:
            values = [r[key] for r in results if r['case'] == name and r[key] is not None]
            names.append(name.replace(', ', '\n').replace(' + ', '\n+ '))
            if values:
                med = statistics.median(values)
                medians.append(med)
                lows.append(med - min(values))
                highs.append(max(values) - med)
            else:
                medians.append(0)
                lows.append(0)
                highs.append(0)
        axis.bar(range(len(names)), medians, yerr=[lows, highs], capsize=4,
                 color=['#8da0cb', '#66c2a5', '#fc8d62', '#a6d854'])
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels(names, fontsize=8)
        axis.set_title(label, fontsize=10)
        axis.set_ylabel('seconds (median, bar = range)')
    fig.suptitle('cloud-init first boot, stock vs baked (%s)' % accel_note, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3, help='interleaved runs of each case (default 3)')
    parser.add_argument('--timeout', type=int, default=600, help='seconds before a boot is killed')
    default_out = os.path.join(bootlab.LAB_DIR, 'bench')
    parser.add_argument('--png', default=os.path.join(default_out, 'boot-bench.png'))
    parser.add_argument('--json', default=os.path.join(default_out, 'boot-bench.json'))
    parser.add_argument('--report-from', metavar='JSON', help='print the table and plot of an earlier (or interrupted) run')
    args = parser.parse_args()
    if args.report_from:
        with open(args.report_from) as handle:
            data = json.load(handle)
        runs = max([r['run'] for r in data['results']] or [0])
        note = 'KVM' if data['accel'] == 'kvm' else 'TCG'
        print('Boot benchmark: %d interleaved run(s) per case, %s%s' % (
            runs, note, ' (KVM unusable: %s)' % data['accel_reason'] if data.get('accel_reason') else ''))
        print()
        print(table(data['results'], runs))
        print()
        png = plot(data['results'], args.png, note)
        print('plot: %s' % png)
        return

    accel, reason = bootlab.accel()
    accel_note = 'KVM' if accel == 'kvm' else 'TCG'
    if accel == 'tcg':
        log('KVM is unusable here (%s): fell back to TCG (software emulation, several times slower)' % reason)
    image = bootlab.ensure_image()
    out_dir = os.path.dirname(os.path.abspath(args.json))
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix='fastboot-boot-bench-', dir=out_dir)
    baked = os.path.join(work, 'baked.raw')
    res = ModuleRunner()('cloudinit_bake', {'src': image['raw'], 'dest': baked})
    if res.get('failed'):
        raise SystemExit('cloudinit_bake failed: %s' % res.get('msg'))
    log('baked %s: %s' % (baked, res['cfg'].replace('\n', ' | ')))
    drive = bootlab.config_drive(os.path.join(work, 'cd.iso'), 'iso')
    images = {'stock': image['raw'], 'baked': baked}

    results = []
    started = time.time()
    for run in range(1, args.runs + 1):
        for name, which, with_drive in CASES:
            console = os.path.join(work, '%s-r%d.console' % (name.replace(' ', '').replace(',', '-').replace('+', '-'), run))
            log('run %d/%d: %s' % (run, args.runs, name))
            boot = bootlab.boot(images[which], image['vmlinuz'], image['initrd'], drive=drive if with_drive else None,
                                timeout=args.timeout, console=console)
            final = boot.final
            row = {'case': name, 'run': run, 'accel': boot.accel, 'datasource': final[0].rstrip('.') if final else None,
                   'discovery': boot.discovery_seconds, 'search': boot.search_times,
                   'uptime_final': final[1] if final else None, 'host_final': round(final[2], 2) if final else None,
                   'status': boot.status.get('status'), 'killed': boot.killed, 'console': console}
            log('  %s' % json.dumps(row))
            results.append(row)
            with open(args.json, 'w') as handle:
                json.dump({'accel': accel, 'accel_reason': reason, 'runs': args.runs, 'results': results}, handle, indent=1)

    print('Boot benchmark: %d interleaved run(s) per case, %s%s, %.0f min in all, load average %s' % (
        args.runs, accel_note, ' (KVM unusable: %s)' % reason if reason else '', (time.time() - started) / 60,
        ' '.join('%.1f' % v for v in os.getloadavg())))
    print()
    print(table(results, args.runs))
    print()
    png = plot(results, args.png, accel_note)
    print('raw results: %s%s; consoles in %s' % (args.json, '; plot: %s' % png if png else '', work))


if __name__ == '__main__':
    main()
