# The one copy of the probe the OpenStack service roles (glance_rbd, nova_rbd, cinder_rbd, neutron_metadata) run
# before validating their files; each role reads it from here (role_path/../../files).
# Print {"validator": path or "", "namespaces": [...]}: which of the namespaces given as argv[1] (comma separated)
# this Python can load as oslo.config option definitions (entry points "oslo.config.opts").
import json
import os
import shutil
import sys

wanted = [n for n in sys.argv[1].split(',') if n]
try:
    from importlib.metadata import entry_points
    eps = entry_points()
    group = eps.select(group='oslo.config.opts') if hasattr(eps, 'select') else eps.get('oslo.config.opts', [])
    have = set(e.name for e in group)
except Exception as exc:  # noqa: BLE001 - report, the role decides
    sys.stderr.write('cannot read entry points: %s\n' % exc)
    have = set()
validator = os.path.join(os.path.dirname(sys.executable), 'oslo-config-validator')
if not os.access(validator, os.X_OK):
    validator = shutil.which('oslo-config-validator') or ''
print(json.dumps({'validator': validator, 'namespaces': [n for n in wanted if n in have]}))
