#!/bin/bash
# ansible-test sanity (and units) need the collection as a git checkout under ansible_collections/NS/NAME.
# Copy what git tracks (plus new, not ignored files) there, make it a repository, run ansible-test.
#   tools/ci/sanity.sh sanity|units
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
DEST=$ROOT/.build/ansible-test/ansible_collections/fastboot/cloud
rm -rf "$DEST"; mkdir -p "$DEST"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$DEST")
(cd "$DEST" && git init -q && git add -A)
# ansible-test bootstraps pip in its venvs with a script it downloads from a host we cannot reach
PIPV=$("$VENV/bin/python" -c "import re, inspect, ansible_test._internal.python_requirements as m; \
print(re.search(r\"pip='([0-9.]+)'\", inspect.getsource(m.get_venv_packages)).group(1))")
mkdir -p ~/.ansible/test/cache
cp "$ROOT/tools/ci/get_pip_shim.py" ~/.ansible/test/cache/get_pip_${PIPV//./_}.py
PY=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cd "$DEST"
case "${1:-sanity}" in
  sanity) exec "$VENV/bin/ansible-test" sanity --venv --python "$PY" --color no ;;
  units) exec "$VENV/bin/ansible-test" units --venv --python "$PY" --color no ;;
  *) echo "usage: $0 sanity|units" >&2; exit 2 ;;
esac
