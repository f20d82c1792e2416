# Print {path: {section: {key: value}}} for the files given, parsed by oslo.config's own parser (the last value
# of a key wins, as for the services).
import json
import sys

from oslo_config import cfg

out = {}
for path in sys.argv[1:]:
    sections = {}
    cfg.ConfigParser(path, sections).parse()
    out[path] = dict((name, dict((key, values[-1]) for key, values in opts.items())) for name, opts in sections.items())
print(json.dumps(out))
