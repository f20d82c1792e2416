"""Generate the README's role variable tables from each role's meta/argument_specs.yml.

The README holds, for every role, a block between
  <!-- BEGIN ROLE VARS <role> -->  and  <!-- END ROLE VARS <role> -->
  --write  rewrites those blocks;  --check  exits 1 (naming the role) when one is stale or missing.
"""
import argparse
import glob
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, 'README.md')


def cell(value):
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace('|', '\\|').replace('\n', ' ')


def table(role, spec):
    rows = ['| variable | type | default | description |', '| --- | --- | --- | --- |']
    for name, opt in spec['argument_specs']['main']['options'].items():
        desc = opt.get('description', '')
        desc = ' '.join(desc) if isinstance(desc, list) else desc
        typ = opt.get('type', 'str')
        if opt.get('elements'):
            typ += ' of ' + opt['elements']
        if opt.get('choices'):
            typ += ' (' + ', '.join(str(c) for c in opt['choices']) + ')'
        default = '(required)' if opt.get('required') else '`%s`' % cell(opt.get('default'))
        rows.append('| `%s` | %s | %s | %s |' % (name, typ, default, cell(re.sub(r'[COV]\(([^)]*)\)', r'`\1`', desc))))
    return '\n'.join(rows)


def render(text):
    stale = []
    for path in sorted(glob.glob(os.path.join(ROOT, 'roles', '*', 'meta', 'argument_specs.yml'))):
        role = path.split(os.sep)[-3]
        with open(path) as handle:
            body = table(role, yaml.safe_load(handle))
        begin, end = '<!-- BEGIN ROLE VARS %s -->' % role, '<!-- END ROLE VARS %s -->' % role
        pattern = re.compile(re.escape(begin) + '.*?' + re.escape(end), re.S)
        block = '%s\n%s\n%s' % (begin, body, end)
        if not pattern.search(text):
            stale.append('%s (no "%s" block in README.md)' % (role, begin))
            continue
        new = pattern.sub(lambda m: block, text)
        if new != text:
            stale.append(role)
        text = new
    return text, stale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--write', action='store_true')
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args()
    with open(README) as handle:
        text = handle.read()
    new, stale = render(text)
    if args.write:
        with open(README, 'w') as handle:
            handle.write(new)
        missing = [s for s in stale if 'no "' in s]
        if missing:
            sys.exit('README.md lacks blocks for: ' + ', '.join(missing))
        return
    if stale:
        sys.exit('README.md role variable tables are stale for: %s. Run `make docs`.' % ', '.join(stale))
    print('README.md role variable tables are up to date')


if __name__ == '__main__':
    main()
